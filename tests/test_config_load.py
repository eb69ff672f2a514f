"""Every pipeline setting lands in its own field of the Config: each set to a value no other setting has, so a
setting read into the wrong field shows."""

from __future__ import annotations

from conftest import VALUES
from dbstack.config.load import (
    BackupRepo,
    BackupSettings,
    ContainerDefaults,
    DatabaseConfig,
    PreviewQuota,
    PreviewSettings,
    Timeouts,
    load_config,
)

SETS = [
    *("timeouts.crds=11", "timeouts.snapshotController=12", "timeouts.kubeblocks=13"),
    *("timeouts.addon=14", "timeouts.cluster=15", "timeouts.smoke=16"),
    *("backup.timeouts.csiDriver=21", "backup.timeouts.backup=22", "backup.timeouts.restore=23"),
    *("backup.repo.capacityGi=7", "backup.repo.create=false", "backup.repo.storageClass=slow"),
    *("backup.repo.name=repo-1", "backup.storageClass=sc-1", "backup.snapshotClass=vsc-1", "backup.enabled=true"),
    *("backup.methods.elasticsearch=none", "backup.methods.qdrant=none", "node.cpu=16", "node.memoryGi=32"),
    *("preview.openIdleHours=30", "preview.closedIdleHours=2", "preview.maxConcurrent=4"),
    *("preview.quota.cpu=6", "preview.quota.memoryGi=12", "preview.quota.storageGi=100", "preview.quota.pods=40"),
    *("preview.containerDefaults.requestCpu=0.1", "preview.containerDefaults.requestMemoryGi=0.2"),
    *("preview.containerDefaults.limitCpu=0.5", "preview.containerDefaults.limitMemoryGi=0.75"),
    *("smoke.requireIkPlugin=false", "kubeblocks.reuseInstalled=any", "snapshotter.installController=false"),
    *("kubeblocks.registry=quay.io", "kubeblocks.helmRepo=oci://charts.example", "kubeblocks.namespace=kb"),
    *("namespace=apps", "databases.redis.release=cache", "databases.neo4j.enabled=true"),
]


def test_every_setting_lands_in_its_field() -> None:
    config = load_config(VALUES, "ci", SETS)
    assert (config.values_dir, config.profile, config.namespace, config.overrides) == (
        VALUES,
        "ci",
        "apps",
        tuple(SETS),
    )
    assert (config.kubeblocks_version, config.kubeblocks_namespace, config.helm_repo, config.registry) == (
        "1.0.1",
        "kb",
        "oci://charts.example",
        "quay.io",
    )
    assert (config.reuse_installed, config.snapshotter_version, config.install_snapshot_controller) == (
        "any",
        "v8.2.0",
        False,
    )
    assert config.images == {
        "k3s": "rancher/k3s:v1.31.5-k3s1",
        "toolbox": "alpine/k8s:1.31.4",
        "python": "python:3.12.8-slim-bookworm",
    }
    assert (config.node_cpu, config.node_memory_gi, config.smoke_require_ik) == (16, 32, False)
    assert config.timeouts == Timeouts(crds=11, snapshot_controller=12, kubeblocks=13, addon=14, cluster=15, smoke=16)
    assert config.preview == PreviewSettings(
        open_idle_hours=30,
        closed_idle_hours=2,
        max_concurrent=4,
        quota=PreviewQuota(cpu=6, memory_gi=12, storage_gi=100, pods=40),
        container_defaults=ContainerDefaults(
            request_cpu=0.1, request_memory_gi=0.2, limit_cpu=0.5, limit_memory_gi=0.75
        ),
    )
    assert config.backup == BackupSettings(
        enabled=True,
        methods={
            "postgresql": "volume-snapshot",
            "redis": "volume-snapshot",
            "qdrant": "none",
            "elasticsearch": "none",
            "neo4j": "none",
        },
        storage_class="sc-1",
        snapshot_class="vsc-1",
        repo=BackupRepo(name="repo-1", create=False, storage_class="slow", capacity_gi=7),
        csi_driver_timeout=21,
        backup_timeout=22,
        restore_timeout=23,
    )
    assert config.backup.method("redis") == "volume-snapshot"
    assert config.backup.method("mysql") == "none"


def test_every_database_has_its_release_chart_values_and_files() -> None:
    config = load_config(VALUES, "ci", SETS)
    databases = [(d.key, d.enabled, d.release, d.chart_version, d.values_files) for d in config.databases]
    assert databases == [
        (key, True, release, "1.0.1", (VALUES / f"{key}.yaml", VALUES / "profiles" / "ci" / f"{key}.yaml"))
        for key, release in (
            ("postgresql", "pg-cluster"),
            ("redis", "cache"),
            ("qdrant", "qdrant-cluster"),
            ("elasticsearch", "es-cluster"),
            ("neo4j", "neo4j-cluster"),
        )
    ]
    assert config.files == (
        VALUES / "pipeline.yaml",
        VALUES / "profiles" / "ci" / "pipeline.yaml",
        *(file for d in databases for file in d[4]),
    )
    assert [(d.key, d.version, d.mode, d.replicas) for d in config.databases] == [
        ("postgresql", "16.4.0", "replication", 2),
        ("redis", "7.2.7", "standalone", 1),
        ("qdrant", "1.10.0", None, 1),
        ("elasticsearch", "8.8.2", "single-node", 1),
        ("neo4j", "5.26.5", "singlealone", 1),
    ]


def test_a_database_without_a_version_runs_the_charts_default() -> None:
    config = load_config(VALUES, None, ["databases.neo4j.enabled=true"])
    qdrant = config.database("qdrant")
    values = {key: value for key, value in qdrant.values.items() if key != "version"}
    assert DatabaseConfig(qdrant.db, True, "q", "1.0.1", values, ()).version == "chart default"
    assert qdrant.values_yaml({"storageClassName": "fast"}).endswith("storageClassName: fast\n")
    assert qdrant.values_yaml().startswith("version: 1.10.0\n")
