"""The cluster charts' value rules, encoded here so validation needs neither Helm nor network.

Each rule mirrors the chart's `values.schema.json` (apecloud/kubeblocks-addons, chart line 1.0) and its default
`values.yaml`; keys the schema does not list but the templates read (kblib's `requests`, `extra`) are added, because
the schemas allow any key and Helm would silently ignore a misspelt one. tests/test_upstream_schemas.py checks these
rules against the upstream files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rule:
    """What one value may be. `kinds` uses: string, integer, number (int or float), quantity (number or numeric
    string, as the charts' `["number", "string"]`), boolean, mapping."""

    kinds: tuple[str, ...]
    enum: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: float | None = None
    children: Mapping[str, Rule] = field(default_factory=dict)
    nullable: bool = False


def _num(minimum: float | None = None, maximum: float | None = None, multiple_of: float | None = None) -> Rule:
    return Rule(("quantity",), minimum=minimum, maximum=maximum, multiple_of=multiple_of)


def _int(minimum: int, maximum: int) -> Rule:
    return Rule(("integer",), minimum=minimum, maximum=maximum)


STRING = Rule(("string",), nullable=True)
BOOL = Rule(("boolean",))
TERMINATION_POLICIES = ("DoNotTerminate", "Delete", "WipeOut")

# kblib: what every 1.0 cluster chart inherits (extra.*, requests.* below the limits).
EXTRA = Rule(
    ("mapping",),
    children={
        "terminationPolicy": Rule(("string",), enum=TERMINATION_POLICIES),
        "disableExporter": BOOL,
        "rbacEnabled": BOOL,
    },
)
REQUESTS = Rule(
    ("mapping",),
    nullable=True,
    children={"cpu": _num(minimum=0.001), "memory": _num(minimum=0.001)},
)
STORAGE = _num(1, 10000)
COMMON: dict[str, Rule] = {
    "nameOverride": STRING,
    "fullnameOverride": STRING,
    "storageClassName": STRING,
    "requests": REQUESTS,
    "extra": EXTRA,
}

POSTGRESQL: dict[str, Rule] = {
    **COMMON,
    "version": Rule(("string",)),
    # The 1.0 chart has only the replication topology (the schema drops `mode`; values.yaml keeps it).
    "mode": Rule(("string",), enum=("replication",)),
    # The schema allows 1, but the 1.0 chart always renders at least 2 (REFERENCE section 2).
    "replicas": _int(2, 5),
    "cpu": _num(0.5, 64, 0.5),
    "memory": _num(0.5, 1000),
    "storage": STORAGE,
    "terminationPolicy": Rule(("string",), enum=TERMINATION_POLICIES),
    "etcd": Rule(("mapping",), children={"enabled": BOOL, "meta": Rule(("mapping",), children={})}),
    "remoteSetting": Rule(("mapping",), children={}),
    "systemAccountSecret": Rule(("mapping",), nullable=True, children={}),
}

_SENTINEL_NUM = Rule(("number",), minimum=0.1, maximum=8)
REDIS: dict[str, Rule] = {
    **COMMON,
    "version": Rule(("string",)),
    "mode": Rule(("string",), enum=("standalone", "replication", "cluster", "replication-twemproxy")),
    "replicas": _int(1, 5),
    "cpu": _num(0.5, 64, 0.5),
    "memory": _num(0.5, 1000),
    "storage": STORAGE,
    "customSecretName": STRING,
    "customSecretNamespace": STRING,
    "nodePortEnabled": BOOL,
    "hostNetworkEnabled": BOOL,
    "fixedPodIPEnabled": BOOL,
    "loadBalancerEnabled": BOOL,
    "podAntiAffinityEnabled": BOOL,
    "twemproxy": Rule(
        ("mapping",),
        children={
            "enabled": BOOL,
            "cpu": _SENTINEL_NUM,
            "memory": Rule(("number",), minimum=0.1, maximum=4),
            "replicas": Rule(("number",), minimum=1, maximum=5),
        },
    ),
    "sentinel": Rule(
        ("mapping",),
        children={
            "enabled": BOOL,
            "cpu": _SENTINEL_NUM,
            "memory": Rule(("number",), minimum=0.1, maximum=4),
            "storage": Rule(("number",), minimum=1, maximum=1024),
            "replicas": Rule(("number",), minimum=1, maximum=5),
            "customMasterName": STRING,
            "customSecretName": STRING,
            "customSecretNamespace": STRING,
            "storageClassName": STRING,
        },
    ),
    "redisCluster": Rule(
        ("mapping",),
        children={
            "shardCount": Rule(("number",), minimum=3, maximum=2048),
            "customSecretName": STRING,
            "customSecretNamespace": STRING,
        },
    ),
    "prometheus": Rule(("mapping",), children={"enabled": BOOL}),
}

QDRANT: dict[str, Rule] = {
    **COMMON,
    "version": Rule(("string",)),
    "replicas": _int(1, 16),
    "cpu": _num(0.5, 64, 0.5),
    "memory": _num(0.5, 1000),
    "storage": STORAGE,
}

ELASTICSEARCH: dict[str, Rule] = {
    **COMMON,
    "version": Rule(("string",)),
    "mode": Rule(("string",), enum=("single-node", "multi-node")),
    "replicas": _int(1, 5),
    "cpu": _num(0.5, 64, 0.5),
    "memory": _num(1, 1000),
    "storage": STORAGE,
    "roles": Rule(("mapping",), children={"master": STRING, "data": STRING}),
    "enableKibana": BOOL,
    "tls": Rule(
        ("mapping",),
        children={
            "enabled": BOOL,
            "issuer": Rule(("string",), enum=("KubeBlocks", "UserProvided")),
            "secretName": STRING,
            "elasticAccountSecretName": STRING,
            "kibanaAccountSecretName": STRING,
        },
    ),
}

NEO4J: dict[str, Rule] = {
    **COMMON,
    "version": Rule(("string",), enum=("5.26.5", "4.4.42")),
    "mode": Rule(("string",), enum=("singlealone",)),
    "replicas": _int(1, 5),
    "cpu": _num(2, 64, 0.1),
    "memory": _num(2, 1000),
    "storage": STORAGE,
}
