"""`dbstack teardown` on the host, what it prints and returns: done, failed with each failed step named, and not
started. The cluster is the simulated one; one stand-in runner fails a chosen command the way helm would."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbstack.cli import host as hostcli
from dbstack.cli.main import EXIT_UNREACHABLE, build_parser, main
from dbstack.plan.model import Command
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import Latencies, Scenario, SimCluster

TINY = 0.001


def sim() -> SimCluster:
    return SimCluster(Scenario(latencies=Latencies.uniform(TINY)))


@dataclass
class FailingUninstall:
    """The simulated cluster, except that uninstalling `release` fails as helm reports it."""

    cluster: SimCluster
    release: str

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if command.argv[:3] == ("helm", "uninstall", self.release):
            return CommandResult(1, "", f"Error: uninstall: Release not loaded: {self.release}: boom\nmore")
        return await self.cluster.run(command, timeout_s=timeout_s)


def teardown_args(values_dir: Path, out: Path, *extra: str) -> argparse.Namespace:
    args = build_parser().parse_args(["teardown", "--values", str(values_dir), *extra])
    args.out = out
    return args


def test_a_teardown_that_succeeds_says_done_and_returns_0(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t"
    assert hostcli.teardown(teardown_args(values_dir, out), runner=sim()) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == f"teardown done; details in {out / 'results.json'}"
    assert captured.err == ""
    steps = [s["id"] for s in json.loads((out / "results.json").read_text())["steps"]]
    assert "uninstall-cluster:redis" in steps and not any(s.startswith("uninstall-kubeblocks") for s in steps)


def test_teardown_all_removes_kubeblocks_too(values_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t"
    assert hostcli.teardown(teardown_args(values_dir, out, "--all"), runner=sim()) == 0
    steps = [s["id"] for s in json.loads((out / "results.json").read_text())["steps"]]
    assert any("kubeblocks" in s for s in steps if s.startswith("uninstall"))


def test_a_failed_uninstall_is_named_on_stderr_and_returns_1(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t"
    runner = FailingUninstall(sim(), "redis-cluster")
    assert hostcli.teardown(teardown_args(values_dir, out), runner=runner) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == f"teardown failed; details in {out / 'results.json'}"
    assert captured.err.splitlines() == [
        "uninstall-cluster:redis: failed: Error: uninstall: Release not loaded: redis-cluster: boom"
    ]


def test_a_teardown_that_cannot_start_says_why_and_where_the_results_are(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["teardown", "--values", str(values_dir)]) == EXIT_UNREACHABLE
    captured = capsys.readouterr()
    assert captured.err == (
        "dbstack teardown: kubectl and helm not found on PATH; install them or run the pipeline through the Dagger "
        "module\n"
    )
    assert captured.out == "teardown failed before it started; details in reports/teardown/results.json\n"
    text = (tmp_path / "reports" / "teardown" / "results.json").read_text(encoding="utf-8")
    assert text.startswith('{\n  "run_id": ')
    preflight = json.loads(text)["steps"][0]
    assert preflight["cause"] == (
        "kubectl and helm not found on PATH; install them or run the pipeline through the Dagger module"
    )
