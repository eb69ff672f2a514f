"""A stand-in for the kubectl/helm toolbox container: records every exec and answers it from a function (the
simulated cluster, or a script), the way dagger.Container would after running it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Self

import dagger
import trio
from dagger import ReturnType
from dagger._exceptions import QueryErrorValue
from dbstack.plan.model import Command
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import SimCluster

Answer = Callable[[Command, float], Awaitable[CommandResult]]


@dataclass
class Exec:
    argv: list[str]
    stdin: str | None
    expect: ReturnType | None
    env: dict[str, str]


@dataclass
class FakeToolbox:
    """Stands in for dagger.Container: `with_*` return new values, `sync` runs the recorded exec."""

    answer: Answer
    log: list[Exec] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    pending: Exec | None = None
    result: CommandResult | None = None

    def with_env_variable(self, name: str, value: str) -> Self:
        return replace(self, env={**self.env, name: value})

    def with_exec(self, args: list[str], *, stdin: str | None = "", expect: ReturnType | None = None) -> Self:
        return replace(self, pending=Exec(list(args), stdin, expect, dict(self.env)))

    async def sync(self) -> Self:
        assert self.pending is not None, "sync before any exec"
        self.log.append(self.pending)
        argv = self.pending.argv
        assert argv[0] == "timeout", argv
        command = Command(tuple(argv[2:]), self.pending.stdin or None)
        return replace(self, result=await self.answer(command, float(argv[1])))

    def _done(self) -> CommandResult:
        assert self.result is not None, "output read before sync"
        return self.result

    async def exit_code(self) -> int:
        return self._done().exit_code

    async def stdout(self) -> str:
        return self._done().stdout

    async def stderr(self) -> str:
        return self._done().stderr


def simulated(sim: SimCluster) -> Answer:
    async def answer(command: Command, timeout_s: float) -> CommandResult:
        return await sim.run(command, timeout_s=timeout_s)

    return answer


def scripted(result: CommandResult, delay_s: float = 0.0) -> Answer:
    async def answer(command: Command, timeout_s: float) -> CommandResult:
        await trio.sleep(delay_s)
        return result

    return answer


def query_error(message: str, extensions: dict[str, object]) -> dagger.QueryError:
    """The error the client raises for an API error (an ExecError when `_type` says so)."""
    value = QueryErrorValue(message=message, extensions=extensions)
    return dagger.QueryError([value], SimpleNamespace(document=None))  # type: ignore[arg-type]
