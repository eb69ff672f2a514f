"""Per-database facts, in one table: adding a database is one entry here plus its smoke test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbstack.config import chartrules
from dbstack.config.chartrules import Rule


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
    """The chart's own defaults for the keys capacity needs, used where a values file leaves them out."""
    min_replicas: int = 1
    single_mode: str | None = None
    """The mode that runs exactly one replica, where the chart has one."""

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
            chart_defaults={"mode": "replication", "replicas": 2, "cpu": 0.5, "memory": 0.5},
            enabled_by_default=True,
            min_replicas=2,
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
            chart_defaults={
                "mode": "replication",
                "replicas": 2,
                "cpu": 0.5,
                "memory": 0.5,
                "sentinel": {"enabled": True, "cpu": 0.5, "memory": 0.5, "replicas": 3},
                "redisCluster": {"shardCount": 3},
            },
            enabled_by_default=True,
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
            chart_defaults={"replicas": 1, "cpu": 1, "memory": 2},
            enabled_by_default=True,
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
            chart_defaults={"mode": "multi-node", "replicas": 1, "cpu": 1, "memory": 2, "enableKibana": True},
            enabled_by_default=True,
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
            chart_defaults={"mode": "singlealone", "replicas": 1, "cpu": 2, "memory": 2},
            enabled_by_default=False,
        ),
    )
}
