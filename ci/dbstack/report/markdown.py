"""summary.md: the verdict first, then failures with their causes, a table per database, the steps and a timeline."""

from __future__ import annotations

import re

from dbstack.report.summary_json import iso_time
from dbstack.report.timeline import mermaid_gantt
from dbstack.report.verdict import (
    OUTCOME_WORDS,
    SMOKE_TITLE,
    CheckCounts,
    database_ready,
    headline,
)
from dbstack.run.results import CheckResult, DatabaseResult, Outcome, RunResults, StepResult
from dbstack.text import first_line

MAX_CAUSE_LINES = 60
MAX_CAUSE_CHARS = 6000
OUTCOME_MARKS: dict[Outcome, str] = {
    Outcome.PASSED: "✅",
    Outcome.FAILED: "❌",
    Outcome.TIMED_OUT: "⏱️",
    Outcome.SKIPPED: "⏭️",
    Outcome.NOT_RUN: "⚪",
    Outcome.CANCELLED: "⏹️",
}
WARNING_MARK = "⚠️"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>])")


def render_markdown(results: RunResults) -> str:
    blocks = [
        f"## {headline(results)}",
        _run_line(results),
        *_failures(results),
        *_databases(results),
        *_steps_table(results),
        *_timeline(results),
        *_versions(results),
    ]
    return "\n\n".join(blocks) + "\n"


# --- small formatting helpers -------------------------------------------------------------------------------------


def text(value: str) -> str:
    """Plain text that Markdown will not turn into formatting or HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", value.replace("\n", " "))


def code(value: str) -> str:
    """An inline code span that survives backticks inside the value."""
    value = value.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {value} " if value.startswith("`") or value.endswith("`") or longest else value
    return f"{fence}{padded}{fence}"


def cell(value: str) -> str:
    """A table cell: GitHub splits cells on '|' even inside code spans."""
    return value.replace("|", "\\|")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def result(outcome: Outcome) -> str:
    return f"{OUTCOME_MARKS[outcome]} {OUTCOME_WORDS[outcome]}"


def fenced(body: str, language: str = "text") -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{language}\n{body}\n{fence}"


def _truncated(cause: str) -> str:
    lines = cause.strip().splitlines()
    shortened = "\n".join(lines[:MAX_CAUSE_LINES])[:MAX_CAUSE_CHARS]
    if shortened != "\n".join(lines):
        shortened += "\n… (truncated; the full text is in junit.xml)"
    return shortened


# --- sections -----------------------------------------------------------------------------------------------------


def _run_line(results: RunResults) -> str:
    took = "" if results.ended_at is None else f" · took {duration(results.ended_at - results.started_at)}"
    started = (iso_time(results.started_at) or "").replace("T", " ").replace("Z", " UTC")
    return (
        f"Run {code(results.run_id)} · cluster {code(results.cluster_kind)} · profile {code(results.profile or 'none')}"
        f" · namespace {code(results.namespace)} · started {started}{took}"
    )


def _failures(results: RunResults) -> list[str]:
    entries = [_step_failure(s) for s in results.steps if s.outcome in (Outcome.FAILED, Outcome.TIMED_OUT)]
    entries += [_step_failure(s) for s in results.steps if s.outcome is Outcome.CANCELLED]
    if results.smoke_outcome not in (Outcome.PASSED, Outcome.SKIPPED, Outcome.NOT_RUN) or (
        results.smoke_outcome is Outcome.NOT_RUN and results.smoke_cause
    ):
        entries.append(_smoke_failure(results))
    entries += [_check_failure(d, c) for d in results.databases for c in d.checks if not c.outcome.ok]
    if not entries:
        return []
    return ["### Failures", *entries]


def _step_failure(step: StepResult) -> str:
    took = f" after {duration(step.duration_s)}" if step.duration_s is not None else ""
    lines = [f"**{text(step.title)}** {OUTCOME_WORDS[step.outcome]}{took}  "]
    cause = (step.cause or "").strip()
    lines.append(f"Cause: {text(first_line(cause)) or 'no cause was recorded'}  ")
    if step.attempts > 1:
        lines.append(f"Attempts: {step.attempts}  ")
    lines += _diagnostics_lines(step.diagnostics)
    block = "\n".join(lines).rstrip()
    if len(cause.splitlines()) > 1:
        block += "\n\n" + fenced(_truncated(cause))
    return block


def _smoke_failure(results: RunResults) -> str:
    cause = (results.smoke_cause or "").strip()
    block = f"**{SMOKE_TITLE}** {OUTCOME_WORDS[results.smoke_outcome]}  \nCause: {text(first_line(cause)) or '-'}"
    if len(cause.splitlines()) > 1:
        block += "\n\n" + fenced(_truncated(cause))
    return block


def _check_failure(database: DatabaseResult, check: CheckResult) -> str:
    message = first_line(check.message)
    return (
        f"**{text(database.title)} check** {code(check.name)} {OUTCOME_WORDS[check.outcome]}: "
        f"{text(message) or 'no message was recorded'}"
    )


def _diagnostics_lines(paths: list[str]) -> list[str]:
    """One line per folder, each file a link named by its file name (a cluster step collects about 17)."""
    folders: dict[str, list[str]] = {}
    for path in paths:
        folder, _, name = path.rpartition("/")
        folders.setdefault(folder, []).append(name)
    lines = []
    for folder, names in folders.items():
        prefix = f"{folder}/" if folder else ""
        links = ", ".join(f"[{text(name)}]({_link(prefix + name)})" for name in names)
        lines.append(f"Diagnostics in {code(prefix or './')}: {links}  ")
    return lines


def _link(path: str) -> str:
    return path.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _databases(results: RunResults) -> list[str]:
    if not results.databases:
        return ["### Databases", "No database was enabled for this run."]
    blocks = ["### Databases"]
    for database in results.databases:
        blocks += _database(database, results)
    return blocks


def _database(database: DatabaseResult, results: RunResults) -> list[str]:
    counts = CheckCounts.of([database])
    if not database_ready(database):
        mark = OUTCOME_MARKS[database.outcome]
    else:
        mark = OUTCOME_MARKS[Outcome.FAILED if counts.failed else Outcome.PASSED]
    rows = [
        ("Status", _database_status(database, results)),
        ("Version", f"{text(database.version)} (chart {text(database.chart_version)})"),
        (
            "Mode",
            f"{text(database.mode or 'default')}, {database.replicas} replica{'s' if database.replicas != 1 else ''}",
        ),
        ("Service", code(f"{database.host}:{database.port}")),
        ("Secret", code(database.secret) if database.secret else "none (no authentication)"),
        ("Release", f"{code(database.release)} in namespace {code(database.namespace)}"),
        ("Checks", _check_line(counts)),
        *((f"{WARNING_MARK} Warning", text(warning)) for warning in database.warnings),
    ]
    table = "\n".join(["| | |", "|---|---|", *(f"| {name} | {cell(value)} |" for name, value in rows)])
    blocks = [f"#### {mark} {text(database.title)} ({code(database.key)})", table]
    if database.checks:
        blocks.append(_checks_table(database.checks, counts))
    return blocks


def _check_line(counts: CheckCounts) -> str:
    if counts.total == 0:
        return "none ran"
    return f"{counts.passed} passed, {counts.failed} failed, {counts.skipped} skipped"


def _database_status(database: DatabaseResult, results: RunResults) -> str:
    if database_ready(database):
        return f"ready after {duration(database.ready_after_s)}" if database.ready_after_s is not None else "ready"
    step = next((s for s in results.steps if s.database == database.key and not s.outcome.ok), None)
    cause = first_line(step.cause) if step else ""
    return OUTCOME_WORDS[database.outcome] + (f": {text(cause)}" if cause else "")


def _checks_table(checks: list[CheckResult], counts: CheckCounts) -> str:
    rows = [
        f"| {cell(code(c.name))} | {result(c.outcome)} | {duration(c.duration_s)} "
        f"| {cell(text(first_line(c.message)))} |"
        for c in checks
    ]
    opened = " open" if counts.failed else ""
    summary = f"{counts.total} checks: {counts.passed} passed, {counts.failed} failed, {counts.skipped} skipped"
    header = ["| Check | Result | Time | Message |", "|---|---|---|---|"]
    return f"<details{opened}><summary>{summary}</summary>\n\n" + "\n".join(header + rows) + "\n\n</details>"


def _steps_table(results: RunResults) -> list[str]:
    rows = ["| Step | Result | Start | Took | Attempts |", "|---|---|---|---|---|"]
    for step in results.steps:
        start = "-" if step.started_at is None else f"+{duration(step.started_at - results.started_at)}"
        rows.append(
            f"| {cell(text(step.title))} | {result(step.outcome)} | {start} | {duration(step.duration_s)} "
            f"| {step.attempts} |"
        )
    smoke_start = (
        "-" if results.smoke_started_at is None else f"+{duration(results.smoke_started_at - results.started_at)}"
    )
    smoke_took = (
        None
        if results.smoke_started_at is None or results.smoke_ended_at is None
        else results.smoke_ended_at - results.smoke_started_at
    )
    rows.append(f"| {SMOKE_TITLE} | {result(results.smoke_outcome)} | {smoke_start} | {duration(smoke_took)} | - |")
    blocks = ["### Steps", "\n".join(rows)]
    notes = [f"- {text(step.title)}: {text(note)}" for step in results.steps for note in step.notes]
    if notes:
        blocks.append("\n".join(["Notes:", *notes]))
    if results.smoke_outcome is Outcome.SKIPPED and results.smoke_cause:
        blocks.append(f"Smoke tests skipped: {text(first_line(results.smoke_cause))}")
    return blocks


def _versions(results: RunResults) -> list[str]:
    if not results.versions and not results.installed_versions:
        return []
    rows = ["| Component | Version |", "|---|---|"]
    rows += [f"| {cell(code(k))} | {cell(code(v))} |" for k, v in sorted(results.versions.items())]
    # What the run found installed and reused (it may differ from the pin under kubeblocks.reuseInstalled: any).
    rows += [
        f"| {cell(code(k))} (installed) | {cell(code(v))} |" for k, v in sorted(results.installed_versions.items())
    ]
    return ["### Versions", "\n".join(rows)]


def _timeline(results: RunResults) -> list[str]:
    diagram = mermaid_gantt(results)
    if diagram is None:
        return ["### Timeline", "No step started."]
    return ["### Timeline", fenced(diagram, "mermaid")]
