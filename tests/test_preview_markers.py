"""Each preview deploy after the first is an upgrade: the first writes marker data into every database, every later
one reads it back after its `helm upgrade` (and writes it where there is none), the namespace records which
databases hold it, and the comment says whether it survived each push."""

from __future__ import annotations

from pathlib import Path

import anyio
from dbstack.config.load import Config, load_config
from dbstack.github.comment import render_comment
from dbstack.github.preview import (
    LABEL_MARKED,
    LABEL_MARKERS,
    PreviewMarkers,
    PreviewNamespace,
    PreviewTarget,
    keep_markers,
    markers_label_command,
    prepare_namespace,
    preview_markers,
    preview_plan,
    read_markers,
    with_marker_steps,
)
from dbstack.plan.build import build_plan
from dbstack.plan.model import Markers, Plan, StepKind
from dbstack.run.orchestrator import run_plan
from dbstack.run.results import CheckResult, Outcome, RunResults
from dbstack.run.smokeenv import MARKER_ID, marker_check_name
from dbstack.sim.cluster import Latencies, Scenario, SimCluster, in_virtual_time
from test_preview import NOW, SETTINGS, SHA, FakeCluster, _labels

VALUES = Path(__file__).resolve().parents[1] / "values"
PR = 42
NS = f"pr-{PR}"
ENABLED = ("postgresql", "redis", "qdrant", "elasticsearch")
OTHER_SHA = "b" * 40


class Data:
    """A fake MarkerRunner: what was written stays (across deploys) unless `lose` removes it."""

    def __init__(self) -> None:
        self.held: set[tuple[str, str]] = set()
        self.log: list[tuple[str, str]] = []

    def lose(self, database: str) -> None:
        self.held = {h for h in self.held if h[1] != database}

    async def __call__(self, markers: Markers, seconds: float) -> CheckResult:
        key = markers.endpoint.database
        self.log.append((markers.phase, key))
        name = marker_check_name(markers.phase)
        if markers.phase == "write":
            self.held.add(("m", key))
            return CheckResult(key, name, Outcome.PASSED)
        if ("m", key) in self.held:
            return CheckResult(key, name, Outcome.PASSED)
        return CheckResult(key, name, Outcome.FAILED, message=f"{key} markers do not read back as written")


def config() -> Config:
    return load_config(VALUES, "ci", [f"namespace={NS}"])


def base_plan() -> Plan:
    c = config()
    return preview_plan(build_plan(c), c.kubeblocks_namespace)


def test_the_first_deploy_writes_markers_into_every_database_with_a_fresh_id() -> None:
    target = PreviewTarget.create(PR, SHA, NOW)
    markers = preview_markers(None, target, ENABLED)
    assert (markers.verify, markers.write) == ((), ENABLED)
    assert MARKER_ID.fullmatch(markers.id)
    # A condemned namespace is torn down first: its markers go with it.
    condemned = PreviewNamespace(NS, {**_labels(PR, NOW), LABEL_MARKERS: "m1", LABEL_MARKED: "redis"}, "Terminating")
    assert preview_markers(condemned, target, ENABLED).verify == ()


def test_a_later_deploy_reads_back_what_is_held_and_writes_where_there_is_none() -> None:
    labels = {**_labels(PR, NOW), LABEL_MARKERS: "mpr42t1", LABEL_MARKED: "postgresql.redis.neo4j"}
    markers = preview_markers(PreviewNamespace(NS, labels), PreviewTarget.create(PR, OTHER_SHA, NOW + 60), ENABLED)
    assert markers.id == "mpr42t1"
    assert markers.verify == ("postgresql", "redis")  # neo4j is no longer enabled
    assert markers.write == ("qdrant", "elasticsearch")
    assert markers.previous_head == SHA
    junk = {**_labels(PR, NOW), LABEL_MARKERS: "Not An Id!", LABEL_MARKED: "redis"}
    assert preview_markers(PreviewNamespace(NS, junk), PreviewTarget.create(PR, SHA, NOW), ENABLED).verify == ()


def test_marker_steps_follow_each_database_s_cluster_step() -> None:
    markers = PreviewMarkers("m1", ("postgresql",), ("redis",))
    plan = with_marker_steps(base_plan(), markers, 600)
    verify, write = plan.step("markers:verify:postgresql"), plan.step("markers:write:redis")
    assert (verify.kind, verify.needs, verify.stage) == (StepKind.MARKERS, ("cluster:postgresql",), "preview")
    assert verify.markers is not None and verify.markers.phase == "verify"
    assert verify.markers.endpoint.namespace == NS
    assert write.markers is not None and write.markers.phase == "write" and write.needs == ("cluster:redis",)
    assert not any(s.id.startswith("markers:") and s.database == "qdrant" for s in plan.steps)


def test_three_pushes_markers_written_then_read_back_then_lost_then_written_again(tmp_path: Path) -> None:
    """Push 1 creates the preview (writes), push 2 upgrades it (reads back: survived), Redis loses its data before
    push 3 (read back fails: the comment says so, and Redis gets new markers on push 4)."""
    namespaces = FakeCluster()
    data = Data()
    sim = SimCluster(
        Scenario(latencies=Latencies.uniform(0.5), preinstalled=True, preinstalled_addons=frozenset(ENABLED))
    )
    c = config()
    runs: list[tuple[PreviewMarkers, RunResults]] = []
    held: list[str] = []

    async def deploy(sha: str, at: float, tmp: Path) -> None:
        target = PreviewTarget.create(PR, sha, at)
        plan, markers = await read_markers(namespaces, target, base_plan(), c)
        await prepare_namespace(namespaces, target, SETTINGS)
        results = await run_plan(plan, sim, tmp, cluster_kind="existing", clock=anyio.current_time, markers=data)
        results.smoke_outcome = Outcome.SKIPPED  # the whole suite is the Dagger layer's, not this test's
        await keep_markers(namespaces, target, markers, results)
        runs.append((markers, results))
        held.append(namespaces.labels(NS).get(LABEL_MARKED, ""))

    async def pushes() -> None:
        await deploy(SHA, NOW, tmp_path / "1")
        await deploy(OTHER_SHA, NOW + 60, tmp_path / "2")
        data.lose("redis")
        await deploy(SHA, NOW + 120, tmp_path / "3")
        await deploy(OTHER_SHA, NOW + 180, tmp_path / "4")

    in_virtual_time(pushes)
    assert sim.unknown == []
    first, second, third, fourth = runs
    assert (first[0].verify, first[0].write) == ((), ENABLED)
    assert first[1].upgrade is None
    assert held[0] == "elasticsearch.postgresql.qdrant.redis"
    # Push 2: all read back after their helm upgrade.
    assert second[0].verify == ENABLED and second[0].id == first[0].id
    assert second[1].upgrade is not None
    assert {s.database: s.outcome for s in second[1].upgrade.survival} == dict.fromkeys(ENABLED, Outcome.PASSED)
    assert second[1].upgrade.base_values == f"the preview's previous deploy (commit {SHA[:12]})"
    comment = render_comment(second[1], pr=PR, head_sha=OTHER_SHA)
    assert "- ✅ Redis: the marker data written earlier survived this push" in comment
    # Push 3: Redis's markers are gone; the rest survived; the label no longer names Redis.
    assert third[1].upgrade is not None
    survival = {s.database: s for s in third[1].upgrade.survival}
    assert survival["redis"].outcome is Outcome.FAILED
    assert survival["redis"].message == "redis markers do not read back as written"
    assert not third[1].passed
    comment = render_comment(third[1], pr=PR, head_sha=SHA)
    assert "- ❌ Redis: the marker data written earlier did not read back: redis markers do not read back" in comment
    assert held[2] == "elasticsearch.postgresql.qdrant"
    # Push 4: Redis gets new markers, the others are read back again.
    assert (fourth[0].verify, fourth[0].write) == (("postgresql", "qdrant", "elasticsearch"), ("redis",))
    comment = render_comment(fourth[1], pr=PR, head_sha=OTHER_SHA)
    assert "- 📝 Redis: marker data written; the next push reads it back" in comment
    assert fourth[1].passed and held[3] == "elasticsearch.postgresql.qdrant.redis"


def test_the_label_records_only_what_passed_and_none_removes_it() -> None:
    markers = PreviewMarkers("m1", ("postgresql",), ("redis",))
    results = RunResults("r", NOW, None, "existing", "ci", NS, {})
    assert markers_label_command(NS, markers, results).argv == (
        "kubectl",
        "label",
        "namespace",
        NS,
        f"{LABEL_MARKERS}-",
        f"{LABEL_MARKED}-",
    )
    from dbstack.run.results import StepResult

    results.steps = [StepResult("markers:write:redis", "w", "markers", "redis", Outcome.PASSED)]
    assert markers_label_command(NS, markers, results).argv[-3:] == (
        f"{LABEL_MARKERS}=m1",
        f"{LABEL_MARKED}=redis",
        "--overwrite",
    )
