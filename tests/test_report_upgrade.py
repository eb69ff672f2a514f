"""What an upgrade test adds to the reports: a "survived the upgrade" JUnit case per database, the values diff and
the survival table in summary.md, both phases on the timeline, and the upgrade in summary.json."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from dbstack.report import write_reports
from dbstack.report.junit import render_junit
from dbstack.report.markdown import render_markdown
from dbstack.report.summary_json import render_summary
from dbstack.report.verdict import headline
from dbstack.run.results import Outcome, RunResults
from report_samples import UPGRADE_CAUSE, parse_gantt, successful_run, upgraded_run


def test_junit_has_a_survived_the_upgrade_case_per_database_and_the_markers() -> None:
    root = ET.fromstring(render_junit(upgraded_run()))  # noqa: S314 - our own output
    (suite,) = [s for s in root.iter("testsuite") if s.get("name") == "dbstack upgrade"]
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == [
        "PostgreSQL survived the upgrade",
        "Redis survived the upgrade",
        "Qdrant survived the upgrade",
        "Elasticsearch survived the upgrade",
    ]
    assert cases["Redis survived the upgrade"].get("classname") == "upgrade.redis"
    failure = cases["Redis survived the upgrade"].find("failure")
    assert failure is not None
    assert failure.get("message") == f"its markers were not read back: Upgrade Redis failed: {UPGRADE_CAUSE}"
    assert all(case.find("failure") is None for name, case in cases.items() if name != "Redis survived the upgrade")
    assert (suite.get("tests"), suite.get("failures")) == ("4", "1")
    # The marker steps are pipeline steps, beside the upgrades.
    pipeline = next(s for s in root.iter("testsuite") if s.get("name") == "dbstack pipeline")
    names = [c.get("name") for c in pipeline.iter("testcase")]
    assert "Write marker data into Redis (redis-cluster)" in names
    assert "Read the marker data back from Redis (redis-cluster)" in names


def test_a_database_not_checked_is_a_skipped_case_saying_why() -> None:
    results = upgraded_run()
    assert results.upgrade is not None
    results.upgrade.survival[2].outcome = Outcome.SKIPPED
    results.upgrade.survival[2].message = "enabled by the change: it had no data before the upgrade"
    root = ET.fromstring(render_junit(results))  # noqa: S314 - our own output
    case = next(c for c in root.iter("testcase") if c.get("name") == "Qdrant survived the upgrade")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message") == "enabled by the change: it had no data before the upgrade"


def test_summary_md_shows_what_survived_what_changed_and_the_diff_helm_received() -> None:
    markdown = render_markdown(upgraded_run())
    assert markdown.splitlines()[0] == (
        "## ❌ dbstack: 1 of 4 databases failed (redis); 1 of 4 databases did not survive the upgrade (redis)"
    )
    assert "**Redis did not survive the upgrade**: its markers were not read back: Upgrade Redis failed: " in markdown
    assert "### Upgrade from `base/values`" in markdown
    assert "| PostgreSQL | ✅ passed |  |" in markdown
    assert (
        "| Redis | ❌ failed | its markers were not read back: Upgrade Redis failed: redis-cluster-redis-0" in markdown
    )
    assert "| `pg-cluster` | upgrade | chart 1.0.1, PostgreSQL 16.4.0 | chart 1.0.1, PostgreSQL 16.9.0 |" in markdown
    assert "Unchanged, left alone: `kubeblocks`" in markdown
    diff = markdown.split("```diff\n", 1)[1].split("\n```", 1)[0]
    assert diff.splitlines() == [
        "# pg-cluster",
        '~ version: "16.4.0" -> "16.9.0"',
        "",
        "# redis-cluster",
        "~ requests.cpu: 0.1 -> 0.2",
        "+ extra.disableExporter: false",
    ]
    assert "- redis-cluster's redis volumes grow 1 -\\> 2 Gi" in markdown


def test_a_passing_upgrade_says_how_many_databases_survived() -> None:
    results = upgraded_run()
    assert results.upgrade is not None
    for database in results.databases:
        database.outcome = Outcome.PASSED
    for step in results.steps:
        step.outcome, step.cause = Outcome.PASSED, None
    for survival in results.upgrade.survival:
        survival.outcome, survival.message = Outcome.PASSED, None
    assert results.passed
    assert headline(results).endswith(", 4 of 4 survived the upgrade")


def test_the_timeline_shows_the_base_the_markers_then_the_upgrade() -> None:
    results = upgraded_run()
    tasks = parse_gantt(render_markdown(results))
    sections = list(dict.fromkeys(t.section for t in tasks))
    assert sections == [
        "Base · Platform",
        "Base · PostgreSQL",
        "Base · Redis",
        "Base · Qdrant",
        "Base · Elasticsearch",
        "Upgrade · PostgreSQL",
        "Upgrade · Redis",
        "Upgrade · Qdrant",
        "Upgrade · Elasticsearch",
        "Smoke tests",
    ]
    base_end = max(t.end for t in tasks if t.section.startswith("Base"))
    assert base_end <= min(t.start for t in tasks if t.section.startswith("Upgrade"))
    redis = [t.name for t in tasks if t.section == "Upgrade · Redis"]
    # Its markers written, its upgrade (failed); the read-back never started, so it is not drawn.
    assert redis == [
        "Write marker data into Redis (redis-cluster)",
        "Upgrade Redis (redis-cluster) and wait until Running with the new spec",
    ]
    assert next(t for t in tasks if t.name.startswith("Upgrade Redis")).status == "crit"


def test_summary_json_holds_the_upgrade(tmp_path: Path) -> None:
    results = upgraded_run()
    summary = render_summary(results)
    upgrade = summary["upgrade"]
    assert upgrade["baseValues"] == "base/values"
    assert [s["outcome"] for s in upgrade["survival"]] == ["passed", "failed", "passed", "passed"]
    assert upgrade["releases"][1]["diff"] == ['~ version: "16.4.0" -> "16.9.0"']
    assert render_summary(successful_run())["upgrade"] is None
    write_reports(results, tmp_path)
    again = RunResults.from_json(json.loads((tmp_path / "results.json").read_text()))
    assert again.upgrade == results.upgrade
