"""The host commands' exact words and files where a run is interrupted, fails, or cannot start; the commands the
preflight runs; and the plan texts' lines for cautions, waits and cleanup steps. In-process, so the mutation run
credits them."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import anyio
import pytest
from dbstack.cli import host as hostcli
from dbstack.cli import upgrade as upgradecli
from dbstack.cli.main import EXIT_INTERRUPTED, EXIT_UNREACHABLE, CliError, build_parser, main, prepare_out
from dbstack.plan.model import Command
from dbstack.run import orchestrator
from dbstack.run.hostrunner import HostRunner
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import Failure, Latencies, Scenario, SimCluster

NO_TOOLS = "kubectl and helm not found on PATH; install them or run the pipeline through the Dagger module"


def quick(**failures: Failure) -> SimCluster:
    return SimCluster(Scenario(latencies=Latencies.uniform(0.001), failures=failures))


class InterruptedAfter:
    """A cluster where Ctrl-C (SIGINT to this process) arrives when the command numbered `calls` + 1 starts."""

    def __init__(self, calls: int) -> None:
        self.inner = quick()
        self.calls = calls

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if self.calls == 0:
            os.kill(os.getpid(), signal.SIGINT)
        self.calls -= 1
        return await self.inner.run(command, timeout_s=timeout_s)


def interrupting_tools(tmp_path: Path) -> str:
    """kubectl that presses Ctrl-C for the caller (SIGINT to its parent), so preflight never ends."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("kubectl", "helm"):
        (bin_dir / name).write_text("#!/bin/sh\nkill -INT $PPID\nsleep 5\n")
        (bin_dir / name).chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def upgrade_args(values_dir: Path, out: Path, *extra: str) -> list[str]:
    base = values_dir.parent / "base"
    if not base.exists():
        shutil.copytree(values_dir, base)
    return ["upgrade-test", "--values", str(values_dir), "--base-values", str(base), "--out", str(out), *extra]


def test_upgrade_test_interrupted_mid_run_writes_the_reports_and_says_interrupted(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = build_parser().parse_args(upgrade_args(values_dir, out, "--progress", "plain"))
    assert upgradecli.upgrade_test(args, runner=InterruptedAfter(40)) == EXIT_INTERRUPTED
    assert f"upgrade-test interrupted; reports in {out}" in capsys.readouterr().out.splitlines()
    assert (out / "summary.md").is_file()


def test_upgrade_test_interrupted_before_anything_ran_says_so(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", interrupting_tools(tmp_path))
    assert main(upgrade_args(values_dir, tmp_path / "out")) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "upgrade-test interrupted before it started\n"


def test_deploy_interrupted_before_anything_ran_says_so_on_stderr(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", interrupting_tools(tmp_path))
    assert main(["deploy", "--values", str(values_dir), "--out", str(tmp_path / "out")]) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert captured.err == "deploy interrupted before it started\n"
    assert captured.out == ""


def test_upgrade_test_with_a_failing_database_exits_1(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orchestrator, "WATCH_INTERVAL_S", 0.01)
    out = tmp_path / "out"
    args = build_parser().parse_args(upgrade_args(values_dir, out, "--progress", "plain"))
    assert upgradecli.upgrade_test(args, runner=quick(redis=Failure.CRASHLOOP)) == 1
    assert f"upgrade-test failed; reports in {out}" in capsys.readouterr().out.splitlines()


def test_upgrade_test_progress_tty_draws_the_table(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = build_parser().parse_args(upgrade_args(values_dir, out, "--progress", "tty"))
    assert upgradecli.upgrade_test(args, runner=quick()) == 0
    assert "\x1b[" in capsys.readouterr().out


def test_preflight_failure_records_a_preflight_step_with_its_title_and_time(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    out = tmp_path / "out"
    assert main(["deploy", "--values", str(values_dir), "--out", str(out)]) == EXIT_UNREACHABLE
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    first = saved["steps"][0]
    assert (first["id"], first["title"], first["outcome"], first["cause"]) == (
        "preflight",
        "Check kubectl, helm and the cluster",
        "failed",
        NO_TOOLS,
    )
    assert isinstance(first["started_at"], float) and first["started_at"] == first["ended_at"] == saved["ended_at"]


def test_teardown_that_cannot_start_records_its_profile(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "reports" / "teardown"
    assert main(["teardown", "--values", str(values_dir), "--profile", "ci"]) == EXIT_UNREACHABLE
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["profile"] == "ci"


class Recorded(HostRunner):
    """The host's kubectl and helm, with each command and its timeout noted."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env=env)
        self.calls: list[tuple[tuple[str, ...], float]] = []

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        self.calls.append((command.argv, timeout_s))
        return await super().run(command, timeout_s=timeout_s)


def test_preflight_runs_kubectl_version_json_and_helm_version_within_30_seconds(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    server = {"clientVersion": {"major": "1", "minor": "31"}, "serverVersion": {"major": "1", "minor": "31"}}
    scripts = {
        "kubectl": f"""[ "$*" = "version -o json" ] && echo '{json.dumps(server)}'""",
        "helm": "echo v3.14.0",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    runner = Recorded(env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    anyio.run(hostcli.preflight, runner)
    assert runner.calls == [
        (("kubectl", "version", "-o", "json"), 30),
        (("helm", "version", "--template={{.Version}}"), 30),
    ]


def test_a_folder_that_exists_but_cannot_be_written_is_refused() -> None:
    # /proc/sys is read-only even for root, which may write into any folder it owns.
    with pytest.raises(CliError) as caught:
        prepare_out(Path("/proc/sys"))
    assert str(caught.value) == "--out /proc/sys: the folder is not writable"


def test_a_results_file_nested_too_deeply_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "results.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["report", "--results", str(deep), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == f"dbstack report: {deep} is nested too deeply to be a results.json\n"


def test_the_parser_makes_paths_of_values_and_kubeconfig() -> None:
    deploy = build_parser().parse_args(["deploy", "--values", "v"])
    assert deploy.values == Path("v")
    upgrade = build_parser().parse_args(["upgrade-test", "--base-values", "b", "--kubeconfig", "k"])
    assert upgrade.kubeconfig == Path("k")


def test_the_upgrade_plan_names_its_cautions_and_the_upgrade_wait(
    values_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = values_dir.parent / "base"
    shutil.copytree(values_dir, base)
    redis = values_dir / "redis.yaml"
    redis.write_text(redis.read_text().replace("\nstorage: 20\n", "\nstorage: 30\n", 1))
    assert main(["plan", "--values", str(values_dir), "--base-values", str(base)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("Cautions (what only the cluster can tell):")
    assert lines[at + 1] == (
        "  redis-cluster's redis volumes grow 20 -> 30 Gi: KubeBlocks expands them in place only where their "
        "StorageClass has allowVolumeExpansion (k3s's local-path has not); otherwise the upgrade of redis-cluster "
        "does not finish"
    )
    assert (
        "      done when: kubectl wait clusters.apps.kubeblocks.io/redis-cluster -n default "
        "'--for=jsonpath={.status.phase}=Running' --timeout=600s"
    ) in lines


def test_the_backup_plan_marks_its_cleanup_steps(values_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = values_dir / "pipeline.yaml"
    text = pipeline.read_text().replace("backup:\n  enabled: false", "backup:\n  enabled: true", 1)
    pipeline.write_text(text.replace("    elasticsearch: full-backup\n", "    elasticsearch: none\n", 1))
    assert main(["plan", "--values", str(values_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    cleanup = "      cleanup:   runs whatever its needs ended in, once one of them ran"
    at = lines.index(
        "19. Remove the markers from PostgreSQL (pg-cluster) (after markers-write:postgresql, backup:postgresql)"
    )
    assert lines[at + 2] == cleanup
    assert lines.count(cleanup) == 6


def test_a_failed_deploy_in_github_actions_links_its_files_to_the_run(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orchestrator, "WATCH_INTERVAL_S", 0.01)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/dbstack")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    out = tmp_path / "out"
    args = build_parser().parse_args(["deploy", "--values", str(values_dir), "--out", str(out), "--progress", "plain"])
    assert hostcli.deploy(args, runner=quick(redis=Failure.CRASHLOOP)) == 1
    assert "in the reports artifact of [the run](https://github.example/acme/dbstack/actions/runs/4242)" in (
        out / "summary.md"
    ).read_text(encoding="utf-8")
