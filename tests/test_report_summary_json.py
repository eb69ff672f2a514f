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
from report_samples import ALL_SAMPLES, PENDING_CAUSE, failed_run, successful_run

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


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_summary_is_versioned_and_agrees_with_the_verdict(sample: Callable[[], RunResults], tmp_path: Path) -> None:
    results = sample()
    summary = _summary(results, tmp_path)
    assert summary["schemaVersion"] == SUMMARY_SCHEMA_VERSION
    assert summary["passed"] is results.passed
    first_line = (tmp_path / "summary.md").read_text().splitlines()[0]
    assert first_line == f"## {summary['headline']}"
    assert summary["verdict"] in summary["headline"]


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
        checks = written["checks"]
        assert checks["passed"] + checks["failed"] + checks["skipped"] == len(database.checks)
        assert not any("password" in key.lower() for key in written)
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


def test_totals_add_up(tmp_path: Path) -> None:
    results = failed_run()
    totals = _summary(results, tmp_path)["totals"]
    assert sum(totals["steps"].values()) == len(results.steps)
    assert totals["databases"]["ready"] + totals["databases"]["notReady"] == len(results.databases)
    assert totals["checks"]["total"] == sum(len(d.checks) for d in results.databases)


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_every_summary_field_is_documented(sample: Callable[[], RunResults]) -> None:
    documented = set(re.findall(r"^\| `([^`]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    missing = sorted(set(_key_paths(render_summary(sample()))) - documented)
    assert not missing, f"README.md does not describe: {missing}"
