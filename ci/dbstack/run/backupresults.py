"""The backup stage's outcome per database, from its steps' results: what the reports show about it."""

from __future__ import annotations

from collections.abc import Mapping

from dbstack.plan.model import BackupCase, Plan
from dbstack.run.results import BackupResult, Outcome, StepResult
from dbstack.text import first_line

STAGE_STEPS = ("markers-write", "backup", "restore", "markers-verify", "markers-clean", "backup-cleanup")
"""Each database's steps, in the order a failure among them is the one to report."""


def backup_results(plan: Plan, steps: Mapping[str, StepResult]) -> list[BackupResult]:
    return [_one(case, steps) for case in plan.backups]


def _one(case: BackupCase, steps: Mapping[str, StepResult]) -> BackupResult:
    result = BackupResult(
        database=case.database,
        title=case.title,
        method=case.method,
        backup=case.backup,
        policy=case.policy,
        restored=case.restored,
    )
    if case.method is None:
        result.outcome, result.cause = Outcome.SKIPPED, case.reason
        return result
    own = {name: steps.get(f"{name}:{case.database}") for name in STAGE_STEPS}
    backup, restore = own["backup"], own["restore"]
    if backup is not None and backup.outcome is Outcome.PASSED:
        result.backup_s = backup.duration_s
        result.size = backup.facts.get("size")
        result.duration = backup.facts.get("duration")
    if restore is not None and restore.outcome is Outcome.PASSED:
        result.restore_s = restore.duration_s
    result.markers_written = _outcome(own["markers-write"])
    result.markers_read_back = _outcome(own["markers-verify"])
    failed = next(((name, s) for name, s in own.items() if s is not None and not s.outcome.ok), None)
    if failed is None:
        result.outcome = Outcome.PASSED if all(s is not None for s in own.values()) else Outcome.NOT_RUN
        return result
    name, step = failed
    result.outcome = step.outcome
    result.cause = f"{name}: {first_line(step.cause or step.outcome.value)}"
    return result


def _outcome(step: StepResult | None) -> Outcome:
    return step.outcome if step is not None else Outcome.NOT_RUN
