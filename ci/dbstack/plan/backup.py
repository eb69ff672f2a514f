"""The backup stage's steps: each database with a method is backed up and restored into a new Cluster, and the data
written before the backup is read back from that Cluster (docs/backup.md).

Per database: `markers-write:<db>` (the smoke suite writes marker data) -> `backup:<db>` (a Backup of the method,
waited on until Completed, failing at once on Failed with the Backup's own reason) -> `restore:<db>` (a Cluster of the
same spec, `<release>-r`, annotated to restore from the Backup, waited on until Running and restored) ->
`markers-verify:<db>` (the suite reads the markers back through the restored Cluster's own Service and Secret);
`markers-clean:<db>` and `backup-cleanup:<db>` remove the markers, the restored Cluster and the Backup whatever
happened. Before them: on k3s the CSI hostpath driver (`csi-driver`), on an existing cluster a check of the
configured classes (`snapshot-support`), and the BackupRepo file-based methods write to (`backup-repo`); the
backed-up databases' volumes go on the snapshot-capable class.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from dbstack.config import backupcatalog
from dbstack.config.backupcatalog import BACKUP_COMPONENTS
from dbstack.config.load import RESTORED_SUFFIX, Config, DatabaseConfig
from dbstack.plan.model import (
    BackupCase,
    Command,
    Diagnostic,
    Endpoint,
    Fact,
    Markers,
    Probe,
    RestoreCluster,
    SnapshotSupport,
    Step,
    StepKind,
    Wait,
    Watch,
    kubectl,
)

STAGE = "backup"
ON_K3S = "k3s"
ON_EXISTING = "existing"
CLUSTER_KINDS = (ON_K3S, ON_EXISTING)

# --- the CSI hostpath driver (kubernetes-csi/csi-driver-host-path), as its deploy/util/deploy-hostpath.sh applies it

CSI_DRIVER_VERSION = "v1.17.1"
CSI_RAW = f"https://raw.githubusercontent.com/kubernetes-csi/csi-driver-host-path/{CSI_DRIVER_VERSION}"
CSI_DEPLOY_DIR = "deploy/kubernetes-1.30"
"""deploy/kubernetes-1.31 is a symbolic link to it, which raw.githubusercontent.com does not follow."""
CSI_MANIFESTS = (
    f"{CSI_DEPLOY_DIR}/hostpath/csi-hostpath-driverinfo.yaml",
    f"{CSI_DEPLOY_DIR}/hostpath/csi-hostpath-plugin.yaml",
    f"{CSI_DEPLOY_DIR}/hostpath/csi-hostpath-snapshotclass.yaml",
    "examples/csi-storageclass.yaml",
)
"""What deploy-hostpath.sh applies from hostpath/ (its csi-hostpath-testing.yaml, a socat relay exposing the driver's
socket as a NodePort for csi-sanity, is left out), then the StorageClass example."""
CSI_SIDECAR_RBAC = (
    ("external-provisioner", "v5.2.0", "deploy/kubernetes/rbac.yaml"),
    ("external-attacher", "v4.8.0", "deploy/kubernetes/rbac.yaml"),
    ("external-snapshotter", "v8.2.0", "deploy/kubernetes/csi-snapshotter/rbac-csi-snapshotter.yaml"),
    ("external-resizer", "v1.13.1", "deploy/kubernetes/rbac.yaml"),
    ("external-health-monitor", "v0.14.0", "deploy/kubernetes/external-health-monitor-controller/rbac.yaml"),
)
"""Each sidecar's RBAC from its own repository at the version the plugin manifest's image pins, as the deploy script
applies them (snapshot-metadata only with SNAPSHOT_METADATA_TESTS, which is off)."""
HOSTPATH_DRIVER = "hostpath.csi.k8s.io"
HOSTPATH_STORAGE_CLASS = "csi-hostpath-sc"
HOSTPATH_SNAPSHOT_CLASS = "csi-hostpath-snapclass"
HOSTPATH_NAMESPACE = "default"
HOSTPATH_PLUGIN = "statefulset/csi-hostpathplugin"
HOSTPATH_SELECTOR = "app.kubernetes.io/instance=hostpath.csi.k8s.io"


def csi_driver_urls() -> tuple[str, ...]:
    rbac = tuple(
        f"https://raw.githubusercontent.com/kubernetes-csi/{repo}/{version}/{path}"
        for repo, version, path in CSI_SIDECAR_RBAC
    )
    return (*rbac, *(f"{CSI_RAW}/{path}" for path in CSI_MANIFESTS))


# --- KubeBlocks' objects -----------------------------------------------------------------------------------------

DP = "dataprotection.kubeblocks.io"
DP_VERSION = f"{DP}/v1alpha1"
BACKUP_RESOURCE = f"backups.{DP}"
BACKUP_REPO_RESOURCE = f"backuprepos.{DP}"
RESTORE_RESOURCE = f"restores.{DP}"
CLUSTER_RESOURCE = "clusters.apps.kubeblocks.io"
COMPONENT_RESOURCE = "components.apps.kubeblocks.io"
REPO_LABEL = f"{DP}/backup-repo-name"
"""A Backup labelled with it writes to that BackupRepo (controllers/dataprotection/utils.go getBackupRepo), so the
stage needs no default repo and leaves any existing default alone."""
RESTORE_ANNOTATION = "kubeblocks.io/restore-from-backup"
RESTORE_DONE = "kubeblocks.io/restore-done"
"""Set to "true" on each restored Component once its data is restored (pkg/controller/plan/restore.go)."""
INSTANCE_LABEL = "app.kubernetes.io/instance"
HELM_METADATA = ("meta.helm.sh/", "helm.sh/")
HELM_MANAGED = ("app.kubernetes.io/managed-by", "Helm")


@dataclass(frozen=True)
class BackupStage:
    platform_steps: tuple[Step, ...]
    """What the backed-up databases' clusters need first (the CSI driver or the class check, the BackupRepo)."""
    steps: tuple[Step, ...]
    """Per database, after its cluster."""
    cluster_needs: Mapping[str, tuple[str, ...]]
    """Database -> what its cluster step must wait for (the class its volumes go on)."""
    storage_classes: Mapping[str, str]
    """Database -> the StorageClass its volumes go on (`storageClassName` in its cluster values)."""
    cases: tuple[BackupCase, ...]


def backup_name(d: DatabaseConfig) -> str:
    return f"{d.release}-backup"


def restored_name(d: DatabaseConfig) -> str:
    return f"{d.release}{RESTORED_SUFFIX}"


def restored_endpoint(config: Config, d: DatabaseConfig, deployed: Endpoint) -> Endpoint:
    """The restored Cluster as the application would reach it: its own Service and account Secret."""
    name = restored_name(d)
    return Endpoint(
        database=d.key,
        title=d.db.title,
        release=name,
        namespace=config.namespace,
        service=d.db.service(name),
        port=d.db.port,
        secret=d.db.secret(name),
        chart_version=deployed.chart_version,
        version=deployed.version,
        mode=deployed.mode,
        replicas=deployed.replicas,
    )


def backup_stage(config: Config, cluster_kind: str, endpoints: Mapping[str, Endpoint]) -> BackupStage | None:
    """The stage's steps, or None when `backup.enabled` is false."""
    if cluster_kind not in CLUSTER_KINDS:
        raise ValueError(f"cluster kind {cluster_kind!r} is not one of {', '.join(CLUSTER_KINDS)}")
    if not config.backup.enabled:
        return None
    backup = config.backup
    cases: list[BackupCase] = []
    chosen: list[tuple[DatabaseConfig, backupcatalog.BackupMethod]] = []
    for d in config.enabled:
        name = backup.method(d.key)
        found = backupcatalog.method(d.key, name)
        if not backupcatalog.methods(d.key):
            cases.append(BackupCase(d.key, d.db.title, None, backupcatalog.NO_TEMPLATE))
        elif found is None:
            cases.append(BackupCase(d.key, d.db.title, None, f"backup.methods.{d.key} is none"))
        else:
            chosen.append((d, found))
            cases.append(
                BackupCase(
                    d.key,
                    d.db.title,
                    found.name,
                    backup=backup_name(d),
                    policy=backupcatalog.backup_policy(d.release, d.key),
                    restored=restored_name(d),
                )
            )
    platform: list[Step] = []
    class_step: str | None = None
    snapshotting = [d.key for d, m in chosen if m.needs == backupcatalog.SNAPSHOT]
    if cluster_kind == ON_K3S and chosen:
        platform.append(_csi_driver_step(config))
        class_step = platform[-1].id
    elif snapshotting:
        platform.append(_snapshot_support_step(config, tuple(snapshotting)))
        class_step = platform[-1].id
    repo_step: str | None = None
    if any(m.needs != backupcatalog.SNAPSHOT for _, m in chosen):
        platform.append(_repo_step(config))
        repo_step = platform[-1].id
    steps: list[Step] = []
    storage_class = HOSTPATH_STORAGE_CLASS if cluster_kind == ON_K3S else backup.storage_class
    storage_classes: dict[str, str] = {}
    cluster_needs: dict[str, tuple[str, ...]] = {}
    for d, found in chosen:
        if cluster_kind == ON_K3S or found.needs == backupcatalog.SNAPSHOT:
            storage_classes[d.key] = storage_class
            cluster_needs[d.key] = (class_step,) if class_step else ()
        needs_repo = (repo_step,) if repo_step and found.needs != backupcatalog.SNAPSHOT else ()
        steps.extend(_database_steps(config, d, found, endpoints[d.key], needs_repo))
    return BackupStage(tuple(platform), tuple(steps), cluster_needs, storage_classes, tuple(cases))


def _csi_driver_step(config: Config) -> Step:
    ns = HOSTPATH_NAMESPACE
    return Step(
        id="csi-driver",
        title=f"Install the CSI hostpath driver ({CSI_DRIVER_VERSION}) with its StorageClass and VolumeSnapshotClass",
        kind=StepKind.CSI_DRIVER,
        # Its VolumeSnapshotClass needs the snapshot CRDs.
        needs=("snapshot-crds",),
        skip_when=(
            Probe(
                kubectl(
                    "get",
                    f"csidriver/{HOSTPATH_DRIVER}",
                    f"storageclass/{HOSTPATH_STORAGE_CLASS}",
                    f"volumesnapshotclass/{HOSTPATH_SNAPSHOT_CLASS}",
                    "-o",
                    "name",
                ),
                expect_output=True,
            ),
        ),
        # As the deploy script applies them: no namespace given (the manifests name `default` themselves).
        commands=tuple(kubectl("apply", "-f", url) for url in csi_driver_urls()),
        done_when=(Wait(HOSTPATH_PLUGIN, ns, "rollout"),),
        done_when_skipped=(Wait("pods", None, "condition=Ready", selector=HOSTPATH_SELECTOR),),
        timeout_s=config.backup.csi_driver_timeout,
        stage=STAGE,
        diagnostics=(
            Diagnostic("pods.txt", kubectl("get", "pods", "-A", "-l", HOSTPATH_SELECTOR, "-o", "wide")),
            Diagnostic("describe.txt", kubectl("-n", ns, "describe", HOSTPATH_PLUGIN)),
            Diagnostic("logs.txt", kubectl("-n", ns, "logs", HOSTPATH_PLUGIN, "--all-containers", "--tail=500")),
            Diagnostic("classes.txt", kubectl("get", "csidriver,storageclass,volumesnapshotclass", "-o", "wide")),
            Diagnostic("events.txt", kubectl("-n", ns, "get", "events", "--sort-by=.lastTimestamp")),
        ),
    )


def _snapshot_support_step(config: Config, databases: tuple[str, ...]) -> Step:
    backup = config.backup
    return Step(
        id="snapshot-support",
        title=f"Check StorageClass {backup.storage_class} and VolumeSnapshotClass {backup.snapshot_class} can snapshot",
        kind=StepKind.SNAPSHOT_SUPPORT,
        needs=("snapshot-crds",),
        commands=(),
        done_when=(),
        timeout_s=config.timeouts.crds,
        stage=STAGE,
        snapshot_support=SnapshotSupport(backup.storage_class, backup.snapshot_class, databases),
        diagnostics=(
            Diagnostic("classes.txt", kubectl("get", "csidriver,storageclass,volumesnapshotclass", "-o", "wide")),
        ),
    )


def backup_repo_manifest(config: Config) -> dict[str, Any]:
    """A BackupRepo on KubeBlocks' `pvc` StorageProvider: a volume in the Backup's namespace, mounted by the backup
    jobs (the provider has a PersistentVolumeClaim template and no tool configuration, so `Mount`)."""
    repo = config.backup.repo
    parameters = {"accessMode": "ReadWriteOnce", "volumeMode": "Filesystem"}
    if repo.storage_class:
        parameters["storageClassName"] = repo.storage_class
    return {
        "apiVersion": DP_VERSION,
        "kind": "BackupRepo",
        "metadata": {"name": repo.name},
        "spec": {
            "storageProviderRef": "pvc",
            "accessMethod": "Mount",
            "pvReclaimPolicy": "Delete",
            "volumeCapacity": f"{repo.capacity_gi}Gi",
            "config": parameters,
        },
    }


def _repo_step(config: Config) -> Step:
    repo = config.backup.repo
    wait = Wait(
        f"{BACKUP_REPO_RESOURCE}/{repo.name}",
        None,
        "jsonpath={.status.phase}=Ready",
        must_exist_first=not repo.create,
        fails_on="jsonpath={.status.phase}=Failed",
        failure_reason='{.status.conditions[?(@.status=="False")].message}',
    )
    kb_ns = config.kubeblocks_namespace
    created = " on the pvc StorageProvider" if repo.create else " (existing)"
    return Step(
        id="backup-repo",
        title=f"BackupRepo {repo.name}{created} Ready",
        kind=StepKind.BACKUP_REPO,
        needs=("kubeblocks",),
        commands=(Command(("kubectl", "apply", "-f", "-"), stdin=_yaml(backup_repo_manifest(config))),)
        if repo.create
        else (),
        done_when=(wait,),
        timeout_s=config.backup.backup_timeout,
        stage=STAGE,
        diagnostics=(
            Diagnostic("backuprepo.yaml", kubectl("get", BACKUP_REPO_RESOURCE, repo.name, "-o", "yaml")),
            Diagnostic("storageproviders.txt", kubectl("get", f"storageproviders.{DP}", "-o", "wide")),
            Diagnostic("kb-system-events.txt", kubectl("-n", kb_ns, "get", "events", "--sort-by=.lastTimestamp")),
            _dataprotection_logs(kb_ns),
        ),
    )


def backup_manifest(config: Config, d: DatabaseConfig, method: backupcatalog.BackupMethod) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": backup_name(d), "namespace": config.namespace}
    if method.needs != backupcatalog.SNAPSHOT:
        metadata["labels"] = {REPO_LABEL: config.backup.repo.name}
    return {
        "apiVersion": DP_VERSION,
        "kind": "Backup",
        "metadata": metadata,
        "spec": {
            "backupPolicyName": backupcatalog.backup_policy(d.release, d.key),
            "backupMethod": method.name,
            # Deleting the Backup deletes its snapshot or files too.
            "deletionPolicy": "Delete",
        },
    }


def restore_annotation(backup: str, namespace: str, component: str) -> str:
    """`kubeblocks.io/restore-from-backup` as KubeBlocks 1.0.1 writes it (pkg/dataprotection/restore/utils.go
    GetRestoreFromBackupAnnotation): JSON keyed by component; the restored accounts' passwords come from the Backup
    itself (its encrypted system accounts), so none is passed."""
    source = {
        "name": backup,
        "namespace": namespace,
        "volumeRestorePolicy": "Parallel",
        "doReadyRestoreAfterClusterRunning": "false",
    }
    return json.dumps({component: source}, sort_keys=True, separators=(",", ":"))


def restored_cluster(source: Mapping[str, Any], restore: RestoreCluster) -> dict[str, Any]:
    """A Cluster of `source`'s spec named `restore.target`, annotated to restore from the Backup: what KubeBlocks'
    own Restore OpsRequest builds from a Backup (pkg/operations/restore.go getClusterObjFromBackup): same spec,
    services without load balancers, node ports or the old instance selector, no offline instances, scheduling
    selectors on the new name. Its own terminationPolicy is Delete, so the stage can remove it; Helm's ownership
    labels and annotations stay behind (Helm does not manage it)."""
    spec = copy.deepcopy(dict(source.get("spec") or {}))
    spec["terminationPolicy"] = "Delete"
    if "services" in spec:
        services = []
        for service in spec["services"] or []:
            inner = service.get("spec") or {}
            if inner.get("type") == "LoadBalancer":
                continue
            for port in inner.get("ports") or []:
                port.pop("nodePort", None)
            (inner.get("selector") or {}).pop(INSTANCE_LABEL, None)
            services.append(service)
        spec["services"] = services
    for component in spec.get("componentSpecs") or []:
        component.pop("offlineInstances", None)
    _rename_instance(spec, str((source.get("metadata") or {}).get("name", "")), restore.target)
    metadata = source.get("metadata") or {}
    labels = {
        key: value
        for key, value in (metadata.get("labels") or {}).items()
        if not key.startswith(HELM_METADATA) and (key, value) != HELM_MANAGED
    }
    if INSTANCE_LABEL in labels:
        labels[INSTANCE_LABEL] = restore.target
    annotations = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if not key.startswith(HELM_METADATA) and key != "kubectl.kubernetes.io/last-applied-configuration"
    }
    annotations[RESTORE_ANNOTATION] = restore_annotation(restore.backup, restore.namespace, restore.component)
    restored_metadata: dict[str, Any] = {"name": restore.target, "namespace": restore.namespace}
    if labels:
        restored_metadata["labels"] = labels
    restored_metadata["annotations"] = annotations
    return {
        "apiVersion": source.get("apiVersion", "apps.kubeblocks.io/v1"),
        "kind": "Cluster",
        "metadata": restored_metadata,
        "spec": spec,
    }


def _rename_instance(node: Any, old: str, new: str) -> None:
    """Label selectors in scheduling policies that pick the old cluster's pods pick the new one's."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("matchLabels",) and isinstance(value, dict) and value.get(INSTANCE_LABEL) == old:
                value[INSTANCE_LABEL] = new
            elif key == "matchExpressions" and isinstance(value, list):
                for expression in value:
                    if isinstance(expression, dict) and expression.get("key") == INSTANCE_LABEL:
                        expression["values"] = [new]
            else:
                _rename_instance(value, old, new)
    elif isinstance(node, list):
        for item in node:
            _rename_instance(item, old, new)


def _database_steps(
    config: Config,
    d: DatabaseConfig,
    method: backupcatalog.BackupMethod,
    deployed: Endpoint,
    needs_repo: tuple[str, ...],
) -> list[Step]:
    key, ns, kb_ns = d.key, config.namespace, config.kubeblocks_namespace
    backup, restored = backup_name(d), restored_name(d)
    component = BACKUP_COMPONENTS[key]
    policy = backupcatalog.backup_policy(d.release, key)
    marker_timeout = config.timeouts.smoke + MARKER_MARGIN_S
    restored_endpoint_ = restored_endpoint(config, d, deployed)
    backup_object = f"{BACKUP_RESOURCE}/{backup}"
    get_backup = ("get", BACKUP_RESOURCE, backup, "-n", ns)
    backup_diagnostics = (
        Diagnostic("backup.yaml", kubectl(*get_backup, "-o", "yaml")),
        Diagnostic("backup-describe.txt", kubectl("-n", ns, "describe", BACKUP_RESOURCE, backup)),
        Diagnostic("backuppolicy.yaml", kubectl("get", f"backuppolicies.{DP}", policy, "-n", ns, "-o", "yaml")),
        Diagnostic("volumesnapshots.yaml", kubectl("-n", ns, "get", "volumesnapshots", "-o", "yaml")),
        Diagnostic("volumesnapshotcontents.txt", kubectl("get", "volumesnapshotcontents", "-o", "wide")),
        Diagnostic(
            "backup-jobs.txt", kubectl("-n", ns, "get", "jobs,pods", "-l", f"{DP}/backup-name={backup}", "-o", "wide")
        ),
        Diagnostic("events.txt", kubectl("-n", ns, "get", "events", "--sort-by=.lastTimestamp")),
        _dataprotection_logs(kb_ns),
    )
    selector = f"{INSTANCE_LABEL}={restored}"
    restore = RestoreCluster(d.release, restored, ns, backup, component)
    return [
        Step(
            id=f"markers-write:{key}",
            title=f"Write markers into {d.db.title} ({d.release})",
            kind=StepKind.MARKERS,
            database=key,
            needs=(f"cluster:{key}",),
            commands=(),
            done_when=(),
            timeout_s=marker_timeout,
            markers=Markers("write", deployed),
            stage=STAGE,
        ),
        Step(
            id=f"backup:{key}",
            title=f"Back up {d.db.title} ({method.name}) and wait until Completed",
            kind=StepKind.BACKUP,
            database=key,
            needs=(f"markers-write:{key}", *needs_repo),
            commands=(
                # A Backup of this name left by an earlier run holds that run's data: it goes first.
                kubectl(
                    "delete",
                    BACKUP_RESOURCE,
                    backup,
                    "-n",
                    ns,
                    "--ignore-not-found",
                    f"--timeout={config.backup.backup_timeout}s",
                ),
                Command(("kubectl", "create", "-f", "-"), stdin=_yaml(backup_manifest(config, d, method))),
            ),
            done_when=(
                Wait(
                    backup_object,
                    ns,
                    "jsonpath={.status.phase}=Completed",
                    fails_on="jsonpath={.status.phase}=Failed",
                    failure_reason="{.status.failureReason}",
                ),
            ),
            timeout_s=config.backup.backup_timeout,
            facts=(
                Fact("size", kubectl(*get_backup, "-o", "jsonpath={.status.totalSize}")),
                Fact("duration", kubectl(*get_backup, "-o", "jsonpath={.status.duration}")),
            ),
            stage=STAGE,
            diagnostics=backup_diagnostics,
        ),
        Step(
            id=f"restore:{key}",
            title=f"Restore {d.db.title} from {backup} into {restored} and wait until Running",
            kind=StepKind.RESTORE,
            database=key,
            needs=(f"backup:{key}",),
            commands=(
                # A restored Cluster an earlier run left behind goes first (a new one cannot take its name).
                kubectl(
                    "delete",
                    CLUSTER_RESOURCE,
                    restored,
                    "-n",
                    ns,
                    "--ignore-not-found",
                    f"--timeout={config.backup.restore_timeout}s",
                ),
            ),
            restore=restore,
            done_when=(
                Wait(f"{CLUSTER_RESOURCE}/{restored}", ns, "jsonpath={.status.phase}=Running"),
                Wait(
                    f"{COMPONENT_RESOURCE}/{restored}-{component}",
                    ns,
                    "jsonpath={.metadata.annotations." + RESTORE_DONE.replace(".", "\\.") + "}=true",
                    must_exist_first=True,
                ),
            ),
            watch=Watch(cluster=restored, namespace=ns, pod_selector=selector, restores=True),
            timeout_s=config.backup.restore_timeout,
            stage=STAGE,
            diagnostics=(
                Diagnostic("restored-cluster.yaml", kubectl("-n", ns, "get", CLUSTER_RESOURCE, restored, "-o", "yaml")),
                Diagnostic("restores.yaml", kubectl("-n", ns, "get", RESTORE_RESOURCE, "-l", selector, "-o", "yaml")),
                Diagnostic("components.txt", kubectl("-n", ns, "describe", "cmp", "-l", selector)),
                Diagnostic("pods.txt", kubectl("-n", ns, "describe", "pods", "-l", selector)),
                Diagnostic("pvcs.txt", kubectl("-n", ns, "get", "pvc", "-l", selector, "-o", "wide")),
                Diagnostic("restore-jobs.txt", kubectl("-n", ns, "get", "jobs,pods", "-l", selector, "-o", "wide")),
                *backup_diagnostics[:1],
                *backup_diagnostics[3:5],
                Diagnostic("events.txt", kubectl("-n", ns, "get", "events", "--sort-by=.lastTimestamp")),
                _dataprotection_logs(kb_ns),
                Diagnostic(
                    "kubeblocks.log",
                    kubectl("-n", kb_ns, "logs", "deploy/kubeblocks", "--all-containers", "--tail=2000"),
                ),
            ),
        ),
        Step(
            id=f"markers-verify:{key}",
            title=f"Read the markers back from the restored {d.db.title} ({restored})",
            kind=StepKind.MARKERS,
            database=key,
            needs=(f"restore:{key}",),
            commands=(),
            done_when=(),
            timeout_s=marker_timeout,
            markers=Markers("verify", restored_endpoint_, f"restored {restored}"),
            stage=STAGE,
        ),
        Step(
            id=f"markers-clean:{key}",
            title=f"Remove the markers from {d.db.title} ({d.release})",
            kind=StepKind.MARKERS,
            database=key,
            needs=(f"markers-write:{key}", f"backup:{key}"),
            commands=(),
            done_when=(),
            timeout_s=marker_timeout,
            markers=Markers("clean", deployed),
            stage=STAGE,
            cleanup=True,
        ),
        Step(
            id=f"backup-cleanup:{key}",
            title=f"Delete the restored {restored} and Backup {backup}",
            kind=StepKind.BACKUP_CLEANUP,
            database=key,
            needs=(f"backup:{key}", f"restore:{key}", f"markers-verify:{key}"),
            commands=(
                kubectl("delete", CLUSTER_RESOURCE, restored, "-n", ns, "--ignore-not-found", "--wait=false"),
                kubectl("delete", BACKUP_RESOURCE, backup, "-n", ns, "--ignore-not-found", "--wait=false"),
            ),
            done_when=(
                Wait(f"{CLUSTER_RESOURCE}/{restored}", ns, "delete"),
                Wait(backup_object, ns, "delete"),
            ),
            timeout_s=config.backup.backup_timeout,
            stage=STAGE,
            cleanup=True,
            diagnostics=(
                *backup_diagnostics[:2],
                Diagnostic("events.txt", kubectl("-n", ns, "get", "events")),
            ),
        ),
    ]


def teardown_steps(config: Config, timeout_s: int) -> list[Step]:
    """What a run of the stage may have left when its cleanup could not run (a cancelled run): each backed-up
    database's restored Cluster and Backup, deleted if there. The BackupRepo, the CSI driver and its classes stay,
    as snapshot support does."""
    if not config.backup.enabled:
        return []
    ns = config.namespace
    steps = []
    for d in config.enabled:
        if backupcatalog.method(d.key, config.backup.method(d.key)) is None:
            continue
        restored, backup = restored_name(d), backup_name(d)
        steps.append(
            Step(
                id=f"backup-cleanup:{d.key}",
                title=f"Delete the restored {restored} and Backup {backup}, if there",
                kind=StepKind.BACKUP_CLEANUP,
                database=d.key,
                needs=(),
                commands=(
                    kubectl("delete", CLUSTER_RESOURCE, restored, "-n", ns, "--ignore-not-found", "--wait=false"),
                    kubectl("delete", BACKUP_RESOURCE, backup, "-n", ns, "--ignore-not-found", "--wait=false"),
                ),
                done_when=(
                    Wait(f"{CLUSTER_RESOURCE}/{restored}", ns, "delete"),
                    Wait(f"{BACKUP_RESOURCE}/{backup}", ns, "delete"),
                ),
                timeout_s=timeout_s,
                stage=STAGE,
            )
        )
    return steps


MARKER_MARGIN_S = 300
"""A marker step's time beyond the suite's own limit (`timeouts.smoke`): reaching the database (its forward, its
account) and installing the suite's container."""


def _dataprotection_logs(kb_ns: str) -> Diagnostic:
    return Diagnostic(
        "kubeblocks-dataprotection.log",
        kubectl("-n", kb_ns, "logs", "deploy/kubeblocks-dataprotection", "--all-containers", "--tail=2000"),
    )


def _yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False)
