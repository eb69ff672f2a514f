"""MARKERS steps through the orchestrator: the smoke suite's marker check does the step's work (through the
MarkerRunner the Dagger layer provides), its check lands on its database, and a stage's outcome never changes the
database's own (its deployment)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Markers, Plan, Step, StepKind
from dbstack.run.orchestrator import NO_MARKER_RUNNER
from dbstack.run.results import CheckResult, Outcome, RunResults
from dbstack.run.smokeenv import marker_check_name
from dbstack.sim.cluster import Scenario, SimCluster, run_simulated

VALUES = Path(__file__).resolve().parents[1] / "values"


def plan_with_markers(phase: str = "write") -> Plan:
    plan = build_plan(load_config(VALUES, "ci"))
    endpoint = next(e for e in plan.endpoints if e.database == "postgresql")
    step = Step(
        id="markers-write:postgresql",
        title="Write markers into PostgreSQL",
        kind=StepKind.MARKERS,
        needs=("cluster:postgresql",),
        commands=(),
        done_when=(),
        timeout_s=600,
        database="postgresql",
        markers=Markers(phase, endpoint),
        stage="backup",
    )
    return replace(plan, steps=(*plan.steps, step))


class Recorder:
    """A MarkerRunner that answers with a fixed outcome and remembers what it was asked."""

    def __init__(self, outcome: Outcome, message: str | None = None) -> None:
        self.outcome, self.message = outcome, message
        self.asked: list[tuple[Markers, float]] = []

    async def __call__(self, markers: Markers, seconds: float) -> CheckResult:
        self.asked.append((markers, seconds))
        name = marker_check_name(markers.phase, markers.context)
        return CheckResult(markers.endpoint.database, name, self.outcome, 0.5, self.message)


def run(plan: Plan, tmp_path: Path, runner: Recorder | None) -> RunResults:
    return run_simulated(plan, SimCluster(Scenario()), tmp_path, markers=runner)


def postgresql(results: RunResults) -> tuple[Outcome, list[tuple[str, Outcome]]]:
    database = next(d for d in results.databases if d.key == "postgresql")
    return database.outcome, [(c.name, c.outcome) for c in database.checks]


def test_a_marker_step_runs_the_suite_s_check_after_its_cluster_and_keeps_the_check(tmp_path: Path) -> None:
    recorder = Recorder(Outcome.PASSED)
    results = run(plan_with_markers(), tmp_path, recorder)

    step = next(s for s in results.steps if s.id == "markers-write:postgresql")
    cluster = next(s for s in results.steps if s.id == "cluster:postgresql")
    assert step.outcome is Outcome.PASSED
    assert step.started_at is not None and cluster.ended_at is not None and step.started_at >= cluster.ended_at
    ((asked, seconds),) = recorder.asked
    assert (asked.phase, asked.endpoint.service) == ("write", "pg-cluster-postgresql-postgresql")
    assert 0 < seconds <= 600
    assert postgresql(results) == (Outcome.PASSED, [("test_markers[write]", Outcome.PASSED)])
    results.smoke_outcome = Outcome.PASSED  # as if the suite ran after the plan: nothing else fails the run
    assert results.passed


def test_a_failed_marker_check_fails_its_step_with_the_check_s_cause_not_the_database(tmp_path: Path) -> None:
    said = "postgresql markers m1 do not read back as written: table public.dbstack_marker_m1 is missing\ndetail"
    results = run(plan_with_markers("verify"), tmp_path, Recorder(Outcome.FAILED, said))

    step = next(s for s in results.steps if s.id == "markers-write:postgresql")
    assert (step.outcome, step.cause) == (Outcome.FAILED, said.splitlines()[0])
    # The database was deployed: the stage failed, not its deployment; the run fails through its check.
    assert postgresql(results) == (Outcome.PASSED, [("test_markers[verify]", Outcome.FAILED)])
    results.smoke_outcome = Outcome.PASSED
    assert not results.passed


@pytest.mark.parametrize("outcome", [Outcome.SKIPPED, Outcome.TIMED_OUT])
def test_a_marker_check_that_did_not_pass_is_never_taken_for_done(tmp_path: Path, outcome: Outcome) -> None:
    results = run(plan_with_markers(), tmp_path, Recorder(outcome, "postgresql not configured"))

    step = next(s for s in results.steps if s.id == "markers-write:postgresql")
    expected = Outcome.TIMED_OUT if outcome is Outcome.TIMED_OUT else Outcome.FAILED
    assert (step.outcome, step.cause) == (expected, "postgresql not configured")


def test_without_a_smoke_suite_a_marker_step_fails_saying_where_one_runs(tmp_path: Path) -> None:
    results = run(plan_with_markers(), tmp_path, None)

    step = next(s for s in results.steps if s.id == "markers-write:postgresql")
    assert (step.outcome, step.cause) == (Outcome.FAILED, NO_MARKER_RUNNER)
    assert postgresql(results) == (Outcome.PASSED, [])


def test_the_plan_s_json_form_says_what_a_marker_step_runs_against() -> None:
    data = plan_with_markers().to_json()
    step = data["steps"][-1]
    assert (step["kind"], step["stage"], step["commands"]) == ("markers", "backup", [])
    assert step["markers"]["phase"] == "write"
    assert step["markers"]["endpoint"]["service"] == "pg-cluster-postgresql-postgresql"
    assert step["markers"]["context"] is None
