"""The Cluster the backup stage restores into, built from the source Cluster as the API server returns it: written
out literally (tests/test_upstream_backup.py admits it against the real CRD)."""

from __future__ import annotations

from typing import Any

from dbstack.plan.backup import restored_cluster
from dbstack.plan.model import RestoreCluster

INSTANCE = "app.kubernetes.io/instance"
RESTORE = RestoreCluster("pg", "pg-r", "default", "pg-backup", "postgresql")


def source() -> dict[str, Any]:
    anti_affinity = {
        "labelSelector": {
            "matchExpressions": [
                {"key": INSTANCE, "operator": "In", "values": ["pg"]},
                {"key": "role", "operator": "In", "values": ["x"]},
            ],
            "matchLabels": {INSTANCE: "other"},
        }
    }
    return {
        "apiVersion": "apps.kubeblocks.io/v1",
        "metadata": {
            "name": "pg",
            "namespace": "default",
            "labels": {INSTANCE: "pg", "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "x", "team": "db"},
            "annotations": {
                "meta.helm.sh/release-name": "pg",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "keep": "me",
            },
        },
        "spec": {
            "terminationPolicy": "WipeOut",
            "services": [
                {"name": "lb", "spec": {"type": "LoadBalancer"}},
                {
                    "name": "np",
                    "spec": {
                        "type": "NodePort",
                        "ports": [{"port": 5432, "nodePort": 30001}],
                        "selector": {INSTANCE: "pg", "role": "primary"},
                    },
                },
            ],
            "componentSpecs": [
                {
                    "name": "postgresql",
                    "offlineInstances": ["pg-postgresql-1"],
                    "schedulingPolicy": {
                        "affinity": {
                            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [anti_affinity]}
                        }
                    },
                }
            ],
        },
    }


ANNOTATION = (
    '{"postgresql":{"doReadyRestoreAfterClusterRunning":"false","name":"pg-backup","namespace":"default",'
    '"volumeRestorePolicy":"Parallel"}}'
)


def test_the_restored_cluster_keeps_the_spec_on_its_own_name_without_what_would_clash() -> None:
    original = source()
    restored = restored_cluster(original, RESTORE)
    assert restored == {
        "apiVersion": "apps.kubeblocks.io/v1",
        "kind": "Cluster",
        "metadata": {
            "name": "pg-r",
            "namespace": "default",
            "labels": {INSTANCE: "pg-r", "team": "db"},
            "annotations": {"keep": "me", "kubeblocks.io/restore-from-backup": ANNOTATION},
        },
        "spec": {
            "terminationPolicy": "Delete",
            "services": [
                {"name": "np", "spec": {"type": "NodePort", "ports": [{"port": 5432}], "selector": {"role": "primary"}}}
            ],
            "componentSpecs": [
                {
                    "name": "postgresql",
                    "schedulingPolicy": {
                        "affinity": {
                            "podAntiAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": [
                                    {
                                        "labelSelector": {
                                            "matchExpressions": [
                                                {"key": INSTANCE, "operator": "In", "values": ["pg-r"]},
                                                {"key": "role", "operator": "In", "values": ["x"]},
                                            ],
                                            "matchLabels": {INSTANCE: "other"},
                                        }
                                    }
                                ]
                            }
                        }
                    },
                }
            ],
        },
    }
    assert original == source()  # the source is read, never changed


def test_a_bare_source_still_gives_a_cluster_to_restore_into() -> None:
    assert restored_cluster({}, RestoreCluster("pg", "pg-r", "ns", "b", "c")) == {
        "apiVersion": "apps.kubeblocks.io/v1",
        "kind": "Cluster",
        "metadata": {
            "name": "pg-r",
            "namespace": "ns",
            "annotations": {
                "kubeblocks.io/restore-from-backup": '{"c":{"doReadyRestoreAfterClusterRunning":"false","name":"b",'
                '"namespace":"ns","volumeRestorePolicy":"Parallel"}}'
            },
        },
        "spec": {"terminationPolicy": "Delete"},
    }
