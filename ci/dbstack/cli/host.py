"""`dbstack deploy` and `dbstack teardown`: the pipeline on an existing cluster, with kubectl and helm from PATH."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from dbstack.cli.main import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    prepare_out,
    values_dir,
)
from dbstack.config.kubeconfig import KubeconfigError, read_kubeconfig
from dbstack.config.problems import InvalidInput, Problem
from dbstack.config.validate import validate
from dbstack.masking import Masker
from dbstack.plan.backup import ON_EXISTING
from dbstack.plan.build import build_plan, build_teardown_plan
from dbstack.plan.model import Command, Plan
from dbstack.run.hostrunner import HostRunner, ToolMissing
from dbstack.run.kube import parse_json
from dbstack.run.orchestrator import RESULTS_FILE, new_results, run_plan
from dbstack.run.progress import make_progress
from dbstack.run.results import Outcome, RunResults, StepResult
from dbstack.run.runner import Runner
from dbstack.text import first_line, printable

CLUSTER_KIND = "existing"
MIN_KUBECTL_MINOR = 31
"""`kubectl wait --for=create` (waiting for an object a controller creates later) arrived in kubectl 1.31."""
MIN_HELM = (3, 13)
"""`helm uninstall --ignore-not-found` (teardown that tolerates what is gone) arrived in helm 3.13."""
PREFLIGHT_STEP = "preflight"
SMOKE_NOT_RUN = (
    "dbstack deploy does not run the smoke suite (it needs the database clients and in-cluster DNS); "
    "run it with `dagger call deploy-and-test`"
)


class PreflightFailed(Exception):
    """The host cannot run the pipeline: a tool is missing or too old, or the cluster does not answer."""


async def preflight(runner: HostRunner) -> None:
    """What ApeRAG's scripts check first (kubectl, helm, the cluster answering), plus kubectl's and helm's versions."""
    try:
        runner.require()
    except ToolMissing as exc:
        raise PreflightFailed(str(exc)) from None
    version = await runner.run(Command(("kubectl", "version", "-o", "json")), timeout_s=30)
    data = parse_json(version.stdout)
    minor = _kubectl_minor(data)
    if minor is not None and minor < MIN_KUBECTL_MINOR:
        raise PreflightFailed(
            f"kubectl 1.{minor} is too old: 1.{MIN_KUBECTL_MINOR}+ is needed (kubectl wait --for=create)"
        )
    if not version.ok or not isinstance(data, Mapping) or "serverVersion" not in data:
        reason = first_line(version.stderr) or (
            "kubectl version printed no server version" if version.stdout.strip() else "kubectl version printed nothing"
        )
        raise PreflightFailed(f"the cluster does not answer: {reason} (check --kubeconfig and the current context)")
    await _check_helm(runner)


def _kubectl_minor(data: Any) -> int | None:
    """kubectl's own minor version from `kubectl version -o json`, None when it does not say."""
    client = data.get("clientVersion") if isinstance(data, Mapping) else None
    minor = str(client.get("minor", "")).rstrip("+") if isinstance(client, Mapping) else ""
    return int(minor) if minor.isdigit() else None


async def _check_helm(runner: HostRunner) -> None:
    done = await runner.run(Command(("helm", "version", "--template={{.Version}}")), timeout_s=30)
    found = re.match(r"v?(\d+)\.(\d+)", done.stdout.strip()) if done.ok else None
    needed = ".".join(map(str, MIN_HELM))
    if found is None:
        said = first_line(done.stderr) or first_line(done.stdout) or "no output"
        raise PreflightFailed(f"could not read helm's version ({said}); helm {needed}+ is needed")
    major, minor = int(found[1]), int(found[2])
    if (major, minor) < MIN_HELM:
        raise PreflightFailed(
            f"helm {major}.{minor} is too old: {needed}+ is needed (helm uninstall --ignore-not-found)"
        )


async def _checked_host(args: argparse.Namespace) -> HostRunner:
    host = HostRunner(args.kubeconfig)
    await preflight(host)
    return host


class Shown:
    """What the command prints of a tool's words: masked like the reports (the kubeconfig's credentials included)
    and printable."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self.secrets = secrets
        self._masker = Masker(secrets)

    def __call__(self, text: str) -> str:
        return self._masker(printable(text))


def _checked_inputs(args: argparse.Namespace, out: Path) -> Shown:
    """The kubeconfig and the report folder, checked before any tool runs; one line and exit 2 when unusable."""
    secrets: tuple[str, ...] = ()
    if args.kubeconfig is not None:
        try:
            secrets = read_kubeconfig(args.kubeconfig)
        except KubeconfigError as exc:
            raise CliError(f"--kubeconfig {args.kubeconfig}: {exc}") from None
    prepare_out(out)
    return Shown(secrets)


def _run_on_cluster(plan: Plan, args: argparse.Namespace, runner: Runner | None, out: Path, shown: Shown) -> RunResults:
    """Run a deploy or teardown plan with `runner`, by default kubectl and helm from PATH (raises PreflightFailed)."""
    progress = make_progress(getattr(args, "progress", "auto"), shown=shown)

    async def main() -> RunResults:
        host = runner or await _checked_host(args)
        return await run_plan(plan, host, out, cluster_kind=CLUSTER_KIND, progress=progress)

    return anyio.run(main)


def deploy(args: argparse.Namespace, runner: Runner | None = None) -> int:
    """Deploy with `runner`, by default kubectl and helm from PATH (checked first)."""
    config = validate(values_dir(args), args.profile, args.overrides).config
    if config.backup.enabled:
        # Its markers are written and read back by the smoke suite, which runs only in the Dagger module.
        where = config.where("backup.enabled")
        raise InvalidInput(
            [
                Problem(
                    where.file,
                    where.line,
                    "backup.enabled",
                    "dbstack deploy runs no smoke suite, which writes and reads back the backup stage's markers",
                    "false here; the stage runs with `dagger call deploy-and-test`",
                )
            ]
        )
    plan = build_plan(config, ON_EXISTING)
    out: Path = args.out
    shown = _checked_inputs(args, out)
    try:
        results = _run_on_cluster(plan, args, runner, out, shown)
    except PreflightFailed as exc:
        print(f"dbstack deploy: {shown(str(exc))}", file=sys.stderr)
        _write_quietly(_preflight_results(plan, str(exc)), out, shown)
        print(f"deploy failed before it started; reports in {out}")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        saved = _saved(out)
        if saved is not None:
            _finish(saved, out, shown, verdict="interrupted")
        else:
            print("deploy interrupted before it started", file=sys.stderr)
        return EXIT_INTERRUPTED
    _finish(results, out, shown)
    return EXIT_OK if results.passed else EXIT_FAILED


def teardown(args: argparse.Namespace, runner: Runner | None = None) -> int:
    """Tear down with `runner`, by default kubectl and helm from PATH (checked first)."""
    config = validate(values_dir(args), args.profile, args.overrides).config
    plan = build_teardown_plan(config, remove_kubeblocks=args.all)
    out: Path = getattr(args, "out", None) or Path("reports") / "teardown"
    shown = _checked_inputs(args, out)
    try:
        results = _run_on_cluster(plan, args, runner, out, shown)
    except PreflightFailed as exc:
        print(f"dbstack teardown: {shown(str(exc))}", file=sys.stderr)
        failed = _preflight_results(plan, str(exc))
        (out / RESULTS_FILE).write_text(json.dumps(_masked_json(failed, shown), indent=2), encoding="utf-8")
        print(f"teardown failed before it started; details in {out / RESULTS_FILE}")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        print(f"interrupted; results so far are in {out / RESULTS_FILE}", file=sys.stderr)
        return EXIT_INTERRUPTED
    failed_steps = [s for s in results.steps if not s.outcome.ok]
    for step in failed_steps:
        _say_what_went_wrong(step, shown)
    print(f"teardown {'failed' if failed_steps else 'done'}; details in {out / RESULTS_FILE}")
    return EXIT_FAILED if failed_steps else EXIT_OK


def _preflight_results(plan: Plan, cause: str) -> RunResults:
    """Results of a run the host could not start: a failed preflight step, every plan step not run."""
    now = time.time()
    results = new_results(plan, CLUSTER_KIND, now)
    results.ended_at = now
    for step in results.steps:
        step.cause = f"not run: {PREFLIGHT_STEP} failed"
    check = StepResult(
        id=PREFLIGHT_STEP,
        title="Check kubectl, helm and the cluster",
        kind=PREFLIGHT_STEP,
        database=None,
        outcome=Outcome.FAILED,
        started_at=now,
        ended_at=now,
        cause=cause,
    )
    results.steps.insert(0, check)
    return results


def _masked_json(results: RunResults, shown: Shown) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shown(json.dumps(results.to_json())))
    return data


def _write_quietly(results: RunResults, out: Path, shown: Shown) -> None:
    """results.json, and the reports when the report package is there, without printing anything."""
    out.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("dbstack.report") is not None:
        from dbstack.report import write_reports
        from dbstack.report.folder import links_from_env

        links, _ = links_from_env(os.environ)
        write_reports(results, out, shown.secrets, links)
    else:
        (out / RESULTS_FILE).write_text(json.dumps(_masked_json(results, shown), indent=2), encoding="utf-8")


def _say_what_went_wrong(step: StepResult, shown: Shown) -> None:
    print(shown(f"{step.id}: {step.outcome.value}: {first_line(step.cause or '')}"), file=sys.stderr)


def _saved(out: Path) -> RunResults | None:
    path = out / RESULTS_FILE
    if not path.is_file():
        return None
    return RunResults.from_json(json.loads(path.read_text(encoding="utf-8")))


def _finish(results: RunResults, out: Path, shown: Shown, verdict: str | None = None, command: str = "deploy") -> None:
    """Record that the smoke suite was not run, write the reports, and say where they are."""
    if results.smoke_outcome is Outcome.NOT_RUN and all(d.outcome is Outcome.PASSED for d in results.databases):
        results.smoke_outcome, results.smoke_cause = Outcome.SKIPPED, SMOKE_NOT_RUN
    _write_quietly(results, out, shown)
    for step in results.steps:
        if not step.outcome.ok and step.outcome is not Outcome.NOT_RUN:
            _say_what_went_wrong(step, shown)
    for database in results.databases:
        if database.outcome is Outcome.PASSED:
            print(f"{database.key:14} ready: {database.host}:{database.port} (Secret {database.secret or 'none'})")
    verdict = verdict or ("passed" if results.passed else "failed")
    print(f"{command} {verdict}; reports in {out}")
