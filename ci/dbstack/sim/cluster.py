"""A simulated KubeBlocks cluster: a Runner that answers the kubectl and helm commands of a plan (and of
diagnostics and teardown) the way a real cluster would over time, in whatever time anyio runs on.

Run it under trio's MockClock (virtual time) and simulated minutes take milliseconds. Resources appear when
installed, CRDs become Established, KubeBlocks rolls out, addon definitions turn Available, Clusters move from
Creating to Running, each after the latency the Scenario gives; failures (pods Pending for lack of CPU, image
pulls failing, crash loops, a Cluster turning Abnormal), Helm's install races and locks, releases a killed helm
left pending, objects another release owns, deletions that never finish, an API outage and an already-installed
KubeBlocks are scenario switches. Every command is recorded with virtual start and end times. A command it does not
understand raises `UnknownCommand`, so the orchestrator cannot drift from real commands.

Every answer is worded the way the real tool words it, and names the upstream source it follows (kubectl v1.31 =
kubernetes/kubectl v0.31.x, client-go and apimachinery v0.31; Helm v3.13-v3.19 and v4; KubeBlocks v1.0.1);
docs/orchestrator.md has the same in a table. Where Helm 3 and Helm 4 differ, `Scenario.helm_version` chooses.
What only goes into diagnostics files (describe, events, tables, logs) is shaped like the real output, but nothing
parses it, so it is kept short.

Which objects and pods exist, and their labels, follow the real sources: a Cluster's components and pods come
from `Scenario.topology` (tests and benchmarks pass one built from Helm's render of the real chart, see
tests/upstream.py; without it, the catalog's topology, which tests prove equal to the render), and the snapshot
controller and KubeBlocks Deployments carry the labels of the upstream manifests and chart (tests compare them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import anyio
import yaml

from dbstack.config.catalog import DATABASES
from dbstack.config.topology import Component, components
from dbstack.plan.build import KUBEBLOCKS_CRDS, KUBEBLOCKS_DEPLOYMENTS, SNAPSHOT_CRDS
from dbstack.plan.model import Command, Plan, Step, StepKind
from dbstack.plan.upgrade import UpgradePlan
from dbstack.run.orchestrator import MarkerRunner, run_plan
from dbstack.run.results import RunResults
from dbstack.run.runner import CommandResult, Runner
from dbstack.run.upgraderun import SmokeRun, run_upgrade
from dbstack.sim.backups import BackupScenario, SimBackups, stage_latency_s

T = TypeVar("T")

NEVER = math.inf
SIM_CREDENTIAL = "sim-Pa55word-7f3a"
"""A credential the simulated pods leak into logs and env, so tests can prove diagnostics mask it."""
TIMED_OUT_EXIT = 124
_NO_CPU = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)
PROGRESS_DEADLINE_S = 600.0
"""A Deployment's default progressDeadlineSeconds; the KubeBlocks 1.0.1 chart sets none."""
HELM_DEFAULT_TIMEOUT_S = 300.0
"""Helm's --timeout default (cmd/helm/upgrade.go, uninstall.go: 300*time.Second)."""
KUBECONFIG_PATH = "/root/.kube/config"
KB_NAMESPACE = "kb-system"

# --- Helm's words (github.com/helm/helm) ------------------------------------------------------------------------
HELM_LOCKED = "another operation (install/upgrade/rollback) is in progress"  # pkg/action/action.go errPending
HELM_RELEASE_EXISTS = "release: already exists"  # pkg/storage/driver/driver.go ErrReleaseExists
HELM_NOT_FOUND = "release: not found"  # pkg/storage/driver/driver.go ErrReleaseNotFound


def helm_name_in_use(version: str) -> str:
    """pkg/action/install.go availableName: "re-use" in Helm 3, "reuse" from Helm 4.0."""
    return (
        "cannot reuse a name that is still in use"
        if version.startswith("4")
        else "cannot re-use a name that is still in use"
    )


def helm_unable_to_install(version: str) -> str:
    """pkg/action/install.go: errors.Wrap(err, "Unable to continue with install") in Helm 3, lower case in Helm 4."""
    return "unable to continue with install" if version.startswith("4") else "Unable to continue with install"


def helm_warns_readable_kubeconfig(version: str) -> bool:
    """cmd/helm/root_unix.go checkPerms: Helm 3.x printed the warning until 3.17.0 removed it (commit 49cb14a)."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return major == 3 and minor < 17


class Outage(StrEnum):
    """How the API server is unreachable, and what kubectl and helm print then."""

    UNAVAILABLE = "unavailable"
    """503 from the API server (apimachinery pkg/api/errors/errors.go: StatusServiceUnavailable)."""
    TIMEOUT = "timeout"
    """504 from the API server (errors.go: StatusGatewayTimeout, reason Timeout)."""
    REFUSED = "refused"
    """Nothing listens: kubectl logs client-go's discovery failures as klog lines (discovery/cached/memory/
    memcache.go:265 through apimachinery runtime.HandleError) and then prints its own verdict
    (kubectl pkg/cmd/util/helpers.go StandardErrorMessage)."""
    EOF = "eof"
    """The connection closes mid-request (a load balancer, a restarting API server): "Unable to connect to the
    server: EOF" (helpers.go StandardErrorMessage for a *url.Error)."""

    def kubectl(self, resource: str) -> str:
        """What kubectl prints reading `resource` ("<group resource> [name]", "" when unknown)."""
        host = "127.0.0.1:6443"
        suffix = f" (get {resource})" if resource else ""
        if self is Outage.UNAVAILABLE:
            return (
                f"Error from server (ServiceUnavailable): the server is currently unable to handle the request{suffix}"
            )
        if self is Outage.TIMEOUT:
            return (
                "Error from server (Timeout): the server was unable to return a response in the time allotted, but "
                f"may still be processing the request{suffix}"
            )
        if self is Outage.REFUSED:
            klog = (
                'E0101 00:00:00.000000   12345 memcache.go:265] "Unhandled Error" err="couldn\'t get current server '
                f'API group list: Get \\"https://{host}/api?timeout=32s\\": dial tcp {host}: connect: connection '
                'refused" logger="UnhandledError"\n'
            )
            return (
                klog * 3 + f"The connection to the server {host} was refused - did you specify the right host or port?"
            )
        return "Unable to connect to the server: EOF"

    def helm(self) -> str:
        """pkg/kube/client.go IsReachable: errors.Wrap(err, "Kubernetes cluster unreachable")."""
        host = "127.0.0.1:6443"
        if self is Outage.UNAVAILABLE:
            return "Error: Kubernetes cluster unreachable: the server is currently unable to handle the request"
        if self is Outage.TIMEOUT:
            return (
                "Error: query: failed to query with labels: the server was unable to return a response in the time "
                "allotted, but may still be processing the request (get secrets)"
            )
        unreachable = f'Error: Kubernetes cluster unreachable: Get "https://{host}/version"'
        if self is Outage.REFUSED:
            return f"{unreachable}: dial tcp {host}: connect: connection refused"
        return f"{unreachable}: EOF"


class Race(StrEnum):
    """How another client's install of the same release, started between our `upgrade --install`'s history check
    and our install, refuses ours (Helm pkg/action/install.go)."""

    NAME_IN_USE = "name-in-use"
    """availableName found the other client's pending record: "cannot re-use a name that is still in use"."""
    RELEASE_EXISTS = "release-exists"
    """Both passed availableName and the other client stored its record first: "release: already exists"."""


@dataclass(frozen=True)
class Stuck:
    """A release whose helm was killed (SIGKILL) mid-operation: its last revision stays pending for good."""

    namespace: str
    chart: str
    """The chart it belongs to: `kubeblocks`, an addon (`redis`) or a cluster chart (`redis-cluster`)."""
    status: str = "pending-upgrade"
    """pending-install (never deployed), pending-upgrade or pending-rollback (both after a deployed revision)."""
    age_s: float = 3600.0
    """How long before the first command the killed helm started."""


SNAPSHOT_CONTROLLER_LABELS: Mapping[str, str] = {}
"""external-snapshotter v8.2.0 setup-snapshot-controller.yaml: the Deployment carries no labels of its own..."""
SNAPSHOT_CONTROLLER_POD_LABELS: Mapping[str, str] = {"app.kubernetes.io/name": "snapshot-controller"}
"""... only its pod template (and selector) do."""
SNAPSHOT_CONTROLLER_REPLICAS = 2
CHART_SNAPSHOT_CONTROLLER_LABELS: Mapping[str, str] = {
    "app.kubernetes.io/name": "snapshot-controller",
    "app.kubernetes.io/instance": "snapshot-controller",
}
"""A chart-installed controller (piraeus) labels its Deployment and pods alike."""
KUBEBLOCKS_DEFAULT_ADDONS = ("postgresql", "qdrant", "redis")
"""Of the catalog's addons, those the KubeBlocks 1.0.1 chart registers an Addon for with its default
`autoInstalledAddons`; with `autoInstalledAddons={}`, as the plan installs it, it registers none."""


def kubeblocks_labels(version: str, component: str) -> dict[str, str]:
    """The labels the KubeBlocks chart gives its Deployments (`component` is apps or dataprotection)."""
    return {
        "helm.sh/chart": f"kubeblocks-{version}",
        "app.kubernetes.io/name": "kubeblocks",
        "app.kubernetes.io/instance": "kubeblocks",
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/component": component,
    }


Topology = Callable[[str, str, str, str], tuple[Component, ...]]
"""(cluster chart, release, namespace, values YAML) -> the Cluster's components, as Helm would render them."""


def catalog_topology(chart: str, release: str, namespace: str, values_yaml: str) -> tuple[Component, ...]:
    """The catalog's topology (config/topology.py) for the values the chart receives."""
    db = DATABASES[chart.removesuffix("-cluster")]
    return components(db.key, yaml.safe_load(values_yaml or "") or {}, db.chart_defaults)


class UnknownCommand(Exception):
    """The simulator was asked something a real cluster would answer but the simulator does not model."""


class Failure(StrEnum):
    PENDING_CPU = "pending-insufficient-cpu"
    IMAGE_PULL = "image-pull-backoff"
    CRASHLOOP = "crashloop"
    ABNORMAL = "abnormal"
    STALLED = "stalled"
    """Pods run but never become ready, with no signal: only the timeout ends the wait."""
    CRASH_ONCE = "crash-once"
    """A container crashes once during bootstrap (a replica before its primary is up): CrashLoopBackOff with one
    restart for `Latencies.blip_s`, then the cluster comes up as usual."""
    ABNORMAL_BLIP = "abnormal-blip"
    """The Cluster shows Abnormal for `Latencies.blip_s` during bootstrap, then comes up as usual."""


PASSING_FAILURES = frozenset({Failure.CRASH_ONCE, Failure.ABNORMAL_BLIP})


def _default_clusters() -> dict[str, float]:
    return {"postgresql": 150.0, "redis": 60.0, "qdrant": 60.0, "elasticsearch": 180.0, "neo4j": 150.0}


@dataclass(frozen=True)
class Latencies:
    """Seconds from the install command to the resource being ready (and what single API calls take).

    The defaults are the brief's figures: KubeBlocks' 180 s sits in the 2-5 min seen upstream, the clusters in the
    1-3 min PostgreSQL takes; an API call answers in 0.2 s, `helm upgrade --install`/`uninstall` returns in 3 s.
    """

    api_s: float = 0.2
    helm_s: float = 3.0
    snapshot_crds_s: float = 2.0
    snapshot_controller_s: float = 20.0
    kubeblocks_crds_s: float = 5.0
    kubeblocks_s: float = 180.0
    addon_s: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(DATABASES, 60.0))
    cluster_s: Mapping[str, float] = field(default_factory=_default_clusters)
    pods_after_s: float = 5.0
    """From a cluster's definitions being Available to its pods existing."""
    failure_after_s: float = 20.0
    """From a cluster's pods existing to its failure showing."""
    blip_s: float = 5.0
    """How long a passing failure (CRASH_ONCE, ABNORMAL_BLIP) shows."""
    delete_s: float = 5.0
    observe_s: float = 1.0
    """From `helm upgrade` of an existing Cluster to KubeBlocks advancing its status.observedGeneration."""
    stale_phase_s: float = 10.0
    """How long after that the components' (and the Cluster's) phases still describe the old spec: `upToDate` is
    not set yet and a Cluster that was Running still says Running."""

    @classmethod
    def uniform(cls, seconds: float) -> Latencies:
        """Every latency `seconds` long: with a tiny value a whole deployment takes milliseconds of real time."""
        return cls(
            api_s=seconds,
            helm_s=seconds,
            snapshot_crds_s=seconds,
            snapshot_controller_s=seconds,
            kubeblocks_crds_s=seconds,
            kubeblocks_s=seconds,
            addon_s=dict.fromkeys(DATABASES, seconds),
            cluster_s=dict.fromkeys(DATABASES, seconds),
            pods_after_s=seconds,
            failure_after_s=seconds,
            blip_s=seconds,
            delete_s=seconds,
            observe_s=seconds,
            stale_phase_s=seconds,
        )


@dataclass(frozen=True)
class Scenario:
    latencies: Latencies = field(default_factory=Latencies)
    failures: Mapping[str, Failure] = field(default_factory=dict)
    """Database key -> what goes wrong with its cluster."""
    preinstalled: bool = False
    """Snapshot support and KubeBlocks are already installed (a shared cluster)."""
    kubeblocks_unhealthy: bool = False
    """With `preinstalled`: the kubeblocks Deployment exists but never finishes rolling out."""
    preinstalled_addons: frozenset[str] = frozenset()
    preinstalled_age_s: float = 3600.0
    """How long before the first command the preinstalled Deployments were created: an unhealthy one is past its
    progress deadline when older than `PROGRESS_DEADLINE_S`."""
    install_race: Mapping[str, Race] = field(default_factory=dict)
    """Helm release -> how another client's install, started at the moment this run first installs it, refuses
    this run's install; that client's install then takes `Latencies.helm_s`."""
    kubeblocks_version: str = "1.0.1"
    """With `preinstalled`: the installed KubeBlocks' version."""
    addon_versions: Mapping[str, str] = field(default_factory=dict)
    """Preinstalled addon -> its chart version (1.0.1 unless given)."""
    snapshot_controller_namespace: str = "kube-system"
    """With `preinstalled`: where the snapshot controller runs."""
    snapshot_controller_from_chart: bool = False
    """With `preinstalled`: installed by a chart that labels the Deployment too (not the upstream manifest)."""
    topology: Topology = catalog_topology
    """What a cluster chart creates; tests pass `tests.upstream.rendered_topology`, built from the real render."""
    helm_locked: Mapping[str, float] = field(default_factory=dict)
    """Helm release -> seconds another client (a second preview) holds its lock: that client's install starts the
    moment this run first installs it, refusing this run with "another operation ... is in progress" meanwhile."""
    stuck: Mapping[str, Stuck] = field(default_factory=dict)
    """Helm release -> a revision a killed helm left pending before the run (with what it had installed)."""
    owned_by: Mapping[str, str] = field(default_factory=dict)
    """Helm release -> the release (in the same namespace) that owns the objects its chart renders: installing it
    fails with Helm's ownership conflict."""
    stuck_deletion: frozenset[str] = frozenset()
    """Helm releases whose objects never finish deleting (a finalizer that never clears)."""
    api_outage: tuple[float, float] | None = None
    """Seconds after the first command between which every new command fails as if the API server were down."""
    outage: Outage = Outage.UNAVAILABLE
    helm_version: str = "3.16.4"
    """Which Helm answers: wording differs between 3.x and 4.x, and only 3.x before 3.17 warns about the
    kubeconfig's mode."""
    kubeconfig_mode: int = 0o600
    """The mode of the kubeconfig helm reads: group- or world-readable makes Helm < 3.17 warn on every command."""
    upgrade_failures: Mapping[str, Failure] = field(default_factory=dict)
    """Database key -> what goes wrong when its Cluster is upgraded (`helm upgrade` of an existing release): the
    first pod the rolling restart replaces fails that way, and the restart goes no further."""
    backup: BackupScenario = field(default_factory=BackupScenario)
    """The backup stage's side: classes, the CSI driver, Backups and restores (sim/backups.py)."""

    def step_latency_s(self, step: Step) -> float:
        """How long `step` takes from its start on a fresh cluster: install command(s) plus readiness."""
        lat = self.latencies
        if step.kind is StepKind.SNAPSHOT_CRDS:
            return lat.api_s * len(step.commands) + lat.snapshot_crds_s
        if step.kind is StepKind.SNAPSHOT_CONTROLLER:
            return lat.api_s * len(step.commands) + lat.snapshot_controller_s
        if step.kind is StepKind.KUBEBLOCKS_CRDS:
            return lat.api_s + lat.kubeblocks_crds_s
        if step.kind is StepKind.KUBEBLOCKS:
            return lat.helm_s + lat.kubeblocks_s
        if step.kind is StepKind.ADDON and step.database:
            return lat.helm_s + lat.addon_s[step.database]
        if step.kind is StepKind.CLUSTER and step.database:
            return lat.helm_s + lat.cluster_s[step.database]
        stage = stage_latency_s(step, lat.api_s, self.backup.latencies)
        if stage is not None:
            return stage
        raise ValueError(f"no latency for {step.id}")

    def upgrade_latency_s(self, step: Step) -> float:
        """How long a step of the upgrade stage takes on a cluster that runs the base: a Cluster's `helm upgrade`,
        KubeBlocks observing the new generation, its components taking the spec up, then the rolling restart; CRDs
        already there are Established at once; a Cluster only checked (no commands) is Running already."""
        lat = self.latencies
        if step.kind in (StepKind.SNAPSHOT_CRDS, StepKind.KUBEBLOCKS_CRDS):
            return lat.api_s * len(step.commands)
        if step.kind is StepKind.CLUSTER and step.database:
            if not step.commands:
                return 0.0
            return lat.helm_s + lat.observe_s + lat.stale_phase_s + lat.cluster_s[step.database]
        return self.step_latency_s(step)


@dataclass(frozen=True)
class Call:
    argv: tuple[str, ...]
    started: float
    """Virtual seconds since the first command."""
    ended: float
    exit_code: int
    timed_out: bool = False
    stderr: str = ""


@dataclass
class _Object:
    kind: str
    name: str
    namespace: str | None
    created_at: float
    ready_at: float = NEVER
    deleted_at: float = NEVER
    database: str | None = None
    replicas: int = 1
    """Pods (of the Cluster's first component, for a Cluster)."""
    components: tuple[Component, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """A Deployment's pod template labels."""
    release: str | None = None
    failure: Failure | None = None
    fail_at: float = NEVER
    pods_at: float = NEVER
    generation: int = 1
    observed_at: float = 0.0
    """When KubeBlocks advanced status.observedGeneration to the current generation."""
    up_to_date_at: float = 0.0
    """When every component had observed the current spec (`upToDate`); the phases are the old spec's until then."""
    running_before_update: bool = False
    failure_after_upgrade: bool = False
    """The failure shows on the pod the upgrade's rolling restart replaced first; the others keep running."""
    rolled_at: float = NEVER
    """When the rolling restart of an upgrade began: the first component's pods restart one after another, the
    highest ordinal first, each unready for its share of the Cluster's latency."""
    roll_s: float = 0.0

    def exists(self, now: float) -> bool:
        return self.created_at <= now < self.deleted_at

    def observed_generation(self, now: float) -> int:
        return self.generation if now >= self.observed_at else self.generation - 1

    def ready(self, now: float) -> bool:
        return self.exists(now) and now >= self.ready_at

    def failing(self, now: float, blip_s: float) -> bool:
        """Whether the failure shows at `now` (a passing one only for `blip_s`)."""
        if self.failure is None or now < self.fail_at:
            return False
        return self.failure not in PASSING_FAILURES or now < self.fail_at + blip_s


@dataclass
class _Revision:
    number: int
    status: str
    """deployed, failed, superseded or pending-install/-upgrade/-rollback."""
    updated: float
    """When the operation that wrote it started (Helm's LastDeployed, `updated` in `helm history`)."""
    description: str
    settles_at: float = NEVER
    """A pending revision of a live client turns deployed then; a killed client's never does."""


@dataclass
class _Release:
    name: str
    namespace: str
    chart: str
    version: str
    revisions: list[_Revision]

    def statuses(self, now: float) -> list[str]:
        """Each revision's status at `now`, oldest first: a settled pending revision is deployed, and a deployed
        one with a deployed revision after it is superseded (pkg/action/upgrade.go, rollback.go)."""
        raw = [
            r.status if not (r.status.startswith("pending-") and now >= r.settles_at) else "deployed"
            for r in self.revisions
        ]
        latest_deployed = max((i for i, status in enumerate(raw) if status == "deployed"), default=-1)
        return [
            "superseded" if status == "deployed" and i < latest_deployed else status for i, status in enumerate(raw)
        ]

    def status(self, now: float) -> str:
        return self.statuses(now)[-1]

    def add(self, status: str, now: float, description: str, settles_at: float = NEVER) -> None:
        self.revisions.append(_Revision(len(self.revisions) + 1, status, now, description, settles_at))


@dataclass
class _Args:
    """kubectl/helm argv split into positionals and flags (every flag the plan uses; others are refused)."""

    positional: list[str]
    flags: dict[str, str]
    sets: list[str]


_VALUE_FLAGS = {"-n", "--namespace", "-l", "--selector", "-o", "--output", "-f", "--filename", "--repo", "--version"}
_VALUE_FLAGS |= {"-c", "--container"}
_VALUE_FLAGS |= {"--set"}
_BOOL_FLAGS = {
    "-A",
    "--all-namespaces",
    "--ignore-not-found",
    "--server-side",
    "--force-conflicts",
    "--all-containers",
    "--previous",
    "--install",
    "--create-namespace",
    "--wait",
}
_EQ_FLAGS = {"--for", "--timeout", "--tail", "--sort-by", "--ignore-not-found", "--all-containers", "--wait"}
_SHORT = {"--namespace": "-n", "--selector": "-l", "--output": "-o", "--filename": "-f", "--all-namespaces": "-A"}
_SHORT["--container"] = "-c"


def _parse(argv: tuple[str, ...]) -> _Args:
    positional: list[str] = []
    flags: dict[str, str] = {}
    sets: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and eq and name in _EQ_FLAGS:
            flags[_SHORT.get(name, name)] = value
        elif arg in _VALUE_FLAGS:
            if i + 1 >= len(argv):
                raise UnknownCommand(f"flag {arg} without a value in {argv}")
            if arg == "--set":
                sets.append(argv[i + 1])
            else:
                flags[_SHORT.get(arg, arg)] = argv[i + 1]
            i += 1
        elif arg in _BOOL_FLAGS:
            flags[_SHORT.get(arg, arg)] = "true"
        elif arg.startswith("-"):
            raise UnknownCommand(f"flag {arg} in {argv}")
        else:
            positional.append(arg)
        i += 1
    return _Args(positional, flags, sets)


_KINDS = {
    "crd": "crd",
    "crds": "crd",
    "customresourcedefinition": "crd",
    "deploy": "deployment",
    "deployment": "deployment",
    "deployments": "deployment",
    "deployment.apps": "deployment",
    "cluster": "cluster",
    "clusters": "cluster",
    "clusters.apps.kubeblocks.io": "cluster",
    "clusterdefinition": "clusterdefinition",
    "clusterdefinition.apps.kubeblocks.io": "clusterdefinition",
    "componentdefinition": "componentdefinition",
    "componentversion": "componentversion",
    "componentversion.apps.kubeblocks.io": "componentversion",
    "addons.extensions.kubeblocks.io": "addon",
    "pods": "pod",
    "pod": "pod",
    "namespace": "namespace",
    "events": "event",
    "pvc": "pvc",
    "storageclass": "storageclass",
    "cmp": "component",
    "its": "instanceset",
    "nodes": "node",
}
_API_NAMES = {
    "crd": "customresourcedefinitions.apiextensions.k8s.io",
    "deployment": "deployments.apps",
    "cluster": "clusters.apps.kubeblocks.io",
    "clusterdefinition": "clusterdefinitions.apps.kubeblocks.io",
    "componentversion": "componentversions.apps.kubeblocks.io",
    "componentdefinition": "componentdefinitions.apps.kubeblocks.io",
    "addon": "addons.extensions.kubeblocks.io",
    "namespace": "namespaces",
}


_RESOURCES = {kind: api.split(".")[0] for kind, api in _API_NAMES.items()}
"""The resource's plural name alone (a RESTMapping's Resource.Resource), as kubectl wait's timeout names it."""
_KIND_NAMES = {
    "crd": "customresourcedefinition.apiextensions.k8s.io",
    "deployment": "deployment.apps",
    "cluster": "cluster.apps.kubeblocks.io",
    "clusterdefinition": "clusterdefinition.apps.kubeblocks.io",
    "componentversion": "componentversion.apps.kubeblocks.io",
    "componentdefinition": "componentdefinition.apps.kubeblocks.io",
    "namespace": "namespace",
}
"""kind.group as kubectl's name printer writes an object ("cluster.apps.kubeblocks.io/pg-cluster condition met")."""

_CRD_OF = {
    kind: _API_NAMES[kind] for kind in ("cluster", "clusterdefinition", "componentversion", "componentdefinition")
}
"""Kinds that exist only while their CRD is installed."""


def _kind(word: str) -> str:
    kind = _KINDS.get(word.lower())
    if kind is None:
        raise UnknownCommand(f"resource type {word!r}")
    return kind


def _ok(stdout: str = "") -> CommandResult:
    return CommandResult(0, stdout, "")


def _error(stderr: str, code: int = 1) -> CommandResult:
    return CommandResult(code, "", stderr)


class SimCluster:
    """A Runner over a simulated cluster. Use under anyio (ideally trio's MockClock), one instance per `anyio.run`:
    its times are that run's clock."""

    name = "simulated cluster"

    def __init__(self, scenario: Scenario | None = None, *, epoch: float = 0.0) -> None:
        self.scenario = scenario or Scenario()
        self.epoch = epoch
        """Unix time at virtual time 0: Helm's timestamps (`helm history`) are printed in it, so it must match the
        orchestrator's clock (`run_simulated(..., epoch)`)."""
        self.calls: list[Call] = []
        self.unknown: list[str] = []
        """Every command the simulator refused (also raised as UnknownCommand), for tests to assert empty."""
        self._t0: float | None = None
        self._objects: dict[tuple[str, str | None, str], _Object] = {}
        self._releases: dict[tuple[str, str], _Release] = {}
        self._times: set[float] = set()
        self._changed: anyio.Event | None = None
        self._default_addons = False
        """KubeBlocks was installed with its chart's default addons (before dbstack), so it registered Addons."""
        self.sightings: dict[str, list[float]] = {}
        """Cluster name -> when (seconds since the first command) a `kubectl get -o json` read showed its failure."""
        self.backups = SimBackups(self)

    # --- the Runner interface --------------------------------------------------------------------------------

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        now = self._start()
        started = now - self.origin
        result = CommandResult(TIMED_OUT_EXIT, "", f"simulated runner timeout after {timeout_s:g} s", True)
        try:
            with anyio.move_on_after(timeout_s):
                result = await self._answer(command)
        except UnknownCommand as error:
            self.unknown.append(f"{command}: {error}")
            result = CommandResult(-1, "", f"unknown command: {error}")
            raise
        except BaseException:  # Cancelled mid-command (a wait the watch made pointless): still recorded.
            result = CommandResult(-1, "", "cancelled")
            raise
        finally:
            ended = anyio.current_time() - self.origin
            self.calls.append(Call(command.argv, started, ended, result.exit_code, result.timed_out, result.stderr))
        return result

    @property
    def origin(self) -> float:
        """The virtual time of the first command: simulated times are measured from it."""
        assert self._t0 is not None
        return self._t0

    def _start(self) -> float:
        now = anyio.current_time()
        if self._t0 is None:
            self._t0 = now
            self._changed = anyio.Event()
            if self.scenario.preinstalled:
                self._preinstall(now)
            for release, stuck in self.scenario.stuck.items():
                self._preinstall_stuck(release, stuck, now)
        return now

    def ready_times(self) -> dict[str, float]:
        """Seconds since the first command at which each Cluster, addon definition and deployment became ready."""
        return {
            f"{kind}/{name}": obj.ready_at - self.origin
            for (kind, _, name), obj in self._objects.items()
            if kind in ("cluster", "clusterdefinition", "deployment", "crd") and obj.ready_at < NEVER
        }

    def live(self, kind: str) -> list[str]:
        """Names of the objects of `kind` (cluster, clusterdefinition, deployment, crd, ...) that exist now."""
        return sorted(o.name for o in self._all(kind))

    # --- state -----------------------------------------------------------------------------------------------

    def _now(self) -> float:
        return anyio.current_time()

    def _add(self, obj: _Object) -> _Object:
        self._objects[(obj.kind, obj.namespace, obj.name)] = obj
        times = (obj.created_at, obj.ready_at, obj.fail_at, obj.pods_at, obj.observed_at, obj.up_to_date_at)
        self._times.update(t for t in times if t < NEVER)
        self._notify()
        return obj

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = anyio.Event()

    def _get(self, kind: str, namespace: str | None, name: str) -> _Object | None:
        obj = self._objects.get((kind, namespace if kind in ("deployment", "cluster") else None, name))
        return obj if obj is not None and obj.exists(self._now()) else None

    def _all(self, kind: str) -> list[_Object]:
        now = self._now()
        return [o for (k, _, _), o in self._objects.items() if k == kind and o.exists(now)]

    def _delete(self, obj: _Object, after: float) -> None:
        obj.deleted_at = min(obj.deleted_at, self._now() + after)
        self._times.add(obj.deleted_at)
        self._notify()

    def _preinstall(self, now: float) -> None:
        scenario = self.scenario
        since = now - scenario.preinstalled_age_s
        for crd in (*(f"{c}.snapshot.storage.k8s.io" for c in SNAPSHOT_CRDS), *KUBEBLOCKS_CRDS):
            self._add(_Object("crd", crd, None, since, ready_at=since))
        chart = scenario.snapshot_controller_from_chart
        self._add(
            _Object(
                "deployment",
                "snapshot-controller",
                scenario.snapshot_controller_namespace,
                since,
                ready_at=since,
                replicas=1 if chart else SNAPSHOT_CONTROLLER_REPLICAS,
                labels=CHART_SNAPSHOT_CONTROLLER_LABELS if chart else SNAPSHOT_CONTROLLER_LABELS,
                pod_labels=CHART_SNAPSHOT_CONTROLLER_LABELS if chart else SNAPSHOT_CONTROLLER_POD_LABELS,
            )
        )
        self._add_kubeblocks(KB_NAMESPACE, since, since, scenario.kubeblocks_version, preinstalled=True)
        self._new_release("kubeblocks", KB_NAMESPACE, "kubeblocks", scenario.kubeblocks_version, since)
        for key in scenario.preinstalled_addons:
            self._install_addon(key, since, ready_at=since)
            version = scenario.addon_versions.get(key, "1.0.1")
            self._new_release(DATABASES[key].addon_release, KB_NAMESPACE, key, version, since)

    def _add_kubeblocks(self, ns: str, now: float, ready_at: float, version: str, *, preinstalled: bool) -> None:
        """The chart's two Deployments; the dataprotection controller only starts once the VolumeSnapshot CRDs
        exist, and a preinstalled KubeBlocks (chart defaults) registers Addons for its default addons."""
        snapshot_ok = all(self._established(f"{c}.snapshot.storage.k8s.io") <= now for c in SNAPSHOT_CRDS)
        for deployment, component in zip(KUBEBLOCKS_DEPLOYMENTS, ("apps", "dataprotection"), strict=True):
            ready = ready_at
            if deployment == "kubeblocks" and preinstalled and self.scenario.kubeblocks_unhealthy:
                ready = NEVER
            if deployment == "kubeblocks-dataprotection" and not snapshot_ok:
                ready = NEVER  # Without the VolumeSnapshot CRDs the dataprotection controller crashes at start.
            labels = kubeblocks_labels(version, component)
            self._add(_Object("deployment", deployment, ns, now, ready_at=ready, labels=labels, pod_labels=labels))
        self._default_addons = preinstalled

    def _new_release(
        self, name: str, namespace: str, chart: str, version: str, now: float, status: str = "deployed"
    ) -> _Release:
        description = "Install complete" if status == "deployed" else "Initial install underway"
        release = _Release(name, namespace, chart, version, [_Revision(1, status, now, description)])
        self._releases[(namespace, name)] = release
        return release

    def _preinstall_stuck(self, name: str, stuck: Stuck, now: float) -> None:
        """What a helm killed `stuck.age_s` ago left: the objects it (or an earlier revision) installed, and a last
        revision pending for good."""
        since = now - stuck.age_s
        if stuck.chart == "kubeblocks":
            self._add_kubeblocks(stuck.namespace, since, since, "1.0.1", preinstalled=False)
        elif stuck.chart in DATABASES:
            self._install_addon(stuck.chart, since, ready_at=since)
        elif stuck.chart.removesuffix("-cluster") in DATABASES:
            key = stuck.chart.removesuffix("-cluster")
            parts = self.scenario.topology(stuck.chart, name, stuck.namespace, "")
            cluster = _Object("cluster", name, stuck.namespace, since, ready_at=since, database=key, release=name)
            cluster.components, cluster.replicas = parts, parts[0].replicas
            cluster.pods_at = since
            self._add(cluster)
        else:
            raise UnknownCommand(f"stuck release of chart {stuck.chart}")
        if stuck.status == "pending-install":
            self._new_release(name, stuck.namespace, stuck.chart, "1.0.1", since, "pending-install")
            return
        release = self._new_release(name, stuck.namespace, stuck.chart, "1.0.1", since - 60)
        description = "Preparing upgrade" if stuck.status == "pending-upgrade" else "Rollback to 1"
        release.add(stuck.status, since, description)

    def _established(self, crd: str) -> float:
        obj = self._get("crd", None, crd)
        return obj.ready_at if obj else NEVER

    def _kubeblocks_ready(self) -> float:
        deployments = [self._objects.get(("deployment", "kb-system", d)) for d in KUBEBLOCKS_DEPLOYMENTS]
        return max((d.ready_at if d else NEVER) for d in deployments)

    # --- answering -------------------------------------------------------------------------------------------

    async def _answer(self, command: Command) -> CommandResult:
        if not command.argv or command.argv[0] not in ("kubectl", "helm"):
            raise UnknownCommand(f"not kubectl or helm: {command}")
        args = _parse(command.argv[1:])
        tool = command.argv[0]
        latency = (
            self.scenario.latencies.helm_s if tool == "helm" and _helm_changes(args) else self.scenario.latencies.api_s
        )
        outage = self._in_outage()
        await anyio.sleep(latency)
        if tool == "helm":
            result = self.scenario.outage.helm() if outage else None
            done = _error(result) if result else await self._helm(args, command)
            return self._with_helm_warnings(done)
        if outage:
            return _error(self.scenario.outage.kubectl(_outage_resource(args)))
        if self.backups.handles(args):
            return await self.backups.kubectl(args, command.stdin)
        return await self._kubectl(args)

    def _with_helm_warnings(self, done: CommandResult) -> CommandResult:
        """Helm < 3.17 checks the kubeconfig's mode before every command (cmd/helm/root_unix.go checkPerms) and
        prints its warnings to stderr first, whatever the command then says."""
        mode = self.scenario.kubeconfig_mode
        if not helm_warns_readable_kubeconfig(self.scenario.helm_version):
            return done
        warnings = "".join(
            f"WARNING: Kubernetes configuration file is {who}-readable. This is insecure. Location: {KUBECONFIG_PATH}\n"
            for who, bit in (("group", 0o040), ("world", 0o004))
            if mode & bit
        )
        return CommandResult(done.exit_code, done.stdout, warnings + done.stderr, done.timed_out)

    def _in_outage(self) -> bool:
        window = self.scenario.api_outage
        if window is None:
            return False
        since = self._now() - self.origin
        return window[0] <= since < window[1]

    # --- helm ------------------------------------------------------------------------------------------------

    async def _helm(self, args: _Args, command: Command) -> CommandResult:
        verb = args.positional[0] if args.positional else ""
        ns = args.flags.get("-n", "default")
        if verb == "upgrade" and args.flags.get("--install") and len(args.positional) == 3:
            return self._helm_install(args.positional[1], args.positional[2], ns, args, command.stdin)
        if verb == "status" and len(args.positional) == 2:
            release = self._releases.get((ns, args.positional[1]))
            if release is None:
                return _error(f"Error: {HELM_NOT_FOUND}")
            status = release.status(self._now())
            if args.flags.get("-o") == "json":
                info = {"status": status, "first_deployed": self._helm_time(release.revisions[0].updated)}
                chart = {"metadata": {"name": release.chart, "version": release.version}}
                data = {"name": release.name, "namespace": ns, "info": info, "chart": chart}
                return _ok(json.dumps(data, separators=(",", ":")))
            return _ok(f"NAME: {release.name}\nNAMESPACE: {ns}\nSTATUS: {status}\nREVISION: {len(release.revisions)}\n")
        if verb == "history" and len(args.positional) == 2 and args.flags.get("-o") == "json":
            return self._helm_history(args.positional[1], ns)
        if verb == "rollback" and len(args.positional) == 3:
            return self._helm_rollback(args.positional[1], int(args.positional[2]), ns)
        if verb == "list" and args.flags.get("-A"):
            now = self._now()
            rows = [
                f"{r.name}\t{r.namespace}\t{len(r.revisions)}\t{self._helm_time(r.revisions[-1].updated)}\t"
                f"{r.status(now)}\t{r.chart}-{r.version}\t{r.version}"
                for r in self._releases.values()
            ]
            return _ok("NAME\tNAMESPACE\tREVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION\n" + "\n".join(rows) + "\n")
        if verb == "uninstall" and len(args.positional) == 2:
            return await self._helm_uninstall(args.positional[1], ns, args)
        raise UnknownCommand(f"helm {' '.join(args.positional)}")

    def _helm_time(self, at: float) -> str:
        """Go's time.Time JSON form (RFC 3339 with nanoseconds) of a virtual time."""
        stamp = datetime.fromtimestamp(self.epoch + at, UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"

    def _helm_history(self, name: str, ns: str) -> CommandResult:
        """cmd/helm/history.go: oldest revision first, `updated` being when its operation started."""
        release = self._releases.get((ns, name))
        if release is None:
            return _error(f"Error: {HELM_NOT_FOUND}")
        statuses = release.statuses(self._now())
        rows = [
            {
                "revision": r.number,
                "updated": self._helm_time(r.updated),
                "status": status,
                "chart": f"{release.chart}-{release.version}",
                "app_version": release.version,
                "description": r.description,
            }
            for r, status in zip(release.revisions, statuses, strict=True)
        ]
        return _ok(json.dumps(rows, separators=(",", ":")) + "\n")

    def _helm_rollback(self, name: str, revision: int, ns: str) -> CommandResult:
        """pkg/action/rollback.go: no pending check; the current revision is superseded and a new one deployed."""
        release = self._releases.get((ns, name))
        if release is None:
            return _error(f"Error: {HELM_NOT_FOUND}")
        if not 1 <= revision <= len(release.revisions):
            return _error(f"Error: release has no {revision} version")
        last = release.revisions[-1]
        if last.status.startswith("pending-"):
            last.status = "superseded"
        release.add("deployed", self._now(), f"Rollback to {revision}")
        self._notify()
        return _ok("Rollback was a success! Happy Helming!\n")

    def _helm_install(self, release: str, chart: str, ns: str, args: _Args, stdin: str | None) -> CommandResult:
        """`helm upgrade --install` (cmd/helm/upgrade.go): a release that does not exist is installed (stdout
        "Release ... does not exist. Installing it now."; errors unwrapped); an existing one is upgraded, refused
        while its last revision is pending (errors wrapped "UPGRADE FAILED: ")."""
        now = self._now()
        version = self.scenario.helm_version
        existing = self._releases.get((ns, release))
        race = self.scenario.install_race.get(release)
        if race is not None and existing is None:  # The other client's install starts this moment.
            other = self._install_release(release, chart, ns, args, stdin)
            if not other.ok:
                return other
            self._releases[(ns, release)].revisions[0].status = "pending-install"
            self._releases[(ns, release)].revisions[0].settles_at = now + self.scenario.latencies.helm_s
            self._times.add(now + self.scenario.latencies.helm_s)
            return _error(f"Error: {helm_name_in_use(version) if race is Race.NAME_IN_USE else HELM_RELEASE_EXISTS}")
        held = self.scenario.helm_locked.get(release)
        if held is not None and existing is None:  # The other client starts its install now and holds the lock.
            other = self._install_release(release, chart, ns, args, stdin)
            if not other.ok:
                return other
            self._releases[(ns, release)].revisions[0].status = "pending-install"
            self._releases[(ns, release)].revisions[0].settles_at = now + held
            self._times.add(now + held)
            return _error(f"Error: UPGRADE FAILED: {HELM_LOCKED}")
        if existing is not None and existing.status(now).startswith("pending-"):
            return _error(f"Error: UPGRADE FAILED: {HELM_LOCKED}")
        owner = self.scenario.owned_by.get(release)
        if owner is not None and existing is None:
            return _error(f"Error: {helm_unable_to_install(version)}: {_ownership_conflict(chart, release, owner, ns)}")
        return self._install_release(release, chart, ns, args, stdin)

    def _install_release(self, release: str, chart: str, ns: str, args: _Args, stdin: str | None) -> CommandResult:
        now = self._now()
        if not args.flags.get("--repo") or not args.flags.get("--version"):
            raise UnknownCommand(f"helm install of {chart} without --repo and --version")
        lat = self.scenario.latencies
        if chart == "kubeblocks":
            if any(self._established(c) > now for c in KUBEBLOCKS_CRDS):
                return _error(_no_matches("pvc", "", "StorageProvider", "dataprotection.kubeblocks.io/v1alpha1"))
            version = args.flags["--version"]
            current = self._get("deployment", ns, "kubeblocks")
            if current is None or current.labels.get("app.kubernetes.io/version") != version:
                self._add_kubeblocks(ns, now, now + lat.kubeblocks_s, version, preinstalled=False)
        elif chart in (db.addon for db in DATABASES.values()):
            if self._established("clusterdefinitions.apps.kubeblocks.io") > now:
                return _error(_no_matches(chart, "", "ClusterDefinition", "apps.kubeblocks.io/v1"))
            self._install_addon(chart, now, ready_at=max(now, self._kubeblocks_ready()) + lat.addon_s[chart])
        elif chart.endswith("-cluster") and chart.removesuffix("-cluster") in DATABASES:
            if self._established("clusters.apps.kubeblocks.io") > now:
                return _error(_no_matches(release, ns, "Cluster", "apps.kubeblocks.io/v1"))
            self._install_cluster(chart, release, ns, stdin)
        else:
            raise UnknownCommand(f"helm chart {chart}")
        existing = self._releases.get((ns, release))
        if existing is not None:
            existing.version = args.flags["--version"]
            existing.add("deployed", now, "Upgrade complete")
            return _ok(f'Release "{release}" has been upgraded. Happy Helming!\nNAME: {release}\nSTATUS: deployed\n')
        self._new_release(release, ns, chart, args.flags["--version"], now)
        return _ok(f'Release "{release}" does not exist. Installing it now.\nNAME: {release}\nSTATUS: deployed\n')

    def _install_addon(self, key: str, now: float, ready_at: float) -> None:
        for kind in ("clusterdefinition", "componentversion", "componentdefinition", "addon"):
            if self._get(kind, None, key) is None:  # An upgrade leaves Available definitions Available.
                self._add(_Object(kind, key, None, now, ready_at=ready_at, database=key))

    def _install_cluster(self, chart: str, release: str, ns: str, stdin: str | None) -> None:
        now = self._now()
        lat = self.scenario.latencies
        key = chart.removesuffix("-cluster")
        parts = self.scenario.topology(chart, release, ns, stdin or "")
        self.backups.cluster_values(release, ns, stdin or "")
        definitions = self._objects.get(("clusterdefinition", None, key))
        available = definitions.ready_at if definitions and definitions.exists(now) else NEVER
        pods_at = max(now, available) + lat.pods_after_s
        failure = self.scenario.failures.get(key)
        existing = self._get("cluster", ns, release)
        if existing is not None:
            # An upgrade: KubeBlocks writes the new spec into the Components and advances observedGeneration at
            # once; the components take it up (`upToDate`) a while later, and until then every phase is the old one.
            existing.running_before_update = existing.ready(now)
            existing.generation += 1
            existing.observed_at = now + lat.observe_s
            existing.up_to_date_at = existing.observed_at + lat.stale_phase_s
            existing.components, existing.replicas = parts, parts[0].replicas
            existing.rolled_at, existing.roll_s = existing.up_to_date_at, lat.cluster_s[key]
            broken = self.scenario.upgrade_failures.get(key)
            if broken is not None:
                existing.failure, existing.failure_after_upgrade = broken, True
                existing.fail_at = existing.up_to_date_at + lat.failure_after_s
                failure = broken
                self._times.add(existing.fail_at)
            existing.ready_at = existing.up_to_date_at + lat.cluster_s[key] if _comes_up(failure) else NEVER
            self._add(existing)
            return
        ready_at = max(now, available) + lat.cluster_s[key] if _comes_up(failure) else NEVER
        fail_at = pods_at + lat.failure_after_s if failure else NEVER
        self._add(
            _Object(
                "cluster",
                release,
                ns,
                now,
                ready_at=ready_at,
                database=key,
                replicas=parts[0].replicas,
                components=parts,
                release=release,
                failure=failure,
                fail_at=fail_at,
                pods_at=pods_at,
                observed_at=now,
                up_to_date_at=min(max(now, available) + lat.observe_s, ready_at),
            )
        )

    async def _helm_uninstall(self, release: str, ns: str, args: _Args) -> CommandResult:
        """pkg/action/uninstall.go: with --ignore-not-found a missing release is a success that still prints
        'release "<name>" uninstalled' (cmd/helm/uninstall.go); with --wait it waits up to --timeout (default 300 s)
        for the objects to go, and a wait that runs out ends "uninstallation completed with 1 error(s): ..." after
        the release record is already gone."""
        found = self._releases.pop((ns, release), None)
        if found is None:
            if args.flags.get("--ignore-not-found"):
                return _ok(f'release "{release}" uninstalled\n')
            return _error(f"Error: uninstall: Release not loaded: {release}: {HELM_NOT_FOUND}")
        delay = NEVER if release in self.scenario.stuck_deletion else self.scenario.latencies.delete_s
        deleted: list[_Object] = []
        if found.chart.endswith("-cluster"):
            deleted = [o for o in [self._get("cluster", ns, release)] if o]
        elif found.chart == "kubeblocks":
            deleted = [o for d in KUBEBLOCKS_DEPLOYMENTS if (o := self._get("deployment", ns, d))]
        else:
            kinds = ("clusterdefinition", "componentversion", "componentdefinition")
            deleted = [o for k in kinds if (o := self._get(k, None, found.chart))]
            delay = min(delay, 0.0) if delay < NEVER else delay
        for obj in deleted:
            self._delete(obj, delay)
        if args.flags.get("--wait"):
            timeout = _seconds(args.flags.get("--timeout", f"{HELM_DEFAULT_TIMEOUT_S:g}s"))
            gone = await self._until(lambda now: all(not o.exists(now) for o in deleted), timeout)
            if not gone:
                return _error(f"Error: uninstallation completed with 1 error(s): {self._deletion_timeout(deleted)}")
        return _ok(f'release "{release}" uninstalled\n')

    def _deletion_timeout(self, left: list[_Object]) -> str:
        """Helm 3 (pkg/kube/wait.go waitForDeletedResources): the poll's context error. Helm 4 (pkg/kube/
        statuswait.go waitForDelete): each object still there, then the context error, joined by newlines."""
        if not self.scenario.helm_version.startswith("4"):
            return "context deadline exceeded"
        kinds = {
            "cluster": "Cluster",
            "deployment": "Deployment",
            "clusterdefinition": "ClusterDefinition",
            "componentversion": "ComponentVersion",
            "componentdefinition": "ComponentDefinition",
        }
        still = [
            f"resource still exists, name: {o.name}, kind: {kinds.get(o.kind, o.kind)}, status: Terminating"
            for o in left
        ]
        return "\n".join([*still, "context deadline exceeded"])

    # --- kubectl ---------------------------------------------------------------------------------------------

    async def _kubectl(self, args: _Args) -> CommandResult:
        verb = args.positional[0] if args.positional else ""
        rest = args.positional[1:]
        if verb in ("apply", "create") and "-f" in args.flags and not rest:
            return self._apply(args.flags["-f"])
        if verb == "delete":
            return self._kubectl_delete(args, rest)
        if verb == "wait" and len(rest) == 1:
            return await self._wait(args, rest[0])
        if verb == "rollout" and rest[:1] == ["status"] and len(rest) == 2:
            return await self._rollout(args, rest[1])
        if verb == "get":
            return self._kubectl_get(args, rest)
        if verb == "describe":
            return self._describe(args, rest)
        if verb == "logs":
            return self._logs(args, rest)
        raise UnknownCommand(f"kubectl {' '.join(args.positional)}")

    def _apply(self, url: str) -> CommandResult:
        now = self._now()
        lat = self.scenario.latencies
        if url.endswith("/kubeblocks_crds.yaml"):
            for crd in KUBEBLOCKS_CRDS:
                if not self._get("crd", None, crd):
                    self._add(_Object("crd", crd, None, now, ready_at=now + lat.kubeblocks_crds_s))
            return _ok(
                "".join(
                    f"customresourcedefinition.apiextensions.k8s.io/{c} serverside-applied\n" for c in KUBEBLOCKS_CRDS
                )
            )
        for crd in SNAPSHOT_CRDS:
            if url.endswith(f"/snapshot.storage.k8s.io_{crd}.yaml"):
                name = f"{crd}.snapshot.storage.k8s.io"
                if not self._get("crd", None, name):
                    self._add(_Object("crd", name, None, now, ready_at=now + lat.snapshot_crds_s))
                return _ok(f"customresourcedefinition.apiextensions.k8s.io/{name} serverside-applied\n")
        if url.endswith("/rbac-snapshot-controller.yaml"):
            return _ok(
                "serviceaccount/snapshot-controller created\n"
                "clusterrole.rbac.authorization.k8s.io/snapshot-controller-runner created\n"
            )
        if url.endswith("/setup-snapshot-controller.yaml"):
            if not self._get("deployment", "kube-system", "snapshot-controller"):
                self._add(
                    _Object(
                        "deployment",
                        "snapshot-controller",
                        "kube-system",
                        now,
                        ready_at=now + lat.snapshot_controller_s,
                        replicas=SNAPSHOT_CONTROLLER_REPLICAS,
                        labels=SNAPSHOT_CONTROLLER_LABELS,
                        pod_labels=SNAPSHOT_CONTROLLER_POD_LABELS,
                    )
                )
            return _ok("deployment.apps/snapshot-controller created\n")
        raise UnknownCommand(f"manifest {url}")

    def _kubectl_delete(self, args: _Args, rest: list[str]) -> CommandResult:
        if "-f" in args.flags and not rest:
            url = args.flags["-f"]
            if url.endswith("/kubeblocks_crds.yaml"):
                names = list(KUBEBLOCKS_CRDS)
            elif url.endswith("/setup-snapshot-controller.yaml"):
                obj = self._get("deployment", "kube-system", "snapshot-controller")
                if obj:
                    self._delete(obj, self.scenario.latencies.delete_s)
                return _ok('deployment.apps "snapshot-controller" deleted\n' if obj else "")
            elif url.endswith("/rbac-snapshot-controller.yaml"):
                return _ok("")
            else:
                names = [f"{c}.snapshot.storage.k8s.io" for c in SNAPSHOT_CRDS if url.endswith(f"_{c}.yaml")]
                if not names:
                    raise UnknownCommand(f"manifest {url}")
            out = ""
            for name in names:
                crd = self._get("crd", None, name)
                if crd:
                    self._delete(crd, 0)
                    out += f'customresourcedefinition.apiextensions.k8s.io "{name}" deleted\n'
            return _ok(out)
        if len(rest) == 2 and _kind(rest[0]) == "namespace":
            return _ok(f'namespace "{rest[1]}" deleted\n')
        raise UnknownCommand(f"kubectl delete {' '.join(rest)}")

    # --- blocking waits --------------------------------------------------------------------------------------

    async def _until(self, check: Callable[[float], bool], timeout: float) -> bool:
        end = self._now() + timeout
        while True:
            now = self._now()
            if check(now):
                return True
            if now >= end:
                return False
            wake = min([t for t in self._times if t > now] + [end])
            changed = self._changed
            assert changed is not None
            with anyio.move_on_after(wake - now):
                await changed.wait()

    async def _wait(self, args: _Args, target: str) -> CommandResult:
        """kubectl pkg/cmd/wait (v0.31): a condition or jsonpath wait that runs out prints apimachinery's
        ErrWaitTimeout extended with "on <resource>/<name>" (condition.go extendErrWaitTimeout, delete.go); the
        --for=create poll prints it bare (wait.go RunWait). Success prints "<kind>.<group>/<name> condition met";
        --for=delete of an object that is already gone prints nothing."""
        if "-l" in args.flags and "/" not in target:
            return await self._wait_selected(args, target)
        word, _, name = target.partition("/")
        kind = _kind(word)
        ns = args.flags.get("-n")
        condition = args.flags.get("--for", "")
        timeout = _seconds(args.flags.get("--timeout", "30s"))
        met_line = f"{_KIND_NAMES.get(kind, kind)}/{name} condition met\n"
        timed_out = f"error: timed out waiting for the condition on {_RESOURCES.get(kind, kind)}/{name}"
        crd = _CRD_OF.get(kind)
        if crd is not None and self._get("crd", None, crd) is None:
            return _error(f'error: the server doesn\'t have a resource type "{crd.split(".")[0]}"')
        if condition == "delete":
            if self._get(kind, ns, name) is None:
                return _ok()
            met = await self._until(lambda now: self._at(kind, ns, name, now) is None, timeout)
            return _ok(met_line) if met else _error(timed_out)
        if condition == "create":
            met = await self._until(lambda now: self._at(kind, ns, name, now) is not None, timeout)
            return _ok(met_line) if met else _error("error: timed out waiting for the condition")
        if self._get(kind, ns, name) is None:
            return _error(f'Error from server (NotFound): {_API_NAMES.get(kind, kind)} "{name}" not found')
        check = self._condition(kind, ns, name, condition)
        met = await self._until(check, timeout)
        return _ok(met_line) if met else _error(timed_out)

    async def _wait_selected(self, args: _Args, target: str) -> CommandResult:
        """`kubectl wait pods [-A | -n ns] -l <selector> --for=condition=Ready`: the pods selected now, each Ready."""
        if _kind(target) != "pod" or args.flags.get("--for") != "condition=Ready":
            raise UnknownCommand(f"kubectl wait {target} --for={args.flags.get('--for')}")
        ns = None if args.flags.get("-A") else args.flags.get("-n", "default")
        selector = args.flags["-l"]
        names = [p["metadata"]["name"] for p in self._pods(ns, selector)]
        if not names:
            return _error("error: no matching resources found")

        def all_ready(now: float) -> bool:
            pods = {p["metadata"]["name"]: p for p in self._pods(ns, selector)}
            return all(
                name in pods
                and any(c == {"type": "Ready", "status": "True"} for c in pods[name]["status"]["conditions"])
                for name in names
            )

        if await self._until(all_ready, _seconds(args.flags.get("--timeout", "30s"))):
            return _ok("".join(f"pod/{name} condition met\n" for name in names))
        return _error(f"error: timed out waiting for the condition on pods/{names[0]}")

    def _at(self, kind: str, ns: str | None, name: str, now: float) -> _Object | None:
        obj = self._objects.get((kind, ns if kind in ("deployment", "cluster") else None, name))
        return obj if obj is not None and obj.exists(now) else None

    def _condition(self, kind: str, ns: str | None, name: str, condition: str) -> Callable[[float], bool]:
        if kind == "crd" and condition == "condition=Established":
            return lambda now: bool((o := self._at(kind, ns, name, now)) and o.ready(now))
        if kind == "cluster" and condition.startswith("jsonpath={.") and "}=" in condition:
            # kubectl pkg/cmd/wait/json.go: a field not set yet keeps the wait going; the value is compared as
            # fmt.Sprintf("%v") prints it (a bool as true/false).
            path, wanted = condition.removeprefix("jsonpath={.").split("}=", 1)

            def matches(now: float) -> bool:
                obj = self._at(kind, ns, name, now)
                value = _lookup(self._cluster_json(obj, now), path.split(".")) if obj else None
                return value is not None and _printed(value) == wanted

            return matches
        if condition.startswith("jsonpath={.status.phase}="):
            wanted = condition.rsplit("=", 1)[1]
            return lambda now: self._phase(kind, ns, name, now) == wanted
        raise UnknownCommand(f"wait condition {condition} on {kind}")

    def _phase(self, kind: str, ns: str | None, name: str, now: float) -> str | None:
        obj = self._at(kind, ns, name, now)
        if obj is None:
            return None
        if kind == "cluster":
            abnormal = obj.failure in (Failure.ABNORMAL, Failure.ABNORMAL_BLIP)
            if abnormal and obj.failing(now, self.scenario.latencies.blip_s):
                return "Abnormal"
            if now < obj.up_to_date_at:
                return "Running" if obj.running_before_update else "Creating"
            if obj.ready(now):
                return "Running"
            return "Updating" if obj.generation > 1 else "Creating"
        if kind in ("clusterdefinition", "componentversion", "componentdefinition"):
            return "Available" if obj.ready(now) else "Unavailable"
        if kind == "addon":
            return "Enabled" if obj.ready(now) else "Enabling"
        return None

    async def _rollout(self, args: _Args, target: str) -> CommandResult:
        """kubectl pkg/cmd/rollout/rollout_status.go with polymorphichelpers/rollout_status.go: progress lines on
        stdout; a Deployment past its progress deadline fails at once ("exceeded its progress deadline"); a --timeout
        that runs out is client-go's watch ErrWaitTimeout ("timed out waiting for the condition", no name)."""
        word, _, name = target.partition("/")
        if _kind(word) != "deployment":
            raise UnknownCommand(f"rollout status {target}")
        ns = args.flags.get("-n", "default")
        deployment = self._get("deployment", ns, name)
        if deployment is None:
            return _error(f'Error from server (NotFound): deployments.apps "{name}" not found')
        waiting = f'Waiting for deployment "{name}" rollout to finish: 0 of 1 updated replicas are available...\n'
        deadline = deployment.created_at + PROGRESS_DEADLINE_S
        self._times.add(deadline)
        timeout = _seconds(args.flags.get("--timeout", "0s")) or NEVER
        ready_at_once = deployment.ready(self._now())
        met = await self._until(lambda now: deployment.ready(now) or now >= deadline, timeout)
        if met and deployment.ready(self._now()):
            return _ok(("" if ready_at_once else waiting) + f'deployment "{name}" successfully rolled out\n')
        if met:
            return CommandResult(1, waiting, f'error: deployment "{name}" exceeded its progress deadline')
        return CommandResult(1, waiting, "error: timed out waiting for the condition")

    # --- reads -----------------------------------------------------------------------------------------------

    def _kubectl_get(self, args: _Args, rest: list[str]) -> CommandResult:
        if not rest:
            raise UnknownCommand("kubectl get without a resource")
        ns = args.flags.get("-n", "default")
        output = args.flags.get("-o", "")
        words = rest[0].split(",")
        kinds = [_kind(w) for w in words]
        names = rest[1:]
        kind = kinds[0]
        if kind == "crd" and names:
            # kubectl get (ContinueOnError): the objects it found on stdout, one NotFound per missing one on stderr.
            present = [n for n in names if self._get("crd", None, n) is not None]
            table = "NAME\tCREATED AT\n" + "".join(f"{n}\t2026-01-01T00:00:00Z\n" for n in present) if present else ""
            missing = [n for n in names if n not in present]
            errors = "".join(f'Error from server (NotFound): {_API_NAMES["crd"]} "{n}" not found\n' for n in missing)
            return CommandResult(1 if missing else 0, table, errors)
        if kind == "crd":
            return _ok("NAME\tCREATED AT\n" + "".join(f"{o.name}\t2026-01-01T00:00:00Z\n" for o in self._all("crd")))
        if kind == "deployment":
            found = [o for o in self._all("deployment") if (args.flags.get("-A") or o.namespace == ns)]
            if names:
                found = [o for o in found if o.name in names]
                if not found:
                    return _error(f'Error from server (NotFound): deployments.apps "{names[0]}" not found')
            selector = args.flags.get("-l")
            if selector:
                found = [o for o in found if _matches(o.labels, selector)]
            if output == "name":
                return _ok("".join(f"deployment.apps/{o.name}\n" for o in found))
            if output == "json" and len(names) == 1:
                return _ok(json.dumps(self._deployment_json(found[0])))
            raise UnknownCommand(f"kubectl get deployment -o {output}")
        if kind == "cluster" and len(names) == 1:
            cluster = self._get("cluster", ns, names[0])
            if cluster is None:
                if args.flags.get("--ignore-not-found"):
                    return _ok("")
                return _error(f'Error from server (NotFound): clusters.apps.kubeblocks.io "{names[0]}" not found')
            data = self._cluster_json(cluster, self._now())
            if output == "json" and data["status"]["phase"] == "Abnormal":
                self._sighted(cluster)
            if output == "json":
                return _ok(json.dumps(data))
            if output == "yaml":
                return _ok(yaml.safe_dump(data))
            raise UnknownCommand(f"kubectl get cluster -o {output}")
        if kind == "pod" and "-l" in args.flags and output.startswith(_NAMESPACE_NAME_LINES):
            pods = self._pods(None if args.flags.get("-A") else ns, args.flags["-l"])
            return _ok("".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}\n" for p in pods))
        if kind == "pod" and "-l" in args.flags and output == "wide":
            pods = self._pods(None if args.flags.get("-A") else ns, args.flags["-l"])
            rows = [f"{p['metadata']['namespace']}\t{p['metadata']['name']}\t{p['status']['phase']}" for p in pods]
            return _ok("NAMESPACE\tNAME\tSTATUS\n" + "".join(f"{r}\n" for r in rows))
        if kind == "pod" and "-l" in args.flags and output == "json":
            pods = self._pods(ns, args.flags["-l"])
            for cluster in self._clusters_for(ns, args.flags["-l"]):
                if any(
                    _stuck(pod)
                    for pod in pods
                    if pod["metadata"]["labels"]["app.kubernetes.io/instance"] == cluster.name
                ):
                    self._sighted(cluster)
            return _ok(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
        if kind == "pod" and output == "wide":
            return _ok(self._pod_table(ns))
        if kind == "addon" and len(names) == 1 and output == "yaml":
            return self._addon_yaml(names[0])
        if set(kinds) <= {"clusterdefinition", "componentdefinition", "componentversion"}:
            now = self._now()
            rows = [f"{k}/{o.name}\t{self._phase(k, None, o.name, now)}" for k in kinds for o in self._all(k)]
            return _ok("NAME\tSTATUS\n" + "\n".join(rows) + "\n")
        if kind == "event":
            return _ok(self._events(ns))
        if kind == "pvc":
            return _ok("NAME\tSTATUS\tVOLUME\tCAPACITY\tSTORAGECLASS\n")
        if kind == "storageclass":
            return _ok(
                "NAME\tPROVISIONER\tRECLAIMPOLICY\tVOLUMEBINDINGMODE\n"
                "local-path (default)\trancher.io/local-path\tDelete\tWaitForFirstConsumer\n"
            )
        raise UnknownCommand(f"kubectl get {' '.join(rest)} -o {output}")

    def _sighted(self, cluster: _Object) -> None:
        self.sightings.setdefault(cluster.name, []).append(self._now() - self.origin)

    def _addon_yaml(self, name: str) -> CommandResult:
        """The Addon a KubeBlocks installed with its chart's default addons registers: Disabled until its chart is
        installed, then Enabling until the definitions are Available, then Enabled. KubeBlocks installed by the plan
        (`autoInstalledAddons={}`) registers none."""
        registered = self._default_addons and name in KUBEBLOCKS_DEFAULT_ADDONS
        if not registered or self._get("deployment", "kb-system", "kubeblocks") is None:
            return _error(f'Error from server (NotFound): addons.extensions.kubeblocks.io "{name}" not found')
        phase = self._phase("addon", None, name, self._now()) or "Disabled"
        addon = {
            "apiVersion": "extensions.kubeblocks.io/v1alpha1",
            "kind": "Addon",
            "metadata": {"name": name},
            "spec": {"install": {"enabled": False}},
            "status": {"phase": phase},
        }
        return _ok(yaml.safe_dump(addon))

    def _clusters_for(self, ns: str, selector: str) -> list[_Object]:
        wanted = selector.split("=", 1)[1] if selector.startswith("app.kubernetes.io/instance=") else None
        if wanted is None:
            raise UnknownCommand(f"selector {selector}")
        return [o for o in self._all("cluster") if o.namespace == ns and o.name == wanted]

    def _cluster_json(self, cluster: _Object, now: float) -> dict[str, Any]:
        """A Cluster as KubeBlocks 1.0.1 keeps it (apis/apps/v1/cluster_types.go; controllers/apps/cluster/
        transformer_cluster_component_status.go): per component its phase, the Cluster generation it was written
        for, and `upToDate` once it has observed that spec (omitted while false: `json:"upToDate,omitempty"`)."""
        phase = self._phase("cluster", cluster.namespace, cluster.name, now)
        component = cluster.components[0].name
        status: dict[str, Any] = {"phase": phase, "observedGeneration": cluster.observed_generation(now)}
        component_status: dict[str, Any] = {
            "phase": "Failed" if phase == "Abnormal" else phase,
            "observedGeneration": cluster.observed_generation(now),
        }
        # Until KubeBlocks has seen a new generation, the status is the previous spec's, its upToDate included.
        stale = cluster.generation > 1 and now < cluster.observed_at
        if now >= cluster.up_to_date_at or stale:
            component_status["upToDate"] = True
        if phase == "Abnormal":
            failing_pod = f"{cluster.name}-{component}-{cluster.replicas - 1}"
            component_status["message"] = {f"InstanceSet/{cluster.name}-{component}": f"[{failing_pod}] is not ready"}
        status["components"] = {component: component_status}
        return {
            "apiVersion": "apps.kubeblocks.io/v1",
            "kind": "Cluster",
            "metadata": {"name": cluster.name, "namespace": cluster.namespace, "generation": cluster.generation},
            "spec": {
                "terminationPolicy": "Delete",
                "componentSpecs": [{"name": component, "replicas": cluster.replicas}],
            },
            "status": status,
        }

    def _pods(self, ns: str | None, selector: str) -> list[dict[str, Any]]:
        """The pods in `ns` (every namespace when None) whose labels match `selector`: every component's pods of
        every Cluster (KubeBlocks' names and labels), and the Deployments' pods (their pod template's labels)."""
        now = self._now()
        pods = []
        for cluster in self._all("cluster"):
            if (ns is not None and cluster.namespace != ns) or now < cluster.pods_at:
                continue
            for number, component in enumerate(cluster.components):
                for index in range(component.replicas):
                    name = f"{cluster.name}-{component.name}-{index}"
                    labels = {
                        "app.kubernetes.io/instance": cluster.name,
                        "app.kubernetes.io/managed-by": "kubeblocks",
                        "apps.kubeblocks.io/component-name": component.name,
                    }
                    if not _matches(labels, selector):
                        continue
                    if number == 0:  # A scenario's failure shows on the component the application uses.
                        pod = self._pod(cluster, name, component.name, now, index, component.replicas)
                    else:
                        pod = _running_pod(name, cluster.namespace, component.name, cluster.ready(now))
                    pod["metadata"]["labels"] = labels
                    pods.append(pod)
        pods.extend(self.backups.pods(ns, selector))
        for deployment in self._all("deployment"):
            if (ns is not None and deployment.namespace != ns) or not _matches(deployment.pod_labels, selector):
                continue
            for index in range(deployment.replicas):
                name = f"{deployment.name}-6d4f8b7c9-x{index}"
                pod = _running_pod(name, deployment.namespace, deployment.name, deployment.ready(now))
                pod["metadata"]["labels"] = dict(deployment.pod_labels)
                pods.append(pod)
        return pods

    def _deployment_json(self, deployment: _Object) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": deployment.name, "namespace": deployment.namespace}
        if deployment.labels:
            metadata["labels"] = dict(deployment.labels)
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": {"replicas": 1}}

    def _pod(self, cluster: _Object, name: str, container: str, now: float, index: int, count: int) -> dict[str, Any]:
        """A pod as `kubectl get pods -o json` shows it: running but not ready until the Cluster is Running; with a
        failure, the failing pod (or all pods, for image and crash failures) stuck, the others ready. During an
        upgrade's rolling restart each pod is unready while it restarts; a failure after the upgrade shows only on the
        pod restarted first (the highest ordinal), and the others keep running the old spec.

        KubeBlocks 1.0.1 (pkg/controller/component/kbagent.go, pkg/kbagent/setup.go) adds the init containers
        `init-kbagent` (copies kbagent into the pod) and `kbagent-worker`, and the sidecar `kbagent`, to every pod of
        a component with lifecycle actions. A pod that is not scheduled has no container statuses at all."""
        last = index == count - 1
        failure = cluster.failure
        failing = cluster.failing(now, self.scenario.latencies.blip_s)
        if cluster.failure_after_upgrade and not last:
            failure, failing = None, False
        conditions: list[dict[str, Any]] = []
        main: dict[str, Any]
        phase = "Running"
        if failure is Failure.PENDING_CPU and last:
            phase = "Pending"
            conditions.append(
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": _NO_CPU}
            )
            main = {}
        elif failing and failure is Failure.IMAGE_PULL:
            phase = "Pending"
            image = f"docker.io/apecloud/{cluster.database}:missing"
            waiting = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            main = {"name": container, "ready": False, "restartCount": 0, "state": {"waiting": waiting}}
        elif failing and failure in (Failure.CRASHLOOP, Failure.CRASH_ONCE):
            message = f"back-off 10s restarting failed container={container} pod={name}"
            main = {
                "name": container,
                "ready": False,
                "restartCount": 1 if failure is Failure.CRASH_ONCE else 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": message}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        else:
            siblings_up = failing and failure in (Failure.PENDING_CPU, Failure.ABNORMAL) and not last
            ready = cluster.ready(now) or siblings_up or _up_while_rolling(cluster, now, index, count)
            main = {"name": container, "ready": ready, "restartCount": 0, "state": {"running": {}}}
        spec: dict[str, Any] = {
            "initContainers": [{"name": "init-kbagent"}, {"name": "kbagent-worker"}],
            "containers": [{"name": container}, {"name": "kbagent"}],
        }
        status: dict[str, Any] = {"phase": phase, "conditions": conditions}
        if main:
            spec["nodeName"] = "k3s-server"
            completed = {"terminated": {"exitCode": 0, "reason": "Completed"}}
            status["initContainerStatuses"] = [
                {"name": init, "ready": True, "restartCount": 0, "state": completed}
                for init in ("init-kbagent", "kbagent-worker")
            ]
            sidecar = {"name": "kbagent", "ready": True, "restartCount": 0, "state": {"running": {}}}
            status["containerStatuses"] = [main, sidecar]
        ready = bool(main) and main["ready"]
        conditions.append({"type": "Ready", "status": "True" if ready else "False"})
        labels = {"app.kubernetes.io/instance": cluster.name}
        return {
            "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
            "spec": spec,
            "status": status,
        }

    def _pod_table(self, ns: str) -> str:
        rows = [
            f"{d.name}-0\t{'1/1' if d.ready(self._now()) else '0/1'}"
            for d in self._all("deployment")
            if d.namespace == ns
        ]
        return "NAME\tREADY\n" + "\n".join(rows) + "\n"

    def _events(self, ns: str) -> str:
        now = self._now()
        lines = ["LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE"]
        for cluster in self._all("cluster"):
            if cluster.namespace != ns and ns != "kb-system":
                continue
            for pod in self._pods(cluster.namespace or "default", f"app.kubernetes.io/instance={cluster.name}"):
                for condition in pod["status"]["conditions"]:
                    if condition.get("reason") == "Unschedulable":
                        lines.append(
                            f"5s\tWarning\tFailedScheduling\tpod/{pod['metadata']['name']}\t{condition['message']}"
                        )
                for container in pod["status"].get("containerStatuses", []):
                    waiting = container["state"].get("waiting", {})
                    if waiting.get("reason") in ("ImagePullBackOff", "CrashLoopBackOff"):
                        lines.append(
                            f"5s\tWarning\tBackOff\tpod/{pod['metadata']['name']}\t{waiting.get('message', '')}"
                        )
            if self._phase("cluster", cluster.namespace, cluster.name, now) == "Abnormal":
                # The pod the Cluster names as not ready fails its readiness probe (kubelet's words).
                db = DATABASES[cluster.database or ""]
                failing_pod = f"{cluster.name}-{db.component}-{cluster.replicas - 1}"
                probe = f"Readiness probe failed: dial tcp 10.42.0.17:{db.port}: connect: connection refused"
                lines.append(f"5s\tWarning\tUnhealthy\tpod/{failing_pod}\t{probe}")
                lines.append(f"5s\tWarning\tComponentPhaseTransition\tcluster/{cluster.name}\tcomponent is Abnormal")
        return "\n".join(lines) + "\n"

    def _describe(self, args: _Args, rest: list[str]) -> CommandResult:
        if not rest:
            raise UnknownCommand("kubectl describe without a resource")
        kind = _kind(rest[0].split("/")[0])
        ns = args.flags.get("-n", "default")
        if kind == "node":
            return _ok(
                "Name:               k3s-server\nAllocatable:\n  cpu:                4\n  memory:             16Gi\n"
                "Allocated resources:\n  Resource           Requests      Limits\n  cpu                3950m (98%)   "
                "5 (125%)\n  memory             6Gi (37%)     8Gi (50%)\n"
            )
        if kind == "pod" and "-l" in args.flags:
            out = []
            for pod in self._pods(ns, args.flags["-l"]):
                out.append(
                    f"Name:         {pod['metadata']['name']}\nNamespace:    {ns}\n"
                    f"Status:       {pod['status']['phase']}\n"
                    f"Containers:\n  main:\n    Environment:\n      POSTGRES_USER:      postgres\n"
                    f"      POSTGRES_PASSWORD:  {SIM_CREDENTIAL}\n"
                    f"      KB_ACCOUNT_SECRET:  <set to the key 'password' in secret 'account'>\n"
                    f"Conditions:\n" + "".join(f"  {c['type']}  {c['status']}\n" for c in pod["status"]["conditions"])
                )
            return _ok("\n".join(out) or "No resources found\n")
        if kind in ("cluster", "component", "instanceset", "deployment"):
            name = rest[1] if len(rest) > 1 else rest[0].partition("/")[2] or args.flags.get("-l", "")
            return _ok(f"Name:         {name}\nNamespace:    {ns}\nKind:         {kind}\n")
        raise UnknownCommand(f"kubectl describe {' '.join(rest)}")

    def _logs(self, args: _Args, rest: list[str]) -> CommandResult:
        ns = args.flags.get("-n", "default")
        if rest and rest[0].startswith("deploy/"):
            name = rest[0].removeprefix("deploy/")
            if self._get("deployment", ns, name) is None:
                return _error(f'Error from server (NotFound): deployments.apps "{name}" not found')
            return _ok(f"{name} INFO reconcile done\n")
        if len(rest) == 1 and "-c" in args.flags and "--tail" in args.flags:
            return self._container_logs(ns, rest[0], args.flags["-c"], bool(args.flags.get("--previous")))
        raise UnknownCommand(f"kubectl logs {' '.join(rest)}")

    def _container_logs(self, ns: str, pod_name: str, container: str, previous: bool) -> CommandResult:
        """`kubectl logs <pod> -c <container> [--previous]`, refused the way the API server refuses it."""
        pod = next(
            (
                p
                for c in self._all("cluster")
                for p in self._pods(ns, _selector(c))
                if p["metadata"]["name"] == pod_name
            ),
            None,
        )
        if pod is None:
            return _error(f'Error from server (NotFound): pods "{pod_name}" not found')
        if "nodeName" not in pod["spec"]:
            return _error(f"Error from server (BadRequest): pod {pod_name} does not have a host assigned")
        statuses = [*pod["status"].get("initContainerStatuses", []), *pod["status"].get("containerStatuses", [])]
        status = next((c for c in statuses if c["name"] == container), None)
        if status is None:
            # The API server's refusal (pkg/registry/core/pod/strategy.go LogLocation).
            return _error(f"Error from server (BadRequest): container {container} is not valid for pod {pod_name}")
        if previous:
            if status["restartCount"] == 0:
                return _error(
                    f'Error from server (BadRequest): previous terminated container "{container}" in pod '
                    f'"{pod_name}" not found'
                )
            return _ok("FATAL: could not start: exit 1\n")
        waiting = status["state"].get("waiting", {}).get("reason")
        if waiting and waiting != "CrashLoopBackOff":  # A crash-looping container's last run still has logs.
            return _error(
                f'Error from server (BadRequest): container "{container}" in pod "{pod_name}" is waiting to start: '
                f"{waiting}"
            )
        if container in ("init-kbagent", "kbagent-worker", "kbagent"):
            return _ok(f"{container}: started\n")
        return _ok(f"starting with DATABASE_URL=postgresql://postgres:{SIM_CREDENTIAL}@localhost/postgres\n")


def _no_matches(name: str, ns: str, kind: str, version: str) -> str:
    """Helm pkg/action/install.go wrapping cli-runtime pkg/resource/mapper.go and apimachinery meta/errors.go: an
    object of a kind whose CRD is not installed (yet)."""
    return (
        "Error: unable to build kubernetes objects from release manifest: resource mapping not found for name: "
        f'"{name}" namespace: "{ns}" from "": no matches for kind "{kind}" in version "{version}"\n'
        "ensure CRDs are installed first"
    )


def _ownership_conflict(chart: str, release: str, owner: str, ns: str) -> str:
    """pkg/action/validate.go existingResourceConflict + checkOwnership, for the first object the chart renders that
    exists already: owned by release `owner` ("" for an object no Helm release manages)."""
    if chart.endswith("-cluster"):
        what = f'Cluster "{release}" in namespace "{ns}"'
    elif chart == "kubeblocks":
        what = f'ServiceAccount "kubeblocks" in namespace "{ns}"'
    else:
        what = f'ClusterDefinition "{chart}" in namespace ""'
    if owner:
        problems = (
            f'annotation validation error: key "meta.helm.sh/release-name" must equal "{release}": '
            f'current value is "{owner}"'
        )
    else:
        problems = (
            'label validation error: missing key "app.kubernetes.io/managed-by": must be set to "Helm"; '
            f'annotation validation error: missing key "meta.helm.sh/release-name": must be set to "{release}"; '
            f'annotation validation error: missing key "meta.helm.sh/release-namespace": must be set to "{ns}"'
        )
    return f"{what} exists and cannot be imported into the current release: invalid ownership metadata; {problems}"


def _outage_resource(args: _Args) -> str:
    """The "(verb resource name)" an API server error message ends with, as far as the argv tells."""
    words = args.positional[1:]
    if not words:
        return ""
    target, _, name = words[0].partition("/")
    kind = _KINDS.get(target.split(",")[0].lower())
    resource = _API_NAMES.get(kind, f"{kind}s") if kind else target
    name = name or (words[1] if len(words) > 1 else "")
    return f"{resource} {name}".strip()


def _lookup(data: Any, path: list[str]) -> Any:
    """The value at a dotted jsonpath's fields, or None where one is missing."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _printed(value: Any) -> str:
    """A JSON value as Go's fmt %v prints it (kubectl wait compares that text)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _selector(cluster: _Object) -> str:
    return f"app.kubernetes.io/instance={cluster.name}"


_NAMESPACE_NAME_LINES = "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}"


def _matches(labels: Mapping[str, str], selector: str) -> bool:
    """An equality-based label selector (`k=v,k2=v2`), the only kind the plan uses."""
    for term in selector.split(","):
        key, eq, value = term.partition("=")
        if not eq or key.endswith("!"):
            raise UnknownCommand(f"selector {selector}")
        if labels.get(key) != value:
            return False
    return True


def _running_pod(name: str, namespace: str | None, container: str, ready: bool) -> dict[str, Any]:
    """A scheduled, running pod of one container, Ready or not."""
    status = "True" if ready else "False"
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": {}},
        "spec": {"containers": [{"name": container}], "nodeName": "k3s-server"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": status}],
            "containerStatuses": [{"name": container, "ready": ready, "restartCount": 0, "state": {"running": {}}}],
        },
    }


def _stuck(pod: Mapping[str, Any]) -> bool:
    """A pod that shows a failure: a container waiting in back-off, or the pod unschedulable."""
    status = pod["status"]
    waiting = any("waiting" in c["state"] for c in status.get("containerStatuses", []))
    return waiting or any(c.get("reason") == "Unschedulable" for c in status["conditions"])


def _up_while_rolling(cluster: _Object, now: float, index: int, count: int) -> bool:
    """Whether the pod serves during its Cluster's upgrade: before its turn in the rolling restart (highest ordinal
    first) it runs the old spec, after it the new one; a pod the upgrade broke stops the restart there."""
    if not cluster.running_before_update:
        return False
    if now < cluster.rolled_at:
        return True  # KubeBlocks has not acted on the new spec yet.
    slot = cluster.roll_s / max(count, 1)
    turn = count - 1 - index
    starts = cluster.rolled_at + turn * slot
    if cluster.failure_after_upgrade and turn > 0:
        return True  # The restart halted at the pod it broke.
    return now < starts or now >= starts + slot


def _comes_up(failure: Failure | None) -> bool:
    return failure is None or failure in PASSING_FAILURES


def _helm_changes(args: _Args) -> bool:
    return bool(args.positional) and args.positional[0] in ("upgrade", "install", "uninstall", "rollback")


def _seconds(text: str) -> float:
    if text.endswith("s"):
        return float(text[:-1])
    if text.endswith("m"):
        return float(text[:-1]) * 60
    return float(text)


def in_virtual_time(main: Callable[[], Awaitable[T]]) -> T:
    """Run `main` under trio's MockClock, where simulated minutes take milliseconds (trio is a dev dependency)."""
    import trio.testing

    return anyio.run(main, backend="trio", backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)})


def run_simulated(
    plan: Plan, runner: Runner, out: Path, epoch: float = 0.0, markers: MarkerRunner | None = None
) -> RunResults:
    """The orchestrator's run of `plan` on a simulated `runner` in virtual time, its clock `epoch` + virtual seconds.

    One run per call: a SimCluster lives in one `anyio.run`, so a test that runs it twice uses in_virtual_time.
    """

    async def main() -> RunResults:
        clock = lambda: epoch + anyio.current_time()  # noqa: E731
        return await run_plan(plan, runner, out, cluster_kind="simulated", clock=clock, markers=markers)

    return in_virtual_time(main)


def run_upgrade_simulated(
    upgrade: UpgradePlan,
    runner: Runner,
    out: Path,
    epoch: float = 0.0,
    *,
    markers: MarkerRunner | None = None,
    after_upgrade: SmokeRun | None = None,
) -> RunResults:
    """`run_upgrade` on a simulated `runner` in virtual time: the base deployed, then the upgrade stage (its marker
    steps through `markers`), then `after_upgrade`."""

    async def main() -> RunResults:
        clock = lambda: epoch + anyio.current_time()  # noqa: E731
        return await run_upgrade(
            upgrade, runner, out, cluster_kind="simulated", clock=clock, markers=markers, after_upgrade=after_upgrade
        )

    return in_virtual_time(main)
