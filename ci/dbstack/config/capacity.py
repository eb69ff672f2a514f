"""Will the enabled databases fit the node? Requests summed from the values, against the profile's node size.

Each database counts every pod its chart renders (config/topology.py, proved against Helm's render: sentinels,
Kibana and every replica included) at what each pod requests, plus the KubeBlocks control plane and k3s's own
pods. An estimate all the same: containers the addons' ComponentDefinitions add beside the main one (exporters,
agents) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbstack.config.backupcatalog import NONE
from dbstack.config.load import RESTORED_SUFFIX, Config, DatabaseConfig

# REFERENCE section 2: kubeblocks and kubeblocks-dataprotection, 500m / 1 Gi each, requests = limits.
CONTROL_PLANE: tuple[tuple[str, float, float], ...] = (
    ("kubeblocks", 0.5, 1.0),
    ("kubeblocks-dataprotection", 0.5, 1.0),
    ("coredns (k3s)", 0.1, 0.07),
)


@dataclass(frozen=True)
class Consumer:
    name: str
    cpu: float
    memory_gi: float
    pods: int | None = None
    """Identical pods it stands for, when it is a database's pods; cpu and memory_gi are their total."""

    def describe(self, resource: str) -> str:
        """`pg-cluster (2 x 0.5 cpu) 1.00` or `pg-cluster (2 x 1 Gi) 2.00`: the resource asked about, only."""
        total = self.cpu if resource == "cpu" else self.memory_gi
        if not self.pods:
            return f"{self.name} {total:.2f}"
        unit = "cpu" if resource == "cpu" else "Gi"
        return f"{self.name} ({self.pods} x {total / self.pods:g} {unit}) {total:.2f}"


@dataclass(frozen=True)
class Capacity:
    consumers: tuple[Consumer, ...]
    node_cpu: float
    node_memory_gi: float

    @property
    def cpu(self) -> float:
        return sum(c.cpu for c in self.consumers)

    @property
    def memory_gi(self) -> float:
        return sum(c.memory_gi for c in self.consumers)

    @property
    def fits(self) -> bool:
        return self.cpu <= self.node_cpu + 1e-9 and self.memory_gi <= self.node_memory_gi + 1e-9

    def largest(self, resource: str, count: int = 3) -> list[Consumer]:
        key = (lambda c: c.cpu) if resource == "cpu" else (lambda c: c.memory_gi)
        return sorted(self.consumers, key=key, reverse=True)[:count]


def database_pods(d: DatabaseConfig, release: str | None = None) -> list[Consumer]:
    """What one database asks the scheduler for: one consumer per component of its Cluster (or of a Cluster with
    the same spec named `release`: a restored one)."""
    return [
        Consumer(f"{release or d.release}-{c.name}", c.cpu * c.replicas, c.memory_gi * c.replicas, c.replicas)
        for c in d.components
    ]


def capacity(config: Config) -> Capacity:
    consumers = [Consumer(name, cpu, mem) for name, cpu, mem in CONTROL_PLANE]
    for d in config.enabled:
        consumers.extend(database_pods(d))
    if config.backup.enabled:
        # The backup stage restores each backed-up database into a Cluster of the same spec beside it.
        for d in config.enabled:
            if config.backup.method(d.key) != NONE:
                consumers.extend(database_pods(d, f"{d.release}{RESTORED_SUFFIX}"))
    return Capacity(tuple(consumers), config.node_cpu, config.node_memory_gi)
