"""`dbstack plan` as a person reads it: the header, numbered steps with what they wait for, the indented lines of
each kind, the endpoints and the backup cases, written out literally."""

from __future__ import annotations

import pytest
from conftest import VALUES
from dbstack.cli.main import main

ONLY_REDIS = [
    "--set",
    "databases.postgresql.enabled=false",
    "--set",
    "databases.qdrant.enabled=false",
    "--set",
    "databases.elasticsearch.enabled=false",
]


def plan_lines(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["plan", "--values", str(VALUES), *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_the_plan_of_one_database_step_by_step(capsys: pytest.CaptureFixture[str]) -> None:
    lines = plan_lines(capsys, "--profile", "ci", *ONLY_REDIS)
    assert [line for line in lines if not line.startswith("      ")] == [
        f"Plan for namespace default (profile ci) from {VALUES}:",
        " 1. Install VolumeSnapshot CRDs (v8.2.0)",
        " 2. Install the snapshot controller (v8.2.0) (after snapshot-crds)",
        " 3. Install KubeBlocks CRDs (v1.0.1)",
        " 4. Install KubeBlocks 1.0.1 (after snapshot-crds, kubeblocks-crds)",
        " 5. Install addon redis 1.0.1 (after kubeblocks)",
        " 6. Deploy Redis (redis-cluster) and wait until Running (after addon:redis)",
        "Endpoints the application uses:",
        "  redis          redis-cluster-redis-redis:6379  (Secret redis-cluster-redis-account-default)",
    ]
    addon = lines.index(" 5. Install addon redis 1.0.1 (after kubeblocks)")
    assert lines[addon : addon + 9] == [
        " 5. Install addon redis 1.0.1 (after kubeblocks)",
        "      skip when: helm status kb-addon-redis -n kb-system -o json (reused only at 1.0.1)",
        "      run:       helm upgrade --install kb-addon-redis redis --repo https://apecloud.github.io/helm-charts "
        "--version 1.0.1 -n kb-system --timeout=180s",
        "      done when: kubectl wait clusterdefinition.apps.kubeblocks.io/redis "
        "'--for=jsonpath={.status.phase}=Available' --timeout=180s",
        "      done when: kubectl wait componentversion.apps.kubeblocks.io/redis "
        "'--for=jsonpath={.status.phase}=Available' --timeout=180s",
        " 6. Deploy Redis (redis-cluster) and wait until Running (after addon:redis)",
        "      run:       helm upgrade --install redis-cluster redis-cluster "
        "--repo https://apecloud.github.io/helm-charts --version 1.0.1 -n default --create-namespace "
        "--timeout=600s -f - < values",
        "      done when: kubectl wait clusters.apps.kubeblocks.io/redis-cluster -n default "
        "'--for=jsonpath={.status.phase}=Running' --timeout=600s",
        "      pulls:     docker.io/apecloud/redis-stack-server:7.2.0-v14, docker.io/apecloud/dbctl:0.1.8, "
        "docker.io/apecloud/agamotto:0.1.2-beta.1",
    ]
    controller = lines.index(" 2. Install the snapshot controller (v8.2.0) (after snapshot-crds)")
    assert lines[controller + 5] == (
        "      if found:  kubectl wait pods -A -l app.kubernetes.io/name=snapshot-controller --for=condition=Ready "
        "--timeout=120s"
    )


def test_a_plan_with_the_backup_stage_says_what_each_stage_step_does(capsys: pytest.CaptureFixture[str]) -> None:
    lines = plan_lines(capsys, "--profile", "full", "--cluster", "existing")
    assert lines[lines.index("Endpoints the application uses:") :] == [
        "Endpoints the application uses:",
        "  postgresql     pg-cluster-postgresql-postgresql:5432  (Secret pg-cluster-postgresql-account-postgres)",
        "  redis          redis-cluster-redis-redis:6379  (Secret redis-cluster-redis-account-default)",
        "  qdrant         qdrant-cluster-qdrant-qdrant:6333  (Secret no auth)",
        "  elasticsearch  es-cluster-mdit-http:9200  (Secret es-cluster-mdit-account-elastic)",
        "Backup and restore:",
        "  postgresql     volume-snapshot via pg-cluster-postgresql-backup-policy, restored as pg-cluster-r",
        "  redis          volume-snapshot via redis-cluster-redis-backup-policy, restored as redis-cluster-r",
        "  qdrant         datafile via qdrant-cluster-qdrant-backup-policy, restored as qdrant-cluster-r",
        "  elasticsearch  backup.methods.elasticsearch is none",
    ]
    for line in (
        "      checks:    StorageClass csi-hostpath-sc is provisioned by a CSI driver that VolumeSnapshotClass "
        "csi-hostpath-snapclass serves",
        "      smoke:     the suite's write marker check on pg-cluster-postgresql-postgresql:5432",
        "      creates:   Cluster pg-cluster-r with pg-cluster's spec, restoring postgresql "
        "from Backup pg-cluster-backup",
        "      fails on:  kubectl wait backups.dataprotection.kubeblocks.io/pg-cluster-backup -n default "
        "'--for=jsonpath={.status.phase}=Failed' --timeout=900s",
    ):
        assert line in lines


def test_a_plan_without_a_profile_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_lines(capsys)[0] == f"Plan for namespace default (profile none) from {VALUES}:"


def test_the_json_plan_is_indented_by_two(capsys: pytest.CaptureFixture[str]) -> None:
    lines = plan_lines(capsys, "--json", *ONLY_REDIS)
    assert lines[:3] == ["{", '  "schemaVersion": 1,', '  "namespace": "default",']
