"""Config: the only reader of values/.

Owns the YAML reader, the pipeline settings and their layering (profiles, --set), the chart rules, the
per-database catalog, naming rules, validation, the capacity estimate, and the Dagger module's arguments turned
into values. May import only the shared helpers (`dbstack.text`, `dbstack.masking`).
"""
