"""ApeRAG's connection URLs, built as ApeRAG builds them, and what that build cannot carry.

ApeRAG (`scripts/entrypoint.sh`, later `aperag/config.py`) pastes the raw credentials into its URLs:

    DATABASE_URL      = postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@${POSTGRES_HOST}:${POSTGRES_PORT:-5432}/${POSTGRES_DB:-postgres}
    CELERY_BROKER_URL = redis://${REDIS_USER}:${REDIS_PASSWORD}@${REDIS_HOST}:${REDIS_PORT:-6379}/0
    MEMORY_REDIS_URL  = redis://${REDIS_USER}:${REDIS_PASSWORD}@${REDIS_HOST}:${REDIS_PORT:-6379}/1
    ES_HOST           = ${ES_PROTOCOL:-http}://[${ES_USER}:${ES_PASSWORD}@]${ES_HOST_NAME}:${ES_PORT:-9200}

and its entrypoint pastes the PostgreSQL variables into a Python string literal (`password="${POSTGRES_PASSWORD}"`)
to wait for the server. Whether a credential survives is decided by reading the result back with the parser
ApeRAG's code hands it to: SQLAlchemy's `make_url` and Alembic's configparser for DATABASE_URL, redis-py's
`parse_url` for the Redis URLs (kombu parses CELERY_BROKER_URL the same way: urllib.parse, then percent-decoding),
the Elasticsearch client's own URL reader for ES_HOST, Python's parser for the entrypoint's literal.
"""

from __future__ import annotations

import ast
import base64
import configparser
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class PostgresParts:
    host: str
    port: str
    database: str
    user: str
    password: str

    def database_url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class RedisParts:
    host: str
    port: str
    user: str
    password: str

    def url(self, db: int) -> str:
        return f"redis://{self.user}:{self.password}@{self.host}:{self.port}/{db}"


@dataclass(frozen=True)
class ElasticsearchParts:
    protocol: str
    host: str
    port: str
    user: str
    password: str

    def es_host(self) -> str:
        if self.user and self.password:
            return f"{self.protocol}://{self.user}:{self.password}@{self.host}:{self.port}"
        return f"{self.protocol}://{self.host}:{self.port}"


def url_secrets(url: str) -> list[str]:
    """The password inside a URL variable given as it is (raw and percent-decoded), for masking."""
    from urllib.parse import unquote

    rest = url.split("://", 1)[-1]
    userinfo, at, _ = rest.rpartition("@")
    if not at:
        return []
    password = userinfo.partition(":")[2]
    return [password, unquote(password)] if password else []


def describe_characters(characters: list[str]) -> str:
    names = {" ": "a space", "\t": "a tab", "\n": "a newline"}
    shown = [names.get(c, repr(c)) for c in characters]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def culprits(value: str, carries: Callable[[str], bool]) -> list[str]:
    """The characters of `value` that keep it from surviving, each tested in place with the others neutralised."""
    specials = list(dict.fromkeys(c for c in value if not c.isalnum()))
    found = [c for c in specials if not carries("".join(ch if ch.isalnum() or ch == c else "x" for ch in value))]
    return found or specials


def _problems(parts: Any, fields: dict[str, str], target: str, carries: Callable[[Any], bool]) -> tuple[str, ...]:
    """One problem per variable whose value `target` cannot carry, naming its characters, never the value."""
    if carries(parts):
        return ()
    # Each variable is judged alone, the others replaced by a plain word.
    plain = replace(parts, **{field: "x" for field in fields if getattr(parts, field)})
    found = []
    for field, variable in fields.items():
        value = getattr(parts, field)

        def carries_value(candidate: str, field: str = field) -> bool:
            return carries(replace(plain, **{field: candidate}))

        if value and not carries_value(value):
            found.append(
                f"{variable} contains {describe_characters(culprits(value, carries_value))}, "
                f"which ApeRAG pastes into {target} unescaped"
            )
    return tuple(found) or (f"{target} as ApeRAG builds it cannot be read back",)


def _python_literal_survives(parts: PostgresParts) -> bool:
    for value in (parts.user, parts.password, parts.database, parts.host):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an invalid escape such as "\\c" is only a warning
                if ast.literal_eval(f'"{value}"') != value:
                    return False
        except (SyntaxError, ValueError):
            return False
    return True


def _sqlalchemy_reads_back(parts: PostgresParts) -> bool:
    from sqlalchemy.engine import make_url

    try:
        url = make_url(parts.database_url())
    except Exception:
        return False
    wanted = (parts.user, parts.password, parts.host, int(parts.port), parts.database)
    return (url.username or "", url.password or "", url.host, url.port, url.database) == wanted


def _alembic_reads_back(parts: PostgresParts) -> bool:
    # aperag/migration/env.py: config.set_main_option("sqlalchemy.url", DATABASE_URL), a ConfigParser.set, where
    # `%` starts an interpolation.
    config = configparser.ConfigParser()
    config.add_section("alembic")
    try:
        config.set("alembic", "sqlalchemy.url", parts.database_url())
        return config.get("alembic", "sqlalchemy.url") == parts.database_url()
    except (ValueError, configparser.Error):
        return False


def postgres_problems(parts: PostgresParts) -> tuple[str, ...]:
    fields = {"user": "POSTGRES_USER", "password": "POSTGRES_PASSWORD", "database": "POSTGRES_DB"}
    literal = _problems(
        parts,
        {**fields, "host": "POSTGRES_HOST"},
        "the Python code of scripts/entrypoint.sh",
        _python_literal_survives,
    )
    url = _problems(parts, fields, "DATABASE_URL", lambda p: _sqlalchemy_reads_back(p) and _alembic_reads_back(p))
    return literal + url


def _redis_reads_back(parts: RedisParts, db: int) -> bool:
    from redis.connection import parse_url

    try:
        read: dict[str, Any] = parse_url(parts.url(db))
    except ValueError:
        return False
    wanted = (parts.user, parts.password, parts.host, int(parts.port), db)
    got = (read.get("username", ""), read.get("password", ""), read.get("host"), read.get("port"), read.get("db"))
    return got == wanted


def redis_problems(parts: RedisParts, target: str, db: int) -> tuple[str, ...]:
    fields = {"user": "REDIS_USER", "password": "REDIS_PASSWORD"}
    return _problems(parts, fields, target, lambda p: _redis_reads_back(p, db))


def _elasticsearch_reads_back(parts: ElasticsearchParts) -> bool:
    # What Elasticsearch(ES_HOST) / AsyncElasticsearch(ES_HOST) do with a string host.
    from elastic_transport.client_utils import url_to_node_config

    try:
        node = url_to_node_config(parts.es_host())
    except ValueError:
        return False
    if (node.scheme, node.host, node.port) != (parts.protocol, parts.host, int(parts.port)):
        return False
    if not (parts.user and parts.password):
        return True
    credentials = base64.b64encode(f"{parts.user}:{parts.password}".encode()).decode()
    return bool(node.headers.get("authorization") == f"Basic {credentials}")


def elasticsearch_problems(parts: ElasticsearchParts) -> tuple[str, ...]:
    return _problems(parts, {"user": "ES_USER", "password": "ES_PASSWORD"}, "ES_HOST", _elasticsearch_reads_back)


def sync_database_url(url: str) -> str:
    """aperag/config.py's get_sync_database_url: the URL its sync engine and Alembic use (psycopg2)."""
    for async_scheme, sync_scheme in (
        ("postgresql+asyncpg://", "postgresql://"),
        ("postgres+asyncpg://", "postgres://"),
    ):
        if url.startswith(async_scheme):
            return sync_scheme + url[len(async_scheme) :]
    return url


def async_database_url(url: str) -> str:
    """aperag/config.py's get_async_database_url: the URL its async engine uses (asyncpg)."""
    for sync_scheme in ("postgresql://", "postgres://"):
        if url.startswith(sync_scheme):
            return "postgresql+asyncpg://" + url[len(sync_scheme) :]
    return url
