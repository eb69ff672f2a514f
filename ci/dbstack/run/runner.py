"""The one interface between the orchestration and a cluster: run a command, get its exit code and output."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Protocol

from dbstack.plan.model import Command


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


SIGNAL_EXITS = range(128, 192)
"""Exit codes 128+n: the process was killed by signal n. The Dagger engine treats them as signals and raises an
ExecError for them even with `expect=ReturnType.ANY` (core/container.go ReturnTypes.ReturnCodes)."""


def signal_name(exit_code: int) -> str | None:
    """`SIGTERM` for 143, `SIGKILL` for 137; None for an exit code that is not 128+n of a known signal."""
    if exit_code not in SIGNAL_EXITS:
        return None
    try:
        return signal.Signals(exit_code - 128).name
    except ValueError:
        return None


class Runner(Protocol):
    """Runs kubectl and helm against one cluster. Implementations: the host (kubectl and helm on PATH), a Dagger
    toolbox container bound to k3s, and the simulated cluster in tests."""

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        """Run `command` to completion or until `timeout_s`; never raise for a non-zero exit."""
        ...
