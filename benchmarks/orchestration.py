"""How close the orchestrator gets to the fastest possible deployment, against ApeRAG's sequential scripts.

    .venv/bin/python benchmarks/orchestration.py [--out DIR] [--values DIR] [--profile NAME]

Runs the default plan (values/, no profile) on the simulated cluster in virtual time (trio's MockClock), with
the simulator's default latencies (the brief's figures, see dbstack.sim.cluster.Latencies), and then drives the
same simulated cluster the way ApeRAG's deploy/databases scripts do: snapshot support, then KubeBlocks, then each
addon installed and waited on one after another, then all clusters installed back to back and waited on together
in a 10 s polling loop. The last line printed is one JSON object:

- makespan_s: the pipeline's run, first command to last result.
- baseline_s: the same deployment driven like ApeRAG's scripts.
- ratio: makespan_s / baseline_s.
- critical_path_s: the longest chain of dependent latencies in the plan (steps joined by `needs`), each step's
  latency being its install command plus the time until what it installed is ready: no scheduler can beat it.
- notice_delay_s: the longest time from a resource becoming ready (a Cluster Running, an addon's definitions
  Available, KubeBlocks rolled out) to the pipeline moving on.

- upgrade: the upgrade stage of an upgrade test from values/ to a copy with UPGRADE_CHANGE applied (a PostgreSQL
  patch version, a Redis resource change, an Elasticsearch minor version): the base deployed as above, then the
  stage's makespan (its start to its last step's end) against its own critical path, each step's latency being the
  simulator's `upgrade_latency_s` (helm upgrade, KubeBlocks observing the generation, the components taking the
  spec up, the rolling restart).

With a profile that turns the backup stage on (`--profile full`), the run includes it (the simulator's
MarkerRunner stands in for the smoke suite's marker phases, and the CSI hostpath driver, Backups and restores take
sim/backups.py's latencies), its steps count in the critical path, and the baseline is not compared (`baseline_s`
and `ratio` are null: ApeRAG's scripts take no backups).

Targets: makespan <= 1.05 x critical path (the deployment's and the upgrade stage's), notice delay <= 1 s; exit 1
when missed. The pipeline overlaps only
what the plan's `needs` allow, and each `needs` rests on a KubeBlocks fact (see docs/orchestrator.md): addons
wait for KubeBlocks to be rolled out, clusters for their own addon, KubeBlocks for the VolumeSnapshot CRDs.

With --out DIR it also writes the Results (and reports, through dbstack.report) of one successful run into
DIR/success/ and of a run whose PostgreSQL ends Abnormal into DIR/failure/, and of the upgrade test into
DIR/upgrade-success/ and, with PostgreSQL's upgraded pod crash-looping, DIR/upgrade-failure/. A script, not a test.

The simulated Clusters get the components and pods Helm's render of the real 1.0.1 charts gives
(tests/upstream.py, helm-python-sdk from requirements-dev.txt) when ../shared/upstream (or DBSTACK_UPSTREAM) is
there, else the catalog's topology; the JSON says which (`topology`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from dbstack.config.load import load_config
from dbstack.plan.backup import ON_K3S
from dbstack.plan.build import KUBEBLOCKS_DEPLOYMENTS, build_plan
from dbstack.plan.model import Plan, Step, StepKind, kubectl
from dbstack.plan.upgrade import NO_MARKERS, UpgradePlan, load_upgrade_plan
from dbstack.run.kube import parse_json
from dbstack.run.results import Outcome, RunResults, StepResult
from dbstack.sim.backups import SimMarkers
from dbstack.sim.cluster import (
    Failure,
    Latencies,
    Scenario,
    SimCluster,
    Topology,
    catalog_topology,
    in_virtual_time,
    run_simulated,
    run_upgrade_simulated,
)

REPO = Path(__file__).resolve().parents[1]

LATENCIES = Latencies()
"""Seconds from an install command to ready: the brief's figures, which are the simulator's defaults."""
BASELINE_POLL_S = 10.0
"""ApeRAG's readiness loop: every pod of every release Ready, checked every 10 s."""
MAKESPAN_TARGET = 1.05
NOTICE_TARGET_S = 1.0
SMOKE_NOT_RUN = "simulated cluster: the smoke suite needs real databases"


def topology() -> tuple[str, Topology]:
    """The rendered topology when the upstream charts are there, else the catalog's."""
    sys.path.insert(0, str(REPO / "tests"))
    from upstream import rendered_topology, upstream_available

    if upstream_available():
        return "rendered", rendered_topology
    return "catalog", catalog_topology


def run_pipeline(plan: Plan, scenario: Scenario, out: Path, epoch: float) -> tuple[RunResults, SimCluster]:
    sim = SimCluster(scenario, epoch=epoch)
    markers = SimMarkers(sim) if plan.backups else None
    return run_simulated(plan, sim, out, epoch, markers=markers), sim


# --- ApeRAG's scripts, faithfully sequential -------------------------------------------------------------------


class ScriptFailed(Exception):
    pass


async def _must(sim: SimCluster, argv: tuple[str, ...], stdin: str | None = None, timeout_s: float = 900) -> str:
    from dbstack.plan.model import Command

    done = await sim.run(Command(argv, stdin), timeout_s=timeout_s)
    if not done.ok:
        raise ScriptFailed(f"{' '.join(argv)}: {done.stderr}")
    return done.stdout


async def aperag_scripts(plan: Plan, sim: SimCluster) -> float:
    """Deploy like ApeRAG's deploy/databases scripts; return seconds until the poll loop sees every cluster ready.

    The addon and KubeBlocks waits are given event-driven `kubectl wait`s (the scripts' own waits are at best
    that fast), so the baseline is, if anything, flattered; only the cluster loop polls, every 10 s, as stated.
    """
    started = anyio.current_time()
    by_kind = {kind: [s for s in plan.steps if s.kind is kind] for kind in StepKind}
    snapshot_crds = by_kind[StepKind.SNAPSHOT_CRDS][0]
    for command in snapshot_crds.commands:  # `kubectl create -f` each CRD, as the script does
        url = command.argv[-1]
        await _must(sim, ("kubectl", "create", "-f", url))
    for command in by_kind[StepKind.SNAPSHOT_CONTROLLER][0].commands:
        await _must(sim, command.argv)
    await _must(
        sim, ("kubectl", "rollout", "status", "deployment/snapshot-controller", "-n", "kube-system", "--timeout=120s")
    )
    kubeblocks = by_kind[StepKind.KUBEBLOCKS][0]
    crds = by_kind[StepKind.KUBEBLOCKS_CRDS][0]
    await _must(sim, ("kubectl", "create", "-f", crds.commands[0].argv[-1]))
    # The chart creates KubeBlocks objects, so the CRDs must be Established before `helm install` can map them.
    for wait in crds.done_when:
        await _must(sim, wait.command(300).argv)
    await _must(sim, kubeblocks.commands[0].argv)
    for deployment in KUBEBLOCKS_DEPLOYMENTS:
        await _must(
            sim, ("kubectl", "rollout", "status", f"deployment/{deployment}", "-n", "kb-system", "--timeout=600s")
        )
    for addon in by_kind[StepKind.ADDON]:
        await _must(sim, addon.commands[0].argv)
        for wait in addon.done_when:
            await _must(sim, wait.exists_command(180).argv)
            await _must(sim, wait.command(180).argv)
    clusters = by_kind[StepKind.CLUSTER]
    for cluster in clusters:
        await _must(sim, cluster.commands[0].argv, cluster.commands[0].stdin)
    pending = {c.id: c for c in clusters}
    while pending:
        for step_id, cluster in list(pending.items()):
            if await _cluster_ready(sim, cluster):
                del pending[step_id]
        if pending:
            await anyio.sleep(BASELINE_POLL_S)
    return anyio.current_time() - started


async def _cluster_ready(sim: SimCluster, cluster: Step) -> bool:
    watch = cluster.watch
    assert watch is not None
    phase = parse_json(
        await _must(
            sim, kubectl("-n", watch.namespace, "get", "clusters.apps.kubeblocks.io", watch.cluster, "-o", "json").argv
        )
    )
    if phase and phase.get("status", {}).get("phase") in watch.fail_phases:
        raise ScriptFailed(f"{watch.cluster} is {phase['status']['phase']}")
    pods = parse_json(
        await _must(sim, kubectl("-n", watch.namespace, "get", "pods", "-l", watch.pod_selector, "-o", "json").argv)
    )
    items = (pods or {}).get("items", [])
    return bool(items) and all(
        any(c.get("type") == "Ready" and c.get("status") == "True" for c in p["status"]["conditions"]) for p in items
    )


def run_baseline(plan: Plan, scenario: Scenario) -> tuple[float, SimCluster]:
    sim = SimCluster(scenario)
    return in_virtual_time(lambda: aperag_scripts(plan, sim)), sim


# --- measures --------------------------------------------------------------------------------------------------


def critical_path_s(plan: Plan, scenario: Scenario, latency: Callable[[Step], float] | None = None) -> float:
    latency = latency or scenario.step_latency_s
    finish: dict[str, float] = {}
    for step in plan.steps:  # plan order puts every step after the steps it needs
        finish[step.id] = max((finish[n] for n in step.needs), default=0.0) + latency(step)
    return max(finish.values())


def _awaited(step: Step) -> list[str]:
    """The simulator's names of what a step waits to become ready."""
    if step.kind in (StepKind.CLUSTER, StepKind.RESTORE) and step.watch:
        return [f"cluster/{step.watch.cluster}"]
    if step.kind is StepKind.ADDON and step.database:
        return [f"clusterdefinition/{step.database}"]
    if step.kind is StepKind.KUBEBLOCKS:
        return [f"deployment/{d}" for d in KUBEBLOCKS_DEPLOYMENTS]
    if step.kind is StepKind.SNAPSHOT_CONTROLLER:
        return ["deployment/snapshot-controller"]
    return [f"crd/{w.resource.removeprefix('crd/')}" for w in step.done_when]


def notice_delay_s(plan: Plan, results: RunResults, sim: SimCluster, epoch: float) -> float:
    ready = sim.ready_times()
    delays = []
    for step, result in zip(plan.steps, results.steps, strict=True):
        awaited = [ready[name] for name in _awaited(step) if name in ready]
        if result.outcome is Outcome.PASSED and result.ended_at is not None and awaited:
            delays.append(result.ended_at - epoch - sim.origin - max(awaited))
    return max(delays)


# --- the upgrade stage ------------------------------------------------------------------------------------------

UPGRADE_CHANGE = (
    ("postgresql.yaml", "version: 16.4.0", "version: 16.9.0"),
    ("redis.yaml", "cpu: 0.5", "cpu: 1"),
    ("elasticsearch.yaml", 'version: "8.8.2"', 'version: "8.15.5"'),
)
"""A patch version bump, a resource change and a minor version bump: three Cluster upgrades, nothing else."""


def upgrade_plan(values: Path, scratch: Path) -> UpgradePlan:
    """The upgrade from `values` to a copy of it with UPGRADE_CHANGE applied."""
    changed = scratch / "changed-values"
    shutil.copytree(values, changed)
    for name, old, new in UPGRADE_CHANGE:
        path = changed / name
        text = path.read_text(encoding="utf-8")
        if old not in text:
            raise SystemExit(f"{path}: {old!r} not found; the benchmark's change no longer fits values/")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    # No marker steps: the simulator holds no data, and their time is the smoke suite's, not the orchestrator's.
    return load_upgrade_plan(values, changed, base_label=str(values), markers=NO_MARKERS)


def upgrade_stage(upgrade: UpgradePlan, results: RunResults) -> tuple[float, list[StepResult]]:
    """The stage's start and its steps' results."""
    record = results.upgrade
    if record is None or record.started_at is None:
        raise SystemExit("the upgrade stage did not run: " + "; ".join(f"{s.id} {s.cause}" for s in results.steps))
    ids = {s.id for s in upgrade.stage.steps}
    return record.started_at, [s for s in results.steps if s.id in ids]


def run_upgrade_pipeline(
    upgrade: UpgradePlan, scenario: Scenario, out: Path, epoch: float
) -> tuple[RunResults, SimCluster]:
    sim = SimCluster(scenario, epoch=epoch)
    return run_upgrade_simulated(upgrade, sim, out, epoch), sim


def write_results(results: RunResults, out: Path) -> str:
    try:
        from dbstack.report import write_reports
    except ImportError:
        (out / "results.json").write_text(json.dumps(results.to_json(), indent=2), encoding="utf-8")
        return "results.json"
    write_reports(results, out)
    return "reports"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None, help="write success/ and failure/ results here")
    parser.add_argument("--values", type=Path, default=REPO / "values", help="values folder (default: values/)")
    parser.add_argument("--profile", default=None, help="profile to layer on top, e.g. full (the backup stage)")
    args = parser.parse_args(argv)

    plan = build_plan(load_config(args.values, args.profile), ON_K3S)
    staged = bool(plan.backups)
    topology_kind, cluster_topology = topology()
    scenario = Scenario(latencies=LATENCIES, topology=cluster_topology)
    epoch = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        success_dir = args.out / "success" if args.out else Path(scratch) / "success"
        results, sim = run_pipeline(plan, scenario, success_dir, epoch)
        if not all(s.outcome.ok for s in results.steps):
            print(
                "the healthy scenario did not pass: "
                + "; ".join(f"{s.id} {s.cause}" for s in results.steps if not s.outcome.ok)
            )
            return 1
        baseline_s, baseline_sim = (None, None) if staged else run_baseline(plan, scenario)
        makespan = (results.ended_at or 0) - results.started_at
        critical = critical_path_s(plan, scenario)
        notice = notice_delay_s(plan, results, sim, epoch)
        if args.out:
            results.smoke_outcome, results.smoke_cause = Outcome.SKIPPED, SMOKE_NOT_RUN
            written = write_results(results, success_dir)
            failed, _ = run_pipeline(
                plan,
                Scenario(latencies=LATENCIES, failures={"postgresql": Failure.ABNORMAL}, topology=cluster_topology),
                args.out / "failure",
                epoch,
            )
            write_results(failed, args.out / "failure")
            print(
                f"wrote {written} of a successful run to {success_dir} and of a failing one to {args.out / 'failure'}"
            )

        upgrade = upgrade_plan(args.values, Path(scratch))
        upgraded, upgrade_sim = run_upgrade_pipeline(upgrade, scenario, Path(scratch) / "upgrade", epoch)
        stage_start, stage_steps = upgrade_stage(upgrade, upgraded)
        if not all(s.outcome.ok for s in stage_steps):
            print("the healthy upgrade did not pass: " + "; ".join(f"{s.id} {s.cause}" for s in stage_steps))
            return 1
        upgrade_makespan = max(s.ended_at or 0 for s in stage_steps) - stage_start
        upgrade_critical = critical_path_s(upgrade.stage, scenario, scenario.upgrade_latency_s)
        if args.out:
            upgraded.smoke_outcome, upgraded.smoke_cause = Outcome.SKIPPED, SMOKE_NOT_RUN
            write_results(upgraded, args.out / "upgrade-success")
            broken = Scenario(
                latencies=LATENCIES, upgrade_failures={"postgresql": Failure.CRASHLOOP}, topology=cluster_topology
            )
            failed_upgrade, _ = run_upgrade_pipeline(upgrade, broken, args.out / "upgrade-failure", epoch)
            write_results(failed_upgrade, args.out / "upgrade-failure")

    summary: dict[str, Any] = {
        "makespan_s": round(makespan, 3),
        "baseline_s": None if baseline_s is None else round(baseline_s, 3),
        "ratio": None if baseline_s is None else round(makespan / baseline_s, 4),
        "critical_path_s": round(critical, 3),
        "notice_delay_s": round(notice, 3),
        "makespan_over_critical_path": round(makespan / critical, 4),
        "targets": {"makespan_over_critical_path": MAKESPAN_TARGET, "notice_delay_s": NOTICE_TARGET_S},
        "commands": {"pipeline": len(sim.calls), "baseline": None if baseline_sim is None else len(baseline_sim.calls)},
        "databases": [d.key for d in results.databases],
        "backups": [b.database for b in results.backups if b.method is not None],
        "topology": topology_kind,
        "upgrade": {
            "change": [f"{name}: {old} -> {new}" for name, old, new in UPGRADE_CHANGE],
            "steps": [s.id for s in upgrade.stage.steps],
            "makespan_s": round(upgrade_makespan, 3),
            "critical_path_s": round(upgrade_critical, 3),
            "makespan_over_critical_path": round(upgrade_makespan / upgrade_critical, 4),
            "commands": len(upgrade_sim.calls),
        },
    }
    met = (
        makespan <= MAKESPAN_TARGET * critical
        and notice <= NOTICE_TARGET_S
        and upgrade_makespan <= MAKESPAN_TARGET * upgrade_critical
    )
    summary["targets_met"] = met
    print(f"pipeline {makespan:.1f} s, critical path {critical:.1f} s (x{makespan / critical:.3f})")
    print(f"notice delay {notice:.2f} s")
    if baseline_s is None:
        print("with the backup stage: no ApeRAG-style baseline (its scripts take no backups)")
    else:
        print(f"ApeRAG-style scripts {baseline_s:.1f} s; pipeline takes {makespan / baseline_s:.0%} of that")
    print(
        f"upgrade stage {upgrade_makespan:.1f} s, critical path {upgrade_critical:.1f} s "
        f"(x{upgrade_makespan / upgrade_critical:.3f}): {', '.join(s.id for s in upgrade.stage.steps)}"
    )
    print(json.dumps(summary))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
