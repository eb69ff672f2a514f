"""Live progress of a run: a redrawn table per database on a terminal, plain timestamped lines in CI.

What a tool said reaches the screen through `shown` (masking and printable text, as the reports have it), and a
closed or failing output only stops the display, never the run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from dbstack.masking import mask
from dbstack.plan.model import Step
from dbstack.run.results import StepResult
from dbstack.text import first_line, printable


def masked_printable(text: str) -> str:
    return mask(printable(text))


class Progress:
    """What the orchestrator reports as it goes. `at` is the run's clock (unix seconds). Does nothing by itself."""

    ticks = False
    """True when the display wants `tick` about once a second (to advance elapsed times)."""

    def step_started(self, step: Step, at: float) -> None:
        """A step began (its needs are met)."""

    def waiting(self, step: Step, what: str, at: float) -> None:
        """The step now waits on `what`, e.g. "Cluster Creating; pods 1/2 ready"."""

    def step_finished(self, step: Step, result: StepResult, at: float) -> None:
        """The step ended with `result.outcome`."""

    def tick(self, at: float) -> None:
        """Time passed."""

    def close(self) -> None:
        """The run is over."""


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


class _Display(Progress):
    def __init__(self, stream: TextIO, shown: Callable[[str], str] = masked_printable) -> None:
        self.stream = stream
        self.shown = shown
        self._closed = False

    def _write(self, text: str) -> None:
        """Write and flush; once the output is gone (`dbstack deploy | head`), stop showing, go on working."""
        if self._closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self._closed = True


class PlainProgress(_Display):
    """One timestamped line per event, for logs (CI): `2026-01-01T00:00:00Z cluster:redis waiting: ...`."""

    def __init__(self, stream: TextIO, shown: Callable[[str], str] = masked_printable) -> None:
        super().__init__(stream, shown)
        self._last_wait: dict[str, str] = {}

    def _line(self, at: float, step: Step, text: str) -> None:
        self._write(f"{_stamp(at)} {step.id} {self.shown(text)}\n")

    def step_started(self, step: Step, at: float) -> None:
        self._line(at, step, f"started: {step.title}")

    def waiting(self, step: Step, what: str, at: float) -> None:
        if self._last_wait.get(step.id) != what:
            self._last_wait[step.id] = what
            self._line(at, step, f"waiting: {what}")

    def step_finished(self, step: Step, result: StepResult, at: float) -> None:
        took = f" after {_seconds(result.duration_s)}" if result.duration_s is not None else ""
        cause = first_line(result.cause)
        self._line(at, step, f"{result.outcome.value}{took}" + (f": {cause}" if cause else ""))


@dataclass
class _Lane:
    """One row of the terminal table: a database (its addon and cluster steps) or an infrastructure step."""

    name: str
    started_at: float
    phase: str = "starting"
    what: str = ""
    ended_at: float | None = None


class TtyProgress(_Display):
    """A table redrawn in place: one row per database or infrastructure step with phase, elapsed, waiting on."""

    ticks = True

    def __init__(self, stream: TextIO, shown: Callable[[str], str] = masked_printable) -> None:
        super().__init__(stream, shown)
        self._lanes: dict[str, _Lane] = {}
        self._drawn = 0
        self._now = 0.0

    def _lane(self, step: Step, at: float) -> _Lane:
        name = step.database or step.id
        if name not in self._lanes:
            self._lanes[name] = _Lane(name, at)
        return self._lanes[name]

    def step_started(self, step: Step, at: float) -> None:
        lane = self._lane(step, at)
        lane.phase, lane.what, lane.ended_at = step.kind.value, step.title, None
        self.tick(at)

    def waiting(self, step: Step, what: str, at: float) -> None:
        self._lane(step, at).what = what
        self.tick(at)

    def step_finished(self, step: Step, result: StepResult, at: float) -> None:
        lane = self._lane(step, at)
        lane.phase = f"{step.kind.value} {result.outcome.value}"
        lane.what = first_line(result.cause)
        if not result.outcome.ok or step.kind.value in ("cluster", "uninstall-cluster") or not step.database:
            lane.ended_at = at
        self.tick(at)

    def tick(self, at: float) -> None:
        self._now = max(self._now, at)
        rows = [self._row(lane) for lane in self._lanes.values()]
        width = _terminal_width()
        out = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        out += "".join(row[:width] + "\n" for row in rows)
        self._write(out)
        self._drawn = len(rows)

    def _row(self, lane: _Lane) -> str:
        elapsed = (lane.ended_at or self._now) - lane.started_at
        what = " ".join(self.shown(lane.what).split())
        return f"{lane.name:<22} {lane.phase:<24} {_seconds(max(elapsed, 0.0)):>7}  {what}"


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 160


def make_progress(
    mode: str,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    shown: Callable[[str], str] = masked_printable,
) -> Progress:
    """`tty`, `plain`, or `auto`: the table when `stream` is a terminal outside CI, else plain lines. `shown`
    prepares every text for the screen (by default: credentials masked, control characters dropped)."""
    stream = stream or sys.stdout
    env = os.environ if env is None else env
    if mode == "tty" or (mode == "auto" and stream.isatty() and not env.get("CI")):
        return TtyProgress(stream, shown)
    return PlainProgress(stream, shown)
