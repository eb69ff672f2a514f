"""The marker bookkeeping of a preview deploy, value by value: the steps it adds, what it records as survived, the
note it logs and the labels it reads."""

from __future__ import annotations

import anyio
import pytest
from dbstack.github.preview import (
    LABEL_MARKED,
    LABEL_MARKERS,
    PreviewMarkers,
    PreviewNamespace,
    PreviewTarget,
    keep_markers,
    preview_markers,
    record_survival,
    with_marker_steps,
)
from dbstack.plan.model import Markers, Step, StepKind
from dbstack.run.results import Outcome, StepResult, Survival, UpgradeResults
from test_preview import NOW, SHA, _labels, _results
from test_preview_markers import ENABLED, NS, PR, base_plan
from test_preview_teardown import TimedCluster

TARGET = PreviewTarget.create(PR, SHA, NOW)
LABEL_ARGV = ("kubectl", "label", "namespace", NS)


def test_marker_steps_are_appended_verify_first_each_with_its_title_needs_and_time() -> None:
    plan = base_plan()
    endpoints = {e.database: e for e in plan.endpoints}
    added = with_marker_steps(plan, PreviewMarkers("m1", ("postgresql",), ("redis", "qdrant")), 600)
    assert added.steps[: len(plan.steps)] == plan.steps
    verify, write_redis, write_qdrant = added.steps[len(plan.steps) :]
    assert verify == Step(
        id="markers:verify:postgresql",
        title="Read the marker data back from PostgreSQL (pg-cluster)",
        kind=StepKind.MARKERS,
        needs=("cluster:postgresql",),
        commands=(),
        done_when=(),
        timeout_s=840,
        database="postgresql",
        markers=Markers("verify", endpoints["postgresql"]),
        stage="preview",
    )
    assert write_redis == Step(
        id="markers:write:redis",
        title="Write marker data into Redis (redis-cluster)",
        kind=StepKind.MARKERS,
        needs=("cluster:redis",),
        commands=(),
        done_when=(),
        timeout_s=840,
        database="redis",
        markers=Markers("write", endpoints["redis"]),
        stage="preview",
    )
    assert (write_qdrant.id, write_qdrant.title) == (
        "markers:write:qdrant",
        "Write marker data into Qdrant (qdrant-cluster)",
    )


def test_survival_is_recorded_per_database_read_back_lost_or_written_now() -> None:
    results = _results()
    results.steps.append(
        StepResult(
            "markers:verify:postgresql",
            "Read the marker data back from PostgreSQL (pg-cluster)",
            "markers",
            "postgresql",
            Outcome.FAILED,
            cause="postgresql markers do not read back as written\nrow 3 differs",
        )
    )
    record_survival(results, PreviewMarkers("m1", ("postgresql",), ("qdrant",), previous_head=SHA))
    assert results.upgrade == UpgradeResults(
        base_values="the preview's previous deploy (commit 0123456789ab)",
        survival=[
            Survival("postgresql", Outcome.FAILED, "postgresql markers do not read back as written"),
            Survival("qdrant", Outcome.SKIPPED, "it held no marker data before this deploy: written now"),
        ],
    )


def test_survival_without_a_cause_names_the_outcome_and_without_a_commit_names_none() -> None:
    results = _results()
    results.steps += [
        StepResult("markers:verify:postgresql", "r", "markers", "postgresql", Outcome.TIMED_OUT),
        StepResult("markers:verify:qdrant", "r", "markers", "qdrant", Outcome.PASSED),
    ]
    record_survival(results, PreviewMarkers("m1", ("postgresql", "qdrant"), ()))
    assert results.upgrade == UpgradeResults(
        base_values="the preview's previous deploy",
        survival=[Survival("postgresql", Outcome.FAILED, "timed_out"), Survival("qdrant", Outcome.PASSED, None)],
    )


def test_a_first_deploy_records_no_survival() -> None:
    results = _results()
    record_survival(results, PreviewMarkers("m1", (), ("postgresql", "qdrant"), previous_head=SHA))
    assert results.upgrade is None


def keep(cluster: TimedCluster, markers: PreviewMarkers, passed: tuple[str, ...]) -> str:
    results = _results()
    results.steps += [StepResult(s, s, "markers", s.split(":")[2], Outcome.PASSED) for s in passed]

    async def main() -> str:
        return await keep_markers(cluster, TARGET, markers, results)

    return anyio.run(main)


def test_keep_markers_labels_the_namespace_and_says_which_databases_hold_them() -> None:
    cluster = TimedCluster()
    cluster.add_namespace(NS, _labels(PR, NOW))
    markers = PreviewMarkers("m1", ("postgresql",), ("redis", "qdrant"))
    note = keep(cluster, markers, ("markers:verify:postgresql", "markers:write:qdrant"))
    assert note == "marker data m1 held by: postgresql, qdrant"
    assert cluster.limits == [
        ((*LABEL_ARGV, f"{LABEL_MARKERS}=m1", f"{LABEL_MARKED}=postgresql.qdrant", "--overwrite"), 60)
    ]


def test_keep_markers_with_none_held_removes_the_labels_and_says_none() -> None:
    cluster = TimedCluster()
    cluster.add_namespace(NS, {**_labels(PR, NOW), LABEL_MARKERS: "m1", LABEL_MARKED: "redis"})
    note = keep(cluster, PreviewMarkers("m1", ("redis",), ()), ())
    assert note == "marker data m1 held by: none"
    assert cluster.limits == [((*LABEL_ARGV, f"{LABEL_MARKERS}-", f"{LABEL_MARKED}-"), 60)]
    assert LABEL_MARKED not in cluster.labels(NS)


def test_a_label_that_cannot_be_written_is_only_a_note() -> None:
    cluster = TimedCluster(fail_on="kubectl label", failure="Error from server (Forbidden): nope")
    cluster.add_namespace(NS, _labels(PR, NOW))
    note = keep(cluster, PreviewMarkers("m1", (), ("redis",)), ("markers:write:redis",))
    assert note == (
        f"could not record the marker data on {NS}, the next deploy writes it again: "
        f"`kubectl label namespace {NS} {LABEL_MARKERS}=m1 {LABEL_MARKED}=redis --overwrite` failed: "
        "Error from server (Forbidden): nope"
    )


@pytest.mark.parametrize(
    "held", [{LABEL_MARKERS: "m1"}, {LABEL_MARKED: "redis"}, {LABEL_MARKERS: "m1", LABEL_MARKED: ""}]
)
def test_a_namespace_with_half_the_marker_labels_gets_fresh_markers_everywhere(held: dict[str, str]) -> None:
    existing = PreviewNamespace(NS, {**_labels(PR, NOW), **held})
    assert preview_markers(existing, TARGET, ENABLED) == PreviewMarkers("mpr42t1800000000", (), ENABLED, None)
