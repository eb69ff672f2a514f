"""Scenario tests: upgrade tests on the simulated cluster in virtual time (the base deployed, markers written, the
upgrade stage, markers read back), and `dbstack upgrade-test` on the host with the simulator as its runner."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from dbstack.plan.model import Markers
from dbstack.plan.upgrade import UpgradePlan, load_upgrade_plan
from dbstack.report import write_reports
from dbstack.run.orchestrator import WATCH_INTERVAL_S
from dbstack.run.results import CheckResult, Outcome, RunResults, StepResult
from dbstack.run.smokeenv import marker_check_name
from dbstack.sim.cluster import (
    Failure,
    Scenario,
    SimCluster,
    catalog_topology,
    run_upgrade_simulated,
)
from upstream import rendered_topology, upstream_available


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


class Data:
    """A fake MarkerRunner over the simulated cluster, which holds no data: `write` remembers the markers of a
    database, `verify` finds them unless the database is in `lost` (the real check is the smoke suite's,
    tests/smoke/test_markers.py); every call is logged with its phase, database and endpoint's release."""

    def __init__(self, lost: frozenset[str] = frozenset(), unwritable: frozenset[str] = frozenset()) -> None:
        self.lost, self.unwritable = lost, unwritable
        self.written: set[str] = set()
        self.log: list[tuple[str, str]] = []

    async def __call__(self, markers: Markers, seconds: float) -> CheckResult:
        key, phase = markers.endpoint.database, markers.phase
        self.log.append((phase, key))
        name = marker_check_name(phase, markers.context)
        if phase == "write" and key in self.unwritable:
            return CheckResult(key, name, Outcome.FAILED, message="NOPERM this user has no access")
        if phase == "write":
            self.written.add(key)
            return CheckResult(key, name, Outcome.PASSED)
        if key in self.written and key not in self.lost:
            return CheckResult(key, name, Outcome.PASSED)
        return CheckResult(key, name, Outcome.FAILED, message=f"{key} markers m1 do not read back as written")


async def whole_suite(results: RunResults) -> None:
    """The smoke suite after the upgrade, as the Dagger layer runs it: one check per ready database."""
    for d in results.databases:
        if d.outcome is Outcome.PASSED:
            d.checks.append(CheckResult(d.key, "test_ping", Outcome.PASSED))
    results.smoke_outcome = Outcome.PASSED


def run(upgrade: UpgradePlan, sim: SimCluster, out: Path, data: Data | None = None) -> tuple[RunResults, Data]:
    data = data or Data()
    results = run_upgrade_simulated(upgrade, sim, out, markers=data, after_upgrade=whole_suite)
    assert sim.unknown == []
    return results, data


def step(results: RunResults, step_id: str) -> StepResult:
    return next(s for s in results.steps if s.id == step_id)


def helm_upgrades(sim: SimCluster, release: str) -> int:
    return sum(1 for c in sim.calls if c.argv[:4] == ("helm", "upgrade", "--install", release))


DATABASES = ("postgresql", "redis", "qdrant", "elasticsearch")


def test_an_upgrade_writes_markers_then_upgrades_only_what_changed_then_reads_them_back(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario())
    results, data = run(upgrade, sim, tmp_path / "out")

    assert results.passed, [(s.id, s.cause) for s in results.steps if not s.outcome.ok]
    # Every database's markers were written before any upgrade, and read back after.
    assert sorted(data.log[:4]) == sorted(("write", key) for key in DATABASES)
    assert sorted(data.log[4:]) == sorted(("verify", key) for key in DATABASES)
    ids = [s.id for s in results.steps]
    assert ids[: len(upgrade.base.steps)] == [s.id for s in upgrade.base.steps]
    stage = {s.id: s for s in results.steps[len(upgrade.base.steps) :]}
    writes_end = max(stage[f"upgrade:markers-write:{key}"].ended_at or 0 for key in DATABASES)
    for release in ("postgresql", "redis"):
        upgraded = stage[f"upgrade:cluster:{release}"]
        verify = stage[f"upgrade:markers-verify:{release}"]
        assert (upgraded.started_at or 0) >= writes_end
        assert (verify.started_at or 0) >= (upgraded.ended_at or 0)
    # Changed releases got a second `helm upgrade`, unchanged ones none, and nothing of the platform was touched.
    assert (helm_upgrades(sim, "pg-cluster"), helm_upgrades(sim, "redis-cluster")) == (2, 2)
    assert (
        helm_upgrades(sim, "qdrant-cluster"),
        helm_upgrades(sim, "es-cluster"),
        helm_upgrades(sim, "kubeblocks"),
    ) == (1, 1, 1)
    # Each upgrade waited until its Cluster ran the new spec: observed, upToDate, Running after the rolling restart.
    lat = sim.scenario.latencies
    redis = stage["upgrade:cluster:redis"]
    assert (redis.duration_s or 0) >= lat.helm_s + lat.observe_s + lat.stale_phase_s + lat.cluster_s["redis"]
    assert redis.ended_at == pytest.approx(sim.ready_times()["cluster/redis-cluster"] + sim.origin, abs=0.5)
    assert results.upgrade is not None
    assert results.upgrade.started_at is not None
    assert results.upgrade.started_at >= (step(results, "cluster:elasticsearch").ended_at or 0)
    assert {s.database: s.outcome for s in results.upgrade.survival} == dict.fromkeys(DATABASES, Outcome.PASSED)
    # The marker checks and the suite's own land on each database.
    pg = next(d for d in results.databases if d.key == "postgresql")
    assert [c.name for c in pg.checks] == ["test_markers[write]", "test_markers[verify]", "test_ping"]
    assert pg.version == "16.9.0" and results.versions["postgresql"] == "16.9.0"
    changes = {c.id: c for c in results.upgrade.changes}
    assert changes["cluster:redis"].diff == ["~ requests.cpu: 0.1 -> 0.2"]


def test_a_pod_that_fails_after_the_upgrade_fails_its_step_fast_with_diagnostics(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario(upgrade_failures={"postgresql": Failure.CRASHLOOP}))
    out = tmp_path / "out"
    results, data = run(upgrade, sim, out)

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
    # Its markers were not read back; the other upgrade went on, and its database survived.
    assert ("verify", "postgresql") not in data.log
    assert step(results, "upgrade:cluster:redis").outcome is Outcome.PASSED
    assert results.upgrade is not None
    survival = {s.database: s for s in results.upgrade.survival}
    assert survival["postgresql"].outcome is Outcome.FAILED
    assert (survival["postgresql"].message or "").startswith(
        "its markers were not read back: Upgrade PostgreSQL (pg-cluster) and wait until Running with the new spec "
        "failed: pg-cluster-postgresql-1"
    )
    assert [s.outcome for k, s in survival.items() if k != "postgresql"] == [Outcome.PASSED] * 3
    assert next(d for d in results.databases if d.key == "postgresql").outcome is Outcome.FAILED
    write_reports(results, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is False
    assert "1 of 4 databases did not survive the upgrade (postgresql)" in summary["verdict"]


def test_markers_that_do_not_read_back_fail_that_database_only(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    results, _ = run(upgrade, SimCluster(scenario()), tmp_path / "out", Data(lost=frozenset({"redis"})))
    assert results.upgrade is not None
    survival = {s.database: s for s in results.upgrade.survival}
    assert (survival["redis"].outcome, survival["redis"].message) == (
        Outcome.FAILED,
        "redis markers m1 do not read back as written",
    )
    assert survival["qdrant"].outcome is Outcome.PASSED
    # The Cluster itself came back: the database is deployed, its data is not what it was.
    assert next(d for d in results.databases if d.key == "redis").outcome is Outcome.PASSED
    assert not results.passed


def test_a_base_that_fails_leaves_the_upgrade_not_run(base_dir: Path, values_dir: Path, tmp_path: Path) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario(failures={"redis": Failure.IMAGE_PULL}))
    results, data = run(upgrade, sim, tmp_path / "out")
    assert data.log == []  # no marker is written to a base that did not come up
    stage = step(results, "upgrade:cluster:redis")
    assert (stage.outcome, stage.cause) == (Outcome.NOT_RUN, "not run: the base deployment did not succeed")
    assert helm_upgrades(sim, "redis-cluster") == 1
    assert results.smoke_outcome is Outcome.NOT_RUN
    assert not results.passed


def test_markers_that_cannot_be_written_leave_every_upgrade_not_run(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    sim = SimCluster(scenario())
    results, _ = run(upgrade, sim, tmp_path / "out", Data(unwritable=frozenset({"redis"})))
    write = step(results, "upgrade:markers-write:redis")
    assert (write.outcome, write.cause) == (Outcome.FAILED, "NOPERM this user has no access")
    assert step(results, "upgrade:cluster:redis").outcome is Outcome.NOT_RUN
    assert helm_upgrades(sim, "redis-cluster") == 1
    assert results.upgrade is not None
    survival = {s.database: s for s in results.upgrade.survival}
    assert survival["redis"].message == (
        "its markers were not read back: Write marker data into Redis (redis-cluster) failed: "
        "NOPERM this user has no access"
    )
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
    # Both phases show their progress: the base's steps, then the upgrade stage's.
    shown = [line.split()[1:3] for line in printed.splitlines() if line.startswith("20")]
    assert ["cluster:redis", "passed"] in shown
    assert ["upgrade:cluster:redis", "passed"] in shown
    assert shown.index(["cluster:redis", "passed"]) < shown.index(["upgrade:cluster:redis", "passed"])
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


def test_a_database_the_change_enables_is_installed_and_its_survival_skipped_for_want_of_data(
    base_dir: Path, values_dir: Path, tmp_path: Path
) -> None:
    edit(values_dir / "pipeline.yaml", "  neo4j:\n    enabled: false", "  neo4j:\n    enabled: true")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    results, data = run(upgrade, SimCluster(scenario()), tmp_path / "out")
    assert results.upgrade is not None
    assert [(s.database, s.outcome, s.message) for s in results.upgrade.survival] == [
        ("postgresql", Outcome.PASSED, None),
        ("redis", Outcome.PASSED, None),
        ("qdrant", Outcome.PASSED, None),
        ("elasticsearch", Outcome.PASSED, None),
        ("neo4j", Outcome.SKIPPED, "enabled by the change: it had no data before the upgrade"),
    ]
    assert ("write", "neo4j") not in data.log


def test_the_cautions_of_the_change_are_kept_with_the_results(base_dir: Path, values_dir: Path, tmp_path: Path) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "storage: 1", "storage: 3")
    upgrade = load_upgrade_plan(base_dir, values_dir, "ci")
    results, _ = run(upgrade, SimCluster(scenario()), tmp_path / "out")
    assert results.upgrade is not None
    (caution,) = results.upgrade.cautions
    assert "redis-cluster's redis volumes grow 1 -> 3 Gi" in caution
