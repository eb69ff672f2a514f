"""The backup stage from values to plan: the `backup` section validated like the rest (file, line, key, what is
wrong, what is allowed; exit 2, nothing touched), the `full` profile, capacity with the restored clusters, and the
stage's steps on k3s and on an existing cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dbstack.cli.main import CLUSTER_KINDS, EXIT_INVALID, EXIT_OK, main
from dbstack.config.backupcatalog import BACKUP_METHODS, NO_TEMPLATE
from dbstack.config.capacity import capacity
from dbstack.config.load import load_config
from dbstack.config.validate import validate
from dbstack.plan import backup as stage
from dbstack.plan.build import build_plan
from dbstack.plan.model import Plan, StepKind
from test_validate import line_of, run_validate

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"
ON = ["backup.enabled=true", "backup.methods.elasticsearch=none"]


def plan(*overrides: str, cluster: str = stage.ON_K3S, profile: str | None = "ci") -> Plan:
    return build_plan(validate(VALUES, profile, [*ON, *overrides]).config, cluster)


# --- values ------------------------------------------------------------------------------------------------------


def test_the_stage_is_off_by_default_and_on_in_the_full_profile_with_the_issue_s_methods() -> None:
    default = load_config(VALUES)
    assert default.backup.enabled is False
    assert dict(default.backup.methods) == {
        "postgresql": "volume-snapshot",
        "redis": "volume-snapshot",
        "qdrant": "datafile",
        "elasticsearch": "full-backup",
        "neo4j": "none",
    }
    assert build_plan(default).backups == ()
    full = validate(VALUES, "full").config
    assert full.backup.enabled is True
    # A runner's k3s has no S3-compatible repository, which Elasticsearch's full-backup needs.
    assert full.backup.method("elasticsearch") == "none"


def test_the_full_profile_repeats_the_ci_profile_s_database_overrides() -> None:
    for ci in sorted((VALUES / "profiles" / "ci").glob("*.yaml")):
        full = VALUES / "profiles" / "full" / ci.name
        if ci.name == "pipeline.yaml":
            assert yaml.safe_load(full.read_text())["node"] == yaml.safe_load(ci.read_text())["node"]
            continue
        assert yaml.safe_load(full.read_text()) == yaml.safe_load(ci.read_text()), ci.name


@pytest.mark.parametrize(
    ("setting", "message", "allowed"),
    [
        (
            "backup.methods.neo4j=volume-snapshot",
            f"neo4j backups are {NO_TEMPLATE}",
            "none",
        ),
        (
            "backup.methods.postgresql=archive-wal",
            "archive-wal: a continuous (point-in-time) method archives logs beside a full backup; the stage takes one "
            "full backup",
            "pg-basebackup, volume-snapshot, wal-g, none",
        ),
        (
            "backup.methods.postgresql=wal-g-incremental",
            "wal-g-incremental: an incremental backup needs a full one as its parent; the stage takes one full backup",
            "pg-basebackup, volume-snapshot, wal-g, none",
        ),
        (
            "backup.methods.redis=datafiles",
            "'datafiles' is no backup method of the redis 1.0.1 addon; did you mean 'datafile'?",
            "datafile, volume-snapshot, none",
        ),
        (
            "backup.storageClass=Fast_SSD",
            "'Fast_SSD' must hold only lowercase letters, digits, '-' and '.', starting and ending with a letter or "
            "digit",
            "a DNS subdomain, e.g. csi-hostpath-sc",
        ),
    ],
)
def test_a_method_or_class_the_stage_cannot_use_is_refused_naming_the_key(
    capsys: pytest.CaptureFixture[str], values_dir: Path, setting: str, message: str, allowed: str
) -> None:
    run = run_validate(capsys, values_dir, "--set", setting)
    assert run.code == EXIT_INVALID
    key = setting.split("=")[0]
    assert f"--set {setting}:1: {key}: {message} (allowed: {allowed})" in run.problems


def test_elasticsearch_s_full_backup_with_the_stage_s_own_pvc_repo_is_refused_when_the_stage_runs(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    line = line_of(values_dir / "pipeline.yaml", "elasticsearch: full-backup")
    assert run_validate(capsys, values_dir).code == EXIT_OK
    run = run_validate(capsys, values_dir, "--set", "backup.enabled=true")
    assert run.code == EXIT_INVALID
    assert run.problems == [
        f"{values_dir / 'pipeline.yaml'}:{line}: backup.methods.elasticsearch: full-backup needs an S3-compatible "
        "BackupRepo reached as a tool (its script reads the repo's endpoint and keys); the pvc repo the stage creates "
        "(backup.repo.create: true) has none (allowed: set backup.repo.name to such a repo and backup.repo.create: "
        "false, or none)"
    ]
    with_repo = run_validate(
        capsys, values_dir, "--set", "backup.enabled=true", "--set", "backup.repo.create=false", "--set", "node.cpu=16"
    )
    assert with_repo.code == EXIT_OK, with_repo.err


def test_a_release_whose_restored_cluster_name_would_be_too_long_is_refused(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    run = run_validate(capsys, values_dir, "--profile", "full", "--set", "databases.qdrant.release=qdrant-cluster16")
    assert run.code == EXIT_INVALID
    assert run.problems == [
        "--set databases.qdrant.release=qdrant-cluster16:1: databases.qdrant.release: its restored cluster "
        "'qdrant-cluster16-r' is 18 characters long, KubeBlocks allows at most 16 (allowed: a release of at most 14 "
        "characters)"
    ]
    # Left out of the stage, the name is fine.
    assert (
        run_validate(
            capsys,
            values_dir,
            "--profile",
            "full",
            "--set",
            "databases.qdrant.release=qdrant-cluster16",
            "--set",
            "backup.methods.qdrant=none",
        ).code
        == EXIT_OK
    )


def test_a_database_s_own_storage_class_is_refused_where_the_stage_puts_its_volumes(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    redis = values_dir / "redis.yaml"
    redis.write_text(redis.read_text() + "storageClassName: standard\n")
    line = line_of(redis, "storageClassName: standard")
    assert run_validate(capsys, values_dir).code == EXIT_OK
    run = run_validate(capsys, values_dir, "--profile", "full")
    assert run.code == EXIT_INVALID
    assert run.problems == [
        f"{redis}:{line}: storageClassName: 'standard': the backup stage puts redis's volumes on its own class "
        "(backup.storageClass, or the CSI hostpath driver's on k3s) (allowed: remove it, or set "
        "backup.methods.redis: none)"
    ]


def test_every_backup_key_is_required_and_typed(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    run = run_validate(capsys, values_dir, "--set", "backup.timeouts.restore=5", "--set", "backup.repo.create=maybe")
    assert run.code == EXIT_INVALID
    assert any("backup.timeouts.restore: 5 is below the minimum" in p for p in run.problems)
    assert any("backup.repo.create: must be true or false" in p for p in run.problems)


def test_capacity_counts_the_restored_clusters_beside_their_sources() -> None:
    off = capacity(validate(VALUES, "ci").config)
    on = capacity(validate(VALUES, "full").config)
    restored = {c.name for c in on.consumers} - {c.name for c in off.consumers}
    assert restored == {"pg-cluster-r-postgresql", "redis-cluster-r-redis", "qdrant-cluster-r-qdrant"}
    by_name = {c.name: c for c in on.consumers}
    for name in restored:
        copy, source = by_name[name], by_name[name.replace("-r-", "-", 1)]
        assert (copy.cpu, copy.memory_gi, copy.pods) == (source.cpu, source.memory_gi, source.pods)
    assert on.fits


# --- the plan ----------------------------------------------------------------------------------------------------


def ids(p: Plan) -> list[str]:
    return [s.id for s in p.steps]


@pytest.mark.parametrize("cluster", CLUSTER_KINDS)
def test_every_step_comes_after_the_steps_it_needs_and_cleanups_after_what_they_remove(cluster: str) -> None:
    p = plan(cluster=cluster)
    seen: set[str] = set()
    for step in p.steps:
        assert set(step.needs) <= seen, f"{step.id} before {set(step.needs) - seen}"
        seen.add(step.id)
    assert CLUSTER_KINDS == stage.CLUSTER_KINDS
    for case in p.backups:
        if case.method is None:
            continue
        key = case.database
        chain = [f"markers-write:{key}", f"backup:{key}", f"restore:{key}", f"markers-verify:{key}"]
        assert [p.step(i).needs[0] for i in chain[1:]] == chain[:-1]
        assert p.step(f"backup-cleanup:{key}").cleanup and p.step(f"markers-clean:{key}").cleanup
        assert all(
            s.stage == "backup"
            for s in p.steps
            if s.id.endswith(f":{key}") and s.kind not in (StepKind.ADDON, StepKind.CLUSTER)
        )


def test_on_k3s_the_stage_adds_these_needs() -> None:
    needs = {s.id: set(s.needs) for s in plan().steps}
    assert {i: needs[i] for i in needs if not i.endswith((":redis", ":elasticsearch"))} == {
        "snapshot-crds": set(),
        "snapshot-controller": {"snapshot-crds"},
        "kubeblocks-crds": set(),
        "kubeblocks": {"snapshot-crds", "kubeblocks-crds"},
        "csi-driver": {"snapshot-crds"},
        "backup-repo": {"kubeblocks"},
        "addon:postgresql": {"kubeblocks"},
        "addon:qdrant": {"kubeblocks"},
        "cluster:postgresql": {"addon:postgresql", "csi-driver"},
        "cluster:qdrant": {"addon:qdrant", "csi-driver"},
        "markers-write:postgresql": {"cluster:postgresql"},
        "backup:postgresql": {"markers-write:postgresql"},
        "restore:postgresql": {"backup:postgresql"},
        "markers-verify:postgresql": {"restore:postgresql"},
        "markers-clean:postgresql": {"markers-write:postgresql", "backup:postgresql"},
        "backup-cleanup:postgresql": {"backup:postgresql", "restore:postgresql", "markers-verify:postgresql"},
        "markers-write:qdrant": {"cluster:qdrant"},
        "backup:qdrant": {"markers-write:qdrant", "backup-repo"},
        "restore:qdrant": {"backup:qdrant"},
        "markers-verify:qdrant": {"restore:qdrant"},
        "markers-clean:qdrant": {"markers-write:qdrant", "backup:qdrant"},
        "backup-cleanup:qdrant": {"backup:qdrant", "restore:qdrant", "markers-verify:qdrant"},
    }
    assert needs["cluster:elasticsearch"] == {"addon:elasticsearch"}  # not backed up: waits for no driver


def test_on_k3s_the_hostpath_driver_comes_first_and_the_backed_up_volumes_go_on_its_class() -> None:
    p = plan()
    assert "csi-driver" in ids(p) and "snapshot-support" not in ids(p)
    for case in p.backups:
        cluster = p.step(f"cluster:{case.database}")
        values = yaml.safe_load(cluster.commands[0].stdin or "")
        if case.method is None:
            assert "storageClassName" not in values and "csi-driver" not in cluster.needs
        else:
            assert values["storageClassName"] == stage.HOSTPATH_STORAGE_CLASS
            assert "csi-driver" in cluster.needs


def test_on_an_existing_cluster_the_configured_classes_are_checked_before_any_snapshotted_volume() -> None:
    p = plan("backup.storageClass=ebs-csi", "backup.snapshotClass=ebs-snap", cluster=stage.ON_EXISTING)
    assert "csi-driver" not in ids(p)
    check = p.step("snapshot-support")
    assert check.snapshot_support is not None
    assert (check.snapshot_support.storage_class, check.snapshot_support.snapshot_class) == ("ebs-csi", "ebs-snap")
    assert check.snapshot_support.databases == ("postgresql", "redis")
    for key in ("postgresql", "redis"):
        cluster = p.step(f"cluster:{key}")
        assert "snapshot-support" in cluster.needs
        assert yaml.safe_load(cluster.commands[0].stdin or "")["storageClassName"] == "ebs-csi"
    # Qdrant's datafile needs no snapshots: its volumes stay where they were, nothing waits for the check.
    qdrant = p.step("cluster:qdrant")
    assert "snapshot-support" not in qdrant.needs
    assert "storageClassName" not in yaml.safe_load(qdrant.commands[0].stdin or "")


def test_only_file_based_methods_make_a_backup_repo_and_their_backups_name_it() -> None:
    snapshots_only = plan("backup.methods.qdrant=none")
    assert "backup-repo" not in ids(snapshots_only)
    with_files = plan("backup.methods.redis=datafile")
    assert with_files.step("backup:redis").needs == ("markers-write:redis", "backup-repo")
    assert with_files.step("backup:postgresql").needs == ("markers-write:postgresql",)
    existing_repo = plan("backup.repo.create=false", "backup.repo.name=s3-repo")
    repo = existing_repo.step("backup-repo")
    assert repo.commands == () and repo.done_when[0].must_exist_first
    assert repo.done_when[0].resource == "backuprepos.dataprotection.kubeblocks.io/s3-repo"


def test_each_database_s_chain_names_its_backup_policy_restored_cluster_and_endpoints() -> None:
    p = plan()
    by_key = {case.database: case for case in p.backups}
    assert {key: (c.method, c.reason) for key, c in by_key.items()} == {
        "postgresql": ("volume-snapshot", None),
        "redis": ("volume-snapshot", None),
        "qdrant": ("datafile", None),
        "elasticsearch": (None, "backup.methods.elasticsearch is none"),
    }
    pg = by_key["postgresql"]
    assert (pg.backup, pg.policy, pg.restored) == (
        "pg-cluster-backup",
        "pg-cluster-postgresql-backup-policy",
        "pg-cluster-r",
    )
    write = p.step("markers-write:postgresql").markers
    verify = p.step("markers-verify:postgresql").markers
    clean = p.step("markers-clean:postgresql").markers
    assert write is not None and verify is not None and clean is not None
    assert (write.phase, write.endpoint.service, write.context) == ("write", "pg-cluster-postgresql-postgresql", None)
    assert (verify.phase, verify.endpoint.service, verify.endpoint.secret, verify.context) == (
        "verify",
        "pg-cluster-r-postgresql-postgresql",
        "pg-cluster-r-postgresql-account-postgres",
        "restored pg-cluster-r",
    )
    assert (clean.phase, clean.endpoint.release) == ("clean", "pg-cluster")
    backup = p.step("backup:postgresql")
    (wait,) = backup.done_when
    assert (wait.condition, wait.fails_on, wait.failure_reason) == (
        "jsonpath={.status.phase}=Completed",
        "jsonpath={.status.phase}=Failed",
        "{.status.failureReason}",
    )
    assert [f.name for f in backup.facts] == ["size", "duration"]
    restore = p.step("restore:postgresql")
    assert restore.watch is not None and restore.watch.restores and restore.watch.cluster == "pg-cluster-r"
    names = {d.name for d in (*backup.diagnostics, *restore.diagnostics)}
    assert {
        "backup.yaml",
        "backuppolicy.yaml",
        "volumesnapshots.yaml",
        "volumesnapshotcontents.txt",
        "kubeblocks-dataprotection.log",
        "restores.yaml",
    } <= names


def test_the_stage_s_methods_are_the_catalog_s() -> None:
    assert set(BACKUP_METHODS) == {"postgresql", "redis", "qdrant", "elasticsearch", "neo4j"}


def test_dbstack_plan_prints_the_stage_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--values", str(VALUES), "--profile", "full", "--cluster", "existing"]
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert "checks:    StorageClass csi-hostpath-sc is provisioned by a CSI driver that VolumeSnapshotClass" in out
    assert "smoke:     the suite's verify marker check on pg-cluster-r-postgresql-postgresql:5432" in out
    assert (
        "creates:   Cluster pg-cluster-r with pg-cluster's spec, restoring postgresql from Backup pg-cluster-backup"
        in out
    )
    assert "fails on:  kubectl wait backups.dataprotection.kubeblocks.io/pg-cluster-backup" in out
    assert "elasticsearch  backup.methods.elasticsearch is none" in out
    assert "postgresql     volume-snapshot via pg-cluster-postgresql-backup-policy, restored as pg-cluster-r" in out


def test_an_unknown_cluster_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="cluster kind 'kind' is not one of k3s, existing"):
        build_plan(load_config(VALUES), "kind")


def test_dbstack_deploy_refuses_the_stage_before_touching_a_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    from dbstack.cli.main import main as cli

    code = cli(["deploy", "--values", str(VALUES), "--profile", "full", "--kubeconfig", "/nonexistent"])
    err = capsys.readouterr().err
    assert code == EXIT_INVALID
    assert err.startswith(f"{VALUES / 'profiles' / 'full' / 'pipeline.yaml'}:")
    assert (
        "backup.enabled: dbstack deploy runs no smoke suite, which writes and reads back the backup stage's markers "
        "(allowed: false here; the stage runs with `dagger call deploy-and-test`)"
    ) in err


def test_the_platform_and_previews_run_no_backup_stage() -> None:
    from dbstack.github.platform import platform_plan
    from dbstack.github.preview import preview_plan, quota_problems

    full = validate(VALUES, "full").config
    existing = build_plan(full, stage.ON_EXISTING)
    assert [s.id for s in platform_plan(existing).steps if s.stage is not None] == []
    assert {s.kind for s in preview_plan(existing, "kb-system").steps} == {StepKind.CLUSTER}
    (problem,) = [p for p in quota_problems(full) if "backup.enabled" in p]
    assert problem.endswith(
        "backup.enabled: previews run no backup stage (its classes and BackupRepo are cluster-wide, a preview's rights "
        "namespaced) (allowed: false; `dagger call deploy-and-test --profile full` runs it)"
    )
    assert not [p for p in quota_problems(validate(VALUES, "ci").config) if "backup" in p]


def test_an_upgrade_test_refuses_the_stage(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--values", str(VALUES), "--base-values", str(VALUES), "--profile", "full"])
    err = capsys.readouterr().err
    assert code == EXIT_INVALID
    assert (
        "backup.enabled: an upgrade test runs no backup stage (allowed: false here; `dagger call deploy-and-test "
        in err
    )
