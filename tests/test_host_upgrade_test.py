"""`dbstack upgrade-test` on the host when it cannot start: what it says, what it returns, and the base's steps it
records as not run behind the failed preflight."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dbstack.cli.main import EXIT_UNREACHABLE, main

NO_TOOLS = "kubectl and helm not found on PATH; install them or run the pipeline through the Dagger module"


def test_an_upgrade_test_that_cannot_start_records_the_base_plan_not_run(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "base"
    shutil.copytree(values_dir, base)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    out = tmp_path / "out"
    argv = ["upgrade-test", "--values", str(values_dir), "--base-values", str(base), "--profile", "ci"]
    assert main([*argv, "--out", str(out)]) == EXIT_UNREACHABLE
    captured = capsys.readouterr()
    assert captured.err == f"dbstack upgrade-test: {NO_TOOLS}\n"
    assert captured.out == f"upgrade-test failed before it started; reports in {out}\n"
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    steps = [(s["id"], s["outcome"], s["cause"]) for s in saved["steps"]]
    assert steps[0] == ("preflight", "failed", NO_TOOLS)
    assert steps[1:3] == [
        ("snapshot-crds", "not_run", "not run: preflight failed"),
        ("snapshot-controller", "not_run", "not run: preflight failed"),
    ]
    assert len(steps) == 13 and saved["profile"] == "ci" and not saved["passed"]
    assert {"junit.xml", "summary.md", "summary.json"} <= {p.name for p in out.iterdir()}
