"""GitHub: pull-request preview environments (namespaces, labels, comments) and annotations from junit.xml.

May import `report`, `run`, `plan`, `config` and the shared helpers.
"""
