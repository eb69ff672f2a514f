from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dbstack.plan.build import HELM_LOCKED
from dbstack.report import write_reports
from dbstack.report.markdown import Links, render_markdown
from dbstack.run.results import Finding, Outcome, RunResults
from report_samples import (
    ABNORMAL_CAUSE,
    ALL_SAMPLES,
    PENDING_CAUSE,
    GanttTask,
    cancelled_run,
    counted_run,
    empty_run,
    failed_run,
    parse_gantt,
    successful_run,
)


def test_first_line_says_all_databases_ready_with_the_number_of_checks() -> None:
    first = render_markdown(successful_run()).splitlines()[0]
    assert first == "## ✅ dbstack: all 4 databases ready, 9 checks passed, 1 skipped"


def test_first_line_names_the_failed_databases_and_failed_checks() -> None:
    first = render_markdown(failed_run()).splitlines()[0]
    assert first == "## ❌ dbstack: 2 of 4 databases failed (postgresql, redis); 1 of 4 checks failed (qdrant)"
    first = render_markdown(counted_run()).splitlines()[0]
    assert first == (
        "## ❌ dbstack: 3 of 4 databases failed (postgresql, redis, elasticsearch); 2 of 6 checks failed (qdrant)"
    )


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


FIRST_SCREEN = {
    "success": [
        ("✅ ready", "3 passed, 0 failed"),
        ("✅ ready", "2 passed, 0 failed"),
        ("✅ ready", "2 passed, 0 failed, 1 skipped"),
        ("✅ ready", "2 passed, 0 failed"),
    ],
    "failure": [
        ("⏱️ timed out", "-"),
        ("❌ failed", "-"),
        ("❌ ready, checks failed", "1 passed, 1 failed"),
        ("✅ ready", "2 passed, 0 failed"),
    ],
    "cancelled": [("⚪ not run", "-")] * 4,
    "no-databases": [],
    "upgrade": [
        ("✅ ready", "3 passed, 0 failed"),
        ("❌ failed", "-"),
        ("✅ ready", "2 passed, 0 failed"),
        ("✅ ready", "2 passed, 0 failed"),
    ],
}


@pytest.mark.parametrize("name", list(FIRST_SCREEN))
def test_the_first_screen_is_one_row_per_database_under_the_verdict(name: str) -> None:
    results = ALL_SAMPLES[name]()
    lines = render_markdown(results).splitlines()
    if not results.databases:
        assert lines[2] == "No database was enabled for this run."
        return
    assert lines[2:4] == [
        "| Database | Status | Version | Mode | Ready after | Checks |",
        "|---|---|---|---|---|---|",
    ]
    rows = lines[4 : 4 + len(results.databases)]
    status_and_checks = []
    for database, row in zip(results.databases, rows, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == database.title
        assert cells[2] == f"{database.version} (chart {database.chart_version})"
        assert cells[3].startswith(database.mode or "default")
        assert cells[4] == ("1m 36s" if database.outcome is Outcome.PASSED else "-")
        status_and_checks.append((cells[1], cells[5]))
    assert status_and_checks == FIRST_SCREEN[name]
    assert lines[4 + len(results.databases)] == ""


def test_the_first_screen_of_a_run_with_every_outcome() -> None:
    lines = render_markdown(counted_run()).splitlines()
    assert lines[2:9] == [
        "| Database | Status | Version | Mode | Ready after | Checks |",
        "|---|---|---|---|---|---|",
        "| PostgreSQL | ⏱️ timed out | 16.4.0 (chart 1.0.1) | replication, 2 replicas | - | - |",
        "| Redis | ❌ failed | 7.2.7 (chart 1.0.1) | standalone, 1 replica | - | - |",
        "| Qdrant | ❌ ready, checks failed | 1.10.0 (chart 1.0.1) | default, 1 replica | 1m 36s "
        "| 3 passed, 2 failed, 1 skipped |",
        "| Elasticsearch | ❌ failed | 8.8.2 (chart 1.0.1) | single-node, 1 replica | - | - |",
        "",
    ]


def test_why_it_failed_gives_each_databases_cause_whether_failed_or_timed_out() -> None:
    markdown = render_markdown(counted_run())
    section = markdown.split("### Why it failed\n\n", 1)[1].split("\n\nRun `", 1)[0]
    assert section.split("\n\n") == [
        "**Deploy PostgreSQL (pg-cluster) and wait until Running** timed out after 10m 00s: "
        "pg-cluster-postgresql-1 Pending: 0/1 nodes are available: 1 Insufficient cpu",
        "```text\npg-cluster-postgresql-1 Pending: 0/1 nodes are available: 1 Insufficient cpu\n"
        "waited 600s for clusters.apps.kubeblocks.io/pg-cluster\n```",
        "**Deploy Redis (redis-cluster) and wait until Running** failed after 2m 00s: "
        "Cluster redis-cluster is Abnormal: redis-cluster-redis-0 CrashLoopBackOff",
        "**Install addon elasticsearch 1.0.1** failed after 5.00s: "
        "Error: INSTALLATION FAILED: chart kb-addon-elasticsearch 1.0.1 not found in the repository",
        "**Run the smoke tests** failed: 2 checks failed",
        "**Qdrant check** `test_top1_search_returns_the_nearest_point` failed: "
        "AssertionError: nearest point was 7, expected 3",
        "**Qdrant check** `test_payload_filter` failed: AssertionError: filter matched 0 points, expected 2",
    ]


def test_the_steps_table_gives_each_outcome_and_the_smoke_suite() -> None:
    markdown = render_markdown(counted_run())
    table = markdown.split("### Steps\n\n", 1)[1].split("\n\n", 1)[0]
    assert table.splitlines() == [
        "| Step | Result | Start | Took | Attempts |",
        "|---|---|---|---|---|",
        "| Install VolumeSnapshot CRDs (v8.2.0) | ⏭️ skipped | +0.00s | 0.50s | 0 |",
        "| Install the snapshot controller (v8.2.0) | ⏭️ skipped | +0.50s | 0.50s | 0 |",
        "| Install KubeBlocks CRDs (v1.0.1) | ⏭️ skipped | +1.00s | 0.50s | 0 |",
        "| Install KubeBlocks 1.0.1 | ✅ passed | +1.50s | 30.0s | 1 |",
        "| Install addon postgresql 1.0.1 | ✅ passed | +31.5s | 12.0s | 1 |",
        "| Deploy PostgreSQL (pg-cluster) and wait until Running | ⏱️ timed out | +43.5s | 10m 00s | 1 |",
        "| Install addon redis 1.0.1 | ✅ passed | +31.5s | 12.0s | 1 |",
        "| Deploy Redis (redis-cluster) and wait until Running | ❌ failed | +43.5s | 2m 00s | 1 |",
        "| Install addon qdrant 1.0.1 | ✅ passed | +31.5s | 12.0s | 1 |",
        "| Deploy Qdrant (qdrant-cluster) and wait until Running | ✅ passed | +43.5s | 1m 36s | 1 |",
        "| Install addon elasticsearch 1.0.1 | ❌ failed | +31.5s | 5.00s | 1 |",
        "| Deploy Elasticsearch (es-cluster) and wait until Running | ⚪ not run | - | - | 0 |",
        "| Run the smoke tests | ❌ failed | +10m 44s | 20.0s | - |",
    ]


def test_the_checks_of_a_database_are_counted_and_listed() -> None:
    markdown = render_markdown(counted_run())
    assert (
        "<details open><summary>Qdrant: 6 checks: 3 passed, 2 failed, 1 skipped</summary>\n\n"
        "| Check | Result | Time | Message |\n"
        "|---|---|---|---|\n"
        "| `test_create_cosine_collection` | ✅ passed | 0.50s |  |\n"
        "| `test_upsert_points` | ✅ passed | 0.50s |  |\n"
        "| `test_top1_search_returns_the_nearest_point` | ❌ failed | 0.50s "
        "| AssertionError: nearest point was 7, expected 3 |\n"
        "| `test_payload_filter` | ❌ failed | 0.50s | AssertionError: filter matched 0 points, expected 2 |\n"
        "| `test_grpc_port` | ⏭️ skipped | 0.50s | gRPC not exposed |\n"
        "| `test_delete_collection` | ✅ passed | 0.50s |  |\n\n"
        "</details>"
    ) in markdown


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_where_each_database_is_reached_is_one_table(sample: Callable[[], RunResults]) -> None:
    results = sample()
    markdown = render_markdown(results)
    if not results.databases:
        assert "### Databases" not in markdown
        return
    table = markdown.split("### Databases\n\n", 1)[1].split("\n\n", 1)[0]
    assert table.startswith("| Database | Service | Secret | Release |\n|---|---|---|---|")
    for database in results.databases:
        (row,) = [line for line in table.splitlines() if line.startswith(f"| {database.title} (`{database.key}`) |")]
        assert f"`{database.host}:{database.port}`" in row
        assert (f"`{database.secret}`" if database.secret else "none (no authentication)") in row


def test_failure_section_gives_the_cause_in_plain_words_and_the_diagnostics_paths() -> None:
    results = failed_run()
    markdown = render_markdown(results)
    failures = markdown.split("### Why it failed", 1)[1].split("\nRun `", 1)[0]
    assert f"timed out after 10m 00s: {PENDING_CAUSE}" in failures
    assert f"failed after 10m 00s: {ABNORMAL_CAUSE}" in failures
    for step in results.steps:
        for path in step.diagnostics:
            assert f"({path})" in failures
    assert "AssertionError: nearest point was 7, expected 3" in failures


def test_each_finding_says_reason_message_event_and_last_log_lines_with_links() -> None:
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.FAILED)
    step.findings = [
        Finding(
            "pod/redis-cluster-redis-0 container redis",
            "OOMKilled",
            "killed for using more memory than its limit (exit code 137); restarted 4 times",
            event="BackOff: Back-off restarting failed container redis",
            logs=["1:M * Ready to accept connections", "1:M # Out of memory allocating 1048576 bytes"],
            sources=["diagnostics/redis/pods.txt", "diagnostics/redis/logs-previous.txt"],
        )
    ]
    markdown = render_markdown(results)
    entry = markdown.split(f"**{step.title}**", 1)[1]
    assert entry.splitlines()[1] == (
        "- `pod/redis-cluster-redis-0 container redis`: **OOMKilled**: killed for using more memory than its limit "
        "(exit code 137); restarted 4 times"
    )
    assert "  Event: BackOff: Back-off restarting failed container redis  " in entry
    assert (
        "  ```text\n  1:M * Ready to accept connections\n  1:M # Out of memory allocating 1048576 bytes\n  ```" in entry
    )
    assert (
        "  From [pods.txt](diagnostics/redis/pods.txt), [logs-previous.txt](diagnostics/redis/logs-previous.txt)"
        in (entry)
    )


def test_with_a_known_url_the_links_go_there_not_to_relative_paths() -> None:
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.FAILED)
    step.findings = [Finding("pod/p container c", "Error", "exit 1", sources=["diagnostics/redis/pods.txt"])]
    artifact = "https://github.com/o/r/actions/runs/1/artifacts/2"
    markdown = render_markdown(results, Links(run_url="https://github.com/o/r/actions/runs/1", artifact_url=artifact))
    assert f"  From `diagnostics/redis/pods.txt` in the [reports artifact]({artifact})" in markdown
    assert f"pods.txt, events.txt, nodes.txt in the [reports artifact]({artifact})" in markdown
    assert "](diagnostics/" not in markdown
    run_only = render_markdown(results, Links(run_url="https://github.com/o/r/actions/runs/1"))
    assert "in the reports artifact of [the run](https://github.com/o/r/actions/runs/1)" in run_only
    assert "](diagnostics/" not in run_only


def test_successful_run_has_no_failure_section() -> None:
    assert "### Why it failed" not in render_markdown(successful_run())


@pytest.mark.parametrize("sample", ALL_SAMPLES.values(), ids=list(ALL_SAMPLES))
def test_gantt_block_is_well_formed_with_every_started_step(sample: Callable[[], RunResults]) -> None:
    results = sample()
    tasks = parse_gantt(render_markdown(results))
    step_tasks = {t.name: t for t in tasks if t.section not in ("Smoke tests", "Marker data")}
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
    assert sections[0] == ("Base · Platform" if results.upgrade else "Platform")
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
    assert r"pod \<none\> has \*no\* node | see \[docs\]" in markdown


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
    assert f"| {qdrant.title} | ❌ ready, checks failed | " in render_markdown(results)


def test_a_not_run_database_does_not_say_not_run_twice() -> None:
    results = cancelled_run()
    for step in results.steps:
        step.cause = "not run: kubeblocks did not succeed"
    markdown = render_markdown(results)
    assert "not run: not run" not in markdown


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
    assert "| Qdrant | ✅ ready, ⚠️ 1 warning | " in markdown
    assert "- ⚠️ **Qdrant**: qdrant-client 1.13.3 is 3 minor versions from server 1.10.0" in markdown
    assert markdown.splitlines()[0].startswith("## ✅")
