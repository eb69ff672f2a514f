"""Scenario tests of the backup stage: the orchestrator running it on the simulated cluster in virtual time, with
the simulator's MarkerRunner standing in for the smoke suite (markers written into a Cluster, kept by its Backup,
given to the restored Cluster, read back or named missing)."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from dbstack.config.validate import validate
from dbstack.plan import backup as stage
from dbstack.plan.build import build_plan
from dbstack.plan.model import Command, Markers, Plan
from dbstack.report import write_reports
from dbstack.run.orchestrator import NO_MARKER_RUNNER, WATCH_INTERVAL_S, run_plan
from dbstack.run.progress import PlainProgress
from dbstack.run.results import BackupResult, CheckResult, Outcome, RunResults, StepResult
from dbstack.run.runner import CommandResult
from dbstack.sim.backups import BackupScenario, SimMarkers
from dbstack.sim.cluster import Scenario, SimCluster, catalog_topology, in_virtual_time, run_simulated
from upstream import rendered_topology, upstream_available

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"


def full_plan(cluster: str = stage.ON_K3S, *overrides: str) -> Plan:
    return build_plan(validate(VALUES, "full", overrides).config, cluster)


@dataclass
class Run:
    results: RunResults
    sim: SimCluster
    markers: SimMarkers | None
    out: Path

    def step(self, step_id: str) -> StepResult:
        return next(s for s in self.results.steps if s.id == step_id)

    def backup(self, key: str) -> BackupResult:
        return next(b for b in self.results.backups if b.database == key)

    def database_outcome(self, key: str) -> Outcome:
        return next(d.outcome for d in self.results.databases if d.key == key)

    def alive(self, kind: str) -> list[str]:
        """The objects of `kind` that exist when the run's last command ended."""
        end = self.sim.origin + max(c.ended for c in self.sim.calls)
        return sorted(o.name for (k, _, _), o in self.sim._objects.items() if k == kind and o.exists(end))

    def checks(self, key: str) -> list[tuple[str, Outcome]]:
        return [(c.name, c.outcome) for d in self.results.databases if d.key == key for c in d.checks]


def simulate(plan: Plan, backup: BackupScenario, out: Path, *, with_markers: bool = True) -> Run:
    scenario = Scenario(backup=backup)
    if upstream_available() and scenario.topology is catalog_topology:
        scenario = dataclasses.replace(scenario, topology=rendered_topology)
    sim = SimCluster(scenario)
    markers = SimMarkers(sim) if with_markers else None
    results = run_simulated(plan, sim, out, markers=markers)
    assert sim.unknown == []
    return Run(results, sim, markers, out)


def test_on_k3s_each_database_is_backed_up_restored_and_read_back_and_everything_is_removed(tmp_path: Path) -> None:
    run = simulate(full_plan(), BackupScenario(), tmp_path)

    failed = {s.id: s.cause for s in run.results.steps if not s.outcome.ok}
    assert failed == {}
    for key, method in (("postgresql", "volume-snapshot"), ("redis", "volume-snapshot"), ("qdrant", "datafile")):
        result = run.backup(key)
        assert (result.method, result.outcome, result.markers_written, result.markers_read_back) == (
            method,
            Outcome.PASSED,
            Outcome.PASSED,
            Outcome.PASSED,
        )
        assert result.size == "48Mi" and result.duration and result.backup_s and result.restore_s
        assert sorted(run.checks(key)) == [
            ("test_markers[clean]", Outcome.PASSED),
            (f"test_markers[verify] (restored {result.restored})", Outcome.PASSED),
            ("test_markers[write]", Outcome.PASSED),
        ]
    assert run.backup("elasticsearch").outcome is Outcome.SKIPPED
    # The restored clusters and the backups are gone; the sources stay, without their markers.
    assert run.alive("cluster") == ["es-cluster", "pg-cluster", "qdrant-cluster", "redis-cluster"]
    end = run.sim.origin + max(c.ended for c in run.sim.calls)
    assert run.sim.backups.backups and all(b.deleted_at <= end for b in run.sim.backups.backups.values())
    assert run.sim.backups.markers[("default", "pg-cluster")] == set()


def test_the_backup_waits_for_completed_without_polling(tmp_path: Path) -> None:
    run = simulate(full_plan(), BackupScenario(), tmp_path)
    waits = [
        c
        for c in run.sim.calls
        if c.argv[:3] == ("kubectl", "wait", "backups.dataprotection.kubeblocks.io/pg-cluster-backup")
        and "jsonpath" in c.argv[5]
    ]
    # One blocking wait for Completed and one for Failed, raced; nothing polled.
    assert sorted(c.argv[5] for c in waits) == [
        "--for=jsonpath={.status.phase}=Completed",
        "--for=jsonpath={.status.phase}=Failed",
    ]
    gets = [
        c
        for c in run.sim.calls
        if c.argv[:4] == ("kubectl", "get", "backups.dataprotection.kubeblocks.io", "pg-cluster-backup")
    ]
    assert [c.argv[-1] for c in gets] == ["jsonpath={.status.totalSize}", "jsonpath={.status.duration}"]


def test_a_backup_that_fails_fails_its_step_at_once_with_the_backup_s_own_reason_and_is_cleaned_up(
    tmp_path: Path,
) -> None:
    reason = "failed to create volume snapshot: rpc error: code = ResourceExhausted desc = not enough space"
    run = simulate(full_plan(), BackupScenario(backup_failures={"redis": reason}), tmp_path)

    backup = run.step("backup:redis")
    assert (backup.outcome, backup.cause) == (
        Outcome.FAILED,
        f"backups.dataprotection.kubeblocks.io/redis-cluster-backup is Failed: {reason}",
    )
    # Noticed when it happened (half-way through the 20 s backup), not at the 900 s limit.
    assert backup.duration_s is not None and backup.duration_s < 30
    assert run.step("restore:redis").outcome is Outcome.NOT_RUN
    assert run.step("markers-verify:redis").outcome is Outcome.NOT_RUN
    # Cleanups still run: the markers leave the source, the failed Backup is deleted.
    assert run.step("markers-clean:redis").outcome is Outcome.PASSED
    assert run.step("backup-cleanup:redis").outcome is Outcome.PASSED
    result = run.backup("redis")
    assert (result.outcome, result.cause) == (Outcome.FAILED, f"backup: {backup.cause}")
    assert result.markers_read_back is Outcome.NOT_RUN
    # The stage failed; Redis itself was deployed and stays a ready database for the smoke suite.
    assert run.database_outcome("redis") is Outcome.PASSED
    files = {Path(p).name for p in backup.diagnostics}
    assert {"backup.yaml", "backuppolicy.yaml", "volumesnapshots.yaml", "kubeblocks-dataprotection.log"} <= files
    assert "ResourceExhausted" in (tmp_path / "diagnostics" / "backup-redis" / "backup.yaml").read_text()
    # The other databases are untouched by it.
    assert run.backup("postgresql").outcome is Outcome.PASSED


def test_on_k3s_without_the_driver_a_snapshot_backup_fails_in_kubeblocks_words(tmp_path: Path) -> None:
    # The plan for an existing cluster, run where only k3s's local-path exists and the check is left out.
    p = full_plan(stage.ON_EXISTING, "backup.storageClass=local-path")
    p = dataclasses.replace(
        p,
        steps=tuple(
            dataclasses.replace(s, needs=tuple(n for n in s.needs if n != "snapshot-support"))
            for s in p.steps
            if s.id != "snapshot-support"
        ),
    )
    run = simulate(p, BackupScenario(), tmp_path)
    assert run.step("backup:postgresql").cause == (
        "backups.dataprotection.kubeblocks.io/pg-cluster-backup is Failed: cannot find any VolumeSnapshotClass of "
        'persistentVolumeClaim "data-pg-cluster-postgresql-0" to do volume snapshot on pod "pg-cluster-postgresql-0"'
    )


@pytest.mark.parametrize(
    ("backup", "settings", "cause"),
    [
        (
            BackupScenario(),
            (),
            "StorageClass csi-hostpath-sc (backup.storageClass) does not exist; the volume-snapshot backups of "
            "postgresql, redis need it: name a StorageClass of a CSI driver that can snapshot",
        ),
        (
            BackupScenario(storage_classes={"local-path": "rancher.io/local-path"}),
            ("backup.storageClass=local-path", "backup.snapshotClass=hostpath"),
            "VolumeSnapshotClass hostpath (backup.snapshotClass) does not exist; the volume-snapshot backups of "
            "postgresql, redis need it: name one for driver rancher.io/local-path",
        ),
        (
            BackupScenario(
                storage_classes={"local-path": "rancher.io/local-path"},
                snapshot_classes={"any": "rancher.io/local-path"},
            ),
            ("backup.storageClass=local-path", "backup.snapshotClass=any"),
            "StorageClass local-path provisions with rancher.io/local-path, which is not a CSI driver (no CSIDriver "
            "object): it cannot snapshot, and the volume-snapshot backups of postgresql, redis need it",
        ),
        (
            BackupScenario(
                storage_classes={"gp3": "ebs.csi.aws.com"},
                snapshot_classes={"hostpath": "hostpath.csi.k8s.io"},
                csi_drivers=frozenset({"ebs.csi.aws.com"}),
            ),
            ("backup.storageClass=gp3", "backup.snapshotClass=hostpath"),
            "VolumeSnapshotClass hostpath is for driver hostpath.csi.k8s.io, but StorageClass gp3 provisions with "
            "ebs.csi.aws.com: its volumes could not be snapshotted",
        ),
    ],
    ids=["no-storage-class", "no-snapshot-class", "driver-cannot-snapshot", "snapshot-class-of-another-driver"],
)
def test_on_an_existing_cluster_classes_that_cannot_snapshot_fail_before_anything_is_deployed_on_them(
    tmp_path: Path, backup: BackupScenario, settings: tuple[str, ...], cause: str
) -> None:
    run = simulate(full_plan(stage.ON_EXISTING, *settings), backup, tmp_path)

    check = run.step("snapshot-support")
    assert (check.outcome, check.cause) == (Outcome.FAILED, cause)
    for key in ("postgresql", "redis"):
        assert run.step(f"cluster:{key}").cause == "not run: snapshot-support did not succeed"
        assert run.step(f"cluster:{key}").started_at is None
    # Nothing was installed on them; Qdrant's file-based backup needs no snapshots and still runs.
    assert "pg-cluster" not in run.alive("cluster")
    assert run.backup("qdrant").outcome is Outcome.PASSED
    assert check.ended_at is not None and check.ended_at - run.results.started_at < 60


def test_on_an_existing_cluster_with_a_snapshot_capable_class_the_stage_passes(tmp_path: Path) -> None:
    backup = BackupScenario(
        storage_classes={"gp3": "ebs.csi.aws.com"},
        snapshot_classes={"ebs-snap": "ebs.csi.aws.com"},
        csi_drivers=frozenset({"ebs.csi.aws.com"}),
    )
    run = simulate(
        full_plan(stage.ON_EXISTING, "backup.storageClass=gp3", "backup.snapshotClass=ebs-snap"), backup, tmp_path
    )
    assert {s.id: s.cause for s in run.results.steps if not s.outcome.ok} == {}


def test_a_driver_already_installed_is_skipped_and_its_pods_verified(tmp_path: Path) -> None:
    run = simulate(full_plan(), BackupScenario(hostpath_installed=True), tmp_path)
    driver = run.step("csi-driver")
    assert driver.outcome is Outcome.SKIPPED
    assert not [c for c in run.sim.calls if c.argv[:2] == ("kubectl", "apply") and "csi-driver-host-path" in c.argv[-1]]
    assert any(c.argv[:3] == ("kubectl", "wait", "pods") and "-A" in c.argv for c in run.sim.calls)


def test_a_restore_that_never_finishes_times_out_saying_what_it_last_saw(tmp_path: Path) -> None:
    plan = full_plan()
    run = simulate(plan, BackupScenario(restore_stuck=frozenset({"qdrant"})), tmp_path)
    restore = run.step("restore:qdrant")
    assert restore.outcome is Outcome.TIMED_OUT
    assert restore.cause is not None
    assert restore.cause.startswith("timed out after 900 s waiting for ")
    assert "last seen: Cluster Creating" in restore.cause
    assert "restores: qdrant-cluster-r-qdrant-4f2a9c1e-postready Running" in restore.cause
    assert run.step("backup-cleanup:qdrant").outcome is Outcome.PASSED
    assert "qdrant-cluster-r" not in run.alive("cluster")


def test_a_restore_that_fails_ends_the_wait_at_once_with_the_restore_s_own_words(tmp_path: Path) -> None:
    message = "failed to restore the volume: snapshot snap-0 not ready to use"
    run = simulate(full_plan(), BackupScenario(restore_failures={"postgresql": message}), tmp_path)
    restore = run.step("restore:postgresql")
    assert restore.outcome is Outcome.FAILED
    assert restore.cause is not None and restore.cause.splitlines()[0] == (
        f"Restore pg-cluster-r-postgresql-4f2a9c1e-preparedata Failed: prepareData restore-preparedata-0: {message}"
    )
    # Half-way through the 150 s restore plus a look or two, far from the limit.
    assert restore.duration_s is not None and restore.duration_s < 75 + 3 * WATCH_INTERVAL_S
    assert (tmp_path / "diagnostics" / "restore-postgresql" / "restores.yaml").exists()


def test_a_backup_that_lost_the_markers_fails_the_read_back_naming_what_is_missing(tmp_path: Path) -> None:
    run = simulate(full_plan(), BackupScenario(lost_markers=frozenset({"redis"})), tmp_path)
    verify = run.step("markers-verify:redis")
    assert verify.outcome is Outcome.FAILED
    assert verify.cause == (
        "redis markers msim do not read back as written: DB 0 key dbstack-marker:msim:queue is missing; "
        "DB 1 key dbstack-marker:msim:string is missing"
    )
    result = run.backup("redis")
    assert (result.outcome, result.markers_written, result.markers_read_back) == (
        Outcome.FAILED,
        Outcome.PASSED,
        Outcome.FAILED,
    )
    assert ("test_markers[verify] (restored redis-cluster-r)", Outcome.FAILED) in run.checks("redis")
    assert run.step("backup-cleanup:redis").outcome is Outcome.PASSED


def test_a_backup_repo_whose_pre_check_fails_stops_the_file_based_backups_at_once(tmp_path: Path) -> None:
    failure = 'failed to create PVC: storageclass.storage.k8s.io "slow" not found'
    run = simulate(full_plan(), BackupScenario(repo_failure=failure), tmp_path)
    repo = run.step("backup-repo")
    assert (repo.outcome, repo.cause) == (
        Outcome.FAILED,
        f"backuprepos.dataprotection.kubeblocks.io/dbstack-backups is Failed: {failure}",
    )
    assert run.step("backup:qdrant").cause == "not run: backup-repo did not succeed"
    # Snapshot backups need no repository.
    assert run.backup("postgresql").outcome is Outcome.PASSED


def test_without_a_smoke_suite_the_marker_steps_fail_saying_where_they_run(tmp_path: Path) -> None:
    run = simulate(full_plan(stage.ON_K3S), BackupScenario(), tmp_path, with_markers=False)
    assert run.step("markers-write:postgresql").cause == NO_MARKER_RUNNER
    assert run.step("backup:postgresql").outcome is Outcome.NOT_RUN
    # The cleanup still tries (the write ran, and might have written some), and says the same.
    assert run.step("markers-clean:postgresql").cause == NO_MARKER_RUNNER


def test_reports_of_a_backup_run_are_written(tmp_path: Path) -> None:
    run = simulate(full_plan(), BackupScenario(backup_failures={"redis": "boom"}), tmp_path / "run")
    write_reports(run.results, tmp_path / "reports", [])
    assert (tmp_path / "reports" / "summary.md").exists()


def test_a_teardown_removes_what_a_stage_that_never_finished_left(tmp_path: Path) -> None:
    from dbstack.plan.build import build_teardown_plan
    from dbstack.run.orchestrator import run_plan
    from dbstack.sim.cluster import in_virtual_time

    config = validate(VALUES, "full").config
    teardown = build_teardown_plan(config, remove_kubeblocks=False)
    assert [s.id for s in teardown.steps if s.stage == "backup"] == [
        "backup-cleanup:postgresql",
        "backup-cleanup:redis",
        "backup-cleanup:qdrant",
    ]
    assert [s.id for s in build_teardown_plan(validate(VALUES, "ci").config, False).steps if s.stage] == []
    # The restore of Redis hangs and the run is cut short before its cleanup: the teardown finds and removes it.
    sim = SimCluster(Scenario(backup=BackupScenario(restore_stuck=frozenset({"redis"}))))
    plan = full_plan()
    plan = dataclasses.replace(plan, steps=tuple(s for s in plan.steps if s.id != "backup-cleanup:redis"))

    async def deploy_then_teardown() -> tuple[RunResults, RunResults]:
        deployed = await run_plan(plan, sim, tmp_path / "deploy", cluster_kind="simulated", markers=SimMarkers(sim))
        return deployed, await run_plan(teardown, sim, tmp_path / "teardown", cluster_kind="simulated")

    deployed, removed = in_virtual_time(deploy_then_teardown)
    assert next(s for s in deployed.steps if s.id == "restore:redis").outcome is Outcome.TIMED_OUT
    assert [(s.id, s.outcome) for s in removed.steps if not s.outcome.ok] == []
    run = Run(removed, sim, None, tmp_path)
    assert "redis-cluster-r" not in run.alive("cluster")
    assert all(b.name != "redis-cluster-backup" or b.deleted_at < 1e18 for b in sim.backups.backups.values())
    assert sim.unknown == []


class Wedged:
    """The simulated cluster, except that commands containing `words` never answer (a runner that ignores its
    timeout)."""

    def __init__(self, sim: SimCluster, *words: str) -> None:
        self.sim, self.words = sim, words

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if all(word in command.argv for word in self.words):
            await anyio.sleep_forever()
        return await self.sim.run(command, timeout_s=timeout_s)


def test_a_snapshot_check_that_never_answers_times_out_naming_what_it_was_reading(tmp_path: Path) -> None:
    backup = BackupScenario(
        storage_classes={"gp3": "ebs.csi.aws.com"},
        snapshot_classes={"ebs-snap": "ebs.csi.aws.com"},
        csi_drivers=frozenset({"ebs.csi.aws.com"}),
    )
    plan = full_plan(stage.ON_EXISTING, "backup.storageClass=gp3", "backup.snapshotClass=ebs-snap")
    results = run_simulated(plan, Wedged(SimCluster(Scenario(backup=backup)), "storageclass"), tmp_path)
    check = next(s for s in results.steps if s.id == "snapshot-support")
    assert (check.outcome, check.cause) == (Outcome.TIMED_OUT, "timed out after 180 s reading StorageClass gp3")


def test_a_backup_whose_size_cannot_be_read_times_out_saying_so(tmp_path: Path) -> None:
    wedged = Wedged(SimCluster(Scenario(backup=BackupScenario())), "jsonpath={.status.totalSize}")
    results = run_simulated(full_plan(), wedged, tmp_path, markers=SimMarkers(wedged.sim))
    backups = [s for s in results.steps if s.id.startswith("backup:")]
    assert backups and {(s.outcome, s.cause) for s in backups} == {
        (Outcome.TIMED_OUT, "timed out after 900 s reading its size")
    }


def test_progress_says_which_marker_check_runs_at_the_runs_own_time(tmp_path: Path) -> None:
    sim = SimCluster(Scenario(backup=BackupScenario()))
    stream = io.StringIO()

    async def main() -> None:
        await run_plan(
            full_plan(),
            sim,
            tmp_path,
            cluster_kind="simulated",
            progress=PlainProgress(stream),
            clock=anyio.current_time,
            markers=SimMarkers(sim),
        )

    in_virtual_time(main)
    lines = stream.getvalue().splitlines()
    waits = {line for line in lines if " waiting: running the smoke suite's write marker check" in line}
    assert waits == {
        "1970-01-01T00:05:14Z markers-write:qdrant waiting: running the smoke suite's write marker check against "
        "qdrant-cluster-qdrant-qdrant",
        "1970-01-01T00:05:14Z markers-write:redis waiting: running the smoke suite's write marker check against "
        "redis-cluster-redis-redis",
        "1970-01-01T00:06:44Z markers-write:postgresql waiting: running the smoke suite's write marker check against "
        "pg-cluster-postgresql-postgresql",
    }


class Refused:
    """The simulated cluster, except that creating a (restored) Cluster from a manifest is refused."""

    def __init__(self, sim: SimCluster) -> None:
        self.sim = sim

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        if command.argv == ("kubectl", "create", "-f", "-") and '"kind": "Cluster"' in (command.stdin or ""):
            return CommandResult(1, "", "Error from server (Forbidden): clusters.apps.kubeblocks.io is forbidden\n")
        return await self.sim.run(command, timeout_s=timeout_s)


def test_a_restored_cluster_that_cannot_be_created_fails_its_step_with_kubectls_words(tmp_path: Path) -> None:
    refused = Refused(SimCluster(Scenario(backup=BackupScenario())))
    results = run_simulated(full_plan(), refused, tmp_path, markers=SimMarkers(refused.sim))
    restore = next(s for s in results.steps if s.id == "restore:postgresql")
    assert (restore.outcome, restore.cause) == (
        Outcome.FAILED,
        "Error from server (Forbidden): clusters.apps.kubeblocks.io is forbidden\n"
        "command: kubectl create -f - < values",
    )


def test_a_marker_check_that_never_ends_times_out_saying_which_check_it_was(tmp_path: Path) -> None:
    sim = SimCluster(Scenario(backup=BackupScenario()))

    async def hangs(what: Markers, seconds: float) -> CheckResult:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    results = run_simulated(full_plan(), sim, tmp_path, markers=hangs)
    step = next(s for s in results.steps if s.id == "markers-write:postgresql")
    assert (step.outcome, step.cause) == (
        Outcome.TIMED_OUT,
        "timed out after 900 s running the smoke suite's write marker check against pg-cluster-postgresql-postgresql",
    )
