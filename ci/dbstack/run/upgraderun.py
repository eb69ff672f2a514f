"""An upgrade test as one run: the base deployed, then the upgrade stage (marker data written through the smoke
suite, the changed releases upgraded, the markers read back), then the whole smoke suite, in one Results whose
steps hold both phases and whose `upgrade` says what survived.

The smoke suite is the caller's: the Dagger layer runs the stage's marker steps (`markers`) and the suite
(`after_upgrade`) in containers. The host CLI cannot (it has neither the clients nor the in-cluster DNS): its
stage has no marker steps (plan/upgrade.py NO_MARKERS), and the Results say that nothing was checked and why.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from dbstack.plan.upgrade import Action, UpgradePlan, marker_step_id
from dbstack.run.orchestrator import MarkerRunner, new_results, run_plan
from dbstack.run.progress import Progress
from dbstack.run.results import (
    DatabaseResult,
    Outcome,
    ReleaseChangeResult,
    RunResults,
    StepResult,
    Survival,
    UpgradeResults,
)
from dbstack.run.runner import Runner
from dbstack.text import first_line

SmokeRun = Callable[[RunResults], Awaitable[None]]
"""Runs the smoke suite against the Results' ready databases and records its checks and outcome on them."""
BASE_FAILED = "not run: the base deployment did not succeed"
ENABLED_BY_CHANGE = "enabled by the change: it had no data before the upgrade"
NOT_READ_BACK = "its markers were not read back: {cause}"


def upgrade_record(upgrade: UpgradePlan) -> UpgradeResults:
    return UpgradeResults(
        base_values=upgrade.base_values,
        changes=[
            ReleaseChangeResult(r.id, r.name, r.database, r.action.value, r.before, r.after, list(r.diff))
            for r in upgrade.releases
        ],
        cautions=list(upgrade.cautions),
    )


def unstarted(upgrade: UpgradePlan, cluster_kind: str, started_at: float, no_markers: str) -> RunResults:
    """Results of an upgrade test whose cluster never came up: both phases not run."""
    base = new_results(upgrade.base, cluster_kind, started_at)
    stage = new_results(upgrade.stage, cluster_kind, started_at)
    for step in stage.steps:
        step.cause = BASE_FAILED
    results = _merged(base, stage, upgrade_record(upgrade))
    if results.upgrade is not None:
        results.upgrade.survival = _survival(upgrade, results, no_markers)
    return results


async def run_upgrade(
    upgrade: UpgradePlan,
    runner: Runner,
    out_dir: Path,
    *,
    cluster_kind: str,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    markers: MarkerRunner | None = None,
    after_upgrade: SmokeRun | None = None,
    no_markers: str = "this run has no smoke suite",
) -> RunResults:
    """Deploy `upgrade.base`, then run `upgrade.stage` (its marker steps through `markers`), then `after_upgrade`
    (the whole smoke suite); return both phases in one Results. A base that fails leaves the stage not run: there
    would be nothing to upgrade. `no_markers` says why a stage without marker steps checked no data."""
    record = upgrade_record(upgrade)
    base = await run_plan(upgrade.base, runner, out_dir, cluster_kind=cluster_kind, progress=progress, clock=clock)
    base_ok = all(s.outcome.ok for s in base.steps) and all(d.outcome is Outcome.PASSED for d in base.databases)
    if base_ok:
        record.started_at = clock()
        stage = await run_plan(
            upgrade.stage, runner, out_dir, cluster_kind=cluster_kind, progress=progress, clock=clock, markers=markers
        )
    else:
        stage = new_results(upgrade.stage, cluster_kind, clock())
        for step in stage.steps:
            step.cause = BASE_FAILED
    results = _merged(base, stage, record)
    if base_ok and after_upgrade is not None:
        await after_upgrade(results)
    record.survival = _survival(upgrade, results, no_markers)
    results.ended_at = clock()
    return results


def _merged(base: RunResults, stage: RunResults, record: UpgradeResults) -> RunResults:
    """One Results: both phases' steps, the change's databases (failed when either phase failed them), and the
    checks the marker steps added to each."""
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


def _survival(upgrade: UpgradePlan, results: RunResults, no_markers: str) -> list[Survival]:
    """Per database of the change: its `upgrade:markers-verify:<database>` step passed (the markers read back as
    written), failed (with the check's words), or did not run (then why: the upgrade, or the write, failed)."""
    installed = {r.database for r in upgrade.releases if r.action is Action.INSTALL and r.database}
    steps = {s.id: s for s in results.steps}
    out = []
    for database in results.databases:
        if database.key in installed:
            out.append(Survival(database.key, Outcome.SKIPPED, ENABLED_BY_CHANGE))
            continue
        verify = steps.get(marker_step_id("verify", database.key))
        if verify is None:
            out.append(Survival(database.key, Outcome.SKIPPED, f"no marker was written: {no_markers}"))
        elif verify.outcome is Outcome.PASSED:
            out.append(Survival(database.key, Outcome.PASSED))
        elif verify.outcome is Outcome.NOT_RUN:
            out.append(Survival(database.key, Outcome.FAILED, NOT_READ_BACK.format(cause=_unmet(verify, steps))))
        else:
            out.append(Survival(database.key, verify.outcome, first_line(verify.cause) or None))
    return out


def _unmet(step: StepResult, steps: dict[str, StepResult]) -> str:
    """Why a step did not run, in the words of the first step on its way that went wrong itself."""
    seen: set[str] = set()
    while step.outcome is Outcome.NOT_RUN and step.id not in seen:
        seen.add(step.id)
        blocking = next((steps[i] for i in _needs_named(step.cause) if i in steps), None)
        if blocking is None:
            break
        step = blocking
    if step.outcome is Outcome.NOT_RUN:
        return step.cause or "not run"
    return f"{step.title} {step.outcome.value.replace('_', ' ')}: {first_line(step.cause)}"


def _needs_named(cause: str | None) -> list[str]:
    """The step ids in the orchestrator's `not run: <id>, <id> did not succeed`."""
    text = (cause or "").removeprefix("not run: ")
    return text.removesuffix(" did not succeed").split(", ") if text.endswith(" did not succeed") else []
