"""A simulated KubeBlocks cluster: a Runner that answers the kubectl and helm commands of a plan (and of
diagnostics and teardown) the way a real cluster would over time, in whatever time anyio runs on.

Run it under trio's MockClock (virtual time) and simulated minutes take milliseconds. Resources appear when
installed, CRDs become Established, KubeBlocks rolls out, addon definitions turn Available, Clusters move from
Creating to Running, each after the latency the Scenario gives; failures (pods Pending for lack of CPU, image
pulls failing, crash loops, a Cluster turning Abnormal), Helm's "already exists" race, an API outage and an
already-installed KubeBlocks are scenario switches. Every command is recorded with virtual start and end times.
A command it does not understand raises `UnknownCommand`, so the orchestrator cannot drift from real commands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import anyio
import yaml

from dbstack.config.catalog import DATABASES
from dbstack.plan.build import HELM_LOCKED, KUBEBLOCKS_CRDS, KUBEBLOCKS_DEPLOYMENTS, SNAPSHOT_CRDS
from dbstack.plan.model import Command, Plan, Step, StepKind
from dbstack.run.orchestrator import run_plan
from dbstack.run.results import RunResults
from dbstack.run.runner import CommandResult, Runner

T = TypeVar("T")

NEVER = math.inf
SIM_CREDENTIAL = "sim-Pa55word-7f3a"
"""A credential the simulated pods leak into logs and env, so tests can prove diagnostics mask it."""
TIMED_OUT_EXIT = 124
_NO_CPU = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


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
    already_exists: frozenset[str] = frozenset()
    """Helm releases whose first install fails with "already exists" (the addon controller's race)."""
    helm_locked: Mapping[str, float] = field(default_factory=dict)
    """Helm release -> seconds another client (a second preview) holds its lock: that client's install starts the
    moment this run first installs it, refusing this run with "another operation ... is in progress" meanwhile."""
    api_outage: tuple[float, float] | None = None
    """Seconds after the first command between which every new command fails as if the API server were down."""
    outage_message: str = "Error from server (ServiceUnavailable): the server is currently unable to handle the request"

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
        raise ValueError(f"no latency for {step.id}")


@dataclass(frozen=True)
class Call:
    argv: tuple[str, ...]
    started: float
    """Virtual seconds since the first command."""
    ended: float
    exit_code: int
    timed_out: bool = False


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
    release: str | None = None
    failure: Failure | None = None
    fail_at: float = NEVER
    pods_at: float = NEVER
    generation: int = 1
    observed_at: float = 0.0
    """When the operator observed the current generation (a Cluster keeps its old phase until then)."""
    running_before_update: bool = False

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
class _Release:
    name: str
    namespace: str
    chart: str
    version: str
    installed_at: float
    deployed_at: float = 0.0
    """Until then the release is `pending-install` and Helm's lock on it is held."""

    def status(self, now: float) -> str:
        return "deployed" if now >= self.deployed_at else "pending-install"


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
_EQ_FLAGS = {"--for", "--timeout", "--tail", "--sort-by", "--ignore-not-found", "--all-containers"}
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

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.calls: list[Call] = []
        self.unknown: list[str] = []
        """Every command the simulator refused (also raised as UnknownCommand), for tests to assert empty."""
        self._t0: float | None = None
        self._objects: dict[tuple[str, str | None, str], _Object] = {}
        self._releases: dict[tuple[str, str], _Release] = {}
        self._times: set[float] = set()
        self._changed: anyio.Event | None = None
        self._raced: set[str] = set()
        self.sightings: dict[str, list[float]] = {}
        """Cluster name -> when (seconds since the first command) a `kubectl get -o json` read showed its failure."""

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
            self.calls.append(Call(command.argv, started, ended, result.exit_code, result.timed_out))
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
        times = (obj.created_at, obj.ready_at, obj.fail_at, obj.pods_at, obj.observed_at)
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
        for crd in (*(f"{c}.snapshot.storage.k8s.io" for c in SNAPSHOT_CRDS), *KUBEBLOCKS_CRDS):
            self._add(_Object("crd", crd, None, now, ready_at=now))
        self._add(_Object("deployment", "snapshot-controller", "kube-system", now, ready_at=now))
        for deployment in KUBEBLOCKS_DEPLOYMENTS:
            healthy = not (self.scenario.kubeblocks_unhealthy and deployment == "kubeblocks")
            self._add(_Object("deployment", deployment, "kb-system", now, ready_at=now if healthy else NEVER))
        self._releases[("kb-system", "kubeblocks")] = _Release("kubeblocks", "kb-system", "kubeblocks", "1.0.1", now)
        for key in self.scenario.preinstalled_addons:
            self._install_addon(key, now, ready_at=now)
            release = DATABASES[key].addon_release
            self._releases[("kb-system", release)] = _Release(release, "kb-system", key, "1.0.1", now)

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
        if outage:
            message = self.scenario.outage_message
            return _error(f"Error: Kubernetes cluster unreachable: {message}" if tool == "helm" else message)
        if tool == "helm":
            return self._helm(args, command)
        return await self._kubectl(args)

    def _in_outage(self) -> bool:
        window = self.scenario.api_outage
        if window is None:
            return False
        since = self._now() - self.origin
        return window[0] <= since < window[1]

    # --- helm ------------------------------------------------------------------------------------------------

    def _helm(self, args: _Args, command: Command) -> CommandResult:
        verb = args.positional[0] if args.positional else ""
        ns = args.flags.get("-n", "default")
        if verb == "upgrade" and args.flags.get("--install") and len(args.positional) == 3:
            return self._helm_install(args.positional[1], args.positional[2], ns, args, command.stdin)
        if verb == "status" and len(args.positional) == 2:
            release = self._releases.get((ns, args.positional[1]))
            if release is None:
                return _error("Error: release: not found")
            status = release.status(self._now())
            if args.flags.get("-o") == "json":
                info = {"status": status, "first_deployed": "2026-01-01T00:00:00Z"}
                return _ok(json.dumps({"name": release.name, "namespace": ns, "info": info}, separators=(",", ":")))
            return _ok(f"NAME: {release.name}\nNAMESPACE: {ns}\nSTATUS: {status}\nREVISION: 1\n")
        if verb == "list" and args.flags.get("-A"):
            rows = [
                f"{r.name}\t{r.namespace}\t1\t{r.status(self._now())}\t{r.chart}-{r.version}\t{r.version}"
                for r in self._releases.values()
            ]
            return _ok("NAME\tNAMESPACE\tREVISION\tSTATUS\tCHART\tAPP VERSION\n" + "\n".join(rows) + "\n")
        if verb == "uninstall" and len(args.positional) == 2:
            return self._helm_uninstall(args.positional[1], ns, bool(args.flags.get("--ignore-not-found")))
        raise UnknownCommand(f"helm {' '.join(args.positional)}")

    def _helm_install(self, release: str, chart: str, ns: str, args: _Args, stdin: str | None) -> CommandResult:
        now = self._now()
        if release in self.scenario.already_exists and release not in self._raced:
            self._raced.add(release)
            return _error(
                "Error: UPGRADE FAILED: rendered manifests contain a resource that already exists. Unable to "
                f'continue with install: ComponentDefinition "{chart}" in namespace "" exists and cannot be '
                "imported into the current release"
            )
        held = self.scenario.helm_locked.get(release)
        if held is not None:
            existing = self._releases.get((ns, release))
            if existing is None:  # The other client starts its install now and holds the lock for `held`.
                installed = self._install_release(release, chart, ns, args, stdin)
                if not installed.ok:
                    return installed
                self._releases[(ns, release)].deployed_at = now + held
                self._times.add(now + held)
                return _error(f"Error: UPGRADE FAILED: {HELM_LOCKED}")
            if existing.status(now) != "deployed":
                return _error(f"Error: UPGRADE FAILED: {HELM_LOCKED}")
        return self._install_release(release, chart, ns, args, stdin)

    def _install_release(self, release: str, chart: str, ns: str, args: _Args, stdin: str | None) -> CommandResult:
        now = self._now()
        if not args.flags.get("--repo") or not args.flags.get("--version"):
            raise UnknownCommand(f"helm install of {chart} without --repo and --version")
        lat = self.scenario.latencies
        if chart == "kubeblocks":
            missing = [c for c in KUBEBLOCKS_CRDS if self._established(c) > now]
            if missing:
                return _error(f'Error: unable to build kubernetes objects: no matches for kind "{missing[0]}"')
            snapshot_ok = all(self._established(f"{c}.snapshot.storage.k8s.io") <= now for c in SNAPSHOT_CRDS)
            ready = now + lat.kubeblocks_s
            self._add(_Object("deployment", "kubeblocks", ns, now, ready_at=ready))
            # Without the VolumeSnapshot CRDs the dataprotection controller crashes at start.
            self._add(
                _Object("deployment", "kubeblocks-dataprotection", ns, now, ready_at=ready if snapshot_ok else NEVER)
            )
        elif chart in (db.addon for db in DATABASES.values()):
            if self._established("clusterdefinitions.apps.kubeblocks.io") > now:
                return _error('Error: unable to build kubernetes objects: no matches for kind "ClusterDefinition"')
            self._install_addon(chart, now, ready_at=max(now, self._kubeblocks_ready()) + lat.addon_s[chart])
        elif chart.endswith("-cluster") and chart.removesuffix("-cluster") in DATABASES:
            if self._established("clusters.apps.kubeblocks.io") > now:
                return _error('Error: unable to build kubernetes objects: no matches for kind "Cluster"')
            self._install_cluster(chart.removesuffix("-cluster"), release, ns, stdin)
        else:
            raise UnknownCommand(f"helm chart {chart}")
        self._releases[(ns, release)] = _Release(release, ns, chart, args.flags["--version"], now)
        return _ok(f'Release "{release}" does not exist. Installing it now.\nNAME: {release}\nSTATUS: deployed\n')

    def _install_addon(self, key: str, now: float, ready_at: float) -> None:
        for kind in ("clusterdefinition", "componentversion", "componentdefinition"):
            self._add(_Object(kind, key, None, now, ready_at=ready_at, database=key))
        self._add(_Object("addon", key, None, now, ready_at=ready_at, database=key))

    def _install_cluster(self, key: str, release: str, ns: str, stdin: str | None) -> None:
        now = self._now()
        lat = self.scenario.latencies
        values = yaml.safe_load(stdin or "") or {}
        replicas = max(int(values.get("replicas", 1) or 1), DATABASES[key].min_replicas)
        definitions = self._objects.get(("clusterdefinition", None, key))
        available = definitions.ready_at if definitions and definitions.exists(now) else NEVER
        pods_at = max(now, available) + lat.pods_after_s
        failure = self.scenario.failures.get(key)
        existing = self._get("cluster", ns, release)
        if existing is not None:
            # An upgrade: the operator sees the new spec a moment later, then rolls the pods.
            existing.running_before_update = existing.ready(now)
            existing.generation += 1
            existing.observed_at = now + lat.pods_after_s
            existing.ready_at = existing.observed_at + lat.cluster_s[key] if _comes_up(failure) else NEVER
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
                replicas=replicas,
                release=release,
                failure=failure,
                fail_at=fail_at,
                pods_at=pods_at,
                observed_at=now,
            )
        )

    def _helm_uninstall(self, release: str, ns: str, ignore_missing: bool) -> CommandResult:
        found = self._releases.pop((ns, release), None)
        if found is None:
            if ignore_missing:
                return _ok(f"release {release} not found, ignored\n")
            return _error(f"Error: uninstall: Release not loaded: {release}: release: not found")
        delay = self.scenario.latencies.delete_s
        if found.chart.endswith("-cluster"):
            cluster = self._get("cluster", ns, release)
            if cluster:
                self._delete(cluster, delay)
        elif found.chart == "kubeblocks":
            for deployment in KUBEBLOCKS_DEPLOYMENTS:
                obj = self._get("deployment", ns, deployment)
                if obj:
                    self._delete(obj, delay)
        else:
            for kind in ("clusterdefinition", "componentversion", "componentdefinition"):
                obj = self._get(kind, None, found.chart)
                if obj:
                    self._delete(obj, 0)
        return _ok(f'release "{release}" uninstalled\n')

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
        word, _, name = target.partition("/")
        kind = _kind(word)
        ns = args.flags.get("-n")
        condition = args.flags.get("--for", "")
        timeout = _seconds(args.flags.get("--timeout", "30s"))
        api = f"{_API_NAMES.get(kind, kind)}/{name}"
        crd = _CRD_OF.get(kind)
        if crd is not None and self._get("crd", None, crd) is None:
            return _error(f'error: the server doesn\'t have a resource type "{crd.split(".")[0]}"')
        if condition == "delete":
            met = await self._until(lambda now: self._at(kind, ns, name, now) is None, timeout)
            return (
                _ok(f"{api} condition met\n") if met else _error(f"error: timed out waiting for the condition on {api}")
            )
        if condition == "create":
            met = await self._until(lambda now: self._at(kind, ns, name, now) is not None, timeout)
            return (
                _ok(f"{api} condition met\n") if met else _error(f"error: timed out waiting for the condition on {api}")
            )
        if self._get(kind, ns, name) is None:
            return _error(f'Error from server (NotFound): {_API_NAMES.get(kind, kind)} "{name}" not found')
        check = self._condition(kind, ns, name, condition)
        met = await self._until(check, timeout)
        return _ok(f"{api} condition met\n") if met else _error(f"error: timed out waiting for the condition on {api}")

    def _at(self, kind: str, ns: str | None, name: str, now: float) -> _Object | None:
        obj = self._objects.get((kind, ns if kind in ("deployment", "cluster") else None, name))
        return obj if obj is not None and obj.exists(now) else None

    def _condition(self, kind: str, ns: str | None, name: str, condition: str) -> Callable[[float], bool]:
        if kind == "crd" and condition == "condition=Established":
            return lambda now: bool((o := self._at(kind, ns, name, now)) and o.ready(now))
        if kind == "cluster" and condition.startswith("jsonpath={.status.observedGeneration}="):
            wanted = condition.rsplit("=", 1)[1]
            return lambda now: bool((o := self._at(kind, ns, name, now)) and str(o.observed_generation(now)) == wanted)
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
            if now < obj.observed_at:
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
        word, _, name = target.partition("/")
        if _kind(word) != "deployment":
            raise UnknownCommand(f"rollout status {target}")
        ns = args.flags.get("-n", "default")
        if self._get("deployment", ns, name) is None:
            return _error(f'Error from server (NotFound): deployments.apps "{name}" not found')
        timeout = _seconds(args.flags.get("--timeout", "0s")) or NEVER
        met = await self._until(
            lambda now: bool((o := self._at("deployment", ns, name, now)) and o.ready(now)), timeout
        )
        if met:
            return _ok(f'deployment "{name}" successfully rolled out\n')
        return _error("error: timed out waiting for the condition")

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
            missing = [n for n in names if self._get("crd", None, n) is None]
            if missing:
                return _error(
                    "".join(f'Error from server (NotFound): {_API_NAMES["crd"]} "{n}" not found\n' for n in missing)
                )
            return _ok("NAME\tCREATED AT\n" + "".join(f"{n}\t2026-01-01T00:00:00Z\n" for n in names))
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
                wanted = selector.split("=", 1)[1]
                found = [o for o in found if o.name == wanted]
            if output == "name":
                return _ok("".join(f"deployment.apps/{o.name}\n" for o in found))
            raise UnknownCommand(f"kubectl get deployment -o {output}")
        if kind == "cluster" and len(names) == 1:
            cluster = self._get("cluster", ns, names[0])
            if cluster is None:
                if args.flags.get("--ignore-not-found"):
                    return _ok("")
                return _error(f'Error from server (NotFound): clusters.apps.kubeblocks.io "{names[0]}" not found')
            data = self._cluster_json(cluster)
            if output == "json" and data["status"]["phase"] == "Abnormal":
                self._sighted(cluster)
            if output == "jsonpath={.metadata.generation}":
                return _ok(str(data["metadata"]["generation"]))
            if output == "json":
                return _ok(json.dumps(data))
            if output == "yaml":
                return _ok(yaml.safe_dump(data))
            raise UnknownCommand(f"kubectl get cluster -o {output}")
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
        """The Addon the KubeBlocks chart registers for every addon: Disabled until its chart is installed, then
        Enabling until the definitions are Available, then Enabled."""
        if name not in DATABASES or self._get("deployment", "kb-system", "kubeblocks") is None:
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

    def _cluster_json(self, cluster: _Object) -> dict[str, Any]:
        now = self._now()
        phase = self._phase("cluster", cluster.namespace, cluster.name, now)
        component = DATABASES[cluster.database or ""].component
        status: dict[str, Any] = {"phase": phase, "observedGeneration": cluster.observed_generation(now)}
        if phase == "Abnormal":
            failing_pod = f"{cluster.name}-{component}-{cluster.replicas - 1}"
            message = {f"InstanceSet/{cluster.name}-{component}": f"[{failing_pod}] is not ready"}
            status["components"] = {component: {"phase": "Failed", "message": message}}
        return {
            "apiVersion": "apps.kubeblocks.io/v1",
            "kind": "Cluster",
            "metadata": {"name": cluster.name, "namespace": cluster.namespace, "generation": cluster.generation},
            "spec": {"terminationPolicy": "Delete"},
            "status": status,
        }

    def _pods(self, ns: str, selector: str) -> list[dict[str, Any]]:
        now = self._now()
        pods = []
        for cluster in self._clusters_for(ns, selector):
            if now < cluster.pods_at:
                continue
            component = DATABASES[cluster.database or ""].component
            for index in range(cluster.replicas):
                name = f"{cluster.name}-{component}-{index}"
                last = index == cluster.replicas - 1
                pods.append(self._pod(cluster, name, component, now, last))
        return pods

    def _pod(self, cluster: _Object, name: str, container: str, now: float, last: bool) -> dict[str, Any]:
        """A pod as `kubectl get pods -o json` shows it: running but not ready until the Cluster is Running; with a
        failure, the failing pod (or all pods, for image and crash failures) stuck, the others ready."""
        failure = cluster.failure
        failing = cluster.failing(now, self.scenario.latencies.blip_s)
        conditions: list[dict[str, Any]] = []
        containers: list[dict[str, Any]] = []
        phase = "Running"
        if failure is Failure.PENDING_CPU and last:
            phase = "Pending"
            conditions.append(
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": _NO_CPU}
            )
        elif failing and failure is Failure.IMAGE_PULL:
            phase = "Pending"
            image = f"docker.io/apecloud/{cluster.database}:missing"
            waiting = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            containers.append({"name": container, "ready": False, "restartCount": 0, "state": {"waiting": waiting}})
        elif failing and failure in (Failure.CRASHLOOP, Failure.CRASH_ONCE):
            message = f"back-off 10s restarting failed container={container} pod={name}"
            containers.append(
                {
                    "name": container,
                    "ready": False,
                    "restartCount": 1 if failure is Failure.CRASH_ONCE else 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": message}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                }
            )
        else:
            siblings_up = failing and failure in (Failure.PENDING_CPU, Failure.ABNORMAL) and not last
            ready = cluster.ready(now) or siblings_up
            containers.append({"name": container, "ready": ready, "restartCount": 0, "state": {"running": {}}})
        ready = bool(containers) and all(c["ready"] for c in containers)
        conditions.append({"type": "Ready", "status": "True" if ready else "False"})
        labels = {"app.kubernetes.io/instance": cluster.name}
        scheduled = not any(c.get("reason") == "Unschedulable" for c in conditions)
        spec: dict[str, Any] = {"containers": [{"name": container}]}
        if scheduled:
            spec["nodeName"] = "k3s-server"
        return {
            "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
            "spec": spec,
            "status": {"phase": phase, "conditions": conditions, "containerStatuses": containers},
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
                for container in pod["status"]["containerStatuses"]:
                    waiting = container["state"].get("waiting", {})
                    if waiting.get("reason") in ("ImagePullBackOff", "CrashLoopBackOff"):
                        lines.append(
                            f"5s\tWarning\tBackOff\tpod/{pod['metadata']['name']}\t{waiting.get('message', '')}"
                        )
            if self._phase("cluster", cluster.namespace, cluster.name, now) == "Abnormal":
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
                return _error(f'error: deployments.apps "{name}" not found')
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
        status = next((c for c in pod["status"]["containerStatuses"] if c["name"] == container), None)
        if status is None:
            return _error(f"error: container {container} is not valid for pod {pod_name}")
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
        return _ok(f"starting with DATABASE_URL=postgresql://postgres:{SIM_CREDENTIAL}@localhost/postgres\n")


def _selector(cluster: _Object) -> str:
    return f"app.kubernetes.io/instance={cluster.name}"


def _stuck(pod: Mapping[str, Any]) -> bool:
    """A pod that shows a failure: a container waiting in back-off, or the pod unschedulable."""
    status = pod["status"]
    waiting = any("waiting" in c["state"] for c in status["containerStatuses"])
    return waiting or any(c.get("reason") == "Unschedulable" for c in status["conditions"])


def _comes_up(failure: Failure | None) -> bool:
    return failure is None or failure in PASSING_FAILURES


def _helm_changes(args: _Args) -> bool:
    return bool(args.positional) and args.positional[0] in ("upgrade", "install", "uninstall")


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


def run_simulated(plan: Plan, runner: Runner, out: Path, epoch: float = 0.0) -> RunResults:
    """The orchestrator's run of `plan` on a simulated `runner` in virtual time, its clock `epoch` + virtual seconds.

    One run per call: a SimCluster lives in one `anyio.run`, so a test that runs it twice uses in_virtual_time.
    """

    async def main() -> RunResults:
        clock = lambda: epoch + anyio.current_time()  # noqa: E731
        return await run_plan(plan, runner, out, cluster_kind="simulated", clock=clock)

    return in_virtual_time(main)
