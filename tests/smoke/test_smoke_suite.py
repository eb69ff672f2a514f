"""The smoke suite (ci/smoke) run as the pipeline runs it, through its environment contract, against real local
PostgreSQL + pgvector and Redis servers and qdrant-client's in-process mode.

Elasticsearch and Neo4j have no local server here: their checks run only in the pipeline, and here they must
show up as skipped (or failed, when required), never as passed.
"""

from __future__ import annotations

import os
import shutil
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
PG_PASSWORD = "pg p@ss:/%#?& w0rd"
REDIS_PASSWORD = "redis p@ss:/%#?& w0rd"
PG_USER, PG_DB, REDIS_USER = "aperag", "aperag", "aperag"

POSTGRESQL_CHECKS = {
    "test_sync_connection_runs_queries_as_configured_user",
    "test_async_connection_round_trips_a_vector",
    "test_vector_extension_is_installed_and_computes_cosine_distance",
    "test_orm_schema_has_native_enums_dimensionless_vectors_and_string_arrays",
    "test_document_index_row_gets_aperag_defaults",
    "test_duplicate_document_index_violates_uq_document_index",
    "test_upsert_on_conflict_updates_chunk_entity_and_relation",
    "test_cosine_nearest_neighbour_returns_the_closest_chunk",
    "test_graph_nodes_and_edges_reject_duplicate_keys_and_upsert",
    "test_document_status_derives_from_stored_index_rows[any-failed-is-failed]",
    "test_document_status_derives_from_stored_index_rows[creating-is-running]",
    "test_document_status_derives_from_stored_index_rows[deleting-is-running]",
    "test_document_status_derives_from_stored_index_rows[all-active-is-complete]",
    "test_document_status_derives_from_stored_index_rows[otherwise-pending]",
    "test_rolled_back_transaction_leaves_nothing_behind",
}
REDIS_CHECKS = {
    "test_manager_shares_one_pooled_client_with_aperag_limits",
    "test_manager_creates_no_connection_before_first_use",
    "test_client_authenticates_as_configured_user",
    "test_set_get_with_ttl_expires",
    "test_db0_and_db1_are_kept_apart",
    "test_pipeline_runs_commands_in_one_transaction",
    "test_pubsub_delivers_a_published_message",
    "test_async_client_is_shared_and_round_trips",
}
QDRANT_CHECKS = {
    f"{name}[client-api-in-process]"
    for name in (
        "test_create_cosine_collection",
        "test_upserted_points_keep_their_payload",
        "test_top1_search_returns_the_nearest_point",
        "test_payload_filter_restricts_search",
        "test_deleted_points_are_gone",
        "test_deleted_collection_is_gone",
    )
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
        if not key.startswith(CONTRACT_PREFIXES) and not key.startswith("PYTEST_")
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
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        server.create_acl_user(REDIS_USER, REDIS_PASSWORD)
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
        "QDRANT_URL": ":memory:",
        "SMOKE_REQUIRE": "postgresql,redis,qdrant",
    }


def smoke_schemas(postgres: LocalPostgres) -> list[str]:
    with postgres.admin(PG_DB) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'smoke\\_%'").fetchall()
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
    assert set(cases) == expected
    not_passed = {name: (case.outcome, case.message) for name, case in cases.items() if case.outcome != "passed"}
    assert not_passed == {}


def test_suite_passes_through_env_contract_and_lists_every_check(
    contract: dict[str, str], tmp_path: Path, postgres: LocalPostgres, redis_server: LocalRedis
) -> None:
    run = run_suite(contract, tmp_path / "junit.xml")

    assert run.returncode == 0, "suite failed; rerun it by hand with the same environment to see why"
    assert_all_passed(run, "test_postgresql", POSTGRESQL_CHECKS)
    assert_all_passed(run, "test_redis", REDIS_CHECKS)
    assert_all_passed(run, "test_qdrant", QDRANT_CHECKS)
    for classname in PIPELINE_ONLY:
        cases = run.by_module(classname)
        assert cases, f"{classname} missing from the JUnit report"
        assert {case.outcome for case in cases.values()} == {"skipped"}
        assert all("not configured" in case.message for case in cases.values())
    assert 'name="qdrant_mode" value="client-api-in-process"' in run.junit_text
    assert not run.leaks(PG_PASSWORD, REDIS_PASSWORD), "a password appears in the suite's output or JUnit file"
    # Every object the run created is gone.
    assert smoke_schemas(postgres) == []
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
    assert smoke_schemas(postgres) == []
    assert smoke_keys(redis_server) == []


def test_failing_required_databases_error_without_leaking_passwords(contract: dict[str, str], tmp_path: Path) -> None:
    wrong_pg_password = "wrong pg p@ss:/%#?&"
    broken = contract | {"POSTGRES_PASSWORD": wrong_pg_password, "REDIS_PORT": str(free_port())}

    # Long tracebacks with locals: the most a failure can print.
    run = run_suite(broken, tmp_path / "junit.xml", "--tb=long", "--showlocals", only=("postgresql", "redis"))

    assert run.returncode == pytest.ExitCode.TESTS_FAILED
    for classname, checks in (("test_postgresql", POSTGRESQL_CHECKS), ("test_redis", REDIS_CHECKS)):
        cases = run.by_module(classname)
        assert set(cases) == checks
        assert {case.outcome for case in cases.values()} == {"error"}
    assert "cannot use postgresql: sync connect: " in run.output
    assert "password authentication failed" in run.output
    assert "cannot use redis: sync PING: " in run.output
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
    assert all("ES_HOST_NAME is not set" in case.message for case in elasticsearch)
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
        ({"SMOKE_REQUIRE_IK": "maybe"}, "SMOKE_REQUIRE_IK='maybe' is not a boolean"),
    ],
    ids=["unknown-database", "bad-port", "bad-protocol", "bad-flag"],
)
def test_malformed_environment_is_a_usage_error_naming_the_variable(
    environment: dict[str, str], message: str, tmp_path: Path
) -> None:
    run = run_suite(environment, tmp_path / "junit.xml")

    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert message in run.output


def test_scrubber_masks_passwords_a_failing_check_prints_or_asserts_on(tmp_path: Path) -> None:
    # A deliberately careless check, run inside a copy of the suite: only conftest's scrubbing stands
    # between the password and the report.
    suite_copy = tmp_path / "smoke"
    shutil.copytree(SMOKE_DIR, suite_copy, ignore=shutil.ignore_patterns("test_*.py", "__pycache__"))
    (suite_copy / "test_careless.py").write_text(
        "import os\n"
        "import pytest\n\n"
        "pytestmark = pytest.mark.redis\n\n"
        "def test_prints_and_compares_the_password():\n"
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
        env=suite_environment({"REDIS_HOST": "127.0.0.1", "REDIS_PASSWORD": REDIS_PASSWORD}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    run = SuiteRun(result.returncode, result.stdout + result.stderr, junit.read_text(), [])

    assert run.returncode == pytest.ExitCode.TESTS_FAILED
    assert "connecting with ***" in run.output
    assert not run.leaks(REDIS_PASSWORD), "a password appears in the suite's output or JUnit file"
