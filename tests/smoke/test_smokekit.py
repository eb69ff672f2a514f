"""The smoke suite's logic that needs no server: ApeRAG's URL building and what it cannot carry, the environment
contract, masking, cleanups that never hide a setup error, and the Neo4j / Elasticsearch / Qdrant decisions whose
servers cannot run here (their checks run in the pipeline only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from neo4j.exceptions import ClientError, Neo4jError
from smokekit import aperag_urls, fulltext, graphdb, qdrant_ops
from smokekit.errors import SmokeError, cleanup
from smokekit.settings import ConfigError, load_settings, mask

PASSWORD = "Kf83hQ2zLm9XcV4t"
PG = {
    "POSTGRES_HOST": "pg-cluster-postgresql-postgresql",
    "POSTGRES_PORT": "5432",
    "POSTGRES_DB": "postgres",
    "POSTGRES_USER": "postgres",
    "POSTGRES_PASSWORD": PASSWORD,
}
REDIS = {
    "REDIS_HOST": "redis-cluster-redis-redis",
    "REDIS_PORT": "6379",
    "REDIS_USER": "default",
    "REDIS_PASSWORD": PASSWORD,
}
ES = {"ES_HOST_NAME": "es-cluster-mdit-http", "ES_PORT": "9200", "ES_USER": "elastic", "ES_PASSWORD": PASSWORD}


def test_urls_are_built_exactly_as_apes_entrypoint_builds_them() -> None:
    settings = load_settings(PG | REDIS | ES | {"ES_PROTOCOL": "http"})
    assert settings.postgresql and settings.redis and settings.elasticsearch
    assert settings.postgresql.database_url.reveal() == (
        f"postgresql://postgres:{PASSWORD}@pg-cluster-postgresql-postgresql:5432/postgres"
    )
    assert settings.redis.broker_url.reveal() == f"redis://default:{PASSWORD}@redis-cluster-redis-redis:6379/0"
    assert settings.redis.memory_url.reveal() == f"redis://default:{PASSWORD}@redis-cluster-redis-redis:6379/1"
    assert settings.elasticsearch.es_host.reveal() == f"http://elastic:{PASSWORD}@es-cluster-mdit-http:9200"
    assert (settings.postgresql.problems, settings.redis.problems, settings.elasticsearch.problems) == ((), (), ())


def test_defaults_follow_the_entrypoint_and_es_host_leaves_out_missing_credentials() -> None:
    settings = load_settings(
        {"POSTGRES_HOST": "db", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p", "ES_HOST_NAME": "es"}
    )
    assert settings.postgresql and settings.elasticsearch
    assert settings.postgresql.database_url.reveal() == "postgresql://u:p@db:5432/postgres"
    assert settings.elasticsearch.es_host.reveal() == "http://es:9200"


def test_url_variables_when_set_are_used_as_they_are() -> None:
    given = {
        "DATABASE_URL": "postgresql+asyncpg://app:pw%40x@db:5433/rag",
        "CELERY_BROKER_URL": "redis://app:pw@cache:6380/0",
        "MEMORY_REDIS_URL": "redis://app:pw@cache:6380/1",
        "ES_HOST": "https://es:9243",
        "VECTOR_DB_CONTEXT": '{"url": "http://qdrant", "port": 6333, "timeout": 1000, "api_key": "k3y"}',
    }
    settings = load_settings(given | PG | REDIS)
    assert settings.postgresql and settings.redis and settings.qdrant and settings.elasticsearch
    assert settings.postgresql.database_url.reveal() == given["DATABASE_URL"]
    assert settings.redis.broker_url.reveal() == given["CELERY_BROKER_URL"]
    assert settings.elasticsearch.es_host.reveal() == given["ES_HOST"]
    assert settings.qdrant.context == {"url": "http://qdrant", "port": 6333, "timeout": 1000, "api_key": "k3y"}
    # Whatever credential a URL variable carries is masked too, raw and decoded.
    assert {"pw%40x", "pw@x", "pw", "k3y", PASSWORD} <= set(settings.secrets())


def test_qdrant_url_is_only_the_fallback_for_vector_db_context() -> None:
    settings = load_settings({"QDRANT_URL": "http://qdrant:6333"})
    assert settings.qdrant is not None
    assert (settings.qdrant.context, settings.qdrant.source) == (
        {"url": "http://qdrant:6333"},
        "QDRANT_URL (VECTOR_DB_CONTEXT is not set)",
    )
    assert load_settings({"VECTOR_DB_CONTEXT": '{"url": ":memory:"}'}).qdrant.in_process  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"VECTOR_DB_CONTEXT": "[1, 2]"}, 'VECTOR_DB_CONTEXT must be a JSON object with a "url" string'),
        (
            {"CELERY_BROKER_URL": "redis://a:b@c:1/0"},
            "CELERY_BROKER_URL is set without the other and without REDIS_HOST",
        ),
        ({"ES_HOST": "es:9200"}, "ES_HOST has scheme '(none)'"),
        ({"VECTOR_DB_CONTEXT": "{url: qdrant}"}, "VECTOR_DB_CONTEXT is not JSON (Expecting property name"),
        ({"SMOKE_REQUIRE_IK": "maybe"}, "SMOKE_REQUIRE_IK='maybe' is not a boolean"),
    ],
)
def test_unusable_url_variables_are_config_errors_naming_them(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(environment)


def test_the_ik_plugin_is_required_unless_said_otherwise() -> None:
    assert load_settings({}).require_ik is True
    assert load_settings({"SMOKE_REQUIRE_IK": "0"}).require_ik is False


@pytest.mark.parametrize(
    ("password", "problems"),
    [
        (PASSWORD, []),
        ("a:b&c=d e!", []),
        ("p@ss", ["POSTGRES_PASSWORD contains '@', which ApeRAG pastes into DATABASE_URL unescaped"]),
        ("50%41off", ["POSTGRES_PASSWORD contains '%', which ApeRAG pastes into DATABASE_URL unescaped"]),
        ("100%", ["POSTGRES_PASSWORD contains '%', which ApeRAG pastes into DATABASE_URL unescaped"]),
        (
            'say"hi',
            [
                "POSTGRES_PASSWORD contains '\"', which ApeRAG pastes into the Python code of scripts/entrypoint.sh "
                "unescaped"
            ],
        ),
    ],
    ids=["generated", "harmless-symbols", "at", "percent-escape", "percent-alembic", "quote"],
)
def test_postgres_credentials_aperag_cannot_carry_are_named_by_character(password: str, problems: list[str]) -> None:
    parts = aperag_urls.PostgresParts("db", "5432", "postgres", "aperag", password)
    assert list(aperag_urls.postgres_problems(parts)) == problems


def test_redis_and_es_name_the_characters_their_parsers_lose() -> None:
    redis_parts = aperag_urls.RedisParts("cache", "6379", "default", "p@ss:/%#?& w0rd")
    es_parts = aperag_urls.ElasticsearchParts("http", "es", "9200", "elastic", "a/b")
    assert aperag_urls.redis_problems(redis_parts, "MEMORY_REDIS_URL", 1) == (
        "REDIS_PASSWORD contains '/', '#' and '?', which ApeRAG pastes into MEMORY_REDIS_URL unescaped",
    )
    assert aperag_urls.elasticsearch_problems(es_parts) == (
        "ES_PASSWORD contains '/', which ApeRAG pastes into ES_HOST unescaped",
    )
    # '@' survives urllib.parse (it splits at the last '@'), unlike SQLAlchemy's URL pattern.
    assert aperag_urls.redis_problems(aperag_urls.RedisParts("c", "6379", "u", "p@ss"), "MEMORY_REDIS_URL", 1) == ()


def test_a_user_name_is_judged_like_a_password() -> None:
    parts = aperag_urls.RedisParts("cache", "6379", "team:rag", PASSWORD)
    assert aperag_urls.redis_problems(parts, "CELERY_BROKER_URL", 0) == (
        "REDIS_USER contains ':', which ApeRAG pastes into CELERY_BROKER_URL unescaped",
    )


def test_missing_credentials_say_what_aperag_needs_to_build_the_url() -> None:
    settings = load_settings({"POSTGRES_HOST": "db", "POSTGRES_USER": "postgres", "REDIS_HOST": "cache"})
    assert settings.postgresql and settings.redis
    assert settings.postgresql.problems == (
        "DATABASE_URL is not set, and ApeRAG builds it only when POSTGRES_HOST, POSTGRES_USER and POSTGRES_PASSWORD "
        "are all set (POSTGRES_PASSWORD is empty)",
    )
    assert settings.redis.problems[0].startswith(
        "CELERY_BROKER_URL and MEMORY_REDIS_URL are not set, and ApeRAG builds them only when REDIS_HOST, REDIS_USER "
        "and REDIS_PASSWORD are all set (REDIS_USER, REDIS_PASSWORD are empty)"
    )


def test_problems_never_contain_the_credential() -> None:
    secret = "s3cr3t@#%41"
    for problem in aperag_urls.postgres_problems(aperag_urls.PostgresParts("db", "5432", "postgres", "u", secret)):
        assert "s3cr3t" not in problem


def test_database_url_forms_follow_aperag_config() -> None:
    assert aperag_urls.sync_database_url("postgresql+asyncpg://u:p@h/d") == "postgresql://u:p@h/d"
    assert aperag_urls.async_database_url("postgresql://u:p@h/d") == "postgresql+asyncpg://u:p@h/d"
    assert aperag_urls.async_database_url("postgres://u:p@h/d") == "postgresql+asyncpg://u:p@h/d"


@pytest.mark.parametrize(
    ("text", "secret", "masked"),
    [
        (
            "redis://default:redis@redis-cluster-redis-redis:6379/0 in test_redis.py",
            "redis",
            "redis://default:***@redis-cluster-redis-redis:6379/0 in test_redis.py",
        ),
        ("bolt://neo4j-cluster-neo4j:7687 as neo4j/neo4j", "neo4j", "bolt://neo4j-cluster-neo4j:7687 as ***/***"),
        ("user 'aperag' password 'aperag'.", "aperag", "user '***' password '***'."),
        ("the password is aperag.", "aperag", "the password is ***."),
        ("p@ss:/%#?& w0rd and p%40ss%3A%2F%25%23%3F%26%20w0rd", "p@ss:/%#?& w0rd", "*** and ***"),
        ("token=@@x@@; pytest", "@@x@@", "token=***; pytest"),
    ],
    ids=["word-in-names", "service-names", "quoted", "sentence", "url-encoded", "symbol-edges"],
)
def test_masking_replaces_the_secret_as_a_whole_value(text: str, secret: str, masked: str) -> None:
    assert mask(text, [secret]) == masked


def test_a_failed_setup_stays_the_reported_error_when_its_cleanup_fails_too() -> None:
    def failing_undo() -> None:
        raise OSError("connection reset")

    with pytest.raises(SmokeError) as caught, cleanup("drop tables", failing_undo, []):
        raise SmokeError("create tables: permission denied")
    assert str(caught.value) == "create tables: permission denied"
    assert caught.value.__notes__ == ["cleanup also failed: drop tables: OSError: connection reset"]


def test_a_failing_cleanup_after_success_is_the_error_and_names_itself() -> None:
    def failing_undo() -> None:
        raise OSError("connection reset for p4ss")

    with (
        pytest.raises(SmokeError, match=r"^drop tables: OSError: connection reset for \*\*\*$"),
        cleanup("drop tables", failing_undo, ["p4ss"]),
    ):
        pass


class FakeSession:
    def __init__(self, driver: FakeDriver, database: str | None) -> None:
        self.driver, self.database = driver, database

    def run(self, query: str) -> FakeSession:
        self.driver.queries.append((self.database, query))
        failure = self.driver.failures.get((self.database, query.split(" ")[0]))
        if failure is not None:
            raise failure
        return self

    def consume(self) -> None:
        pass


class FakeDriver:
    """Answers like a Neo4j server for the statements prepare_database sends; `failures` by (database, verb)."""

    def __init__(self, failures: dict[tuple[str | None, str], Exception]) -> None:
        self.failures = failures
        self.queries: list[tuple[str | None, str]] = []

    @contextmanager
    def session(self, database: str | None = None) -> Iterator[FakeSession]:
        yield FakeSession(self, database)


def neo4j_error(code: str, message: str) -> Neo4jError:
    return Neo4jError._hydrate_neo4j(code=code, message=message)


NOT_FOUND = "Neo.ClientError.Database.DatabaseNotFound"


def test_prepare_database_creates_the_workspace_database_then_its_index() -> None:
    driver = FakeDriver({("smoke-1a2b", "MATCH"): neo4j_error(NOT_FOUND, "Database does not exist.")})
    prepared = graphdb.prepare_database(driver, "smoke_1a2b")  # type: ignore[arg-type]
    assert prepared == graphdb.Prepared("smoke-1a2b", graphdb.CREATED)
    assert driver.queries == [
        ("smoke-1a2b", "MATCH (n) RETURN n LIMIT 0"),
        (None, "CREATE DATABASE `smoke-1a2b` IF NOT EXISTS"),
        ("smoke-1a2b", graphdb.ENTITY_INDEX),
    ]


def test_prepare_database_falls_back_to_neo4j_where_create_database_is_unsupported() -> None:
    driver = FakeDriver(
        {
            ("smoke-1a2b", "MATCH"): neo4j_error(NOT_FOUND, "Database does not exist."),
            (None, "CREATE"): neo4j_error(
                "Neo.ClientError.Statement.UnsupportedAdministrationCommand", "Unsupported administration command"
            ),
        }
    )
    prepared = graphdb.prepare_database(driver, "smoke_1a2b")  # type: ignore[arg-type]
    assert prepared == graphdb.Prepared("neo4j", graphdb.COMMUNITY_FALLBACK, index_attempted=False)
    assert [query for _, query in driver.queries][-1].startswith("CREATE DATABASE")


def test_prepare_database_raises_other_errors_and_records_an_index_failure() -> None:
    forbidden = neo4j_error("Neo.ClientError.Security.Forbidden", "Permission denied")
    with pytest.raises(ClientError, match="Forbidden"):
        graphdb.prepare_database(FakeDriver({("smoke-1a2b", "MATCH"): forbidden}), "smoke_1a2b")  # type: ignore[arg-type]
    unavailable = neo4j_error("Neo.TransientError.General.DatabaseUnavailable", "Database is starting")
    prepared = graphdb.prepare_database(FakeDriver({("smoke-1a2b", "CREATE"): unavailable}), "smoke_1a2b")  # type: ignore[arg-type]
    assert (prepared.how, prepared.index_error is not None) == (graphdb.EXISTING, True)


def test_a_missing_ik_analyzer_is_told_apart_from_other_analyze_errors() -> None:
    # elasticsearch-py's str() of the 400 Elasticsearch answers when no plugin provides the analyzer.
    missing = "BadRequestError(400, 'illegal_argument_exception', 'failed to find global analyzer [ik_smart]')"
    assert fulltext.names_missing_ik(missing)
    assert not fulltext.names_missing_ik("BadRequestError(400, 'parse_exception', 'request body is required')")


def test_keyword_search_and_mapping_are_apes() -> None:
    assert fulltext.keyword_query(["国歌", "中华人民共和国"]) == {
        "bool": {
            "should": [{"match": {"content": "国歌"}}, {"match": {"content": "中华人民共和国"}}],
            "minimum_should_match": "80%",
        }
    }
    content: dict[str, Any] = fulltext.aperag_mapping()["properties"]["content"]
    assert content == {"type": "text", "analyzer": "ik_max_word", "search_analyzer": "ik_smart"}


def test_version_skew_counts_minor_versions() -> None:
    assert qdrant_ops.version_skew("1.13.3", "1.10.0") == 3
    assert qdrant_ops.version_skew("1.11.3", "1.10.0") == 1
    assert qdrant_ops.version_skew("2.0.0", "1.10.0") is None
