"""Scenario tests: the orchestrator running plans on the simulated cluster in virtual time (trio's MockClock)."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from dbstack.config.validate import validate
from dbstack.plan.build import HELM_LOCKED, KUBEBLOCKS_CRDS, SNAPSHOT_CRDS, build_plan, build_teardown_plan
from dbstack.plan.model import Command, Plan
from dbstack.report import write_reports
from dbstack.run.orchestrator import (
    ABANDONED_AFTER_MARGIN_S,
    BACKOFF_FIRST_S,
    RACE_RETRY_PAUSE_S,
    WATCH_INTERVAL_S,
    run_plan,
)
from dbstack.run.progress import PlainProgress, Progress
from dbstack.run.results import Outcome, RunResults, StepResult
from dbstack.run.runner import CommandResult, Runner
from dbstack.sim.cluster import (
    SIM_CREDENTIAL,
    Call,
    Failure,
    Latencies,
    Outage,
    Race,
    Scenario,
    SimCluster,
    Stuck,
    catalog_topology,
    in_virtual_time,
    run_simulated,
)
from upstream import rendered_topology, upstream_available

# --- helpers ---------------------------------------------------------------------------------------------------


def plan_for(values_dir: Path, *overrides: str) -> Plan:
    return build_plan(validate(values_dir, None, overrides).config)


@dataclass
class SimRun:
    results: RunResults
    sim: SimCluster
    out: Path

    def step(self, step_id: str) -> StepResult:
        return next(s for s in self.results.steps if s.id == step_id)

    def outcome(self, database: str) -> Outcome:
        return next(d.outcome for d in self.results.databases if d.key == database)

    def calls(self, *prefix: str) -> list[Call]:
        return [c for c in self.sim.calls if c.argv[: len(prefix)] == prefix]

    def helm_installs(self, release: str) -> list[Call]:
        return self.calls("helm", "upgrade", "--install", release)

    def sightings(self, step_id: str, cluster: str) -> int:
        """How many reads showed `cluster`'s failure while its step ran (diagnostics read the pods again later)."""
        ended = (self.step(step_id).ended_at or 0) - self.sim.origin
        return sum(1 for at in self.sim.sightings.get(cluster, []) if at <= ended)


def simulate(plan: Plan, scenario: Scenario, out: Path, sim: SimCluster | None = None) -> SimRun:
    """Run `plan` on the simulator; its Clusters get the components Helm's render of the real charts gives when
    the upstream charts are there (tests/upstream.py), else the catalog's (which that render proves equal)."""
    if upstream_available() and scenario.topology is catalog_topology:
        scenario = dataclasses.replace(scenario, topology=rendered_topology)
    sim = sim or SimCluster(scenario)
    results = run_simulated(plan, sim, out)
    assert sim.unknown == [], "the orchestrator issued commands the simulator does not model"
    return SimRun(results, sim, out)


def fast(**addon_s: float) -> Latencies:
    """Latencies with per-addon overrides (the rest as in the default scenario)."""
    defaults = Latencies()
    return Latencies(addon_s={**defaults.addon_s, **addon_s})


# --- a healthy run ---------------------------------------------------------------------------------------------


def test_healthy_run_passes_every_step_and_reports_endpoints(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(), tmp_path)
    assert [s.outcome for s in run.results.steps] == [Outcome.PASSED] * len(run.results.steps)
    pg = next(d for d in run.results.databases if d.key == "postgresql")
    assert (pg.outcome, pg.service, pg.port, pg.secret) == (
        Outcome.PASSED,
        "pg-cluster-postgresql-postgresql",
        5432,
        "pg-cluster-postgresql-account-postgres",
    )
    assert pg.ready_after_s == run.step("cluster:postgresql").duration_s
    saved = RunResults.from_json(json.loads((tmp_path / "results.json").read_text()))
    assert [s.outcome for s in saved.steps] == [s.outcome for s in run.results.steps]
    assert not (tmp_path / "diagnostics").exists()


def test_addons_install_in_parallel_once_kubeblocks_is_up(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(), tmp_path)
    kubeblocks_up = run.step("kubeblocks").ended_at
    assert kubeblocks_up is not None
    starts = [
        run.helm_installs(f"kb-addon-{db}")[0].started for db in ("postgresql", "redis", "qdrant", "elasticsearch")
    ]
    assert all(kubeblocks_up <= start for start in starts)
    first_addon_ready = min(run.step(f"addon:{db}").ended_at or 0 for db in ("postgresql", "redis"))
    assert max(starts) < first_addon_ready


def test_each_cluster_installs_right_after_its_own_addon(values_dir: Path, tmp_path: Path) -> None:
    scenario = Scenario(latencies=fast(redis=10.0, elasticsearch=120.0))
    run = simulate(plan_for(values_dir), scenario, tmp_path)
    redis_install = run.helm_installs("redis-cluster")[0].started
    assert redis_install == run.step("addon:redis").ended_at
    assert redis_install < (run.step("addon:elasticsearch").ended_at or 0)


def test_kubeblocks_starts_only_after_snapshot_and_kubeblocks_crds_are_established(
    values_dir: Path, tmp_path: Path
) -> None:
    run = simulate(plan_for(values_dir), Scenario(), tmp_path)
    install = run.helm_installs("kubeblocks")[0].started
    assert install >= (run.step("snapshot-crds").ended_at or 0)
    assert install >= (run.step("kubeblocks-crds").ended_at or 0)
    # Nothing needs the snapshot controller, so KubeBlocks does not wait for it.
    assert install < (run.step("snapshot-controller").ended_at or 0)


def test_readiness_is_noticed_when_the_cluster_turns_running(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(), tmp_path)
    ready = run.sim.ready_times()
    assert run.step("cluster:elasticsearch").ended_at == ready["cluster/es-cluster"]
    assert run.step("addon:redis").ended_at == ready["clusterdefinition/redis"]


# --- failing fast ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "cause_start"),
    [
        (Failure.PENDING_CPU, "redis-cluster-redis-0 Pending: 0/1 nodes are available: 1 Insufficient cpu"),
        (Failure.IMAGE_PULL, "redis-cluster-redis-0 container redis ImagePullBackOff: Back-off pulling image"),
        (Failure.CRASHLOOP, "redis-cluster-redis-0 container redis CrashLoopBackOff (restarted 3 times"),
        (Failure.ABNORMAL, "Cluster redis-cluster is Abnormal: component redis Failed"),
    ],
)
def test_a_failing_cluster_ends_its_wait_at_once_with_the_cause_and_the_others_still_pass(
    values_dir: Path, tmp_path: Path, failure: Failure, cause_start: str
) -> None:
    scenario = Scenario(failures={"redis": failure})
    run = simulate(plan_for(values_dir), scenario, tmp_path)
    step = run.step("cluster:redis")
    assert step.outcome is Outcome.FAILED
    assert (step.cause or "").startswith(cause_start)
    latest_notice = (
        scenario.latencies.helm_s
        + scenario.latencies.pods_after_s
        + scenario.latencies.failure_after_s
        + 2 * WATCH_INTERVAL_S
    )
    assert (step.duration_s or 0) <= latest_notice
    assert run.outcome("redis") is Outcome.FAILED
    assert {run.outcome(db) for db in ("postgresql", "qdrant", "elasticsearch")} == {Outcome.PASSED}
    for name in ("pods.txt", "events.txt", "logs.txt", "logs-previous.txt", "nodes.txt", "kubeblocks.log"):
        assert f"diagnostics/redis/{name}" in step.diagnostics
        assert (tmp_path / "diagnostics" / "redis" / name).is_file()


@pytest.mark.parametrize("failure", [Failure.CRASH_ONCE, Failure.ABNORMAL_BLIP])
def test_a_failure_seen_on_one_look_only_is_a_bootstrap_blip_and_the_cluster_still_passes(
    values_dir: Path, tmp_path: Path, failure: Failure
) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"postgresql": failure}), tmp_path)
    assert run.sightings("cluster:postgresql", "pg-cluster") == 1  # the watch did see it, once
    assert run.step("cluster:postgresql").outcome is Outcome.PASSED
    assert run.outcome("postgresql") is Outcome.PASSED


@pytest.mark.parametrize("failure", [Failure.ABNORMAL, Failure.IMAGE_PULL, Failure.PENDING_CPU])
def test_a_failure_seen_on_two_looks_in_a_row_fails_on_the_second(
    values_dir: Path, tmp_path: Path, failure: Failure
) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"postgresql": failure}), tmp_path)
    assert run.sightings("cluster:postgresql", "pg-cluster") == 2
    assert run.step("cluster:postgresql").outcome is Outcome.FAILED


def test_a_crash_loop_with_three_restarts_fails_on_first_sight(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"postgresql": Failure.CRASHLOOP}), tmp_path)
    assert run.sightings("cluster:postgresql", "pg-cluster") == 1
    assert run.step("cluster:postgresql").outcome is Outcome.FAILED


def test_logs_are_collected_per_container_and_an_unreadable_one_is_noted_not_fatal(
    values_dir: Path, tmp_path: Path
) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"postgresql": Failure.PENDING_CPU}), tmp_path)
    logs = (tmp_path / "diagnostics" / "postgresql" / "logs.txt").read_text()
    assert "==> pod/pg-cluster-postgresql-0 container/postgresql <==" in logs
    assert "starting with DATABASE_URL=postgresql://postgres:***@" in logs  # the running pod's log, masked
    assert "==> pod/pg-cluster-postgresql-1 container/postgresql <==" in logs
    assert "pod pg-cluster-postgresql-1 does not have a host assigned" in logs  # the Pending one, noted
    previous = (tmp_path / "diagnostics" / "postgresql" / "logs-previous.txt").read_text()
    assert "[no container has restarted]" in previous
    assert not run.calls(
        "kubectl", "-n", "default", "logs", "pg-cluster-postgresql-0", "-c", "postgresql", "--previous"
    )


class PodListingCut:
    """The simulated cluster, except that the diagnostics' listing of pods (not the watch's) ends mid-answer."""

    def __init__(self, sim: SimCluster) -> None:
        self.sim = sim

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if command.argv[3:5] == ("get", "pods") and not command.routine:
            return CommandResult(0, '{"apiVersion": "v1", "items": [{"metadata": {"name": "pg-clu', "")
        return await self.sim.run(command, timeout_s=timeout_s)


def test_a_pod_listing_that_is_not_a_pod_list_is_kept_and_no_logs_are_read(values_dir: Path, tmp_path: Path) -> None:
    sim = SimCluster(Scenario(failures={"postgresql": Failure.CRASHLOOP}))
    results = run_simulated(plan_for(values_dir), PodListingCut(sim), tmp_path)
    assert next(s for s in results.steps if s.id == "cluster:postgresql").outcome is Outcome.FAILED
    logs = (tmp_path / "diagnostics" / "postgresql" / "logs.txt").read_text()
    assert logs == (
        "$ kubectl -n default get pods -l app.kubernetes.io/instance=pg-cluster -o json\n"
        '{"apiVersion": "v1", "items": [{"metadata": {"name": "pg-clu'
        "\n[not a pod list: no logs collected]\n"
    )
    assert not [c for c in sim.calls if c.argv[1:4] == ("-n", "default", "logs")]


def test_previous_logs_are_read_only_from_restarted_containers(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"redis": Failure.CRASHLOOP}), tmp_path)
    previous = (tmp_path / "diagnostics" / "redis" / "logs-previous.txt").read_text()
    assert "==> pod/redis-cluster-redis-0 container/redis (previous), restarted 3 times <==" in previous
    assert "FATAL: could not start: exit 1" in previous
    reads = [c for c in run.sim.calls if c.argv[3:4] == ("logs",) and "--previous" in c.argv]
    assert reads and {c.exit_code for c in reads} == {0}


def test_a_container_waiting_to_start_is_noted_in_the_logs(values_dir: Path, tmp_path: Path) -> None:
    simulate(plan_for(values_dir), Scenario(failures={"redis": Failure.IMAGE_PULL}), tmp_path)
    logs = (tmp_path / "diagnostics" / "redis" / "logs.txt").read_text()
    assert 'container "redis" in pod "redis-cluster-redis-0" is waiting to start: ImagePullBackOff' in logs


def test_diagnostics_never_hold_the_credentials_pods_print(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"postgresql": Failure.CRASHLOOP}), tmp_path)
    files = [p for p in (tmp_path / "diagnostics").rglob("*") if p.is_file()]
    pods = (tmp_path / "diagnostics" / "postgresql" / "pods.txt").read_text()
    assert "POSTGRES_PASSWORD:  ***" in pods
    assert files
    assert all(SIM_CREDENTIAL not in p.read_text() for p in [*files, tmp_path / "results.json"])
    assert run.step("cluster:postgresql").outcome is Outcome.FAILED


@pytest.mark.parametrize(
    ("failure", "reason", "says"),
    [
        (Failure.PENDING_CPU, "FailedScheduling", "Insufficient cpu"),
        (Failure.IMAGE_PULL, "ImagePullBackOff", "docker.io/apecloud/postgresql:missing"),
        (Failure.CRASHLOOP, "CrashLoopBackOff", "last exit code 1"),
        (Failure.ABNORMAL, "Unhealthy", "Readiness probe failed"),
    ],
)
def test_a_failed_cluster_records_the_container_level_reason_from_its_diagnostics(
    values_dir: Path, tmp_path: Path, failure: Failure, reason: str, says: str
) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"postgresql": failure}), tmp_path)
    step = run.step("cluster:postgresql")
    first = step.findings[0]
    assert (first.reason, says in first.message) == (reason, True), first
    assert set(first.sources) <= set(step.diagnostics)
    saved = json.loads((tmp_path / "results.json").read_text())
    (cluster,) = [s for s in saved["steps"] if s["id"] == "cluster:postgresql"]
    assert cluster["findings"][0]["reason"] == reason
    assert run.step("cluster:redis").findings == []


def test_a_crash_loops_finding_shows_the_previous_runs_logs_from_their_file(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"redis": Failure.CRASHLOOP}), tmp_path)
    first = run.step("cluster:redis").findings[0]
    assert first.reason == "CrashLoopBackOff"
    assert "diagnostics/redis/logs-previous.txt" in first.sources
    assert "diagnostics/redis/logs.txt" not in first.sources


def test_a_stalled_cluster_times_out_after_the_configured_timeout_with_what_it_last_saw(
    values_dir: Path, tmp_path: Path
) -> None:
    plan = plan_for(values_dir, "timeouts.cluster=120")
    run = simulate(plan, Scenario(failures={"qdrant": Failure.STALLED}), tmp_path)
    step = run.step("cluster:qdrant")
    assert step.outcome is Outcome.TIMED_OUT
    cause = step.cause or ""
    assert cause.startswith(
        "timed out after 120 s waiting for clusters.apps.kubeblocks.io/qdrant-cluster phase Running"
    )
    assert "last seen: Cluster Creating; pods 0/1 ready" in cause
    assert "qdrant-cluster-qdrant-0 Running, not ready" in cause
    assert cause.splitlines()[1:] == ["qdrant-cluster-qdrant-0 Running, not ready"]
    assert 120 <= (step.duration_s or 0) < 120 + WATCH_INTERVAL_S
    assert run.outcome("redis") is Outcome.PASSED  # ready in 60 s, well within the 120 s


def test_a_failed_step_leaves_the_steps_that_need_it_not_run_with_the_reason(values_dir: Path, tmp_path: Path) -> None:
    plan = plan_for(values_dir, "timeouts.kubeblocks=60")
    # Installed a moment ago: still within its progress deadline, so only the step's own limit ends the wait.
    scenario = Scenario(preinstalled=True, kubeblocks_unhealthy=True, preinstalled_age_s=0.0)
    run = simulate(plan, scenario, tmp_path)
    assert run.step("kubeblocks").outcome is Outcome.TIMED_OUT
    assert (run.step("kubeblocks").cause or "").startswith("timed out after 60 s waiting for deployment/kubeblocks")
    assert run.step("addon:redis").outcome is Outcome.NOT_RUN
    assert run.step("addon:redis").cause == "not run: kubeblocks did not succeed"
    assert run.step("cluster:redis").cause == "not run: addon:redis did not succeed"
    assert {d.outcome for d in run.results.databases} == {Outcome.NOT_RUN}
    assert (tmp_path / "diagnostics" / "kubeblocks" / "kubeblocks.log").is_file()
    assert not run.results.passed


def test_a_deployment_past_its_progress_deadline_fails_at_once_with_kubectls_words(
    values_dir: Path, tmp_path: Path
) -> None:
    # Installed an hour ago and never available: kubectl rollout status exits 1 at once, it does not wait.
    run = simulate(plan_for(values_dir), Scenario(preinstalled=True, kubeblocks_unhealthy=True), tmp_path)
    step = run.step("kubeblocks")
    assert step.outcome is Outcome.FAILED
    assert (step.cause or "").startswith('deployment "kubeblocks" exceeded its progress deadline')
    assert (step.duration_s or 0) < 5
    rollout = run.calls("kubectl", "rollout", "status", "deployment/kubeblocks")[0]
    assert (rollout.exit_code, rollout.stderr) == (1, 'error: deployment "kubeblocks" exceeded its progress deadline')


# --- already there, races, transient errors --------------------------------------------------------------------


def test_installed_kubeblocks_is_skipped_but_still_verified(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(preinstalled=True), tmp_path)
    for step_id in ("snapshot-crds", "snapshot-controller", "kubeblocks-crds", "kubeblocks"):
        assert run.step(step_id).outcome is Outcome.SKIPPED
    assert run.helm_installs("kubeblocks") == []
    assert run.calls("kubectl", "apply") == []
    assert len(run.calls("kubectl", "rollout", "status", "deployment/kubeblocks")) == 1
    assert {d.outcome for d in run.results.databases} == {Outcome.PASSED}
    assert run.results.passed is False  # the smoke suite has not run yet; the caller records it


def test_installed_addon_is_skipped_but_its_definitions_are_still_awaited(values_dir: Path, tmp_path: Path) -> None:
    scenario = Scenario(preinstalled=True, preinstalled_addons=frozenset({"redis"}))
    run = simulate(plan_for(values_dir), scenario, tmp_path)
    assert run.step("addon:redis").outcome is Outcome.SKIPPED
    assert run.helm_installs("kb-addon-redis") == []
    assert run.calls("kubectl", "wait", "componentversion.apps.kubeblocks.io/redis")
    assert run.step("addon:qdrant").outcome is Outcome.PASSED


def test_a_snapshot_controller_from_the_upstream_manifest_is_found_by_its_pods(
    values_dir: Path, tmp_path: Path
) -> None:
    """v8.2.0's Deployment carries no labels (only its pods do): the probe looks at pods, in every namespace."""
    run = simulate(plan_for(values_dir), Scenario(preinstalled=True), tmp_path)
    step = run.step("snapshot-controller")
    assert step.outcome is Outcome.SKIPPED
    assert step.cause == (
        "already present: pod snapshot-controller-6d4f8b7c9-x0 in namespace kube-system, "
        "pod snapshot-controller-6d4f8b7c9-x1 in namespace kube-system; verified healthy"
    )
    selector = "app.kubernetes.io/name=snapshot-controller"
    assert [c.argv for c in run.calls("kubectl", "wait", "pods")] == [
        ("kubectl", "wait", "pods", "-A", "-l", selector, "--for=condition=Ready", "--timeout=120s")
    ]
    assert run.calls("kubectl", "rollout", "status", "deployment/snapshot-controller") == []


def test_a_snapshot_controller_a_chart_installed_elsewhere_is_reused_where_it_is(
    values_dir: Path, tmp_path: Path
) -> None:
    scenario = Scenario(
        preinstalled=True, snapshot_controller_namespace="piraeus-datastore", snapshot_controller_from_chart=True
    )
    run = simulate(plan_for(values_dir), scenario, tmp_path)
    step = run.step("snapshot-controller")
    assert (step.outcome, step.cause) == (
        Outcome.SKIPPED,
        "already present: pod snapshot-controller-6d4f8b7c9-x0 in namespace piraeus-datastore; verified healthy",
    )
    # Nothing waits on kube-system/snapshot-controller, which does not exist here.
    assert not [c for c in run.sim.calls if "deployment/snapshot-controller" in c.argv]
    assert run.calls("kubectl", "apply") == []
    assert {d.outcome for d in run.results.databases} == {Outcome.PASSED}


def test_without_a_snapshot_controller_the_upstream_one_is_installed_and_rolled_out(
    values_dir: Path, tmp_path: Path
) -> None:
    run = simulate(plan_for(values_dir), Scenario(), tmp_path)
    assert run.step("snapshot-controller").outcome is Outcome.PASSED
    assert len(run.calls("kubectl", "rollout", "status", "deployment/snapshot-controller")) == 1
    assert run.calls("kubectl", "wait", "pods") == []


def test_an_installed_kubeblocks_at_another_version_is_not_silently_reused(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(preinstalled=True, kubeblocks_version="1.0.0"), tmp_path)
    step = run.step("kubeblocks")
    assert (step.outcome, step.cause) == (
        Outcome.FAILED,
        "KubeBlocks 1.0.0 is installed (namespace kb-system), but the plan pins 1.0.1; upgrade or remove it, "
        "or set kubeblocks.reuseInstalled: any to reuse it as it is",
    )
    assert run.helm_installs("kubeblocks") == []
    assert run.step("addon:redis").outcome is Outcome.NOT_RUN
    assert run.results.installed_versions == {"kubeblocks": "1.0.0"}
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["installed_versions"] == {"kubeblocks": "1.0.0"}


def test_reuse_installed_any_reuses_another_version_and_reports_it(values_dir: Path, tmp_path: Path) -> None:
    from dbstack.report.summary_json import render_summary

    plan = plan_for(values_dir, "kubeblocks.reuseInstalled=any")
    scenario = Scenario(
        preinstalled=True,
        kubeblocks_version="1.0.0",
        preinstalled_addons=frozenset({"redis"}),
        addon_versions={"redis": "1.0.0"},
    )
    run = simulate(plan, scenario, tmp_path)
    assert run.step("kubeblocks").outcome is Outcome.SKIPPED
    assert run.step("kubeblocks").cause == "already present: KubeBlocks 1.0.0; verified healthy"
    assert run.step("addon:redis").cause == "already present: the redis addon 1.0.0; verified healthy"
    assert run.results.installed_versions == {"kubeblocks": "1.0.0", "redisAddon": "1.0.0"}
    run_json = render_summary(run.results)["run"]
    assert run_json["installedVersions"] == {"kubeblocks": "1.0.0", "redisAddon": "1.0.0"}
    assert run_json["versions"]["kubeblocks"] == "1.0.1"


def test_an_installed_addon_at_another_version_fails_its_step_naming_both(values_dir: Path, tmp_path: Path) -> None:
    scenario = Scenario(preinstalled=True, preinstalled_addons=frozenset({"redis"}), addon_versions={"redis": "1.0.0"})
    run = simulate(plan_for(values_dir), scenario, tmp_path)
    step = run.step("addon:redis")
    assert step.outcome is Outcome.FAILED
    assert (step.cause or "").startswith(
        "the redis addon 1.0.0 is installed (namespace kb-system), but the plan pins 1.0.1; "
    )
    assert run.helm_installs("kb-addon-redis") == []
    assert run.step("cluster:redis").outcome is Outcome.NOT_RUN
    assert run.step("addon:qdrant").outcome is Outcome.PASSED


def test_a_failed_cluster_names_the_images_its_pods_pull(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(failures={"elasticsearch": Failure.IMAGE_PULL}), tmp_path)
    assert "diagnostics/elasticsearch/images.txt" in run.step("cluster:elasticsearch").diagnostics
    images = (tmp_path / "diagnostics" / "elasticsearch" / "images.txt").read_text()
    assert "mdit\tprepare-plugins\tdocker.io/apecloud/elasticsearch-plugins:8.8.2\t" in images


def test_redis_replication_brings_its_sentinels(values_dir: Path, tmp_path: Path) -> None:
    (values_dir / "redis.yaml").write_text(
        (values_dir / "redis.yaml")
        .read_text()
        .replace("mode: standalone", "mode: replication")
        .replace("replicas: 1", "replicas: 2")
    )
    run = simulate(plan_for(values_dir), Scenario(), tmp_path)
    assert run.outcome("redis") is Outcome.PASSED
    redis = next(d for d in run.results.databases if d.key == "redis")
    assert (redis.mode, redis.replicas, redis.service) == ("replication", 2, "redis-cluster-redis-redis")


def test_a_redeploy_waits_until_the_operator_runs_the_new_spec(values_dir: Path, tmp_path: Path) -> None:
    sim = SimCluster(Scenario())
    plan = plan_for(values_dir)
    runs: list[RunResults] = []

    async def main() -> None:
        for out in ("first", "again"):
            runs.append(await run_plan(plan, sim, tmp_path / out, cluster_kind="simulated", clock=anyio.current_time))

    in_virtual_time(main)
    again = {s.id: s for s in runs[1].steps}
    assert {again[s].outcome for s in ("kubeblocks", "addon:redis")} == {Outcome.SKIPPED}
    redis = again["cluster:redis"]
    assert redis.outcome is Outcome.PASSED
    # Until KubeBlocks saw generation 2 the status was generation 1's (upToDate true, Running); then observedGeneration
    # advanced while the phase still said Running: the run waited for generation 2 to be observed, then for the
    # component's upToDate, then for Running of the new spec, and ended when that came.
    waits = [c.argv for c in sim.calls if c.argv[:2] == ("kubectl", "wait") and "redis-cluster" in c.argv[2]]
    conditions = [next(a for a in argv if a.startswith("--for=")) for argv in waits]
    redeploy = conditions[conditions.index("--for=jsonpath={.status.observedGeneration}=2") :]
    assert redeploy == [
        "--for=jsonpath={.status.observedGeneration}=2",
        "--for=jsonpath={.status.components.redis.upToDate}=true",
        "--for=jsonpath={.status.phase}=Running",
    ]
    assert redis.ended_at == sim.ready_times()["cluster/redis-cluster"] + sim.origin
    lat = Scenario().latencies
    assert (redis.duration_s or 0) >= lat.observe_s + lat.stale_phase_s + lat.cluster_s["redis"]
    assert sim.unknown == []


@pytest.mark.parametrize(
    ("race", "helm_version", "refusal"),
    [
        (Race.NAME_IN_USE, "3.16.4", "Error: cannot re-use a name that is still in use"),
        (Race.NAME_IN_USE, "4.0.5", "Error: cannot reuse a name that is still in use"),
        (Race.RELEASE_EXISTS, "3.13.3", "Error: release: already exists"),
    ],
)
def test_a_concurrent_install_of_a_shared_release_is_waited_out_then_verified(
    values_dir: Path, tmp_path: Path, race: Race, helm_version: str, refusal: str
) -> None:
    scenario = Scenario(install_race={"kb-addon-redis": race}, helm_version=helm_version)
    run = simulate(plan_for(values_dir), scenario, tmp_path)
    installs = run.helm_installs("kb-addon-redis")
    assert [(c.exit_code, c.stderr) for c in installs] == [(1, refusal)]  # the other client then finished it
    step = run.step("addon:redis")
    assert (step.outcome, step.cause) == (Outcome.SKIPPED, "already present: the redis addon 1.0.1; verified healthy")
    assert run.outcome("redis") is Outcome.PASSED


def test_a_cluster_install_that_lost_the_race_is_retried_as_an_upgrade(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(install_race={"redis-cluster": Race.NAME_IN_USE}), tmp_path)
    installs = run.helm_installs("redis-cluster")
    assert [c.exit_code for c in installs] == [1, 0]
    assert run.step("cluster:redis").outcome is Outcome.PASSED
    assert run.step("cluster:redis").attempts == 2
    # The retry gives helm only what is left of the step's 600 s, not the plan's full limit again.
    flags = [[a for a in c.argv if a.startswith("--timeout=")] for c in installs]
    assert installs[1].started - installs[0].started == pytest.approx(8.2)
    assert flags == [["--timeout=600s"], ["--timeout=592s"]]


@pytest.mark.parametrize(
    ("owner", "belongs_to"),
    [
        ("redis", "belongs to Helm release redis in namespace kb-system, not to release kb-addon-redis"),
        ("", "belongs to no Helm release (it was created by hand or by another tool)"),
    ],
)
def test_an_object_another_release_owns_fails_at_once_naming_the_owner_before_helms_words(
    values_dir: Path, tmp_path: Path, owner: str, belongs_to: str
) -> None:
    # Helm 3.16 with a group-readable kubeconfig prints its warning first: the cause is still Helm's error.
    scenario = Scenario(owned_by={"kb-addon-redis": owner}, kubeconfig_mode=0o644)
    run = simulate(plan_for(values_dir), scenario, tmp_path)
    step = run.step("addon:redis")
    assert step.outcome is Outcome.FAILED
    lines = (step.cause or "").splitlines()
    assert lines[0].startswith('ClusterDefinition "redis" already exists and ' + belongs_to)
    assert lines[1].startswith('Error: Unable to continue with install: ClusterDefinition "redis" in namespace ""')
    assert lines[2].startswith("command: helm upgrade --install kb-addon-redis redis")
    assert step.attempts == 1
    assert run.helm_installs("kb-addon-redis")[0].stderr.startswith("WARNING: Kubernetes configuration file is")


def test_a_helm_failure_behind_helms_kubeconfig_warnings_is_reported_by_its_error(
    values_dir: Path, tmp_path: Path
) -> None:
    scenario = Scenario(helm_locked={"kb-addon-redis": 1e9}, kubeconfig_mode=0o644)
    run = simulate(plan_for(values_dir, "timeouts.addon=30"), scenario, tmp_path)
    cause = run.step("addon:redis").cause or ""
    assert cause.startswith(f"Error: UPGRADE FAILED: {HELM_LOCKED}\n")
    assert "WARNING" not in cause
    refused = run.helm_installs("kb-addon-redis")[-1].stderr.splitlines()
    assert refused[:2] == [
        "WARNING: Kubernetes configuration file is group-readable. This is insecure. Location: /root/.kube/config",
        "WARNING: Kubernetes configuration file is world-readable. This is insecure. Location: /root/.kube/config",
    ]


def test_attempts_count_tries_not_commands(values_dir: Path, tmp_path: Path) -> None:
    plan = plan_for(values_dir)
    run = simulate(plan, Scenario(), tmp_path)
    several = [s for s in plan.steps if len(s.commands) > 1]
    assert several, "the plan has a step of several commands (the CRD bundles)"
    assert {run.step(s.id).attempts for s in plan.steps} == {1}


def test_each_retry_after_a_held_lock_is_an_attempt(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(helm_locked={"kb-addon-redis": 2.5 * RACE_RETRY_PAUSE_S}), tmp_path)
    assert run.step("addon:redis").attempts == len(run.helm_installs("kb-addon-redis")) >= 2


def test_an_addon_another_preview_is_installing_is_waited_for_and_then_skipped(
    values_dir: Path, tmp_path: Path
) -> None:
    held_s = 2.5 * RACE_RETRY_PAUSE_S
    run = simulate(plan_for(values_dir), Scenario(helm_locked={"kb-addon-redis": held_s}), tmp_path)
    installs = run.helm_installs("kb-addon-redis")
    assert len(installs) >= 2  # retried while the other client held the lock ...
    assert {c.exit_code for c in installs} == {1}  # ... and never needed to install it itself
    step = run.step("addon:redis")
    assert (step.outcome, step.cause) == (Outcome.SKIPPED, "already present: the redis addon 1.0.1; verified healthy")
    assert run.outcome("redis") is Outcome.PASSED


def test_kubeblocks_another_preview_is_installing_is_verified_instead_of_failing(
    values_dir: Path, tmp_path: Path
) -> None:
    run = simulate(plan_for(values_dir), Scenario(helm_locked={"kubeblocks": 20.0}), tmp_path)
    assert [c.exit_code for c in run.helm_installs("kubeblocks")] == [1]
    assert run.step("kubeblocks").outcome is Outcome.SKIPPED
    assert {d.outcome for d in run.results.databases} == {Outcome.PASSED}


def test_a_helm_lock_that_is_never_released_fails_with_helms_words_within_the_step_timeout(
    values_dir: Path, tmp_path: Path
) -> None:
    run = simulate(plan_for(values_dir, "timeouts.addon=60"), Scenario(helm_locked={"kb-addon-redis": 1e9}), tmp_path)
    step = run.step("addon:redis")
    assert step.outcome is Outcome.FAILED
    assert HELM_LOCKED in (step.cause or "")
    assert (step.duration_s or 0) <= 60 + Scenario().latencies.helm_s  # the budget, plus the last refusal
    assert len(run.helm_installs("kb-addon-redis")) > 2


@pytest.mark.parametrize(
    ("outage", "said"),
    [
        (Outage.UNAVAILABLE, "Error from server (ServiceUnavailable): the server is currently unable to handle the"),
        (Outage.TIMEOUT, "Error from server (Timeout): the server was unable to return a response in the time"),
        (Outage.EOF, "Unable to connect to the server: EOF"),
        (Outage.REFUSED, "The connection to the server 127.0.0.1:6443 was refused"),
    ],
)
def test_transient_api_errors_are_retried_with_growing_pauses(
    values_dir: Path, tmp_path: Path, outage: Outage, said: str
) -> None:
    run = simulate(plan_for(values_dir), Scenario(api_outage=(0.0, 6.0), outage=outage), tmp_path)
    assert {s.outcome for s in run.results.steps} == {Outcome.PASSED}
    probe = run.calls("kubectl", "get", "crd")
    tries = [c for c in probe if c.argv == probe[0].argv]
    assert [c.exit_code for c in tries][:3] == [1, 1, 1]
    assert said in tries[0].stderr
    pauses = [later.started - earlier.ended for earlier, later in itertools.pairwise(tries)]
    assert pauses[0] == pytest.approx(BACKOFF_FIRST_S)
    assert pauses[1] == pytest.approx(2 * BACKOFF_FIRST_S)


def test_an_install_repeated_after_an_api_error_counts_each_try_as_an_attempt(values_dir: Path, tmp_path: Path) -> None:
    # The API server is down from just before KubeBlocks' install until a few seconds later.
    run = simulate(plan_for(values_dir), Scenario(api_outage=(5.5, 9.0)), tmp_path)
    installs = run.helm_installs("kubeblocks")
    assert [c.exit_code for c in installs] == [1, 0]
    assert installs[0].stderr.startswith("Error: Kubernetes cluster unreachable")
    step = run.step("kubeblocks")
    assert (step.outcome, step.attempts) == (Outcome.PASSED, 2)


def test_an_api_that_stays_down_fails_with_kubectls_verdict_not_its_klog_lines(
    values_dir: Path, tmp_path: Path
) -> None:
    run = simulate(plan_for(values_dir), Scenario(api_outage=(0.0, 1e9), outage=Outage.REFUSED), tmp_path)
    step = run.step("snapshot-crds")
    assert step.outcome is Outcome.FAILED
    assert (step.cause or "").startswith(
        "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n"
    )
    assert run.calls("kubectl", "get", "crd")[0].stderr.startswith("E0101 00:00:00.000000   12345 memcache.go:265]")
    assert (step.duration_s or 0) < plan_for(values_dir).step("snapshot-crds").timeout_s
    assert run.step("kubeblocks").outcome is Outcome.NOT_RUN


# --- releases a killed helm left pending ---------------------------------------------------------------------------


def test_an_addon_release_a_killed_upgrade_left_pending_is_rolled_back_with_a_note(
    values_dir: Path, tmp_path: Path
) -> None:
    stuck = {"kb-addon-redis": Stuck("kb-system", "redis", "pending-upgrade", age_s=3600)}
    run = simulate(plan_for(values_dir), Scenario(preinstalled=True, stuck=stuck), tmp_path)
    step = run.step("addon:redis")
    assert step.outcome is Outcome.PASSED
    assert run.calls("helm", "rollback", "kb-addon-redis", "1")
    assert [c.exit_code for c in run.helm_installs("kb-addon-redis")] == [1, 0]
    assert step.notes == [
        "Helm release kb-addon-redis (namespace kb-system) was pending-upgrade at revision 2 for 60 min, left by a "
        "helm that was killed: rolled back to revision 1"
    ]
    write_reports(run.results, tmp_path / "reports")
    assert f"- {step.title}: {step.notes[0]}" in (tmp_path / "reports" / "summary.md").read_text()
    assert json.loads((tmp_path / "reports" / "summary.json").read_text())["steps"][5]["notes"] == step.notes


def test_a_cluster_release_whose_first_install_was_killed_is_uninstalled_and_installed_again(
    values_dir: Path, tmp_path: Path
) -> None:
    stuck = {"redis-cluster": Stuck("default", "redis-cluster", "pending-install", age_s=7200)}
    run = simulate(plan_for(values_dir), Scenario(stuck=stuck), tmp_path)
    step = run.step("cluster:redis")
    assert step.outcome is Outcome.PASSED
    uninstall = run.calls("helm", "uninstall", "redis-cluster")
    assert len(uninstall) == 1 and "--wait" in uninstall[0].argv
    assert step.notes and step.notes[0].endswith("uninstalled (it never deployed) before installing it again")


def test_a_young_pending_release_is_another_clients_and_is_freed_only_once_older_than_the_step_limit(
    values_dir: Path, tmp_path: Path
) -> None:
    plan = plan_for(values_dir)
    stale_after = plan.step("addon:redis").timeout_s + ABANDONED_AFTER_MARGIN_S
    stuck = {"kb-addon-redis": Stuck("kb-system", "redis", "pending-upgrade", age_s=100)}
    run = simulate(plan, Scenario(preinstalled=True, stuck=stuck), tmp_path)
    step = run.step("addon:redis")
    assert step.outcome is Outcome.PASSED
    rollback = run.calls("helm", "rollback", "kb-addon-redis")
    assert len(rollback) == 1
    # Not before the record was older than the limit plus the margin: until then a live helm may hold it,
    # so the step waited, trying again every few seconds.
    one_try = RACE_RETRY_PAUSE_S + Scenario().latencies.helm_s + 1  # pause, refused install, history
    assert stale_after - 100 <= rollback[0].started < stale_after - 100 + one_try
    assert len(run.helm_installs("kb-addon-redis")) > 10
    assert len(step.notes) == 1


def test_helm_gets_the_seconds_left_in_its_step_as_its_own_timeout(values_dir: Path, tmp_path: Path) -> None:
    run = simulate(plan_for(values_dir), Scenario(), tmp_path)
    step = run.step("cluster:redis")
    install = run.helm_installs("redis-cluster")[0]
    left = plan_for(values_dir).step("cluster:redis").timeout_s - (
        install.started + run.sim.origin - (step.started_at or 0)
    )
    assert f"--timeout={math.ceil(left)}s" in install.argv


# --- what the progress display is told -----------------------------------------------------------------------


def shown(plan: Plan, runner: Runner, out: Path, *, cancel_after: float | None = None) -> list[str]:
    """The plain progress lines of a run in virtual time (clock at 0), without their time stamps."""
    stream = io.StringIO()

    async def main() -> None:
        with anyio.move_on_after(cancel_after if cancel_after is not None else math.inf):
            await run_plan(
                plan, runner, out, cluster_kind="simulated", progress=PlainProgress(stream), clock=anyio.current_time
            )

    in_virtual_time(main)
    lines = stream.getvalue().splitlines()
    assert all(line.startswith("1970-01-01T") for line in lines)
    return [line.split(" ", 1)[1] for line in lines]


def test_progress_says_what_each_step_waits_for(values_dir: Path, tmp_path: Path) -> None:
    sim = SimCluster(Scenario(helm_locked={"kb-addon-redis": 2.5 * RACE_RETRY_PAUSE_S}))
    lines = shown(plan_for(values_dir), sim, tmp_path)
    assert (
        "snapshot-crds waiting: waiting for crd/volumesnapshotclasses.snapshot.storage.k8s.io to be Established"
        in lines
    )
    assert f"addon:redis waiting: waiting for another client: Error: UPGRADE FAILED: {HELM_LOCKED}" in lines


def test_progress_notes_a_release_left_pending_at_the_runs_own_time(values_dir: Path, tmp_path: Path) -> None:
    stuck = {"kb-addon-redis": Stuck("kb-system", "redis", "pending-upgrade", age_s=3600)}
    lines = shown(plan_for(values_dir), SimCluster(Scenario(preinstalled=True, stuck=stuck)), tmp_path)
    assert [line for line in lines if line.startswith("addon:redis waiting: Helm release kb-addon-redis")]


def test_progress_shows_the_steps_a_cancellation_stopped(values_dir: Path, tmp_path: Path) -> None:
    lines = shown(plan_for(values_dir), SimCluster(Scenario()), tmp_path, cancel_after=100)
    assert (
        "kubeblocks cancelled after 95 s: run cancelled while waiting for deployment/kubeblocks to roll out; "
        "waiting for deployment/kubeblocks-dataprotection to roll out"
    ) in lines


class Ticked(Progress):
    """A display that wants to be told every second that time passed, as the terminal table does."""

    ticks = True

    def __init__(self) -> None:
        self.at: list[float] = []

    def tick(self, at: float) -> None:
        self.at.append(at)


def test_a_display_that_ticks_is_told_every_second_until_the_run_ends(values_dir: Path, tmp_path: Path) -> None:
    display = Ticked()

    async def main() -> RunResults:
        return await run_plan(
            plan_for(values_dir),
            SimCluster(),
            tmp_path,
            cluster_kind="simulated",
            progress=display,
            clock=anyio.current_time,
        )

    results = in_virtual_time(main)
    assert display.at[:3] == [1.0, 2.0, 3.0]
    assert display.at == [float(n) for n in range(1, len(display.at) + 1)]
    assert (results.ended_at or 0) - 1 <= display.at[-1] <= (results.ended_at or 0)


# --- a misbehaving runner -----------------------------------------------------------------------------------


class Sabotaged:
    """The simulated cluster, except that one command raises or is killed by the runner's timeout."""

    def __init__(self, sim: SimCluster, argv_start: tuple[str, ...], *, raises: bool) -> None:
        self.sim, self.argv_start, self.raises = sim, argv_start, raises

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if command.argv[: len(self.argv_start)] == self.argv_start:
            if self.raises:
                raise RuntimeError("engine connection lost")
            return CommandResult(-9, "", "", timed_out=True)
        return await self.sim.run(command, timeout_s=timeout_s)


def test_a_runner_that_raises_fails_only_that_step(values_dir: Path, tmp_path: Path) -> None:
    runner = Sabotaged(SimCluster(), ("helm", "upgrade", "--install", "redis-cluster"), raises=True)
    results = run_simulated(plan_for(values_dir), runner, tmp_path)
    redis = next(s for s in results.steps if s.id == "cluster:redis")
    assert (redis.outcome, redis.cause) == (Outcome.FAILED, "runner error: RuntimeError: engine connection lost")
    assert {d.key for d in results.databases if d.outcome is Outcome.PASSED} == {
        "postgresql",
        "qdrant",
        "elasticsearch",
    }


class Wedged:
    """The simulated cluster, except that one command never answers (a runner that ignores its timeout)."""

    def __init__(self, sim: SimCluster, argv_start: tuple[str, ...]) -> None:
        self.sim, self.argv_start = sim, argv_start

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if command.argv[: len(self.argv_start)] == self.argv_start:
            await anyio.sleep_forever()
        return await self.sim.run(command, timeout_s=timeout_s)


def test_a_command_that_never_returns_times_out_the_step_naming_the_tool(values_dir: Path, tmp_path: Path) -> None:
    runner = Wedged(SimCluster(), ("helm", "upgrade", "--install", "qdrant-cluster"))
    results = run_simulated(plan_for(values_dir), runner, tmp_path)
    qdrant = next(s for s in results.steps if s.id == "cluster:qdrant")
    assert (qdrant.outcome, qdrant.cause) == (Outcome.TIMED_OUT, "timed out after 600 s running helm")


class Grumbling:
    """The simulated cluster, except that Qdrant's install succeeds with a transient-sounding warning on stderr."""

    def __init__(self, sim: SimCluster) -> None:
        self.sim = sim

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        done = await self.sim.run(command, timeout_s=timeout_s)
        if command.argv[:4] == ("helm", "upgrade", "--install", "qdrant-cluster"):
            return dataclasses.replace(done, stderr="W1201 warning: http2: client connection lost, reconnected\n")
        return done


def test_a_command_that_succeeded_is_not_repeated_whatever_it_warned(values_dir: Path, tmp_path: Path) -> None:
    sim = SimCluster()
    results = run_simulated(plan_for(values_dir), Grumbling(sim), tmp_path)
    assert len([c for c in sim.calls if c.argv[:4] == ("helm", "upgrade", "--install", "qdrant-cluster")]) == 1
    qdrant = next(s for s in results.steps if s.id == "cluster:qdrant")
    assert (qdrant.outcome, qdrant.attempts) == (Outcome.PASSED, 1)


def test_a_command_killed_by_the_runner_timeout_is_a_timeout(values_dir: Path, tmp_path: Path) -> None:
    runner = Sabotaged(SimCluster(), ("helm", "upgrade", "--install", "qdrant-cluster"), raises=False)
    results = run_simulated(plan_for(values_dir), runner, tmp_path)
    qdrant = next(s for s in results.steps if s.id == "cluster:qdrant")
    assert qdrant.outcome is Outcome.TIMED_OUT
    assert (qdrant.cause or "").startswith("timed out after 600 s running helm upgrade --install qdrant-cluster")


class Leaky:
    """The simulated cluster, except that Redis's install fails and Qdrant's raises, both saying a credential."""

    def __init__(self, sim: SimCluster) -> None:
        self.sim = sim

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if command.argv[:4] == ("helm", "upgrade", "--install", "redis-cluster"):
            stderr = (
                "Error: INSTALLATION FAILED: https://ci:Hunter2pw@charts.example.com/index.yaml: password=Hunter2pw\n"
            )
            return CommandResult(1, "", stderr)
        if command.argv[:4] == ("helm", "upgrade", "--install", "qdrant-cluster"):
            raise RuntimeError("engine lost; token=abc123def")
        return await self.sim.run(command, timeout_s=timeout_s)


def test_the_orchestrator_masks_credentials_in_the_causes_it_records(values_dir: Path, tmp_path: Path) -> None:
    """Before any report: results.json and the returned results already hold the masked causes."""
    results = run_simulated(plan_for(values_dir), Leaky(SimCluster()), tmp_path)
    saved = RunResults.from_json(json.loads((tmp_path / "results.json").read_text()))
    for found in (results, saved):
        causes = {s.id: s.cause for s in found.steps if s.outcome is Outcome.FAILED}
        assert causes == {
            "cluster:redis": (
                "Error: INSTALLATION FAILED: https://ci:***@charts.example.com/index.yaml: password=***\n"
                "command: helm upgrade --install redis-cluster redis-cluster --repo https://apecloud.github.io/helm-charts"
                " --version 1.0.1 -n default --create-namespace --timeout=600s -f - < values"
            ),
            "cluster:qdrant": "runner error: RuntimeError: engine lost; token=***",
        }
    text = (tmp_path / "results.json").read_text()
    assert "Hunter2pw" not in text and "abc123def" not in text


# --- cancellation ------------------------------------------------------------------------------------------


def test_cancellation_still_writes_results_with_cancelled_and_not_run_steps(values_dir: Path, tmp_path: Path) -> None:
    sim = SimCluster(Scenario())
    plan = plan_for(values_dir)

    async def main() -> None:
        with anyio.move_on_after(100):
            await run_plan(plan, sim, tmp_path, cluster_kind="simulated", clock=anyio.current_time)

    in_virtual_time(main)
    saved = RunResults.from_json(json.loads((tmp_path / "results.json").read_text()))
    steps = {s.id: s for s in saved.steps}
    assert steps["snapshot-crds"].outcome is Outcome.PASSED
    assert steps["kubeblocks"].outcome is Outcome.CANCELLED
    assert steps["kubeblocks"].cause == (
        "run cancelled while waiting for deployment/kubeblocks to roll out; "
        "waiting for deployment/kubeblocks-dataprotection to roll out"
    )
    assert "diagnostics/kubeblocks/kubeblocks.log" in steps["kubeblocks"].diagnostics
    assert steps["addon:redis"].outcome is Outcome.NOT_RUN
    assert steps["addon:redis"].cause == "not run: the run was cancelled first"
    assert saved.ended_at is not None


# --- teardown ----------------------------------------------------------------------------------------------


def test_teardown_removes_clusters_before_addons_and_kubeblocks(values_dir: Path, tmp_path: Path) -> None:
    config = validate(values_dir).config
    sim = SimCluster(Scenario())
    found: list[RunResults] = []
    left: dict[str, list[str]] = {}

    async def main() -> None:
        await run_plan(build_plan(config), sim, tmp_path / "deploy", cluster_kind="simulated")
        left["before"] = sim.live("cluster")
        plan = build_teardown_plan(config, remove_kubeblocks=True)
        found.append(
            await run_plan(plan, sim, tmp_path / "teardown", cluster_kind="simulated", clock=anyio.current_time)
        )
        left.update({kind: sim.live(kind) for kind in ("cluster", "clusterdefinition", "deployment", "crd")})

    in_virtual_time(main)
    assert sim.unknown == []
    assert len(left["before"]) == 4
    assert {kind: names for kind, names in left.items() if kind not in ("before", "crd")} == {
        "cluster": [],
        "clusterdefinition": [],
        "deployment": ["snapshot-controller"],
    }
    steps = {s.id: s for s in found[0].steps}
    assert {s.outcome for s in steps.values()} == {Outcome.PASSED}
    last_cluster_gone = max(s.ended_at or 0 for s in steps.values() if s.kind == "uninstall-cluster")
    first_addon = min(s.started_at or 0 for s in steps.values() if s.kind == "uninstall-addon")
    assert last_cluster_gone <= first_addon
    assert (steps["uninstall-kubeblocks"].started_at or 0) >= max(
        s.ended_at or 0 for s in steps.values() if s.kind == "uninstall-addon"
    )


def test_teardown_all_leaves_the_crds_and_snapshot_support_it_cannot_know_it_installed(
    values_dir: Path, tmp_path: Path
) -> None:
    config = validate(values_dir).config
    plan = build_teardown_plan(config, remove_kubeblocks=True)
    sim = SimCluster(Scenario(preinstalled=True))  # CRDs, snapshot support and KubeBlocks were there before dbstack
    found: list[RunResults] = []
    left: dict[str, list[str]] = {}

    async def main() -> None:
        found.append(await run_plan(plan, sim, tmp_path, cluster_kind="simulated"))
        left.update({kind: sim.live(kind) for kind in ("crd", "deployment")})

    in_virtual_time(main)
    assert sim.unknown == []
    assert {s.outcome for s in found[0].steps} == {Outcome.PASSED}
    assert left["crd"] == sorted([*KUBEBLOCKS_CRDS, *(f"{c}.snapshot.storage.k8s.io" for c in SNAPSHOT_CRDS)])
    assert left["deployment"] == ["snapshot-controller"]
    deletes = [c.argv for c in sim.calls if c.argv[:2] == ("kubectl", "delete")]
    assert deletes == [("kubectl", "delete", "namespace", config.kubeblocks_namespace, "--ignore-not-found")]


def test_teardown_without_all_only_removes_clusters_and_tolerates_missing_ones(
    values_dir: Path, tmp_path: Path
) -> None:
    plan = build_teardown_plan(validate(values_dir).config, remove_kubeblocks=False)
    assert {s.kind.value for s in plan.steps} == {"uninstall-cluster"}
    run = simulate(plan, Scenario(), tmp_path)  # a cluster without KubeBlocks: no releases, not even the CRDs
    assert {s.outcome for s in run.results.steps} == {Outcome.PASSED}
    assert {c.exit_code for c in run.calls("kubectl", "wait")} == {1}  # "doesn't have a resource type": gone


@pytest.mark.parametrize(
    ("helm_version", "helm_says"),
    [
        ("3.16.4", "helm: Error: uninstallation completed with 1 error(s): context deadline exceeded"),
        (
            "4.0.5",
            "helm: Error: uninstallation completed with 1 error(s): resource still exists, name: pg-cluster, "
            "kind: Cluster, status: Terminating",
        ),
    ],
)
def test_a_helm_uninstall_whose_wait_runs_out_is_a_timeout_within_the_step_limit(
    values_dir: Path, tmp_path: Path, helm_version: str, helm_says: str
) -> None:
    config = validate(values_dir).config
    sim = SimCluster(Scenario(stuck_deletion=frozenset({"pg-cluster"}), helm_version=helm_version))
    found: list[RunResults] = []

    async def main() -> None:
        await run_plan(build_plan(config), sim, tmp_path / "deploy", cluster_kind="simulated")
        plan = build_teardown_plan(config, remove_kubeblocks=False)
        found.append(await run_plan(plan, sim, tmp_path / "down", cluster_kind="simulated", clock=anyio.current_time))

    in_virtual_time(main)
    steps = {s.id: s for s in found[0].steps}
    pg = steps["uninstall-cluster:postgresql"]
    assert pg.outcome is Outcome.TIMED_OUT
    cause = (pg.cause or "").splitlines()
    assert cause[0].startswith("timed out after 300 s running helm uninstall pg-cluster -n default")
    assert cause[1] == helm_says
    # Helm's own --timeout (the seconds left) ran out, well before the runner's backstop.
    assert (pg.duration_s or 0) <= 300 + Scenario().latencies.helm_s
    assert steps["uninstall-cluster:redis"].outcome is Outcome.PASSED


# --- any anyio backend -------------------------------------------------------------------------------------


def test_the_same_run_works_under_asyncio_in_real_time(values_dir: Path, tmp_path: Path) -> None:
    sim = SimCluster(Scenario(latencies=Latencies.uniform(0.001)))
    found: list[RunResults] = []

    async def main() -> None:
        found.append(await run_plan(plan_for(values_dir), sim, tmp_path, cluster_kind="simulated"))

    anyio.run(main, backend="asyncio")
    assert {s.outcome for s in found[0].steps} == {Outcome.PASSED}
    assert sim.unknown == []
