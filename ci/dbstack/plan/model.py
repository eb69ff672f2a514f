"""The plan's vocabulary: steps and their commands, skip probes, waits, failure watches and diagnostics, the
endpoints the smoke suite reaches, and the plan's documented JSON form (docs/plan.md). Pure data."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

PLAN_SCHEMA_VERSION = 1


class StepKind(StrEnum):
    SNAPSHOT_CRDS = "snapshot-crds"
    SNAPSHOT_CONTROLLER = "snapshot-controller"
    KUBEBLOCKS_CRDS = "kubeblocks-crds"
    KUBEBLOCKS = "kubeblocks"
    ADDON = "addon"
    CLUSTER = "cluster"
    UNINSTALL_CLUSTER = "uninstall-cluster"
    UNINSTALL_ADDON = "uninstall-addon"
    UNINSTALL_KUBEBLOCKS = "uninstall-kubeblocks"
    DELETE_NAMESPACE = "delete-namespace"
    MARKERS = "markers"
    """The smoke suite's marker check writes, reads back or cleans marker data (no kubectl)."""
    CSI_DRIVER = "csi-driver"
    SNAPSHOT_SUPPORT = "snapshot-support"
    BACKUP_REPO = "backup-repo"
    BACKUP = "backup"
    RESTORE = "restore"
    BACKUP_CLEANUP = "backup-cleanup"


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    stdin: str | None = None
    """Piped to the command (the cluster chart's values, read by `helm -f -`)."""
    routine: bool = field(default=False, compare=False)
    """A read repeated every few seconds (the failure watch's looks): runners give it no progress span of its own,
    so the plan's commands and waits stay visible."""

    def __str__(self) -> str:
        return shlex.join(self.argv) + (" < values" if self.stdin is not None else "")


@dataclass(frozen=True)
class InstalledVersion:
    """Something a skip probe found installed is reused only at the version the plan pins (unless `any_version`):
    the probe prints JSON, and the installed version is at `json_path` in it."""

    key: str
    """Its key among the run's installed versions (`kubeblocks`, `<database>Addon`)."""
    subject: str
    """What it is, in words (`KubeBlocks`, `the redis addon`)."""
    pinned: str
    json_path: tuple[str, ...]
    any_version: bool = False
    """kubeblocks.reuseInstalled: any."""

    def read(self, stdout: str) -> str | None:
        import json  # only where something is already installed

        try:
            node: Any = json.loads(stdout)
        except ValueError:
            return None
        for part in self.json_path:
            node = node.get(part) if isinstance(node, Mapping) else None
        return str(node) if isinstance(node, (str, int, float)) and str(node) else None

    def refusal(self, found: str | None, where: str) -> str | None:
        """Why what was found must not be reused, or None when it may."""
        if self.any_version or found == self.pinned:
            return None
        instead = f"upgrade or remove it, or set {REUSE_SETTING}: any to reuse it as it is"
        if found is None:
            return f"{self.subject} is installed ({where}) but its version cannot be read; {instead}"
        return f"{self.subject} {found} is installed ({where}), but the plan pins {self.pinned}; {instead}"


REUSE_SETTING = "kubeblocks.reuseInstalled"


@dataclass(frozen=True)
class Probe:
    """A read-only check: passes when the command exits 0, prints something if `expect_output`, and prints
    `contains` when that is set."""

    command: Command
    expect_output: bool = False
    contains: str | None = None
    installed_version: InstalledVersion | None = None
    """Set: what the probe found is reused only at the pinned version."""
    reports: str | None = None
    """Set: the probe prints `<namespace>/<name>` lines of the `reports` (a kind, e.g. `pod`) it found, and a skipped
    step says where they are."""

    def passed(self, exit_code: int, stdout: str) -> bool:
        if exit_code != 0 or (self.expect_output and not stdout.strip()):
            return False
        return self.contains is None or self.contains in stdout

    def found(self, stdout: str) -> list[str]:
        """What a passing probe with `reports` found, in words: `pod x in namespace y`."""
        if self.reports is None:
            return []
        out = []
        for line in stdout.splitlines():
            namespace, _, name = line.strip().partition("/")
            if name:
                out.append(f"{self.reports} {name} in namespace {namespace}")
        return out


@dataclass(frozen=True)
class Wait:
    """A condition `kubectl wait` (or `kubectl rollout status`) can block on without polling."""

    resource: str
    """kind/name, e.g. crd/clusters.apps.kubeblocks.io or deployment/kubeblocks."""
    namespace: str | None
    condition: str
    """The --for value (condition=Established, jsonpath={.status.phase}=Running, delete), or "rollout"."""
    must_exist_first: bool = False
    """The object is created by a controller later, so wait for it to exist before waiting on it."""
    selector: str | None = None
    """Set: `resource` is a kind, and the wait covers every object of it with these labels (in every namespace when
    `namespace` is None)."""
    fails_on: str | None = None
    """Set: a second --for condition that ends the wait at once as a failure (`jsonpath={.status.phase}=Failed`),
    waited on beside the first, so a failure is noticed when it happens, without polling."""
    failure_reason: str | None = None
    """With `fails_on`: the jsonpath of the object's own words for the failure (`{.status.failureReason}`)."""

    def command(self, timeout_s: int) -> Command:
        ns = ("-n", self.namespace) if self.namespace else ()
        if self.selector is not None:
            where = ns or ("-A",)
            wait = ("kubectl", "wait", self.resource, *where, "-l", self.selector, f"--for={self.condition}")
            return Command((*wait, f"--timeout={timeout_s}s"))
        if self.condition == "rollout":
            return Command(("kubectl", "rollout", "status", self.resource, *ns, f"--timeout={timeout_s}s"))
        return Command(("kubectl", "wait", self.resource, *ns, f"--for={self.condition}", f"--timeout={timeout_s}s"))

    def failure_command(self, timeout_s: int) -> Command:
        """`kubectl wait` for `fails_on` (raised beside `command`)."""
        assert self.fails_on is not None
        return replace(self, condition=self.fails_on, fails_on=None).command(timeout_s)

    def reason_command(self) -> Command:
        """`kubectl get` of the object's own failure reason."""
        ns = ("-n", self.namespace) if self.namespace else ()
        return Command(("kubectl", "get", self.resource, *ns, "-o", f"jsonpath={self.failure_reason or ''}"))

    def exists_command(self, timeout_s: int) -> Command:
        ns = ("-n", self.namespace) if self.namespace else ()
        return Command(("kubectl", "wait", self.resource, *ns, "--for=create", f"--timeout={timeout_s}s"))


@dataclass(frozen=True)
class Watch:
    """What ends a cluster's wait early: the Cluster turning Failed/Abnormal, or its pods stuck."""

    cluster: str
    namespace: str
    pod_selector: str
    fail_phases: tuple[str, ...] = ("Failed", "Abnormal")
    stuck_reasons: tuple[str, ...] = (
        "ImagePullBackOff",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "InvalidImageName",
    )
    """Container waiting reasons that only end by a change to the deployment. ErrImagePull is left out: the
    kubelet retries once and reports ImagePullBackOff when the pull keeps failing."""
    unschedulable_messages: tuple[str, ...] = ("Insufficient cpu", "Insufficient memory")
    """An Unschedulable pod is stuck only for these; "unbound PersistentVolumeClaims" resolves by itself."""
    confirm_looks: int = 2
    """A fatal sign (the same phase, or the same pod's reason) must show on this many consecutive looks: one
    restart while a replica waits for its primary, or a moment of Abnormal during bootstrap, clears by itself."""
    crashloop_restarts: int = 3
    """A CrashLoopBackOff container restarted this often already has proved it persists: fatal on first sight."""
    restores: bool = False
    """The Cluster is being restored from a backup: the watch also reads its Restore objects, and one that Failed
    ends the wait with its own words."""


@dataclass(frozen=True)
class PodLogs:
    """Logs per container of the pods `Diagnostic.command` lists (`kubectl get pods -l ... -o json`): one
    `kubectl logs <pod> -c <container>` each, so a container that cannot be read (a Pending pod, one still
    waiting to start, one without a previous instance) is noted and the others are still collected."""

    namespace: str
    tail: int
    previous: bool = False
    """The previous instance's logs, only of containers that have restarted."""

    def command(self, pod: str, container: str) -> Command:
        previous = ("--previous",) if self.previous else ()
        return kubectl("-n", self.namespace, "logs", pod, "-c", container, *previous, f"--tail={self.tail}")


@dataclass(frozen=True)
class Diagnostic:
    name: str
    """File name under diagnostics/<database or step>/."""
    command: Command
    pod_logs: PodLogs | None = None
    """Set: `command` lists pods and the file holds each container's logs, one section per container."""


@dataclass(frozen=True)
class Image:
    """An image a Cluster's pods will pull: `source` as the addon's ComponentVersion names it, `image` after
    KubeBlocks rewrites it to the registry and namespace the plan configures (what the node really pulls)."""

    component: str
    container: str
    source: str
    image: str


@dataclass(frozen=True)
class Markers:
    """What a MARKERS step does: the smoke suite's marker check (SMOKE_MARKERS) for one database, reached through
    `endpoint`'s own Service and Secret. The run supplies the marker id."""

    phase: str
    """write, verify or clean."""
    endpoint: Endpoint
    context: str | None = None
    """Said in the check's name when the endpoint is not the deployed cluster, e.g. `restored pg-cluster-r`."""


@dataclass(frozen=True)
class RestoreCluster:
    """What a RESTORE step creates after its commands: a Cluster named `target` with the spec of Cluster `source`
    as the API server has it, annotated to restore `component` from Backup `backup` (plan/backup.py
    `restored_cluster`)."""

    source: str
    target: str
    namespace: str
    backup: str
    component: str


@dataclass(frozen=True)
class SnapshotSupport:
    """What a SNAPSHOT_SUPPORT step proves before any volume is made: `storage_class` exists, is provisioned by a CSI
    driver, and `snapshot_class` exists for that same driver."""

    storage_class: str
    snapshot_class: str
    databases: tuple[str, ...]
    """The databases whose volume-snapshot backups need it (for the cause)."""


@dataclass(frozen=True)
class Fact:
    """Something a step reads off the cluster once it is done (a Backup's size): `command`'s output, stripped."""

    name: str
    command: Command


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    kind: StepKind
    needs: tuple[str, ...]
    commands: tuple[Command, ...]
    done_when: tuple[Wait, ...]
    timeout_s: int
    skip_when: tuple[Probe, ...] = ()
    """All pass: the step's work is already there; it is skipped but `done_when` is still checked."""
    retry_on: tuple[str, ...] = ()
    """stderr fragments after which the commands are retried once (races that resolve themselves)."""
    retry_while: tuple[str, ...] = ()
    """stderr fragments of a lock another client holds: after a pause the skip probes run again (that client may
    have installed it) and the commands are retried, for as long as the step's time allows."""
    database: str | None = None
    watch: Watch | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    done_when_skipped: tuple[Wait, ...] | None = None
    """What proves a skipped step's work healthy, when that differs from `done_when` (the skip probe found it
    installed by someone else, elsewhere); None: `done_when`."""
    images: tuple[Image, ...] = ()
    """The images the step's pods pull (cluster steps), listed in diagnostics and for pre-pulling."""
    markers: Markers | None = None
    """Set (MARKERS steps): the smoke suite's marker check does the step's work, not `commands`."""
    stage: str | None = None
    """Set: the step belongs to a stage run on a deployed database (`backup`): its outcome is the stage's, and
    leaves the database's own outcome (its deployment) alone."""
    restore: RestoreCluster | None = None
    snapshot_support: SnapshotSupport | None = None
    cleanup: bool = False
    """Runs once its needs have finished, whatever their outcome, as long as one of them ran: it removes what they
    made."""
    facts: tuple[Fact, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """A deployed database: how the application reaches it (Service, port, credential Secret) and what it is."""

    database: str
    title: str
    release: str
    namespace: str
    service: str
    port: int
    secret: str | None
    chart_version: str
    version: str
    mode: str | None
    replicas: int

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class BackupCase:
    """One database in the backup stage: its method and the objects the stage makes, or why it is left out."""

    database: str
    title: str
    method: str | None
    """None: left out, for `reason`."""
    reason: str | None = None
    backup: str | None = None
    policy: str | None = None
    restored: str | None = None
    """The restored Cluster's name."""


@dataclass(frozen=True)
class Plan:
    namespace: str
    profile: str | None
    versions: dict[str, str]
    steps: tuple[Step, ...]
    endpoints: tuple[Endpoint, ...] = field(default=())
    backups: tuple[BackupCase, ...] = field(default=())
    """The backup stage, one entry per enabled database, when it runs."""

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": PLAN_SCHEMA_VERSION,
            "namespace": self.namespace,
            "profile": self.profile,
            "versions": self.versions,
            "steps": [_step_json(s) for s in self.steps],
            "endpoints": [_endpoint_json(e) for e in self.endpoints],
            "backups": [_backup_json(b) for b in self.backups],
        }


def _backup_json(b: BackupCase) -> dict[str, Any]:
    return {
        "database": b.database,
        "title": b.title,
        "method": b.method,
        "reason": b.reason,
        "backup": b.backup,
        "backupPolicy": b.policy,
        "restoredCluster": b.restored,
    }


def _command_json(c: Command) -> dict[str, Any]:
    return {"argv": list(c.argv), "stdin": c.stdin}


def _endpoint_json(e: Endpoint) -> dict[str, Any]:
    return {
        "database": e.database,
        "title": e.title,
        "release": e.release,
        "namespace": e.namespace,
        "service": e.service,
        "host": e.host,
        "port": e.port,
        "secret": e.secret,
        "chartVersion": e.chart_version,
        "version": e.version,
        "mode": e.mode,
        "replicas": e.replicas,
    }


def _watch_json(w: Watch) -> dict[str, Any]:
    return {
        "cluster": w.cluster,
        "namespace": w.namespace,
        "podSelector": w.pod_selector,
        "failPhases": list(w.fail_phases),
        "stuckReasons": list(w.stuck_reasons),
        "unschedulableMessages": list(w.unschedulable_messages),
        "confirmLooks": w.confirm_looks,
        "crashloopRestarts": w.crashloop_restarts,
        "restores": w.restores,
    }


def _diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    logs = d.pod_logs
    pod_logs = {"tail": logs.tail, "previous": logs.previous} if logs else None
    return {"name": d.name, "command": _command_json(d.command), "podLogs": pod_logs}


def _wait_json(w: Wait, timeout_s: int) -> dict[str, Any]:
    return {
        "resource": w.resource,
        "namespace": w.namespace,
        "selector": w.selector,
        "condition": w.condition,
        "mustExistFirst": w.must_exist_first,
        "command": _command_json(w.command(timeout_s)),
        "failsOn": w.fails_on,
        "failureReason": w.failure_reason,
    }


def _probe_json(p: Probe) -> dict[str, Any]:
    version = p.installed_version
    return {
        "command": _command_json(p.command),
        "expectOutput": p.expect_output,
        "contains": p.contains,
        "reports": p.reports,
        "installedVersion": None
        if version is None
        else {
            "key": version.key,
            "pinned": version.pinned,
            "jsonPath": list(version.json_path),
            "anyVersion": version.any_version,
        },
    }


def _step_json(s: Step) -> dict[str, Any]:
    skipped = s.done_when_skipped
    return {
        "id": s.id,
        "title": s.title,
        "kind": s.kind.value,
        "database": s.database,
        "needs": list(s.needs),
        "skipWhen": [_probe_json(p) for p in s.skip_when],
        "commands": [_command_json(c) for c in s.commands],
        "doneWhen": [_wait_json(w, s.timeout_s) for w in s.done_when],
        "doneWhenSkipped": None if skipped is None else [_wait_json(w, s.timeout_s) for w in skipped],
        "images": [
            {"component": i.component, "container": i.container, "source": i.source, "image": i.image} for i in s.images
        ],
        "timeoutSeconds": s.timeout_s,
        "retryOn": list(s.retry_on),
        "retryWhile": list(s.retry_while),
        "watch": _watch_json(s.watch) if s.watch else None,
        "diagnostics": [_diagnostic_json(d) for d in s.diagnostics],
        "markers": _markers_json(s.markers) if s.markers else None,
        "stage": s.stage,
        "restore": _restore_json(s.restore) if s.restore else None,
        "snapshotSupport": _snapshot_support_json(s.snapshot_support) if s.snapshot_support else None,
        "cleanup": s.cleanup,
        "facts": [{"name": f.name, "command": _command_json(f.command)} for f in s.facts],
    }


def _restore_json(r: RestoreCluster) -> dict[str, Any]:
    return {
        "source": r.source,
        "target": r.target,
        "namespace": r.namespace,
        "backup": r.backup,
        "component": r.component,
    }


def _snapshot_support_json(s: SnapshotSupport) -> dict[str, Any]:
    return {"storageClass": s.storage_class, "snapshotClass": s.snapshot_class, "databases": list(s.databases)}


def _markers_json(m: Markers) -> dict[str, Any]:
    return {"phase": m.phase, "endpoint": _endpoint_json(m.endpoint), "context": m.context}


def kubectl(*args: str) -> Command:
    return Command(("kubectl", *args))


def helm(*args: str) -> Command:
    return Command(("helm", *args))
