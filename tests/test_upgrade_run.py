"""Scenario tests: upgrade tests on the simulated cluster in virtual time (the base deployed, markers written, the
upgrade stage, markers read back), and `dbstack upgrade-test` on the host with the simulator as its runner."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from dbstack.plan.upgrade import UpgradePlan, load_upgrade_plan
from dbstack.report import write_reports
from dbstack.run.orchestrator import WATCH_INTERVAL_S
from dbstack.run.results import CheckResult, Outcome, RunResults, StepResult
from dbstack.run.upgraderun import SmokeRun
from dbstack.sim.cluster import (
    Failure,
    Scenario,
    SimCluster,
    catalog_topology,
    run_upgrade_simulated,
)
from upstream import rendered_topology, upstream_available

MARKER_CHECK = "markers"
"""The check name the fake smoke runs below give the marker writers and readers."""


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def base_dir(values_dir: Path) -> Path:
    target = values_dir.parent / "base"
    shutil.copytree(values_dir, target)
    return target


def scenario(**changes: object) -> Scenario:
    topology = rendered_topology if upstream_available() else catalog_topology
    return dataclasses.replace(Scenario(topology=topology), **changes)  # type: ignore[arg-type]


def marker_runs(lost: frozenset[str] = frozenset()) -> tuple[list[str], SmokeRun, SmokeRun]:
    """Fake smoke runs: one that writes a marker per ready database, one that reads them back (those in `lost`
    read back nothing) and passes one ordinary check per ready database; the calls are logged."""
    log: list[str] = []

    async def write(results: RunResults) -> None:
        log.append("write")
        for d in results.databases:
            if d.outcome is Outcome.PASSED:
                d.checks = [CheckResult(d.key, MARKER_CHECK, Outcome.PASSED)]
        results.smoke_outcome = Outcome.PASSED

    async def verify(results: RunResults) -> None:
        log.append("verify")
        for d in results.databases:
            if d.outcome is not Outcome.PASSED:
                continue  # the suite only reaches databases that came back
            read = Outcome.FAILED if d.key in lost else Outcome.PASSED
            message = f"marker {d.key}-1 missing" if d.key in lost else None
            d.checks = [
                CheckResult(d.key, MARKER_CHECK, read, message=message),
                CheckResult(d.key, "ping", Outcome.PASSED),
            ]
        failed = any(not c.outcome.ok for d in results.databases for c in d.checks)
        results.smoke_outcome = Outcome.FAILED if failed else Outcome.PASSED

    return log, write, verify


def is_marker(check: CheckResult) -> bool:
    return check.name == MARKER_CHECK


def run(
    upgrade: UpgradePlan, sim: SimCluster, out: Path, lost: frozenset[str] = frozenset()
) -> tuple[RunResults, list[str]]:
    log, write, verify = marker_runs(lost)
    results = run_upgrade_simulated(
        upgrade,
        sim,
        out,
        write_markers=write,
        after_upgrade=verify,
        is_marker_check=is_marker,
    )
    assert sim.unknown == []
    return results, log


def step(results: RunResults, step_id: str) -> StepResult:
    return next(s for s in results.steps if s.id == step_id)


def helm_upgrades(sim: SimCluster, release: str) -> int:
    return sum(1 for c in sim.calls if c.argv[:4] == ("helm", "upgrade", "--install", release))


def test_an_upgrade_runs_only_what_changed_after_the_base_and_its_markers(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario())
    results, log = run(upgrade, sim, tmp_path / "out")

    assert log == ["write", "verify"]
    assert results.passed, [(s.id, s.cause) for s in results.steps if not s.outcome.ok]
    ids = [s.id for s in results.steps]
    assert ids == [s.id for s in upgrade.base.steps] + ["upgrade:cluster:postgresql", "upgrade:cluster:redis"]
    # Changed releases got a second `helm upgrade`, unchanged ones none, and nothing of the platform was touched.
    assert (helm_upgrades(sim, "pg-cluster"), helm_upgrades(sim, "redis-cluster")) == (2, 2)
    assert (
        helm_upgrades(sim, "qdrant-cluster"),
        helm_upgrades(sim, "es-cluster"),
        helm_upgrades(sim, "kubeblocks"),
    ) == (1, 1, 1)
    # Each upgrade waited until its Cluster ran the new spec: observed, upToDate, Running after the rolling restart.
    lat = sim.scenario.latencies
    redis = step(results, "upgrade:cluster:redis")
    assert (redis.duration_s or 0) >= lat.helm_s + lat.observe_s + lat.stale_phase_s + lat.cluster_s["redis"]
    assert redis.ended_at == pytest.approx(sim.ready_times()["cluster/redis-cluster"] + sim.origin, abs=0.5)
    assert results.upgrade is not None
    assert results.upgrade.started_at is not None and results.upgrade.started_at >= (
        step(results, "cluster:elasticsearch").ended_at or 0
    )
    assert results.upgrade.markers_outcome is Outcome.PASSED
    assert {s.database: s.outcome for s in results.upgrade.survival} == dict.fromkeys(
        ("postgresql", "redis", "qdrant", "elasticsearch"), Outcome.PASSED
    )
    changes = {c.id: c for c in results.upgrade.changes}
    assert changes["cluster:redis"].diff == ["~ requests.cpu: 0.1 -> 0.2"]
    pg = next(d for d in results.databases if d.key == "postgresql")
    assert pg.version == "16.9.0" and results.versions["postgresql"] == "16.9.0"


def test_a_pod_that_fails_after_the_upgrade_fails_its_step_fast_with_diagnostics(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario(upgrade_failures={"postgresql": Failure.CRASHLOOP}))
    out = tmp_path / "out"
    results, _ = run(upgrade, sim, out)

    assert not results.passed
    pg = step(results, "upgrade:cluster:postgresql")
    assert pg.outcome is Outcome.FAILED
    # The rolling restart replaced the highest ordinal first; that pod crash-loops and the other keeps serving.
    assert "pg-cluster-postgresql-1" in (pg.cause or "") and "CrashLoopBackOff" in (pg.cause or "")
    lat = sim.scenario.latencies
    assert (
        pg.duration_s or 0
    ) <= lat.helm_s + lat.observe_s + lat.stale_phase_s + lat.failure_after_s + 3 * WATCH_INTERVAL_S
    assert "diagnostics/postgresql/logs-previous.txt" in pg.diagnostics
    assert (out / "diagnostics/postgresql/logs-previous.txt").read_text().count("==> pod/") == 1
    # The other upgrade went on, and its database still passed.
    assert step(results, "upgrade:cluster:redis").outcome is Outcome.PASSED
    assert results.upgrade is not None
    survival = {s.database: s for s in results.upgrade.survival}
    assert survival["postgresql"].outcome is Outcome.FAILED
    assert survival["postgresql"].message == "its Cluster did not come back after the upgrade (failed)"
    assert survival["redis"].outcome is Outcome.PASSED
    write_reports(results, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is False


def test_markers_that_do_not_read_back_fail_that_database(base_dir: Path, values_dir: Path, tmp_path: Path) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    results, _ = run(upgrade, SimCluster(scenario()), tmp_path / "out", lost=frozenset({"redis"}))
    assert results.upgrade is not None
    survival = {s.database: s for s in results.upgrade.survival}
    assert (survival["redis"].outcome, survival["redis"].message) == (Outcome.FAILED, "marker redis-1 missing")
    assert survival["qdrant"].outcome is Outcome.PASSED
    assert not results.passed


def test_a_base_that_fails_leaves_the_upgrade_not_run(base_dir: Path, values_dir: Path, tmp_path: Path) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario(failures={"redis": Failure.IMAGE_PULL}))
    results, log = run(upgrade, sim, tmp_path / "out")
    assert log == []  # no marker is written to a base that did not come up
    stage = step(results, "upgrade:cluster:redis")
    assert (stage.outcome, stage.cause) == (Outcome.NOT_RUN, "not run: the base deployment did not succeed")
    assert helm_upgrades(sim, "redis-cluster") == 1
    assert not results.passed


def test_markers_that_cannot_be_written_leave_the_upgrade_not_run(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")

    async def write(results: RunResults) -> None:
        redis = next(d for d in results.databases if d.key == "redis")
        redis.checks = [CheckResult("redis", MARKER_CHECK, Outcome.FAILED, message="NOPERM this user has no access")]
        results.smoke_outcome = Outcome.FAILED

    sim = SimCluster(scenario())
    results = run_upgrade_simulated(upgrade, sim, tmp_path / "out", write_markers=write, is_marker_check=is_marker)
    assert results.upgrade is not None
    assert results.upgrade.markers_outcome is Outcome.FAILED
    assert results.upgrade.markers_cause == "redis: NOPERM this user has no access"
    assert (
        step(results, "upgrade:cluster:redis").cause
        == "not run: the marker data could not be written before the upgrade"
    )
    # What the writers recorded is the record's, not the run's smoke suite.
    assert all(d.checks == [] for d in results.databases) and results.smoke_outcome is Outcome.NOT_RUN
    assert not results.passed


def test_a_kubeblocks_upgrade_rolls_kubeblocks_and_checks_every_cluster_untouched(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(base_dir / "pipeline.yaml", "version: 1.0.1\n  namespace: kb-system", "version: 1.0.0\n  namespace: kb-system")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario())
    results, _ = run(upgrade, sim, tmp_path / "out")
    assert results.passed, [(s.id, s.cause) for s in results.steps if not s.outcome.ok]
    kubeblocks = step(results, "upgrade:kubeblocks")
    assert (kubeblocks.duration_s or 0) >= sim.scenario.latencies.kubeblocks_s  # the new version rolled out
    assert [c.argv[-1] for c in sim.calls if c.argv[:2] == ("helm", "upgrade") and c.argv[3] == "kubeblocks"] != []
    assert all(helm_upgrades(sim, r) == 1 for r in ("pg-cluster", "redis-cluster", "qdrant-cluster", "es-cluster"))
    checks = [s for s in results.steps if s.id.startswith("upgrade:check:")]
    assert len(checks) == 4 and all(s.outcome is Outcome.PASSED for s in checks)
    assert all((s.started_at or 0) >= (kubeblocks.ended_at or 0) for s in checks)


def test_the_rolling_restart_takes_one_pod_at_a_time(base_dir: Path, values_dir: Path, tmp_path: Path) -> None:
    """PostgreSQL's two pods restart one after another (the highest ordinal first): at every look of the watch at
    most one is unready, and the Cluster says Updating meanwhile."""
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario())
    seen: list[tuple[str, int]] = []
    original = sim.run

    async def spying(command, *, timeout_s):  # type: ignore[no-untyped-def]
        done = await original(command, timeout_s=timeout_s)
        argv = command.argv
        if argv[-2:] == ("-o", "json") and "pods" in argv and "app.kubernetes.io/instance=pg-cluster" in argv:
            pods = json.loads(done.stdout)["items"]
            unready = sum(
                1 for p in pods if not any(c == {"type": "Ready", "status": "True"} for c in p["status"]["conditions"])
            )
            cluster = await original(
                type(command)(
                    ("kubectl", "-n", "default", "get", "clusters.apps.kubeblocks.io", "pg-cluster", "-o", "json")
                ),
                timeout_s=30,
            )
            seen.append((json.loads(cluster.stdout)["status"]["phase"], unready))
        return done

    sim.run = spying  # type: ignore[method-assign]
    results, _ = run(upgrade, sim, tmp_path / "out")
    assert results.passed
    upgrading = seen[seen.index(next(s for s in seen if s[0] == "Updating")) :]
    # Never both pods down; a look while Updating finds the one restarting (or, by a look's 0.2 s, none yet).
    assert max(unready for _, unready in upgrading) == 1
    assert {unready for phase, unready in upgrading if phase == "Updating"} <= {0, 1}
    assert sum(1 for phase, unready in upgrading if (phase, unready) == ("Updating", 1)) >= 10


def test_the_host_cli_upgrades_and_says_it_checked_no_marker(
    base_dir: Path, values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dbstack.cli.main import build_parser
    from dbstack.cli.upgrade import HOST_NO_MARKERS, upgrade_test
    from dbstack.sim.cluster import Latencies

    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    out = tmp_path / "reports"
    args = build_parser().parse_args(
        [
            *("upgrade-test", "--values", str(values_dir), "--base-values", str(base_dir), "--profile", "ci"),
            *("--out", str(out), "--progress", "plain"),
        ]
    )
    code = upgrade_test(args, runner=SimCluster(Scenario(latencies=Latencies.uniform(0.001))))
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "upgrade-test passed; reports in" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is True
    assert summary["smoke"]["outcome"] == "skipped"
    upgrade = summary["upgrade"]
    assert {s["outcome"] for s in upgrade["survival"]} == {"skipped"}
    assert upgrade["survival"][0]["message"] == f"no marker was written: {HOST_NO_MARKERS}"


def test_the_reports_tell_the_phases_apart_by_the_plans_prefix() -> None:
    from dbstack.plan.upgrade import PREFIX
    from dbstack.run.results import UPGRADE_STEP_PREFIX

    assert PREFIX == UPGRADE_STEP_PREFIX
