"""Reading the backup stage's objects: whether a StorageClass can snapshot, and how a restore is going.

KubeBlocks 1.0.1 snapshots a volume with the first VolumeSnapshotClass whose driver is the volume's CSI driver
(pkg/dataprotection/utils/volumesnapshot.go IsVolumeSnapshotEnabled); a volume of a provisioner that is not CSI
(k3s's rancher.io/local-path) cannot be snapshotted at all, and its Backup fails with "cannot find any
VolumeSnapshotClass of persistentVolumeClaim ...". So before any volume is made: the StorageClass exists, its
provisioner is a CSI driver (a CSIDriver object of that name), and the configured VolumeSnapshotClass is that
driver's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbstack.plan.model import Command, SnapshotSupport, kubectl
from dbstack.run.kube import parse_json

RESTORE_RESOURCE = "restores.dataprotection.kubeblocks.io"


def storage_class_command(support: SnapshotSupport) -> Command:
    return kubectl("get", "storageclass", support.storage_class, "-o", "json")


def snapshot_class_command(support: SnapshotSupport) -> Command:
    return kubectl("get", "volumesnapshotclass", support.snapshot_class, "-o", "json")


def csi_driver_command(driver: str) -> Command:
    return kubectl("get", "csidriver", driver, "-o", "name")


def _needed_by(support: SnapshotSupport) -> str:
    return f"the volume-snapshot backups of {', '.join(support.databases)} need it"


def storage_class_problem(support: SnapshotSupport, found: bool, stdout: str) -> tuple[str | None, str | None]:
    """(why the StorageClass will not do, its provisioner)."""
    if not found:
        return (
            f"StorageClass {support.storage_class} (backup.storageClass) does not exist; {_needed_by(support)}: "
            "name a StorageClass of a CSI driver that can snapshot",
            None,
        )
    provisioner = _field(stdout, "provisioner")
    if provisioner is None:
        return f"StorageClass {support.storage_class} names no provisioner", None
    return None, provisioner


def snapshot_class_problem(support: SnapshotSupport, found: bool, stdout: str, provisioner: str) -> str | None:
    if not found:
        return (
            f"VolumeSnapshotClass {support.snapshot_class} (backup.snapshotClass) does not exist; "
            f"{_needed_by(support)}: name one for driver {provisioner}"
        )
    driver = _field(stdout, "driver")
    if driver != provisioner:
        return (
            f"VolumeSnapshotClass {support.snapshot_class} is for driver {driver}, but StorageClass "
            f"{support.storage_class} provisions with {provisioner}: its volumes could not be snapshotted"
        )
    return None


def csi_driver_problem(support: SnapshotSupport, found: bool, provisioner: str) -> str | None:
    if found:
        return None
    return (
        f"StorageClass {support.storage_class} provisions with {provisioner}, which is not a CSI driver (no CSIDriver "
        f"object): it cannot snapshot, and {_needed_by(support)}"
    )


def _field(stdout: str, key: str) -> str | None:
    data = parse_json(stdout)
    value = data.get(key) if isinstance(data, Mapping) else None
    return str(value) if isinstance(value, str) and value else None


# --- restores ----------------------------------------------------------------------------------------------------


def restores_command(namespace: str, selector: str) -> Command:
    return Command(("kubectl", "-n", namespace, "get", RESTORE_RESOURCE, "-l", selector, "-o", "json"), routine=True)


@dataclass(frozen=True)
class RestoreState:
    summary: str
    """E.g. "restores: pg-cluster-r-postgresql-4f2a-preparedata Running"; "" when there are none (yet)."""
    failed: str | None
    """A Restore that Failed, in its own words: KubeBlocks does not retry one (it asks to re-restore the cluster)."""


def restore_state(restores_json: str) -> RestoreState:
    data = parse_json(restores_json)
    items = data.get("items") if isinstance(data, Mapping) else None
    restores = [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []
    phases = []
    for restore in restores:
        name = str((restore.get("metadata") or {}).get("name", "restore"))
        status = restore.get("status") or {}
        phase = str(status.get("phase") or "without a phase yet")
        phases.append(f"{name} {phase}")
        if phase == "Failed":
            return RestoreState(f"restores: {'; '.join(phases)}", f"Restore {name} Failed: {_restore_message(status)}")
    return RestoreState(f"restores: {'; '.join(phases)}" if phases else "", None)


def _restore_message(status: Mapping[str, Any]) -> str:
    """The failed action's message, else a False condition's, else a plain note."""
    actions = status.get("actions") or {}
    for stage in ("prepareData", "postReady"):
        for action in actions.get(stage) or []:
            if isinstance(action, Mapping) and action.get("status") == "Failed" and action.get("message"):
                name = action.get("name")
                return f"{stage} {name}: {action['message']}" if name else f"{stage}: {action['message']}"
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("status") == "False" and condition.get("message"):
            return str(condition["message"])
    return "no message (kubectl describe it)"
