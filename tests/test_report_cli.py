from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from dbstack.cli.main import main
from dbstack.report import write_reports
from dbstack.run.results import RunResults
from report_samples import ALL_SAMPLES, SAMPLE_HEADLINES, failed_run, written_files

PASSWORD = "cli-Secret-Value-42"
GOLDEN_RUN = Path(__file__).resolve().parent / "golden" / "report-run"
"""A saved run (results.json and one diagnostics file), written by hand-checked means and reviewed: PostgreSQL timed
out Pending, Redis failed Abnormal, Elasticsearch's addon failed, two of Qdrant's six checks failed."""
GOLDEN_HEADLINE = (
    "❌ dbstack: 3 of 4 databases failed (postgresql, redis, elasticsearch); 2 of 6 checks failed (qdrant)"
)


@pytest.fixture(autouse=True)
def _no_github_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _saved_run(folder: Path, results: RunResults) -> Path:
    diagnostics = folder / "diagnostics" / "postgresql"
    diagnostics.mkdir(parents=True)
    (diagnostics / "pods.txt").write_text(f"Events:\n  Warning FailedScheduling Insufficient cpu\n{PASSWORD}\n")
    write_reports(results, folder, secrets=[PASSWORD])
    return folder / "results.json"


@pytest.fixture
def golden_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """The golden run rendered by `dbstack report` into a new folder: the folder and what the command printed."""
    run = tmp_path / "run"
    shutil.copytree(GOLDEN_RUN, run)
    out = tmp_path / "again"
    assert main(["report", "--results", str(run / "results.json"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return out, captured.out


def test_report_prints_the_verdict_and_writes_every_file(golden_out: tuple[Path, str]) -> None:
    out, printed = golden_out
    assert printed == (
        f"{GOLDEN_HEADLINE}\nReports written to {out}: junit.xml, summary.json, summary.md, results.json\n"
    )
    assert sorted(written_files(out)) == [
        "diagnostics/postgresql/pods.txt",
        "junit.xml",
        "results.json",
        "summary.json",
        "summary.md",
    ]


def test_report_brings_the_diagnostics_along_masked(golden_out: tuple[Path, str]) -> None:
    out, _ = golden_out
    assert (out / "diagnostics" / "postgresql" / "pods.txt").read_text() == (
        "NAME                      READY   STATUS    RESTARTS   AGE\n"
        "pg-cluster-postgresql-1   0/4     Pending   0          10m\n"
        "Events:\n"
        "  Warning  FailedScheduling  0/1 nodes are available: 1 Insufficient cpu\n"
        "Environment:\n"
        "  PGPASSWORD=***\n"
    )
    assert "Golden-Run-Secret-7" in (GOLDEN_RUN / "diagnostics" / "postgresql" / "pods.txt").read_text()


def test_report_writes_the_summary_json_of_the_saved_run(golden_out: tuple[Path, str]) -> None:
    out, _ = golden_out
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["passed"], summary["headline"]) == (False, GOLDEN_HEADLINE)
    assert summary["totals"] == {
        "steps": {"passed": 5, "failed": 2, "timed_out": 1, "skipped": 3, "not_run": 1, "cancelled": 0},
        "databases": {"total": 4, "ready": 1, "notReady": 3},
        "checks": {"total": 6, "passed": 3, "failed": 2, "skipped": 1},
    }
    assert [(d["key"], d["cause"]) for d in summary["databases"]] == [
        ("postgresql", "pg-cluster-postgresql-1 Pending: 0/1 nodes are available: 1 Insufficient cpu"),
        ("redis", "Cluster redis-cluster is Abnormal: redis-cluster-redis-0 CrashLoopBackOff"),
        ("qdrant", None),
        ("elasticsearch", "Error: INSTALLATION FAILED: chart kb-addon-elasticsearch 1.0.1 not found in the repository"),
    ]
    assert summary["smoke"] == {
        "outcome": "failed",
        "cause": "2 checks failed",
        "startSeconds": 643.5,
        "durationSeconds": 20.0,
    }
    assert summary["run"]["startedAt"] == "2026-09-21T14:13:20Z"
    assert summary["run"]["durationSeconds"] == 665.0


def test_report_writes_the_junit_of_the_saved_run(golden_out: tuple[Path, str]) -> None:
    out, _ = golden_out
    root = ET.parse(out / "junit.xml").getroot()  # noqa: S314 (our own output)
    counters = ("tests", "failures", "errors", "skipped", "time")
    assert [(s.get("name"), *(s.get(c) for c in counters)) for s in [root, *root.iter("testsuite")]] == [
        ("dbstack", "19", "6", "0", "5", "665.000"),
        ("dbstack pipeline", "13", "4", "0", "4", "663.500"),
        ("smoke qdrant", "6", "2", "0", "1", "3.000"),
    ]
    smoke = root.find("testsuite[@name='dbstack pipeline']/testcase[@name='Run the smoke tests']/failure")
    assert smoke is not None and (smoke.get("message"), smoke.get("type")) == ("2 checks failed", "failed")
    pg = root.find(
        "testsuite[@name='dbstack pipeline']/testcase[@name='Deploy PostgreSQL (pg-cluster) and wait until Running']"
        "/failure"
    )
    assert pg is not None and pg.text == (
        "pg-cluster-postgresql-1 Pending: 0/1 nodes are available: 1 Insufficient cpu\n"
        "waited 600s for clusters.apps.kubeblocks.io/pg-cluster\n\n"
        "Diagnostics:\n  diagnostics/postgresql/pods.txt"
    )


def test_report_writes_the_summary_md_of_the_saved_run(golden_out: tuple[Path, str]) -> None:
    out, _ = golden_out
    lines = (out / "summary.md").read_text().splitlines()
    assert lines[0] == f"## {GOLDEN_HEADLINE}"
    for line in (
        "| Qdrant | ❌ ready, checks failed | 1.10.0 (chart 1.0.1) | default, 1 replica | 1m 36s "
        "| 3 passed, 2 failed, 1 skipped |",
        "**Deploy Redis (redis-cluster) and wait until Running** failed after 2m 00s: "
        "Cluster redis-cluster is Abnormal: redis-cluster-redis-0 CrashLoopBackOff",
        "Diagnostics in `diagnostics/postgresql/`: [pods.txt](diagnostics/postgresql/pods.txt)",
        "**Run the smoke tests** failed: 2 checks failed",
        "| Run the smoke tests | ❌ failed | +10m 44s | 20.0s | - |",
        "Run `run-20260926-1` · cluster `k3s` · profile `ci` · namespace `default` · started 2026-09-21 14:13:20 UTC"
        " · took 11m 05s",
    ):
        assert line in lines


def test_report_saves_the_run_it_read(golden_out: tuple[Path, str]) -> None:
    out, _ = golden_out
    assert json.loads((out / "results.json").read_text()) == json.loads((GOLDEN_RUN / "results.json").read_text())


@pytest.mark.parametrize("name", list(SAMPLE_HEADLINES))
def test_report_prints_each_samples_verdict_first(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(ALL_SAMPLES[name]().to_json()), encoding="utf-8")
    assert main(["report", "--results", str(saved), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == SAMPLE_HEADLINES[name]
    assert (tmp_path / "out" / "summary.md").read_text().splitlines()[0] == f"## {SAMPLE_HEADLINES[name]}"


def test_report_into_its_own_folder_changes_nothing(tmp_path: Path) -> None:
    results_file = _saved_run(tmp_path, failed_run())
    before = written_files(tmp_path)
    assert main(["report", "--results", str(results_file), "--out", str(tmp_path)]) == 0
    assert written_files(tmp_path) == before


def _valid_json() -> dict[str, object]:
    data: dict[str, object] = failed_run().to_json()
    return data


BAD_RESULTS: dict[str, Callable[[Path], object]] = {
    "not JSON": lambda p: p.write_text("{not json"),
    "a list": lambda p: p.write_text("[]"),
    "another schema version": lambda p: p.write_text(json.dumps({**_valid_json(), "schema_version": 99})),
    "a wrong outcome": lambda p: p.write_text(
        json.dumps({**_valid_json(), "smoke_outcome": "green"}),
    ),
    "a wrong field type": lambda p: p.write_text(json.dumps({**_valid_json(), "started_at": "yesterday"})),
    "a missing field": lambda p: p.write_text(json.dumps({k: v for k, v in _valid_json().items() if k != "run_id"})),
    "binary": lambda p: p.write_bytes(b"\xff\xfe\x00garbage"),
    "a directory": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("make_bad", BAD_RESULTS.values(), ids=list(BAD_RESULTS))
def test_bad_results_file_exits_2_with_one_line(
    make_bad: Callable[[Path], object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "results.json"
    make_bad(bad)
    code = main(["report", "--results", str(bad), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("dbstack report: ") and str(bad) in lines[0]
    assert "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()


def test_missing_results_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "results.json"
    assert main(["report", "--results", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert (
        capsys.readouterr().err == f"dbstack report: --results {missing}: cannot read file: No such file or directory\n"
    )


def test_wrong_field_is_named_in_the_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _valid_json()
    steps = data["steps"]
    assert isinstance(steps, list)
    steps[3]["outcome"] = "ok"
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps(data))
    assert main(["report", "--results", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "results.steps[3].outcome: 'ok' is not one of passed" in capsys.readouterr().err


def test_unwritable_output_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results_file = _saved_run(tmp_path / "run", failed_run())
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["report", "--results", str(results_file), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"dbstack report: --out {blocker / 'out'}: cannot create the folder: Not a directory"]


def test_a_results_file_from_before_findings_still_renders(tmp_path: Path) -> None:
    data = failed_run().to_json()
    for step in data["steps"]:
        del step["findings"]
    old = tmp_path / "old" / "results.json"
    old.parent.mkdir()
    old.write_text(json.dumps(data), encoding="utf-8")
    assert main(["report", "--results", str(old), "--out", str(tmp_path / "out")]) == 0
    assert "### Why it failed" in (tmp_path / "out" / "summary.md").read_text()


def test_report_links_to_the_artifact_and_run_when_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results_file = _saved_run(tmp_path / "run", failed_run())
    artifact = "https://github.com/o/r/actions/runs/7/artifacts/9"
    argv = ["report", "--results", str(results_file), "--out", str(tmp_path / "out"), "--artifact-url", artifact]
    assert main([*argv, "--run-url", "ftp://nowhere"]) == 0
    assert capsys.readouterr().err == (
        "dbstack report: warning: --run-url 'ftp://nowhere' is not an https:// URL; summary.md links to the files "
        "instead\n"
    )
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert f"in the [reports artifact]({artifact})" in markdown
    assert "](diagnostics/" not in markdown


def test_inside_github_actions_the_run_page_is_the_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results_file = _saved_run(tmp_path / "run", failed_run())
    for name, value in (("GITHUB_SERVER_URL", "https://github.com"), ("GITHUB_REPOSITORY", "o/r")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_RUN_ID", "7")
    assert main(["report", "--results", str(results_file), "--out", str(tmp_path / "out")]) == 0
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "in the reports artifact of [the run](https://github.com/o/r/actions/runs/7)" in markdown
