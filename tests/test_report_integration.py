"""The reports of real runs: the orchestrator on the simulated cluster, its folder rendered by write_reports."""

from __future__ import annotations

import json
from pathlib import Path

from dbstack.config.validate import validate
from dbstack.plan.build import build_plan
from dbstack.report import write_reports
from dbstack.run.results import Outcome, RunResults
from dbstack.sim.cluster import SIM_CREDENTIAL, Failure, Scenario, SimCluster, run_simulated
from report_samples import parse_gantt, written_files

REPORT_FILES = {"junit.xml", "summary.json", "summary.md", "results.json"}


def _simulated_run(values_dir: Path, out: Path, scenario: Scenario) -> RunResults:
    plan = build_plan(validate(values_dir, None, ()).config)
    return run_simulated(plan, SimCluster(scenario), out)


def test_successful_simulated_run_leaves_a_complete_passing_folder(values_dir: Path, tmp_path: Path) -> None:
    results = _simulated_run(values_dir, tmp_path, Scenario())
    results.smoke_outcome = Outcome.SKIPPED
    write_reports(results, tmp_path)
    assert set(written_files(tmp_path)) >= REPORT_FILES
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["passed"] is True
    markdown = (tmp_path / "summary.md").read_text()
    assert markdown.startswith("## ✅ dbstack: all ")
    assert len(parse_gantt(markdown)) == len(results.steps)


def test_failed_simulated_run_names_the_cause_and_links_diagnostics_that_exist(
    values_dir: Path, tmp_path: Path
) -> None:
    scenario = Scenario(failures={"postgresql": Failure.PENDING_CPU, "redis": Failure.ABNORMAL})
    results = _simulated_run(values_dir, tmp_path, scenario)
    write_reports(results, tmp_path, secrets=[SIM_CREDENTIAL])
    files = written_files(tmp_path)
    assert set(files) >= REPORT_FILES
    assert any(name.startswith("diagnostics/postgresql/") for name in files)
    markdown = (tmp_path / "summary.md").read_text()
    assert markdown.startswith("## ❌ dbstack: ")
    failures = markdown.split("### Why it failed", 1)[1].split("### Databases", 1)[0]
    assert "Insufficient cpu" in failures
    assert "Abnormal" in failures
    assert "**FailedScheduling**: 0/1 nodes are available: 1 Insufficient cpu" in failures
    assert "**Unhealthy**: Readiness probe failed: dial tcp 10.42.0.17:6379: connect: connection refused" in failures
    for step in results.steps:
        for path in step.diagnostics:
            assert (tmp_path / path).is_file(), f"{step.id} lists {path}, which is not in the folder"
            assert f"({path})" in failures
    parse_gantt(markdown)
    for name, content in files.items():
        assert SIM_CREDENTIAL.encode() not in content, f"{name} leaks the simulated password"
