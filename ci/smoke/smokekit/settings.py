"""The smoke suite's only input: environment variables named as ApeRAG's pods receive them.

ApeRAG connects through URL variables (`DATABASE_URL`, `CELERY_BROKER_URL`, `MEMORY_REDIS_URL`, `ES_HOST`) and
`VECTOR_DB_CONTEXT`. When one is set it is used as it is; otherwise it is built from the plain variables exactly
as ApeRAG builds it (smokekit.aperag_urls), and a credential that build cannot carry becomes a problem of that
database instead of a connection made some other way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from . import aperag_urls
from .markers import PHASES, marker_id_problem

DATABASES: tuple[str, ...] = ("postgresql", "redis", "qdrant", "elasticsearch", "neo4j")

# The variables whose presence means "this database is configured", per database (any one of them).
CONFIGURING_VARIABLES: dict[str, tuple[str, ...]] = {
    "postgresql": ("DATABASE_URL", "POSTGRES_HOST"),
    "redis": ("MEMORY_REDIS_URL", "CELERY_BROKER_URL", "REDIS_HOST"),
    "qdrant": ("VECTOR_DB_CONTEXT", "QDRANT_URL"),
    "elasticsearch": ("ES_HOST", "ES_HOST_NAME"),
    "neo4j": ("NEO4J_URI",),
}

PASSWORD_VARIABLES = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "ES_PASSWORD", "NEO4J_PASSWORD")
QDRANT_IN_PROCESS = ":memory:"
MASK = "***"


class ConfigError(ValueError):
    """An environment variable is present but unusable."""


class Secret:
    """A credential (or a URL carrying one) that never shows itself in repr, str, tracebacks or assertions."""

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
    database_url: Secret
    """DATABASE_URL as ApeRAG reads it: `postgresql://` (its sync engine, psycopg2)."""
    source: str
    problems: tuple[str, ...] = ()
    """Why ApeRAG could not use this database as configured; never contains a credential."""


@dataclass(frozen=True)
class RedisSettings:
    broker_url: Secret
    """CELERY_BROKER_URL (DB 0: Celery's queues)."""
    memory_url: Secret
    """MEMORY_REDIS_URL (DB 1: ApeRAG's RedisConnectionManager, its locks and caches)."""
    source: str
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class QdrantSettings:
    context: Mapping[str, Any]
    """VECTOR_DB_CONTEXT, parsed (ApeRAG's `json.loads`)."""
    source: str

    @property
    def in_process(self) -> bool:
        """`:memory:` runs qdrant-client's local mode: it checks the client API, not a server."""
        return self.context.get("url") == QDRANT_IN_PROCESS


@dataclass(frozen=True)
class ElasticsearchSettings:
    es_host: Secret
    """ES_HOST as ApeRAG reads it (credentials, if any, inside the URL)."""
    source: str
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    username: str
    password: Secret
    source: str = "NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD (ApeRAG passes them to the driver as they are)"


@dataclass(frozen=True)
class MarkerPhase:
    """SMOKE_MARKERS and SMOKE_MARKER_ID: the suite runs only the marker checks, one per database."""

    phase: str
    """write, verify or clean (smokekit.markers)."""
    marker_id: str


@dataclass(frozen=True)
class SmokeSettings:
    postgresql: PostgresSettings | None
    redis: RedisSettings | None
    qdrant: QdrantSettings | None
    elasticsearch: ElasticsearchSettings | None
    neo4j: Neo4jSettings | None
    required: frozenset[str]
    require_ik: bool
    markers: MarkerPhase | None = None
    """Set: a marker phase runs instead of the checks."""
    secret_values: tuple[str, ...] = ()

    def configured(self, key: str) -> bool:
        return getattr(self, key) is not None

    def secrets(self) -> list[str]:
        """Every credential value, so output can be scrubbed of them."""
        return list(self.secret_values)


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _raw(environ: Mapping[str, str], name: str) -> str:
    # Credentials are taken verbatim: leading or trailing spaces may be part of them.
    return environ.get(name, "")


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(environ, name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (_get(environ, name) or ("1" if default else "0")).lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use 1 or 0")


def _url(environ: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    value = _get(environ, name)
    if value is not None and not value.startswith(tuple(f"{s}://" for s in schemes)):
        # The scheme only: the rest of the URL may hold a password.
        scheme = value.split("://", 1)[0] if "://" in value else "(none)"
        raise ConfigError(f"{name} has scheme {scheme!r}; ApeRAG reads it as {' or '.join(schemes)}")
    return value


def parse_required(raw: str | None) -> frozenset[str]:
    keys = [part.strip().lower() for part in re.split(r"[,\s]+", raw or "") if part.strip()]
    unknown = sorted(set(keys) - set(DATABASES))
    if unknown:
        raise ConfigError(f"SMOKE_REQUIRE names unknown databases {unknown}; known: {', '.join(DATABASES)}")
    return frozenset(keys)


def _missing(environ: Mapping[str, str], target: str, names: tuple[str, ...]) -> tuple[str, ...]:
    empty = [name for name in names if not _raw(environ, name)]
    if not empty:
        return ()
    are, them = ("are", "them") if " and " in target else ("is", "it")
    empty_are = "is" if len(empty) == 1 else "are"
    return (
        f"{target} {are} not set, and ApeRAG builds {them} only when {', '.join(names[:-1])} and {names[-1]} are all "
        f"set ({', '.join(empty)} {empty_are} empty)",
    )


def _postgres(environ: Mapping[str, str], found: list[str]) -> PostgresSettings | None:
    if url := _url(environ, "DATABASE_URL", ("postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg")):
        found += aperag_urls.url_secrets(url)
        return PostgresSettings(Secret(url), "DATABASE_URL")
    if not _get(environ, "POSTGRES_HOST"):
        return None
    parts = aperag_urls.PostgresParts(
        host=_raw(environ, "POSTGRES_HOST"),
        port=str(_port(environ, "POSTGRES_PORT", 5432)),
        database=_get(environ, "POSTGRES_DB") or "postgres",
        user=_raw(environ, "POSTGRES_USER"),
        password=_raw(environ, "POSTGRES_PASSWORD"),
    )
    found.append(parts.password)
    problems = _missing(environ, "DATABASE_URL", ("POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD"))
    problems += aperag_urls.postgres_problems(parts)
    return PostgresSettings(Secret(parts.database_url()), "POSTGRES_* (as ApeRAG builds DATABASE_URL)", problems)


def _redis(environ: Mapping[str, str], found: list[str]) -> RedisSettings | None:
    broker = _url(environ, "CELERY_BROKER_URL", ("redis", "rediss"))
    memory = _url(environ, "MEMORY_REDIS_URL", ("redis", "rediss"))
    for url in (broker, memory):
        if url:
            found += aperag_urls.url_secrets(url)
    if broker and memory:
        return RedisSettings(Secret(broker), Secret(memory), "CELERY_BROKER_URL, MEMORY_REDIS_URL")
    if not _get(environ, "REDIS_HOST"):
        if broker or memory:
            only = "CELERY_BROKER_URL" if broker else "MEMORY_REDIS_URL"
            raise ConfigError(f"{only} is set without the other and without REDIS_HOST to build it from")
        return None
    parts = aperag_urls.RedisParts(
        host=_raw(environ, "REDIS_HOST"),
        port=str(_port(environ, "REDIS_PORT", 6379)),
        user=_raw(environ, "REDIS_USER"),
        password=_raw(environ, "REDIS_PASSWORD"),
    )
    found.append(parts.password)
    built = [
        (name, db)
        for name, given, db in (("CELERY_BROKER_URL", broker, 0), ("MEMORY_REDIS_URL", memory, 1))
        if not given
    ]
    target = " and ".join(name for name, _ in built)
    problems = _missing(environ, target, ("REDIS_HOST", "REDIS_USER", "REDIS_PASSWORD"))
    problems += aperag_urls.redis_problems(parts, target, built[0][1])
    return RedisSettings(
        Secret(broker or parts.url(0)),
        Secret(memory or parts.url(1)),
        "REDIS_* (as ApeRAG builds CELERY_BROKER_URL and MEMORY_REDIS_URL)",
        problems,
    )


def _qdrant(environ: Mapping[str, str], found: list[str]) -> QdrantSettings | None:
    if raw := _get(environ, "VECTOR_DB_CONTEXT"):
        try:
            context = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"VECTOR_DB_CONTEXT is not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(context, dict) or not isinstance(context.get("url"), str):
            raise ConfigError('VECTOR_DB_CONTEXT must be a JSON object with a "url" string, as ApeRAG reads it')
        if context.get("api_key"):
            found.append(str(context["api_key"]))
        return QdrantSettings(context, "VECTOR_DB_CONTEXT")
    if url := _get(environ, "QDRANT_URL"):
        return QdrantSettings({"url": url}, "QDRANT_URL (VECTOR_DB_CONTEXT is not set)")
    return None


def _elasticsearch(environ: Mapping[str, str], found: list[str]) -> ElasticsearchSettings | None:
    if url := _url(environ, "ES_HOST", ("http", "https")):
        found += aperag_urls.url_secrets(url)
        return ElasticsearchSettings(Secret(url), "ES_HOST")
    if not _get(environ, "ES_HOST_NAME"):
        return None
    protocol = (_get(environ, "ES_PROTOCOL") or "http").lower()
    if protocol not in ("http", "https"):
        raise ConfigError(f"ES_PROTOCOL={protocol!r} must be http or https")
    parts = aperag_urls.ElasticsearchParts(
        protocol=protocol,
        host=_raw(environ, "ES_HOST_NAME"),
        port=str(_port(environ, "ES_PORT", 9200)),
        user=_raw(environ, "ES_USER"),
        password=_raw(environ, "ES_PASSWORD"),
    )
    found.append(parts.password)
    return ElasticsearchSettings(
        Secret(parts.es_host()), "ES_* (as ApeRAG builds ES_HOST)", aperag_urls.elasticsearch_problems(parts)
    )


def _neo4j(environ: Mapping[str, str], found: list[str]) -> Neo4jSettings | None:
    uri = _get(environ, "NEO4J_URI")
    if uri is None:
        return None
    # ApeRAG's Neo4jSyncConnectionManager defaults: user neo4j, password neo4j.
    password = _raw(environ, "NEO4J_PASSWORD") or "neo4j"
    found.append(password)
    return Neo4jSettings(uri=uri, username=_get(environ, "NEO4J_USERNAME") or "neo4j", password=Secret(password))


def _markers(environ: Mapping[str, str]) -> MarkerPhase | None:
    phase, marker_id = _get(environ, "SMOKE_MARKERS"), _get(environ, "SMOKE_MARKER_ID")
    if phase is None:
        if marker_id is not None:
            raise ConfigError(f"SMOKE_MARKER_ID is set but SMOKE_MARKERS is not ({', '.join(PHASES)})")
        return None
    if phase not in PHASES:
        raise ConfigError(f"SMOKE_MARKERS={phase!r} is not a marker phase; use {', '.join(PHASES)}")
    if marker_id is None:
        raise ConfigError("SMOKE_MARKERS is set without SMOKE_MARKER_ID, the id the markers are named after")
    problem = marker_id_problem(marker_id)
    if problem:
        raise ConfigError(f"SMOKE_MARKER_ID {problem}")
    return MarkerPhase(phase, marker_id)


def load_settings(environ: Mapping[str, str]) -> SmokeSettings:
    """Read the environment contract; absent databases become None, malformed values raise ConfigError."""
    found: list[str] = []
    settings = SmokeSettings(
        postgresql=_postgres(environ, found),
        redis=_redis(environ, found),
        qdrant=_qdrant(environ, found),
        elasticsearch=_elasticsearch(environ, found),
        neo4j=_neo4j(environ, found),
        required=parse_required(environ.get("SMOKE_REQUIRE")),
        # ApeRAG's collections never become active without IK (its index mapping names ik_max_word/ik_smart).
        require_ik=_flag(environ, "SMOKE_REQUIRE_IK", default=True),
        markers=_markers(environ),
    )
    # Every password variable is masked, used or not (a URL variable may have been preferred to it).
    found += [environ.get(name, "") for name in PASSWORD_VARIABLES]
    return SmokeSettings(**{**settings.__dict__, "secret_values": tuple(dict.fromkeys(s for s in found if s))})


_WORD = re.compile(r"\w")


def _whole_value(variant: str) -> re.Pattern[str]:
    """`variant` wherever it is not part of a longer name.

    A name goes on through letters, digits and `_`, and through `-` or `.` when a word follows them: a password
    `redis` leaves `test_redis.py`, `redis-cluster-redis-redis` and `redis://` alone, but not `password redis.`
    """
    before = r"(?<!\w)(?<!\w[.-])" if _WORD.match(variant[0]) else ""
    after = r"(?!\w)(?![.-]\w)(?!://)" if _WORD.match(variant[-1]) else ""
    return re.compile(before + re.escape(variant) + after)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret, raw or URL-encoded as a client might echo it, with `***`, as a whole value."""
    variants: set[str] = set()
    for secret in secrets:
        if secret:
            variants.update({secret, quote(secret, safe=""), quote_plus(secret), unquote(secret), secret.strip()})
    for variant in sorted((v for v in variants if v), key=len, reverse=True):
        text = _whole_value(variant).sub(MASK, text)
    return text
