"""The smoke suite (ci/smoke) run as the pipeline runs it, through its environment contract, against real local
PostgreSQL + pgvector and Redis servers and qdrant-client's in-process mode.

The accounts are set up the way a cluster can be: a KubeBlocks-style generated password (letters and digits) that
must pass everything; a password with URL characters that ApeRAG's URL building cannot carry; a PostgreSQL role
that may not CREATE in `public`; a Redis user without scripting. Each of the last three must fail with a cause
that names what ApeRAG could not do, and no run may print a password.

Elasticsearch and Neo4j have no local server here: their checks run only in the pipeline, and here they must
show up as skipped (or failed, when required), never as passed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from smoke.local_servers import LocalPostgres, LocalRedis, free_port

SMOKE_DIR = Path(__file__).resolve().parents[2] / "ci" / "smoke"
CONTRACT_PREFIXES = ("POSTGRES_", "REDIS_", "QDRANT_", "ES_", "NEO4J_", "SMOKE_")
CONTRACT_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "MEMORY_REDIS_URL", "VECTOR_DB_CONTEXT")


def generated_password() -> str:
    """What KubeBlocks generates for an account: letters and digits."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))


PG_PASSWORD = generated_password()
REDIS_PASSWORD = generated_password()
HOSTILE_PASSWORD = "p@ss:/%#?& w0rd"
PG_USER, PG_DB, REDIS_USER = "aperag", "aperag", "aperag"
PG_PLAIN_USER, PG_PLAIN_PASSWORD = "reader", generated_password()
REDIS_NOSCRIPT_USER, REDIS_NOSCRIPT_PASSWORD = "noscript", generated_password()

POSTGRESQL_CHECKS = {
    "test_database_url_connects_as_its_user_through_psycopg2",
    "test_async_engine_round_trips_a_vector_through_asyncpg",
    "test_tables_in_public_match_aperag_migration",
    "test_document_index_enums_and_unique_constraint_hold",
    "test_chunk_upsert_and_similarity_search_run_as_lightrag_runs_them",
    "test_graph_nodes_and_edges_upsert_on_their_unique_keys",
    "test_entity_and_relation_rows_keep_vectors_and_chunk_id_arrays",
    "test_rolled_back_transaction_leaves_nothing_behind",
    "test_max_connections_holds_aperag_pools",
}
REDIS_CHECKS = {
    "test_urls_authenticate_as_their_user_on_their_databases",
    "test_lock_is_taken_and_released_by_eval_on_db1",
    "test_celery_queue_is_consumed_with_brpop_on_db0",
    "test_maxmemory_policy_is_read_and_reported",
    "test_set_get_with_ttl_expires",
    "test_db0_and_db1_are_kept_apart",
    "test_pipeline_runs_commands_in_one_transaction",
    "test_pubsub_delivers_a_published_message",
    "test_async_pool_from_memory_url_round_trips",
}
QDRANT_CHECKS = {
    f"{name}[client-api-in-process]"
    for name in (
        "test_shared_collection_has_aperag_vector_settings",
        "test_uuid_points_keep_their_payload_and_tenant_key",
        "test_search_with_score_threshold_stays_within_its_tenant",
        "test_deletes_by_filter_touch_only_their_tenant",
    )
}
QDRANT_SERVER_ONLY = {
    "test_server_version_and_client_skew_are_reported[client-api-in-process]": "has no server version",
    "test_tenant_index_is_created_in_a_form_the_server_accepts[client-api-in-process]": "payload indexes do not exist",
}
PIPELINE_ONLY = ("test_elasticsearch", "test_neo4j")


@dataclass(frozen=True)
class Case:
    classname: str
    name: str
    outcome: str  # passed, failure, error or skipped
    message: str


@dataclass(frozen=True)
class SuiteRun:
    returncode: int
    output: str
    junit_text: str
    cases: list[Case]

    def by_module(self, classname: str) -> dict[str, Case]:
        return {case.name: case for case in self.cases if case.classname == classname}

    def leaks(self, *secrets: str) -> bool:
        return any(secret in text for secret in secrets for text in (self.output, self.junit_text))


def _parse_junit(text: str) -> list[Case]:
    cases = []
    # The report is one this test just had pytest write, not untrusted input.
    for testcase in ET.fromstring(text).iter("testcase"):  # noqa: S314
        outcome, message = "passed", ""
        for child in testcase:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, child.get("message", "")
        cases.append(Case(testcase.get("classname", ""), testcase.get("name", ""), outcome, message))
    return cases


def suite_command(junit: Path, *extra: str, only: Sequence[str] = ()) -> list[str]:
    """The pipeline's command line; `only` names the databases whose test files to collect (default: all)."""
    targets = [str(SMOKE_DIR / f"test_{key}.py") for key in only] or [str(SMOKE_DIR)]
    return [
        sys.executable,
        "-m",
        "pytest",
        *targets,
        "-p",
        "no:cacheprovider",
        # With autoloading off (see suite_environment), the one plugin the suite's lock installs.
        "-p",
        "anyio.pytest_plugin",
        "--rootdir",
        str(SMOKE_DIR),
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
        *extra,
    ]


def suite_environment(contract: dict[str, str]) -> dict[str, str]:
    """The caller's environment minus anything the contract or pytest would read from it, plus `contract`.

    Plugin autoloading is off: the dev environment's plugins (hypothesis, trio, ...) are not in the pipeline's
    container, and they would only slow the suite down here.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(CONTRACT_PREFIXES) and key not in CONTRACT_VARIABLES and not key.startswith("PYTEST_")
    }
    return env | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"} | contract


def run_suite(contract: dict[str, str], junit: Path, *extra: str, only: Sequence[str] = ()) -> SuiteRun:
    result = subprocess.run(
        suite_command(junit, *extra, only=only),
        env=suite_environment(contract),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    junit_text = junit.read_text() if junit.exists() else ""
    return SuiteRun(
        result.returncode,
        result.stdout + result.stderr,
        junit_text,
        _parse_junit(junit_text) if junit_text else [],
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres() as server:
        server.create_login(PG_USER, PG_PASSWORD, PG_DB)
        server.create_plain_login(PG_PLAIN_USER, PG_PLAIN_PASSWORD)
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        server.create_acl_user(REDIS_USER, REDIS_PASSWORD)
        server.create_acl_user(REDIS_NOSCRIPT_USER, REDIS_NOSCRIPT_PASSWORD, "-@scripting")
        yield server


@pytest.fixture
def contract(postgres: LocalPostgres, redis_server: LocalRedis) -> dict[str, str]:
    return {
        "POSTGRES_HOST": postgres.host,
        "POSTGRES_PORT": str(postgres.port),
        "POSTGRES_DB": PG_DB,
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": PG_PASSWORD,
        "REDIS_HOST": redis_server.host,
        "REDIS_PORT": str(redis_server.port),
        "REDIS_USER": REDIS_USER,
        "REDIS_PASSWORD": REDIS_PASSWORD,
        "VECTOR_DB_CONTEXT": '{"url": ":memory:"}',
        "SMOKE_REQUIRE": "postgresql,redis,qdrant",
    }


def smoke_objects(postgres: LocalPostgres) -> list[str]:
    """Tables, sequences, indexes and types a run left in `public`."""
    rows = postgres.run(
        "SELECT relname FROM pg_class WHERE relname LIKE 'smoke\\_%' "
        "UNION ALL SELECT typname FROM pg_type WHERE typname LIKE 'smoke\\_%' AND typname NOT LIKE '\\_%'",
        PG_DB,
    )
    return [str(row[0]) for row in rows]


def smoke_keys(redis_server: LocalRedis) -> list[str]:
    keys: list[str] = []
    for db in (0, 1):
        with redis.Redis(
            host=redis_server.host,
            port=redis_server.port,
            db=db,
            username=REDIS_USER,
            password=REDIS_PASSWORD,
        ) as client:
            keys += [key.decode() for key in client.scan_iter(match="smoke_*")]
    return keys


def assert_all_passed(run: SuiteRun, classname: str, expected: set[str]) -> None:
    cases = run.by_module(classname)
    assert set(cases) >= expected
    not_passed = {
        name: (c.outcome, c.message) for name, c in cases.items() if name in expected and c.outcome != "passed"
    }
    assert not_passed == {}


def assert_all_errored_with(run: SuiteRun, classname: str, expected: set[str], cause: str) -> None:
    cases = run.by_module(classname)
    assert set(cases) == expected
    assert {case.outcome for case in cases.values()} == {"error"}
    # pytest's JUnit message for a fixture's failure; the pipeline's report shows it as the check's first line.
    first_line = f'failed on setup with "Failed: {cause}'
    assert all(case.message.startswith(first_line) for case in cases.values()), next(iter(cases.values())).message


def test_a_kubeblocks_style_password_passes_every_check_and_leaves_nothing_behind(
    contract: dict[str, str], tmp_path: Path, postgres: LocalPostgres, redis_server: LocalRedis
) -> None:
    run = run_suite(contract, tmp_path / "junit.xml")

    assert run.returncode == 0, "suite failed; rerun it by hand with the same environment to see why"
    assert_all_passed(run, "test_postgresql", POSTGRESQL_CHECKS)
    assert set(run.by_module("test_postgresql")) == POSTGRESQL_CHECKS
    assert_all_passed(run, "test_redis", REDIS_CHECKS)
    assert set(run.by_module("test_redis")) == REDIS_CHECKS
    qdrant = run.by_module("test_qdrant")
    assert set(qdrant) == QDRANT_CHECKS | set(QDRANT_SERVER_ONLY)
    assert_all_passed(run, "test_qdrant", QDRANT_CHECKS)
    for name, reason in QDRANT_SERVER_ONLY.items():
        assert (qdrant[name].outcome, reason in qdrant[name].message) == ("skipped", True)
    for classname in PIPELINE_ONLY:
        cases = run.by_module(classname)
        assert cases, f"{classname} missing from the JUnit report"
        assert {case.outcome for case in cases.values()} == {"skipped"}
        assert all("not configured" in case.message for case in cases.values())
    assert 'name="qdrant_mode" value="client-api-in-process"' in run.junit_text
    # The local server's default max_connections (100) is under one ApeRAG process's peak: a warning, recorded.
    assert 'name="postgresql_warning" value="100 connections usable' in run.junit_text
    assert not run.leaks(PG_PASSWORD, REDIS_PASSWORD), "a password appears in the suite's output or JUnit file"
    assert smoke_objects(postgres) == []
    assert smoke_keys(redis_server) == []


def test_parallel_runs_do_not_collide(
    contract: dict[str, str], tmp_path: Path, postgres: LocalPostgres, redis_server: LocalRedis
) -> None:
    runs = [
        subprocess.Popen(
            suite_command(tmp_path / f"junit-{n}.xml", only=("postgresql", "redis")),
            env=suite_environment(contract),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in runs]

    assert [process.returncode for process in runs] == [0, 0], "a parallel run failed"
    for n in range(2):
        cases = _parse_junit((tmp_path / f"junit-{n}.xml").read_text())
        assert {c.outcome for c in cases if c.classname in ("test_postgresql", "test_redis")} == {"passed"}
    assert not any(secret in output for secret in (PG_PASSWORD, REDIS_PASSWORD) for output in outputs)
    assert smoke_objects(postgres) == []
    assert smoke_keys(redis_server) == []


def test_a_password_aperag_cannot_put_in_its_urls_fails_naming_variable_and_characters(
    contract: dict[str, str], tmp_path: Path
) -> None:
    hostile = contract | {"POSTGRES_PASSWORD": HOSTILE_PASSWORD, "REDIS_PASSWORD": HOSTILE_PASSWORD}

    # Long tracebacks with locals: the most a failure can print.
    run = run_suite(hostile, tmp_path / "junit.xml", "--tb=long", "--showlocals", only=("postgresql", "redis"))

    assert run.returncode == pytest.ExitCode.TESTS_FAILED
    assert_all_errored_with(
        run,
        "test_postgresql",
        POSTGRESQL_CHECKS,
        "cannot use postgresql: POSTGRES_PASSWORD contains '@' and '%', which ApeRAG pastes into DATABASE_URL "
        "unescaped",
    )
    assert_all_errored_with(
        run,
        "test_redis",
        REDIS_CHECKS,
        "cannot use redis: REDIS_PASSWORD contains '/', '#' and '?', which ApeRAG pastes into "
        "CELERY_BROKER_URL and MEMORY_REDIS_URL unescaped",
    )
    assert not run.leaks(HOSTILE_PASSWORD), "a password appears in the suite's output or JUnit file"


def test_a_role_that_may_not_create_in_public_fails_as_aperag_migrations_would(
    contract: dict[str, str], tmp_path: Path, postgres: LocalPostgres
) -> None:
    plain = contract | {"POSTGRES_USER": PG_PLAIN_USER, "POSTGRES_PASSWORD": PG_PLAIN_PASSWORD}

    run = run_suite(plain, tmp_path / "junit.xml", only=("postgresql",))

    assert run.returncode == pytest.ExitCode.TESTS_FAILED
    assert_all_errored_with(
        run,
        "test_postgresql",
        POSTGRESQL_CHECKS,
        f"cannot use postgresql: role {PG_PLAIN_USER} may not CREATE in schema public, where "
        "ApeRAG's Alembic migrations create its tables",
    )
    assert f"GRANT CREATE ON SCHEMA public TO {PG_PLAIN_USER}" in run.output
    assert not run.leaks(PG_PLAIN_PASSWORD)
    assert smoke_objects(postgres) == []


def test_a_redis_user_without_scripting_fails_the_lock_release_alone(contract: dict[str, str], tmp_path: Path) -> None:
    noscript = contract | {"REDIS_USER": REDIS_NOSCRIPT_USER, "REDIS_PASSWORD": REDIS_NOSCRIPT_PASSWORD}

    run = run_suite(noscript, tmp_path / "junit.xml", only=("redis",))

    assert run.returncode == pytest.ExitCode.TESTS_FAILED
    cases = run.by_module("test_redis")
    failed = {name: case.message for name, case in cases.items() if case.outcome != "passed"}
    assert list(failed) == ["test_lock_is_taken_and_released_by_eval_on_db1"]
    assert failed["test_lock_is_taken_and_released_by_eval_on_db1"].startswith("Failed: EVAL refused (")
    assert "ApeRAG releases its locks with a Lua script" in failed["test_lock_is_taken_and_released_by_eval_on_db1"]
    assert "no permissions to run the 'eval' command" in run.output
    assert not run.leaks(REDIS_NOSCRIPT_PASSWORD)


def test_failing_required_databases_error_without_leaking_passwords(contract: dict[str, str], tmp_path: Path) -> None:
    wrong_pg_password = generated_password()
    broken = contract | {"POSTGRES_PASSWORD": wrong_pg_password, "REDIS_PORT": str(free_port())}

    run = run_suite(broken, tmp_path / "junit.xml", "--tb=long", "--showlocals", only=("postgresql", "redis"))

    assert run.returncode == pytest.ExitCode.TESTS_FAILED
    assert_all_errored_with(
        run,
        "test_postgresql",
        POSTGRESQL_CHECKS,
        "cannot use postgresql: connect through DATABASE_URL (psycopg2): ",
    )
    assert_all_errored_with(run, "test_redis", REDIS_CHECKS, "cannot use redis: pool from CELERY_BROKER_URL, PING: ")
    assert "password authentication failed" in run.output
    assert "Connection refused" in run.output
    assert not run.leaks(wrong_pg_password, REDIS_PASSWORD), "a password appears in the suite's output or JUnit"


def test_absent_or_unreachable_databases_skip_unless_required(contract: dict[str, str], tmp_path: Path) -> None:
    # Neo4j required but not configured; Elasticsearch not configured; Redis configured but down, not required.
    environment = {key: value for key, value in contract.items() if key.startswith("REDIS_")}
    environment |= {"REDIS_PORT": str(free_port()), "SMOKE_REQUIRE": "neo4j"}

    run = run_suite(environment, tmp_path / "junit.xml", only=("neo4j", "elasticsearch", "redis"))

    assert run.returncode == pytest.ExitCode.TESTS_FAILED
    neo4j = run.by_module("test_neo4j").values()
    assert {case.outcome for case in neo4j} == {"error"}
    assert all("NEO4J_URI is not set, but SMOKE_REQUIRE lists neo4j" in case.message for case in neo4j)
    elasticsearch = run.by_module("test_elasticsearch").values()
    assert {case.outcome for case in elasticsearch} == {"skipped"}
    assert all("ES_HOST or ES_HOST_NAME are not set" in case.message for case in elasticsearch)
    redis_cases = run.by_module("test_redis").values()
    assert {case.outcome for case in redis_cases} == {"skipped"}
    assert all("cannot use redis" in c.message and "not in SMOKE_REQUIRE" in c.message for c in redis_cases)
    assert not run.leaks(REDIS_PASSWORD)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SMOKE_REQUIRE": "postgresql,mysql"}, "SMOKE_REQUIRE names unknown databases ['mysql']"),
        ({"POSTGRES_HOST": "db", "POSTGRES_PORT": "54x2"}, "POSTGRES_PORT='54x2' is not a TCP port"),
        ({"ES_HOST_NAME": "es", "ES_PROTOCOL": "ftp"}, "ES_PROTOCOL='ftp' must be http or https"),
        ({"DATABASE_URL": "mysql://u:secret@db/x"}, "DATABASE_URL has scheme 'mysql'; ApeRAG reads it as postgresql"),
    ],
    ids=["unknown-database", "bad-port", "bad-protocol", "foreign-url"],
)
def test_malformed_environment_is_a_usage_error_naming_the_variable(
    environment: dict[str, str], message: str, tmp_path: Path
) -> None:
    run = run_suite(environment, tmp_path / "junit.xml")

    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert message in run.output
    assert "secret" not in run.output


def test_scrubber_masks_a_common_word_password_a_failing_check_prints_and_nothing_else(tmp_path: Path) -> None:
    # A deliberately careless check, run inside a copy of the suite: only conftest's scrubbing stands between the
    # password and the report. The password is a common word that also appears in test ids and paths.
    password = "redis"
    suite_copy = tmp_path / "smoke"
    shutil.copytree(SMOKE_DIR, suite_copy, ignore=shutil.ignore_patterns("test_*.py", "__pycache__", ".mypy_cache"))
    (suite_copy / "test_careless_redis.py").write_text(
        "import os\n"
        "import pytest\n\n"
        "pytestmark = pytest.mark.redis\n\n"
        "def test_prints_and_compares_the_redis_password():\n"
        "    password = os.environ['REDIS_PASSWORD']\n"
        "    print('connecting with', password)\n"
        "    assert password == 'something else'\n"
    )
    junit = tmp_path / "junit.xml"
    command = suite_command(junit, "--tb=long", "--showlocals", "-rA", "-o", "junit_logging=all")
    command[command.index(str(SMOKE_DIR))] = str(suite_copy)
    command[command.index("--rootdir") + 1] = str(suite_copy)
    result = subprocess.run(
        command,
        env=suite_environment({"REDIS_HOST": "127.0.0.1", "REDIS_USER": "aperag", "REDIS_PASSWORD": password}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    run = SuiteRun(result.returncode, result.stdout + result.stderr, junit.read_text(), [])

    assert run.returncode == pytest.ExitCode.TESTS_FAILED
    assert "connecting with ***" in run.output
    assert "'redis'" not in run.output and " redis\n" not in run.output
    # Whole values only: the word inside names is left alone.
    assert "test_careless_redis.py::test_prints_and_compares_the_redis_password" in run.output
    assert 'classname="test_careless_redis"' in run.junit_text
