"""What dbstack's commands print when a report folder, a kubeconfig or the user's Ctrl-C gets in the way, run in
this process (the same cases run as subprocesses in test_hostile_input.py and test_hostcli.py)."""

from __future__ import annotations

import io
import json
import shutil
import signal
from pathlib import Path

import pytest
from dbstack.cli import host as hostcli
from dbstack.cli.main import EXIT_INTERRUPTED, EXIT_INVALID, build_parser, main
from dbstack.plan.model import Command
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import Latencies, Scenario, SimCluster

GOLDEN_RUN = Path(__file__).resolve().parent / "golden" / "report-run"


def test_a_report_file_that_cannot_be_written_is_named_with_the_system_s_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(GOLDEN_RUN, run)
    out = tmp_path / "out"
    (out / "junit.xml").mkdir(parents=True)  # where the report file goes, a folder is in the way
    assert main(["report", "--results", str(run / "results.json"), "--out", str(out)]) == EXIT_INVALID
    assert capsys.readouterr().err.splitlines() == [
        f"dbstack report: --out {out}: cannot write the reports: Is a directory"
    ]


def test_a_missing_kubeconfig_stops_deploy_before_anything_runs(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    out = tmp_path / "reports"
    argv = ["deploy", "--values", str(values_dir), "--kubeconfig", str(missing), "--out", str(out)]
    assert main(argv) == EXIT_INVALID
    assert capsys.readouterr().err.splitlines() == [
        f"dbstack deploy: --kubeconfig {missing}: cannot read file: No such file or directory"
    ]
    assert not out.exists()


class InterruptedTerminal:
    """A stdout whose user presses Ctrl-C as soon as anything is printed."""

    def write(self, text: str) -> int:
        raise KeyboardInterrupt

    def flush(self) -> None:
        pass


def test_ctrl_c_in_any_command_is_one_word_and_exit_130(
    values_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdout", InterruptedTerminal())
    assert main(["validate", "--values", str(values_dir)]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"


class CtrlCWhileKubeBlocksInstalls:
    """The simulated cluster, with the user pressing Ctrl-C once KubeBlocks' install is being waited for."""

    def __init__(self) -> None:
        quick = Latencies(api_s=0.01, helm_s=0.01, snapshot_crds_s=0.01, kubeblocks_crds_s=0.01, kubeblocks_s=600)
        self.cluster = SimCluster(Scenario(latencies=quick))
        self.pressed = False

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if not self.pressed and command.argv[:4] == ("kubectl", "rollout", "status", "deployment/kubeblocks"):
            self.pressed = True
            signal.raise_signal(signal.SIGINT)
        return await self.cluster.run(command, timeout_s=timeout_s)


def test_ctrl_c_during_deploy_says_interrupted_and_writes_what_ran_so_far(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = build_parser().parse_args(["deploy", "--values", str(values_dir), "--out", str(out), "--progress", "plain"])
    runner = CtrlCWhileKubeBlocksInstalls()
    # Python's own Ctrl-C handling, whatever runs the tests installed (asyncio takes over only from that one).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert hostcli.deploy(args, runner=runner) == EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    assert runner.pressed
    printed = capsys.readouterr()
    assert printed.out.splitlines()[-1] == f"deploy interrupted; reports in {out}"
    assert "deploy interrupted before it started" not in printed.err
    steps = {s["id"]: s["outcome"] for s in json.loads((out / "results.json").read_text(encoding="utf-8"))["steps"]}
    assert (steps["snapshot-crds"], steps["kubeblocks"], steps["addon:redis"]) == ("passed", "cancelled", "not_run")
    assert (out / "summary.md").is_file()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_teardown_on_a_terminal_redraws_a_table_in_place(
    values_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    args = build_parser().parse_args(["teardown", "--values", str(values_dir)])
    args.out = tmp_path / "t"
    assert hostcli.teardown(args, runner=SimCluster(Scenario(latencies=Latencies.uniform(0.001)))) == 0
    shown = screen.getvalue()
    assert "\x1b[J" in shown  # the table is redrawn, not one timestamped line per event
    assert shown.splitlines()[-1] == f"teardown done; details in {tmp_path / 't' / 'results.json'}"


@pytest.mark.parametrize("command", [["deploy"], ["upgrade-test", "--base-values", "base"]])
def test_without_progress_the_display_follows_the_terminal(command: list[str]) -> None:
    assert build_parser().parse_args(command).progress == "auto"


def test_dbstack_without_a_command_says_one_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == EXIT_INVALID
    assert capsys.readouterr().err.splitlines()[-1] == "dbstack: error: the following arguments are required: command"


def test_the_defaults_a_user_gets_without_the_flags() -> None:
    parser = build_parser()
    assert parser.parse_args(["deploy"]).out == Path("reports")
    assert parser.parse_args(["preview-comment", "--pr", "1"]).format == "markdown"
