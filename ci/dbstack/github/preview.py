"""Pull-request previews, engine-free: one labelled namespace per PR, its teardown, the TTL sweep, the PR comment.

The Dagger functions `preview`, `teardown` and `sweep` (ci/pipeline.py) wrap this module; the deployment itself is
the ordinary plan run with `namespace` set to `PreviewTarget.namespace` (`pr-<n>`). Everything here talks to the
cluster through a `Runner`, so it runs the same against a Dagger toolbox container, the host's kubectl, or a fake.

API:
- `PreviewTarget.create(pr, head_sha, now, ttl_s)`: the namespace and its labels (PR, head commit, expiry).
- `await prepare_namespace(runner, target)`: create or relabel the namespace; waits out a namespace still
  terminating from an earlier teardown; refuses a namespace of that name that is not a dbstack preview.
- `await teardown(runner, pr)`: uninstall the Helm releases in the PR's namespace, then delete the namespace.
  Never touches KubeBlocks, its addons or any namespace that is not a labelled `pr-<n>` preview.
- `await sweep(runner, now)`: tear down every labelled preview whose expiry has passed (orphans of failed
  teardowns); namespaces with unreadable labels are reported and kept.
- `render_comment(results, ...)`: the PR comment (marked with `COMMENT_MARKER` so a workflow updates one comment):
  status per database, Service addresses, Secret names and how to read them; never a secret value.
  `render_removed_comment(pr)` replaces it once the closed pull request's preview is gone.

KubeBlocks is shared by every preview: installing it is the plan's job (its steps skip when it is present), and
nothing here removes it.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbstack.config.naming import NameRule, preview_namespace
from dbstack.masking import mask
from dbstack.plan.model import Command, helm, kubectl
from dbstack.run.results import DatabaseResult, Outcome, RunResults
from dbstack.run.runner import Runner
from dbstack.text import first_line as text_first_line

LABEL_PR = "dbstack.io/pr"
LABEL_HEAD_SHA = "dbstack.io/head-sha"
LABEL_EXPIRES_AT = "dbstack.io/expires-at"
"""Unix seconds: label values cannot hold ':' or '+', so no ISO timestamps."""
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "dbstack"
COMMENT_MARKER = "<!-- dbstack-preview -->"
DEFAULT_TTL_S = 72 * 3600
LABEL_VALUE_RULE = NameRule(
    63,
    re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"),
    "Kubernetes",
    "must start and end with a letter or digit and hold only letters, digits, '-', '_' and '.'",
)
HEAD_SHA_PATTERN = re.compile(r"[0-9a-f]{7,64}")
PREVIEW_NAMESPACE_PATTERN = re.compile(r"pr-[1-9][0-9]*")
OBJECT_NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""An RFC 1123 subdomain: what Service, Secret and namespace names are."""
PR_LABEL_PATTERN = re.compile(r"[1-9][0-9]*")
EXPIRES_LABEL_PATTERN = re.compile(r"[0-9]{1,12}")
PROTECTED_RELEASES = re.compile(r"(kubeblocks|kb-addon-.*)")
"""Shared by every preview; a namespace holding one of these is never torn down."""
SECRET_KEYS = ("username", "password")
"""The keys of a KubeBlocks account Secret."""
COMMENT_MAX = 60_000
"""GitHub rejects comments over 65,536 characters."""
CAUSE_MAX = 300
QUERY_TIMEOUT_S = 60
DEFAULT_TIMEOUT_S = 600


class PreviewError(Exception):
    """A preview operation that could not be done; the message is one line naming the cause."""


def label_value_problem(value: str) -> str | None:
    """Why `value` cannot be a Kubernetes label value, or None when it can."""
    return LABEL_VALUE_RULE.problem(value)


@dataclass(frozen=True)
class PreviewTarget:
    """One pull request's preview: where it lives and what its namespace is labelled with."""

    pr: int
    head_sha: str
    expires_at: int
    """Unix seconds after which the sweep may remove the preview."""

    @classmethod
    def create(cls, pr: int, head_sha: str, now: float, ttl_s: int = DEFAULT_TTL_S) -> PreviewTarget:
        """Validated: raises ValueError naming the bad argument."""
        if pr < 1:
            raise ValueError(f"pull request number must be positive, got {pr}")
        sha = head_sha.strip().lower()
        if not HEAD_SHA_PATTERN.fullmatch(sha):
            raise ValueError(f"head commit must be 7 to 64 hexadecimal digits, got {head_sha!r}")
        if ttl_s < 1:
            raise ValueError(f"time to live must be at least one second, got {ttl_s}")
        # A SHA-256 commit id (64) exceeds a label value (63); 40 digits still name one commit.
        return cls(pr=pr, head_sha=sha[:40], expires_at=int(now) + ttl_s)

    @property
    def namespace(self) -> str:
        return preview_namespace(self.pr)

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_PR: str(self.pr),
            LABEL_HEAD_SHA: self.head_sha,
            LABEL_EXPIRES_AT: str(self.expires_at),
            LABEL_MANAGED_BY: MANAGED_BY,
        }

    def apply_command(self) -> Command:
        """Create the namespace or update its labels: `kubectl apply` is idempotent, and the manifest goes on stdin."""
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": self.labels},
        }
        return Command(("kubectl", "apply", "-f", "-"), stdin=json.dumps(manifest))


def is_preview_namespace(name: str) -> bool:
    return PREVIEW_NAMESPACE_PATTERN.fullmatch(name) is not None


def get_namespace_command(namespace: str) -> Command:
    return kubectl("get", "namespace", namespace, "-o", "json", "--ignore-not-found")


def list_previews_command() -> Command:
    return kubectl("get", "namespaces", "-l", LABEL_PR, "-o", "json")


def list_releases_command(namespace: str) -> Command:
    return helm("list", "-n", namespace, "--all", "-o", "json")


def teardown_commands(namespace: str, releases: Sequence[str], timeout_s: int = DEFAULT_TIMEOUT_S) -> list[Command]:
    """Uninstall `releases`, then delete the namespace. Raises PreviewError rather than touch anything shared."""
    if not is_preview_namespace(namespace):
        raise PreviewError(f"refusing to tear down {namespace!r}: only pr-<number> preview namespaces are removed")
    shared = [r for r in releases if PROTECTED_RELEASES.match(r)]
    if shared:
        raise PreviewError(
            f"refusing to tear down {namespace}: it holds {', '.join(shared)}, which every preview shares"
        )
    # Uninstalling first lets each release's hooks and the KubeBlocks controller clean up in order, instead of
    # racing the namespace's deletion.
    commands = [
        helm("uninstall", release, "-n", namespace, "--wait", f"--timeout={timeout_s}s") for release in releases
    ]
    commands.append(kubectl("delete", "namespace", namespace, "--ignore-not-found", f"--timeout={timeout_s}s"))
    return commands


def release_names(helm_list_json: str) -> list[str]:
    """Release names from `helm list -o json`; raises PreviewError when the output is not that list."""
    try:
        data = json.loads(helm_list_json or "[]")
    except json.JSONDecodeError as exc:
        raise PreviewError(f"helm list printed something that is not JSON ({exc.msg})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in data):
        raise PreviewError("helm list printed JSON that is not a list of releases")
    return [str(r["name"]) for r in data]


@dataclass(frozen=True)
class PreviewNamespace:
    """A namespace labelled as a preview, as read back from the cluster."""

    name: str
    labels: Mapping[str, str]
    phase: str | None = None

    @property
    def pr(self) -> int | None:
        value = self.labels.get(LABEL_PR, "")
        return int(value) if PR_LABEL_PATTERN.fullmatch(value) else None

    @property
    def expires_at(self) -> int | None:
        value = self.labels.get(LABEL_EXPIRES_AT, "")
        return int(value) if EXPIRES_LABEL_PATTERN.fullmatch(value) else None

    def problem(self) -> str | None:
        """Why the sweep must leave this namespace alone, or None when it may judge its expiry."""
        if self.pr is None:
            return f"label {LABEL_PR}={self.labels.get(LABEL_PR)!r} is not a pull request number"
        if self.name != preview_namespace(self.pr):
            return f"label {LABEL_PR}={self.pr} does not match the namespace name"
        if self.expires_at is None:
            return f"label {LABEL_EXPIRES_AT}={self.labels.get(LABEL_EXPIRES_AT)!r} is not a Unix time"
        return None

    def expired(self, now: float) -> bool:
        return self.problem() is None and self.expires_at is not None and self.expires_at <= now


def parse_namespace_list(kubectl_json: str) -> list[PreviewNamespace]:
    """Namespaces from `kubectl get namespaces -o json` (a List) or one namespace (`kubectl get namespace X`)."""
    try:
        data = json.loads(kubectl_json)
    except json.JSONDecodeError as exc:
        raise PreviewError(f"kubectl printed something that is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise PreviewError("kubectl printed JSON that is not an object")
    items = data["items"] if isinstance(data.get("items"), list) else [data]
    return [ns for ns in (_namespace(item) for item in items) if ns is not None]


def _namespace(item: Any) -> PreviewNamespace | None:
    if not isinstance(item, dict):
        return None
    metadata = item.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return None
    raw_labels = metadata.get("labels") or {}
    labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
    status = item.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    return PreviewNamespace(metadata["name"], labels, phase if isinstance(phase, str) else None)


def select_expired(namespaces: Sequence[PreviewNamespace], now: float) -> list[PreviewNamespace]:
    return [ns for ns in namespaces if ns.expired(now)]


async def _run(runner: Runner, command: Command, timeout_s: float) -> str:
    """Run `command`; its stdout, or PreviewError naming the command and the first line of its error."""
    result = await runner.run(command, timeout_s=timeout_s)
    if result.timed_out:
        raise PreviewError(f"`{command}` did not finish within {timeout_s:.0f}s")
    if result.exit_code != 0:
        raise PreviewError(f"`{command}` failed: {first_line(result.stderr or result.stdout)}")
    return result.stdout


async def _existing_namespace(runner: Runner, namespace: str) -> PreviewNamespace | None:
    out = await _run(runner, get_namespace_command(namespace), QUERY_TIMEOUT_S)
    if not out.strip():
        return None
    found = parse_namespace_list(out)
    return found[0] if found else None


async def prepare_namespace(runner: Runner, target: PreviewTarget, *, timeout_s: int = DEFAULT_TIMEOUT_S) -> None:
    """Create the preview's namespace, or relabel it when it exists (a second preview upgrades in place)."""
    existing = await _existing_namespace(runner, target.namespace)
    if existing is not None:
        if existing.labels.get(LABEL_PR) != str(target.pr):
            raise PreviewError(
                f"namespace {target.namespace} exists but is not labelled {LABEL_PR}={target.pr}; "
                "refusing to deploy a preview into a namespace dbstack did not create"
            )
        if existing.phase == "Terminating":
            # The PR was closed and reopened while its teardown was still deleting the namespace.
            wait = kubectl("wait", f"namespace/{target.namespace}", "--for=delete", f"--timeout={timeout_s}s")
            await _run(runner, wait, timeout_s + QUERY_TIMEOUT_S)
    await _run(runner, target.apply_command(), QUERY_TIMEOUT_S)


@dataclass(frozen=True)
class TeardownReport:
    namespace: str
    existed: bool
    releases: tuple[str, ...] = ()

    def summary(self) -> str:
        if not self.existed:
            return f"{self.namespace}: not found, nothing to remove"
        removed = ", ".join(self.releases) or "no releases"
        return f"{self.namespace}: removed {removed} and the namespace"


async def teardown(runner: Runner, pr: int, *, timeout_s: int = DEFAULT_TIMEOUT_S) -> TeardownReport:
    """Remove pull request `pr`'s preview; succeeds when there is none (idempotent)."""
    namespace = preview_namespace(pr)
    existing = await _existing_namespace(runner, namespace)
    if existing is None:
        return TeardownReport(namespace, existed=False)
    if existing.labels.get(LABEL_PR) != str(pr):
        raise PreviewError(f"refusing to tear down {namespace}: it is not labelled {LABEL_PR}={pr}")
    releases = release_names(await _run(runner, list_releases_command(namespace), QUERY_TIMEOUT_S))
    for command in teardown_commands(namespace, releases, timeout_s):
        await _run(runner, command, timeout_s + QUERY_TIMEOUT_S)
    return TeardownReport(namespace, existed=True, releases=tuple(releases))


@dataclass
class SweepReport:
    removed: list[TeardownReport] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Previews not yet expired."""
    unreadable: dict[str, str] = field(default_factory=dict)
    """Namespace -> why its labels cannot be trusted; left alone."""
    failed: dict[str, str] = field(default_factory=dict)
    """Namespace -> why its teardown failed."""

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"swept {len(self.removed)} expired preview(s); {len(self.kept)} still live"]
        lines += [f"removed {r.summary()}" for r in self.removed]
        lines += [f"ignored {name}: {why}" for name, why in sorted(self.unreadable.items())]
        lines += [f"FAILED {name}: {why}" for name, why in sorted(self.failed.items())]
        return "\n".join(lines)


async def sweep(runner: Runner, now: float, *, timeout_s: int = DEFAULT_TIMEOUT_S) -> SweepReport:
    """Tear down every preview whose expiry label has passed; one failure does not stop the others."""
    report = SweepReport()
    for ns in parse_namespace_list(await _run(runner, list_previews_command(), QUERY_TIMEOUT_S)):
        problem = ns.problem()
        if problem is not None:
            report.unreadable[ns.name] = problem
        elif not ns.expired(now):
            report.kept.append(ns.name)
        elif ns.pr is not None:
            try:
                report.removed.append(await teardown(runner, ns.pr, timeout_s=timeout_s))
            except PreviewError as exc:
                report.failed[ns.name] = str(exc)
    return report


def first_line(text: str) -> str:
    """A command's first line of output for a comment or a log: masked, cut short, never empty."""
    return mask(text_first_line(text))[:CAUSE_MAX] or "no output"


_STATUS = {
    Outcome.PASSED: "✅ passed",
    Outcome.FAILED: "❌ failed",
    Outcome.TIMED_OUT: "⏱️ timed out",
    Outcome.SKIPPED: "⏭️ skipped",
    Outcome.NOT_RUN: "⚪ not run",
    Outcome.CANCELLED: "🚫 cancelled",
}


def _text(value: str, limit: int = CAUSE_MAX) -> str:
    """Untrusted text made safe for one Markdown table cell or list item: one line, no HTML, no pipes."""
    one_line = " ".join(mask(value).split())
    if len(one_line) > limit:
        one_line = one_line[: limit - 1] + "…"
    return html.escape(one_line, quote=False).replace("|", "\\|").replace("`", "'")


def _status(d: DatabaseResult) -> str:
    """The database's outcome, failed when it is ready but a smoke check failed, with its check counts."""
    failed = any(c.outcome is Outcome.FAILED for c in d.checks)
    status = _STATUS[Outcome.FAILED if failed and d.outcome is Outcome.PASSED else d.outcome]
    if not d.checks:
        return status
    passed = sum(1 for c in d.checks if c.outcome is Outcome.PASSED)
    return f"{status} ({passed}/{len(d.checks)} checks passed)"


def _name(value: str) -> str:
    """A Kubernetes object name as read from results, or a placeholder: it goes into code spans and shell lines."""
    return value if OBJECT_NAME_PATTERN.fullmatch(value) else "<invalid-name>"


def _connect_hint(d: DatabaseResult) -> list[str]:
    namespace = _name(d.namespace)
    lines = [f"# {_text(d.title, 40)}"]
    if d.secret:
        for key in SECRET_KEYS:
            lines.append(
                f"kubectl -n {namespace} get secret {_name(d.secret)} -o jsonpath='{{.data.{key}}}' | base64 -d; echo"
            )
    lines.append(f"kubectl -n {namespace} port-forward svc/{_name(d.service)} {d.port}:{d.port}")
    return lines


def render_comment(
    results: RunResults | None,
    *,
    pr: int,
    head_sha: str | None = None,
    run_url: str | None = None,
    ttl_s: int = DEFAULT_TTL_S,
) -> str:
    """The PR comment for a preview run, from its results only (None: the run ended before writing any)."""
    namespace = preview_namespace(pr)
    passed = results is not None and results.passed
    heading = "✅ ready" if passed else "❌ failed"
    lines = [COMMENT_MARKER, f"### dbstack preview for #{pr}: {heading}", ""]
    facts = [f"namespace `{namespace}`"]
    if head_sha and HEAD_SHA_PATTERN.fullmatch(head_sha):
        facts.append(f"commit `{head_sha[:12]}`")
    if run_url and run_url.startswith("https://"):
        facts.append(f"[run log and reports]({_text(run_url, 500)})")
    lines += [" · ".join(facts), ""]
    if results is None:
        lines += ["The run ended before it wrote any results; the run log says why.", ""]
    else:
        lines += _results_section(results)
    hours = ttl_s / 3600
    lines.append(
        f"The preview is removed when this pull request closes; if that teardown fails, a scheduled sweep removes it "
        f"{hours:g} h after the last push."
    )
    text = "\n".join(lines) + "\n"
    return text if len(text) <= COMMENT_MAX else text[: COMMENT_MAX - 40] + "\n\n… (comment shortened)\n"


def _results_section(results: RunResults) -> list[str]:
    lines = ["| Database | Status | Service | Credentials (Secret name) |", "| --- | --- | --- | --- |"]
    for d in results.databases:
        secret = f"`{_name(d.secret)}`" if d.secret else "no auth"
        host = f"{_name(d.service)}.{_name(d.namespace)}.svc.cluster.local"
        version = f" {_text(d.version, 40)}" if d.version else ""
        lines.append(f"| {_text(d.title, 40)}{version} | {_status(d)} | `{host}:{d.port}` | {secret} |")
    if not results.databases:
        lines.append("| (none) | | | |")
    lines.append("")
    problems = [s for s in results.steps if not s.outcome.ok]
    if problems:
        lines.append("**What went wrong**")
        lines.append("")
        for s in problems:
            cause = f": {_text(s.cause)}" if s.cause else ""
            lines.append(f"- {_text(s.title, 120)}: {_STATUS[s.outcome]}{cause}")
        lines.append("")
    failed_checks = [(d, c) for d in results.databases for c in d.checks if c.outcome is Outcome.FAILED]
    if failed_checks:
        lines.append("**Failed smoke checks**")
        lines.append("")
        for d, c in failed_checks:
            message = f": {_text(c.message)}" if c.message else ""
            lines.append(f"- {_text(d.title, 40)} `{_text(c.name, 120)}`{message}")
        lines.append("")
    elif results.smoke_outcome not in (Outcome.PASSED, Outcome.SKIPPED) and results.smoke_cause:
        lines += [f"**Smoke suite**: {_text(results.smoke_cause)}", ""]
    if results.databases:
        lines += [
            "<details><summary>How to connect</summary>",
            "",
            "With a kubeconfig for the preview cluster (values are read on your machine, never shown here):",
            "",
            "```sh",
        ]
        for d in results.databases:
            lines += _connect_hint(d)
        lines += ["```", "", "</details>", ""]
    return lines


def render_removed_comment(pr: int, *, run_url: str | None = None) -> str:
    """The PR comment once the closed pull request's preview is gone (it replaces the connection hints)."""
    lines = [COMMENT_MARKER, f"### dbstack preview for #{pr}: 🗑️ removed", ""]
    link = f" ([teardown log]({_text(run_url, 500)}))" if run_url and run_url.startswith("https://") else ""
    lines.append(
        f"The pull request was closed, so namespace `{preview_namespace(pr)}` and its databases were removed{link}."
    )
    return "\n".join(lines) + "\n"


def _load_results(path: Path, allow_missing: bool) -> RunResults | None:
    """The saved run, or None when it is absent and that is allowed; raises PreviewError otherwise."""
    if not path.exists():
        if allow_missing:
            return None
        raise PreviewError(f"{path}: no such file (pass --allow-missing to comment that the run wrote no results)")
    try:
        return RunResults.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
        raise PreviewError(f"{path}: not a results.json written by dbstack ({first_line(str(exc))})") from None


def _comment_for(args: argparse.Namespace) -> str:
    if args.pr < 1:
        raise PreviewError(f"--pr must be a positive pull request number, got {args.pr}")
    if args.removed:
        return render_removed_comment(args.pr, run_url=args.run_url)
    if args.results is None:
        raise PreviewError("give --results FILE (a preview run) or --removed (a torn-down preview)")
    if not (math.isfinite(args.ttl_hours) and args.ttl_hours > 0):
        raise PreviewError(f"--ttl-hours must be a positive number of hours, got {args.ttl_hours}")
    results = _load_results(args.results, args.allow_missing)
    return render_comment(
        results, pr=args.pr, head_sha=args.head_sha, run_url=args.run_url, ttl_s=int(args.ttl_hours * 3600)
    )


def cli_preview_comment(args: argparse.Namespace) -> int:
    """`dbstack preview-comment`: render the PR comment from a saved results.json, or the one after teardown."""
    try:
        text = _comment_for(args)
    except PreviewError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0
