"""junit.xml: the pipeline's steps as one test suite, each database's smoke checks as another, and the backup
stage's databases (backed up, restored, markers read back) as a third.

The shape is the common denominator GitHub test reporters read (dorny/test-reporter, mikepenz/action-junit-report):
testsuites > testsuite(name, tests, failures, errors, skipped, time) > testcase(name, classname, time) with a
<failure message="...">, <error message="..."> or <skipped message="..."> child.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

from dbstack.report.verdict import FAILED_OUTCOMES, SMOKE_TITLE, SURVIVED
from dbstack.run.results import (
    BackupResult,
    CheckResult,
    DatabaseResult,
    Outcome,
    RunResults,
    StepResult,
    UpgradeResults,
)
from dbstack.text import first_line

PIPELINE_SUITE = "dbstack pipeline"
UPGRADE_SUITE = "dbstack upgrade"
BACKUP_SUITE = "backup and restore"
NOT_RUN_REASON = "not run: a step it needs did not pass"
STEP_SKIPPED_REASON = "already installed"


@dataclass(frozen=True)
class Case:
    classname: str
    name: str
    outcome: Outcome
    duration_s: float
    cause: str | None
    details: str = ""
    skipped_means: str = "skipped"


def render_junit(results: RunResults) -> str:
    """Times are wall time: the pipeline's steps run in parallel, so their durations do not add up to the run's."""
    root = ET.Element("testsuites", name="dbstack")
    suites = [_suite(PIPELINE_SUITE, _pipeline_cases(results), results.started_at, _pipeline_wall_s(results))]
    suites += [
        _suite(f"smoke {d.key}", [_check_case(c, d) for c in d.checks], results.smoke_started_at or results.started_at)
        for d in results.databases
        if d.checks
    ]
    if results.upgrade is not None:
        suites.append(_suite(UPGRADE_SUITE, _upgrade_cases(results, results.upgrade), results.started_at))
    if results.backups:
        backups = [_backup_case(b) for b in results.backups]
        suites.append(_suite(BACKUP_SUITE, backups, results.started_at))
    for suite in suites:
        root.append(suite)
    for counter in ("tests", "failures", "errors", "skipped"):
        root.set(counter, str(sum(int(s.get(counter, "0")) for s in suites)))
    run_wall = _span(results.started_at, results.ended_at) if results.ended_at is not None else None
    root.set("time", _seconds(run_wall if run_wall is not None else max(float(s.get("time", "0")) for s in suites)))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _pipeline_cases(results: RunResults) -> list[Case]:
    cases = [_step_case(s) for s in results.steps]
    smoke_duration = _span(results.smoke_started_at, results.smoke_ended_at)
    cases.append(Case("pipeline.smoke", SMOKE_TITLE, results.smoke_outcome, smoke_duration, results.smoke_cause))
    return cases


def _step_case(step: StepResult) -> Case:
    classname = f"pipeline.{step.kind}" + (f".{step.database}" if step.database else "")
    details = ""
    if step.diagnostics:
        details = "Diagnostics:\n" + "\n".join(f"  {path}" for path in step.diagnostics)
    if step.attempts > 1:
        details = f"Attempts: {step.attempts}\n{details}"
    return Case(classname, step.title, step.outcome, step.duration_s or 0.0, step.cause, details, STEP_SKIPPED_REASON)


def _backup_case(backup: BackupResult) -> Case:
    """One case per database: backed up, restored into a new Cluster, its markers read back from it."""
    name = f"{backup.title}: {backup.method} backup, restore, markers read back" if backup.method else backup.title
    details = ""
    if backup.method:
        details = (
            f"Backup {backup.backup} (policy {backup.policy}): {backup.size or '-'} in {backup.duration or '-'}\n"
            f"Restored cluster {backup.restored}; markers written {backup.markers_written.value}, "
            f"read back {backup.markers_read_back.value}"
        )
    took = (backup.backup_s or 0.0) + (backup.restore_s or 0.0)
    return Case(f"backup.{backup.database}", name, backup.outcome, took, backup.cause, details)


def _check_case(check: CheckResult, database: DatabaseResult) -> Case:
    return Case(f"smoke.{database.key}", check.name, check.outcome, check.duration_s, check.message)


def _upgrade_cases(results: RunResults, upgrade: UpgradeResults) -> list[Case]:
    """One case per database: did its data survive the upgrade? (The marker steps are pipeline steps.)"""
    cases = []
    titles = {d.key: d.title for d in results.databases}
    for survival in upgrade.survival:
        title = titles.get(survival.database, survival.database)
        cases.append(
            Case(f"upgrade.{survival.database}", f"{title} {SURVIVED}", survival.outcome, 0.0, survival.message)
        )
    return cases


def _span(start: float | None, end: float | None) -> float:
    return end - start if start is not None and end is not None else 0.0


def _pipeline_wall_s(results: RunResults) -> float:
    """From the first step's start to the last end among the steps and the smoke suite."""
    spans = [(s.started_at, s.ended_at) for s in results.steps]
    spans.append((results.smoke_started_at, results.smoke_ended_at))
    starts = [start for start, _ in spans if start is not None]
    ends = [end for _, end in spans if end is not None]
    return max(ends) - min(starts) if starts and ends else 0.0


def _suite(name: str, cases: list[Case], started_at: float, wall_s: float | None = None) -> ET.Element:
    """`wall_s`: the suite's wall time when its cases overlap; else they ran one after another and add up."""
    suite = ET.Element("testsuite", name=name)
    for case in cases:
        suite.append(_testcase(case))
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.outcome in FAILED_OUTCOMES)))
    suite.set("errors", str(sum(1 for c in cases if c.outcome is Outcome.CANCELLED)))
    suite.set("skipped", str(sum(1 for c in cases if c.outcome in (Outcome.SKIPPED, Outcome.NOT_RUN))))
    suite.set("time", _seconds(wall_s if wall_s is not None else sum(c.duration_s for c in cases)))
    suite.set("timestamp", datetime.fromtimestamp(started_at, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return suite


def _testcase(case: Case) -> ET.Element:
    element = ET.Element("testcase", classname=case.classname, name=case.name, time=_seconds(case.duration_s))
    cause = (case.cause or "").strip()
    if case.outcome in FAILED_OUTCOMES:
        message = first_line(cause) or case.outcome.value.replace("_", " ")
        child = ET.SubElement(element, "failure", message=message, type=case.outcome.value)
        child.text = "\n\n".join(part for part in (cause, case.details) if part) or message
    elif case.outcome is Outcome.CANCELLED:
        child = ET.SubElement(element, "error", message=first_line(cause) or "cancelled", type="cancelled")
        child.text = "\n\n".join(part for part in (cause, case.details) if part) or "cancelled"
    elif case.outcome is Outcome.SKIPPED:
        ET.SubElement(element, "skipped", message=first_line(cause) or case.skipped_means)
    elif case.outcome is Outcome.NOT_RUN:
        ET.SubElement(element, "skipped", message=first_line(cause) or NOT_RUN_REASON)
    return element


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"
