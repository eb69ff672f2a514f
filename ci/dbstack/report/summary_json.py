"""summary.json: the run in a versioned, documented shape for tools (docs/reports.md describes every field)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from dbstack.report.verdict import CheckCounts, database_ready, headline, verdict
from dbstack.run.results import BackupResult, DatabaseResult, Outcome, RunResults, StepResult
from dbstack.text import first_line

SUMMARY_SCHEMA_VERSION = 1


def iso_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _offset(timestamp: float | None, start: float) -> float | None:
    return None if timestamp is None else round(timestamp - start, 3)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def render_summary(results: RunResults) -> dict[str, Any]:
    checks = CheckCounts.of(results.databases)
    ready = sum(1 for d in results.databases if database_ready(d))
    duration = None if results.ended_at is None else results.ended_at - results.started_at
    return {
        "schemaVersion": SUMMARY_SCHEMA_VERSION,
        "passed": results.passed,
        "verdict": verdict(results),
        "headline": headline(results),
        "run": {
            "id": results.run_id,
            "startedAt": iso_time(results.started_at),
            "endedAt": iso_time(results.ended_at),
            "durationSeconds": _rounded(duration),
            "clusterKind": results.cluster_kind,
            "profile": results.profile,
            "namespace": results.namespace,
            "versions": dict(sorted(results.versions.items())),
            "installedVersions": dict(sorted(results.installed_versions.items())),
        },
        "totals": {
            "steps": _outcome_counts(s.outcome for s in results.steps),
            "databases": {"total": len(results.databases), "ready": ready, "notReady": len(results.databases) - ready},
            "checks": _check_counts(checks),
        },
        "steps": [_step(s, results.started_at) for s in results.steps],
        "smoke": {
            "outcome": results.smoke_outcome.value,
            "cause": results.smoke_cause,
            "startSeconds": _offset(results.smoke_started_at, results.started_at),
            "durationSeconds": _rounded(
                None
                if results.smoke_started_at is None or results.smoke_ended_at is None
                else results.smoke_ended_at - results.smoke_started_at
            ),
        },
        "databases": [_database(d, results) for d in results.databases],
        "upgrade": _upgrade(results),
        "backups": [_backup(b) for b in results.backups],
    }


def _upgrade(results: RunResults) -> dict[str, Any] | None:
    upgrade = results.upgrade
    if upgrade is None:
        return None
    return {
        "baseValues": upgrade.base_values,
        "startSeconds": _offset(upgrade.started_at, results.started_at),
        "releases": [
            {
                "id": c.id,
                "name": c.name,
                "database": c.database,
                "action": c.action,
                "before": c.before,
                "after": c.after,
                "diff": list(c.diff),
            }
            for c in upgrade.changes
        ],
        "cautions": list(upgrade.cautions),
        "survival": [
            {"database": s.database, "outcome": s.outcome.value, "message": s.message} for s in upgrade.survival
        ],
    }


def _backup(backup: BackupResult) -> dict[str, Any]:
    return {
        "database": backup.database,
        "title": backup.title,
        "method": backup.method,
        "outcome": backup.outcome.value,
        "cause": first_line(backup.cause) or None,
        "backup": backup.backup,
        "backupPolicy": backup.policy,
        "restoredCluster": backup.restored,
        "backupSeconds": _rounded(backup.backup_s),
        "size": backup.size,
        "reportedDuration": backup.duration,
        "restoreSeconds": _rounded(backup.restore_s),
        "markersWritten": backup.markers_written.value,
        "markersReadBack": backup.markers_read_back.value,
    }


def _outcome_counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts = dict.fromkeys((o.value for o in Outcome), 0)
    for outcome in outcomes:
        counts[outcome.value] += 1
    return counts


def _check_counts(counts: CheckCounts) -> dict[str, int]:
    return {"total": counts.total, "passed": counts.passed, "failed": counts.failed, "skipped": counts.skipped}


def _step(step: StepResult, run_start: float) -> dict[str, Any]:
    return {
        "id": step.id,
        "title": step.title,
        "kind": step.kind,
        "database": step.database,
        "outcome": step.outcome.value,
        "startedAt": iso_time(step.started_at),
        "startSeconds": _offset(step.started_at, run_start),
        "durationSeconds": _rounded(step.duration_s),
        "attempts": step.attempts,
        "cause": step.cause,
        "causeFirstLine": first_line(step.cause) or None,
        "diagnostics": list(step.diagnostics),
        "notes": list(step.notes),
        "stage": step.stage,
        "facts": dict(step.facts),
        "findings": [
            {
                "subject": f.subject,
                "reason": f.reason,
                "message": f.message,
                "event": f.event,
                "logs": list(f.logs),
                "sources": list(f.sources),
            }
            for f in step.findings
        ],
    }


def _database(database: DatabaseResult, results: RunResults) -> dict[str, Any]:
    failing_step = next(
        (
            s
            for s in results.steps
            if s.database == database.key and s.stage is None and s.outcome not in (Outcome.PASSED, Outcome.SKIPPED)
        ),
        None,
    )
    return {
        "key": database.key,
        "title": database.title,
        "outcome": database.outcome.value,
        "ready": database_ready(database),
        "readyAfterSeconds": _rounded(database.ready_after_s),
        "release": database.release,
        "namespace": database.namespace,
        "version": database.version,
        "chartVersion": database.chart_version,
        "mode": database.mode,
        "replicas": database.replicas,
        "service": database.service,
        "host": database.host,
        "port": database.port,
        "secretName": database.secret,
        "cause": (first_line(failing_step.cause) or None) if failing_step else None,
        "warnings": list(database.warnings),
        "checks": {
            **_check_counts(CheckCounts.of([database])),
            "failures": [
                {"name": c.name, "outcome": c.outcome.value, "message": first_line(c.message) or None}
                for c in database.checks
                if not c.outcome.ok
            ],
        },
    }
