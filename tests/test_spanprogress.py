"""Plan steps as named spans in Dagger's progress view: one per step, open while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.run.progress import Progress
from dbstack.run.results import Outcome, StepResult
from dbstack.run.spanprogress import SpanProgress

VALUES = Path(__file__).resolve().parents[1] / "values"


@dataclass
class FakeSpan:
    name: str
    events: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    ended: int = 0

    def add_event(self, name: str) -> None:
        self.events.append(name)

    def set_attribute(self, key: str, value: str) -> None:
        self.attributes[key] = value

    def end(self) -> None:
        self.ended += 1


class Recorder(Progress):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def step_started(self, step: object, at: float) -> None:
        self.seen.append("started")

    def close(self) -> None:
        self.seen.append("closed")


def test_a_step_is_one_span_named_by_its_title_ended_with_its_outcome() -> None:
    step = build_plan(load_config(VALUES)).steps[0]
    spans: list[FakeSpan] = []

    def start(name: str) -> FakeSpan:
        spans.append(FakeSpan(name))
        return spans[-1]

    progress = SpanProgress(start)
    progress.step_started(step, 0.0)
    progress.waiting(step, "CRDs Established", 1.0)
    progress.waiting(step, "CRDs Established", 2.0)
    progress.step_finished(step, StepResult(step.id, step.title, step.kind.value, None, Outcome.PASSED), 3.0)
    (span,) = spans
    assert (span.name, span.events, span.attributes, span.ended) == (
        step.title,
        ["waiting: CRDs Established"],
        {"dbstack.outcome": "passed"},
        1,
    )


def test_spans_still_open_when_the_run_ends_are_ended_and_events_are_forwarded() -> None:
    steps = build_plan(load_config(VALUES)).steps[:2]
    spans: list[FakeSpan] = []

    def start(name: str) -> FakeSpan:
        spans.append(FakeSpan(name))
        return spans[-1]

    also = Recorder()
    progress = SpanProgress(start, also=also)
    for step in steps:
        progress.step_started(step, 0.0)
    progress.close()
    assert [s.ended for s in spans] == [1, 1]
    assert also.seen == ["started", "started", "closed"]
