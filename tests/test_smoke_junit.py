from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dbstack.run.results import CheckResult, Outcome
from dbstack.run.smoke_junit import (
    SmokeJunitError,
    attach_checks,
    database_of,
    parse_smoke_junit,
    parse_smoke_warnings,
    smoke_outcome,
)
from report_samples import successful_run

POSTGRESQL_TESTS = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("could not connect to pg-cluster-postgresql-postgresql:5432")

def test_vector_extension_is_installed():
    pass

def test_cosine_distance():
    assert 1 + 1 == 3, "distance was wrong"

@pytest.mark.skip(reason="pgvector too old")
def test_halfvec():
    pass

def test_needs_connection(broken):
    pass
"""
REDIS_TESTS = """
class TestPool:
    def test_shared_client(self):
        pass
"""


@pytest.fixture(scope="module", params=["xunit2", "xunit1"])
def pytest_junit(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JUnit file written by a real pytest run over a miniature smoke suite."""
    family: str = request.param
    root = tmp_path_factory.mktemp(f"smoke-{family}")
    suite = root / "smoke"
    suite.mkdir()
    (suite / "test_postgresql.py").write_text(POSTGRESQL_TESTS)
    (suite / "test_redis.py").write_text(REDIS_TESTS)
    (root / "pytest.ini").write_text("[pytest]\n")
    junit = root / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "smoke",
            f"--junitxml={junit}",
            "-o",
            f"junit_family={family}",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=root,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # installed plugins only slow this run down
        capture_output=True,
        check=False,
    )
    return junit


def _by_name(checks: list[CheckResult]) -> dict[str, CheckResult]:
    return {c.name: c for c in checks}


def test_every_test_case_becomes_a_check_of_its_database(pytest_junit: Path) -> None:
    checks = _by_name(parse_smoke_junit(pytest_junit))
    assert set(checks) == {
        "test_vector_extension_is_installed",
        "test_cosine_distance",
        "test_halfvec",
        "test_needs_connection",
        "TestPool::test_shared_client",
    }
    assert {c.database for c in checks.values()} == {"postgresql", "redis"}
    assert checks["TestPool::test_shared_client"].database == "redis"


def test_outcomes_and_messages_follow_the_junit_children(pytest_junit: Path) -> None:
    checks = _by_name(parse_smoke_junit(pytest_junit))
    assert checks["test_vector_extension_is_installed"].outcome is Outcome.PASSED
    failed = checks["test_cosine_distance"]
    assert failed.outcome is Outcome.FAILED
    assert failed.message is not None and "distance was wrong" in failed.message.splitlines()[0]
    skipped = checks["test_halfvec"]
    assert skipped.outcome is Outcome.SKIPPED
    assert skipped.message is not None and "pgvector too old" in skipped.message
    errored = checks["test_needs_connection"]
    assert errored.outcome is Outcome.FAILED
    assert errored.message is not None and errored.message.startswith("error: ")
    assert "could not connect" in errored.message
    assert all(c.duration_s >= 0 for c in checks.values())


@pytest.mark.parametrize(
    ("classname", "file", "expected"),
    [
        ("test_postgresql", "", "postgresql"),
        ("smoke.test_redis", "", "redis"),
        ("ci.smoke.test_elasticsearch.TestIndex", "", "elasticsearch"),
        ("", "ci/smoke/test_neo4j.py", "neo4j"),
        ("tests.test_suites.smoke.test_qdrant", "", "qdrant"),
        ("conftest", "", "unknown"),
        ("", "ci/smoke/test_.py", "unknown"),
    ],
)
def test_database_comes_from_the_test_module(classname: str, file: str, expected: str) -> None:
    assert database_of(classname, file) == expected


def test_checks_attach_to_their_databases_and_strangers_are_returned() -> None:
    results = successful_run()
    checks = [
        CheckResult("redis", "test_a", Outcome.PASSED),
        CheckResult("neo4j", "test_b", Outcome.PASSED),
        CheckResult("postgresql", "test_c", Outcome.FAILED, message="boom"),
    ]
    before = {d.key: [c.name for c in d.checks] for d in results.databases}
    leftover = attach_checks(results, checks)
    assert [c.name for c in leftover] == ["test_b"]
    by_key = {d.key: [c.name for c in d.checks] for d in results.databases}
    # Added after what a database already has (a backup stage's marker checks come first).
    assert by_key == {
        "postgresql": [*before["postgresql"], "test_c"],
        "redis": [*before["redis"], "test_a"],
        "qdrant": before["qdrant"],
        "elasticsearch": before["elasticsearch"],
    }


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([Outcome.PASSED, Outcome.SKIPPED], Outcome.PASSED),
        ([Outcome.PASSED, Outcome.FAILED], Outcome.FAILED),
        ([Outcome.SKIPPED], Outcome.SKIPPED),
        ([], Outcome.SKIPPED),
    ],
)
def test_smoke_outcome_sums_up_the_checks(outcomes: list[Outcome], expected: Outcome) -> None:
    assert smoke_outcome(CheckResult("redis", f"t{i}", o) for i, o in enumerate(outcomes)) is expected


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("<testsuite><testcase", "not well-formed XML"),
        ("<html><body/></html>", "root element is <html>"),
    ],
)
def test_a_broken_junit_file_raises_one_clear_error(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(content)
    with pytest.raises(SmokeJunitError, match=fragment):
        parse_smoke_junit(path)


def test_a_missing_junit_file_raises_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SmokeJunitError, match="cannot read smoke JUnit file"):
        parse_smoke_junit(tmp_path / "absent.xml")


def test_entities_from_outside_are_not_resolved(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("contents of a private file")
    path = tmp_path / "junit.xml"
    path.write_text(
        f'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file://{outside}">]>'
        '<testsuite><testcase classname="test_redis" name="t"><failure message="&x;"/></testcase></testsuite>'
    )
    try:
        checks = parse_smoke_junit(path)
    except SmokeJunitError:
        return
    assert all("private file" not in (c.message or "") for c in checks)


WARNING_TESTS = """
def test_skewed(record_testsuite_property):
    record_testsuite_property("qdrant_warning", "client 1.13.3 is 3 minor versions from server 1.10.0")
    record_testsuite_property("qdrant_server_version", "1.10.0")
    record_testsuite_property("mysql_warning", "not a database of dbstack")
"""


@pytest.mark.parametrize("family", ["xunit2", "xunit1"])
def test_warnings_the_suite_records_are_read_per_database(tmp_path: Path, family: str) -> None:
    (tmp_path / "test_qdrant.py").write_text(WARNING_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            "-o",
            f"junit_family={family}",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        check=True,
    )
    assert parse_smoke_warnings(junit) == {"qdrant": ["client 1.13.3 is 3 minor versions from server 1.10.0"]}


def test_durations_are_read_with_thousands_separators_and_nonsense_is_zero(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    cases = [("a", ' time="1,234.5"'), ("b", ' time="0.25"'), ("c", ' time="nan"'), ("d", ' time="-3"')]
    cases += [("e", ' time="soon"'), ("f", "")]
    path.write_text(
        "<testsuites><testsuite>"
        + "".join(f'<testcase classname="ci.smoke.test_redis" name="test_{n}"{t}/>' for n, t in cases)
        + "</testsuite></testsuites>"
    )
    durations = {c.name: c.duration_s for c in parse_smoke_junit(path)}
    assert durations == {
        "test_a": 1234.5,
        "test_b": 0.25,
        "test_c": 0.0,
        "test_d": 0.0,
        "test_e": 0.0,
        "test_f": 0.0,
    }


def test_a_case_that_failed_and_errored_says_both(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuite><testcase classname="ci.smoke.test_redis" name="test_ping">'
        '<failure message="assert False">trace</failure><error message="teardown broke">trace</error>'
        "</testcase></testsuite>"
    )
    (check,) = parse_smoke_junit(path)
    assert (check.outcome, check.message) == (Outcome.FAILED, "assert False\ntrace\nerror: teardown broke\ntrace")


def test_a_junit_file_too_large_to_be_the_suites_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    with path.open("wb") as out:
        out.truncate(20 * 1024 * 1024 + 1)
    with pytest.raises(SmokeJunitError) as refused:
        parse_smoke_junit(path)
    assert str(refused.value) == f"{path}: 20971521 bytes is more than a smoke JUnit file can be"
