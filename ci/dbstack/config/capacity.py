"""Will the enabled databases fit the node? Requests summed from the values, against the profile's node size.

An estimate, and a conservative one only for what it counts: each database's main pods (requests, else limits,
times replicas), Redis sentinels, Elasticsearch's extra role pods and Kibana, the KubeBlocks control plane and
k3s's own pods. Sidecars the addons add are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbstack.config.load import Config, DatabaseConfig

# REFERENCE section 2: kubeblocks and kubeblocks-dataprotection, 500m / 1 Gi each, requests = limits.
CONTROL_PLANE: tuple[tuple[str, float, float], ...] = (
    ("kubeblocks", 0.5, 1.0),
    ("kubeblocks-dataprotection", 0.5, 1.0),
    ("coredns (k3s)", 0.1, 0.07),
)
KIBANA_ESTIMATE = (0.5, 1.0)


@dataclass(frozen=True)
class Consumer:
    name: str
    cpu: float
    memory_gi: float


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


def _request(d: DatabaseConfig, resource: str) -> float:
    limit = float(d.effective(resource) or 0)
    request = d.effective(f"requests.{resource}")
    return min(float(request), limit) if request is not None else limit


def database_pods(d: DatabaseConfig) -> list[Consumer]:
    """What one database asks the scheduler for."""
    cpu, memory = _request(d, "cpu"), _request(d, "memory")
    pods = d.replicas
    if d.key == "redis" and d.mode == "cluster":
        pods *= int(d.effective("redisCluster.shardCount") or 3)
    if d.key == "elasticsearch" and d.mode == "multi-node":
        pods *= 2  # master and data roles are separate components
    result = [Consumer(f"{d.release} ({pods} x {cpu:g} cpu)", cpu * pods, memory * pods)]
    if d.key == "redis" and d.mode in ("replication", "replication-twemproxy") and d.effective("sentinel.enabled"):
        n = int(d.effective("sentinel.replicas") or 3)
        result.append(
            Consumer(
                f"{d.release} sentinels ({n})",
                n * float(d.effective("sentinel.cpu") or 0),
                n * float(d.effective("sentinel.memory") or 0),
            )
        )
    if d.key == "elasticsearch" and d.effective("enableKibana"):
        result.append(Consumer(f"{d.release} kibana (estimate)", *KIBANA_ESTIMATE))
    return result


def capacity(config: Config) -> Capacity:
    consumers = [Consumer(name, cpu, mem) for name, cpu, mem in CONTROL_PLANE]
    for d in config.enabled:
        consumers.extend(database_pods(d))
    return Capacity(tuple(consumers), config.node_cpu, config.node_memory_gi)
