"""platform/preview-rbac.yaml against what previews actually do: every kubectl and helm command a preview (platform
check, namespace, plan with its waits, watch and diagnostics, smoke access), a teardown and a sweep issue, turned
into the API requests it makes, must be allowed by the manifest's rules where it runs; and nothing cluster-wide
beyond namespaces and platform reads is granted.

How a command becomes requests follows the tools: kubectl get NAME is a GET, without a name a LIST; kubectl wait
and rollout status GET, LIST and WATCH; kubectl apply GETs then CREATEs or PATCHes; kubectl port-forward GETs the
Service, LISTs its pods and CREATEs pods/portforward; Helm 3 keeps releases as Secrets in the release namespace
(storage driver `secret`: LIST by labels, GET, CREATE, UPDATE, DELETE) and GETs, CREATEs, PATCHes or DELETEs each
object its chart renders. What is not checked here: the ValidatingAdmissionPolicy's CEL (no CEL engine runs here;
the test only checks it names the same pattern and role), and a real API server's authorizer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import yaml
from dbstack.config.load import load_config
from dbstack.github.platform import PlatformPins
from dbstack.github.preview import (
    PREVIEW_IDENTITY_NAMESPACE,
    PREVIEW_NAMESPACE_PATTERN,
    PREVIEW_ROLE,
    PREVIEW_SERVICE_ACCOUNT,
    PreviewMarkers,
    PreviewTarget,
    markers_label_command,
    namespace_policy,
    prepare_namespace,
    preview_cluster_diagnostics,
    preview_plan,
    sweep,
    teardown,
)
from dbstack.plan.build import build_plan
from dbstack.plan.model import Command
from dbstack.run import smokeenv
from dbstack.run.orchestrator import new_results
from dbstack.run.results import Outcome, StepResult
from dbstack.sim.cluster import Failure, Scenario, SimCluster, Stuck, run_simulated
from test_preview import NOW, SETTINGS, SHA, FakeCluster, _labels
from upstream import ADDONS, upstream_or_skip

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "platform" / "preview-rbac.yaml"
PR_NS = "pr-7"
KB_NS = "kb-system"

# kubectl's resource words -> (API group, resource)
RESOURCES = {
    "namespace": ("", "namespaces"),
    "namespaces": ("", "namespaces"),
    "pods": ("", "pods"),
    "pod": ("", "pods"),
    "events": ("", "events"),
    "pvc": ("", "persistentvolumeclaims"),
    "secret": ("", "secrets"),
    "secrets": ("", "secrets"),
    "svc": ("", "services"),
    "deployment": ("apps", "deployments"),
    "deploy": ("apps", "deployments"),
    "crd": ("apiextensions.k8s.io", "customresourcedefinitions"),
    "clusters.apps.kubeblocks.io": ("apps.kubeblocks.io", "clusters"),
    "cmp": ("apps.kubeblocks.io", "components"),
    "its": ("workloads.kubeblocks.io", "instancesets"),
    "clusterdefinition.apps.kubeblocks.io": ("apps.kubeblocks.io", "clusterdefinitions"),
}
KINDS = {
    "Namespace": ("", "namespaces"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
    "ResourceQuota": ("", "resourcequotas"),
    "LimitRange": ("", "limitranges"),
    "Cluster": ("apps.kubeblocks.io", "clusters"),
}
CLUSTER_SCOPED = {"namespaces", "customresourcedefinitions", "clusterdefinitions", "clusterroles"}
HELM_RELEASE_STORAGE = ("", "secrets")
CHART_KINDS = ("Cluster",)
"""What a cluster chart renders with values/ (checked against the upstream templates below)."""


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str
    namespace: str | None
    """None for cluster-scoped objects; '*' for a request across all namespaces."""
    name: str | None = None
    command: str = ""


def _flag(argv: tuple[str, ...], *names: str) -> str | None:
    for i, arg in enumerate(argv[:-1]):
        if arg in names:
            return argv[i + 1]
    return None


def _positionals(argv: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in ("-n", "--namespace", "-l", "-o", "-c", "-f", "--repo", "--version", "--set"):
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def requests(command: Command) -> Iterator[Request]:
    argv, text = command.argv, str(command)
    if argv[0] == "timeout":  # the smoke suite's Secret read: `timeout N sh -c "<kubectl ...>"`
        argv = tuple(a for a in argv[argv.index("-c") + 1].split() if a)
        argv = argv[argv.index("kubectl") :]
    ns = _flag(argv, "-n", "--namespace")
    words = _positionals(argv)
    tool, verb = argv[0], words[0]

    def req(v: str, word_or_kind: str, namespace: str | None, name: str | None = None) -> Request:
        group, resource = RESOURCES.get(word_or_kind) or KINDS[word_or_kind]
        scoped = None if resource in CLUSTER_SCOPED else namespace
        return Request(v, group, resource, scoped, name, text)

    if tool == "helm":
        if verb == "upgrade":
            yield from (Request(v, *HELM_RELEASE_STORAGE, ns, None, text) for v in ("list", "get", "create", "update"))
            for kind in CHART_KINDS:
                yield from (req(v, kind, ns) for v in ("get", "create", "patch"))
        elif verb in ("list", "status", "history"):
            yield from (Request(v, *HELM_RELEASE_STORAGE, ns, None, text) for v in ("list", "get"))
        elif verb == "rollback":  # a new release record, and the old manifest applied over the current one
            yield from (Request(v, *HELM_RELEASE_STORAGE, ns, None, text) for v in ("list", "get", "create", "update"))
            for kind in CHART_KINDS:
                yield from (req(v, kind, ns) for v in ("get", "create", "patch", "delete"))
        elif verb == "uninstall":
            yield from (Request(v, *HELM_RELEASE_STORAGE, ns, None, text) for v in ("list", "get", "update", "delete"))
            for kind in CHART_KINDS:
                yield from (req(v, kind, ns) for v in ("get", "delete", "list", "watch"))
        else:
            raise AssertionError(f"no model for {text}")
        return
    if verb == "version":
        return  # /version is readable by every authenticated user (system:public-info-viewer)
    if verb == "config":
        return  # reads the local kubeconfig only
    if verb == "get":
        kind_word, names = words[1], words[2:]
        if "-A" in argv:
            yield req("list", kind_word, "*")
        elif names:
            yield from (req("get", kind_word, ns, n) for n in names)
        else:
            yield req("list", kind_word, ns)
    elif verb == "describe":
        yield req("list", words[1], ns)
        yield req("list", "events", ns)
    elif verb == "wait":
        kind_word, _, name = words[1].partition("/")
        yield from (req(v, kind_word, ns, name) for v in ("get", "list", "watch"))
    elif verb == "logs":
        target = words[1]
        if target.startswith("deploy/"):
            yield req("get", "deployment", ns, target.removeprefix("deploy/"))
        yield req("get", "pods", ns)
        yield Request("get", "", "pods/log", ns, None, text)
    elif verb == "label":
        yield from (req(v, words[1], None, words[2]) for v in ("get", "patch"))
    elif verb == "delete":
        yield req("delete", words[1], ns, words[2])
        yield from (req(v, words[1], ns, words[2]) for v in ("get", "list", "watch"))  # --timeout waits
    elif verb == "apply":
        manifest = json.loads(command.stdin or "{}")
        for item in manifest["items"] if manifest["kind"] == "List" else [manifest]:
            item_ns = item["metadata"].get("namespace")
            yield from (req(v, item["kind"], item_ns, item["metadata"]["name"]) for v in ("get", "create", "patch"))
    elif verb == "port-forward":
        yield req("get", "svc", ns, words[1].removeprefix("svc/"))
        yield req("list", "pods", ns)
        yield Request("create", "", "pods/portforward", ns, None, text)
    else:
        raise AssertionError(f"no model for {text}")


# --- the manifest --------------------------------------------------------------------------------------------


@cache
def _documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]


def _rules(kind: str, name: str) -> list[dict[str, Any]]:
    found = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    rules: list[dict[str, Any]] = found[0]["rules"]
    return rules


def _bound_to_preview(kind: str) -> list[dict[str, Any]]:
    subject = {"kind": "ServiceAccount", "name": PREVIEW_SERVICE_ACCOUNT, "namespace": PREVIEW_IDENTITY_NAMESPACE}
    return [d for d in _documents() if d["kind"] == kind and subject in d["subjects"]]


def _grants(rules: list[dict[str, Any]], request: Request) -> bool:
    for rule in rules:
        if request.group not in rule["apiGroups"] or request.resource not in rule["resources"]:
            continue
        if request.verb not in rule["verbs"] and "*" not in rule["verbs"]:
            continue
        if "resourceNames" in rule and request.name not in rule["resourceNames"]:
            continue
        return True
    return False


def allowed(request: Request) -> bool:
    """The identity's rights where the request runs: the ClusterRoleBinding's everywhere, the namespace role in a
    pr-<n> namespace (bound by the preview itself), the kb-system Role in kb-system."""
    (cluster_binding,) = _bound_to_preview("ClusterRoleBinding")
    if _grants(_rules("ClusterRole", cluster_binding["roleRef"]["name"]), request):
        return True
    ns = request.namespace
    if ns and PREVIEW_NAMESPACE_PATTERN.fullmatch(ns) and _grants(_rules("ClusterRole", PREVIEW_ROLE), request):
        return True
    for binding in _bound_to_preview("RoleBinding"):
        if binding["metadata"]["namespace"] == ns and _grants(_rules("Role", binding["roleRef"]["name"]), request):
            return True
    return False


# --- what previews do ----------------------------------------------------------------------------------------


def _lifecycle_commands() -> list[Command]:
    cluster = FakeCluster()
    cluster.add_namespace("pr-3", {**_labels(3, NOW), "dbstack.io/teardown-started-at": "1"}, "Active", "pg-cluster")
    cluster.add_namespace("pr-4", _labels(4, NOW - 10), "Active", "pg-cluster")

    async def everything() -> None:
        await prepare_namespace(cluster, PreviewTarget.create(7, SHA, NOW), SETTINGS)
        await prepare_namespace(cluster, PreviewTarget.create(3, SHA, NOW), SETTINGS)
        cluster.releases["pr-7"] = ["pg-cluster"]
        await teardown(cluster, 7, now=NOW)
        await sweep(cluster, NOW, frozenset(), SETTINGS)

    anyio.run(everything)
    return cluster.commands


def _plan_commands(tmp_path: Path) -> list[Command]:
    """The preview plan run on the simulated cluster, once passing and once with a failure (diagnostics, logs)."""
    config = load_config(REPO / "values", "ci", [f"namespace={PR_NS}"])
    plan = preview_plan(build_plan(config), config.kubeblocks_namespace)
    addons = frozenset(d.key for d in config.enabled)
    commands: list[Command] = []
    # Releases a killed helm left pending: the orchestrator reads their history, rolls back or uninstalls them.
    stuck = {
        "pg-cluster": Stuck(PR_NS, "postgresql-cluster", "pending-upgrade"),
        "redis-cluster": Stuck(PR_NS, "redis-cluster", "pending-install"),
    }
    scenarios = (
        Scenario(preinstalled=True, preinstalled_addons=addons),
        Scenario(
            preinstalled=True,
            preinstalled_addons=addons,
            failures={"postgresql": Failure.CRASHLOOP, "redis": Failure.PENDING_CPU},
        ),
        Scenario(preinstalled=True, preinstalled_addons=addons, stuck=stuck),
    )
    for scenario in scenarios:
        sim = SimCluster(scenario)
        run_simulated(plan, sim, tmp_path / str(len(commands)))
        assert sim.unknown == []
        commands += [Command(call.argv) for call in sim.calls]
    assert any(c.argv[:2] == ("helm", "rollback") for c in commands)
    # Helm's values arrive on stdin; the argv is what authorizes.
    commands += [replace_stdin(c) for s in plan.steps for c in s.commands]
    for endpoint in plan.endpoints:
        if endpoint.secret:
            commands.append(Command(tuple(smokeenv.read_account_argv(endpoint, "/x"))))
        commands.append(Command(("kubectl", "port-forward", "-n", endpoint.namespace, f"svc/{endpoint.service}")))
    commands += list(PlatformPins.from_config(config).commands())
    # Which databases hold marker data, recorded on the namespace after each deploy (and removed when none does).
    markers = PreviewMarkers("m1", ("postgresql",), ("redis",))
    none_held = new_results(plan, "existing", 0.0)
    held = new_results(plan, "existing", 0.0)
    held.steps.append(StepResult("markers:write:redis", "w", "markers", "redis", Outcome.PASSED))
    commands += [markers_label_command(PR_NS, markers, r) for r in (none_held, held)]
    commands += [c for _, c in preview_cluster_diagnostics(PR_NS, KB_NS)]
    return commands


def replace_stdin(command: Command) -> Command:
    return Command(command.argv)


def test_every_request_a_preview_teardown_and_sweep_make_is_allowed(tmp_path: Path) -> None:
    commands = _lifecycle_commands() + _plan_commands(tmp_path)
    refused = sorted(
        {
            f"{r.verb} {r.group}/{r.resource} in {r.namespace}: {r.command}"
            for c in commands
            for r in requests(c)
            if not allowed(r)
        }
    )
    assert refused == []
    assert len(commands) > 50


def test_the_identity_holds_nothing_cluster_wide_beyond_namespaces_and_platform_reads() -> None:
    for verb in ("get", "list"):
        for ns in ("kube-system", "default", "kb-system", "*", "pr-7x"):
            assert not allowed(Request(verb, "", "secrets", ns)), (verb, ns)
    assert not allowed(Request("create", "apiextensions.k8s.io", "customresourcedefinitions", None))
    assert not allowed(Request("create", "apps.kubeblocks.io", "clusters", "default"))
    assert not allowed(Request("create", "rbac.authorization.k8s.io", "clusterrolebindings", None))
    assert not allowed(Request("bind", "rbac.authorization.k8s.io", "clusterroles", None, "cluster-admin"))
    assert allowed(Request("bind", "rbac.authorization.k8s.io", "clusterroles", None, PREVIEW_ROLE))
    assert not allowed(Request("patch", "apps", "deployments", KB_NS))


def test_the_binding_a_preview_makes_matches_the_manifest_and_the_admission_policy() -> None:
    binding_command, _ = namespace_policy(PreviewTarget.create(7, SHA, NOW), SETTINGS)
    binding = json.loads(binding_command.stdin or "{}")
    assert binding["roleRef"]["name"] == PREVIEW_ROLE
    (account,) = [d for d in _documents() if d["kind"] == "ServiceAccount"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
    ]
    (policy,) = [d for d in _documents() if d["kind"] == "ValidatingAdmissionPolicy"]
    text = json.dumps(policy)
    assert f"system:serviceaccount:{PREVIEW_IDENTITY_NAMESPACE}:{PREVIEW_SERVICE_ACCOUNT}" in text
    assert PREVIEW_NAMESPACE_PATTERN.pattern.replace("[1-9][0-9]*", "") in text and PREVIEW_ROLE in text
    (policy_binding,) = [d for d in _documents() if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert policy_binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}


def test_the_token_secret_belongs_to_the_preview_service_account() -> None:
    (secret,) = [d for d in _documents() if d["kind"] == "Secret"]
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] == PREVIEW_SERVICE_ACCOUNT


def test_cluster_charts_render_no_kind_but_a_cluster_with_values_as_they_are() -> None:
    charts = upstream_or_skip() / ADDONS / "addons-cluster"
    # Templates that are not wrapped in an `if` render always; the others (ServiceDescriptor, PodMonitor, TLS and
    # account Secrets) sit behind settings values/ leaves off.
    always: set[str] = set()
    for chart in ("postgresql", "redis", "qdrant", "elasticsearch", "neo4j", "kblib"):
        for template in (charts / chart / "templates").rglob("*"):
            if template.suffix not in (".yaml", ".tpl"):
                continue
            text = template.read_text(encoding="utf-8")
            if text.lstrip().startswith("{{- if"):
                continue
            always |= set(re.findall(r"^kind: (\w+)", text, re.MULTILINE))
    assert always == set(CHART_KINDS)
