"""The host runner with small real commands: exit codes, output, stdin, KUBECONFIG, timeouts, missing tools."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import anyio
import pytest
from dbstack.cli.host import PreflightFailed, preflight
from dbstack.plan.model import Command
from dbstack.run import hostrunner
from dbstack.run.hostrunner import MISSING_TOOL_EXIT, HostRunner, ToolMissing
from dbstack.run.runner import CommandResult


def run(runner: HostRunner, *argv: str, stdin: str | None = None, timeout_s: float = 30) -> CommandResult:
    async def main() -> CommandResult:
        return await runner.run(Command(argv, stdin), timeout_s=timeout_s)

    return anyio.run(main)


def fake_tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_non_zero_exit_is_returned_with_both_streams() -> None:
    result = run(HostRunner(), "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (3, "out\n", "err\n", False)
    assert not result.ok


def test_stdin_reaches_the_command() -> None:
    result = run(HostRunner(), "cat", stdin="replicas: 1\n")
    assert result.ok
    assert result.stdout == "replicas: 1\n"


def test_kubeconfig_is_passed_as_the_environment_variable(tmp_path: Path) -> None:
    result = run(HostRunner(tmp_path / "kubeconfig"), "sh", "-c", 'printf %s "$KUBECONFIG"')
    assert result.stdout == str(tmp_path / "kubeconfig")


def test_a_command_past_its_timeout_is_killed_with_its_children() -> None:
    result = run(HostRunner(), "sh", "-c", "sleep 60 & wait; echo finished", timeout_s=0.5)
    assert result.timed_out
    assert not result.ok
    assert "finished" not in result.stdout


def test_a_missing_tool_is_an_exit_code_not_an_exception() -> None:
    result = run(HostRunner(), "no-such-tool-dbstack", "get", "pods")
    assert result.exit_code == MISSING_TOOL_EXIT
    assert "no-such-tool-dbstack" in result.stderr


def test_require_names_every_missing_tool(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="kubectl and helm not found on PATH"):
        HostRunner(env={"PATH": str(tmp_path)}).require()


def test_preflight_refuses_a_kubectl_without_wait_for_create(tmp_path: Path) -> None:
    fake_tool(tmp_path, "kubectl", """echo '{"clientVersion": {"major": "1", "minor": "29"}}'""")
    fake_tool(tmp_path, "helm", "exit 0")
    runner = HostRunner(env={"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"})
    with pytest.raises(PreflightFailed, match=r"kubectl 1\.29 is too old"):
        anyio.run(preflight, runner)


def test_preflight_says_when_the_cluster_does_not_answer(tmp_path: Path) -> None:
    fake_tool(
        tmp_path,
        "kubectl",
        """echo '{"clientVersion": {"major": "1", "minor": "31"}}'
echo 'The connection to the server 127.0.0.1:6443 was refused' >&2; exit 1""",
    )
    fake_tool(tmp_path, "helm", "exit 0")
    runner = HostRunner(env={"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"})
    with pytest.raises(PreflightFailed, match="the cluster does not answer: The connection to the server"):
        anyio.run(preflight, runner)


KUBECTL_131 = (
    """echo '{"clientVersion": {"major": "1", "minor": "31"}, "serverVersion": {"major": "1", "minor": "31"}}'"""
)


def preflight_with(folder: Path, kubectl: str, helm: str) -> None:
    fake_tool(folder, "kubectl", kubectl)
    fake_tool(folder, "helm", helm)
    anyio.run(preflight, HostRunner(env={"PATH": f"{folder}{os.pathsep}/usr/bin:/bin"}))


@pytest.mark.parametrize("stdout", ["", "<html>502 Bad Gateway</html>", "{}"])
def test_preflight_blames_the_cluster_not_kubectls_age_when_kubectl_version_says_nothing_useful(
    tmp_path: Path, stdout: str
) -> None:
    kubectl = f"printf '%s' '{stdout}'; echo 'error: You must be logged in to the server (Unauthorized)' >&2; exit 1"
    with pytest.raises(
        PreflightFailed,
        match=r"^the cluster does not answer: error: You must be logged in to the server \(Unauthorized\)",
    ):
        preflight_with(tmp_path, kubectl, "echo v3.16.2")


def test_preflight_says_kubectl_printed_nothing_when_it_did_not_say_why(tmp_path: Path) -> None:
    with pytest.raises(PreflightFailed, match=r"^the cluster does not answer: kubectl version printed nothing"):
        preflight_with(tmp_path, "exit 0", "echo v3.16.2")


def test_preflight_refuses_a_helm_without_uninstall_ignore_not_found(tmp_path: Path) -> None:
    with pytest.raises(PreflightFailed, match=r"^helm 3\.12 is too old: 3\.13\+ is needed"):
        preflight_with(tmp_path, KUBECTL_131, "echo v3.12.3")


def test_preflight_says_when_helms_version_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(PreflightFailed, match=r"^could not read helm's version \(helm: broken\)"):
        preflight_with(tmp_path, KUBECTL_131, "echo 'helm: broken' >&2; exit 1")


@pytest.mark.parametrize("version", ["v3.13.0", "v3.16.2", "v4.0.1"])
def test_preflight_passes_with_a_recent_kubectl_and_helm(tmp_path: Path, version: str) -> None:
    preflight_with(tmp_path, KUBECTL_131, f"echo {version}")


def test_a_cancelled_command_is_killed_not_left_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    async def main() -> None:
        with anyio.move_on_after(1):
            await HostRunner().run(Command(("sh", "-c", f"echo $$ > {pid_file}; sleep 60")), timeout_s=120)

    anyio.run(main)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_command_that_ignores_its_stdin_is_not_an_error() -> None:
    result = run(HostRunner(), "true", stdin="x" * 2_000_000)
    assert (result.exit_code, result.timed_out) == (0, False)


def test_a_command_past_its_timeout_gets_sigterm_first_so_it_can_clean_up(tmp_path: Path) -> None:
    # Helm handles SIGTERM (it marks the release failed); only SIGKILL would leave it pending-install for good.
    marker = tmp_path / "cleaned-up"
    script = f"trap 'echo term > {marker}; exit 1' TERM; sleep 60 & wait"
    result = run(HostRunner(), "sh", "-c", script, timeout_s=0.5)
    assert result.timed_out
    assert marker.read_text() == "term\n"


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hostrunner, "TERM_GRACE_S", 0.5)
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    result = run(
        HostRunner(), "sh", "-c", f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 0.1; done", timeout_s=0.5
    )
    assert result.timed_out
    assert time.monotonic() - started < 0.5 + 0.5 + hostrunner.KILL_WAIT_S
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_require_asks_to_install_one_missing_tool_or_several(tmp_path: Path) -> None:
    (tmp_path / "kubectl").write_text("#!/bin/sh\n")
    (tmp_path / "kubectl").chmod(0o755)
    with pytest.raises(ToolMissing) as one:
        HostRunner(env={"PATH": str(tmp_path)}).require()
    assert str(one.value) == "helm not found on PATH; install it or run the pipeline through the Dagger module"
    with pytest.raises(ToolMissing) as both:
        HostRunner(env={"PATH": str(tmp_path / "empty")}).require()
    assert str(both.value) == (
        "kubectl and helm not found on PATH; install them or run the pipeline through the Dagger module"
    )
