"""The upgrade plan's refusals held against the real 1.0.1 charts and CRDs (tests/upstream.py): the topology and
volumes the plan compares are the ones Helm renders, the CRD rule it cites is the CRD's, and its "major version"
is exactly where the addon's ComponentVersion switches ComponentDefinition."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from dbstack.config.catalog import DATABASES, service_releases
from dbstack.config.topology import cluster_topology, volumes
from dbstack.plan.upgrade import CRD_TOPOLOGY_RULE, version_numbers
from upstream import AddonFacts, crd_schema, quantity, render, the_cluster, upstream_or_skip

upstream_or_skip()

VARIANTS: dict[str, list[dict[str, Any]]] = {
    "postgresql": [{}, {"storage": 7, "storageClassName": "fast"}],
    "redis": [
        {"mode": "standalone"},
        {"mode": "replication"},
        {"mode": "replication", "storage": 3, "sentinel": {"storage": 2, "storageClassName": "slow"}},
        {"mode": "standalone", "storageClassName": "fast", "storage": 9},
    ],
    "qdrant": [{}, {"storage": 4}],
    "elasticsearch": [
        {"mode": "single-node", "enableKibana": False},
        {"mode": "single-node", "enableKibana": True, "storage": 6},
    ],
    "neo4j": [{}, {"storageClassName": "fast"}],
}
CASES = [(key, values) for key, variants in VARIANTS.items() for values in variants]


def rendered(key: str, values: dict[str, Any]) -> dict[str, Any]:
    return the_cluster(render("cluster", DATABASES[key].addon, values, "up", "default"))


@pytest.mark.parametrize(("key", "values"), CASES, ids=[f"{k}-{json.dumps(v)}" for k, v in CASES])
def test_the_topology_and_volumes_the_plan_compares_are_the_rendered_ones(key: str, values: dict[str, Any]) -> None:
    cluster = rendered(key, values)
    db = DATABASES[key]
    assert cluster_topology(key, values, db.chart_defaults) == cluster["spec"].get("topology")
    found = {
        (
            spec["name"],
            vct["name"],
            quantity(vct["spec"]["resources"]["requests"]["storage"]) / 2**30,
            vct["spec"].get("storageClassName") or None,
        )
        for spec in cluster["spec"]["componentSpecs"]
        for vct in spec.get("volumeClaimTemplates", [])
    }
    ours = {(v.component, v.name, v.size_gi, v.storage_class) for v in volumes(key, values, db.chart_defaults)}
    assert ours == found


def test_the_cluster_crd_forbids_changing_the_topology_in_the_words_the_plan_cites() -> None:
    topology = crd_schema("apps.kubeblocks.io/v1", "Cluster")["properties"]["spec"]["properties"]["topology"]
    rules = topology["x-kubernetes-validations"]
    assert {"message": CRD_TOPOLOGY_RULE, "rule": "self == oldSelf"} in rules


@pytest.mark.parametrize("key", ["redis", "elasticsearch"])
def test_the_plan_refuses_a_mode_change_exactly_where_the_rendered_topology_changes(key: str, tmp_path: Path) -> None:
    from dbstack.config.load import DatabaseConfig
    from dbstack.plan.upgrade import _topology_problems  # the rule alone, without files

    db = DATABASES[key]
    for old, new in itertools.permutations(VARIANTS[key], 2):
        changes = rendered(key, old)["spec"].get("topology") != rendered(key, new)["spec"].get("topology")
        before = DatabaseConfig(db, True, "up", "1.0.1", old, ())
        after = DatabaseConfig(db, True, "up", "1.0.1", new, (tmp_path / f"{key}.yaml",))
        (tmp_path / f"{key}.yaml").write_text(json.dumps(new))
        assert bool(_topology_problems(before, after)) == changes, (old, new)


@pytest.mark.parametrize("key", ["postgresql", "redis", "elasticsearch"])
def test_a_major_version_is_exactly_where_the_component_version_switches_definition(key: str) -> None:
    """For every pair of service versions the 1.0.1 addon offers: the plan's "another major version" (the first
    number differs) holds exactly when KubeBlocks would resolve the Cluster's components to another
    ComponentDefinition."""
    db = DATABASES[key]
    facts = AddonFacts(db.addon)
    releases = service_releases(key, "1.0.1")
    assert releases
    base_values: dict[str, Any] = {"mode": "single-node"} if key == "elasticsearch" else {}
    if key == "redis":
        base_values = {"mode": "standalone"}
    definitions = {}
    for version in releases:
        cluster = rendered(key, {**base_values, "version": version})
        definitions[version] = tuple(
            facts.resolve(cluster, spec).cmpd["metadata"]["name"] for spec in cluster["spec"]["componentSpecs"]
        )
    for old, new in itertools.combinations(releases, 2):
        a, b = version_numbers(old), version_numbers(new)
        assert a and b
        assert (a[0] != b[0]) == (definitions[old] != definitions[new]), (old, new)


def test_addon_component_definitions_outlive_an_addon_upgrade() -> None:
    """Helm keeps what carries `helm.sh/resource-policy: keep`: a Cluster's ComponentDefinition stays when its addon
    is upgraded (or downgraded) to a chart that names its definitions differently."""
    for db in DATABASES.values():
        for name, cmpd in AddonFacts(db.addon).named("ComponentDefinition").items():
            assert cmpd["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep", name
