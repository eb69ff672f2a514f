"""The cluster charts' value rules, encoded here so validation needs neither Helm nor network.

Each rule mirrors the chart's `values.schema.json` (apecloud/kubeblocks-addons, chart 1.0.1) and its default
`values.yaml`; keys the schema does not list but the templates read (kblib's `requests`, `extra`) are added, because
the schemas allow any key and Helm would silently ignore a misspelt one. Keys the 1.0.1 templates never read (or
read only in a mode dbstack does not model) are listed in DEAD with what to do instead, and values that deploy
something the plan does not model (a mode, TLS, an external etcd) in UNMODELLED with the reason.
tests/test_upstream_schemas.py checks these rules against the upstream files, and tests/test_upstream_render.py
proves with Helm's own render that every key and value accepted here changes what the chart deploys.
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
    written_unquoted: bool = False
    """The chart's template writes the value bare, so Kubernetes' YAML 1.1 reader decides its type."""


def _num(minimum: float | None = None, maximum: float | None = None, multiple_of: float | None = None) -> Rule:
    return Rule(("quantity",), minimum=minimum, maximum=maximum, multiple_of=multiple_of)


def _int(minimum: int, maximum: int) -> Rule:
    return Rule(("integer",), minimum=minimum, maximum=maximum)


RULES_CHART_VERSION = "1.0.1"
"""The cluster chart release these rules describe."""

STRING = Rule(("string",), nullable=True)
BARE_STRING = Rule(("string",), nullable=True, written_unquoted=True)
BOOL = Rule(("boolean",))
TERMINATION_POLICIES = ("DoNotTerminate", "Delete", "WipeOut")

# kblib: what every 1.0 cluster chart inherits (extra.*, requests.* below the limits). Which `extra` keys a chart's
# templates read differs: PostgreSQL's Cluster takes the top-level terminationPolicy, Neo4j's has no exporter.
TERMINATION_POLICY = Rule(("string",), enum=TERMINATION_POLICIES)
EXTRA = Rule(("mapping",), children={"terminationPolicy": TERMINATION_POLICY, "disableExporter": BOOL})
REQUESTS = Rule(
    ("mapping",),
    nullable=True,
    children={"cpu": _num(minimum=0.001), "memory": _num(minimum=0.001)},
)
STORAGE = _num(1, 10000)
COMMON: dict[str, Rule] = {
    "storageClassName": STRING,
    "requests": REQUESTS,
    "extra": EXTRA,
}

POSTGRESQL: dict[str, Rule] = {
    **COMMON,
    "extra": Rule(("mapping",), children={"disableExporter": BOOL}),
    "version": Rule(("string",)),
    # The 1.0 chart has only the replication topology (the schema drops `mode`; values.yaml keeps it).
    "mode": Rule(("string",), enum=("replication",)),
    # The schema allows 1, but the 1.0 chart always renders at least 2 (REFERENCE section 2).
    "replicas": _int(2, 5),
    "cpu": _num(0.5, 64, 0.5),
    "memory": _num(0.5, 1000),
    "storage": STORAGE,
    "terminationPolicy": TERMINATION_POLICY,
    "etcd": Rule(("mapping",), children={"enabled": BOOL}),
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
    "customSecretName": BARE_STRING,
    "customSecretNamespace": BARE_STRING,
    "nodePortEnabled": BOOL,
    "hostNetworkEnabled": BOOL,
    "fixedPodIPEnabled": BOOL,
    "loadBalancerEnabled": BOOL,
    "podAntiAffinityEnabled": BOOL,
    "sentinel": Rule(
        ("mapping",),
        children={
            "cpu": _SENTINEL_NUM,
            "memory": Rule(("number",), minimum=0.1, maximum=4),
            "storage": Rule(("number",), minimum=1, maximum=1024),
            # The schema says number; the chart writes it into the Cluster's int32 `replicas`.
            "replicas": Rule(("integer",), minimum=1, maximum=5),
            "customMasterName": BARE_STRING,
            "customSecretName": BARE_STRING,
            "customSecretNamespace": BARE_STRING,
            "storageClassName": BARE_STRING,
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
    "enableKibana": BOOL,
    "tls": Rule(("mapping",), children={"enabled": BOOL}),
}

NEO4J: dict[str, Rule] = {
    **COMMON,
    "extra": Rule(("mapping",), children={"terminationPolicy": TERMINATION_POLICY}),
    "version": Rule(("string",), enum=("5.26.5", "4.4.42")),
    "mode": Rule(("string",), enum=("singlealone",)),
    "replicas": _int(1, 5),
    "cpu": _num(2, 64, 0.1),
    "memory": _num(2, 1000),
    "storage": STORAGE,
}

_NEVER = "never reads this key"
_NO_TLS = "reads this key only when tls.enabled is true, which dbstack does not model"
_UNNAMED = f"{_NEVER} (no template uses the name helpers that read it)"
_COMMON_DEAD = {"nameOverride": _UNNAMED, "fullnameOverride": _UNNAMED, "extra.rbacEnabled": _NEVER}

DEAD: dict[str, dict[str, str]] = {
    "postgresql": {
        **_COMMON_DEAD,
        "extra.terminationPolicy": f"{_NEVER}; use terminationPolicy",
        "remoteSetting": f"{_NEVER} (it appears in chart 1.0.2)",
        "systemAccountSecret": f"{_NEVER} (it appears in chart 1.0.2)",
        "etcd.meta": "reads this key only when etcd.enabled is true, which dbstack does not model",
    },
    "redis": {
        **_COMMON_DEAD,
        "sentinel.enabled": f"{_NEVER}; sentinels come with mode replication",
        "twemproxy": "reads this key only in mode replication-twemproxy, which dbstack does not model",
        "redisCluster": "reads this key only in mode cluster, which dbstack does not model",
    },
    "qdrant": dict(_COMMON_DEAD),
    "elasticsearch": {
        "nameOverride": _NO_TLS,
        "fullnameOverride": _NO_TLS,
        "extra.rbacEnabled": _NEVER,
        "roles": f"{_NEVER} (only its _validate.yaml partial does, and Helm renders no partial)",
        "tls.issuer": _NO_TLS,
        "tls.secretName": _NO_TLS,
        "tls.elasticAccountSecretName": _NO_TLS,
        "tls.kibanaAccountSecretName": _NO_TLS,
    },
    "neo4j": {**_COMMON_DEAD, "extra.disableExporter": f"{_NEVER}; its Cluster has no exporter setting"},
}
"""Database -> key path -> what the 1.0.1 chart does with it instead of what the key suggests, completing
`the <chart> 1.0.1 chart ...`."""


@dataclass(frozen=True)
class Unmodelled:
    """Values of one key that the chart accepts but that deploy something the plan does not model."""

    values: Mapping[Any, str]
    """Value -> what it would deploy, and why dbstack does not."""
    modelled: tuple[Any, ...]
    """The values dbstack models, for the message."""


UNMODELLED: dict[str, dict[str, Unmodelled]] = {
    "postgresql": {
        "etcd.enabled": Unmodelled(
            {True: "the chart points the Cluster at an external etcd (a ServiceDescriptor) dbstack does not deploy"},
            (False,),
        ),
    },
    "redis": {
        "mode": Unmodelled(
            {
                "cluster": "the chart renders Redis Cluster shardings (no redis component, no <release>-redis-redis "
                "Service), which the plan cannot hand to ApeRAG",
                "replication-twemproxy": "the chart adds a twemproxy component beside Redis and its sentinels, "
                "which the plan does not model",
            },
            ("standalone", "replication"),
        ),
    },
    "elasticsearch": {
        "mode": Unmodelled(
            {
                "multi-node": "the chart renders components master and data (at least 3 pods each) and no "
                "<release>-mdit-http Service, which ApeRAG connects to",
            },
            ("single-node",),
        ),
        "tls.enabled": Unmodelled(
            {
                True: "the chart then renders the account Secrets itself, with random passwords that change on every "
                "helm upgrade, and turns TLS on for Kibana only"
            },
            (False,),
        ),
    },
}
