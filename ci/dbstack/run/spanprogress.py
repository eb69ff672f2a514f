"""Progress as named spans: each plan step is one span in Dagger's progress view (and its traces), open while the
step runs, so a user watching sees which step is being waited on and what it waits for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dbstack.plan.model import Step
from dbstack.run.progress import Progress
from dbstack.run.results import StepResult


class SpanLike(Protocol):
    def add_event(self, name: str) -> object: ...

    def set_attribute(self, key: str, value: str) -> object: ...

    def end(self) -> object: ...


class SpanProgress(Progress):
    """Opens a span named after the step when it starts; notes each new wait as an event; ends it with the
    outcome. Forwards every event to `also` (plain log lines) as well."""

    def __init__(self, start_span: Callable[[str], SpanLike], also: Progress | None = None) -> None:
        self._start_span = start_span
        self._also = also or Progress()
        self._open: dict[str, SpanLike] = {}
        self._last_wait: dict[str, str] = {}

    def step_started(self, step: Step, at: float) -> None:
        self._open[step.id] = self._start_span(step.title)
        self._also.step_started(step, at)

    def waiting(self, step: Step, what: str, at: float) -> None:
        span = self._open.get(step.id)
        if span is not None and self._last_wait.get(step.id) != what:
            self._last_wait[step.id] = what
            span.add_event(f"waiting: {what}")
        self._also.waiting(step, what, at)

    def step_finished(self, step: Step, result: StepResult, at: float) -> None:
        span = self._open.pop(step.id, None)
        if span is not None:
            span.set_attribute("dbstack.outcome", result.outcome.value)
            span.end()
        self._also.step_finished(step, result, at)

    def tick(self, at: float) -> None:
        self._also.tick(at)

    def close(self) -> None:
        for span in self._open.values():
            span.end()
        self._open.clear()
        self._also.close()
