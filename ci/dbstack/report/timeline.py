"""The run as a Mermaid gantt diagram: milliseconds from the run's start (`dateFormat x`), a section per database.

Milliseconds, not seconds (`X`): Mermaid 11 reads a numeric start as milliseconds whatever the format says, while
it reads the end in the declared format, so only `x` places both ends right in old and new Mermaid alike. Dates are
integers because Mermaid parses them strictly. A task name ends at ':', and '#' and ';' start a comment or a new
statement, so names carry look-alikes instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbstack.report.verdict import SMOKE_TITLE
from dbstack.run.results import Outcome, RunResults, StepResult, in_upgrade_stage

PLATFORM_SECTION = "Platform"
SMOKE_SECTION = "Smoke tests"
BASE_PHASE = "Base"
UPGRADE_PHASE = "Upgrade"
STAGE_SECTIONS = {"backup": "Backup and restore"}
"""A stage whose steps (run on deployed databases) get one section of their own, after the databases'."""
MIN_TASK_MS = 1000
"""Every task is drawn at least a second long, so skipped steps stay visible."""
_MERMAID_LOOKALIKES = str.maketrans(
    {":": "\N{MODIFIER LETTER COLON}", ";": ",", "#": "\N{FULLWIDTH NUMBER SIGN}", "\n": " ", "\t": " "}
)


@dataclass(frozen=True)
class Task:
    section: str
    name: str
    status: str
    start: int
    end: int


def mermaid_name(value: str) -> str:
    """A task or section name Mermaid's gantt parser reads as one name."""
    return " ".join(value.translate(_MERMAID_LOOKALIKES).split()) or "-"


def _task(section: str, name: str, outcome: Outcome, start: float, end: float | None, run_start: float) -> Task:
    begin = max(0, round((start - run_start) * 1000))
    finish = max(begin + MIN_TASK_MS, round(((end if end is not None else start) - run_start) * 1000))
    status = "done" if outcome.ok else "crit"
    return Task(mermaid_name(section), mermaid_name(name), status, begin, finish)


def timeline_tasks(results: RunResults) -> list[Task]:
    """Every step that started, grouped Platform first, then one section per database, then each stage with a
    section of its own (backup and restore), then the smoke tests. An upgrade test has the first ones twice, the
    base's (`Base · ...`) and the upgrade's (`Upgrade · ...`: each database's markers written, its upgrade, its
    markers read back)."""
    upgrade = results.upgrade
    steps = [s for s in results.steps if s.stage not in STAGE_SECTIONS]
    if upgrade is None:
        tasks = _step_tasks(results, steps, "")
    else:
        tasks = _step_tasks(results, [s for s in steps if not in_upgrade_stage(s)], f"{BASE_PHASE} · ")
        tasks += _step_tasks(results, [s for s in steps if in_upgrade_stage(s)], f"{UPGRADE_PHASE} · ")
    for stage, section in STAGE_SECTIONS.items():
        started = [(s.started_at, s) for s in results.steps if s.stage == stage and s.started_at is not None]
        for start, step in sorted(started, key=lambda pair: pair[0]):
            tasks.append(_task(section, step.title, step.outcome, start, step.ended_at, results.started_at))
    if results.smoke_started_at is not None:
        tasks.append(
            _task(
                SMOKE_SECTION,
                SMOKE_TITLE,
                results.smoke_outcome,
                results.smoke_started_at,
                results.smoke_ended_at,
                results.started_at,
            )
        )
    return tasks


def _step_tasks(results: RunResults, steps: list[StepResult], phase: str) -> list[Task]:
    titles = {d.key: d.title for d in results.databases}
    others = [s.database for s in steps if s.database is not None and s.database not in titles]
    order = [None, *titles, *dict.fromkeys(others)]
    tasks = []
    for database in order:
        section = phase + (PLATFORM_SECTION if database is None else titles.get(database, database))
        started = [(s.started_at, s) for s in steps if s.database == database and s.started_at is not None]
        for start, step in sorted(started, key=lambda pair: pair[0]):
            tasks.append(_task(section, step.title, step.outcome, start, step.ended_at, results.started_at))
    return tasks


def mermaid_gantt(results: RunResults) -> str | None:
    """The gantt diagram's source, or None when no step started."""
    tasks = timeline_tasks(results)
    if not tasks:
        return None
    longest = max(t.end for t in tasks)
    lines = [
        "gantt",
        f"    title {mermaid_name(f'dbstack run {results.run_id}')} (time from start)",
        "    dateFormat x",
        f"    axisFormat {'%H:%M:%S' if longest >= 3_600_000 else '%M:%S'}",
        "    todayMarker off",
    ]
    section = None
    for number, task in enumerate(tasks, 1):
        if task.section != section:
            section = task.section
            lines.append(f"    section {section}")
        lines.append(f"    {task.name} :{task.status}, t{number}, {task.start}, {task.end}")
    return "\n".join(lines)
