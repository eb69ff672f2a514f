"""The simulated cluster's backup side: the CSI hostpath driver and storage classes, BackupRepos, Backups, restored
Clusters with their Restore objects and Components, and the markers the smoke suite would write and read back.

`SimCluster` hands it every kubectl command about these objects (and the deletion of a Cluster), and asks it for the
driver's pods; it works on the SimCluster's own clock, objects and wake-ups (same package, so it uses their private
helpers). What it says follows the sources: KubeBlocks v1.0.1 (controllers/dataprotection/backup_controller.go,
pkg/dataprotection/utils/utils.go, pkg/controller/plan/restore.go), kubectl v1.31 (get, wait, delete, rollout
status of a StatefulSet) and the csi-driver-host-path v1.17.1 manifests. Sizes and durations are made up: nothing
but their presence is checked.

Scenario switches (`BackupScenario`): the classes a cluster already has (k3s: local-path only, not CSI), the hostpath
driver already installed, a Backup that fails with a reason, a Restore that fails, a restore that never ends, a
backup that lost the markers, a BackupRepo whose pre-check fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import yaml

from dbstack.config.backupcatalog import BACKUP_COMPONENTS, SNAPSHOT, method
from dbstack.plan.backup import (
    CSI_MANIFESTS,
    CSI_SIDECAR_RBAC,
    HOSTPATH_DRIVER,
    HOSTPATH_NAMESPACE,
    HOSTPATH_PLUGIN,
    HOSTPATH_SNAPSHOT_CLASS,
    HOSTPATH_STORAGE_CLASS,
    REPO_LABEL,
    RESTORE_ANNOTATION,
    csi_driver_urls,
)
from dbstack.plan.model import Markers, Step, StepKind
from dbstack.run.results import CheckResult, Outcome
from dbstack.run.runner import CommandResult
from dbstack.run.smokeenv import marker_check_name

if TYPE_CHECKING:
    from dbstack.sim.cluster import SimCluster, _Args

NEVER = math.inf
DP = "dataprotection.kubeblocks.io"
PLUGIN_NAME = HOSTPATH_PLUGIN.partition("/")[2]
HOSTPATH_POD_LABELS = {
    "app.kubernetes.io/instance": "hostpath.csi.k8s.io",
    "app.kubernetes.io/part-of": "csi-driver-host-path",
    "app.kubernetes.io/name": "csi-hostpathplugin",
    "app.kubernetes.io/component": "plugin",
}
"""csi-hostpath-plugin.yaml: the StatefulSet's pod template labels."""
K3S_STORAGE_CLASSES = {"local-path": "rancher.io/local-path"}
"""k3s's own: its local-path provisioner is not a CSI driver, so nothing on it can be snapshotted."""

_KINDS = {
    "csidriver": "csidriver",
    "storageclass": "storageclass",
    "volumesnapshotclass": "volumesnapshotclass",
    "volumesnapshots": "volumesnapshot",
    "volumesnapshotcontents": "volumesnapshotcontent",
    f"backuprepos.{DP}": "backuprepo",
    f"backups.{DP}": "backup",
    f"backuppolicies.{DP}": "backuppolicy",
    f"restores.{DP}": "restore",
    f"storageproviders.{DP}": "storageprovider",
    "components.apps.kubeblocks.io": "component",
    "statefulset": "statefulset",
    "jobs": "job",
}
_API_NAMES = {
    "csidriver": "csidrivers.storage.k8s.io",
    "storageclass": "storageclasses.storage.k8s.io",
    "volumesnapshotclass": "volumesnapshotclasses.snapshot.storage.k8s.io",
    "backuprepo": f"backuprepos.{DP}",
    "backup": f"backups.{DP}",
    "backuppolicy": f"backuppolicies.{DP}",
    "component": "components.apps.kubeblocks.io",
}
_NAME_KINDS = {
    "csidriver": "csidriver.storage.k8s.io",
    "storageclass": "storageclass.storage.k8s.io",
    "volumesnapshotclass": "volumesnapshotclass.snapshot.storage.k8s.io",
    "backuprepo": f"backuprepo.{DP}",
    "backup": f"backup.{DP}",
    "component": "component.apps.kubeblocks.io",
}
"""kind.group as kubectl's name printer writes an object."""


@dataclass(frozen=True)
class BackupLatencies:
    csi_driver_s: float = 30.0
    """From the plugin manifest's apply to its StatefulSet's pod Ready."""
    repo_s: float = 10.0
    """A BackupRepo's pre-check job."""
    backup_s: Mapping[str, float] = field(
        default_factory=lambda: {"postgresql": 40.0, "redis": 20.0, "qdrant": 30.0, "elasticsearch": 60.0}
    )
    restore_s: Mapping[str, float] = field(
        default_factory=lambda: {"postgresql": 150.0, "redis": 60.0, "qdrant": 90.0, "elasticsearch": 180.0}
    )
    """From the restored Cluster's creation to Running with its data restored."""
    markers_s: float = 15.0
    """A marker phase: the database's forward, its account, the suite's container, pytest."""
    delete_s: float = 10.0


@dataclass(frozen=True)
class BackupScenario:
    latencies: BackupLatencies = field(default_factory=BackupLatencies)
    storage_classes: Mapping[str, str] = field(default_factory=lambda: dict(K3S_STORAGE_CLASSES))
    """StorageClass -> provisioner, there from the start; the first is the default."""
    snapshot_classes: Mapping[str, str] = field(default_factory=dict)
    """VolumeSnapshotClass -> driver, there from the start."""
    csi_drivers: frozenset[str] = frozenset()
    """CSIDriver objects there from the start."""
    hostpath_installed: bool = False
    """The CSI hostpath driver, its StorageClass and VolumeSnapshotClass are there already (and healthy)."""
    backup_failures: Mapping[str, str] = field(default_factory=dict)
    """Database -> the failureReason its Backup fails with, half-way."""
    restore_failures: Mapping[str, str] = field(default_factory=dict)
    """Database -> the message of its restore action that fails, half-way."""
    restore_stuck: frozenset[str] = frozenset()
    """Databases whose restore never ends (its Restore stays Running)."""
    lost_markers: frozenset[str] = frozenset()
    """Databases whose Backup holds none of the markers written before it (data not yet on disk)."""
    repo_failure: str | None = None
    """The message of the BackupRepo's failed pre-check."""


def stage_latency_s(step: Step, api_s: float, lat: BackupLatencies) -> float | None:
    """How long a backup-stage step takes on a fresh cluster, or None for a step of another kind."""
    key = step.database or ""
    if step.kind is StepKind.CSI_DRIVER:
        return api_s * len(step.commands) + lat.csi_driver_s
    if step.kind is StepKind.SNAPSHOT_SUPPORT:
        return 3 * api_s
    if step.kind is StepKind.BACKUP_REPO:
        return api_s * len(step.commands) + lat.repo_s
    if step.kind is StepKind.MARKERS:
        return lat.markers_s
    if step.kind is StepKind.BACKUP:
        return api_s * len(step.commands) + lat.backup_s[key] + api_s * len(step.facts)
    if step.kind is StepKind.RESTORE:
        return api_s * (len(step.commands) + 2) + lat.restore_s[key]
    if step.kind is StepKind.BACKUP_CLEANUP:
        return api_s * len(step.commands) + lat.delete_s
    return None


@dataclass
class _Backup:
    name: str
    namespace: str
    method: str
    policy: str
    database: str | None
    cluster: str | None
    created_at: float
    completed_at: float = NEVER
    failed_at: float = NEVER
    reason: str = ""
    markers: frozenset[str] = frozenset()
    deleted_at: float = NEVER
    repo: str | None = None

    def phase(self, now: float) -> str:
        if now >= self.failed_at:
            return "Failed"
        if now >= self.completed_at:
            return "Completed"
        return "Running"


@dataclass
class _Restored:
    """A restored Cluster's restore: its Restore object and its Component."""

    cluster: str
    namespace: str
    component: str
    database: str
    backup: str
    created_at: float
    done_at: float
    failed_at: float = NEVER
    message: str = ""
    markers: frozenset[str] = frozenset()
    stage: str = "preparedata"


@dataclass
class _Repo:
    name: str
    created_at: float
    ready_at: float
    failed_at: float = NEVER
    message: str = ""

    def phase(self, now: float) -> str:
        if now >= self.failed_at:
            return "Failed"
        return "Ready" if now >= self.ready_at else "PreChecking"


class SimBackups:
    def __init__(self, sim: SimCluster) -> None:
        self.sim = sim
        scenario = sim.scenario.backup
        self.scenario = scenario
        self.storage_classes: dict[str, str] = dict(scenario.storage_classes)
        self.snapshot_classes: dict[str, str] = dict(scenario.snapshot_classes)
        self.csi_drivers: set[str] = set(scenario.csi_drivers)
        self.plugin_ready_at = NEVER
        self.plugin_created_at = NEVER
        if scenario.hostpath_installed:
            self._install_hostpath(-NEVER)
        self.repos: dict[str, _Repo] = {}
        self.backups: dict[tuple[str, str], _Backup] = {}
        self.restores: dict[tuple[str, str], _Restored] = {}
        self.cluster_classes: dict[tuple[str, str], str] = {}
        """(namespace, Cluster) -> the StorageClass its volumes are on."""
        self.markers: dict[tuple[str, str], set[str]] = {}
        """(namespace, Cluster) -> the marker ids written into it (and not cleaned)."""

    def _install_hostpath(self, ready_at: float) -> None:
        self.csi_drivers.add(HOSTPATH_DRIVER)
        self.storage_classes[HOSTPATH_STORAGE_CLASS] = HOSTPATH_DRIVER
        self.snapshot_classes[HOSTPATH_SNAPSHOT_CLASS] = HOSTPATH_DRIVER
        self.plugin_created_at = min(self.plugin_created_at, ready_at)
        self.plugin_ready_at = min(self.plugin_ready_at, ready_at)

    # --- hooks the SimCluster calls ------------------------------------------------------------------------------

    def cluster_values(self, release: str, namespace: str, values_yaml: str) -> None:
        """A cluster chart installed with these values: its volumes' StorageClass (`storageClassName`, else the
        default)."""
        values = yaml.safe_load(values_yaml or "") or {}
        chosen = values.get("storageClassName") if isinstance(values, dict) else None
        self.cluster_classes[(namespace, release)] = str(chosen or next(iter(self.storage_classes), ""))

    def pods(self, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        from dbstack.sim.cluster import _matches, _running_pod

        now = self.sim._now()
        if now < self.plugin_created_at or (namespace not in (None, HOSTPATH_NAMESPACE)):
            return []
        if not _matches(HOSTPATH_POD_LABELS, selector):
            return []
        pod = _running_pod(f"{PLUGIN_NAME}-0", HOSTPATH_NAMESPACE, "hostpath", now >= self.plugin_ready_at)
        pod["metadata"]["labels"] = dict(HOSTPATH_POD_LABELS)
        return [pod]

    def handles(self, args: _Args) -> bool:
        verb = args.positional[0] if args.positional else ""
        if verb in ("apply", "create") and "-f" in args.flags:
            return args.flags["-f"] == "-" or args.flags["-f"] in csi_driver_urls()
        words = args.positional[1:] if verb != "rollout" else args.positional[2:]
        if verb == "delete" and len(words) == 2 and words[0] == "clusters.apps.kubeblocks.io":
            return True
        if verb == "describe" and words[:1] == ["cmp"]:
            return False
        kinds = {kind.split("/")[0].lower() for word in words[:1] for kind in word.split(",")}
        return bool(kinds & set(_KINDS))

    async def kubectl(self, args: _Args, stdin: str | None) -> CommandResult:
        verb = args.positional[0]
        rest = args.positional[1:]
        if verb in ("apply", "create") and args.flags.get("-f") == "-":
            return self._create(stdin or "", verb)
        if verb == "apply":
            return self._apply_url(args.flags["-f"])
        if verb == "get":
            return self._get(args, rest)
        if verb == "wait" and len(rest) == 1:
            return await self._wait(args, rest[0])
        if verb == "delete" and len(rest) == 2:
            return await self._delete(args, _kind(rest[0]), rest[1])
        if verb == "rollout" and rest[:1] == ["status"] and len(rest) == 2:
            return await self._rollout(args, rest[1])
        if verb == "describe":
            target = rest[0].split("/")[-1] if len(rest) == 1 else rest[-1]
            return _ok(f"Name:         {target}\nNamespace:    {args.flags.get('-n', 'default')}\n")
        if verb == "logs":
            return _ok(f"{PLUGIN_NAME} hostpath: GRPC call: /csi.v1.Controller/CreateSnapshot\n")
        from dbstack.sim.cluster import UnknownCommand

        raise UnknownCommand(f"kubectl {' '.join(args.positional)} (backups)")

    # --- the CSI hostpath driver ---------------------------------------------------------------------------------

    def _apply_url(self, url: str) -> CommandResult:
        now = self.sim._now()
        if any(url.endswith(f"/{repo}/{version}/{path}") for repo, version, path in CSI_SIDECAR_RBAC):
            return _ok("serviceaccount/csi-provisioner created\nclusterrole.rbac.authorization.k8s.io/x created\n")
        manifest = next(m for m in CSI_MANIFESTS if url.endswith(f"/{m}"))
        if manifest.endswith("csi-hostpath-driverinfo.yaml"):
            self.csi_drivers.add(HOSTPATH_DRIVER)
            return _ok(f"csidriver.storage.k8s.io/{HOSTPATH_DRIVER} created\n")
        if manifest.endswith("csi-hostpath-plugin.yaml"):
            if now < self.plugin_created_at:
                self.plugin_created_at = now
                self.plugin_ready_at = now + self.scenario.latencies.csi_driver_s
                self.sim._times.add(self.plugin_ready_at)
                self.sim._notify()
            return _ok("serviceaccount/csi-hostpathplugin-sa created\nstatefulset.apps/csi-hostpathplugin created\n")
        if manifest.endswith("csi-hostpath-snapshotclass.yaml"):
            if self.sim._established("volumesnapshotclasses.snapshot.storage.k8s.io") > now:
                return _error(
                    'error: resource mapping not found for name: "csi-hostpath-snapclass" namespace: "" from '
                    '"STDIN": no matches for kind "VolumeSnapshotClass" in version "snapshot.storage.k8s.io/v1"\n'
                    "ensure CRDs are installed first"
                )
            self.snapshot_classes[HOSTPATH_SNAPSHOT_CLASS] = HOSTPATH_DRIVER
            return _ok(f"volumesnapshotclass.snapshot.storage.k8s.io/{HOSTPATH_SNAPSHOT_CLASS} created\n")
        self.storage_classes[HOSTPATH_STORAGE_CLASS] = HOSTPATH_DRIVER
        return _ok(f"storageclass.storage.k8s.io/{HOSTPATH_STORAGE_CLASS} created\n")

    async def _rollout(self, args: _Args, target: str) -> CommandResult:
        """kubectl polymorphichelpers/rollout_status.go, StatefulSetStatusViewer."""
        from dbstack.sim.cluster import _seconds

        name = target.partition("/")[2]
        if name != PLUGIN_NAME or self.sim._now() < self.plugin_created_at:
            return _error(f'Error from server (NotFound): statefulsets.apps "{name}" not found')
        timeout = _seconds(args.flags.get("--timeout", "0s")) or NEVER
        waiting = "Waiting for 1 pods to be ready...\n"
        ready_at_once = self.sim._now() >= self.plugin_ready_at
        if await self.sim._until(lambda now: now >= self.plugin_ready_at, timeout):
            done = f"statefulset rolling update complete 1 pods at revision {PLUGIN_NAME}-6b7f8d9c4d...\n"
            return _ok(("" if ready_at_once else waiting) + done)
        return CommandResult(1, waiting, "error: timed out waiting for the condition")

    # --- reads -----------------------------------------------------------------------------------------------

    def _get(self, args: _Args, rest: list[str]) -> CommandResult:
        now = self.sim._now()
        ns = args.flags.get("-n", "default")
        output = args.flags.get("-o", "")
        first = rest[0]
        if "/" in first and len(rest) == 1 and output not in ("", "name"):
            kind, _, name = first.partition("/")
            rest = [kind, name]
            first = kind
        elif "/" in first:  # kubectl get kind/name kind/name ...: every one, NotFound for the missing
            found, errors = [], []
            for word in rest:
                kind, _, name = word.partition("/")
                kind = _kind(kind)
                if self._exists(kind, ns, name, now):
                    found.append(f"{_NAME_KINDS[kind]}/{name}\n")
                else:
                    errors.append(f'Error from server (NotFound): {_API_NAMES[kind]} "{name}" not found\n')
            return CommandResult(1 if errors else 0, "".join(found), "".join(errors))
        kinds = [_kind(word) for word in first.split(",")]
        names = rest[1:]
        kind = kinds[0]
        if len(kinds) > 1 or output == "wide":
            return _ok(self._table(kinds, ns, args.flags.get("-l")))
        if names:
            name = names[0]
            if not self._exists(kind, ns, name, now):
                return _error(f'Error from server (NotFound): {_API_NAMES.get(kind, kind)} "{name}" not found')
            data = self._object(kind, ns, name, now)
            if output == "name":
                return _ok(f"{_NAME_KINDS[kind]}/{name}\n")
            if output == "json":
                return _ok(json.dumps(data))
            if output == "yaml":
                return _ok(yaml.safe_dump(data))
            if output.startswith("jsonpath={") and output.endswith("}"):
                return _ok(_jsonpath(data, output.removeprefix("jsonpath={").removesuffix("}")))
        if kind == "restore" and "-l" in args.flags:
            items = self._restore_objects(ns, args.flags["-l"], now)
            listing = {"apiVersion": "v1", "kind": "List", "items": items}
            return _ok(json.dumps(listing) if output == "json" else yaml.safe_dump(listing))
        if kind == "volumesnapshot":
            items = [self._snapshot(b) for b in self._live_backups(now) if b.namespace == ns and self._snapshots(b)]
            return _ok(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
        from dbstack.sim.cluster import UnknownCommand

        raise UnknownCommand(f"kubectl get {' '.join(rest)} -o {output} (backups)")

    def _exists(self, kind: str, ns: str, name: str, now: float) -> bool:
        if kind == "csidriver":
            return name in self.csi_drivers
        if kind == "storageclass":
            return name in self.storage_classes
        if kind == "volumesnapshotclass":
            return name in self.snapshot_classes
        if kind == "backuprepo":
            return name in self.repos and now >= self.repos[name].created_at
        if kind == "backup":
            backup = self.backups.get((ns, name))
            return backup is not None and backup.created_at <= now < backup.deleted_at
        if kind == "backuppolicy":
            return self._policy_source(ns, name) is not None
        if kind == "component":
            restored = self._restored_of_component(ns, name)
            return restored is not None and now >= restored.created_at + self.sim.scenario.latencies.pods_after_s
        return False

    def _object(self, kind: str, ns: str, name: str, now: float) -> dict[str, Any]:
        if kind == "storageclass":
            return {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": name},
                "provisioner": self.storage_classes[name],
                "reclaimPolicy": "Delete",
            }
        if kind == "volumesnapshotclass":
            return {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshotClass",
                "metadata": {"name": name},
                "driver": self.snapshot_classes[name],
                "deletionPolicy": "Delete",
            }
        if kind == "csidriver":
            return {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": name}}
        if kind == "backuprepo":
            repo = self.repos[name]
            phase = repo.phase(now)
            status: dict[str, Any] = {"phase": phase}
            if phase == "Failed":
                status["conditions"] = [
                    {"type": "PreCheckPassed", "status": "False", "reason": "PreCheckFailed", "message": repo.message}
                ]
            return {
                "apiVersion": f"{DP}/v1alpha1",
                "kind": "BackupRepo",
                "metadata": {"name": name},
                "spec": {"storageProviderRef": "pvc", "accessMethod": "Mount"},
                "status": status,
            }
        if kind == "backup":
            return self._backup_json(self.backups[(ns, name)], now)
        if kind == "backuppolicy":
            source = self._policy_source(ns, name)
            return {
                "apiVersion": f"{DP}/v1alpha1",
                "kind": "BackupPolicy",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"target": {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": source}}}},
                "status": {"phase": "Available"},
            }
        restored = self._restored_of_component(ns, name)
        assert restored is not None
        annotations = {"kubeblocks.io/restore-done": "true"} if now >= restored.done_at else {}
        return {
            "apiVersion": "apps.kubeblocks.io/v1",
            "kind": "Component",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        }

    def _backup_json(self, backup: _Backup, now: float) -> dict[str, Any]:
        phase = backup.phase(now)
        status: dict[str, Any] = {"phase": phase, "backupMethod": {"name": backup.method}}
        if backup.repo:
            status["backupRepoName"] = backup.repo
        if phase == "Failed":
            status["failureReason"] = backup.reason
        if phase == "Completed":
            status["totalSize"] = "48Mi"
            status["duration"] = f"{round(backup.completed_at - backup.created_at)}s"
        metadata: dict[str, Any] = {"name": backup.name, "namespace": backup.namespace}
        if backup.cluster:
            metadata["labels"] = {"app.kubernetes.io/instance": backup.cluster}
        return {
            "apiVersion": f"{DP}/v1alpha1",
            "kind": "Backup",
            "metadata": metadata,
            "spec": {"backupPolicyName": backup.policy, "backupMethod": backup.method, "deletionPolicy": "Delete"},
            "status": status,
        }

    def _table(self, kinds: list[str], ns: str, selector: str | None) -> str:
        now = self.sim._now()
        lines = []
        for kind in kinds:
            if kind == "csidriver":
                lines += [f"csidriver.storage.k8s.io/{d}" for d in sorted(self.csi_drivers)]
            elif kind == "storageclass":
                lines += [f"storageclass.storage.k8s.io/{n}\t{p}" for n, p in self.storage_classes.items()]
            elif kind == "volumesnapshotclass":
                lines += [
                    f"volumesnapshotclass.snapshot.storage.k8s.io/{n}\t{d}" for n, d in self.snapshot_classes.items()
                ]
            elif kind == "volumesnapshotcontent":
                lines += [f"snapcontent-{b.name}\ttrue" for b in self._live_backups(now) if self._snapshots(b)]
            elif kind == "storageprovider":
                lines += ["pvc\tReady", "minio\tNotReady"]
            elif kind in ("job", "pod"):
                lines += [f"{kind}/dp-backup-0-{b.name}" for b in self._live_backups(now) if b.namespace == ns]
        return "NAME\tDETAIL\n" + "".join(f"{line}\n" for line in lines)

    # --- creations -----------------------------------------------------------------------------------------------

    def _create(self, stdin: str, verb: str) -> CommandResult:
        manifest = yaml.safe_load(stdin)
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        if kind == "BackupRepo":
            return self._create_repo(manifest)
        if kind == "Backup":
            return self._create_backup(manifest)
        if kind == "Cluster" and RESTORE_ANNOTATION in (manifest.get("metadata", {}).get("annotations") or {}):
            return self._create_restored(manifest)
        from dbstack.sim.cluster import UnknownCommand

        raise UnknownCommand(f"kubectl {verb} -f - of a {kind}")

    def _create_repo(self, manifest: Mapping[str, Any]) -> CommandResult:
        now = self.sim._now()
        name = str(manifest["metadata"]["name"])
        # The KubeBlocks CRD bundle brings BackupRepo with Cluster.
        if self.sim._established("clusters.apps.kubeblocks.io") > now:
            return _error(f'error: no matches for kind "BackupRepo" in version "{DP}/v1alpha1"')
        if name not in self.repos:
            lat = self.scenario.latencies
            failure = self.scenario.repo_failure
            repo = _Repo(name, now, now + lat.repo_s if failure is None else NEVER)
            if failure is not None:
                repo.failed_at, repo.message = now + lat.repo_s, failure
            self.repos[name] = repo
            self.sim._times.update(t for t in (repo.ready_at, repo.failed_at) if t < NEVER)
            self.sim._notify()
            return _ok(f"backuprepo.{DP}/{name} created\n")
        return _ok(f"backuprepo.{DP}/{name} unchanged\n")

    def _create_backup(self, manifest: Mapping[str, Any]) -> CommandResult:
        now = self.sim._now()
        lat = self.scenario.latencies
        meta, spec = manifest["metadata"], manifest["spec"]
        name, ns = str(meta["name"]), str(meta.get("namespace", "default"))
        existing = self.backups.get((ns, name))
        if existing is not None and existing.created_at <= now < existing.deleted_at:
            return _error(
                f'Error from server (AlreadyExists): error when creating "STDIN": backups.{DP} "{name}" already exists'
            )
        policy, chosen = str(spec["backupPolicyName"]), str(spec["backupMethod"])
        source = self._policy_source(ns, policy)
        cluster = self.sim._get("cluster", ns, source) if source else None
        key = cluster.database if cluster else None
        repo_name = (meta.get("labels") or {}).get(REPO_LABEL)
        backup = _Backup(name, ns, chosen, policy, key, source, now, repo=repo_name)
        found = method(key, chosen) if key else None
        reason: str | None = None
        if cluster is None:
            # dputils.GetBackupPolicyByName: the policy KubeBlocks generates only exists beside its Cluster.
            reason = f'{_API_NAMES["backuppolicy"]} "{policy}" not found'
        elif found is None:
            reason = f"backupMethod: {chosen} not found"  # backup_controller.go prepareBackupRequest
        elif found.needs == SNAPSHOT and not self._can_snapshot(ns, source or ""):
            component = BACKUP_COMPONENTS[key or ""]
            pod = f"{source}-{component}-0"
            # pkg/dataprotection/utils/utils.go VolumeSnapshotEnabled.
            reason = (
                f'cannot find any VolumeSnapshotClass of persistentVolumeClaim "data-{pod}" to do volume snapshot '
                f'on pod "{pod}"'
            )
        elif found.needs != SNAPSHOT and (repo_name not in self.repos or self.repos[repo_name].phase(now) != "Ready"):
            reason = (
                f"backup repo {repo_name} not found"
                if repo_name not in self.repos
                else f"backup repo {repo_name} is not ready"
            )
        elif key and key in self.scenario.backup_failures:
            backup.failed_at, backup.reason = now + lat.backup_s[key] / 2, self.scenario.backup_failures[key]
        else:
            backup.completed_at = now + lat.backup_s[key or ""]
            lost = key in self.scenario.lost_markers
            backup.markers = frozenset() if lost else frozenset(self.markers.get((ns, source or ""), set()))
        if reason is not None:
            backup.failed_at, backup.reason = now + self.sim.scenario.latencies.api_s, reason
        self.backups[(ns, name)] = backup
        self.sim._times.update(t for t in (backup.completed_at, backup.failed_at) if t < NEVER)
        self.sim._notify()
        return _ok(f"backup.{DP}/{name} created\n")

    def _can_snapshot(self, ns: str, cluster: str) -> bool:
        """A volume of a CSI driver with a VolumeSnapshotClass (pkg/dataprotection/utils IsVolumeSnapshotEnabled)."""
        provisioner = self.storage_classes.get(self.cluster_classes.get((ns, cluster), ""))
        return provisioner in self.csi_drivers and provisioner in self.snapshot_classes.values()

    def _create_restored(self, manifest: Mapping[str, Any]) -> CommandResult:
        from dbstack.sim.cluster import _Object

        now = self.sim._now()
        lat = self.scenario.latencies
        meta = manifest["metadata"]
        name, ns = str(meta["name"]), str(meta.get("namespace", "default"))
        if self.sim._get("cluster", ns, name) is not None:
            return _error(
                f'Error from server (AlreadyExists): error when creating "STDIN": clusters.apps.kubeblocks.io "{name}" '
                "already exists"
            )
        ((component, source),) = json.loads(meta["annotations"][RESTORE_ANNOTATION]).items()
        backup = self.backups.get((str(source["namespace"]), str(source["name"])))
        if backup is None or backup.cluster is None or backup.database is None:
            return _error(f'Error from server: backups.{DP} "{source["name"]}" not found')
        original = self.sim._get("cluster", backup.namespace, backup.cluster)
        parts = original.components if original else ()
        key = backup.database
        stuck = key in self.scenario.restore_stuck
        failure = self.scenario.restore_failures.get(key)
        done_at = NEVER if stuck or failure else now + lat.restore_s[key]
        snapshot = method(key, backup.method)
        restored = _Restored(
            name,
            ns,
            component,
            key,
            backup.name,
            now,
            done_at,
            markers=backup.markers,
            stage="preparedata" if snapshot and snapshot.needs == SNAPSHOT else "postready",
        )
        if failure is not None:
            restored.failed_at, restored.message = now + lat.restore_s[key] / 2, failure
        self.restores[(ns, name)] = restored
        self.cluster_classes[(ns, name)] = self.cluster_classes.get((backup.namespace, backup.cluster), "")
        scenario_lat = self.sim.scenario.latencies
        cluster = _Object(
            "cluster",
            name,
            ns,
            now,
            ready_at=done_at,
            database=key,
            replicas=parts[0].replicas if parts else 1,
            components=parts,
            pods_at=now + scenario_lat.pods_after_s,
            observed_at=now,
            up_to_date_at=min(now + scenario_lat.observe_s, done_at),
        )
        self.sim._add(cluster)
        self.sim._times.update(t for t in (restored.failed_at, done_at) if t < NEVER)
        return _ok(f"cluster.apps.kubeblocks.io/{name} created\n")

    # --- deletions and waits ---------------------------------------------------------------------------------

    async def _delete(self, args: _Args, kind: str, name: str) -> CommandResult:
        """kubectl delete: waits for the object to go (its finalizers) unless --wait=false; --timeout bounds that."""
        from dbstack.sim.cluster import _seconds

        now = self.sim._now()
        ns = args.flags.get("-n", "default")
        delay = self.scenario.latencies.delete_s
        gone: Any
        if kind == "cluster":
            obj = self.sim._get("cluster", ns, name)
            if obj is None:
                return self._not_found(args, "clusters.apps.kubeblocks.io", name)
            self.sim._delete(obj, delay)
            self.markers.pop((ns, name), None)
            gone = lambda t: not obj.exists(t)  # noqa: E731
            printed = f'cluster.apps.kubeblocks.io "{name}" deleted\n'
        elif kind == "backup":
            backup = self.backups.get((ns, name))
            if backup is None or not backup.created_at <= now < backup.deleted_at:
                return self._not_found(args, f"backups.{DP}", name)
            backup.deleted_at = now + delay
            self.sim._times.add(backup.deleted_at)
            self.sim._notify()
            gone = lambda t: t >= backup.deleted_at  # noqa: E731
            printed = f'backup.{DP} "{name}" deleted\n'
        else:
            from dbstack.sim.cluster import UnknownCommand

            raise UnknownCommand(f"kubectl delete {kind}")
        if args.flags.get("--wait") == "false":
            return _ok(printed)
        timeout = _seconds(args.flags.get("--timeout", "0s")) or NEVER
        if await self.sim._until(gone, timeout):
            return _ok(printed)
        return CommandResult(1, printed, f"error: timed out waiting for the condition on {kind}s/{name}")

    def _not_found(self, args: _Args, resource: str, name: str) -> CommandResult:
        if args.flags.get("--ignore-not-found"):
            return _ok("")
        return _error(f'Error from server (NotFound): {resource} "{name}" not found')

    async def _wait(self, args: _Args, target: str) -> CommandResult:
        """kubectl wait (v0.31) on a Backup, a BackupRepo or a Component: --for=create, --for=delete, jsonpath."""
        from dbstack.sim.cluster import _lookup, _printed, _seconds

        word, _, name = target.partition("/")
        kind = _kind(word)
        ns = args.flags.get("-n", "default")
        condition = args.flags.get("--for", "")
        timeout = _seconds(args.flags.get("--timeout", "30s"))
        met = f"{_NAME_KINDS[kind]}/{name} condition met\n"
        timed_out = f"error: timed out waiting for the condition on {_API_NAMES[kind].split('.')[0]}/{name}"
        if condition == "create":
            ok = await self.sim._until(lambda now: self._exists(kind, ns, name, now), timeout)
            return _ok(met) if ok else _error("error: timed out waiting for the condition")
        if condition == "delete":
            if not self._exists(kind, ns, name, self.sim._now()):
                return _ok()
            ok = await self.sim._until(lambda now: not self._exists(kind, ns, name, now), timeout)
            return _ok(met) if ok else _error(timed_out)
        if not self._exists(kind, ns, name, self.sim._now()):
            return _error(f'Error from server (NotFound): {_API_NAMES[kind]} "{name}" not found')
        if not (condition.startswith("jsonpath={.") and "}=" in condition):
            from dbstack.sim.cluster import UnknownCommand

            raise UnknownCommand(f"wait condition {condition} on {kind}")
        path, wanted = condition.removeprefix("jsonpath={.").split("}=", 1)
        keys = [part.replace("\\.", ".") for part in _split_path(path)]

        def matches(now: float) -> bool:
            if not self._exists(kind, ns, name, now):
                return False
            value = _lookup(self._object(kind, ns, name, now), keys)
            return value is not None and _printed(value) == wanted

        ok = await self.sim._until(matches, timeout)
        return _ok(met) if ok else _error(timed_out)

    # --- restores --------------------------------------------------------------------------------------------

    def _restored_of_component(self, ns: str, component: str) -> _Restored | None:
        return next(
            (r for (n, c), r in self.restores.items() if n == ns and f"{c}-{r.component}" == component),
            None,
        )

    def _restore_objects(self, ns: str, selector: str, now: float) -> list[dict[str, Any]]:
        """The Restore KubeBlocks creates for a restored component, labelled with the component's labels."""
        wanted = selector.partition("=")[2]
        restored = self.restores.get((ns, wanted))
        if restored is None or now < restored.created_at + self.sim.scenario.latencies.pods_after_s:
            return []
        if now >= restored.failed_at:
            phase = "Failed"
        elif now >= restored.done_at:
            phase = "Completed"
        else:
            phase = "Running"
        name = f"{restored.cluster}-{restored.component}-4f2a9c1e-{restored.stage}"
        status: dict[str, Any] = {"phase": phase}
        if phase == "Failed":
            action = {"name": f"restore-{restored.stage}-0", "status": "Failed", "message": restored.message}
            status["actions"] = {"prepareData" if restored.stage == "preparedata" else "postReady": [action]}
        return [
            {
                "apiVersion": f"{DP}/v1alpha1",
                "kind": "Restore",
                "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/instance": restored.cluster}},
                "spec": {"backup": {"name": restored.backup, "namespace": ns}},
                "status": status,
            }
        ]

    # --- backups and their policies --------------------------------------------------------------------------

    def _policy_source(self, ns: str, policy: str) -> str | None:
        """The Cluster whose generated BackupPolicy `policy` is (`<cluster>-<component>-backup-policy`, for a component
        whose addon has a BackupPolicyTemplate), when that Cluster exists."""
        for cluster in self.sim._all("cluster"):
            key = cluster.database or ""
            component = BACKUP_COMPONENTS.get(key)
            if cluster.namespace == ns and component and policy == f"{cluster.name}-{component}-backup-policy":
                return cluster.name
        return None

    def _live_backups(self, now: float) -> list[_Backup]:
        return [b for b in self.backups.values() if b.created_at <= now < b.deleted_at]

    def _snapshots(self, backup: _Backup) -> bool:
        found = method(backup.database or "", backup.method)
        return found is not None and found.needs == SNAPSHOT and backup.phase(self.sim._now()) == "Completed"

    def _snapshot(self, backup: _Backup) -> dict[str, Any]:
        return {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": f"{backup.name}-0", "namespace": backup.namespace},
            "status": {"readyToUse": True},
        }

    # --- markers ---------------------------------------------------------------------------------------------

    def markers_of(self, ns: str, cluster: str) -> set[str] | None:
        """The markers a Cluster holds now: a restored one gets its Backup's once restored; None while it cannot be
        reached (not Running)."""
        now = self.sim._now()
        obj = self.sim._get("cluster", ns, cluster)
        if obj is None or not obj.ready(now):
            return None
        restored = self.restores.get((ns, cluster))
        if restored is not None and (ns, cluster) not in self.markers:
            self.markers[(ns, cluster)] = set(restored.markers)
        return self.markers.setdefault((ns, cluster), set())


@dataclass
class SimMarkers:
    """A MarkerRunner over the simulated cluster: writes put the run's marker id into the Cluster, a Backup keeps
    what its Cluster held, a restored Cluster gets its Backup's, and a verify finds them there or names them
    missing, in the smoke suite's words."""

    sim: SimCluster
    marker: str = "msim"
    calls: list[Markers] = field(default_factory=list)

    async def __call__(self, markers: Markers, seconds: float) -> CheckResult:
        self.calls.append(markers)
        endpoint = markers.endpoint
        name = marker_check_name(markers.phase, markers.context)
        latency = self.sim.scenario.backup.latencies.markers_s
        if latency > seconds:
            await anyio.sleep(seconds)
            return CheckResult(
                endpoint.database, name, Outcome.FAILED, seconds, "pytest exited with 124 (the time limit)"
            )
        await anyio.sleep(latency)
        held = self.sim.backups.markers_of(endpoint.namespace, endpoint.release)
        if held is None:
            cause = (
                f"not reached: the port-forward to svc/{endpoint.service}:{endpoint.port} did not come up: error: "
                f"unable to forward port because pod is not running"
            )
            return CheckResult(endpoint.database, name, Outcome.FAILED, latency, cause)
        if markers.phase == "write":
            held.add(self.marker)
        elif markers.phase == "clean":
            held.discard(self.marker)
        elif self.marker not in held:
            what = _MISSING[endpoint.database].format(id=self.marker)
            cause = f"{endpoint.database} markers {self.marker} do not read back as written: {what}"
            return CheckResult(endpoint.database, name, Outcome.FAILED, latency, cause)
        return CheckResult(endpoint.database, name, Outcome.PASSED, latency)


_MISSING = {
    "postgresql": "table public.dbstack_marker_{id} is missing",
    "redis": "DB 0 key dbstack-marker:{id}:queue is missing; DB 1 key dbstack-marker:{id}:string is missing",
    "qdrant": "collection dbstack_marker_{id} is missing",
    "elasticsearch": "index dbstack-marker-{id} is missing",
    "neo4j": "entity dbstack-marker-{id}-0 is missing",
}
"""What the smoke suite says (smokekit.markers) when a database holds none of the markers."""


def _kind(word: str) -> str:
    found = _KINDS.get(word.lower())
    if found is None:
        if word in ("clusters.apps.kubeblocks.io", "cluster"):
            return "cluster"
        if word == "pods":
            return "pod"
        from dbstack.sim.cluster import UnknownCommand

        raise UnknownCommand(f"resource type {word!r} (backups)")
    return found


def _split_path(path: str) -> list[str]:
    """A jsonpath's fields, where `\\.` is a dot inside a field (an annotation's key)."""
    parts, current, escaped = [], "", False
    for char in path:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += "\\"
            escaped = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _jsonpath(data: Any, path: str) -> str:
    """`-o jsonpath={...}` for the plain field paths and the one filter the plan reads."""
    from dbstack.sim.cluster import _lookup, _printed

    if "[?(" in path:
        head, _, rest = path.partition("[?(@.")
        items = _lookup(data, [p for p in head.strip(".").split(".") if p])
        field_name, _, tail = rest.partition("==")
        wanted, _, after = tail.partition(")]")
        out = [
            _printed(_lookup(item, [p for p in after.strip(".").split(".") if p]))
            for item in items or []
            if isinstance(item, Mapping) and str(item.get(field_name)) == wanted.strip('"')
        ]
        return " ".join(out)
    value = _lookup(data, [p for p in path.strip(".").split(".") if p])
    return "" if value is None else _printed(value)


def _ok(stdout: str = "") -> CommandResult:
    return CommandResult(0, stdout, "")


def _error(stderr: str, code: int = 1) -> CommandResult:
    return CommandResult(code, "", stderr)
