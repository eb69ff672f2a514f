"""The one interface between the orchestration and a cluster: run a command, get its exit code and output."""

from __future__ import annotations

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


class Runner(Protocol):
    """Runs kubectl and helm against one cluster. Implementations: the host (kubectl and helm on PATH), a Dagger
    toolbox container bound to k3s, and the simulated cluster in tests."""

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        """Run `command` to completion or until `timeout_s`; never raise for a non-zero exit."""
        ...
