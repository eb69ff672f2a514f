"""The smoke suite's environment contract, per database, as one table: what each endpoint becomes in the smoke
container's environment, and which keys of its KubeBlocks account Secret it needs.

The names are the ones ApeRAG's pods receive (see ci/smoke/smokekit/settings.py). Values are templates over the
endpoint: {service} (the short Service name the smoke container reaches it by), {port}, {namespace}.
"""

# ruff: noqa: S105, S106 - the "passwords" here are the names of environment variables and Secret keys.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dbstack.plan import Endpoint

SMOKE_REQUIRE = "SMOKE_REQUIRE"
USERNAME_KEY = "username"
PASSWORD_KEY = "password"


@dataclass(frozen=True)
class SmokeContract:
    plain: Mapping[str, str]
    """Variable -> template over the endpoint."""
    username: str | None = None
    """Variable that receives the Secret's `username` (not secret: a plain variable, so Dagger does not scrub
    every occurrence of words like "postgres" from the logs)."""
    password: str | None = None
    """Variable that receives the Secret's `password`, passed only as a Dagger secret."""


CONTRACTS: dict[str, SmokeContract] = {
    "postgresql": SmokeContract(
        {"POSTGRES_HOST": "{service}", "POSTGRES_PORT": "{port}", "POSTGRES_DB": "postgres"},
        username="POSTGRES_USER",
        password="POSTGRES_PASSWORD",
    ),
    "redis": SmokeContract(
        {"REDIS_HOST": "{service}", "REDIS_PORT": "{port}"}, username="REDIS_USER", password="REDIS_PASSWORD"
    ),
    "qdrant": SmokeContract({"QDRANT_URL": "http://{service}:{port}"}),
    "elasticsearch": SmokeContract(
        {"ES_HOST_NAME": "{service}", "ES_PORT": "{port}", "ES_PROTOCOL": "http"},
        username="ES_USER",
        password="ES_PASSWORD",
    ),
    "neo4j": SmokeContract(
        {"NEO4J_URI": "bolt://{service}:{port}"}, username="NEO4J_USERNAME", password="NEO4J_PASSWORD"
    ),
}


def contract(endpoint: Endpoint) -> SmokeContract:
    try:
        return CONTRACTS[endpoint.database]
    except KeyError:
        raise KeyError(f"no smoke environment contract for database {endpoint.database!r}") from None


def plain_variables(endpoint: Endpoint) -> dict[str, str]:
    fields = {"service": endpoint.service, "port": str(endpoint.port), "namespace": endpoint.namespace}
    return {name: template.format(**fields) for name, template in contract(endpoint).plain.items()}


def require_variable(endpoints: Sequence[Endpoint]) -> str:
    """SMOKE_REQUIRE: every deployed database must pass; none may be skipped for want of settings."""
    return ",".join(e.database for e in endpoints)
