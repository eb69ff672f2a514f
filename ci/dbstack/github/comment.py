"""The one preview comment per pull request, and what the publishing job does with it.

`envelope(...)` wraps a comment body with its pull request, whether it may create a comment (a note that a preview
was removed or expired only ever updates an existing comment: a pull request that never had a preview gets none)
and the GitHub deployment status to record (`pr-<n>`: success or failure after a deploy, inactive after a
teardown). The Preview workflow's `publish` job posts envelopes; it is the only job that can write to pull
requests, and it never sees the kubeconfig. Never a secret value: results hold Secret names only.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbstack.config.inputfile import InputFileError, read_input_file
from dbstack.config.naming import preview_namespace
from dbstack.github.preview import HEAD_SHA_PATTERN, PreviewError, first_line, marker_step_id
from dbstack.masking import mask
from dbstack.report.verdict import without_outcome
from dbstack.run.results import DatabaseResult, Outcome, RunResults

COMMENT_MARKER = "<!-- dbstack-preview -->"
COMMENT_MAX = 60_000
"""GitHub rejects comments over 65,536 characters."""
CAUSE_MAX = 300
MAX_RESULTS_BYTES = 64 * 1024 * 1024
DEFAULT_IDLE_HOURS = 168.0
OBJECT_NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""An RFC 1123 subdomain: what Service, Secret and namespace names are."""
SECRET_KEYS = ("username", "password")
"""The keys of a KubeBlocks account Secret."""
TRACE_URL = re.compile(r"https://dagger\.cloud/[A-Za-z0-9._~/-]+/traces/[A-Za-z0-9]+")
"""A Dagger Cloud trace, as dagger-for-github's `traceURL` output has it (not its `/traces/setup` placeholder)."""
EXPIRED_HEADING = "expired — push or run the redeploy to recreate"

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


def trace_link(url: str | None) -> str | None:
    """The Markdown link to a Dagger Cloud trace, or None when `url` is not one."""
    return f"[Dagger trace]({url})" if url and TRACE_URL.fullmatch(url) else None


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
    trace_url: str | None = None,
    idle_hours: float = DEFAULT_IDLE_HOURS,
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
    trace = trace_link(trace_url)
    if trace:
        facts.append(trace)
    lines += [" · ".join(facts), ""]
    if results is None:
        lines += ["The run ended before it wrote any results; the run log says why.", ""]
    else:
        lines += _results_section(results)
    lines.append(
        "The preview is removed when this pull request closes, and after "
        f"{idle_hours:g} h without a push while it stays open (a redeploy brings it back)."
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
            said = without_outcome(s.outcome, s.cause)
            cause = f": {_text(said)}" if said else ""
            lines.append(f"- {_text(s.title, 120)}: {_STATUS[s.outcome]}{cause}")
        lines.append("")
    lines += _markers_section(results)
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


def _markers_section(results: RunResults) -> list[str]:
    """Whether the data survived this push (each deploy after the first upgrades the one before), and where marker
    data was written for the next push to read back."""
    steps = {s.id: s for s in results.steps}
    lines = []
    for d in results.databases:
        title = _text(d.title, 40)
        verify, write = steps.get(marker_step_id("verify", d.key)), steps.get(marker_step_id("write", d.key))
        if verify is not None and verify.outcome is Outcome.PASSED:
            lines.append(f"- ✅ {title}: the marker data written earlier survived this push")
        elif verify is not None:
            cause = f": {_text(verify.cause)}" if verify.cause else ""
            lines.append(f"- ❌ {title}: the marker data written earlier did not read back{cause}")
        if write is not None and write.outcome is Outcome.PASSED:
            lines.append(f"- 📝 {title}: marker data written; the next push reads it back")
        elif write is not None:
            cause = f": {_text(write.cause)}" if write.cause else ""
            lines.append(f"- ⚠️ {title}: marker data could not be written{cause}")
    if not lines:
        return []
    intro = "**Data across pushes** (each push upgrades this preview in place"
    upgraded = results.upgrade.base_values if results.upgrade is not None else None
    intro += f": this one upgraded {_text(upgraded, 80)})" if upgraded else ")"
    return [intro, "", *lines, ""]


def _link(run_url: str | None, words: str) -> str:
    return f" ([{words}]({_text(run_url, 500)}))" if run_url and run_url.startswith("https://") else ""


def render_removed_comment(pr: int, *, run_url: str | None = None) -> str:
    """The PR comment once the closed pull request's preview is gone (it replaces the connection hints)."""
    lines = [COMMENT_MARKER, f"### dbstack preview for #{pr}: 🗑️ removed", ""]
    lines.append(
        f"The pull request was closed, so namespace `{preview_namespace(pr)}` and its databases were removed"
        f"{_link(run_url, 'teardown log')}."
    )
    return "\n".join(lines) + "\n"


def render_expired_comment(pr: int, *, idle_hours: float, run_url: str | None = None) -> str:
    """The PR comment once the sweep removed an open pull request's idle preview."""
    lines = [COMMENT_MARKER, f"### dbstack preview for #{pr}: ⏸️ {EXPIRED_HEADING}", ""]
    lines.append(
        f"Nothing was deployed to namespace `{preview_namespace(pr)}` for {idle_hours:g} h, so the sweep removed it"
        f"{_link(run_url, 'sweep log')}. Push a commit, or run the Preview workflow by hand with operation "
        f"`redeploy` and pull request {pr}, to get a fresh preview."
    )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Deployment:
    """The GitHub deployment status to record for environment `pr-<n>`."""

    state: str
    """success, failure or inactive."""
    ref: str | None = None
    log_url: str | None = None

    def to_json(self, pr: int) -> dict[str, Any]:
        return {
            "environment": preview_namespace(pr),
            "state": self.state,
            "ref": self.ref,
            "logUrl": self.log_url,
            "description": {
                "success": "preview ready",
                "failure": "preview failed",
                "inactive": "preview removed",
            }[self.state],
        }


def envelope(pr: int, body: str, *, create_if_missing: bool, deployment: Deployment | None) -> dict[str, Any]:
    """What the publishing job posts: the body, whether it may create a comment, and the deployment status."""
    if not body.startswith(COMMENT_MARKER):
        raise PreviewError("a preview comment must start with the dbstack marker")
    return {
        "pr": pr,
        "body": body,
        "createIfMissing": create_if_missing,
        "deployment": deployment.to_json(pr) if deployment else None,
    }


# --- `dbstack preview-comment` ------------------------------------------------------------------------------


def _load_results(path: Path, allow_missing: bool) -> RunResults | None:
    """The saved run, or None when it is absent and that is allowed; raises PreviewError otherwise."""
    if not path.exists():
        if allow_missing:
            return None
        raise PreviewError(f"{path}: no such file (pass --allow-missing to comment that the run wrote no results)")
    try:
        raw = read_input_file(path, limit=MAX_RESULTS_BYTES)
    except InputFileError as exc:
        raise PreviewError(f"--results {path}: {exc}") from None
    try:
        return RunResults.from_json(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise PreviewError(f"{path}: not a results.json written by dbstack ({first_line(str(exc))})") from None


def dropped_arguments(args: argparse.Namespace) -> list[str]:
    """What the comment leaves out of what it was given, one warning each: a bad link or commit must not vanish
    silently."""
    warnings = []
    if args.run_url is not None and not args.run_url.startswith("https://"):
        warnings.append(f"--run-url {_text(args.run_url, 80)!r} is not an https:// URL; the comment has no run link")
    if args.head_sha is not None and not HEAD_SHA_PATTERN.fullmatch(args.head_sha):
        warnings.append(
            f"--head-sha {_text(args.head_sha, 80)!r} is not a commit hash (7 to 64 hex digits, lower case); "
            "the comment names no commit"
        )
    if args.trace_url and trace_link(args.trace_url) is None:
        warnings.append(
            f"--trace-url {_text(args.trace_url, 80)!r} is not a Dagger Cloud trace URL; the comment has no trace link"
        )
    return warnings


def _idle_hours(given: float | None, values: Path | None) -> float:
    """--idle-hours, else preview.openIdleHours of the values folder (--values, else ./values)."""
    if given is not None:
        if not (math.isfinite(given) and given > 0):
            raise PreviewError(f"--idle-hours must be a positive number of hours, got {given}")
        return given
    from dbstack.config.load import load_config
    from dbstack.config.problems import InvalidInput

    try:
        return load_config(values or Path("values")).preview.open_idle_hours
    except InvalidInput as exc:
        raise PreviewError(f"give --idle-hours, or run where values/ is valid ({exc.problems[0]})") from None


def _envelope_for(args: argparse.Namespace) -> dict[str, Any]:
    if args.pr < 1:
        raise PreviewError(f"--pr must be a positive pull request number, got {args.pr}")
    args.idle_hours = _idle_hours(args.idle_hours, getattr(args, "values", None))
    inactive = Deployment("inactive")
    if args.removed:
        return envelope(
            args.pr, render_removed_comment(args.pr, run_url=args.run_url), create_if_missing=False, deployment=inactive
        )
    if args.expired:
        body = render_expired_comment(args.pr, idle_hours=args.idle_hours, run_url=args.run_url)
        return envelope(args.pr, body, create_if_missing=False, deployment=inactive)
    if args.results is None:
        raise PreviewError("give --results FILE (a preview run), --removed (torn down) or --expired (swept)")
    results = _load_results(args.results, args.allow_missing)
    body = render_comment(
        results,
        pr=args.pr,
        head_sha=args.head_sha,
        run_url=args.run_url,
        trace_url=args.trace_url,
        idle_hours=args.idle_hours,
    )
    sha = args.head_sha if args.head_sha and HEAD_SHA_PATTERN.fullmatch(args.head_sha) else None
    state = "success" if results is not None and results.passed else "failure"
    deployment = Deployment(state, ref=sha, log_url=args.run_url) if sha else None
    return envelope(args.pr, body, create_if_missing=True, deployment=deployment)


def cli_preview_comment(args: argparse.Namespace) -> int:
    """`dbstack preview-comment`: the PR comment from a saved results.json, or the note after a teardown or sweep;
    `--format json` gives the envelope the publishing job posts."""
    try:
        data = _envelope_for(args)
    except PreviewError as exc:
        print(exc, file=sys.stderr)
        return 2
    for warning in dropped_arguments(args):
        print(f"dbstack preview-comment: warning: {warning}", file=sys.stderr)
    text = json.dumps(data, indent=2) + "\n" if args.format == "json" else str(data["body"])
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"dbstack preview-comment: --out {args.out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
