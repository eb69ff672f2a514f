"""Pull-request previews: names and labels; a namespace that is only ever made labelled, within the cap, with its
quota; teardowns that finish even after an interruption; a sweep that tells open from closed pull requests and
reads the labels again before deleting; the platform check; the comments and their envelopes."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from dbstack.cli.main import main
from dbstack.config import naming
from dbstack.config.load import DEFAULT_PREVIEW, PreviewSettings, load_config
from dbstack.github.comment import (
    COMMENT_MARKER,
    EXPIRED_HEADING,
    render_comment,
    render_expired_comment,
    render_removed_comment,
)
from dbstack.github.platform import PlatformPins, check_platform, kubeconfig_problem, mint, platform_plan
from dbstack.github.preview import (
    LABEL_DEPLOYED_AT,
    LABEL_HEAD_SHA,
    LABEL_PR,
    LABEL_TEARDOWN,
    Action,
    PreviewError,
    PreviewNamespace,
    PreviewTarget,
    label_value_problem,
    parse_namespace_list,
    parse_open_prs,
    prepare_namespace,
    preview_plan,
    quota_problems,
    sweep,
    sweep_decision,
    teardown,
    teardown_commands,
)
from dbstack.plan.build import build_plan
from dbstack.plan.model import Command, StepKind
from dbstack.run.results import CheckResult, DatabaseResult, Outcome, RunResults, StepResult
from dbstack.run.runner import CommandResult
from hypothesis import given
from hypothesis import strategies as st

T = TypeVar("T")
NOW = 1_800_000_000
HOUR = 3600
SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = Path(__file__).resolve().parents[1]
KLOG_LINE = (
    'W0101 00:00:00.000000   12345 warnings.go:70] metadata.finalizers: "x": prefer a domain-qualified finalizer'
)
FORBIDDEN = (  # kubectl StandardErrorMessage for an API Forbidden status
    'Error from server (Forbidden): namespaces "dbstack-pr-1" is forbidden: User "system:serviceaccount:ci:preview" '
    'cannot patch resource "namespaces" in API group "" at the cluster scope'
)
# Stricter than a prefix match: a trailing newline must not pass.
K8S_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
KB_RELEASE = re.compile(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?")
K8S_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
SETTINGS = replace(DEFAULT_PREVIEW, open_idle_hours=168, closed_idle_hours=0, max_concurrent=3)

pr_numbers = st.integers(min_value=1, max_value=10**7)
shas = st.text(alphabet="0123456789abcdef", min_size=7, max_size=64)
# Git refuses an empty branch name; anything else (unicode, slashes, dots, very long) can reach us.
branch_names = st.text(min_size=1, max_size=300)


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(coroutine)


@dataclass
class FakeCluster:
    """A Runner that keeps namespaces (labels, phase, Helm releases, namespaced objects) in memory and records
    every command it is given, answering the way kubectl and helm do for the commands previews issue."""

    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    releases: dict[str, list[str]] = field(default_factory=dict)
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Namespace -> RoleBindings, ResourceQuotas, LimitRanges applied into it."""
    commands: list[Command] = field(default_factory=list)
    fail_on: str | None = None
    """A fragment of a command line that makes that command fail."""
    failure: str = KLOG_LINE + "\n" + FORBIDDEN
    """What a failing command prints on stderr."""
    forbidden_first: int = 0
    """How many namespaced applies are refused (Forbidden) before the role binding takes effect."""
    before: dict[str, Callable[[FakeCluster], None]] = field(default_factory=dict)
    """Command fragment -> something another client does to the cluster just before that command runs."""

    def add_namespace(self, name: str, labels: dict[str, str], phase: str = "Active", *releases: str) -> None:
        self.namespaces[name] = {"metadata": {"name": name, "labels": dict(labels)}, "status": {"phase": phase}}
        self.releases[name] = list(releases)

    def labels(self, name: str) -> dict[str, str]:
        labels: dict[str, str] = self.namespaces[name]["metadata"]["labels"]
        return labels

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        self.commands.append(command)
        for fragment, act in list(self.before.items()):
            if fragment in str(command):
                del self.before[fragment]
                act(self)
        if self.fail_on and self.fail_on in str(command):
            return CommandResult(1, "", self.failure)
        argv = list(command.argv)
        match argv:
            case ["kubectl", "get", "namespace", name, "-o", "json", "--ignore-not-found"]:
                found = self.namespaces.get(name)
                return CommandResult(0, json.dumps(found) if found else "", "")
            case ["kubectl", "get", "namespaces", "-l", label, "-o", "json"]:
                items = [ns for ns in self.namespaces.values() if label in ns["metadata"].get("labels", {})]
                return CommandResult(0, json.dumps({"kind": "List", "items": items}), "")
            case ["kubectl", "apply", "-f", "-"]:
                return self._apply(json.loads(command.stdin or "{}"))
            case ["kubectl", "label", "namespace", name, *labels]:
                for label in (a for a in labels if a != "--overwrite"):
                    key, eq, value = label.partition("=")
                    if eq:
                        self.labels(name)[key] = value
                    else:  # `key-` removes it; a missing one is only noted
                        self.labels(name).pop(key.removesuffix("-"), None)
                return CommandResult(0, f"namespace/{name} labeled", "")
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
                self.objects.pop(name, None)
                return CommandResult(0, "", "")
        raise AssertionError(f"unexpected command {command}")

    def _apply(self, manifest: dict[str, Any]) -> CommandResult:
        if manifest["kind"] == "Namespace":
            name = manifest["metadata"]["name"]
            if self.namespaces.get(name, {}).get("status", {}).get("phase") == "Terminating":
                return CommandResult(1, "", f'namespace "{name}" is being deleted')
            # Client-side apply merges: labels it never applied (set by `kubectl label`) stay.
            kept = self.namespaces.get(name, {}).get("metadata", {}).get("labels", {})
            labels = {**kept, **manifest["metadata"]["labels"]}
            self.add_namespace(name, labels, "Active", *self.releases.get(name, []))
            return CommandResult(0, f"namespace/{name} configured", "")
        items = manifest["items"] if manifest["kind"] == "List" else [manifest]
        for item in items:
            namespace = item["metadata"]["namespace"]
            if namespace not in self.namespaces:
                return CommandResult(1, "", f'Error from server (NotFound): namespaces "{namespace}" not found')
            if item["kind"] != "RoleBinding" and self.forbidden_first > 0:
                self.forbidden_first -= 1
                return CommandResult(1, "", 'Error from server (Forbidden): resourcequotas is forbidden: User "x"')
        for item in items:
            self.objects.setdefault(item["metadata"]["namespace"], []).append(item)
        return CommandResult(0, "configured", "")


def _labels(pr: int, deployed_at: int | str) -> dict[str, str]:
    return {LABEL_PR: str(pr), LABEL_HEAD_SHA: SHA, LABEL_DEPLOYED_AT: str(deployed_at)}


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


@given(pr_numbers, shas, st.integers(min_value=0, max_value=4_000_000_000))
def test_every_label_value_is_valid_for_kubernetes(pr: int, sha: str, now: int) -> None:
    target = PreviewTarget.create(pr, sha, now)
    for key, value in target.labels.items():
        assert label_value_problem(value) is None, (key, value)
        assert K8S_LABEL_VALUE.fullmatch(value), (key, value)
    assert int(target.labels[LABEL_DEPLOYED_AT]) == now
    assert sha.startswith(target.labels[LABEL_HEAD_SHA])


@pytest.mark.parametrize("value", ["a" * 64, "-x", "x-", "2026-01-01T00:00:00+00:00", "x\n"])
def test_label_value_problem_rejects_what_kubernetes_rejects(value: str) -> None:
    assert label_value_problem(value) is not None


@pytest.mark.parametrize(
    ("pr", "sha", "mentions"),
    [(0, SHA, "pull request"), (1, "main", "head commit")],
)
def test_preview_target_names_the_bad_argument(pr: int, sha: str, mentions: str) -> None:
    with pytest.raises(ValueError, match=mentions):
        PreviewTarget.create(pr, sha, NOW)


# Namespace: created labelled, relabelled in place, never taken over, within the cap, with its quota


def _prepare(
    cluster: FakeCluster, pr: int = 7, sha: str = SHA, now: int = NOW, s: PreviewSettings = SETTINGS
) -> list[str]:
    return run(lambda: prepare_namespace(cluster, PreviewTarget.create(pr, sha, now), s))


def test_prepare_creates_the_namespace_with_its_labels_binding_quota_and_limits() -> None:
    cluster = FakeCluster()
    _prepare(cluster)
    assert cluster.labels("pr-7")[LABEL_PR] == "7"
    assert cluster.labels("pr-7")[LABEL_DEPLOYED_AT] == str(NOW)
    kinds = {o["kind"]: o for o in cluster.objects["pr-7"]}
    assert set(kinds) == {"RoleBinding", "ResourceQuota", "LimitRange"}
    assert kinds["RoleBinding"]["roleRef"]["name"] == "dbstack-preview-namespace"
    hard = kinds["ResourceQuota"]["spec"]["hard"]
    assert hard == {"requests.cpu": "8000m", "requests.memory": "16384Mi", "requests.storage": "200Gi", "pods": "50"}
    limit = kinds["LimitRange"]["spec"]["limits"][0]
    assert limit["defaultRequest"] == {"cpu": "50m", "memory": "64Mi"} and limit["default"]["cpu"] == "1000m"
    # The binding comes first: it is what allows creating the quota and limits.
    applied = [json.loads(c.stdin or "{}")["kind"] for c in cluster.commands if c.argv[:2] == ("kubectl", "apply")]
    assert applied == ["Namespace", "RoleBinding", "List"]


def test_quota_and_limits_come_from_values(tmp_path: Path) -> None:
    config = load_config(REPO / "values", "ci", ["preview.quota.cpu=3", "preview.containerDefaults.limitCpu=2"])
    cluster = FakeCluster()
    _prepare(cluster, s=config.preview)
    quota = next(o for o in cluster.objects["pr-7"] if o["kind"] == "ResourceQuota")
    assert quota["spec"]["hard"]["requests.cpu"] == "3000m"


def test_a_quota_below_what_the_databases_request_is_refused_before_any_cluster() -> None:
    config = load_config(REPO / "values", "ci", ["preview.quota.cpu=0.5"])
    problems = quota_problems(config)
    assert len(problems) == 1 and problems[0].startswith("--set preview.quota.cpu=0.5:1: preview.quota.cpu:")
    assert "request 0.85 cores" in problems[0]
    assert quota_problems(load_config(REPO / "values", "ci")) == []


@pytest.mark.parametrize(
    ("override", "mentions"),
    [
        ("preview.maxConcurrent=0", "preview.maxConcurrent"),
        ("preview.openIdleHours=-1", "preview.openIdleHours"),
        ("preview.quota.pods=lots", "preview.quota.pods"),
        ("preview.containerDefaults.requestCpu=4", "above limitCpu"),
        ("preview.quota.gpus=1", "unknown key"),
    ],
)
def test_preview_settings_are_validated_like_every_other_setting(
    capsys: pytest.CaptureFixture[str], override: str, mentions: str
) -> None:
    assert main(["validate", "--values", str(REPO / "values"), "--set", override]) == 2
    assert mentions in capsys.readouterr().err


def test_a_forbidden_right_after_the_binding_is_retried_until_rbac_catches_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("dbstack.github.preview.RBAC_SETTLE_PAUSE_S", 0.0)
    cluster = FakeCluster(forbidden_first=2)
    _prepare(cluster)
    assert {o["kind"] for o in cluster.objects["pr-7"]} == {"RoleBinding", "ResourceQuota", "LimitRange"}


def test_second_prepare_updates_head_and_deploy_time_in_place() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-7", _labels(7, NOW), "Active", "pg-cluster")
    _prepare(cluster, sha="f" * 40, now=NOW + 500)
    assert cluster.labels("pr-7")[LABEL_HEAD_SHA] == "f" * 40
    assert cluster.labels("pr-7")[LABEL_DEPLOYED_AT] == str(NOW + 500)
    assert cluster.releases["pr-7"] == ["pg-cluster"]
    assert not any(c.argv[:2] == ("kubectl", "delete") for c in cluster.commands)


def test_prepare_refuses_a_namespace_labelled_for_another_pull_request() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-7", _labels(8, NOW))
    with pytest.raises(PreviewError, match="did not create"):
        _prepare(cluster)


def test_a_namespace_recreated_without_labels_is_refused_and_only_an_explicit_adopt_removes_it() -> None:
    # An older preview's `helm --create-namespace` after the sweep deleted pr-7 left it with no labels at all.
    cluster = FakeCluster()
    cluster.add_namespace("pr-7", {"kubernetes.io/metadata.name": "pr-7"}, "Active", "pg-cluster")
    with pytest.raises(PreviewError, match=r"without dbstack labels.*adopt-unlabelled"):
        _prepare(cluster)
    with pytest.raises(PreviewError, match="no dbstack labels"):
        run(lambda: teardown(cluster, 7))
    assert "pr-7" in cluster.namespaces
    report = run(lambda: teardown(cluster, 7, adopt_unlabelled=True))
    assert report.adopted and "pr-7" not in cluster.namespaces
    assert "adopted" in report.summary()


def test_adopt_never_takes_a_namespace_labelled_for_another_pull_request() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-7", _labels(8, NOW))
    with pytest.raises(PreviewError, match="refusing"):
        run(lambda: teardown(cluster, 7, adopt_unlabelled=True))


def test_previews_never_ask_helm_to_create_their_namespace() -> None:
    config = load_config(REPO / "values", "ci", ["namespace=pr-7"])
    plan = preview_plan(build_plan(config), config.kubeblocks_namespace)
    assert {s.kind for s in plan.steps} == {StepKind.CLUSTER}
    assert all(s.needs == () for s in plan.steps)
    for step in plan.steps:
        for command in step.commands:
            assert "--create-namespace" not in command.argv
            assert command.argv[:3] == ("helm", "upgrade", "--install")


def test_preview_diagnostics_read_only_its_namespace_and_kb_system() -> None:
    config = load_config(REPO / "values", "ci", ["namespace=pr-7"])
    full = build_plan(config)
    plan = preview_plan(full, config.kubeblocks_namespace)
    kept = [d for s in plan.steps for d in s.diagnostics]
    assert kept, "a failed preview still collects its own diagnostics"
    for d in kept:
        argv = d.command.argv
        assert "-A" not in argv and "nodes" not in argv
        assert argv[argv.index("-n") + 1] in ("pr-7", "kb-system")
        assert not any(a.startswith("deploy/") for a in argv), "controller logs name other pull requests' clusters"
    dropped = {d.name for s in full.steps if s.kind is StepKind.CLUSTER for d in s.diagnostics} - {d.name for d in kept}
    assert dropped == {
        "kubeblocks.log",
        "kubeblocks-dataprotection.log",
        "addon.txt",
        "helm-releases.txt",
        "nodes.txt",
        "storageclasses.txt",
    }


# Concurrency cap


def test_a_new_preview_beyond_the_cap_fails_with_the_cap_and_the_running_previews_named() -> None:
    cluster = FakeCluster()
    for pr in (1, 2, 3):
        cluster.add_namespace(f"pr-{pr}", _labels(pr, NOW))
    with pytest.raises(PreviewError) as caught:
        _prepare(cluster, pr=9)
    message = str(caught.value)
    assert "3 previews already run (pr-1, pr-2, pr-3)" in message and "preview.maxConcurrent" in message
    assert "pr-9" not in cluster.namespaces


def test_the_cap_never_stops_a_redeploy_and_does_not_count_condemned_previews() -> None:
    cluster = FakeCluster()
    for pr in (1, 2, 3):
        cluster.add_namespace(f"pr-{pr}", _labels(pr, NOW))
    _prepare(cluster, pr=2)  # a redeploy of a running preview
    cluster.labels("pr-3")[LABEL_TEARDOWN] = str(NOW)
    _prepare(cluster, pr=9)
    assert "pr-9" in cluster.namespaces


# Teardown, and a reopen while it runs


def test_teardown_marks_the_namespace_condemned_then_uninstalls_and_deletes() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-9", _labels(9, NOW), "Active", "pg-cluster", "redis-cluster")
    report = run(lambda: teardown(cluster, 9, now=NOW))
    assert report.releases == ("pg-cluster", "redis-cluster")
    assert "pr-9" not in cluster.namespaces
    assert [c.argv[:2] for c in cluster.commands[-4:]] == [
        ("kubectl", "label"),
        ("helm", "uninstall"),
        ("helm", "uninstall"),
        ("kubectl", "delete"),
    ]


def test_reopen_during_a_teardown_that_was_cancelled_finishes_it_before_deploying_fresh() -> None:
    # Closed: the teardown labelled pr-9 condemned and uninstalled one release, then a synchronize cancelled it.
    cluster = FakeCluster()
    cluster.add_namespace("pr-9", {**_labels(9, NOW), LABEL_TEARDOWN: str(NOW)}, "Active", "redis-cluster")
    notes = _prepare(cluster, pr=9, now=NOW + 60)
    assert "finished that teardown first" in notes[0]
    verbs = [c.argv[:2] for c in cluster.commands]
    assert verbs.index(("kubectl", "delete")) < max(i for i, v in enumerate(verbs) if v == ("kubectl", "apply"))
    assert cluster.releases.get("pr-9") == []
    assert LABEL_TEARDOWN not in cluster.labels("pr-9")
    assert cluster.labels("pr-9")[LABEL_DEPLOYED_AT] == str(NOW + 60)


def test_reopen_while_the_namespace_is_still_terminating_waits_for_it_to_go() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-9", _labels(9, NOW), "Terminating")
    _prepare(cluster, pr=9)
    verbs = [c.argv[1] for c in cluster.commands]
    assert verbs[:3] == ["get", "get", "wait"]
    assert cluster.namespaces["pr-9"]["status"]["phase"] == "Active"


def test_a_teardown_run_again_after_an_interruption_finishes_the_job() -> None:
    cluster = FakeCluster(fail_on="uninstall redis-cluster")
    cluster.add_namespace("pr-9", _labels(9, NOW), "Active", "pg-cluster", "redis-cluster")
    with pytest.raises(PreviewError):
        run(lambda: teardown(cluster, 9, now=NOW))
    assert LABEL_TEARDOWN in cluster.labels("pr-9"), "condemned before anything was removed"
    cluster.fail_on = None
    run(lambda: teardown(cluster, 9, now=NOW + 5))
    assert "pr-9" not in cluster.namespaces


def test_a_helm_uninstall_that_runs_out_of_its_own_timeout_reads_as_a_timeout() -> None:
    # Helm 3: pkg/action/uninstall.go after pkg/kube/wait.go's poll ran past --timeout.
    timed_out = "Error: uninstallation completed with 1 error(s): context deadline exceeded"
    cluster = FakeCluster(fail_on="uninstall redis-cluster", failure=timed_out)
    cluster.add_namespace("pr-9", _labels(9, NOW), "Active", "redis-cluster")
    with pytest.raises(PreviewError, match=f"did not finish within its --timeout: {re.escape(timed_out)}$"):
        run(lambda: teardown(cluster, 9, now=NOW))


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
def test_teardown_refuses_a_preview_that_holds_kubeblocks_or_an_addon_before_changing_anything(shared: str) -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-9", _labels(9, NOW), "Active", "pg-cluster", shared)
    with pytest.raises(PreviewError, match="shares"):
        run(lambda: teardown(cluster, 9))
    assert cluster.releases["pr-9"] == ["pg-cluster", shared]
    assert LABEL_TEARDOWN not in cluster.labels("pr-9")


@given(pr_numbers, st.lists(st.from_regex(KB_RELEASE, fullmatch=True), max_size=6, unique=True))
def test_teardown_commands_only_ever_name_the_previews_namespace(pr: int, releases: list[str]) -> None:
    releases = [r for r in releases if r != "kubeblocks" and not r.startswith("kb-addon-")]
    commands = teardown_commands(naming.preview_namespace(pr), releases)
    for command in commands:
        assert naming.preview_namespace(pr) in command.argv
        assert not any(arg in ("kb-system", "kubeblocks", "-A", "--all-namespaces") for arg in command.argv)
    assert commands[-1].argv[:4] == ("kubectl", "delete", "namespace", f"pr-{pr}")


# The sweep: open and closed pull requests, idle limits, labels read again before deleting


def _ns(name: str, labels: dict[str, str], phase: str = "Active") -> PreviewNamespace:
    return PreviewNamespace(name, labels, phase)


@pytest.mark.parametrize(
    ("idle_hours", "open_", "action"),
    [
        (1, False, Action.REMOVE),  # closed or merged: at once (closedIdleHours 0)
        (1, True, Action.KEEP),  # open, pushed an hour ago
        (100, True, Action.KEEP),  # open over a long weekend: kept, the old TTL would have removed it
        (168, True, Action.EXPIRE),  # open and idle for openIdleHours
        (500, True, Action.EXPIRE),
    ],
)
def test_sweep_decision_tells_open_from_closed_pull_requests(idle_hours: int, open_: bool, action: Action) -> None:
    ns = _ns("pr-5", _labels(5, NOW - idle_hours * HOUR))
    assert sweep_decision(ns, NOW, frozenset({5}) if open_ else frozenset(), SETTINGS).action is action


def test_the_closed_idle_limit_is_separate_from_the_open_one() -> None:
    settings = replace(SETTINGS, closed_idle_hours=24)
    ns = _ns("pr-5", _labels(5, NOW - 2 * HOUR))
    assert sweep_decision(ns, NOW, frozenset(), settings).action is Action.KEEP
    assert sweep_decision(ns, NOW + 24 * HOUR, frozenset(), settings).action is Action.REMOVE


def test_a_condemned_namespace_is_removed_whatever_its_pull_request() -> None:
    ns = _ns("pr-5", {**_labels(5, NOW), LABEL_TEARDOWN: str(NOW)})
    assert sweep_decision(ns, NOW, frozenset({5}), SETTINGS).action is Action.REMOVE


@pytest.mark.parametrize(
    "labels",
    [
        {LABEL_PR: "1"},
        {LABEL_PR: "1", LABEL_DEPLOYED_AT: ""},
        {LABEL_PR: "1", LABEL_DEPLOYED_AT: "-5"},
        {LABEL_PR: "1", LABEL_DEPLOYED_AT: "1.5e9"},
        {LABEL_PR: "1", LABEL_DEPLOYED_AT: "2026-01-01"},
        {LABEL_PR: "1", LABEL_DEPLOYED_AT: "١٢٣"},
        {LABEL_PR: "1", LABEL_DEPLOYED_AT: "12\n"},
        {LABEL_PR: "", LABEL_DEPLOYED_AT: "1"},
        {LABEL_PR: "01", LABEL_DEPLOYED_AT: "1"},
        {LABEL_PR: "2", LABEL_DEPLOYED_AT: "1"},
    ],
)
def test_malformed_or_mismatched_labels_are_never_removed(labels: dict[str, str]) -> None:
    decision = sweep_decision(_ns("pr-1", labels), NOW, frozenset(), SETTINGS)
    assert decision.action is Action.IGNORE


@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=400), st.booleans()),
        max_size=12,
        unique_by=lambda entry: entry[0],
    )
)
def test_an_open_pull_requests_preview_goes_only_after_the_open_idle_limit(
    entries: list[tuple[int, int, bool]],
) -> None:
    open_prs = frozenset(pr for pr, _, is_open in entries if is_open)
    for pr, idle_h, is_open in entries:
        action = sweep_decision(_ns(f"pr-{pr}", _labels(pr, NOW - idle_h * HOUR)), NOW, open_prs, SETTINGS).action
        if is_open:
            assert action is (Action.EXPIRE if idle_h >= 168 else Action.KEEP)
        else:
            assert action is Action.REMOVE


@pytest.mark.parametrize(("text", "expected"), [("none", set()), ("12", {12}), ("3,12,7", {3, 7, 12})])
def test_open_pull_requests_parse(text: str, expected: set[int]) -> None:
    assert parse_open_prs(text) == expected


@pytest.mark.parametrize("text", ["", " ", "12,", "1 2", "0", "-3", "x", "12,,13", "null"])
def test_a_missing_or_garbled_list_of_open_pull_requests_is_refused(text: str) -> None:
    # Taking a failed lookup for "nothing is open" would remove every open pull request's preview.
    with pytest.raises(PreviewError):
        parse_open_prs(text)


def test_sweep_removes_closed_expires_idle_open_keeps_the_rest_and_ignores_unreadable() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-1", _labels(1, NOW - 10), "Active", "pg-cluster")  # closed
    cluster.add_namespace("pr-2", _labels(2, NOW - 72 * HOUR), "Active", "pg-cluster")  # open, a long weekend
    cluster.add_namespace("pr-3", _labels(3, NOW - 200 * HOUR), "Active", "pg-cluster")  # open, idle
    cluster.add_namespace("pr-4", _labels(4, "soon"), "Active", "pg-cluster")
    cluster.add_namespace("kb-system", {LABEL_PR: "4", LABEL_DEPLOYED_AT: "1"}, "Active", "kubeblocks")
    report = run(lambda: sweep(cluster, NOW, frozenset({2, 3, 4}), SETTINGS))
    assert [r.namespace for r in report.removed] == ["pr-1", "pr-3"]
    assert report.closed == [1] and report.expired == [3]
    assert [k.split(":")[0] for k in report.kept] == ["pr-2"]
    assert set(report.unreadable) == {"pr-4", "kb-system"}
    assert set(cluster.namespaces) == {"pr-2", "pr-4", "kb-system"}
    assert report.ok and report.to_json()["expired"] == [3]


def test_sweep_reads_the_labels_again_and_spares_a_preview_redeployed_meanwhile() -> None:
    cluster = FakeCluster()
    cluster.add_namespace("pr-3", _labels(3, NOW - 200 * HOUR), "Active", "pg-cluster")

    def push(c: FakeCluster) -> None:  # a push redeploys pr-3 between the list and the removal
        c.labels("pr-3")[LABEL_DEPLOYED_AT] = str(NOW)

    cluster.before["get namespace pr-3"] = push
    report = run(lambda: sweep(cluster, NOW, frozenset({3}), SETTINGS))
    assert report.removed == [] and report.expired == []
    assert "redeployed while the sweep ran" in report.kept[0]
    assert "pr-3" in cluster.namespaces
    assert not any(c.argv[:2] in (("kubectl", "delete"), ("helm", "uninstall")) for c in cluster.commands)


def test_sweep_goes_on_after_one_teardown_fails_and_reports_it() -> None:
    cluster = FakeCluster(fail_on="uninstall pg-cluster -n pr-1")
    cluster.add_namespace("pr-1", _labels(1, NOW - 10), "Active", "pg-cluster")
    cluster.add_namespace("pr-2", _labels(2, NOW - 10), "Active", "pg-cluster")
    report = run(lambda: sweep(cluster, NOW, frozenset(), SETTINGS))
    assert not report.ok
    assert "is forbidden" in report.failed["pr-1"] and "warnings.go" not in report.failed["pr-1"]
    assert [r.namespace for r in report.removed] == ["pr-2"]
    assert "FAILED pr-1" in report.summary()


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
    assert parsed[0].deployed_at == NOW


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_parse_namespace_list_rejects_output_that_is_not_kubectl_json(text: str) -> None:
    with pytest.raises(PreviewError):
        parse_namespace_list(text)


def test_a_failing_kubectl_becomes_one_line_naming_the_command() -> None:
    cluster = FakeCluster(fail_on="apply")
    with pytest.raises(PreviewError) as caught:
        _prepare(cluster)
    assert "\n" not in str(caught.value)
    assert "kubectl apply" in str(caught.value) and "is forbidden" in str(caught.value)


# The platform: previews check it, the Platform workflow installs it


@dataclass
class PlatformCluster:
    """Answers the platform check's reads the way kubectl does, with the labels the charts set (`helm.sh/chart:
    <chart>-<version>`, upstream `_helpers.tpl` of the kubeblocks and addon charts)."""

    kubeblocks: str | None = "1.0.1"
    addons: dict[str, str] = field(default_factory=dict)
    crds_missing: tuple[str, ...] = ()
    commands: list[Command] = field(default_factory=list)

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        self.commands.append(command)
        argv = command.argv
        if argv[:3] == ("kubectl", "get", "crd"):
            names = [a for a in argv[3:] if not a.startswith("-") and a != "json"]
            items = [{"metadata": {"name": n}} for n in names if n not in self.crds_missing]
            return CommandResult(0, json.dumps({"kind": "List", "items": items}), "")
        if "deployment" in argv:
            if self.kubeblocks is None:
                return CommandResult(0, "", "")
            labels = {"helm.sh/chart": f"kubeblocks-{self.kubeblocks}", "app.kubernetes.io/version": self.kubeblocks}
            deployment = {"metadata": {"name": "kubeblocks", "labels": labels}, "status": {"availableReplicas": 1}}
            return CommandResult(0, json.dumps(deployment), "")
        if argv[2] == "clusterdefinition.apps.kubeblocks.io":
            name = argv[3]
            if name not in self.addons:
                return CommandResult(0, "", "")
            definition = {"metadata": {"name": name, "labels": {"helm.sh/chart": f"{name}-{self.addons[name]}"}}}
            return CommandResult(0, json.dumps(definition), "")
        raise AssertionError(f"unexpected command {command}")


def _pins() -> PlatformPins:
    return PlatformPins.from_config(load_config(REPO / "values", "ci"))


ALL_ADDONS = {"postgresql": "1.0.1", "redis": "1.0.1", "qdrant": "1.0.1", "elasticsearch": "1.0.1"}


def test_the_platform_at_the_pinned_versions_passes_the_check() -> None:
    run(lambda: check_platform(PlatformCluster(addons=dict(ALL_ADDONS)), _pins()))


def test_a_version_mismatch_of_the_platform_stops_the_preview_with_both_versions_named() -> None:
    cluster = PlatformCluster(kubeblocks="1.0.0", addons={**ALL_ADDONS, "redis": "1.0.0"})
    with pytest.raises(PreviewError) as caught:
        run(lambda: check_platform(cluster, _pins()))
    message = str(caught.value)
    assert "KubeBlocks 1.0.0 is installed, values/ pins 1.0.1" in message
    assert "addon redis 1.0.0 is installed, values/ pins 1.0.1" in message
    assert "Platform workflow" in message and "\n" not in message


def test_reuse_installed_any_lets_a_preview_stand_on_another_platform_version_but_not_a_missing_one() -> None:
    pins = PlatformPins.from_config(load_config(REPO / "values", "ci", ["kubeblocks.reuseInstalled=any"]))
    older = PlatformCluster(kubeblocks="1.0.0", addons={**ALL_ADDONS, "redis": "1.0.0"})
    run(lambda: check_platform(older, pins))
    missing = PlatformCluster(kubeblocks="1.0.0", addons={"postgresql": "1.0.0"})
    with pytest.raises(PreviewError, match="addon redis is not installed"):
        run(lambda: check_platform(missing, pins))


def test_a_missing_platform_is_named_part_by_part() -> None:
    cluster = PlatformCluster(
        kubeblocks=None, addons={"postgresql": "1.0.1"}, crds_missing=("volumesnapshots.snapshot.storage.k8s.io",)
    )
    with pytest.raises(PreviewError) as caught:
        run(lambda: check_platform(cluster, _pins()))
    message = str(caught.value)
    assert "CRDs missing: volumesnapshots.snapshot.storage.k8s.io" in message
    assert "KubeBlocks is not installed" in message
    assert "addon qdrant is not installed" in message and "addon postgresql" not in message


def test_the_platform_check_only_reads() -> None:
    cluster = PlatformCluster(addons=dict(ALL_ADDONS))
    run(lambda: check_platform(cluster, _pins()))
    assert all(c.argv[0] == "kubectl" and "get" in c.argv for c in cluster.commands)


def test_the_platform_plan_upgrades_everything_previews_share_and_deploys_no_database() -> None:
    plan = platform_plan(build_plan(load_config(REPO / "values", "ci")))
    kinds = [s.kind for s in plan.steps]
    assert StepKind.CLUSTER not in kinds and plan.endpoints == ()
    assert {StepKind.SNAPSHOT_CRDS, StepKind.KUBEBLOCKS_CRDS, StepKind.KUBEBLOCKS, StepKind.ADDON} <= set(kinds)
    assert all(s.skip_when == () for s in plan.steps), "installed parts are upgraded to the pins, not skipped"


def test_a_kubeconfig_with_an_exec_plugin_is_refused_with_the_fix() -> None:
    view = {"users": [{"name": "eks", "user": {"exec": {"command": "aws", "args": ["eks", "get-token"]}}}]}
    problem = kubeconfig_problem(json.dumps(view))
    assert problem is not None and "'aws'" in problem and "preview-kubeconfig" in problem
    static = {"users": [{"name": "ci", "user": {"token": "REDACTED"}}]}
    assert kubeconfig_problem(json.dumps(static)) is None


def test_minting_takes_server_and_ca_from_the_admin_and_the_token_from_the_secret() -> None:
    admin = {
        "clusters": [{"name": "c", "cluster": {"server": "https://api:6443", "certificate-authority-data": "Q0E="}}]
    }
    secret = {"data": {"token": "c2VjcmV0LXRva2Vu"}}
    kubeconfig = json.loads(mint(json.dumps(admin), json.dumps(secret)))
    assert kubeconfig["clusters"][0]["cluster"] == {"server": "https://api:6443", "certificate-authority-data": "Q0E="}
    assert kubeconfig["users"][0]["user"] == {"token": "secret-token"}
    assert kubeconfig_problem(json.dumps(kubeconfig)) is None


def test_minting_without_a_token_yet_says_what_to_do_and_leaks_nothing() -> None:
    admin = {"clusters": [{"cluster": {"server": "https://api:6443", "certificate-authority-data": "Q0E="}}]}
    with pytest.raises(PreviewError) as caught:
        mint(json.dumps(admin), json.dumps({"data": {}}))
    assert "apply platform/preview-rbac.yaml" in str(caught.value) and "Q0E=" not in str(caught.value)


# Helm state: a release a cancelled deploy left in pending-install


def test_a_preview_recovers_a_release_a_cancelled_deploy_left_pending_install(tmp_path: Path) -> None:
    from dbstack.sim.cluster import Scenario, SimCluster, Stuck, run_simulated

    config = load_config(REPO / "values", "ci", ["namespace=pr-7", "databases.redis.enabled=false"])
    plan = preview_plan(build_plan(config), config.kubeblocks_namespace)
    stuck = {"pg-cluster": Stuck("pr-7", "postgresql-cluster", "pending-install", age_s=2 * HOUR)}
    scenario = Scenario(
        preinstalled=True, preinstalled_addons=frozenset({"postgresql", "qdrant", "elasticsearch"}), stuck=stuck
    )
    cluster = SimCluster(scenario)
    results = run_simulated(plan, cluster, tmp_path)
    step = next(s for s in results.steps if s.id == "cluster:postgresql")
    assert step.outcome is Outcome.PASSED
    argvs = [c.argv for c in cluster.calls]
    uninstall = next(
        i for i, a in enumerate(argvs) if a[:5] == ("helm", "uninstall", "pg-cluster", "-n", "pr-7") and "--wait" in a
    )
    assert uninstall < max(i for i, a in enumerate(argvs) if a[:4] == ("helm", "upgrade", "--install", "pg-cluster"))
    assert "pending-install" in " ".join(step.notes)


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


@pytest.mark.parametrize(
    ("head_sha", "facts"),
    [
        (SHA, "namespace `pr-42` · commit `0123456789ab`"),
        ("0123456", "namespace `pr-42` · commit `0123456`"),
        ("012345", "namespace `pr-42`"),  # too short to name a commit
        (SHA.upper(), "namespace `pr-42`"),
        ("0123456789ab` [click](https://evil.example)", "namespace `pr-42`"),
        ("0123456789abcdef\n### injected", "namespace `pr-42`"),
        ("g123456789abcdef", "namespace `pr-42`"),
        ("", "namespace `pr-42`"),
        (None, "namespace `pr-42`"),
    ],
)
def test_the_comment_names_the_head_commit_only_when_it_is_a_commit_hash(head_sha: str | None, facts: str) -> None:
    assert render_comment(_results(), pr=42, head_sha=head_sha).splitlines()[3] == facts


def test_pipes_in_table_cells_are_escaped_so_the_row_keeps_its_four_columns() -> None:
    results = _results()
    results.databases[0].title = "Postgre|SQL"
    results.databases[0].version = "16|4"
    row = next(line for line in render_comment(results, pr=42).splitlines() if line.startswith("| Postgre"))
    assert row == (
        "| Postgre\\|SQL 16\\|4 | ✅ passed (1/1 checks passed) | `pg-cluster-postgresql-postgresql.pr-42.svc.cluster."
        "local:5432` | `pg-cluster-postgresql-account-postgres` |"
    )


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
    code = main(["preview-comment", "--results", str(results), "--pr", "42", "--idle-hours", "24", "--out", str(out)])
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith(COMMENT_MARKER) and "24 h" in text


def test_cli_takes_the_idle_limit_from_the_values_folder_it_is_given(tmp_path: Path) -> None:
    values = tmp_path / "values"
    shutil.copytree(REPO / "values", values)
    settings = values / "pipeline.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace("openIdleHours: 168", "openIdleHours: 36"))
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results().to_json()), encoding="utf-8")
    out = tmp_path / "comment.md"
    argv = ["preview-comment", "--results", str(results), "--pr", "42", "--values", str(values), "--out", str(out)]
    assert main(argv) == 0
    assert "36 h" in out.read_text(encoding="utf-8")


def test_cli_rejects_a_missing_results_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["preview-comment", "--results", str(tmp_path / "absent.json"), "--pr", "42"])
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_warns_about_a_run_url_or_commit_it_drops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results().to_json()), encoding="utf-8")
    argv = ["preview-comment", "--results", str(results), "--pr", "42", "--run-url", "http://ci/run/1"]
    assert main([*argv, "--head-sha", "not-a-sha"]) == 0
    out, err = capsys.readouterr()
    assert "http://ci/run/1" not in out and "not-a-sha" not in out
    assert err.splitlines() == [
        "dbstack preview-comment: warning: --run-url 'http://ci/run/1' is not an https:// URL; the comment has no "
        "run link",
        "dbstack preview-comment: warning: --head-sha 'not-a-sha' is not a commit hash (7 to 64 hex digits, lower "
        "case); the comment names no commit",
    ]
    assert main(["preview-comment", "--results", str(results), "--pr", "42", "--run-url", "https://ci/run/1"]) == 0
    assert capsys.readouterr().err == ""


def test_a_step_not_run_does_not_say_not_run_twice() -> None:
    results = _results()
    step = results.steps[-1]
    step.outcome, step.cause = Outcome.NOT_RUN, "not run: preflight failed"
    assert "not run: not run" not in render_comment(results, pr=42)
    assert "⚪ not run: preflight failed" in render_comment(results, pr=42)


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
        ["--pr", "1", "--idle-hours", "0"],
        ["--pr", "1", "--idle-hours", "nan"],
        ["--pr", "1", "--idle-hours", "inf"],
    ],
)
def test_cli_rejects_a_bad_pull_request_number_or_time_to_live(tmp_path: Path, bad: list[str]) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results().to_json()), encoding="utf-8")
    assert main(["preview-comment", "--results", str(results), *bad]) == 2


# Envelopes: removal notes only update; deployments per pull request


def test_removal_and_expiry_notes_never_create_a_comment_and_make_the_deployment_inactive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flag in ("--removed", "--expired"):
        assert main(["preview-comment", "--pr", "42", flag, "--idle-hours", "168", "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["createIfMissing"] is False
        assert data["deployment"] == {
            "environment": "pr-42",
            "state": "inactive",
            "ref": None,
            "logUrl": None,
            "description": "preview removed",
        }


def test_the_expired_comment_says_how_to_get_the_preview_back() -> None:
    text = render_expired_comment(42, idle_hours=168)
    assert text.startswith(COMMENT_MARKER)
    assert text.splitlines()[1].endswith("expired — push or run the redeploy to recreate")
    assert EXPIRED_HEADING in text and "168 h" in text and "`redeploy`" in text


def test_a_deploy_envelope_creates_the_comment_and_records_the_commit_checked_out(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results().to_json()), encoding="utf-8")
    out = tmp_path / "e.json"
    trace = "https://dagger.cloud/acme/traces/abc123"
    argv = ["preview-comment", "--results", str(results), "--pr", "42", "--head-sha", SHA, "--format", "json"]
    assert (
        main([*argv, "--trace-url", trace, "--run-url", "https://github.com/o/r/actions/runs/1", "--out", str(out)])
        == 0
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["createIfMissing"] is True
    assert data["deployment"]["state"] == "success" and data["deployment"]["ref"] == SHA
    assert f"commit `{SHA[:12]}`" in data["body"] and f"[Dagger trace]({trace})" in data["body"]


@pytest.mark.parametrize("head_sha", ["not-a-sha", SHA.upper(), SHA + "\n"])
def test_a_deploy_envelope_records_no_deployment_for_a_head_that_is_not_a_commit_hash(
    tmp_path: Path, head_sha: str, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results().to_json()), encoding="utf-8")
    argv = ["preview-comment", "--results", str(results), "--pr", "42", "--head-sha", head_sha, "--format", "json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["deployment"] is None
    assert data["body"].splitlines()[3] == "namespace `pr-42`"


def test_the_idle_limit_in_the_comment_comes_from_values_when_not_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-comment", "--pr", "42", "--expired"]) == 0
    assert f"for {DEFAULT_PREVIEW.open_idle_hours:g} h" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["https://dagger.cloud/traces/setup", "javascript:x", "https://evil.example/traces/a"])
def test_only_a_real_dagger_cloud_trace_is_linked(url: str) -> None:
    assert "Dagger trace" not in render_comment(_results(), pr=42, trace_url=url)


# The guard's decisions


def _event(
    action: str = "opened", *, fork: bool = False, draft: bool = False, labels: tuple[str, ...] = ()
) -> dict[str, Any]:
    repo = "someone/fork" if fork else "o/r"
    pr = {"head": {"sha": SHA, "repo": {"full_name": repo}}, "draft": draft, "labels": [{"name": n} for n in labels]}
    return {"action": action, "number": 42, "pull_request": pr}


def _decide(event: dict[str, Any], *, actor: str = "dev", enabled: bool = True, name: str = "pull_request") -> Any:
    from dbstack.github.decide import decide

    return decide(name, event, repository="o/r", actor=actor, enabled=enabled)


def test_guard_deploys_an_open_pull_request_at_its_head_commit() -> None:
    decision = _decide(_event())
    assert (decision.action, decision.pr, decision.head_sha) == ("deploy", 42, SHA)
    assert _decide(_event("closed")).action == "teardown"


@pytest.mark.parametrize(
    ("event", "actor", "enabled", "title"),
    [
        (_event(fork=True), "dev", True, "No preview for fork pull requests"),
        (_event(), "dependabot[bot]", True, "No preview for Dependabot pull requests"),
        (_event(), "dev", False, "Previews not configured"),
        (_event(draft=True), "dev", True, "No preview for a draft"),
    ],
)
def test_guard_says_why_there_is_no_preview(event: dict[str, Any], actor: str, enabled: bool, title: str) -> None:
    decision = _decide(event, actor=actor, enabled=enabled)
    assert decision.action == "none" and decision.notice_title == title


def test_a_labelled_draft_gets_a_preview_and_other_labels_do_nothing() -> None:
    labelled = _event("labeled", draft=True, labels=("preview",))
    labelled["label"] = {"name": "preview"}
    assert _decide(labelled).action == "deploy"
    other = _event("labeled", labels=("bug",))
    other["label"] = {"name": "bug"}
    assert _decide(other).action == "none"


def test_a_manual_redeploy_refuses_forks_and_closed_pull_requests() -> None:
    from dbstack.github.decide import decide

    dispatch = {"inputs": {"operation": "redeploy", "pr": "42"}}
    pr = {"number": 42, "state": "open", "head": {"sha": SHA, "repo": {"full_name": "o/r"}}}
    assert (
        decide("workflow_dispatch", dispatch, repository="o/r", actor="x", enabled=True, dispatched_pr=pr).action
        == "deploy"
    )
    fork = {**pr, "head": {"sha": SHA, "repo": {"full_name": "x/y"}}}
    assert (
        decide("workflow_dispatch", dispatch, repository="o/r", actor="x", enabled=True, dispatched_pr=fork).action
        == "none"
    )
    closed = {**pr, "state": "closed"}
    assert (
        decide("workflow_dispatch", dispatch, repository="o/r", actor="x", enabled=True, dispatched_pr=closed).action
        == "none"
    )
    teardown_event = {"inputs": {"operation": "teardown", "pr": "42", "adopt-unlabelled": True}}
    decision = decide(
        "workflow_dispatch", teardown_event, repository="o/r", actor="x", enabled=True, dispatched_pr=closed
    )
    assert (decision.action, decision.adopt_unlabelled) == ("teardown", True)
