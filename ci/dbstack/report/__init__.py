"""Reports, written from Results only: junit.xml, summary.json, summary.md, results.json, masked diagnostics/."""

from dbstack.report.cli import cli_report, load_results
from dbstack.report.folder import masked, write_reports
from dbstack.report.smoke_junit import SmokeJunitError, attach_checks, parse_smoke_junit, smoke_outcome

__all__ = [
    "SmokeJunitError",
    "attach_checks",
    "cli_report",
    "load_results",
    "masked",
    "parse_smoke_junit",
    "smoke_outcome",
    "write_reports",
]
