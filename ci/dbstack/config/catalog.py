"""Per-database facts, in one table: adding a database is one entry here plus its smoke test.

The names and counts here are what KubeBlocks 1.0.1 derives from the cluster charts' render and the addons'
ComponentDefinitions (`<release>-<component>-<service>`, `<release>-<component>-account-<account>`); the runtime
cannot render, so they are written down, and tests/test_upstream_render.py proves them equal to the real renders.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbstack.config import chartrules
from dbstack.config.chartrules import Rule, Unmodelled

COMPONENT_VERSIONS_FILE = Path(__file__).with_name("componentversions.json")


@dataclass(frozen=True)
class Database:
    key: str
    title: str
    addon: str
    default_release: str
    component: str
    service_suffix: str
    port: int
    account: str | None
    """System account whose Secret the application reads; None where the database has no auth."""
    values_rules: Mapping[str, Rule]
    enabled_by_default: bool
    chart_defaults: Mapping[str, Any]
    """The chart's own defaults for the keys the topology needs, used where a values file leaves them out."""
    single_mode: str | None = None
    """The mode that runs exactly one replica, where the chart has one."""
    replicas_at_least: Mapping[str, int] = field(default_factory=dict)
    """Mode -> the fewest replicas the chart renders in it (`max .Values.replicas 2`): fewer is refused."""
    dead_keys: Mapping[str, str] = field(default_factory=dict)
    """Key path -> what the chart does instead of reading it (chartrules.DEAD)."""
    unmodelled: Mapping[str, Unmodelled] = field(default_factory=dict)
    minor_versions_per_upgrade: int | None = None
    """The most minor versions one in-place upgrade may move up (the server migrates its storage only that far);
    None: any within a major version."""
    downgrades_within_major: bool = False
    """Whether a server of an older minor release of the same major version starts on the data (PostgreSQL: minor
    releases never change the storage format); others refuse data a newer release wrote."""

    @property
    def cluster_chart(self) -> str:
        return f"{self.addon}-cluster"

    @property
    def addon_release(self) -> str:
        return f"kb-addon-{self.addon}"

    def service(self, release: str) -> str:
        return f"{release}{self.service_suffix}"

    def secret(self, release: str) -> str | None:
        if self.account is None:
            return None
        return f"{release}-{self.component}-account-{self.account}"


DATABASES: dict[str, Database] = {
    db.key: db
    for db in (
        Database(
            key="postgresql",
            title="PostgreSQL",
            addon="postgresql",
            default_release="pg-cluster",
            component="postgresql",
            service_suffix="-postgresql-postgresql",
            port=5432,
            account="postgres",
            values_rules=chartrules.POSTGRESQL,
            downgrades_within_major=True,
            chart_defaults={
                "mode": "replication",
                "replicas": 2,
                "cpu": 0.5,
                "memory": 0.5,
                "storage": 20,
                "etcd": {"enabled": False},
            },
            enabled_by_default=True,
            dead_keys=chartrules.DEAD["postgresql"],
            unmodelled=chartrules.UNMODELLED["postgresql"],
        ),
        Database(
            key="redis",
            title="Redis",
            addon="redis",
            default_release="redis-cluster",
            component="redis",
            service_suffix="-redis-redis",
            port=6379,
            account="default",
            values_rules=chartrules.REDIS,
            single_mode="standalone",
            replicas_at_least={"replication": 2},
            chart_defaults={
                "mode": "replication",
                "replicas": 2,
                "cpu": 0.5,
                "memory": 0.5,
                "storage": 20,
                "sentinel": {"cpu": 0.5, "memory": 0.5, "replicas": 3, "storage": 20},
            },
            enabled_by_default=True,
            dead_keys=chartrules.DEAD["redis"],
            unmodelled=chartrules.UNMODELLED["redis"],
        ),
        Database(
            key="qdrant",
            title="Qdrant",
            addon="qdrant",
            default_release="qdrant-cluster",
            component="qdrant",
            service_suffix="-qdrant-qdrant",
            port=6333,
            account=None,
            values_rules=chartrules.QDRANT,
            # qdrant.tech/documentation/upgrades: a node migrates data of the previous minor version only.
            minor_versions_per_upgrade=1,
            chart_defaults={"replicas": 1, "cpu": 1, "memory": 2, "storage": 20},
            enabled_by_default=True,
            dead_keys=chartrules.DEAD["qdrant"],
        ),
        Database(
            key="elasticsearch",
            title="Elasticsearch",
            addon="elasticsearch",
            default_release="es-cluster",
            component="mdit",
            service_suffix="-mdit-http",
            port=9200,
            account="elastic",
            values_rules=chartrules.ELASTICSEARCH,
            single_mode="single-node",
            chart_defaults={
                "mode": "multi-node",
                "replicas": 1,
                "cpu": 1,
                "memory": 2,
                "storage": 20,
                "enableKibana": True,
                "tls": {"enabled": False},
            },
            enabled_by_default=True,
            dead_keys=chartrules.DEAD["elasticsearch"],
            unmodelled=chartrules.UNMODELLED["elasticsearch"],
        ),
        Database(
            key="neo4j",
            title="Neo4j",
            addon="neo4j",
            default_release="neo4j-cluster",
            component="neo4j",
            service_suffix="-neo4j",
            port=7687,
            account="neo4j",
            values_rules=chartrules.NEO4J,
            single_mode="singlealone",
            chart_defaults={"mode": "singlealone", "replicas": 1, "cpu": 2, "memory": 2, "storage": 20},
            enabled_by_default=False,
            dead_keys=chartrules.DEAD["neo4j"],
        ),
    )
}

Images = Mapping[str, Mapping[str, str]]
"""Component -> container -> image, as a ComponentVersion release names them."""


@functools.cache
def _component_versions() -> Mapping[str, Any]:
    import json  # only plan building and version checks read the table

    data: Mapping[str, Any] = json.loads(COMPONENT_VERSIONS_FILE.read_text(encoding="utf-8"))
    return data


def service_releases(key: str, chart_version: str) -> Mapping[str, Images] | None:
    """Service version -> its images, for every release of the ComponentVersions database `key`'s addon chart
    `chart_version` ships that covers all the components dbstack deploys for it; None for a chart version the
    table does not know (componentversions.json, generated from the addon charts' render and proved current by
    tests/test_upstream_render.py)."""
    charts: Mapping[str, Any] = _component_versions()["charts"]
    found: Mapping[str, Images] | None = charts.get(chart_version, {}).get(key)
    return found
