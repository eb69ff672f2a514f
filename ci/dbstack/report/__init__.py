"""Reports, written from Results only: junit.xml, summary.json, summary.md, results.json, masked diagnostics/.

Owns the report folder and every file in it. May import `run.results` (what it renders), `config` and the shared
helpers (`dbstack.text`, `dbstack.masking`); never the orchestrator, the simulator, previews or the command line.
"""

from dbstack.report.folder import masked, write_reports

__all__ = ["masked", "write_reports"]
