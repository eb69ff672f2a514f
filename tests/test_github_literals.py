"""Small github-package values a user or the cluster sees, literally: the namespace manifest kubectl receives,
kubectl output it refuses, where a refused setting is, why a closed pull request's preview is still kept, how long
names get in the comment, and the guard's repository when the environment names none."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from dbstack.config.load import DEFAULT_PREVIEW, load_config
from dbstack.github.comment import render_comment
from dbstack.github.decide import main as decide_main
from dbstack.github.preview import (
    Action,
    Decision,
    PreviewError,
    PreviewNamespace,
    PreviewTarget,
    parse_namespace_list,
    quota_problems,
    sweep_decision,
)
from dbstack.run.results import CheckResult, Outcome, StepResult
from test_decide_main import guard, opened, write_event  # noqa: F401  (guard is a fixture)
from test_preview import NOW, SHA, _labels, _results

VALUES = Path(__file__).resolve().parents[1] / "values"


def test_the_namespace_manifest_goes_to_kubectl_with_its_keys_sorted() -> None:
    command = PreviewTarget.create(42, SHA, NOW).apply_command()
    assert command.argv == ("kubectl", "apply", "-f", "-")
    assert command.stdin == (
        '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"labels": {"app.kubernetes.io/managed-by": "dbstack", '
        '"dbstack.io/deployed-at": "1800000000", "dbstack.io/head-sha": "0123456789abcdef0123456789abcdef01234567", '
        '"dbstack.io/pr": "42"}, "name": "pr-42"}}'
    )


def test_kubectl_json_that_is_not_an_object_is_refused_in_those_words() -> None:
    with pytest.raises(PreviewError) as refused:
        parse_namespace_list('["pr-1"]')
    assert str(refused.value) == "kubectl printed JSON that is not an object"


def test_a_preview_of_the_full_profile_is_refused_at_the_line_that_enables_backup() -> None:
    full = load_config(VALUES, "full", [])
    (problem,) = [p for p in quota_problems(full) if "backup.enabled" in p]
    assert problem.startswith(f"{VALUES / 'profiles' / 'full' / 'pipeline.yaml'}:11: backup.enabled: ")


def test_a_closed_pull_request_s_preview_is_kept_saying_when_it_goes() -> None:
    settings = replace(DEFAULT_PREVIEW, closed_idle_hours=24.0)
    preview = PreviewNamespace("pr-9", _labels(9, NOW))
    assert sweep_decision(preview, NOW + 3600, frozenset(), settings) == Decision(
        Action.KEEP, "closed, removed 24 h after its last deploy"
    )


def test_the_comment_shortens_a_step_title_past_120_characters_and_a_database_title_past_40() -> None:
    results = _results(passed=False, cause="pods not ready")
    long_step = "Deploy " + "p" * 114  # 121 characters
    results.steps[1] = StepResult("cluster:postgresql", long_step, "cluster", "postgresql", Outcome.TIMED_OUT)
    results.databases[0].title = "PostgreSQL " + "x" * 30  # 41 characters
    results.databases[0].checks = [CheckResult("postgresql", "test_pgvector", Outcome.FAILED, message="no vector")]
    lines = render_comment(results, pr=42, head_sha=SHA).splitlines()
    assert f"- Deploy {'p' * 112}…: ⏱️ timed out" in lines
    assert f"- PostgreSQL {'x' * 28}… `test_pgvector`: no vector" in lines


def test_the_guard_without_a_repository_in_its_environment_treats_a_head_without_one_as_a_fork(
    guard: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("PREVIEWS_ENABLED", "true")
    event = opened()
    del event["pull_request"]["head"]["repo"]["full_name"]
    write_event(guard, event)
    assert decide_main([]) == 0
    assert (guard / "output").read_text().startswith("action=none\n")
    assert "::notice title=No preview for fork pull requests::" in capsys.readouterr().out


def test_the_guard_s_help_says_what_its_one_option_is_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exited:
        decide_main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m dbstack.github.decide [-h] [--pull-request PULL_REQUEST]\n")
    assert "  --pull-request PULL_REQUEST\n                        the pull request (API JSON), manual runs\n" in out


@pytest.mark.parametrize(
    ("labels", "decision"),
    [
        (
            {**_labels(9, NOW), "dbstack.io/teardown-started-at": str(NOW)},
            Decision(Action.REMOVE, "its teardown started and did not finish"),
        ),
        (
            {**_labels(9, NOW), "dbstack.io/pr": "nine"},
            Decision(Action.IGNORE, "label dbstack.io/pr='nine' is not a pull request number"),
        ),
        (
            {**_labels(9, NOW), "dbstack.io/deployed-at": "yesterday"},
            Decision(Action.IGNORE, "label dbstack.io/deployed-at='yesterday' is not a Unix time"),
        ),
    ],
)
def test_the_sweep_s_reasons_for_a_condemned_or_mislabelled_preview(labels: dict[str, str], decision: Decision) -> None:
    assert sweep_decision(PreviewNamespace("pr-9", labels), NOW, frozenset({9}), DEFAULT_PREVIEW) == decision


def test_kubectl_output_that_is_not_json_is_refused_with_the_parser_s_reason() -> None:
    with pytest.raises(PreviewError) as refused:
        parse_namespace_list("error: the server doesn't have a resource type")
    assert str(refused.value) == "kubectl printed something that is not JSON (Expecting value)"


def test_a_memory_quota_below_the_databases_requests_is_refused_in_full() -> None:
    config = load_config(VALUES, "ci", ["preview.quota.memoryGi=1"])
    (problem,) = quota_problems(config)
    assert problem.startswith(
        "--set preview.quota.memoryGi=1:1: preview.quota.memoryGi: the enabled databases request "
    )
    assert problem.endswith(
        " Gi of memory, the preview quota allows 1 (allowed: raise it, or lower requests in a profile)"
    )
