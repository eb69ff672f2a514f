"""`python -m dbstack.github.decide` as the Preview workflow's guard job runs it: what it writes to $GITHUB_OUTPUT,
the notice and step summary it leaves, and the manual-run (workflow_dispatch) decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dbstack.github.decide import _escape, _escape_property, decide, main

SHA = "0123456789abcdef0123456789abcdef01234567"
NOT_CONFIGURED = (
    "Set the repository variable PREVIEWS_ENABLED to true and the secret PREVIEW_KUBECONFIG in the environment "
    "preview to get previews (docs/workflows.md)."
)


@pytest.fixture
def guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The guard job's environment; returns the folder holding its files."""
    for name in ("GITHUB_EVENT_NAME", "GITHUB_REPOSITORY", "GITHUB_ACTOR", "PREVIEWS_ENABLED", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "event.json"))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    monkeypatch.setenv("GITHUB_ACTOR", "dev")
    return tmp_path


def opened(number: int = 42) -> dict[str, Any]:
    pr = {"head": {"sha": SHA, "repo": {"full_name": "o/r"}}, "draft": False, "labels": []}
    return {"action": "opened", "number": number, "pull_request": pr}


def write_event(folder: Path, event: object) -> None:
    (folder / "event.json").write_text(json.dumps(event), encoding="utf-8")


def test_an_opened_pull_request_writes_the_deploy_outputs(
    guard: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("PREVIEWS_ENABLED", " True ")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(guard / "summary.md"))
    write_event(guard, opened())
    assert main([]) == 0
    assert (guard / "output").read_text() == f"action=deploy\npr=42\nhead-sha={SHA}\nadopt-unlabelled=false\n"
    assert capsys.readouterr().out == (
        f'decision: {{"action": "deploy", "adopt-unlabelled": "false", "head-sha": "{SHA}", "pr": "42"}}\n'
    )
    assert not (guard / "summary.md").exists()


@pytest.mark.parametrize("enabled", ["", "false", "yes"])
def test_previews_not_enabled_leave_a_notice_and_a_step_summary(
    guard: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], enabled: str
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("PREVIEWS_ENABLED", enabled)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(guard / "summary.md"))
    (guard / "output").write_text("earlier=1\n")
    write_event(guard, opened())
    assert main([]) == 0
    assert (guard / "output").read_text() == "earlier=1\naction=none\npr=\nhead-sha=\nadopt-unlabelled=false\n"
    assert capsys.readouterr().out.splitlines() == [
        f"::notice title=Previews not configured::{NOT_CONFIGURED}",
        'decision: {"action": "none", "adopt-unlabelled": "false", "head-sha": "", "pr": ""}',
    ]
    assert (guard / "summary.md").read_text() == f"### Previews not configured\n\n{NOT_CONFIGURED}\n"


def test_the_notice_escapes_what_the_event_carries(
    guard: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "push%\r\n::error::x")
    write_event(guard, {})
    assert main([]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "::notice title=Nothing to do::the Preview workflow does not handle push%25%0D%0A::error::x events"
    )


def test_workflow_command_escaping() -> None:
    assert _escape("50% a\r\nb: c, d") == "50%25 a%0D%0Ab: c, d"
    assert _escape_property("50% a\r\nb: c, d") == "50%25 a%0D%0Ab%3A c%2C d"


def test_a_manual_teardown_reads_the_pull_request_file_and_may_adopt_unlabelled_releases(
    guard: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "workflow_dispatch")
    monkeypatch.setenv("PREVIEWS_ENABLED", "true")
    write_event(guard, {"inputs": {"operation": "teardown", "pr": " 7 ", "adopt-unlabelled": "true"}})
    (guard / "pr.json").write_text(json.dumps({"number": 7, "state": "closed"}))
    assert main(["--pull-request", str(guard / "pr.json")]) == 0
    assert (guard / "output").read_text() == "action=teardown\npr=7\nhead-sha=\nadopt-unlabelled=true\n"


def test_a_manual_run_whose_pull_request_file_is_missing_finds_no_pull_request(
    guard: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "workflow_dispatch")
    monkeypatch.setenv("PREVIEWS_ENABLED", "true")
    write_event(guard, {"inputs": {"operation": "redeploy", "pr": "7"}})
    assert main(["--pull-request", str(guard / "absent.json")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "::notice title=Pull request not found::could not read pull request #7"
    )


def test_an_event_that_is_not_an_object_carries_no_pull_request(
    guard: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("PREVIEWS_ENABLED", "true")
    write_event(guard, [opened()])
    assert main([]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "::notice title=Nothing to do::the event carries no pull request"


@pytest.mark.parametrize(("event_path", "content"), [(None, None), ("event.json", "{not json")])
def test_an_unreadable_event_exits_2_and_says_so(
    guard: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    event_path: str | None,
    content: str | None,
) -> None:
    if event_path is None:
        monkeypatch.delenv("GITHUB_EVENT_PATH")
    else:
        (guard / event_path).write_text(content or "")
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("cannot read the event: ")
    assert not (guard / "output").exists()


def dispatch(inputs: dict[str, Any], pr: dict[str, Any] | None, *, enabled: bool = True) -> tuple[str, str | None]:
    decision = decide(
        "workflow_dispatch", {"inputs": inputs}, repository="o/r", actor="x", enabled=enabled, dispatched_pr=pr
    )
    return decision.action, decision.notice


OPEN_PR = {"number": 42, "state": "open", "head": {"sha": SHA, "repo": {"full_name": "o/r"}}}
NO_OPERATION = "operation must be redeploy, teardown or sweep, with a pull request number"


@pytest.mark.parametrize(
    ("inputs", "pr", "expected"),
    [
        ({"operation": "sweep"}, None, ("sweep", None)),
        ({"operation": "redeploy", "pr": "42"}, OPEN_PR, ("deploy", None)),
        ({"operation": "redeploy", "pr": 42}, OPEN_PR, ("deploy", None)),
        ({"operation": "teardown", "pr": "42"}, OPEN_PR, ("teardown", None)),
        ({"operation": "deploy", "pr": "42"}, OPEN_PR, ("none", NO_OPERATION)),
        ({"operation": "redeploy", "pr": "042"}, OPEN_PR, ("none", NO_OPERATION)),
        ({"operation": "redeploy", "pr": "4x"}, OPEN_PR, ("none", NO_OPERATION)),
        ({"operation": "redeploy"}, OPEN_PR, ("none", NO_OPERATION)),
        ({"operation": "redeploy", "pr": "43"}, OPEN_PR, ("none", "could not read pull request #43")),
        ({"operation": "redeploy", "pr": "42"}, None, ("none", "could not read pull request #42")),
        (
            {"operation": "redeploy", "pr": "42"},
            {**OPEN_PR, "state": "closed"},
            ("none", "#42 is closed; a closed pull request gets no preview"),
        ),
        (
            {"operation": "redeploy", "pr": "42"},
            {**OPEN_PR, "head": {"sha": "abc", "repo": {"full_name": "o/r"}}},
            ("none", "#42 has no head commit"),
        ),
    ],
)
def test_manual_run_decisions(
    inputs: dict[str, Any], pr: dict[str, Any] | None, expected: tuple[str, str | None]
) -> None:
    assert dispatch(inputs, pr) == expected


def test_a_manual_run_needs_previews_enabled_even_for_a_sweep() -> None:
    assert dispatch({"operation": "sweep"}, None, enabled=False) == ("none", NOT_CONFIGURED)


def test_a_manual_redeploy_deploys_the_pull_requests_head_and_a_teardown_adopts_only_when_asked() -> None:
    redeploy = decide(
        "workflow_dispatch",
        {"inputs": {"operation": "redeploy", "pr": "42"}},
        repository="o/r",
        actor="x",
        enabled=True,
        dispatched_pr=OPEN_PR,
    )
    assert (redeploy.pr, redeploy.head_sha, redeploy.adopt_unlabelled) == (42, SHA, False)
    for asked, adopt in ((True, True), ("true", True), ("false", False), (None, False)):
        teardown = decide(
            "workflow_dispatch",
            {"inputs": {"operation": "teardown", "pr": "42", "adopt-unlabelled": asked}},
            repository="o/r",
            actor="x",
            enabled=True,
            dispatched_pr=OPEN_PR,
        )
        assert (teardown.action, teardown.pr, teardown.adopt_unlabelled) == ("teardown", 42, adopt)


FORK = (
    "Workflows on pull requests from forks get no secrets, so no preview is deployed. CI still tests the code; a "
    "maintainer who has reviewed it can push the branch to this repository to get a preview."
)
DEPENDABOT = (
    "Workflows Dependabot triggers get only Dependabot secrets, never the preview environment's, so no preview is "
    "deployed. CI still tests the update."
)
DRAFT = "Drafts get no preview: mark the pull request ready for review, or add the label 'preview'."


def pull_request(action: str = "opened", **changes: Any) -> dict[str, Any]:
    event = opened()
    event["action"] = action
    for key, value in changes.items():
        if key in ("head", "draft", "labels"):
            event["pull_request"][key] = value
        else:
            event[key] = value
    return event


@pytest.mark.parametrize(
    ("name", "event", "actor", "expected"),
    [
        ("schedule", {}, "dev", ("sweep", None, None, None, None)),
        ("push", {}, "dev", ("none", None, None, "Nothing to do", "the Preview workflow does not handle push events")),
        ("pull_request", pull_request(), "dev", ("deploy", 42, SHA, None, None)),
        ("pull_request", pull_request("closed"), "dev", ("teardown", 42, None, None, None)),
        ("pull_request", pull_request(number=1), "dev", ("deploy", 1, SHA, None, None)),
        *(
            ("pull_request", event, "dev", ("none", None, None, "Nothing to do", "the event carries no pull request"))
            for event in (
                pull_request(number=0),
                pull_request(number="42"),
                {"action": "opened", "number": 42, "pull_request": None},
            )
        ),
        (
            "pull_request",
            pull_request(head={"sha": SHA, "repo": {"full_name": "x/r"}}),
            "dev",
            ("none", None, None, "No preview for fork pull requests", FORK),
        ),
        (
            "pull_request",
            pull_request(head="not an object"),
            "dev",
            ("none", None, None, "No preview for fork pull requests", FORK),
        ),
        (
            "pull_request",
            pull_request(),
            "dependabot[bot]",
            ("none", None, None, "No preview for Dependabot pull requests", DEPENDABOT),
        ),
        (
            "pull_request",
            pull_request("edited"),
            "dev",
            ("none", None, None, "Nothing to do", "pull request action 'edited' changes no preview"),
        ),
        (
            "pull_request",
            pull_request("labeled", label={"name": "bug"}),
            "dev",
            ("none", None, None, "Nothing to do", "only the preview label deploys a preview"),
        ),
        ("pull_request", pull_request("labeled", label={"name": "preview"}), "dev", ("deploy", 42, SHA, None, None)),
        ("pull_request", pull_request(draft=True), "dev", ("none", None, None, "No preview for a draft", DRAFT)),
        (
            "pull_request",
            pull_request(draft=True, labels=[{"name": "preview"}]),
            "dev",
            ("deploy", 42, SHA, None, None),
        ),
        (
            "pull_request",
            pull_request(head={"sha": SHA.upper(), "repo": {"full_name": "o/r"}}),
            "dev",
            ("none", None, None, "Nothing to do", "the event carries no head commit"),
        ),
        ("pull_request", pull_request("synchronize"), "dev", ("deploy", 42, SHA, None, None)),
        ("pull_request", pull_request("reopened"), "dev", ("deploy", 42, SHA, None, None)),
        ("pull_request", pull_request("ready_for_review"), "dev", ("deploy", 42, SHA, None, None)),
    ],
)
def test_pull_request_decisions(
    name: str, event: dict[str, Any], actor: str, expected: tuple[str, int | None, str | None, str | None, str | None]
) -> None:
    decision = decide(name, event, repository="o/r", actor=actor, enabled=True)
    assert (decision.action, decision.pr, decision.head_sha, decision.notice_title, decision.notice) == expected


@pytest.mark.parametrize("name", ["schedule", "pull_request"])
def test_nothing_is_deployed_or_swept_while_previews_are_not_enabled(name: str) -> None:
    decision = decide(name, pull_request(), repository="o/r", actor="dev", enabled=False)
    assert (decision.action, decision.notice_title, decision.notice) == (
        "none",
        "Previews not configured",
        NOT_CONFIGURED,
    )


def test_the_guard_reads_the_actor_from_the_environment(
    guard: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("PREVIEWS_ENABLED", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "dependabot[bot]")
    write_event(guard, opened())
    assert main([]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"::notice title=No preview for Dependabot pull requests::{DEPENDABOT}"
    )
