from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from dbstack.plan.build import HELM_LOCKED
from dbstack.report import write_reports
from dbstack.report.markdown import render_markdown
from dbstack.run.results import Outcome, RunResults
from report_samples import (
    ABNORMAL_CAUSE,
    ALL_SAMPLES,
    PENDING_CAUSE,
    GanttTask,
    cancelled_run,
    empty_run,
    failed_run,
    parse_gantt,
    successful_run,
)


def test_first_line_says_all_databases_ready_with_the_number_of_checks() -> None:
    results = successful_run()
    passed = sum(1 for d in results.databases for c in d.checks if c.outcome is Outcome.PASSED)
    skipped = sum(1 for d in results.databases for c in d.checks if c.outcome is Outcome.SKIPPED)
    first = render_markdown(results).splitlines()[0]
    ready = f"all {len(results.databases)} databases ready"
    assert first == f"## ✅ dbstack: {ready}, {passed} checks passed, {skipped} skipped"


def test_first_line_names_the_failed_databases_and_failed_checks() -> None:
    results = failed_run()
    first = render_markdown(results).splitlines()[0]
    checks = sum(len(d.checks) for d in results.databases)
    assert first.startswith("## ❌ dbstack: ")
    assert f"2 of {len(results.databases)} databases failed (postgresql, redis)" in first
    assert f"1 of {checks} checks failed (qdrant)" in first


def test_first_line_of_a_cancelled_run_says_cancelled_and_nothing_deployed() -> None:
    first = render_markdown(cancelled_run()).splitlines()[0]
    assert first.startswith("## ⏹️ dbstack: run cancelled")
    assert "4 of 4 databases not deployed" in first


def test_first_line_of_a_run_without_databases_says_so() -> None:
    results = empty_run()
    assert results.passed
    assert render_markdown(results).splitlines()[0].startswith("## ✅ dbstack: no databases enabled")


def test_a_failing_step_never_reads_as_success() -> None:
    results = successful_run()
    results.steps[3].outcome = Outcome.FAILED
    results.steps[3].cause = f"Error: UPGRADE FAILED: {HELM_LOCKED}"
    first = render_markdown(results).splitlines()[0]
    assert first.startswith("## ❌") and f"{results.steps[3].title} failed" in first


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_every_step_and_every_check_is_in_the_summary(sample: Callable[[], RunResults]) -> None:
    results = sample()
    markdown = render_markdown(results)
    for step in results.steps:
        assert step.title in markdown
    for database in results.databases:
        for check in database.checks:
            assert f"`{check.name}`" in markdown


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_each_database_has_its_own_table_with_service_port_and_secret_name(sample: Callable[[], RunResults]) -> None:
    results = sample()
    markdown = render_markdown(results)
    for database in results.databases:
        heading = re.search(rf"^#### .* {database.title} \(`{database.key}`\)$", markdown, flags=re.MULTILINE)
        assert heading, f"no heading for {database.key}"
        table = markdown[heading.end() :].split("\n\n")[1]
        assert table.startswith("| | |\n|---|---|")
        assert f"{database.host}:{database.port}" in table
        assert f"| Version | {database.version} " in table
        if database.secret:
            assert f"`{database.secret}`" in table


def test_failure_section_gives_the_cause_in_plain_words_and_the_diagnostics_paths() -> None:
    results = failed_run()
    markdown = render_markdown(results)
    failures = markdown.split("### Failures", 1)[1].split("### Databases", 1)[0]
    assert f"Cause: {PENDING_CAUSE}" in failures
    assert f"Cause: {ABNORMAL_CAUSE}" in failures
    for step in results.steps:
        for path in step.diagnostics:
            assert f"({path})" in failures
    assert "AssertionError: nearest point was 7, expected 3" in failures


def test_successful_run_has_no_failure_section() -> None:
    assert "### Failures" not in render_markdown(successful_run())


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_gantt_block_is_well_formed_with_every_started_step(sample: Callable[[], RunResults]) -> None:
    results = sample()
    tasks = parse_gantt(render_markdown(results))
    step_tasks = {t.name: t for t in tasks if t.section != "Smoke tests"}
    started = [s for s in results.steps if s.started_at is not None]
    assert sorted(step_tasks) == sorted(s.title for s in started)
    for step in started:
        assert step_tasks[step.title].status == ("done" if step.outcome.ok else "crit")
    by_section: dict[str, list[GanttTask]] = {}
    for task in tasks:
        by_section.setdefault(task.section, []).append(task)
    for section_tasks in by_section.values():
        starts = [t.start for t in section_tasks]
        assert starts == sorted(starts), "task starts must not go back in time within a section"
    sections = list(dict.fromkeys(t.section for t in tasks))
    assert sections[0] == "Platform"
    assert len(sections) == len(by_section), "each section appears once"


def test_gantt_places_steps_in_milliseconds_from_the_run_start() -> None:
    results = failed_run()
    tasks = {t.name: t for t in parse_gantt(render_markdown(results))}
    for step in results.steps:
        assert step.started_at is not None and step.ended_at is not None
        task = tasks[step.title]
        assert task.start == round((step.started_at - results.started_at) * 1000)
        assert task.end == max(task.start + 1000, round((step.ended_at - results.started_at) * 1000))


def test_characters_mermaid_chokes_on_are_kept_out_of_task_names() -> None:
    results = successful_run()
    results.steps[0].title = "Install CRDs: snapshot #1; then wait"
    tasks = parse_gantt(render_markdown(results))
    assert tasks[0].name.startswith("Install CRDs")
    assert "snapshot" in tasks[0].name and "then wait" in tasks[0].name


def test_markdown_in_a_cause_does_not_become_formatting() -> None:
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.FAILED)
    step.cause = "pod <none> has *no* node | see [docs]"
    markdown = render_markdown(results)
    assert r"Cause: pod \<none\> has \*no\* node | see \[docs\]" in markdown


def test_summary_is_appended_to_the_github_step_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    write_reports(failed_run(), tmp_path / "out")
    written = (tmp_path / "out" / "summary.md").read_text()
    assert step_summary.read_text() == "earlier step\n" + written + "\n"


def test_no_step_summary_file_is_created_without_github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    write_reports(successful_run(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "results.json", "summary.json", "summary.md"]


def test_a_database_with_failed_checks_is_not_marked_as_fine() -> None:
    results = failed_run()
    qdrant = next(d for d in results.databases if any(not c.outcome.ok for c in d.checks))
    assert f"#### ❌ {qdrant.title} (`{qdrant.key}`)" in render_markdown(results)


def test_why_the_smoke_tests_were_skipped_is_said() -> None:
    results = empty_run()
    results.smoke_cause = "deploy runs no smoke tests; use dagger call deploy-and-test"
    assert f"Smoke tests skipped: {results.smoke_cause}" in render_markdown(results)


def test_smoke_suite_that_could_not_start_is_the_verdict() -> None:
    results = successful_run()
    for database in results.databases:
        database.checks = []
    results.smoke_outcome = Outcome.FAILED
    results.smoke_cause = "the smoke suite did not run: image pull failed\nmore detail"
    first = render_markdown(results).splitlines()[0]
    assert first == "## ❌ dbstack: smoke tests failed: the smoke suite did not run: image pull failed"


def test_ready_databases_without_smoke_tests_do_not_pass() -> None:
    results = successful_run()
    results.smoke_outcome = Outcome.NOT_RUN
    assert render_markdown(results).splitlines()[0] == "## ❌ dbstack: smoke tests not run"


def test_a_long_cause_is_cut_in_the_summary_but_kept_whole_in_junit(tmp_path: Path) -> None:
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.TIMED_OUT)
    step.cause = "\n".join(f"event line {n}" for n in range(500))
    write_reports(results, tmp_path)
    markdown = (tmp_path / "summary.md").read_text()
    assert "event line 0" in markdown and "event line 499" not in markdown
    assert "truncated; the full text is in junit.xml" in markdown
    assert "event line 499" in (tmp_path / "junit.xml").read_text()


def test_ready_databases_with_smoke_tests_skipped_say_so_instead_of_zero_checks() -> None:
    results = successful_run()
    for database in results.databases:
        database.checks = []
    results.smoke_outcome = Outcome.SKIPPED
    first = render_markdown(results).splitlines()[0]
    assert first == f"## ✅ dbstack: all {len(results.databases)} databases ready, smoke tests skipped"


def test_a_smoke_warning_is_shown_on_its_database_not_hidden_in_the_checks() -> None:
    results = successful_run()
    results.databases[2].warnings = ["qdrant-client 1.13.3 is 3 minor versions from server 1.10.0"]
    markdown = render_markdown(results)
    assert "| ⚠️ Warning | qdrant-client 1.13.3 is 3 minor versions from server 1.10.0 |" in markdown
    assert markdown.splitlines()[0].startswith("## ✅")
