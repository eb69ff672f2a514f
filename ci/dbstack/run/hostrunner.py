"""The host Runner: kubectl and helm from PATH, against the cluster a kubeconfig names."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, Process

from dbstack.plan.model import Command
from dbstack.run.runner import CommandResult

MISSING_TOOL_EXIT = 127
TERM_GRACE_S = 10.0
"""After SIGTERM, how long a command may take to stop before SIGKILL. Helm handles SIGTERM (cmd/helm/install.go and
upgrade.go cancel the operation and record the release failed); SIGKILL would leave it pending-install or
pending-upgrade, refusing every later upgrade."""
KILL_WAIT_S = 5.0


class ToolMissing(Exception):
    """kubectl or helm is not on PATH."""


class HostRunner:
    """Runs each command as a child process (no shell), with KUBECONFIG set when a kubeconfig is given.
    A command past its timeout (or cancelled) gets SIGTERM with its process group, SIGKILL `TERM_GRACE_S` later if it
    is still there, and is reported `timed_out`."""

    def __init__(self, kubeconfig: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        if kubeconfig is not None:
            self.env["KUBECONFIG"] = str(kubeconfig)
        self.name = f"host ({kubeconfig or 'default kubeconfig'})"

    def require(self, tools: Sequence[str] = ("kubectl", "helm")) -> None:
        """Raise ToolMissing naming every tool that is not on PATH."""
        missing = [tool for tool in tools if shutil.which(tool, path=self.env.get("PATH")) is None]
        if missing:
            raise ToolMissing(
                f"{' and '.join(missing)} not found on PATH; install {'them' if len(missing) > 1 else 'it'} "
                "or run the pipeline through the Dagger module"
            )

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        executable = shutil.which(command.argv[0], path=self.env.get("PATH"))
        if executable is None:
            return CommandResult(MISSING_TOOL_EXIT, "", f"{command.argv[0]}: command not found on PATH")
        process = await anyio.open_process(
            [executable, *command.argv[1:]],
            stdin=subprocess.PIPE if command.stdin is not None else subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        timed_out = False
        try:
            with anyio.move_on_after(timeout_s) as deadline:
                async with anyio.create_task_group() as group:
                    group.start_soon(_drain, process.stdout, stdout)
                    group.start_soon(_drain, process.stderr, stderr)
                    if command.stdin is not None and process.stdin is not None:
                        await _feed(process.stdin, command.stdin)
                    await process.wait()
            timed_out = deadline.cancelled_caught
        finally:
            if process.returncode is None:
                await _kill(process)
            with anyio.CancelScope(shield=True):
                await process.aclose()
        exit_code = process.returncode if process.returncode is not None else -signal.SIGKILL
        return CommandResult(exit_code, _text(stdout), _text(stderr), timed_out)


async def _feed(stdin: ByteSendStream, text: str) -> None:
    """Send `text` and close stdin; a command that exits without reading it all is not an error here."""
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
        await stdin.send(text.encode())
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
        await stdin.aclose()


async def _drain(stream: ByteReceiveStream | None, into: list[bytes]) -> None:
    if stream is None:
        return
    async for chunk in stream:
        into.append(chunk)


async def _kill(process: Process) -> None:
    """Stop the command and whatever it started (a shell's children keep the pipes open otherwise): SIGTERM so it
    can clean up, SIGKILL if it has not exited after `TERM_GRACE_S`."""
    with anyio.CancelScope(shield=True):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with anyio.move_on_after(TERM_GRACE_S):
            await process.wait()
        with contextlib.suppress(ProcessLookupError):  # Whatever ignored SIGTERM, or outlived the command.
            os.killpg(process.pid, signal.SIGKILL)
        with anyio.move_on_after(KILL_WAIT_S):
            await process.wait()


def _text(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", errors="replace")
