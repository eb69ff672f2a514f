from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from dbstack.cli.main import main
from dbstack.report import write_reports
from dbstack.run.results import RunResults
from report_samples import ALL_SAMPLES, failed_run, written_files

PASSWORD = "cli-Secret-Value-42"


@pytest.fixture(autouse=True)
def _no_github_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _saved_run(folder: Path, results: RunResults) -> Path:
    diagnostics = folder / "diagnostics" / "postgresql"
    diagnostics.mkdir(parents=True)
    (diagnostics / "pods.txt").write_text(f"Events:\n  Warning FailedScheduling Insufficient cpu\n{PASSWORD}\n")
    write_reports(results, folder, secrets=[PASSWORD])
    return folder / "results.json"


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_report_renders_a_saved_run_into_identical_files(
    sample: Callable[[], RunResults], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results_file = _saved_run(tmp_path / "run", sample())
    code = main(["report", "--results", str(results_file), "--out", str(tmp_path / "again")])
    assert code == 0
    assert written_files(tmp_path / "again") == written_files(tmp_path / "run")
    assert (
        capsys.readouterr().out.splitlines()[0]
        == json.loads(results_file.with_name("summary.json").read_text())["headline"]
    )


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
