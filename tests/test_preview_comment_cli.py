"""`dbstack preview-comment --format json`: the exact envelope the publish job posts for a removed, an expired and a
deployed preview, and the warnings and refusals it prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dbstack.cli.main import main
from dbstack.run.results import Outcome, RunResults

SHA = "0123456789abcdef0123456789abcdef01234567"
RUN = "https://github.com/o/r/actions/runs/1"


def envelope(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["preview-comment", "--format", "json", "--idle-hours", "24", *args]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_the_removed_note_updates_only_and_marks_the_deployment_inactive(capsys: pytest.CaptureFixture[str]) -> None:
    assert envelope(capsys, "--removed", "--pr", "1", "--run-url", RUN) == {
        "pr": 1,
        "body": "<!-- dbstack-preview -->\n### dbstack preview for #1: 🗑️ removed\n\nThe pull request was closed, so "
        f"namespace `pr-1` and its databases were removed ([teardown log]({RUN})).\n",
        "createIfMissing": False,
        "deployment": {
            "environment": "pr-1",
            "state": "inactive",
            "ref": None,
            "logUrl": None,
            "description": "preview removed",
        },
    }


def test_the_expired_note_says_how_long_and_how_to_get_a_preview_back(capsys: pytest.CaptureFixture[str]) -> None:
    data = envelope(capsys, "--expired", "--pr", "7", "--run-url", RUN)
    assert data["body"] == (
        "<!-- dbstack-preview -->\n### dbstack preview for #7: ⏸️ expired — push or run the redeploy to recreate\n\n"
        f"Nothing was deployed to namespace `pr-7` for 24 h, so the sweep removed it ([sweep log]({RUN})). Push a "
        "commit, or run the Preview workflow by hand with operation `redeploy` and pull request 7, to get a fresh "
        "preview.\n"
    )
    assert (data["createIfMissing"], data["deployment"]["state"]) == (False, "inactive")


def write_results(path: Path, *, passed: bool) -> Path:
    run = RunResults(
        run_id="r",
        started_at=0.0,
        ended_at=1.0,
        cluster_kind="existing",
        profile="ci",
        namespace="pr-7",
        versions={},
        smoke_outcome=Outcome.PASSED if passed else Outcome.FAILED,
        smoke_cause=None if passed else "boom",
    )
    path.write_text(json.dumps(run.to_json()), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("passed", "state", "description"), [(True, "success", "preview ready"), (False, "failure", "preview failed")]
)
def test_a_deployed_preview_records_its_commit_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], passed: bool, state: str, description: str
) -> None:
    results = write_results(tmp_path / "results.json", passed=passed)
    data = envelope(capsys, "--results", str(results), "--pr", "7", "--head-sha", SHA, "--run-url", RUN)
    assert data["createIfMissing"] is True
    assert data["deployment"] == {
        "environment": "pr-7",
        "state": state,
        "ref": SHA,
        "logUrl": RUN,
        "description": description,
    }
    assert data["body"].startswith("<!-- dbstack-preview -->\n### dbstack preview for #7: ")


def test_arguments_the_comment_cannot_use_are_dropped_with_a_warning_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_results(tmp_path / "results.json", passed=True)
    argv = ["--results", str(results), "--pr", "7", "--head-sha", "HEAD", "--run-url", "http://x", "--trace-url", "t"]
    assert main(["preview-comment", "--format", "json", "--idle-hours", "24", *argv]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["deployment"] is None
    assert captured.err.splitlines() == [
        "dbstack preview-comment: warning: --run-url 'http://x' is not an https:// URL; the comment has no run link",
        "dbstack preview-comment: warning: --head-sha 'HEAD' is not a commit hash (7 to 64 hex digits, lower case); "
        "the comment names no commit",
        "dbstack preview-comment: warning: --trace-url 't' is not a Dagger Cloud trace URL; the comment has no trace "
        "link",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pr", "0", "--removed"], "--pr must be a positive pull request number, got 0"),
        (["--pr", "7"], "give --results FILE (a preview run), --removed (torn down) or --expired (swept)"),
    ],
)
def test_preview_comment_refusals(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-comment", "--idle-hours", "24", *args]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", message + "\n")


def test_a_results_file_it_cannot_use_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.json").write_text('{"schema_version": 999}', encoding="utf-8")
    (tmp_path / "a-dir").mkdir()
    cases = {
        "old.json": f"{tmp_path / 'old.json'}: not a results.json written by dbstack "
        "(results schema_version 999 is not 1)",
        "a-dir": f"--results {tmp_path / 'a-dir'}: is a directory, not a regular file",
        "absent.json": f"{tmp_path / 'absent.json'}: no such file (pass --allow-missing to comment that the run wrote "
        "no results)",
    }
    for name, message in cases.items():
        assert main(["preview-comment", "--idle-hours", "24", "--pr", "7", "--results", str(tmp_path / name)]) == 2
        assert capsys.readouterr().err == message + "\n"
