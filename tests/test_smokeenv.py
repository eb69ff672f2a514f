"""How the pipeline hands the deployed databases to the smoke suite, and reads its outcome back into Results."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from dbstack import smokeenv
from dbstack.catalog import DATABASES
from dbstack.config import load_config
from dbstack.orchestrator import new_results
from dbstack.plan import Endpoint, Plan, build_plan
from dbstack.results import Outcome, RunResults

VALUES = Path(__file__).resolve().parents[1] / "values"
ALL_ENABLED = [f"databases.{key}.enabled=true" for key in DATABASES]


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(VALUES, None, ALL_ENABLED))


def endpoint(plan: Plan, key: str) -> Endpoint:
    return next(e for e in plan.endpoints if e.database == key)


def test_every_catalog_database_has_a_smoke_contract() -> None:
    assert set(smokeenv.CONTRACTS) == set(DATABASES)


def test_databases_are_reached_by_their_service_name_as_apes_pods_do(plan: Plan) -> None:
    assert smokeenv.plain_variables(endpoint(plan, "postgresql")) == {
        "POSTGRES_HOST": "pg-cluster-postgresql-postgresql",
        "POSTGRES_PORT": "5432",
        "POSTGRES_DB": "postgres",
    }
    assert smokeenv.plain_variables(endpoint(plan, "qdrant")) == {
        "QDRANT_URL": "http://qdrant-cluster-qdrant-qdrant:6333"
    }
    assert smokeenv.plain_variables(endpoint(plan, "elasticsearch"))["ES_HOST_NAME"] == "es-cluster-mdit-http"
    assert smokeenv.plain_variables(endpoint(plan, "neo4j")) == {"NEO4J_URI": "bolt://neo4j-cluster-neo4j:7687"}


def test_a_renamed_release_changes_the_host_the_suite_uses(plan: Plan) -> None:
    renamed = replace(endpoint(plan, "redis"), service="cache-redis-redis", port=6380)
    assert smokeenv.plain_variables(renamed) == {"REDIS_HOST": "cache-redis-redis", "REDIS_PORT": "6380"}


def test_passwords_are_never_plain_variables(plan: Plan) -> None:
    for e in plan.endpoints:
        contract = smokeenv.contract(e)
        assert not any("PASSWORD" in name for name in smokeenv.plain_variables(e))
        assert (contract.password is None) == (e.secret is None), e.database


def test_every_deployed_database_is_required(plan: Plan) -> None:
    assert smokeenv.require_variable(plan.endpoints[:2]) == "postgresql,redis"


def test_only_databases_that_reached_running_are_smoke_tested(plan: Plan) -> None:
    results = new_results(plan, "k3s", time.time())
    for database in results.databases:
        database.outcome = Outcome.FAILED if database.key == "redis" else Outcome.PASSED
    assert [e.database for e in smokeenv.deployed_endpoints(plan.endpoints, results)] == [
        e.database for e in plan.endpoints if e.database != "redis"
    ]


def test_the_suite_runs_under_a_time_limit_writing_junit() -> None:
    command = smokeenv.smoke_command("/reports/junit.xml", 600)
    assert command[:2] == ["timeout", "600"]
    assert "--junitxml=/reports/junit.xml" in command
    assert command[command.index("-o") + 1] == "junit_family=xunit2"


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2">
<testcase classname="ci.smoke.test_postgresql" name="test_vector" time="0.5">{failure}</testcase>
<testcase classname="ci.smoke.test_redis" name="test_ping" time="0.1"/>
</testsuite></testsuites>
"""


def recorded(plan: Plan, tmp_path: Path, exit_code: int, failure: str = "", junit: bool = True) -> RunResults:
    results = new_results(plan, "k3s", time.time())
    path = tmp_path / "junit.xml"
    if junit:
        path.write_text(JUNIT.format(failure=failure), encoding="utf-8")
    smokeenv.record_smoke(results, exit_code, path)
    return results


def test_passing_checks_land_on_their_databases(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 0)
    assert results.smoke_outcome is Outcome.PASSED
    by_key = {d.key: [c.name for c in d.checks] for d in results.databases}
    assert (by_key["postgresql"], by_key["redis"]) == (["test_vector"], ["test_ping"])


def test_a_failed_check_fails_the_suite(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 1, failure='<failure message="no vector extension"/>')
    assert results.smoke_outcome is Outcome.FAILED


def test_a_non_zero_exit_without_a_failed_check_still_fails_and_says_why(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 124)
    assert results.smoke_outcome is Outcome.FAILED
    assert results.smoke_cause == "pytest exited with 124 (the time limit); see smoke/pytest.log"


def test_a_missing_junit_file_fails_the_suite_with_the_exit_code(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 4, junit=False)
    assert results.smoke_outcome is Outcome.FAILED
    assert results.smoke_cause is not None and results.smoke_cause.startswith("pytest exited with 4")
