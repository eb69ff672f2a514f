from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dbstack.report import write_reports
from dbstack.report.summary_json import SUMMARY_SCHEMA_VERSION, render_summary
from dbstack.run.results import Outcome, RunResults
from report_samples import (
    ABNORMAL_CAUSE,
    ALL_SAMPLES,
    ES_ADDON_CAUSE,
    PENDING_CAUSE,
    SAMPLE_HEADLINES,
    counted_run,
    failed_run,
    successful_run,
)

DOCS = Path(__file__).resolve().parents[1] / "README.md"


def _summary(results: RunResults, tmp_path: Path) -> dict[str, Any]:
    write_reports(results, tmp_path)
    data: dict[str, Any] = json.loads((tmp_path / "summary.json").read_text())
    return data


def _key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of every object key, with list items as `[]` and the free-form version maps as one key each."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            if key not in ("versions", "installedVersions"):
                yield from _key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from _key_paths(item, f"{prefix}[]")


@pytest.mark.parametrize("name", list(SAMPLE_HEADLINES))
def test_summary_is_versioned_and_says_the_verdict(name: str, tmp_path: Path) -> None:
    summary = _summary(ALL_SAMPLES[name](), tmp_path)
    headline = SAMPLE_HEADLINES[name]
    assert summary["schemaVersion"] == 1 == SUMMARY_SCHEMA_VERSION
    assert summary["passed"] is headline.startswith("✅")
    assert summary["headline"] == headline
    assert summary["verdict"] == headline.split(" dbstack: ", 1)[1]
    assert (tmp_path / "summary.md").read_text().splitlines()[0] == f"## {headline}"


def test_run_metadata_names_versions_profile_and_cluster_kind(tmp_path: Path) -> None:
    results = successful_run()
    run = _summary(results, tmp_path)["run"]
    assert run["clusterKind"] == results.cluster_kind
    assert run["profile"] == results.profile
    assert run["versions"] == results.versions
    assert run["startedAt"].endswith("Z")
    assert results.ended_at is not None
    assert run["durationSeconds"] == pytest.approx(results.ended_at - results.started_at)


def test_every_step_has_its_timing_and_outcome(tmp_path: Path) -> None:
    results = failed_run()
    steps = _summary(results, tmp_path)["steps"]
    assert [s["id"] for s in steps] == [s.id for s in results.steps]
    for written, step in zip(steps, results.steps, strict=True):
        assert written["outcome"] == step.outcome.value
        assert step.duration_s is not None and step.started_at is not None
        assert written["durationSeconds"] == pytest.approx(step.duration_s)
        assert written["startSeconds"] == pytest.approx(step.started_at - results.started_at)


def test_database_status_has_what_an_application_needs_and_no_secret_value(tmp_path: Path) -> None:
    results = failed_run()
    summary = _summary(results, tmp_path)
    for written, database in zip(summary["databases"], results.databases, strict=True):
        assert written["version"] == database.version
        assert written["mode"] == database.mode
        assert written["replicas"] == database.replicas
        assert written["readyAfterSeconds"] == database.ready_after_s
        assert written["service"] == database.service
        assert written["port"] == database.port
        assert written["secretName"] == database.secret
        assert written["ready"] is (database.outcome is Outcome.PASSED)
        assert not any("password" in key.lower() for key in written)
    assert [{k: v for k, v in d["checks"].items() if k != "failures"} for d in summary["databases"]] == [
        {"total": 0, "passed": 0, "failed": 0, "skipped": 0},
        {"total": 0, "passed": 0, "failed": 0, "skipped": 0},
        {"total": 2, "passed": 1, "failed": 1, "skipped": 0},
        {"total": 2, "passed": 2, "failed": 0, "skipped": 0},
    ]
    postgresql = summary["databases"][0]
    assert postgresql["cause"] == PENDING_CAUSE
    qdrant = summary["databases"][2]
    assert qdrant["checks"]["failures"] == [
        {
            "name": "test_top1_search_returns_the_nearest_point",
            "outcome": "failed",
            "message": "AssertionError: nearest point was 7, expected 3",
        }
    ]


def test_smoke_warnings_are_listed_per_database(tmp_path: Path) -> None:
    results = successful_run()
    results.databases[1].warnings = ["maxmemory-policy is volatile-lru"]
    databases = _summary(results, tmp_path)["databases"]
    assert [d["warnings"] for d in databases] == [[], ["maxmemory-policy is volatile-lru"], [], []]


def test_totals_count_each_outcome(tmp_path: Path) -> None:
    assert _summary(counted_run(), tmp_path)["totals"] == {
        "steps": {"passed": 5, "failed": 2, "timed_out": 1, "skipped": 3, "not_run": 1, "cancelled": 0},
        "databases": {"total": 4, "ready": 1, "notReady": 3},
        "checks": {"total": 6, "passed": 3, "failed": 2, "skipped": 1},
    }


def test_totals_of_the_failed_sample(tmp_path: Path) -> None:
    assert _summary(failed_run(), tmp_path)["totals"] == {
        "steps": {"passed": 8, "failed": 1, "timed_out": 1, "skipped": 2, "not_run": 0, "cancelled": 0},
        "databases": {"total": 4, "ready": 2, "notReady": 2},
        "checks": {"total": 4, "passed": 3, "failed": 1, "skipped": 0},
    }


def test_each_database_says_why_whether_its_step_failed_or_timed_out(tmp_path: Path) -> None:
    databases = _summary(counted_run(), tmp_path)["databases"]
    assert [(d["key"], d["outcome"], d["ready"], d["cause"]) for d in databases] == [
        ("postgresql", "timed_out", False, PENDING_CAUSE),
        ("redis", "failed", False, ABNORMAL_CAUSE),
        ("qdrant", "passed", True, None),
        ("elasticsearch", "failed", False, ES_ADDON_CAUSE),
    ]


def test_failed_checks_are_counted_and_listed_on_their_database(tmp_path: Path) -> None:
    qdrant = _summary(counted_run(), tmp_path)["databases"][2]
    assert qdrant["checks"] == {
        "total": 6,
        "passed": 3,
        "failed": 2,
        "skipped": 1,
        "failures": [
            {
                "name": "test_top1_search_returns_the_nearest_point",
                "outcome": "failed",
                "message": "AssertionError: nearest point was 7, expected 3",
            },
            {
                "name": "test_payload_filter",
                "outcome": "failed",
                "message": "AssertionError: filter matched 0 points, expected 2",
            },
        ],
    }


def test_the_smoke_suite_is_summed_up_with_its_cause_and_time(tmp_path: Path) -> None:
    assert _summary(counted_run(), tmp_path)["smoke"] == {
        "outcome": "failed",
        "cause": "2 checks failed",
        "startSeconds": 643.5,
        "durationSeconds": 20.0,
    }


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_every_summary_field_is_documented(sample: Callable[[], RunResults]) -> None:
    documented = set(re.findall(r"^\| `([^`]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    missing = sorted(set(_key_paths(render_summary(sample()))) - documented)
    assert not missing, f"README.md does not describe: {missing}"
