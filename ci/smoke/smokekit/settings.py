"""The smoke suite's only input: environment variables named as ApeRAG's pods receive them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

DATABASES: tuple[str, ...] = ("postgresql", "redis", "qdrant", "elasticsearch", "neo4j")

# The variable whose presence means "this database is configured", per database.
PRIMARY_VARIABLE: dict[str, str] = {
    "postgresql": "POSTGRES_HOST",
    "redis": "REDIS_HOST",
    "qdrant": "QDRANT_URL",
    "elasticsearch": "ES_HOST_NAME",
    "neo4j": "NEO4J_URI",
}

QDRANT_IN_PROCESS = ":memory:"
MASK = "***"


class ConfigError(ValueError):
    """An environment variable is present but unusable."""


class Secret:
    """A credential that never shows itself in repr, str, tracebacks or assertion messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    database: str
    user: str
    password: Secret


@dataclass(frozen=True)
class RedisSettings:
    host: str
    port: int
    username: str | None
    password: Secret | None


@dataclass(frozen=True)
class QdrantSettings:
    url: str

    @property
    def in_process(self) -> bool:
        """`:memory:` runs qdrant-client's local mode: it checks the client API, not a server."""
        return self.url == QDRANT_IN_PROCESS


@dataclass(frozen=True)
class ElasticsearchSettings:
    host: str
    port: int
    protocol: str
    user: str | None
    password: Secret | None

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    username: str
    password: Secret


@dataclass(frozen=True)
class SmokeSettings:
    postgresql: PostgresSettings | None
    redis: RedisSettings | None
    qdrant: QdrantSettings | None
    elasticsearch: ElasticsearchSettings | None
    neo4j: Neo4jSettings | None
    required: frozenset[str]
    require_ik: bool

    def configured(self, key: str) -> bool:
        return getattr(self, key) is not None

    def secrets(self) -> list[str]:
        """Every credential value, so output can be scrubbed of them."""
        found: list[str] = []
        for key in DATABASES:
            cfg = getattr(self, key)
            password = getattr(cfg, "password", None)
            if isinstance(password, Secret) and password.reveal():
                found.append(password.reveal())
        return found


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _secret(environ: Mapping[str, str], name: str) -> Secret | None:
    # Passwords are taken verbatim: leading or trailing spaces may be part of them.
    value = environ.get(name, "")
    return Secret(value) if value else None


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(environ, name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = (_get(environ, name) or "0").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use 1 or 0")


def parse_required(raw: str | None) -> frozenset[str]:
    keys = [part.strip().lower() for part in re.split(r"[,\s]+", raw or "") if part.strip()]
    unknown = sorted(set(keys) - set(DATABASES))
    if unknown:
        raise ConfigError(f"SMOKE_REQUIRE names unknown databases {unknown}; known: {', '.join(DATABASES)}")
    return frozenset(keys)


def load_settings(environ: Mapping[str, str]) -> SmokeSettings:
    """Read the environment contract; absent databases become None, malformed values raise ConfigError."""
    postgresql = None
    if host := _get(environ, "POSTGRES_HOST"):
        postgresql = PostgresSettings(
            host=host,
            port=_port(environ, "POSTGRES_PORT", 5432),
            database=_get(environ, "POSTGRES_DB") or "postgres",
            user=_get(environ, "POSTGRES_USER") or "postgres",
            password=_secret(environ, "POSTGRES_PASSWORD") or Secret(""),
        )
    redis = None
    if host := _get(environ, "REDIS_HOST"):
        redis = RedisSettings(
            host=host,
            port=_port(environ, "REDIS_PORT", 6379),
            username=_get(environ, "REDIS_USER"),
            password=_secret(environ, "REDIS_PASSWORD"),
        )
    qdrant = QdrantSettings(url=url) if (url := _get(environ, "QDRANT_URL")) else None
    elasticsearch = None
    if host := _get(environ, "ES_HOST_NAME"):
        protocol = (_get(environ, "ES_PROTOCOL") or "http").lower()
        if protocol not in ("http", "https"):
            raise ConfigError(f"ES_PROTOCOL={protocol!r} must be http or https")
        elasticsearch = ElasticsearchSettings(
            host=host,
            port=_port(environ, "ES_PORT", 9200),
            protocol=protocol,
            user=_get(environ, "ES_USER"),
            password=_secret(environ, "ES_PASSWORD"),
        )
    neo4j = None
    if uri := _get(environ, "NEO4J_URI"):
        neo4j = Neo4jSettings(
            uri=uri,
            username=_get(environ, "NEO4J_USERNAME") or "neo4j",
            password=_secret(environ, "NEO4J_PASSWORD") or Secret(""),
        )
    return SmokeSettings(
        postgresql=postgresql,
        redis=redis,
        qdrant=qdrant,
        elasticsearch=elasticsearch,
        neo4j=neo4j,
        required=parse_required(environ.get("SMOKE_REQUIRE")),
        require_ik=_flag(environ, "SMOKE_REQUIRE_IK"),
    )


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret, raw or URL-encoded as a client might echo it, with `***`."""
    variants: set[str] = set()
    for secret in secrets:
        if secret:
            variants.update({secret, quote(secret, safe=""), quote_plus(secret), secret.strip()})
    for variant in sorted((v for v in variants if v), key=len, reverse=True):
        text = text.replace(variant, MASK)
    return text
