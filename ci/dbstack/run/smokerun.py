"""The smoke suite's run inside Dagger, as data the Dagger layer wires together: the port-forward each database is
reached through, the command that keeps pytest's output and JUnit whatever stops it, and what the run's end and
the databases it could not reach mean for the Results.

Engine facts this answers (Dagger 0.21): an exec exiting 128-191 raises instead of returning, and then none of its
files can be read; a bound service that exits fails the exec bound to it; Dagger never restarts a service; and
`kubectl port-forward` exits after one reset from the pod side (kubectl issue 1169).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from dbstack.plan.model import Endpoint
from dbstack.run import smokeenv
from dbstack.run.results import CheckResult, Outcome, RunResults
from dbstack.run.runner import signal_name

FORWARD_TRIES = 5
"""Attempts of a port-forward that has never listened before its service gives up (and fails its start)."""
FORWARD_RESTART_PAUSE_S = 1
REACH_CHECK = "reach {service}:{port}"
"""The name of the failed check a database gets when the suite could not reach it."""


def forward_script(endpoint: Endpoint, pause_s: float = FORWARD_RESTART_PAUSE_S) -> str:
    """`kubectl port-forward` to the database's Service, started again whenever it ends.

    A forward that has listened once ("Forwarding from ...") is restarted for as long as the service lives, so a
    dropped connection never ends the service (which would fail the smoke exec bound to it, for every database).
    One that has never listened gives up after FORWARD_TRIES attempts, so the service fails to start with
    kubectl's own error instead of leaving Dagger's health check waiting."""
    forward = shlex.join(
        [
            "kubectl",
            "port-forward",
            "--address=0.0.0.0",
            "-n",
            endpoint.namespace,
            f"svc/{endpoint.service}",
            f"{endpoint.port}:{endpoint.port}",
        ]
    )
    target = shlex.quote(f"svc/{endpoint.service}")
    return "\n".join(
        [
            "up=/tmp/dbstack-forward-listened",
            "tries=0",
            "while :; do",
            f"  {forward} | while IFS= read -r line; do",
            "    printf '%s\\n' \"$line\"",
            '    case "$line" in "Forwarding from "*) : > "$up" ;; esac',
            "  done",
            '  if [ ! -e "$up" ]; then',
            "    tries=$((tries + 1))",
            f'    if [ "$tries" -ge {FORWARD_TRIES} ]; then',
            f'      echo "kubectl port-forward to {target} never listened in {FORWARD_TRIES} tries" >&2',
            "      exit 1",
            "    fi",
            "  fi",
            f'  echo "kubectl port-forward to {target} ended; starting it again" >&2',
            f"  sleep {pause_s:g}",
            "done",
        ]
    )


def recorded_command(argv: list[str], status_path: str) -> list[str]:
    """`argv` in a shell that writes "<exit code> <seconds>" to `status_path` and exits 0, so the exec returns
    whatever ended the command (a 137 or 143 would make the engine raise and lose every file, JUnit included)."""
    status = shlex.quote(status_path)
    folder = shlex.quote(str(Path(status_path).parent))
    script = (
        f"mkdir -p {folder}; started=$(date +%s); {shlex.join(argv)}; code=$?; "
        f'echo "$code $(($(date +%s) - started))" > {status}'
    )
    return ["sh", "-c", script]


@dataclass(frozen=True)
class SuiteExit:
    """How the suite's command ended: its exit code and how long it ran."""

    exit_code: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> SuiteExit:
        try:
            code, seconds = text.split()
            return cls(int(code), int(seconds))
        except ValueError:
            raise ValueError(f"not '<exit code> <seconds>': {text.strip()[:80]!r}") from None

    def timed_out(self, limit_s: int) -> bool:
        """coreutils `timeout` (the Python image) says 124 when it stopped the command; 137 when it also had to
        kill it; a signal exit after the limit is the limit too."""
        return self.exit_code == smokeenv.TIMEOUT_EXIT or (
            self.exit_code in smokeenv.KILLED_EXITS and self.seconds >= limit_s
        )


def killed_words(exit_code: int) -> str:
    """ "killed by SIGKILL (exit code 137)"."""
    return f"killed by {signal_name(exit_code) or f'signal {exit_code - 128}'} (exit code {exit_code})"


def record_suite(results: RunResults, ended: SuiteExit, junit: Path, limit_s: int) -> None:
    """The suite's checks on their databases and its outcome, saying plainly when the limit or a kill ended it."""
    smokeenv.record_smoke(results, ended.exit_code, junit)
    has_junit = any(d.checks for d in results.databases)
    kept = "the checks that finished are in junit.xml" if has_junit else "it left no JUnit file"
    if ended.timed_out(limit_s):
        results.smoke_outcome = Outcome.TIMED_OUT
        results.smoke_cause = f"pytest was stopped at its {limit_s} s limit ({kept}); see smoke/pytest.log"
    elif 128 <= ended.exit_code <= 191:
        results.smoke_outcome = Outcome.FAILED
        results.smoke_cause = (
            f"pytest was {killed_words(ended.exit_code)} after {ended.seconds} s, before its {limit_s} s limit: "
            f"out of memory, or stopped from outside ({kept}); see smoke/pytest.log"
        )


def container_killed_cause(exit_code: int) -> str:
    """The smoke container itself ended by a signal: the engine raised, so no file of it can be read."""
    return (
        f"the smoke container was {killed_words(exit_code)}: out of memory, or stopped from outside; "
        "its last output is in smoke/pytest.log, no JUnit file could be read"
    )


@dataclass(frozen=True)
class Unreachable:
    """A database the suite could not be pointed at (its forward never came up, its account was unreadable)."""

    endpoint: Endpoint
    cause: str


def record_unreachable(results: RunResults, unreachable: list[Unreachable], suite_ran: bool) -> None:
    """Each unreachable database gets one failed check saying why; the suite fails, and says which were still
    tested."""
    if not unreachable:
        return
    by_key = {d.key: d for d in results.databases}
    for miss in unreachable:
        name = REACH_CHECK.format(service=miss.endpoint.service, port=miss.endpoint.port)
        check = CheckResult(miss.endpoint.database, name, Outcome.FAILED, message=miss.cause)
        by_key[miss.endpoint.database].checks.append(check)
    causes = "; ".join(f"{m.endpoint.database}: {m.cause}" for m in unreachable)
    if suite_ran:
        results.smoke_outcome = Outcome.FAILED if results.smoke_outcome.ok else results.smoke_outcome
        earlier = f"; {results.smoke_cause}" if results.smoke_cause else ""
        results.smoke_cause = f"not reached, so not tested: {causes} (the other databases were tested){earlier}"
    else:
        results.smoke_outcome = Outcome.FAILED
        results.smoke_cause = f"no database could be reached, so the smoke suite did not run: {causes}"
