"""`dbstack`: validate, plan, deploy, upgrade-test, teardown, report, preview-comment, preview-kubeconfig.

Exit codes: 0 ok; 1 the run failed; 2 bad input (values, arguments, paths; nothing was touched); 3 the cluster is
unreachable or the preflight failed; 130 interrupted; 141 stdout closed early (`dbstack plan | head`). Every error
is one line, never a traceback (DBSTACK_DEBUG=1 shows the traceback of an unexpected one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dbstack.config.problems import InvalidInput

if TYPE_CHECKING:
    from dbstack.plan.model import Step

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a command whose reader went away."""
CLUSTER_KINDS = ("k3s", "existing")
"""dbstack.plan.backup.CLUSTER_KINDS, written here so `--help` costs no plan import."""
DEBUG_ENV = "DBSTACK_DEBUG"
DEFAULT_VALUES = Path("values")


class CliError(Exception):
    """One line for the user (without the `dbstack <command>: ` prefix) and the exit code it ends with."""

    def __init__(self, message: str, code: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.code = code


def values_dir(args: argparse.Namespace) -> Path:
    """--values, else ./values; never a folder the user did not name or stand in."""
    if args.values is not None:
        return Path(args.values)
    if DEFAULT_VALUES.is_dir():
        return DEFAULT_VALUES
    raise CliError("no values folder: there is no ./values here; pass --values DIR")


def prepare_out(out: Path, flag: str = "--out") -> Path:
    """Create the report folder `out` (and its parents) or raise CliError saying, in one line, why it cannot be."""
    if out.exists() and not out.is_dir():
        raise CliError(f"{flag} {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{flag} {out}: cannot create the folder: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CliError(f"{flag} {out}: the folder is not writable")
    return out


def _add_values_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--values", type=Path, default=None, help="values folder (default: ./values)")
    parser.add_argument("--profile", default=None, help="profile under values/profiles/ to layer on top, e.g. ci")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pipeline setting, e.g. databases.neo4j.enabled=true (repeatable)",
    )


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, says: str) -> argparse.ArgumentParser:
    """A subcommand whose own --help opens with what the command does, as `dbstack --help` lists it."""
    return sub.add_parser(name, help=says, description=says)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dbstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = _command(sub, "validate", "check values/ before any cluster exists")
    _add_values_args(p)
    p.set_defaults(handler=_validate)

    p = _command(sub, "plan", "print the deployment plan (a dry run)")
    _add_values_args(p)
    p.add_argument("--json", action="store_true", help="print the documented JSON form")
    p.add_argument(
        "--base-values",
        type=Path,
        default=None,
        help="values deployed before the change (e.g. the target branch's values/): print the upgrade plan from them",
    )
    p.add_argument(
        "--cluster",
        choices=CLUSTER_KINDS,
        default=CLUSTER_KINDS[0],
        help="what runs it: the pipeline's k3s (default) or an existing cluster; the backup stage differs",
    )
    p.set_defaults(handler=_plan)

    p = _command(sub, "deploy", "run the plan on an existing cluster with kubectl and helm from PATH")
    _add_values_args(p)
    p.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file (default: kubectl's own)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder for reports and diagnostics")
    p.add_argument("--progress", choices=("auto", "tty", "plain"), default="auto", help="progress display")
    p.set_defaults(handler=_lazy("dbstack.cli.host", "deploy"))

    p = _command(
        sub,
        "upgrade-test",
        "deploy --base-values, upgrade to the values in place, and check every release (no smoke suite)",
    )
    _add_values_args(p)
    p.add_argument("--base-values", type=Path, required=True, help="values to deploy first (the target branch's)")
    p.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file (default: kubectl's own)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder for reports and diagnostics")
    p.add_argument("--progress", choices=("auto", "tty", "plain"), default="auto", help="progress display")
    p.set_defaults(handler=_lazy("dbstack.cli.upgrade", "upgrade_test"))

    p = _command(sub, "teardown", "remove what deploy installed (clusters; with --all, KubeBlocks too)")
    _add_values_args(p)
    p.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file (default: kubectl's own)")
    p.add_argument(
        "--all",
        action="store_true",
        help="also remove the addons, KubeBlocks and its namespace; never the CRDs or snapshot support (deleting "
        "a CRD deletes every object of its kind in the whole cluster)",
    )
    p.set_defaults(handler=_lazy("dbstack.cli.host", "teardown"))

    p = _command(sub, "report", "render a saved results.json into reports again")
    p.add_argument("--results", type=Path, required=True, help="results.json written by a run")
    p.add_argument("--out", type=Path, required=True, help="folder to write junit.xml, summary.* into")
    p.add_argument("--run-url", default=None, help="the CI run's page (https://...), for links in summary.md")
    p.add_argument(
        "--artifact-url", default=None, help="where the reports folder was uploaded (https://...), for links"
    )
    p.set_defaults(handler=_lazy("dbstack.cli.report", "cli_report"))

    p = _command(sub, "preview-comment", "render a pull request's preview comment from a saved results.json")
    p.add_argument("--results", type=Path, default=None, help="results.json written by the preview run")
    p.add_argument("--removed", action="store_true", help="the note for a preview torn down after closing")
    p.add_argument(
        "--expired", action="store_true", help="the note for an open pull request's idle preview the sweep removed"
    )
    p.add_argument("--pr", type=int, required=True, help="pull request number")
    p.add_argument("--head-sha", default=None, help="the commit the preview was built from (the one checked out)")
    p.add_argument("--run-url", default=None, help="link to the workflow run (https://...)")
    p.add_argument("--trace-url", default=None, help="the Dagger Cloud trace of the run, when there is one")
    p.add_argument(
        "--idle-hours", type=float, default=None, help="for the comment's text (default: values' preview.openIdleHours)"
    )
    p.add_argument(
        "--values", type=Path, default=None, help="values folder for --idle-hours' default (default: ./values)"
    )
    p.add_argument("--allow-missing", action="store_true", help="comment 'no results' when the file is absent")
    p.add_argument(
        "--format", choices=("markdown", "json"), default="markdown", help="json: the envelope the publish job posts"
    )
    p.add_argument("--out", type=Path, default=None, help="write the comment here (default: stdout)")
    p.set_defaults(handler=_lazy("dbstack.github.comment", "cli_preview_comment"))

    p = _command(
        sub,
        "preview-kubeconfig",
        "mint a static-token kubeconfig for the preview identity (platform/preview-rbac.yaml) from an admin one",
    )
    p.add_argument("--kubeconfig", type=Path, default=None, help="an admin kubeconfig (default: kubectl's own)")
    p.add_argument("--out", type=Path, required=True, help="where to write the preview kubeconfig (mode 0600)")
    p.set_defaults(handler=_lazy("dbstack.github.platform", "cli_preview_kubeconfig"))
    return parser


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        func: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
        return func(args)

    return handler


def _validate(args: argparse.Namespace) -> int:
    from dbstack.config.validate import validate

    result = validate(values_dir(args), args.profile, args.overrides)
    print(result.summary())
    return EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    import json

    from dbstack.config.validate import validate
    from dbstack.plan.build import build_plan

    if args.base_values is not None:
        return _lazy("dbstack.cli.upgrade", "print_upgrade_plan")(args)
    plan = build_plan(validate(values_dir(args), args.profile, args.overrides).config, args.cluster)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
        return EXIT_OK
    folder = values_dir(args)
    print(f"Plan for namespace {plan.namespace} (profile {plan.profile or 'none'}) from {folder}:")
    for number, step in enumerate(plan.steps, 1):
        after = f" (after {', '.join(step.needs)})" if step.needs else ""
        print(f"{number:2}. {step.title}{after}")
        for probe in step.skip_when:
            version = probe.installed_version
            pinned = f" (reused only at {version.pinned})" if version and not version.any_version else ""
            print(f"      skip when: {probe.command}{pinned}")
        for line in _stage_lines(step):
            print(f"      {line}")
        for command in step.commands:
            print(f"      run:       {command}")
        for wait in step.done_when:
            print(f"      done when: {wait.command(step.timeout_s)}")
            if wait.fails_on is not None:
                print(f"      fails on:  {wait.failure_command(step.timeout_s)}")
        for wait in step.done_when_skipped or ():
            print(f"      if found:  {wait.command(step.timeout_s)}")
        if step.images:
            print(f"      pulls:     {', '.join(dict.fromkeys(i.image for i in step.images))}")
    print("Endpoints the application uses:")
    for e in plan.endpoints:
        secret = e.secret or "no auth"
        print(f"  {e.database:14} {e.service}:{e.port}  (Secret {secret})")
    if plan.backups:
        print("Backup and restore:")
        for case in plan.backups:
            did = f"{case.method} via {case.policy}, restored as {case.restored}" if case.method else case.reason
            print(f"  {case.database:14} {did}")
    return EXIT_OK


def _stage_lines(step: Step) -> list[str]:
    """What a backup-stage step does beyond its commands, in words."""
    lines = []
    if step.markers is not None:
        target = step.markers.endpoint
        lines.append(f"smoke:     the suite's {step.markers.phase} marker check on {target.service}:{target.port}")
    if step.snapshot_support is not None:
        support = step.snapshot_support
        lines.append(
            f"checks:    StorageClass {support.storage_class} is provisioned by a CSI driver that "
            f"VolumeSnapshotClass {support.snapshot_class} serves"
        )
    if step.restore is not None:
        lines.append(
            f"creates:   Cluster {step.restore.target} with {step.restore.source}'s spec, restoring "
            f"{step.restore.component} from Backup {step.restore.backup}"
        )
    if step.cleanup:
        lines.append("cleanup:   runs whatever its needs ended in, once one of them ran")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = f"dbstack {args.command}"
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # here, so a closed pipe is noticed while it can still be handled
        return code
    except InvalidInput as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        if len(exc.problems) > 1:
            print(f"{len(exc.problems)} problems found; nothing was deployed.", file=sys.stderr)
        return EXIT_INVALID
    except CliError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # The promise is one line, never a traceback; DBSTACK_DEBUG=1 shows where it came from.
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"{command}: {_unexpected(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _unexpected(exc: Exception) -> str:
    from dbstack.masking import mask

    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return mask(f"{exc.strerror}{where}")
    text = " ".join(str(exc).split())[:300]
    return mask(f"unexpected error: {type(exc).__name__}: {text} (set {DEBUG_ENV}=1 for the traceback)")


def _discard_stdout() -> None:
    """The reader is gone: point stdout at /dev/null so the interpreter's last flush at exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
