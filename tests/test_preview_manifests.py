"""What a preview applies to its namespace and collects when the cluster cannot be prepared, document by document
and argument by argument: Kubernetes rejects or ignores a misspelt key, so every key is pinned."""

from __future__ import annotations

import json

from dbstack.config.load import ContainerDefaults, PreviewQuota, PreviewSettings
from dbstack.github.preview import PreviewTarget, namespace_policy, preview_cluster_diagnostics

SETTINGS = PreviewSettings(
    open_idle_hours=72,
    closed_idle_hours=0,
    max_concurrent=3,
    quota=PreviewQuota(cpu=2.5, memory_gi=3.5, storage_gi=20, pods=12),
    container_defaults=ContainerDefaults(request_cpu=0.1, request_memory_gi=0.25, limit_cpu=1, limit_memory_gi=1.5),
)


def test_the_namespace_policy_is_exactly_a_rolebinding_then_the_quota_and_limit_range() -> None:
    target = PreviewTarget(pr=7, head_sha="abc1234", deployed_at=1)
    binding, limits = namespace_policy(target, SETTINGS)
    assert binding.argv == limits.argv == ("kubectl", "apply", "-f", "-")
    assert binding.stdin is not None and limits.stdin is not None
    assert json.loads(binding.stdin) == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": "dbstack-preview",
            "namespace": "pr-7",
            "labels": {"app.kubernetes.io/managed-by": "dbstack"},
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "dbstack-preview-namespace",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "dbstack-preview", "namespace": "dbstack-system"}],
    }
    assert json.loads(limits.stdin) == {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "dbstack-preview", "namespace": "pr-7"},
                "spec": {
                    "hard": {
                        "requests.cpu": "2500m",
                        "requests.memory": "3584Mi",
                        "requests.storage": "20Gi",
                        "pods": "12",
                    }
                },
            },
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": "dbstack-preview", "namespace": "pr-7"},
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
                            "default": {"cpu": "1000m", "memory": "1536Mi"},
                        }
                    ]
                },
            },
        ],
    }


def test_a_fractional_storage_quota_keeps_its_fraction() -> None:
    settings = PreviewSettings(
        open_idle_hours=1,
        closed_idle_hours=1,
        max_concurrent=1,
        quota=PreviewQuota(cpu=1, memory_gi=1, storage_gi=2.5, pods=1),
        container_defaults=SETTINGS.container_defaults,
    )
    _, limits = namespace_policy(PreviewTarget(pr=1, head_sha="abc1234", deployed_at=1), settings)
    assert limits.stdin is not None
    assert json.loads(limits.stdin)["items"][0]["spec"]["hard"]["requests.storage"] == "2.5Gi"


def test_the_preview_cluster_diagnostics_are_exactly_these_reads() -> None:
    assert [(name, c.argv) for name, c in preview_cluster_diagnostics("pr-7", "kb-system")] == [
        ("namespace.txt", ("kubectl", "get", "namespace", "pr-7", "-o", "yaml", "--ignore-not-found")),
        ("pods.txt", ("kubectl", "-n", "pr-7", "get", "pods", "-o", "wide")),
        ("events.txt", ("kubectl", "-n", "pr-7", "get", "events", "--sort-by=.lastTimestamp")),
        ("kb-system-pods.txt", ("kubectl", "-n", "kb-system", "get", "pods", "-o", "wide")),
    ]
