"""The Runner over a Dagger container: every command is one `with_exec` in the kubectl/helm toolbox, named in the
progress view by a span of ours unless it is a routine read (the failure watch's looks, 2 every 5 s per database,
would bury the steps' own commands). The engine still records its own `exec` span for every exec, routine or not.

Each exec carries a fresh nonce, so Dagger never answers a read of live cluster state from its layer cache, and
returns its exit code instead of raising (`expect=ANY`) for every code but 128-191: those the engine raises as an
ExecError whatever `expect` says, and that is how a command cut by its limit comes back, since busybox `timeout`
(the alpine toolbox) ends it with SIGTERM (143), never 124. The time limit is enforced twice: by `timeout` inside
the container (the command stops cleanly) and by a cancel scope around the engine call (a stuck engine call stops
too).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol, Self

import anyio
from dagger import ExecError, QueryError, ReturnType

from dbstack.plan.model import Command
from dbstack.run.runner import SIGNAL_EXITS, CommandResult, signal_name
from dbstack.text import first_line

NONCE_VARIABLE = "DBSTACK_EXEC_NONCE"
TIMEOUT_EXIT = 124
"""What coreutils `timeout` returns when the limit is hit."""
LIMIT_SIGNAL_EXITS = (137, 143)
"""Killed by SIGKILL / SIGTERM: busybox `timeout` ends the command this way (the engine raises for both)."""
ENGINE_GRACE_S = 60.0
"""How much longer than the command's own limit the engine call may take (scheduling, output transfer)."""
ENGINE_FAILURE_EXIT = 125
"""Exit code reported when the engine itself failed to run the command (nothing ran, or the result is unknown)."""


class ExecContainer(Protocol):
    """The part of `dagger.Container` the runner uses; tests pass a recording fake."""

    def with_env_variable(self, name: str, value: str) -> Self: ...

    def with_exec(self, args: list[str], *, stdin: str | None = ..., expect: ReturnType | None = ...) -> Self: ...

    async def sync(self) -> Self: ...

    async def exit_code(self) -> int: ...

    async def stdout(self) -> str: ...

    async def stderr(self) -> str: ...


Span = Callable[[str], AbstractContextManager[object]]


def _no_span(_name: str) -> AbstractContextManager[object]:
    return nullcontext()


def timed_argv(command: Command, timeout_s: float) -> list[str]:
    """The argv the container runs: the command under `timeout`, whole seconds, at least one."""
    seconds = max(1, math.ceil(timeout_s))
    return ["timeout", str(seconds), *command.argv]


def span_name(command: Command, timeout_s: float) -> str:
    """What the progress view shows for one command: the command itself and how long it may take."""
    return f"{command} (up to {int(timeout_s)}s)"


class ContainerRunner:
    """Runs plan commands in a toolbox container bound to the cluster (k3s service or a user's kubeconfig)."""

    def __init__(
        self,
        toolbox: ExecContainer,
        *,
        span: Span = _no_span,
        clock: Callable[[], float] = anyio.current_time,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._toolbox = toolbox
        self._span = span
        self._clock = clock
        self._nonce = nonce

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        started = self._clock()
        exec_ = self._toolbox.with_env_variable(NONCE_VARIABLE, self._nonce()).with_exec(
            timed_argv(command, timeout_s), stdin=command.stdin or "", expect=ReturnType.ANY
        )
        with _no_span("") if command.routine else self._span(span_name(command, timeout_s)):
            try:
                with anyio.fail_after(timeout_s + ENGINE_GRACE_S):
                    done = await exec_.sync()
                    exit_code = await done.exit_code()
                    stdout = await done.stdout()
                    stderr = await done.stderr()
            except TimeoutError:
                return CommandResult(ENGINE_FAILURE_EXIT, "", f"no answer from the engine within {timeout_s}s", True)
            except ExecError as exc:  # exit codes 128-191: the engine raises for them even with expect=ANY
                return _exec_error(exc, self._clock() - started, timeout_s)
            except QueryError as exc:
                return _engine_failure(exc)
        elapsed = self._clock() - started
        return CommandResult(exit_code, stdout, stderr, timed_out=_hit_limit(exit_code, elapsed, timeout_s))


def _hit_limit(exit_code: int, elapsed_s: float, timeout_s: float) -> bool:
    if exit_code == TIMEOUT_EXIT:
        return True
    return exit_code in LIMIT_SIGNAL_EXITS and elapsed_s >= timeout_s


def _exec_error(exc: ExecError, elapsed_s: float, timeout_s: float) -> CommandResult:
    """A command that ended by a signal: timed out when its limit had passed; otherwise a failure (out of memory,
    stopped from outside) whose output is kept, with what happened as the first line of stderr."""
    if exc.exit_code not in SIGNAL_EXITS:
        return CommandResult(exc.exit_code, exc.stdout, exc.stderr)
    if _hit_limit(exc.exit_code, elapsed_s, timeout_s):
        return CommandResult(exc.exit_code, exc.stdout, exc.stderr, timed_out=True)
    signal = signal_name(exc.exit_code) or f"signal {exc.exit_code - 128}"
    note = (
        f"killed by {signal} (exit code {exc.exit_code}) after {elapsed_s:.0f} s, before its {timeout_s:.0f} s "
        "limit: out of memory, or stopped from outside"
    )
    return CommandResult(exc.exit_code, exc.stdout, "\n".join(filter(None, [note, exc.stderr])))


def _engine_failure(exc: QueryError) -> CommandResult:
    """An engine error that is not the command's own exit becomes a failed result with its first line."""
    said = first_line(str(exc)) or type(exc).__name__
    return CommandResult(ENGINE_FAILURE_EXIT, "", f"dagger engine error: {said}")
