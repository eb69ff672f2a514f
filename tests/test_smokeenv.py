"""How the pipeline hands the deployed databases to the smoke suite, and reads its outcome back into Results."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from dbstack.config.catalog import DATABASES
from dbstack.config.load import load_config
from dbstack.config.problems import InvalidInput
from dbstack.plan.build import build_plan
from dbstack.plan.model import Endpoint, Plan
from dbstack.run import smokeenv
from dbstack.run.orchestrator import new_results
from dbstack.run.results import Outcome, RunResults
from smokekit import markers
from smokekit.settings import MarkerPhase, load_settings

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
        "VECTOR_DB_CONTEXT": '{"url": "http://qdrant-cluster-qdrant-qdrant", "port": 6333, "distance": "Cosine", '
        '"timeout": 30}',
        "QDRANT_URL": "http://qdrant-cluster-qdrant-qdrant:6333",
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
    assert command[:6] == ["timeout", "-s", "INT", "-k", str(smokeenv.SMOKE_INTERRUPT_GRACE_S), "600"]
    assert "--junitxml=/reports/junit.xml" in command
    assert command[command.index("-o") + 1] == "junit_family=xunit2"


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2">
<properties><property name="redis_warning" value="maxmemory-policy is volatile-lru"/></properties>
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


def test_smoke_warnings_land_on_their_databases(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 0)
    assert {d.key: d.warnings for d in results.databases if d.warnings} == {
        "redis": ["maxmemory-policy is volatile-lru"]
    }


def test_the_suite_reads_each_contract_as_aperag_would_and_finds_nothing_to_object_to(plan: Plan) -> None:
    # What the smoke container gets for each deployed database, with a generated (letters and digits) password.
    environment = {smokeenv.SMOKE_REQUIRE: smokeenv.require_variable(plan.endpoints)}
    for e in plan.endpoints:
        environment |= smokeenv.plain_variables(e)
        contract = smokeenv.contract(e)
        if contract.username:
            environment[contract.username] = "aperag"
        if contract.password:
            environment[contract.password] = "Kf83hQ2zLm9XcV4t"
    settings = load_settings(environment)
    for e in plan.endpoints:
        configured = getattr(settings, e.database)
        assert configured is not None, e.database
        assert getattr(configured, "problems", ()) == (), e.database
    assert settings.qdrant is not None
    assert settings.qdrant.source == "VECTOR_DB_CONTEXT"
    assert settings.qdrant.context["url"] == "http://qdrant-cluster-qdrant-qdrant"
    assert settings.postgresql is not None
    assert settings.postgresql.database_url.reveal().startswith("postgresql://aperag:")


def test_a_failed_check_fails_the_suite(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 1, failure='<failure message="no vector extension"/>')
    assert results.smoke_outcome is Outcome.FAILED


def test_a_non_zero_exit_without_a_failed_check_still_fails_and_says_why(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 124)
    assert results.smoke_outcome is Outcome.FAILED
    assert results.smoke_cause == "pytest exited with 124 (the time limit); see smoke/pytest.log"


def test_a_non_zero_exit_other_than_the_time_limit_says_only_its_code(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 2)
    assert results.smoke_outcome is Outcome.FAILED
    assert results.smoke_cause == "pytest exited with 2; see smoke/pytest.log"


def test_a_missing_junit_file_fails_the_suite_with_the_exit_code(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 4, junit=False)
    assert results.smoke_outcome is Outcome.FAILED
    assert results.smoke_cause is not None and results.smoke_cause.startswith("pytest exited with 4")


FAKE_KUBECTL = """#!/bin/sh
# Answers like kubectl for one Secret: pg-cluster-postgresql-account-postgres (username postgres).
case "$*" in
  *"get secret pg-cluster-postgresql-account-postgres -o name") echo secret/pg-cluster-postgresql-account-postgres ;;
  *"get secret pg-cluster-postgresql-account-postgres -o jsonpath={.data.username}") printf cG9zdGdyZXM= ;;
  *"get secret pg-cluster-postgresql-account-postgres -o jsonpath={.data.password}") printf czNjcjN0LVB3 ;;
  *) echo 'Error from server (NotFound): secrets "x" not found' >&2; exit 1 ;;
esac
"""


def run_account_script(tmp_path: Path, e: Endpoint) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL, encoding="utf-8")
    kubectl.chmod(0o755)
    folder = tmp_path / "credentials"
    script = smokeenv.read_account_script(e, str(folder))
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, check=False, timeout=30)
    return done, folder


def test_account_credentials_are_decoded_into_files_and_never_printed(plan: Plan, tmp_path: Path) -> None:
    done, folder = run_account_script(tmp_path, endpoint(plan, "postgresql"))
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    assert (folder / "username").read_text(encoding="utf-8") == "postgres"
    assert (folder / "password").read_text(encoding="utf-8") == "s3cr3t-Pw"


def test_a_missing_secret_fails_before_anything_is_decoded(plan: Plan, tmp_path: Path) -> None:
    renamed = replace(endpoint(plan, "postgresql"), secret="other-account")
    done, folder = run_account_script(tmp_path, renamed)
    assert done.returncode != 0
    assert not folder.exists()


def test_a_database_without_a_secret_has_no_account_script(plan: Plan) -> None:
    with pytest.raises(ValueError, match="qdrant has no account Secret"):
        smokeenv.read_account_script(endpoint(plan, "qdrant"), "/tmp/credentials")


def test_a_missing_ik_plugin_fails_unless_the_pipeline_setting_allows_it(plan: Plan) -> None:
    default = smokeenv.suite_variables(plan.endpoints, load_config(VALUES))
    allowed = smokeenv.suite_variables(plan.endpoints, load_config(VALUES, None, ["smoke.requireIkPlugin=false"]))
    assert default == {"SMOKE_REQUIRE": ",".join(e.database for e in plan.endpoints), "SMOKE_REQUIRE_IK": "1"}
    assert allowed["SMOKE_REQUIRE_IK"] == "0"


def test_require_ik_plugin_must_be_a_boolean() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_config(VALUES, None, ["smoke.requireIkPlugin=sometimes"])
    assert [p.key for p in caught.value.problems] == ["smoke.requireIkPlugin"]


# --- marker phases ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["20260301T101010Z-a1b2c3", "0f" * 16, "x", "RUN_ID-With.Upper"])
def test_a_marker_id_from_any_run_id_is_one_the_suite_accepts(token: str) -> None:
    marker = smokeenv.marker_id(token)
    assert markers.marker_id_problem(marker) is None
    assert load_settings(smokeenv.marker_variables("verify", marker)).markers == MarkerPhase("verify", marker)


def test_the_pipeline_knows_the_suite_s_marker_phases_and_id_rule() -> None:
    assert smokeenv.MARKER_PHASES == markers.PHASES
    assert smokeenv.MARKER_ID.pattern == markers.MARKER_ID.pattern


@pytest.mark.parametrize(
    ("phase", "marker", "message"),
    [("backup", "m1", "'backup' is not a marker phase"), ("write", "M-1", "marker id 'M-1' must be 1-20 lowercase")],
)
def test_a_marker_phase_the_suite_would_refuse_is_refused_first(phase: str, marker: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        smokeenv.marker_variables(phase, marker)


def test_a_marker_phase_runs_only_its_databases_marker_checks_under_the_time_limit(plan: Plan) -> None:
    command = smokeenv.marker_command("/reports/markers.xml", 300, ["postgresql", "redis"])
    assert command[: len(smokeenv.smoke_command("/reports/markers.xml", 300))] == smokeenv.smoke_command(
        "/reports/markers.xml", 300
    )
    assert command[-2:] == ["-m", "postgresql or redis"]
    environment = smokeenv.marker_environment(plan.endpoints[:2], load_config(VALUES), "write", "m1")
    assert environment == {
        "SMOKE_REQUIRE": "postgresql,redis",
        "SMOKE_REQUIRE_IK": "1",
        "SMOKE_MARKERS": "write",
        "SMOKE_MARKER_ID": "m1",
    }


MARKER_JUNIT = """<testsuites><testsuite>
<testcase classname="test_postgresql" name="test_markers[verify]" time="0.4"/>
<testcase classname="test_redis" name="test_markers[verify]" time="0.2"><failure message="redis markers m1 do not
read back as written: DB 1 key dbstack-marker:m1:hash is missing"/></testcase>
</testsuite></testsuites>"""


def test_marker_checks_are_added_to_their_databases_beside_the_smoke_checks(plan: Plan, tmp_path: Path) -> None:
    results = recorded(plan, tmp_path, 0)
    path = tmp_path / "markers.xml"
    path.write_text(MARKER_JUNIT, encoding="utf-8")

    found = smokeenv.record_markers(results, "verify", ["postgresql", "redis"], 1, path, context="restored pg-r")

    assert {key: check.outcome for key, check in found.items()} == {
        "postgresql": Outcome.PASSED,
        "redis": Outcome.FAILED,
    }
    by_key = {d.key: [c.name for c in d.checks] for d in results.databases}
    assert by_key["postgresql"] == ["test_vector", "test_markers[verify] (restored pg-r)"]
    assert by_key["redis"] == ["test_ping", "test_markers[verify] (restored pg-r)"]
    assert str(found["redis"].message).startswith("redis markers m1 do not read back as written")
    assert not results.passed


@pytest.mark.parametrize(
    ("exit_code", "junit", "cause"),
    [
        (124, MARKER_JUNIT, "pytest exited with 124 before the check ran (the time limit)"),
        (2, None, "pytest exited with 2 and left no usable JUnit file: cannot read smoke JUnit file"),
    ],
)
def test_a_database_whose_marker_check_never_ran_fails_saying_why(
    plan: Plan, tmp_path: Path, exit_code: int, junit: str | None, cause: str
) -> None:
    results = new_results(plan, "k3s", time.time())
    path = tmp_path / "markers.xml"
    if junit is not None:
        path.write_text(junit, encoding="utf-8")

    found = smokeenv.record_markers(results, "write", ["qdrant"], exit_code, path)

    assert found["qdrant"].outcome is Outcome.FAILED
    assert str(found["qdrant"].message).startswith(cause)
    assert [c.name for d in results.databases if d.key == "qdrant" for c in d.checks] == ["test_markers[write]"]
