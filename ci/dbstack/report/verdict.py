"""The numbers and the one-line verdict every report shares, derived from Results alone."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dbstack.run.results import DatabaseResult, Outcome, RunResults, StepResult
from dbstack.text import first_line

OUTCOME_WORDS: dict[Outcome, str] = {
    Outcome.PASSED: "passed",
    Outcome.FAILED: "failed",
    Outcome.TIMED_OUT: "timed out",
    Outcome.SKIPPED: "skipped",
    Outcome.NOT_RUN: "not run",
    Outcome.CANCELLED: "cancelled",
}
FAILED_OUTCOMES = (Outcome.FAILED, Outcome.TIMED_OUT)
SMOKE_TITLE = "Run the smoke tests"
"""How every report names the smoke suite when it lists it beside the steps."""
SURVIVED = "survived the upgrade"


@dataclass(frozen=True)
class CheckCounts:
    passed: int
    failed: int
    skipped: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    @classmethod
    def of(cls, databases: list[DatabaseResult]) -> CheckCounts:
        counts = Counter(c.outcome for d in databases for c in d.checks)
        failed = sum(n for outcome, n in counts.items() if not outcome.ok)
        return cls(passed=counts[Outcome.PASSED], failed=failed, skipped=counts[Outcome.SKIPPED])


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def database_ready(database: DatabaseResult) -> bool:
    return database.outcome is Outcome.PASSED


def cancelled(results: RunResults) -> bool:
    return any(s.outcome is Outcome.CANCELLED for s in results.steps) or results.smoke_outcome is Outcome.CANCELLED


def failed_steps(results: RunResults) -> list[StepResult]:
    """Steps that went wrong themselves (not those left unrun because another failed)."""
    return [s for s in results.steps if s.outcome in FAILED_OUTCOMES]


def verdict(results: RunResults) -> str:
    """One line without the emoji: what passed, or what failed first and how much."""
    checks = CheckCounts.of(results.databases)
    if results.passed:
        return _success_line(results, checks)
    parts: list[str] = []
    if cancelled(results):
        parts.append("run cancelled")
    parts += [f"{s.title} {OUTCOME_WORDS[s.outcome]}" for s in failed_steps(results) if s.database is None]
    parts += _database_parts(results.databases)
    parts += _backup_parts(results)
    if checks.failed:
        owners = sorted({d.key for d in results.databases for c in d.checks if not c.outcome.ok})
        parts.append(f"{checks.failed} of {plural(checks.total, 'check')} failed ({', '.join(owners)})")
    elif results.smoke_outcome in FAILED_OUTCOMES:
        cause = first_line(results.smoke_cause)
        parts.append(f"smoke tests {OUTCOME_WORDS[results.smoke_outcome]}" + (f": {cause}" if cause else ""))
    elif not parts and results.smoke_outcome is Outcome.NOT_RUN:
        parts.append("smoke tests not run")
    parts += _upgrade_parts(results)
    return "; ".join(parts) or "run did not pass"


def _upgrade_parts(results: RunResults) -> list[str]:
    upgrade = results.upgrade
    if upgrade is None:
        return []
    lost = [s.database for s in upgrade.survival if s.outcome in FAILED_OUTCOMES]
    if not lost:
        return []
    return [
        f"{len(lost)} of {plural(len(upgrade.survival), 'database')} did not survive the upgrade ({', '.join(lost)})"
    ]


def _success_line(results: RunResults, checks: CheckCounts) -> str:
    count = len(results.databases)
    if count == 0:
        done = sum(1 for s in results.steps if s.outcome.ok)
        return f"no databases enabled, {done} of {plural(len(results.steps), 'step')} done"
    ready = "1 database ready" if count == 1 else f"all {count} databases ready"
    if checks.total == 0:
        return f"{ready}, smoke tests {OUTCOME_WORDS[results.smoke_outcome]}"
    line = f"{ready}, {plural(checks.passed, 'check')} passed"
    line += f", {checks.skipped} skipped" if checks.skipped else ""
    upgrade = results.upgrade
    survived = [s for s in upgrade.survival if s.outcome is Outcome.PASSED] if upgrade else []
    line += f", {len(survived)} of {len(upgrade.survival)} {SURVIVED}" if upgrade and survived else ""
    restored = sum(1 for b in results.backups if b.outcome is Outcome.PASSED)
    return line + (f", {plural(restored, 'backup')} restored and read back" if restored else "")


def _backup_parts(results: RunResults) -> list[str]:
    """The backup stage's databases that did not get through it (their own deployment aside)."""
    total = sum(1 for b in results.backups if b.method is not None)
    failed = [
        b.database
        for b in results.backups
        if b.method is not None and b.outcome in (*FAILED_OUTCOMES, Outcome.CANCELLED)
    ]
    if not failed:
        return []
    return [f"backup and restore failed for {len(failed)} of {plural(total, 'database')} ({', '.join(failed)})"]


def _database_parts(databases: list[DatabaseResult]) -> list[str]:
    total = len(databases)
    broken = [d.key for d in databases if d.outcome in FAILED_OUTCOMES]
    absent = [d.key for d in databases if not database_ready(d) and d.outcome not in FAILED_OUTCOMES]
    parts = []
    if broken:
        parts.append(f"{len(broken)} of {plural(total, 'database')} failed ({', '.join(broken)})")
    if absent:
        parts.append(f"{len(absent)} of {plural(total, 'database')} not deployed ({', '.join(absent)})")
    return parts


def headline(results: RunResults) -> str:
    mark = "✅" if results.passed else ("⏹️" if cancelled(results) else "❌")
    return f"{mark} dbstack: {verdict(results)}"


def without_outcome(outcome: Outcome, cause: str | None) -> str:
    """The cause without a leading repeat of the outcome ("not run: x" shown after "not run" reads twice)."""
    text = (cause or "").strip()
    prefix = f"{OUTCOME_WORDS[outcome]}: "
    return text[len(prefix) :] if text.lower().startswith(prefix) else text
