"""summary.md, first screen first: the verdict, one row per database, then for each failure why, in the cluster's
own words (the failing container's reason and message, its last log lines, the event that explains it) with links
to the diagnostics that say so. Below: the run, where each database is reached, the steps, a timeline, versions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dbstack.report.summary_json import iso_time
from dbstack.report.timeline import mermaid_gantt
from dbstack.report.verdict import (
    OUTCOME_WORDS,
    SMOKE_TITLE,
    CheckCounts,
    database_ready,
    headline,
    without_outcome,
)
from dbstack.run.results import CheckResult, DatabaseResult, Finding, Outcome, RunResults, StepResult
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
WHY_HEADING = "### Why it failed"


@dataclass(frozen=True)
class Links:
    """Where the report folder can be reached on the web. A GitHub step summary resolves relative links against
    the run page, where they lead nowhere, so when a URL is known files are named and the link goes there."""

    run_url: str | None = None
    artifact_url: str | None = None
    """The uploaded reports folder (actions/upload-artifact's `artifact-url`)."""

    def where(self) -> str | None:
        """`in the [reports artifact](URL)`, or None when no URL is known (relative links then work)."""
        if self.artifact_url:
            return f"in the [reports artifact]({_link(self.artifact_url)})"
        if self.run_url:
            return f"in the reports artifact of [the run]({_link(self.run_url)})"
        return None

    def files(self, paths: list[str], *, names_only: bool = False) -> str:
        """The files, linked: relative links without a URL, else named and pointing at the artifact or run."""
        where = self.where()
        if where is None:
            return ", ".join(f"[{text(p.rpartition('/')[2])}]({_link(p)})" for p in paths)
        shown = (text(p.rpartition("/")[2]) for p in paths) if names_only else (code(p) for p in paths)
        return f"{', '.join(shown)} {where}"


def render_markdown(results: RunResults, links: Links | None = None) -> str:
    links = links or Links()
    blocks = [
        f"## {headline(results)}",
        _database_table(results),
        *_failures(results, links),
        *_warnings(results),
        _run_line(results),
        *_databases(results),
        *_upgrade(results),
        *_backups(results),
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


def _failures(results: RunResults, links: Links) -> list[str]:
    entries = [_step_failure(s, links) for s in results.steps if s.outcome in (Outcome.FAILED, Outcome.TIMED_OUT)]
    entries += [_step_failure(s, links) for s in results.steps if s.outcome is Outcome.CANCELLED]
    if results.smoke_outcome not in (Outcome.PASSED, Outcome.SKIPPED, Outcome.NOT_RUN) or (
        results.smoke_outcome is Outcome.NOT_RUN and results.smoke_cause
    ):
        entries.append(_smoke_failure(results))
    entries += [_check_failure(d, c) for d in results.databases for c in d.checks if not c.outcome.ok]
    entries += _upgrade_failures(results)
    if not entries:
        return []
    return [WHY_HEADING, *entries]


def _step_failure(step: StepResult, links: Links) -> str:
    """The step and its cause on one line, then each finding (reason, event, last log lines) and the files."""
    took = f" after {duration(step.duration_s)}" if step.duration_s is not None else ""
    cause = (step.cause or "").strip()
    said = text(first_line(without_outcome(step.outcome, cause))) or "no cause was recorded"
    lines = [f"**{text(step.title)}** {OUTCOME_WORDS[step.outcome]}{took}: {said}"]
    lines += [line for finding in step.findings for line in _finding(finding, links)]
    tail = []
    if step.attempts > 1:
        tail.append(f"Attempts: {step.attempts}  ")
    tail += _diagnostics_lines(step.diagnostics, links)
    block = "\n".join(lines)
    if tail:
        block += "\n\n" + "\n".join(tail).rstrip()
    if len(cause.splitlines()) > 1:
        block += "\n\n" + fenced(_truncated(cause))
    return block


def _finding(finding: Finding, links: Links) -> list[str]:
    lines = [f"- {code(finding.subject)}: **{text(finding.reason)}**: {text(finding.message) or '-'}"]
    if finding.event:
        lines.append(f"  Event: {text(finding.event)}  ")
    if finding.logs:
        lines.append("  Last log lines:")
        lines += [f"  {line}" for line in fenced("\n".join(finding.logs)).splitlines()]
    if finding.sources:
        lines.append(f"  From {links.files(finding.sources)}")
    return lines


def _warnings(results: RunResults) -> list[str]:
    """What the smoke checks found working but worth knowing, per database."""
    lines = [f"- {WARNING_MARK} **{text(d.title)}**: {text(w)}" for d in results.databases for w in d.warnings]
    return ["### Warnings", "\n".join(lines)] if lines else []


def _smoke_failure(results: RunResults) -> str:
    cause = (results.smoke_cause or "").strip()
    block = f"**{SMOKE_TITLE}** {OUTCOME_WORDS[results.smoke_outcome]}: {text(first_line(cause)) or '-'}"
    if len(cause.splitlines()) > 1:
        block += "\n\n" + fenced(_truncated(cause))
    return block


def _check_failure(database: DatabaseResult, check: CheckResult) -> str:
    message = first_line(check.message)
    return (
        f"**{text(database.title)} check** {code(check.name)} {OUTCOME_WORDS[check.outcome]}: "
        f"{text(message) or 'no message was recorded'}"
    )


def _upgrade_failures(results: RunResults) -> list[str]:
    upgrade = results.upgrade
    if upgrade is None:
        return []
    entries = []
    titles = {d.key: d.title for d in results.databases}
    for survival in upgrade.survival:
        if survival.outcome in (Outcome.FAILED, Outcome.TIMED_OUT):
            title = titles.get(survival.database, survival.database)
            why = text(first_line(survival.message)) or "no cause was recorded"
            entries.append(f"**{text(title)} did not survive the upgrade**: {why}")
    return entries


def _diagnostics_lines(paths: list[str], links: Links) -> list[str]:
    """One line per folder (a cluster step collects about 17 files)."""
    folders: dict[str, list[str]] = {}
    for path in paths:
        folders.setdefault(path.rpartition("/")[0], []).append(path)
    return [
        f"Diagnostics in {code(f'{folder}/' if folder else './')}: {links.files(files, names_only=True)}  "
        for folder, files in folders.items()
    ]


def _link(path: str) -> str:
    return path.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _database_table(results: RunResults) -> str:
    """One row per database: how it ended, what ran, how long it took to be ready, its checks."""
    if not results.databases:
        return "No database was enabled for this run."
    rows = ["| Database | Status | Version | Mode | Ready after | Checks |", "|---|---|---|---|---|---|"]
    for d in results.databases:
        mode = f"{d.mode or 'default'}, {d.replicas} replica{'s' if d.replicas != 1 else ''}"
        ready = duration(d.ready_after_s) if database_ready(d) else "-"
        cells = (
            text(d.title),
            _database_status(d),
            f"{text(d.version)} (chart {text(d.chart_version)})",
            text(mode),
            ready,
            _check_line(CheckCounts.of([d])),
        )
        rows.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(rows)


def _database_status(database: DatabaseResult) -> str:
    if not database_ready(database):
        return result(database.outcome)
    warned = f", {WARNING_MARK} {len(database.warnings)} warning{'s' if len(database.warnings) != 1 else ''}"
    warned = warned if database.warnings else ""
    if CheckCounts.of([database]).failed:
        return f"{OUTCOME_MARKS[Outcome.FAILED]} ready, checks failed{warned}"
    return f"{OUTCOME_MARKS[Outcome.PASSED]} ready{warned}"


def _check_line(counts: CheckCounts) -> str:
    if counts.total == 0:
        return "-"
    skipped = f", {counts.skipped} skipped" if counts.skipped else ""
    return f"{counts.passed} passed, {counts.failed} failed{skipped}"


def _databases(results: RunResults) -> list[str]:
    """Where each database is reached, and its checks one by one."""
    if not results.databases:
        return []
    rows = ["| Database | Service | Secret | Release |", "|---|---|---|---|"]
    for d in results.databases:
        secret = code(d.secret) if d.secret else "none (no authentication)"
        release = f"{code(d.release)} in namespace {code(d.namespace)}"
        cells = (f"{text(d.title)} ({code(d.key)})", code(f"{d.host}:{d.port}"), secret, release)
        rows.append("| " + " | ".join(cell(c) for c in cells) + " |")
    blocks = ["### Databases", "\n".join(rows)]
    blocks += [_checks_table(d, d.checks, CheckCounts.of([d])) for d in results.databases if d.checks]
    return blocks


def _checks_table(database: DatabaseResult, checks: list[CheckResult], counts: CheckCounts) -> str:
    rows = [
        f"| {cell(code(c.name))} | {result(c.outcome)} | {duration(c.duration_s)} "
        f"| {cell(text(first_line(c.message)))} |"
        for c in checks
    ]
    opened = " open" if counts.failed else ""
    summary = (
        f"{text(database.title)}: {counts.total} checks: {counts.passed} passed, {counts.failed} failed, "
        f"{counts.skipped} skipped"
    )
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


def _upgrade(results: RunResults) -> list[str]:
    """What an upgrade test changed and what survived it: per database, per release, and the diff of what Helm
    received."""
    upgrade = results.upgrade
    if upgrade is None:
        return []
    titles = {d.key: d.title for d in results.databases}
    rows = ["| Database | Survived the upgrade | |", "|---|---|---|"]
    rows += [
        f"| {cell(text(titles.get(s.database, s.database)))} | {result(s.outcome)} "
        f"| {cell(text(first_line(s.message)))} |"
        for s in upgrade.survival
    ]
    blocks = [f"### Upgrade from {code(upgrade.base_values)}"]
    if upgrade.survival:
        blocks.append("\n".join(rows))
    changed = [c for c in upgrade.changes if c.action != "unchanged"]
    unchanged = [c.name for c in upgrade.changes if c.action == "unchanged"]
    if changed:
        lines = ["| Release | Change | Before | After |", "|---|---|---|---|"]
        for c in changed:
            before, after = cell(text(c.before or "-")), cell(text(c.after or "-"))
            lines.append(f"| {cell(code(c.name))} | {text(c.action)} | {before} | {after} |")
        blocks.append("\n".join(lines))
    else:
        blocks.append("Nothing changed: every release was left as the base deployed it.")
    if unchanged:
        blocks.append(f"Unchanged, left alone: {', '.join(code(name) for name in unchanged)}")
    diff = [f"# {c.name}\n" + "\n".join(c.diff) for c in changed if c.diff]
    if diff:
        body = fenced("\n\n".join(diff), "diff")
        blocks.append(f"<details open><summary>What Helm received differently</summary>\n\n{body}\n\n</details>")
    if upgrade.cautions:
        blocks.append("\n".join(["Cautions:", *(f"- {text(c)}" for c in upgrade.cautions)]))
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


def _backups(results: RunResults) -> list[str]:
    """The backup stage: per database its method, the backup's time and size, the restore's time, the read-back."""
    if not results.backups:
        return []
    rows = [
        "| Database | Method | Backup | Size | Restore | Markers read back | Result |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in results.backups:
        if b.method is None:
            cells = (text(b.title), "-", "-", "-", "-", "-", f"{OUTCOME_MARKS[Outcome.SKIPPED]} {text(b.cause or '')}")
        else:
            took = duration(b.backup_s) + (f" ({text(b.duration)} by KubeBlocks)" if b.duration else "")
            restore = f"{duration(b.restore_s)} into {code(b.restored or '-')}"
            outcome = result(b.outcome) + (f": {text(first_line(b.cause))}" if b.cause else "")
            cells = (
                text(b.title),
                code(b.method),
                took,
                text(b.size or "-"),
                restore,
                result(b.markers_read_back),
                outcome,
            )
        rows.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return ["### Backup and restore", "\n".join(rows)]
