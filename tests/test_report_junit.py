from __future__ import annotations

import json
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from dbstack.report import write_reports
from dbstack.report.junit import PIPELINE_SUITE, render_junit
from dbstack.run.results import Outcome, RunResults
from hypothesis import given, settings
from hypothesis import strategies as st
from report_samples import (
    ALL_SAMPLES,
    PENDING_CAUSE,
    cancelled_run,
    counted_run,
    empty_run,
    failed_run,
    parse_gantt,
    successful_run,
)


def _parse(results: RunResults) -> ET.Element:
    return ET.fromstring(render_junit(results).encode())  # noqa: S314 (our own output)


def _cases(root: ET.Element, suite: str) -> dict[str, ET.Element]:
    found = root.find(f"testsuite[@name='{suite}']")
    assert found is not None, f"no testsuite {suite!r}"
    return {case.get("name", ""): case for case in found.iter("testcase")}


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_junit_has_the_shape_github_reporters_read(sample: Callable[[], RunResults]) -> None:
    root = _parse(sample())
    assert root.tag == "testsuites"
    for suite in root.iter("testsuite"):
        cases = list(suite.iter("testcase"))
        assert suite.get("name")
        assert int(suite.get("tests", "-1")) == len(cases)
        assert int(suite.get("failures", "-1")) == sum(1 for c in cases if c.find("failure") is not None)
        assert int(suite.get("errors", "-1")) == sum(1 for c in cases if c.find("error") is not None)
        assert int(suite.get("skipped", "-1")) == sum(1 for c in cases if c.find("skipped") is not None)
        assert float(suite.get("time", "-1")) >= 0
        for case in cases:
            assert case.get("name") and case.get("classname")
            assert float(case.get("time", "-1")) >= 0
            for child in case:
                assert child.tag in ("failure", "error", "skipped")
                assert child.get("message"), f"{case.get('name')}: <{child.tag}> without a message"
    total = sum(int(s.get("tests", "0")) for s in root.iter("testsuite"))
    assert int(root.get("tests", "-1")) == total


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_every_step_and_every_check_is_a_test_case(sample: Callable[[], RunResults]) -> None:
    results = sample()
    root = _parse(results)
    steps = _cases(root, PIPELINE_SUITE)
    assert {s.title for s in results.steps} <= set(steps)
    for database in results.databases:
        if database.checks:
            assert set(_cases(root, f"smoke {database.key}")) == {c.name for c in database.checks}


def test_failed_step_carries_the_first_line_of_its_cause_and_the_whole_cause() -> None:
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.TIMED_OUT)
    failure = _cases(_parse(results), PIPELINE_SUITE)[step.title].find("failure")
    assert failure is not None
    assert failure.get("message") == PENDING_CAUSE
    assert failure.get("type") == "timed_out"
    assert step.cause is not None and step.cause in (failure.text or "")
    for path in step.diagnostics:
        assert path in (failure.text or "")


def test_failed_smoke_check_is_a_failure_with_its_message() -> None:
    results = failed_run()
    failed = next(c for d in results.databases for c in d.checks if c.outcome is Outcome.FAILED)
    failure = _cases(_parse(results), f"smoke {failed.database}")[failed.name].find("failure")
    assert failure is not None and failure.get("message") == failed.message


def test_skipped_step_says_already_installed() -> None:
    results = successful_run()
    skipped = [s for s in results.steps if s.outcome is Outcome.SKIPPED]
    assert skipped
    cases = _cases(_parse(results), PIPELINE_SUITE)
    for step in skipped:
        element = cases[step.title].find("skipped")
        assert element is not None and element.get("message") == "already installed"


def test_steps_not_run_are_skipped_with_the_reason_and_cancelled_is_an_error() -> None:
    results = cancelled_run()
    cases = _cases(_parse(results), PIPELINE_SUITE)
    for step in results.steps:
        case = cases[step.title]
        if step.outcome is Outcome.NOT_RUN:
            element = case.find("skipped")
            assert element is not None and element.get("message") == step.cause
        if step.outcome is Outcome.CANCELLED:
            error = case.find("error")
            assert error is not None and error.get("message") == step.cause


def test_zero_databases_gives_only_the_pipeline_suite() -> None:
    root = _parse(empty_run())
    assert [s.get("name") for s in root.iter("testsuite")] == [PIPELINE_SUITE]


def test_control_characters_in_a_cause_still_give_well_formed_xml(tmp_path: Path) -> None:
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.TIMED_OUT)
    step.cause = "\x1b[31mred\x1b[0m and a bell \x07 and a NUL \x00 end"
    write_reports(results, tmp_path)
    root = ET.parse(tmp_path / "junit.xml").getroot()  # noqa: S314 (our own output)
    messages = [f.get("message", "") for f in root.iter("failure")]
    assert "red and a bell  and a NUL  end" in messages


@settings(max_examples=60, deadline=None)
@given(title=st.text(max_size=40), cause=st.text(max_size=80), check=st.text(max_size=30))
def test_any_text_from_the_cluster_still_gives_well_formed_reports(title: str, cause: str, check: str) -> None:
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.TIMED_OUT)
    step.title, step.cause = title, cause
    failed_check = results.databases[2].checks[1]
    failed_check.name, failed_check.message = check, cause
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        write_reports(results, out)
        root = ET.parse(out / "junit.xml").getroot()  # noqa: S314 (our own output)
        json.loads((out / "summary.json").read_text(encoding="utf-8"))
        parse_gantt((out / "summary.md").read_text(encoding="utf-8"))
    checks = sum(len(d.checks) for d in results.databases)
    assert sum(1 for _ in root.iter("testcase")) == len(results.steps) + 1 + checks


def test_suite_time_is_wall_time_not_the_sum_of_parallel_steps() -> None:
    results = successful_run()
    databases = [d.key for d in results.databases]
    common = min(s.started_at or 0.0 for s in results.steps if s.database is not None)
    for key in databases:  # each database's addon and cluster side by side with the others', as they run
        own = [s for s in results.steps if s.database == key]
        shift = min(s.started_at or 0.0 for s in own) - common
        for step in own:
            step.started_at, step.ended_at = (step.started_at or 0.0) - shift, (step.ended_at or 0.0) - shift
    last_step = max(s.ended_at or 0.0 for s in results.steps)
    results.smoke_started_at, results.smoke_ended_at = last_step, last_step + 20.0
    results.ended_at = results.smoke_ended_at
    root = _parse(results)
    suite = root.find(f"testsuite[@name='{PIPELINE_SUITE}']")
    assert suite is not None
    wall = results.smoke_ended_at - min(s.started_at or 0.0 for s in results.steps)
    added_up = sum(s.duration_s or 0.0 for s in results.steps) + 20.0
    assert float(suite.get("time", "")) == pytest.approx(wall, abs=0.001)
    assert wall < added_up - 100
    assert float(root.get("time", "")) == pytest.approx(results.ended_at - results.started_at, abs=0.001)


def _outline(suite: ET.Element) -> list[tuple[str, str, str | None, str | None, str | None]]:
    """Each case as (classname, name, child tag, child message, child type); no child: a passing case."""
    rows = []
    for case in suite.iter("testcase"):
        children = list(case)
        assert len(children) <= 1, case.get("name")
        child = children[0] if children else None
        rows.append(
            (
                case.get("classname", ""),
                case.get("name", ""),
                None if child is None else child.tag,
                None if child is None else child.get("message"),
                None if child is None else child.get("type"),
            )
        )
    return rows


def _counters(element: ET.Element) -> tuple[str | None, ...]:
    return tuple(element.get(counter) for counter in ("tests", "failures", "errors", "skipped"))


def test_a_failed_smoke_suite_is_a_failure_in_both_suites() -> None:
    root = _parse(counted_run())
    pipeline = root.find(f"testsuite[@name='{PIPELINE_SUITE}']")
    assert pipeline is not None
    assert _outline(pipeline)[-1] == ("pipeline.smoke", "Run the smoke tests", "failure", "2 checks failed", "failed")
    smoke = root.find("testsuite[@name='smoke qdrant']")
    assert smoke is not None
    assert _counters(smoke) == ("6", "2", "0", "1")
    assert _outline(smoke) == [
        ("smoke.qdrant", "test_create_cosine_collection", None, None, None),
        ("smoke.qdrant", "test_upsert_points", None, None, None),
        (
            "smoke.qdrant",
            "test_top1_search_returns_the_nearest_point",
            "failure",
            "AssertionError: nearest point was 7, expected 3",
            "failed",
        ),
        (
            "smoke.qdrant",
            "test_payload_filter",
            "failure",
            "AssertionError: filter matched 0 points, expected 2",
            "failed",
        ),
        ("smoke.qdrant", "test_grpc_port", "skipped", "gRPC not exposed", None),
        ("smoke.qdrant", "test_delete_collection", None, None, None),
    ]
    payload = smoke.find("testcase[@name='test_payload_filter']/failure")
    assert payload is not None and payload.text == "AssertionError: filter matched 0 points, expected 2\nassert 0 == 2"


def test_every_step_outcome_is_its_own_kind_of_case_and_counted() -> None:
    root = _parse(counted_run())
    assert _counters(root) == ("19", "6", "0", "5")
    pipeline = root.find(f"testsuite[@name='{PIPELINE_SUITE}']")
    assert pipeline is not None
    assert _counters(pipeline) == ("13", "4", "0", "4")
    assert pipeline.get("time") == "663.500"
    skipped = ("skipped", "already installed", None)
    assert _outline(pipeline) == [
        ("pipeline.snapshot-crds", "Install VolumeSnapshot CRDs (v8.2.0)", *skipped),
        ("pipeline.snapshot-controller", "Install the snapshot controller (v8.2.0)", *skipped),
        ("pipeline.kubeblocks-crds", "Install KubeBlocks CRDs (v1.0.1)", *skipped),
        ("pipeline.kubeblocks", "Install KubeBlocks 1.0.1", None, None, None),
        ("pipeline.addon.postgresql", "Install addon postgresql 1.0.1", None, None, None),
        (
            "pipeline.cluster.postgresql",
            "Deploy PostgreSQL (pg-cluster) and wait until Running",
            "failure",
            "pg-cluster-postgresql-1 Pending: 0/1 nodes are available: 1 Insufficient cpu",
            "timed_out",
        ),
        ("pipeline.addon.redis", "Install addon redis 1.0.1", None, None, None),
        (
            "pipeline.cluster.redis",
            "Deploy Redis (redis-cluster) and wait until Running",
            "failure",
            "Cluster redis-cluster is Abnormal: redis-cluster-redis-0 CrashLoopBackOff",
            "failed",
        ),
        ("pipeline.addon.qdrant", "Install addon qdrant 1.0.1", None, None, None),
        ("pipeline.cluster.qdrant", "Deploy Qdrant (qdrant-cluster) and wait until Running", None, None, None),
        (
            "pipeline.addon.elasticsearch",
            "Install addon elasticsearch 1.0.1",
            "failure",
            "Error: INSTALLATION FAILED: chart kb-addon-elasticsearch 1.0.1 not found in the repository",
            "failed",
        ),
        (
            "pipeline.cluster.elasticsearch",
            "Deploy Elasticsearch (es-cluster) and wait until Running",
            "skipped",
            "not run: addon:elasticsearch did not succeed",
            None,
        ),
        ("pipeline.smoke", "Run the smoke tests", "failure", "2 checks failed", "failed"),
    ]


SUITE_COUNTERS = {
    "success": {
        "dbstack": ("23", "0", "0", "3"),
        PIPELINE_SUITE: ("13", "0", "0", "2"),
        "smoke postgresql": ("3", "0", "0", "0"),
        "smoke redis": ("2", "0", "0", "0"),
        "smoke qdrant": ("3", "0", "0", "1"),
        "smoke elasticsearch": ("2", "0", "0", "0"),
    },
    "failure": {
        "dbstack": ("17", "4", "0", "2"),
        PIPELINE_SUITE: ("13", "3", "0", "2"),
        "smoke qdrant": ("2", "1", "0", "0"),
        "smoke elasticsearch": ("2", "0", "0", "0"),
    },
    "cancelled": {"dbstack": ("13", "0", "1", "11"), PIPELINE_SUITE: ("13", "0", "1", "11")},
    "no-databases": {"dbstack": ("5", "0", "0", "1"), PIPELINE_SUITE: ("5", "0", "0", "1")},
    "upgrade": {
        "dbstack": ("34", "2", "0", "3"),
        PIPELINE_SUITE: ("23", "1", "0", "3"),
        "smoke postgresql": ("3", "0", "0", "0"),
        "smoke qdrant": ("2", "0", "0", "0"),
        "smoke elasticsearch": ("2", "0", "0", "0"),
        "dbstack upgrade": ("4", "1", "0", "0"),
    },
}


@pytest.mark.parametrize("name", list(SUITE_COUNTERS))
def test_each_sample_has_the_counted_suites(name: str) -> None:
    root = _parse(ALL_SAMPLES[name]())
    found = {"dbstack": _counters(root), **{s.get("name", ""): _counters(s) for s in root.iter("testsuite")}}
    assert found == SUITE_COUNTERS[name]
