"""What the reports say about the backup stage, from a simulated `full` run (report_samples.backup_run): per database
its method, the backup's time and size, the restore's time and whether the markers read back; a JUnit case each; the
stage's own section in the timeline; the verdict; every summary.json field documented; a saved run rendered again
into identical files."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from dbstack.cli.main import main
from dbstack.report import write_reports
from dbstack.report.junit import BACKUP_SUITE
from dbstack.report.markdown import render_markdown
from dbstack.report.summary_json import render_summary
from dbstack.report.timeline import STAGE_SECTIONS
from dbstack.run.results import RunResults
from report_samples import backup_run, parse_gantt, written_files
from test_report_summary_json import DOCS, _key_paths


@pytest.fixture(scope="module")
def results() -> RunResults:
    return backup_run()


def test_the_markdown_has_a_row_per_database_with_method_times_size_and_read_back(results: RunResults) -> None:
    markdown = render_markdown(results)
    section = markdown.split("### Backup and restore\n\n", 1)[1].split("\n\n", 1)[0]
    rows = {row.split(" | ")[0].strip("| "): row for row in section.splitlines()[2:]}
    assert set(rows) == {"PostgreSQL", "Redis", "Qdrant", "Elasticsearch"}
    pg = results.backups[0]
    assert rows["PostgreSQL"] == (
        f"| PostgreSQL | `volume-snapshot` | 40.8s ({pg.duration} by KubeBlocks) | 48Mi | 2m 31s into `pg-cluster-r` "
        "| ✅ passed | ✅ passed |"
    )
    assert "| `volume-snapshot` | - | - | - into `redis-cluster-r` | ⚪ not run | ❌ failed: backup: " in rows["Redis"]
    assert "failed to create volume snapshot: no space |" in rows["Redis"]
    assert rows["Elasticsearch"] == "| Elasticsearch | - | - | - | - | - | ⏭️ backup.methods.elasticsearch is none |"


def test_the_timeline_gives_the_stage_a_section_after_the_databases(results: RunResults) -> None:
    tasks = parse_gantt(render_markdown(results))
    sections = list(dict.fromkeys(t.section for t in tasks))
    assert sections[-2:] == [STAGE_SECTIONS["backup"], "Smoke tests"]
    stage = [t for t in tasks if t.section == STAGE_SECTIONS["backup"]]
    assert {t.name for t in stage} >= {
        "Back up PostgreSQL (volume-snapshot) and wait until Completed",
        "Restore PostgreSQL from pg-cluster-backup into pg-cluster-r and wait until Running",
    }
    assert [t.status for t in stage if t.name.startswith("Back up Redis")] == ["crit"]


def test_junit_has_a_backup_case_per_database(results: RunResults, tmp_path: Path) -> None:
    write_reports(results, tmp_path, [])
    root = ET.parse(tmp_path / "junit.xml").getroot()  # noqa: S314 - written by this test
    (suite,) = [s for s in root.iter("testsuite") if s.get("name") == BACKUP_SUITE]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    cases = {case.get("classname"): case for case in suite.iter("testcase")}
    failure = cases["backup.redis"].find("failure")
    assert failure is not None and "failed to create volume snapshot: no space" in str(failure.get("message"))
    skipped = cases["backup.elasticsearch"].find("skipped")
    assert skipped is not None and skipped.get("message") == "backup.methods.elasticsearch is none"
    assert cases["backup.postgresql"].get("name") == ("PostgreSQL: volume-snapshot backup, restore, markers read back")


def test_the_verdict_names_the_database_whose_backup_failed_and_not_its_deployment(results: RunResults) -> None:
    summary = render_summary(results)
    assert summary["verdict"] == "backup and restore failed for 1 of 3 databases (redis)"
    redis = next(d for d in summary["databases"] if d["key"] == "redis")
    assert (redis["ready"], redis["cause"]) == (True, None)
    assert [b["outcome"] for b in summary["backups"]] == ["passed", "failed", "passed", "skipped"]
    pg = summary["backups"][0]
    assert (pg["size"], pg["markersReadBack"], pg["restoredCluster"]) == ("48Mi", "passed", "pg-cluster-r")


def test_every_summary_field_of_the_stage_is_documented(results: RunResults) -> None:
    documented = set(re.findall(r"^\| `([^`]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    missing = sorted(set(_key_paths(render_summary(results))) - documented)
    assert not missing, f"docs/reports.md does not describe: {missing}"


def test_a_saved_backup_run_renders_again_into_identical_files(
    results: RunResults, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_reports(results, tmp_path / "run", [])
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["backups"][1]["cause"].startswith("backup: ")
    assert saved["steps"][-1]["stage"] == "backup"
    code = main(["report", "--results", str(tmp_path / "run" / "results.json"), "--out", str(tmp_path / "again")])
    assert code == 0
    assert (
        capsys.readouterr().out.splitlines()[0] == "❌ dbstack: backup and restore failed for 1 of 3 databases (redis)"
    )
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert [(b["database"], b["outcome"], b["markersReadBack"]) for b in summary["backups"]] == [
        ("postgresql", "passed", "passed"),
        ("redis", "failed", "not_run"),
        ("qdrant", "passed", "passed"),
        ("elasticsearch", "skipped", "not_run"),
    ]
    assert written_files(tmp_path / "again") == written_files(tmp_path / "run")
