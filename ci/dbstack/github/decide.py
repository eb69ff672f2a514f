"""What the Preview workflow does for one event: `python -m dbstack.github.decide` in its `guard` job.

Stdlib only, so the runner's own Python runs it. Reads the event payload ($GITHUB_EVENT_PATH), the event name, the
actor, the repository variable PREVIEWS_ENABLED (a variable, not the secret: the kubeconfig lives in the `preview`
environment, which the guard job never enters) and, for a manual run, the pull request as the API returned it
(`--pull-request FILE`). Writes `action` (deploy, teardown, sweep or none), `pr`, `head-sha` and `adopt-unlabelled`
to $GITHUB_OUTPUT, and says why nothing happens as a notice and in the step summary (a fork's contributor sees the
run page; the workflow cannot comment on a fork's pull request, whose token is read-only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREVIEW_LABEL = "preview"
"""A draft pull request with this label gets a preview too."""
DEPLOY_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review", "labeled"})
DEPENDABOT = "dependabot[bot]"
SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
NUMBER = re.compile(r"[1-9][0-9]{0,9}")


@dataclass(frozen=True)
class Decision:
    action: str
    pr: int | None = None
    head_sha: str | None = None
    adopt_unlabelled: bool = False
    notice_title: str | None = None
    notice: str | None = None

    def outputs(self) -> dict[str, str]:
        return {
            "action": self.action,
            "pr": str(self.pr or ""),
            "head-sha": self.head_sha or "",
            "adopt-unlabelled": "true" if self.adopt_unlabelled else "false",
        }


def _none(title: str, message: str) -> Decision:
    return Decision("none", notice_title=title, notice=message)


NOT_CONFIGURED = _none(
    "Previews not configured",
    "Set the repository variable PREVIEWS_ENABLED to true and the secret PREVIEW_KUBECONFIG in the environment "
    "preview to get previews (docs/workflows.md).",
)


def _pull_request_facts(pr: Mapping[str, Any], repository: str) -> tuple[bool, str | None, bool, set[str]]:
    """(from a fork, head commit, draft, label names) of a pull request object."""
    head: Mapping[str, Any] = pr["head"] if isinstance(pr.get("head"), dict) else {}
    repo: Mapping[str, Any] = head["repo"] if isinstance(head.get("repo"), dict) else {}
    sha = head.get("sha")
    labels = {str(label.get("name")) for label in pr.get("labels") or [] if isinstance(label, dict)}
    return (
        repo.get("full_name") != repository,
        sha if isinstance(sha, str) and SHA.fullmatch(sha) else None,
        bool(pr.get("draft")),
        labels,
    )


def decide(
    event_name: str,
    event: Mapping[str, Any],
    *,
    repository: str,
    actor: str,
    enabled: bool,
    dispatched_pr: Mapping[str, Any] | None = None,
) -> Decision:
    if event_name == "schedule":
        return Decision("sweep") if enabled else NOT_CONFIGURED
    if event_name == "workflow_dispatch":
        return _dispatch(event, repository=repository, enabled=enabled, pr=dispatched_pr)
    if event_name != "pull_request":
        return _none("Nothing to do", f"the Preview workflow does not handle {event_name} events")
    pr = event.get("pull_request")
    number = event.get("number")
    if not isinstance(pr, dict) or not isinstance(number, int) or number < 1:
        return _none("Nothing to do", "the event carries no pull request")
    from_fork, sha, draft, labels = _pull_request_facts(pr, repository)
    if from_fork:
        return _none(
            "No preview for fork pull requests",
            "Workflows on pull requests from forks get no secrets, so no preview is deployed. CI still tests the "
            "code; a maintainer who has reviewed it can push the branch to this repository to get a preview.",
        )
    if actor == DEPENDABOT:
        return _none(
            "No preview for Dependabot pull requests",
            "Workflows Dependabot triggers get only Dependabot secrets, never the preview environment's, so no "
            "preview is deployed. CI still tests the update.",
        )
    if not enabled:
        return NOT_CONFIGURED
    action = event.get("action")
    if action == "closed":
        return Decision("teardown", pr=number)
    if action not in DEPLOY_ACTIONS:
        return _none("Nothing to do", f"pull request action {action!r} changes no preview")
    if action == "labeled":
        label = event.get("label")
        if not (isinstance(label, dict) and label.get("name") == PREVIEW_LABEL):
            return _none("Nothing to do", "only the preview label deploys a preview")
    if draft and PREVIEW_LABEL not in labels:
        return _none(
            "No preview for a draft",
            f"Drafts get no preview: mark the pull request ready for review, or add the label {PREVIEW_LABEL!r}.",
        )
    if sha is None:
        return _none("Nothing to do", "the event carries no head commit")
    return Decision("deploy", pr=number, head_sha=sha)


def _dispatch(event: Mapping[str, Any], *, repository: str, enabled: bool, pr: Mapping[str, Any] | None) -> Decision:
    raw_inputs = event.get("inputs")
    inputs: Mapping[str, Any] = raw_inputs if isinstance(raw_inputs, dict) else {}
    operation = inputs.get("operation")
    if not enabled:
        return NOT_CONFIGURED
    if operation == "sweep":
        return Decision("sweep")
    raw = str(inputs.get("pr") or "").strip()
    if operation not in ("redeploy", "teardown") or not NUMBER.fullmatch(raw):
        return _none("Nothing to do", "operation must be redeploy, teardown or sweep, with a pull request number")
    number = int(raw)
    if pr is None or pr.get("number") != number:
        return _none("Pull request not found", f"could not read pull request #{number}")
    if operation == "teardown":
        adopt = inputs.get("adopt-unlabelled") in (True, "true")
        return Decision("teardown", pr=number, adopt_unlabelled=adopt)
    from_fork, sha, _, _ = _pull_request_facts(pr, repository)
    if pr.get("state") != "open":
        return _none("Pull request closed", f"#{number} is closed; a closed pull request gets no preview")
    if from_fork:
        return _none(
            "No preview for fork pull requests",
            f"#{number} comes from a fork: its code would run next to the preview credential. Push the reviewed "
            "branch to this repository instead.",
        )
    if sha is None:
        return _none("Nothing to do", f"#{number} has no head commit")
    return Decision("deploy", pr=number, head_sha=sha)


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dbstack.github.decide", description=__doc__)
    parser.add_argument("--pull-request", type=Path, default=None, help="the pull request (API JSON), manual runs")
    args = parser.parse_args(argv)
    env = os.environ
    try:
        event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
        dispatched = (
            json.loads(args.pull_request.read_text(encoding="utf-8"))
            if args.pull_request is not None and args.pull_request.exists()
            else None
        )
    except (KeyError, OSError, ValueError) as exc:
        print(f"cannot read the event: {exc}", file=sys.stderr)
        return 2
    decision = decide(
        env.get("GITHUB_EVENT_NAME", ""),
        event if isinstance(event, dict) else {},
        repository=env.get("GITHUB_REPOSITORY", ""),
        actor=env.get("GITHUB_ACTOR", ""),
        enabled=env.get("PREVIEWS_ENABLED", "").strip().lower() == "true",
        dispatched_pr=dispatched if isinstance(dispatched, dict) else None,
    )
    if "GITHUB_OUTPUT" in env:
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.writelines(f"{key}={value}\n" for key, value in decision.outputs().items())
    if decision.notice_title and decision.notice:
        print(f"::notice title={_escape_property(decision.notice_title)}::{_escape(decision.notice)}")
        if "GITHUB_STEP_SUMMARY" in env:
            with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
                summary.write(f"### {decision.notice_title}\n\n{decision.notice}\n")
    print(f"decision: {json.dumps(decision.outputs(), sort_keys=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
