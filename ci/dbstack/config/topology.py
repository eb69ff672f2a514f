"""What each cluster chart makes of its values: the Cluster's components, how many pods each runs, and what each pod
requests. The runtime cannot render charts, so this is the cluster charts' (kubeblocks-addons 1.0.1) logic written
down for the modes dbstack models; tests/test_upstream_render.py proves it equal to Helm's render of the real
charts for every profile, database and mode validation accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Component:
    """One component of a KubeBlocks Cluster: its pods are `<release>-<name>-<ordinal>`."""

    name: str
    replicas: int
    cpu: float
    """What each pod requests (kblib: `requests.cpu` when below `cpu`, else `cpu`)."""
    memory_gi: float


Lookup = Callable[[str], Any]
"""A chart value as the chart sees it: the merged values, else the chart's default."""


def _number(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _kblib_requests(value: Lookup) -> tuple[float, float]:
    """kblib's `componentResources`: a request below the limit lowers it, anything else is ignored."""
    out = []
    for resource in ("cpu", "memory"):
        limit = _number(value(resource))
        request = value(f"requests.{resource}")
        out.append(min(_number(request), limit) if request else limit)
    return out[0], out[1]


def _postgresql(value: Lookup) -> tuple[Component, ...]:
    cpu, memory = _kblib_requests(value)
    return (Component("postgresql", max(int(value("replicas") or 0), 2), cpu, memory),)


def _redis(value: Lookup) -> tuple[Component, ...]:
    cpu, memory = _kblib_requests(value)
    if value("mode") == "standalone":
        return (Component("redis", 1, cpu, memory),)
    # replication: the chart adds the sentinels, with limits = requests from `sentinel.*`.
    sentinels = Component(
        "redis-sentinel",
        int(value("sentinel.replicas")),
        _number(value("sentinel.cpu")),
        _number(value("sentinel.memory")),
    )
    return (Component("redis", max(int(value("replicas") or 0), 2), cpu, memory), sentinels)


def _qdrant(value: Lookup) -> tuple[Component, ...]:
    cpu, memory = _kblib_requests(value)
    return (Component("qdrant", int(value("replicas") or 1), cpu, memory),)


def _elasticsearch(value: Lookup) -> tuple[Component, ...]:
    cpu, memory = _kblib_requests(value)
    main = Component("mdit", 1, cpu, memory)
    # Kibana gets the same kblib resources as Elasticsearch.
    return (main, Component("kibana", 1, cpu, memory)) if value("enableKibana") else (main,)


def _neo4j(value: Lookup) -> tuple[Component, ...]:
    cpu, memory = _kblib_requests(value)
    # `singlealone` renders no replicas: the Cluster CRD's default, 1.
    return (Component("neo4j", 1, cpu, memory),)


TOPOLOGIES: dict[str, Callable[[Lookup], tuple[Component, ...]]] = {
    "postgresql": _postgresql,
    "redis": _redis,
    "qdrant": _qdrant,
    "elasticsearch": _elasticsearch,
    "neo4j": _neo4j,
}


def lookup(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> Lookup:
    """A dotted chart key ("sentinel.replicas") as the chart sees it: the values, else the chart's default."""

    def value(key: str) -> Any:
        for source in (values, defaults):
            node: Any = source
            for part in key.split("."):
                node = node.get(part) if isinstance(node, Mapping) else None
            if node is not None:
                return node
        return None

    return value


def components(key: str, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[Component, ...]:
    """The components database `key`'s cluster chart renders for `values` (over the chart's `defaults`); the first
    is the one the application connects to."""
    return TOPOLOGIES[key](lookup(values, defaults))


@dataclass(frozen=True)
class Volume:
    """A volume claim template of a component: what each of its pods gets as a PersistentVolumeClaim."""

    component: str
    name: str
    size_gi: float
    storage_class: str | None
    """None: the cluster's default StorageClass."""


def _storage_class(value: Any) -> str | None:
    return str(value) if value else None


def volumes(key: str, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[Volume, ...]:
    """The volume claim templates database `key`'s cluster chart renders: `data` of the component the application
    uses, `storage` Gi on `storageClassName`; Redis' sentinels have their own `sentinel.*`; Kibana has none."""
    value = lookup(values, defaults)
    parts = components(key, values, defaults)
    found = [Volume(parts[0].name, "data", _number(value("storage")), _storage_class(value("storageClassName")))]
    if any(c.name == "redis-sentinel" for c in parts):
        storage_class = _storage_class(value("sentinel.storageClassName"))
        found.append(Volume("redis-sentinel", "data", _number(value("sentinel.storage")), storage_class))
    return tuple(found)


_TOPOLOGY_NAMES: dict[str, Callable[[Lookup], str | None]] = {
    "postgresql": lambda value: "replication",
    "redis": lambda value: str(value("mode")),
    "qdrant": lambda value: "cluster",
    # single-node names its component (mdit) instead of a ClusterDefinition topology.
    "elasticsearch": lambda value: None,
    "neo4j": lambda value: None,
}


def cluster_topology(key: str, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> str | None:
    """The Cluster's `spec.topology` as database `key`'s chart renders it (None where it sets none)."""
    return _TOPOLOGY_NAMES[key](lookup(values, defaults))
