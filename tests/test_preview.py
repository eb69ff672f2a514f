"""Pull-request previews: names, labels, idempotent namespaces, a teardown that spares shared parts, sweep, comment."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from dbstack.cli.main import main
from dbstack.config import naming
from dbstack.github.preview import (
    COMMENT_MARKER,
    LABEL_EXPIRES_AT,
    LABEL_HEAD_SHA,
    LABEL_PR,
    PreviewError,
    PreviewNamespace,
    PreviewTarget,
    label_value_problem,
    parse_namespace_list,
    prepare_namespace,
    render_comment,
    render_removed_comment,
    select_expired,
    sweep,
    teardown,
    teardown_commands,
)
from dbstack.plan.model import Command
from dbstack.run.results import CheckResult, DatabaseResult, Outcome, RunResults, StepResult
from dbstack.run.runner import CommandResult
from hypothesis import given
from hypothesis import strategies as st

T = TypeVar("T")
NOW = 1_800_000_000
SHA = "0123456789abcdef0123456789abcdef01234567"
# Stricter than a prefix match: a trailing newline must not pass.
K8S_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
KB_RELEASE = re.compile(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?")
K8S_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

pr_numbers = st.integers(min_value=1, max_value=10**7)
shas = st.text(alphabet="0123456789abcdef", min_size=7, max_size=64)
# Git refuses an empty branch name; anything else (unicode, slashes, dots, very long) can reach us.
branch_names = st.text(min_size=1, max_size=300)


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(coroutine)


@dataclass
class FakeCluster:
    """A Runner that keeps namespaces and Helm releases in memory and records every command it is given."""

    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    releases: dict[str, list[str]] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)
    fail_on: str | None = None
    """A fragment of a command line that makes that command fail."""

    def add_namespace(self, name: str, labels: dict[str, str], phase: str = "Active", *releases: str) -> None:
        self.namespaces[name] = {"metadata": {"name": name, "labels": labels}, "status": {"phase": phase}}
        self.releases[name] = list(releases)

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        self.commands.append(command)
        if self.fail_on and self.fail_on in str(command):
            return CommandResult(1, "", "Error from server: the server is on fire\nsecond line")
        argv = list(command.argv)
        match argv:
            case ["kubectl", "get", "namespace", name, "-o", "json", "--ignore-not-found"]:
                found = self.namespaces.get(name)
                return CommandResult(0, json.dumps(found) if found else "", "")
            case ["kubectl", "get", "namespaces", "-l", label, "-o", "json"]:
                items = [ns for ns in self.namespaces.values() if label in ns["metadata"].get("labels", {})]
                return CommandResult(0, json.dumps({"kind": "List", "items": items}), "")
            case ["kubectl", "apply", "-f", "-"]:
                manifest = json.loads(command.stdin or "{}")
                name = manifest["metadata"]["name"]
                if self.namespaces.get(name, {}).get("status", {}).get("phase") == "Terminating":
                    return CommandResult(1, "", f'namespace "{name}" is being deleted')
                self.add_namespace(name, manifest["metadata"]["labels"], "Active", *self.releases.get(name, []))
                return CommandResult(0, f"namespace/{name} configured", "")
            case ["kubectl", "wait", resource, "--for=delete", _]:
                self.namespaces.pop(resource.removeprefix("namespace/"), None)
                return CommandResult(0, "", "")
            case ["helm", "list", "-n", name, "--all", "-o", "json"]:
                return CommandResult(0, json.dumps([{"name": r} for r in self.releases.get(name, [])]), "")
            case ["helm", "uninstall", release, "-n", name, "--wait", _]:
                self.releases[name].remove(release)
                return CommandResult(0, f'release "{release}" uninstalled', "")
            case ["kubectl", "delete", "namespace", name, "--ignore-not-found", _]:
                self.namespaces.pop(name, None)
                self.releases.pop(name, None)
                return CommandResult(0, "", "")
        raise AssertionError(f"unexpected command {command}")


def _labels(pr: int, expires_at: int | str) -> dict[str, str]:
    return {LABEL_PR: str(pr), LABEL_HEAD_SHA: SHA, LABEL_EXPIRES_AT: str(expires_at)}


def _results(*, passed: bool = True, cause: str | None = None) -> RunResults:
    outcome = Outcome.PASSED if passed else Outcome.TIMED_OUT
    return RunResults(
        run_id="run-1",
        started_at=NOW,
        ended_at=NOW + 300,
        cluster_kind="existing",
        profile="ci",
        namespace="pr-42",
        versions={"kubeblocks": "1.0.1"},
        steps=[
            StepResult("kubeblocks", "Install KubeBlocks 1.0.1", "kubeblocks", None, Outcome.SKIPPED),
            StepResult("cluster:postgresql", "Deploy PostgreSQL", "cluster", "postgresql", outcome, cause=cause),
        ],
        databases=[
            DatabaseResult(
                key="postgresql",
                title="PostgreSQL",
                release="pg-cluster",
                namespace="pr-42",
                chart_version="1.0.1",
                version="16.4.0",
                mode="replication",
                replicas=2,
                service="pg-cluster-postgresql-postgresql",
                port=5432,
                secret="pg-cluster-postgresql-account-postgres",
                outcome=outcome,
                checks=[CheckResult("postgresql", "test_pgvector", Outcome.PASSED if passed else Outcome.FAILED)],
            ),
            DatabaseResult(
                key="qdrant",
                title="Qdrant",
                release="qdrant-cluster",
                namespace="pr-42",
                chart_version="1.0.1",
                version="1.10.0",
                mode=None,
                replicas=1,
                service="qdrant-cluster-qdrant-qdrant",
                port=6333,
                secret=None,
                outcome=Outcome.PASSED,
            ),
        ],
        smoke_outcome=Outcome.PASSED if passed else Outcome.FAILED,
    )


# Names


@given(pr_numbers)
def test_pr_namespace_is_a_valid_kubernetes_namespace(pr: int) -> None:
    namespace = PreviewTarget.create(pr, SHA, NOW).namespace
    assert naming.namespace_problem(namespace) is None
    assert K8S_NAMESPACE.fullmatch(namespace)
    assert namespace == f"pr-{pr}"


@given(branch_names)
def test_names_made_from_any_branch_satisfy_kubernetes_and_kubeblocks_rules(branch: str) -> None:
    namespace = naming.slug(branch, naming.NAMESPACE_MAX, must_start_with_letter=False)
    release = naming.slug(branch, naming.RELEASE_MAX, must_start_with_letter=True)
    assert naming.namespace_problem(namespace) is None and K8S_NAMESPACE.fullmatch(namespace), namespace
    assert naming.release_problem(release) is None and KB_RELEASE.fullmatch(release), release


@given(branch_names, branch_names)
def test_different_branches_never_share_a_release_name(first: str, second: str) -> None:
    if first != second:
        slug = naming.slug
        assert slug(first, 16, must_start_with_letter=True) != slug(second, 16, must_start_with_letter=True)


# Labels


@given(pr_numbers, shas, st.integers(min_value=0, max_value=4_000_000_000), st.integers(min_value=1, max_value=10**7))
def test_every_label_value_is_valid_for_kubernetes(pr: int, sha: str, now: int, ttl_s: int) -> None:
    target = PreviewTarget.create(pr, sha, now, ttl_s)
    for key, value in target.labels.items():
        assert label_value_problem(value) is None, (key, value)
        assert K8S_LABEL_VALUE.fullmatch(value), (key, value)
    assert int(target.labels[LABEL_EXPIRES_AT]) == now + ttl_s
    assert sha.startswith(target.labels[LABEL_HEAD_SHA])


@pytest.mark.parametrize("value", ["a" * 64, "-x", "x-", "2026-01-01T00:00:00+00:00", "x\n"])
def test_label_value_problem_rejects_what_kubernetes_rejects(value: str) -> None:
    assert label_value_problem(value) is not None


@pytest.mark.parametrize(
    ("pr", "sha", "ttl", "mentions"),
    [(0, SHA, 60, "pull request"), (1, "main", 60, "head commit"), (1, SHA, 0, "time to live")],
)
def test_preview_target_names_the_bad_argument(pr: int, sha: str, ttl: int, mentions: str) -> None:
    with pytest.raises(ValueError, match=mentions):
        PreviewTarget.create(pr, sha, NOW, ttl)


# Namespace: create, relabel in place, refuse foreign ones


def test_prepare_creates_the_namespace_with_its_labels() -> None:
    cluster = FakeCluster()
    target = PreviewTarget.create(7, SHA, NOW, 3600)
    run(lambda: prepare_namespace(cluster, target))
    labels = cluster.namespaces["pr-7"]["metadata"]["labels"]
    assert labels[LABEL_PR] == "7"
    assert labels[LABEL_HEAD_SHA] == SHA
    assert labels[LABEL_EXPIRES_AT] == str(NOW + 3600)


def test_second_prepare_updates_head_and_expiry_in_place() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-7", _labels(7, NOW), "Active", "pg-cluster")
    newer = PreviewTarget.create(7, "f" * 40, NOW + 500, 3600)
    run(lambda: prepare_namespace(cluster, newer))
    labels = cluster.namespaces["pr-7"]["metadata"]["labels"]
    assert labels[LABEL_HEAD_SHA] == "f" * 40
    assert labels[LABEL_EXPIRES_AT] == str(NOW + 500 + 3600)
    assert cluster.releases["pr-7"] == ["pg-cluster"]
    assert not any(c.argv[:2] == ("kubectl", "delete") for c in cluster.commands)


def test_prepare_waits_for_a_namespace_still_terminating_from_an_earlier_teardown() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-7", _labels(7, NOW), "Terminating")
    run(lambda: prepare_namespace(cluster, PreviewTarget.create(7, SHA, NOW)))
    verbs = [c.argv[1] for c in cluster.commands]
    assert verbs == ["get", "wait", "apply"]
    assert cluster.namespaces["pr-7"]["status"]["phase"] == "Active"


def test_prepare_refuses_a_namespace_dbstack_did_not_create() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-7", {"team": "payments"})
    with pytest.raises(PreviewError, match="did not create"):
        run(lambda: prepare_namespace(cluster, PreviewTarget.create(7, SHA, NOW)))
    assert cluster.namespaces["pr-7"]["metadata"]["labels"] == {"team": "payments"}


def test_a_failing_kubectl_becomes_one_line_naming_the_command() -> None:
    cluster = FakeCluster(fail_on="apply")
    with pytest.raises(PreviewError) as caught:
        run(lambda: prepare_namespace(cluster, PreviewTarget.create(7, SHA, NOW)))
    assert "\n" not in str(caught.value)
    assert "kubectl apply" in str(caught.value) and "on fire" in str(caught.value)


# Teardown


def test_teardown_uninstalls_the_releases_then_deletes_the_namespace() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-9", _labels(9, NOW), "Active", "pg-cluster", "redis-cluster")
    report = run(lambda: teardown(cluster, 9))
    assert report.releases == ("pg-cluster", "redis-cluster")
    assert "pr-9" not in cluster.namespaces
    assert [c.argv[:2] for c in cluster.commands[-3:]] == [
        ("helm", "uninstall"),
        ("helm", "uninstall"),
        ("kubectl", "delete"),
    ]


def test_teardown_of_a_missing_preview_succeeds_without_deleting_anything() -> None:
    cluster = FakeCluster()
    report = run(lambda: teardown(cluster, 9))
    assert not report.existed
    assert all(c.argv[1] == "get" for c in cluster.commands)


def test_teardown_leaves_kubeblocks_and_other_namespaces_alone() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("kb-system", {}, "Active", "kubeblocks", "kb-addon-postgresql")
    cluster.add_namespace("pr-9", _labels(9, NOW), "Active", "pg-cluster")
    cluster.add_namespace("pr-10", _labels(10, NOW), "Active", "pg-cluster")
    run(lambda: teardown(cluster, 9))
    assert cluster.releases["kb-system"] == ["kubeblocks", "kb-addon-postgresql"]
    assert "pr-10" in cluster.namespaces
    touched = " ".join(str(c) for c in cluster.commands)
    assert "kb-system" not in touched and "pr-10" not in touched


@pytest.mark.parametrize("namespace", ["kb-system", "default", "kube-system", "pr-0", "pr-7x", "pr-"])
def test_teardown_commands_refuse_any_namespace_but_a_preview(namespace: str) -> None:
    with pytest.raises(PreviewError, match="refusing"):
        teardown_commands(namespace, ["pg-cluster"])


@pytest.mark.parametrize("shared", ["kubeblocks", "kb-addon-redis"])
def test_teardown_refuses_a_preview_that_holds_kubeblocks_or_an_addon(shared: str) -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-9", _labels(9, NOW), "Active", "pg-cluster", shared)
    with pytest.raises(PreviewError, match="shares"):
        run(lambda: teardown(cluster, 9))
    assert cluster.releases["pr-9"] == ["pg-cluster", shared]


@given(pr_numbers, st.lists(st.from_regex(KB_RELEASE, fullmatch=True), max_size=6, unique=True))
def test_teardown_commands_only_ever_name_the_previews_namespace(pr: int, releases: list[str]) -> None:
    releases = [r for r in releases if r != "kubeblocks" and not r.startswith("kb-addon-")]
    commands = teardown_commands(naming.preview_namespace(pr), releases)
    for command in commands:
        assert naming.preview_namespace(pr) in command.argv
        assert not any(arg in ("kb-system", "kubeblocks", "-A", "--all-namespaces") for arg in command.argv)
    assert commands[-1].argv[:4] == ("kubectl", "delete", "namespace", f"pr-{pr}")


def test_teardown_refuses_a_pr_namespace_labelled_for_another_pr() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-9", _labels(10, NOW), "Active", "pg-cluster")
    with pytest.raises(PreviewError, match="refusing"):
        run(lambda: teardown(cluster, 9))
    assert "pr-9" in cluster.namespaces


# Expiry and the sweep


def _ns(name: str, labels: dict[str, str]) -> PreviewNamespace:
    return PreviewNamespace(name, labels)


def test_only_namespaces_whose_expiry_has_passed_are_selected() -> None:
    namespaces = [_ns("pr-1", _labels(1, NOW - 1)), _ns("pr-2", _labels(2, NOW)), _ns("pr-3", _labels(3, NOW + 1))]
    assert [ns.name for ns in select_expired(namespaces, NOW)] == ["pr-1", "pr-2"]


@pytest.mark.parametrize(
    "labels",
    [
        {LABEL_PR: "1"},
        {LABEL_PR: "1", LABEL_EXPIRES_AT: ""},
        {LABEL_PR: "1", LABEL_EXPIRES_AT: "-5"},
        {LABEL_PR: "1", LABEL_EXPIRES_AT: "1.5e9"},
        {LABEL_PR: "1", LABEL_EXPIRES_AT: "2026-01-01"},
        {LABEL_PR: "1", LABEL_EXPIRES_AT: "١٢٣"},
        {LABEL_PR: "1", LABEL_EXPIRES_AT: "12\n"},
        {LABEL_PR: "", LABEL_EXPIRES_AT: "1"},
        {LABEL_PR: "01", LABEL_EXPIRES_AT: "1"},
        {LABEL_PR: "2", LABEL_EXPIRES_AT: "1"},
    ],
)
def test_malformed_or_mismatched_labels_are_never_selected(labels: dict[str, str]) -> None:
    namespace = _ns("pr-1", labels)
    assert namespace.problem() is not None
    assert select_expired([namespace], NOW) == []


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=50),
            st.one_of(st.integers(min_value=0, max_value=2 * NOW).map(str), st.text(max_size=12)),
            st.booleans(),
        ),
        max_size=12,
        unique_by=lambda entry: entry[0],
    ),
    st.integers(min_value=0, max_value=2 * NOW),
)
def test_selection_is_exactly_the_well_labelled_previews_past_their_expiry(
    entries: list[tuple[int, str, bool]], now: int
) -> None:
    namespaces = [
        _ns(f"pr-{pr}" if named_right else f"other-{pr}", _labels(pr, exp)) for pr, exp, named_right in entries
    ]
    chosen = {ns.name for ns in select_expired(namespaces, now)}
    for (_, exp, named_right), ns in zip(entries, namespaces, strict=True):
        readable = named_right and exp.isascii() and exp.isdigit() and len(exp) <= 12
        assert (ns.name in chosen) == (readable and int(exp) <= now), (ns.name, exp)


def test_parse_namespace_list_reads_kubectls_list_and_skips_junk_items() -> None:
    text = json.dumps(
        {
            "kind": "List",
            "items": [
                {"metadata": {"name": "pr-1", "labels": _labels(1, NOW)}, "status": {"phase": "Active"}},
                {"metadata": {"labels": {}}},
                "junk",
                {"metadata": {"name": "pr-2", "labels": None}},
            ],
        }
    )
    parsed = parse_namespace_list(text)
    assert [(ns.name, ns.phase) for ns in parsed] == [("pr-1", "Active"), ("pr-2", None)]
    assert parsed[0].expires_at == NOW


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_parse_namespace_list_rejects_output_that_is_not_kubectl_json(text: str) -> None:
    with pytest.raises(PreviewError):
        parse_namespace_list(text)


def test_sweep_removes_expired_previews_keeps_live_ones_and_ignores_unreadable_ones() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-1", _labels(1, NOW - 10), "Active", "pg-cluster")
    cluster.add_namespace("pr-2", _labels(2, NOW + 10), "Active", "pg-cluster")
    cluster.add_namespace("pr-3", _labels(3, "soon"), "Active", "pg-cluster")
    cluster.add_namespace("kb-system", {LABEL_PR: "4", LABEL_EXPIRES_AT: "1"}, "Active", "kubeblocks")
    report = run(lambda: sweep(cluster, NOW))
    assert [r.namespace for r in report.removed] == ["pr-1"]
    assert report.kept == ["pr-2"]
    assert set(report.unreadable) == {"pr-3", "kb-system"}
    assert set(cluster.namespaces) == {"pr-2", "pr-3", "kb-system"}
    assert report.ok


def test_sweep_goes_on_after_one_teardown_fails_and_reports_it() -> None:
    cluster = FakeCluster(fail_on="uninstall pg-cluster -n pr-1")
    cluster.add_namespace("pr-1", _labels(1, NOW - 10), "Active", "pg-cluster")
    cluster.add_namespace("pr-2", _labels(2, NOW - 10), "Active", "pg-cluster")
    report = run(lambda: sweep(cluster, NOW))
    assert not report.ok
    assert "on fire" in report.failed["pr-1"]
    assert [r.namespace for r in report.removed] == ["pr-2"]
    assert "FAILED pr-1" in report.summary()


# The pull-request comment


def test_comment_carries_the_marker_status_services_and_secret_names() -> None:
    text = render_comment(_results(), pr=42, head_sha=SHA, run_url="https://github.com/o/r/actions/runs/1")
    assert text.startswith(COMMENT_MARKER)
    assert "ready" in text
    assert "`pg-cluster-postgresql-postgresql.pr-42.svc.cluster.local:5432`" in text
    assert "`qdrant-cluster-qdrant-qdrant.pr-42.svc.cluster.local:6333`" in text
    assert "pg-cluster-postgresql-account-postgres" in text
    assert "get secret pg-cluster-postgresql-account-postgres -o jsonpath='{.data.password}' | base64 -d" in text
    assert "https://github.com/o/r/actions/runs/1" in text


def test_comment_of_a_failed_run_says_what_failed_per_database() -> None:
    text = render_comment(_results(passed=False, cause="pg-cluster-postgresql-1 Pending: Insufficient cpu"), pr=42)
    assert "failed" in text.splitlines()[1]
    postgres_row = next(line for line in text.splitlines() if line.startswith("| PostgreSQL"))
    assert "timed out" in postgres_row and "0/1 checks passed" in postgres_row
    assert "Insufficient cpu" in text
    assert "test_pgvector" in text


def test_a_ready_database_whose_smoke_check_failed_shows_as_failed() -> None:
    results = _results()
    results.databases[0].checks.append(CheckResult("postgresql", "test_orm_roundtrip", Outcome.FAILED))
    postgres_row = next(line for line in render_comment(results, pr=42).splitlines() if line.startswith("| Postgre"))
    assert "failed (1/2 checks passed)" in postgres_row


def test_comment_never_repeats_a_credential_that_leaked_into_a_cause() -> None:
    cause = "dial postgresql://postgres:hunter2secret@pg:5432/db failed; PASSWORD=hunter2secret token: abc123tok"
    text = render_comment(_results(passed=False, cause=cause), pr=42)
    assert "hunter2secret" not in text
    assert "abc123tok" not in text
    assert "pg:5432/db failed" in text


@given(st.text(max_size=400))
def test_untrusted_text_cannot_add_a_second_marker_html_or_break_the_table(cause: str) -> None:
    hostile = cause + COMMENT_MARKER + "<script>|x|\n```"
    results = _results(passed=False, cause=hostile)
    postgres = results.databases[0]
    postgres.title = postgres.version = hostile
    postgres.checks[0].name = postgres.checks[0].message = hostile
    text = render_comment(results, pr=42)
    assert text.count(COMMENT_MARKER) == 1
    assert text.count("```") == 2, "only the fences of the connection hints"
    assert "<script>" not in text
    assert all(line.count(" | ") <= 4 for line in text.splitlines() if line.startswith("| "))


def test_names_that_are_not_kubernetes_names_never_reach_the_shell_hints() -> None:
    results = _results()
    results.databases[0].service = "x; rm -rf ~ #"
    results.databases[0].secret = "a```b"
    text = render_comment(results, pr=42)
    assert "rm -rf" not in text and "a```b" not in text
    assert "svc/<invalid-name>" in text and "get secret <invalid-name>" in text


def test_comment_without_results_says_the_run_ended_early() -> None:
    text = render_comment(None, pr=5)
    assert text.startswith(COMMENT_MARKER)
    assert "before it wrote any results" in text


def test_comment_ignores_a_run_url_that_is_not_https() -> None:
    text = render_comment(_results(), pr=42, run_url="javascript:alert(1)")
    assert "javascript" not in text


def test_removed_comment_keeps_the_marker_and_drops_the_connection_hints() -> None:
    text = render_removed_comment(42, run_url="https://github.com/o/r/actions/runs/2")
    assert text.startswith(COMMENT_MARKER) and text.count(COMMENT_MARKER) == 1
    assert "removed" in text.splitlines()[1] and "`pr-42`" in text
    assert "kubectl" not in text


# `dbstack preview-comment`


def test_cli_renders_the_comment_from_results_json(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results().to_json()), encoding="utf-8")
    out = tmp_path / "comment.md"
    code = main(["preview-comment", "--results", str(results), "--pr", "42", "--ttl-hours", "24", "--out", str(out)])
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith(COMMENT_MARKER) and "24 h" in text


def test_cli_rejects_a_missing_results_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preview-comment", "--results", str(tmp_path / "absent.json"), "--pr", "42"])
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_comments_no_results_when_allowed_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preview-comment", "--results", str(tmp_path / "absent.json"), "--pr", "42", "--allow-missing"])
    assert code == 0
    assert "before it wrote any results" in capsys.readouterr().out


def test_cli_renders_the_removed_comment_without_results(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-comment", "--pr", "42", "--removed"]) == 0
    assert "removed" in capsys.readouterr().out


def test_cli_asks_for_results_or_removed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-comment", "--pr", "42"]) == 2
    assert "--results" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["{not json", '{"schema_version": 99}', "[]"])
def test_cli_rejects_a_file_that_is_not_results_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    results = tmp_path / "results.json"
    results.write_text(content, encoding="utf-8")
    assert main(["preview-comment", "--results", str(results), "--pr", "42"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "bad",
    [
        ["--pr", "0"],
        ["--pr", "1", "--ttl-hours", "0"],
        ["--pr", "1", "--ttl-hours", "nan"],
        ["--pr", "1", "--ttl-hours", "inf"],
    ],
)
def test_cli_rejects_a_bad_pull_request_number_or_time_to_live(tmp_path: Path, bad: list[str]) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results().to_json()), encoding="utf-8")
    assert main(["preview-comment", "--results", str(results), *bad]) == 2
