"""`dbstack plan --base-values DIR` (the upgrade plan) and `dbstack upgrade-test` (the upgrade on your cluster, with
kubectl and helm from PATH: no smoke suite and no marker data, which need `dagger call upgrade-test`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import anyio

from dbstack.cli.host import (
    PreflightFailed,
    _checked_host,
    _checked_inputs,
    _finish,
    _preflight_results,
    _saved,
    _write_quietly,
)
from dbstack.cli.main import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE, values_dir
from dbstack.plan.model import Step, StepKind
from dbstack.plan.upgrade import NO_MARKERS, WITH_MARKERS, Action, MarkerOptions, UpgradePlan, load_upgrade_plan
from dbstack.run.progress import make_progress
from dbstack.run.results import RunResults
from dbstack.run.runner import Runner
from dbstack.run.upgraderun import run_upgrade

HOST_NO_MARKERS = (
    "dbstack upgrade-test on the host cannot run the smoke suite that writes and reads them (it needs the "
    "databases' clients and in-cluster DNS); run `dagger call upgrade-test --kubeconfig ...` for that"
)
CLUSTER_KIND = "existing"


def _load(args: argparse.Namespace, markers: MarkerOptions = WITH_MARKERS) -> UpgradePlan:
    base: Path = args.base_values
    return load_upgrade_plan(
        base, values_dir(args), args.profile, args.overrides, base_label=str(base), markers=markers
    )


def print_upgrade_plan(args: argparse.Namespace) -> int:
    upgrade = _load(args)
    if args.json:
        print(json.dumps(upgrade.to_json(), indent=2))
        return EXIT_OK
    print(upgrade_text(upgrade))
    return EXIT_OK


def upgrade_text(upgrade: UpgradePlan) -> str:
    """The upgrade plan for people: each release and what changes in what Helm receives, then the steps."""
    stage = upgrade.stage
    lines = [
        f"Upgrade plan for namespace {stage.namespace} (profile {stage.profile or 'none'}): "
        f"the base from {upgrade.base_values}, then the change",
        "Releases (the values Helm receives, after profiles and --set):",
    ]
    width = max((len(r.name) for r in upgrade.releases), default=10)
    for r in upgrade.releases:
        if r.action is Action.UNCHANGED:
            what = f"unchanged ({r.after})"
        elif r.action is Action.UPGRADE:
            what = f"upgrade: {r.before} -> {r.after}"
        elif r.action is Action.INSTALL:
            what = f"install: {r.after} (enabled by the change)"
        else:
            what = f"left as it is: {r.before} (disabled by the change; an upgrade deletes nothing)"
        lines.append(f"  {r.name:<{width}}  {what}")
        lines += [f"  {'':<{width}}    {line}" for line in r.diff]
    if upgrade.cautions:
        lines.append("Cautions (what only the cluster can tell):")
        lines += [f"  {caution}" for caution in upgrade.cautions]
    lines.append("Steps:")
    lines.append(f" 1. Deploy the base: the {len(upgrade.base.steps)} steps `dbstack plan --values BASE` prints")
    number = 1
    for step in stage.steps:
        number += 1
        lines += _step_lines(number, step)
    if not any(s.kind is not StepKind.MARKERS for s in stage.steps):
        lines.append("    (nothing to upgrade: every release is unchanged)")
    lines.append(f"{number + 1:2}. Run the whole smoke suite (dagger call upgrade-test; the host CLI runs none)")
    return "\n".join(lines)


def _step_lines(number: int, step: Step) -> list[str]:
    after = f" (after {', '.join(step.needs)})" if step.needs else ""
    lines = [f"{number:2}. {step.title}{after}"]
    if step.markers is not None:
        lines.append(f"      runs:      the smoke suite's marker check, SMOKE_MARKERS={step.markers.phase}")
    lines += [f"      run:       {command}" for command in step.commands]
    lines += [f"      done when: {wait.command(step.timeout_s)}" for wait in step.done_when]
    if step.watch is not None:
        lines.append(
            f"      fails on:  Cluster {', '.join(step.watch.fail_phases)}; pods "
            f"{', '.join(step.watch.stuck_reasons)}; first waits for the new generation to be observed, "
            "then for every component's upToDate"
        )
    return lines


def upgrade_test(args: argparse.Namespace, runner: Runner | None = None) -> int:
    """Deploy the base and upgrade it in place with `runner`, by default kubectl and helm from PATH."""
    upgrade = _load(args, NO_MARKERS)
    out: Path = args.out
    shown = _checked_inputs(args, out)
    progress = make_progress(getattr(args, "progress", "auto"), shown=shown)

    async def main() -> RunResults:
        host = runner or await _checked_host(args)
        return await run_upgrade(
            upgrade, host, out, cluster_kind=CLUSTER_KIND, progress=progress, no_markers=HOST_NO_MARKERS
        )

    try:
        results = anyio.run(main)
    except PreflightFailed as exc:
        print(f"dbstack upgrade-test: {shown(str(exc))}", file=sys.stderr)
        _write_quietly(_preflight_results(upgrade.base, str(exc)), out, shown)
        print(f"upgrade-test failed before it started; reports in {out}")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        saved = _saved(out)
        if saved is not None:
            _finish(saved, out, shown, verdict="interrupted", command="upgrade-test")
        else:
            print("upgrade-test interrupted before it started", file=sys.stderr)
        return EXIT_INTERRUPTED
    _finish(results, out, shown, command="upgrade-test")
    return EXIT_OK if results.passed else EXIT_FAILED
