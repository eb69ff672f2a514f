"""A stand-in for the kubectl/helm toolbox container: records every exec and answers it from a function (the
simulated cluster, or a script), the way dagger.Container would after running it.

It behaves like the Dagger 0.21 engine where that matters: `timeout N` is busybox's (the alpine toolbox), which
ends the command with SIGTERM at the limit, so the exec exits 143, never 124; and an exit code the exec's
`expect` does not accept raises dagger.ExecError carrying stdout and stderr. With `expect=ReturnType.ANY` that is
still every code from 128 to 191 (core/container.go ReturnTypes.ReturnCodes: "likely from exiting via a signal")."""

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
BUSYBOX_TIMEOUT_EXIT = 143
"""busybox `timeout` execs the command and signals it with SIGTERM at the limit: the shell sees 128 + 15."""


def accepted_exits(expect: ReturnType | None) -> set[int]:
    """The exit codes an exec returns for instead of raising (the engine's ReturnCodes)."""
    if expect is ReturnType.ANY:
        return {*range(128), *range(192, 256)}
    if expect is ReturnType.FAILURE:
        return {*range(1, 128), *range(192, 256)}
    return {0}


@dataclass
class Exec:
    argv: list[str]
    stdin: str | None
    expect: ReturnType | None
    env: dict[str, str]


@dataclass
class FakeFile:
    text: str

    async def contents(self) -> str:
        return self.text


@dataclass
class FakeToolbox:
    """Stands in for dagger.Container: `with_*` return new values, `sync` runs the recorded exec."""

    answer: Answer
    log: list[Exec] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    pending: Exec | None = None
    result: CommandResult | None = None
    files: dict[str, str] = field(default_factory=dict)
    """What an exec left in the container, by path (a test's answer puts files here)."""
    engine_delay_s: float = 0.0
    """How long the engine itself takes around each exec (math.inf: an engine call that never answers)."""

    def with_env_variable(self, name: str, value: str) -> Self:
        return replace(self, env={**self.env, name: value})

    def with_exec(self, args: list[str], *, stdin: str | None = "", expect: ReturnType | None = None) -> Self:
        return replace(self, pending=Exec(list(args), stdin, expect, dict(self.env)))

    async def sync(self) -> Self:
        assert self.pending is not None, "sync before any exec"
        self.log.append(self.pending)
        argv = self.pending.argv
        assert argv[0] == "timeout", argv
        limit = float(argv[1])
        command = Command(tuple(argv[2:]), self.pending.stdin or None)
        await trio.sleep(self.engine_delay_s)
        with trio.move_on_after(limit) as cut:
            result = await self.answer(command, limit)
        if cut.cancelled_caught:
            result = CommandResult(BUSYBOX_TIMEOUT_EXIT, "", "")
        elif result.timed_out:  # "ran until its limit, printing this": busybox cuts it at the limit
            await trio.sleep_until(cut.deadline)
            result = CommandResult(BUSYBOX_TIMEOUT_EXIT, result.stdout, result.stderr)
        if result.exit_code not in accepted_exits(self.pending.expect):
            raise exec_error(argv, result)
        return replace(self, result=result)

    def _done(self) -> CommandResult:
        assert self.result is not None, "output read before sync"
        return self.result

    async def exit_code(self) -> int:
        return self._done().exit_code

    async def stdout(self) -> str:
        return self._done().stdout

    async def stderr(self) -> str:
        return self._done().stderr

    def file(self, path: str) -> FakeFile:
        self._done()
        return FakeFile(self.files[path])


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


def exec_error(argv: list[str], result: CommandResult) -> dagger.ExecError:
    """The engine's error for an exec whose exit code was not expected (core/exec_error.go: output trimmed)."""
    error = query_error(
        f'process "{" ".join(argv)}" did not complete successfully: exit code: {result.exit_code}',
        {
            "_type": "EXEC_ERROR",
            "cmd": argv,
            "exitCode": result.exit_code,
            "stdout": result.stdout.strip(),
            "stderr": result.stderr.strip(),
        },
    )
    assert isinstance(error, dagger.ExecError)
    return error
