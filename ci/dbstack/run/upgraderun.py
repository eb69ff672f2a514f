"""An upgrade test as one run: the base deployed, its marker data written, the upgrade stage run, then the markers
read back and the smoke suite run, all in one Results whose steps hold both phases.

The smoke suite's two runs are the caller's: the Dagger layer runs them in containers (`write_markers`,
`after_upgrade`); the host CLI cannot (it has neither the clients nor the in-cluster DNS) and passes none, and the
Results then say that no marker was checked.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from dbstack.plan.upgrade import Action, UpgradePlan
from dbstack.run.orchestrator import new_results, run_plan
from dbstack.run.progress import Progress
from dbstack.run.results import (
    CheckResult,
    DatabaseResult,
    Outcome,
    ReleaseChangeResult,
    RunResults,
    Survival,
    UpgradeResults,
)
from dbstack.run.runner import Runner
from dbstack.text import first_line

SmokeRun = Callable[[RunResults], Awaitable[None]]
"""Runs the smoke suite against the Results' ready databases and records its checks and outcome on them."""
BASE_FAILED = "not run: the base deployment did not succeed"
MARKERS_FAILED = "not run: the marker data could not be written before the upgrade"
NO_MARKERS = "no marker was written: {why}"
ENABLED_BY_CHANGE = "enabled by the change: it had no data before the upgrade"


def upgrade_record(upgrade: UpgradePlan) -> UpgradeResults:
    return UpgradeResults(
        base_values=upgrade.base_values,
        changes=[
            ReleaseChangeResult(r.id, r.name, r.database, r.action.value, r.before, r.after, list(r.diff))
            for r in upgrade.releases
        ],
        cautions=list(upgrade.cautions),
    )


async def run_upgrade(
    upgrade: UpgradePlan,
    runner: Runner,
    out_dir: Path,
    *,
    cluster_kind: str,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    write_markers: SmokeRun | None = None,
    after_upgrade: SmokeRun | None = None,
    is_marker_check: Callable[[CheckResult], bool] | None = None,
    no_markers: str = "this run has no smoke suite",
) -> RunResults:
    """Deploy `upgrade.base`, write the markers, run `upgrade.stage`, then `after_upgrade` (the markers read back and
    the full suite); return both phases in one Results. A base that fails, or markers that cannot be written, leave
    the upgrade not run: there would be nothing to prove it against.

    `is_marker_check` picks, among the checks `after_upgrade` records, the one per database that read its markers
    back: its outcome is whether the database survived the upgrade."""
    record = upgrade_record(upgrade)
    base = await run_plan(upgrade.base, runner, out_dir, cluster_kind=cluster_kind, progress=progress, clock=clock)
    base_ok = all(s.outcome.ok for s in base.steps) and all(d.outcome is Outcome.PASSED for d in base.databases)
    if base_ok and write_markers is not None:
        await _write(record, base, write_markers, clock)
    elif base_ok:
        record.markers_outcome, record.markers_cause = Outcome.SKIPPED, NO_MARKERS.format(why=no_markers)
    if not base_ok or not record.passed:
        stage = new_results(upgrade.stage, cluster_kind, clock())
        for step in stage.steps:
            step.cause = BASE_FAILED if not base_ok else MARKERS_FAILED
        return _merged(base, stage, record)
    record.started_at = clock()
    stage = await run_plan(upgrade.stage, runner, out_dir, cluster_kind=cluster_kind, progress=progress, clock=clock)
    results = _merged(base, stage, record)
    if after_upgrade is not None:
        await after_upgrade(results)
    record.survival = _survival(upgrade, results, is_marker_check, record)
    results.ended_at = clock()
    return results


async def _write(record: UpgradeResults, base: RunResults, write_markers: SmokeRun, clock: Callable[[], float]) -> None:
    """Run the marker writers against the base; what they recorded becomes the record's, and the base's smoke
    fields are left as they were (the suite's own run comes after the upgrade)."""
    record.markers_started_at = clock()
    await write_markers(base)
    record.markers_ended_at = clock()
    failed = [
        f"{d.key}: {first_line(c.message) or c.name}" for d in base.databases for c in d.checks if not c.outcome.ok
    ]
    record.markers_outcome = base.smoke_outcome
    record.markers_cause = "; ".join(failed) or base.smoke_cause
    if record.markers_outcome is Outcome.NOT_RUN and record.markers_cause is None:
        record.markers_cause = "the marker writers did not run"
    if record.markers_outcome is Outcome.SKIPPED:
        # A suite that wrote nothing proves nothing survived.
        record.markers_outcome = Outcome.FAILED
        record.markers_cause = record.markers_cause or "the smoke suite wrote no marker"
    for database in base.databases:
        database.checks, database.warnings = [], []
    base.smoke_outcome, base.smoke_cause = Outcome.NOT_RUN, None
    base.smoke_started_at = base.smoke_ended_at = None


def _merged(base: RunResults, stage: RunResults, record: UpgradeResults) -> RunResults:
    """One Results: both phases' steps, the change's databases (failed when either phase failed them)."""
    before = {d.key: d for d in base.databases}
    databases: list[DatabaseResult] = []
    for database in stage.databases:
        old = before.get(database.key)
        if old is not None and old.outcome is not Outcome.PASSED:
            database.outcome = old.outcome
        if old is not None and database.ready_after_s is None and database.outcome is Outcome.PASSED:
            database.ready_after_s = old.ready_after_s
        databases.append(database)
    return RunResults(
        run_id=base.run_id,
        started_at=base.started_at,
        ended_at=stage.ended_at,
        cluster_kind=base.cluster_kind,
        profile=stage.profile,
        namespace=stage.namespace,
        versions=stage.versions,
        steps=[*base.steps, *stage.steps],
        installed_versions={**base.installed_versions, **stage.installed_versions},
        databases=databases,
        upgrade=record,
    )


def _survival(
    upgrade: UpgradePlan,
    results: RunResults,
    is_marker_check: Callable[[CheckResult], bool] | None,
    record: UpgradeResults,
) -> list[Survival]:
    installed = {r.database for r in upgrade.releases if r.action is Action.INSTALL and r.database}
    out = []
    for database in results.databases:
        if database.key in installed:
            out.append(Survival(database.key, Outcome.SKIPPED, ENABLED_BY_CHANGE))
            continue
        if record.markers_outcome is Outcome.SKIPPED:
            out.append(Survival(database.key, Outcome.SKIPPED, record.markers_cause))
            continue
        found = [c for c in database.checks if is_marker_check is not None and is_marker_check(c)]
        if not found:
            why = (
                f"its Cluster did not come back after the upgrade ({database.outcome.value})"
                if database.outcome is not Outcome.PASSED
                else "no check read its markers back"
            )
            out.append(Survival(database.key, Outcome.FAILED, why))
            continue
        failed = [c for c in found if not c.outcome.ok]
        outcome = Outcome.FAILED if failed else found[0].outcome
        out.append(Survival(database.key, outcome, first_line((failed or found)[0].message) or None))
    return out
