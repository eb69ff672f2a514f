"""Reading the backup stage's objects as kubectl prints them: what a StorageClass, VolumeSnapshotClass and CSIDriver
answer, and how the Restores of a restored cluster are going."""

from __future__ import annotations

import json
from typing import Any

from dbstack.plan.model import SnapshotSupport
from dbstack.run import backupchecks

SUPPORT = SnapshotSupport("csi-hostpath-sc", "csi-hostpath-snapclass", ("postgresql", "mysql"))


def restores(*items: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def restore(name: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status or {}}


def test_the_commands_read_the_named_objects() -> None:
    assert backupchecks.storage_class_command(SUPPORT).argv == (
        "kubectl",
        "get",
        "storageclass",
        "csi-hostpath-sc",
        "-o",
        "json",
    )
    assert backupchecks.snapshot_class_command(SUPPORT).argv == (
        "kubectl",
        "get",
        "volumesnapshotclass",
        "csi-hostpath-snapclass",
        "-o",
        "json",
    )
    assert backupchecks.csi_driver_command("hostpath.csi.k8s.io").argv == (
        "kubectl",
        "get",
        "csidriver",
        "hostpath.csi.k8s.io",
        "-o",
        "name",
    )
    command = backupchecks.restores_command("dbstack", "app.kubernetes.io/instance=pg-cluster-r")
    assert command.argv == (
        "kubectl",
        "-n",
        "dbstack",
        "get",
        "restores.dataprotection.kubeblocks.io",
        "-l",
        "app.kubernetes.io/instance=pg-cluster-r",
        "-o",
        "json",
    )
    assert command.routine is True


def test_a_missing_or_provisionerless_storage_class_says_why() -> None:
    assert backupchecks.storage_class_problem(SUPPORT, False, "") == (
        "StorageClass csi-hostpath-sc (backup.storageClass) does not exist; the volume-snapshot backups of "
        "postgresql, mysql need it: name a StorageClass of a CSI driver that can snapshot",
        None,
    )
    assert backupchecks.storage_class_problem(SUPPORT, True, '{"provisioner": ""}') == (
        "StorageClass csi-hostpath-sc names no provisioner",
        None,
    )
    found = '{"kind": "StorageClass", "provisioner": "hostpath.csi.k8s.io"}'
    assert backupchecks.storage_class_problem(SUPPORT, True, found) == (None, "hostpath.csi.k8s.io")


def test_a_snapshot_class_must_exist_and_be_the_provisioners() -> None:
    assert backupchecks.snapshot_class_problem(SUPPORT, False, "", "hostpath.csi.k8s.io") == (
        "VolumeSnapshotClass csi-hostpath-snapclass (backup.snapshotClass) does not exist; the volume-snapshot "
        "backups of postgresql, mysql need it: name one for driver hostpath.csi.k8s.io"
    )
    assert backupchecks.snapshot_class_problem(
        SUPPORT, True, '{"driver": "ebs.csi.aws.com"}', "hostpath.csi.k8s.io"
    ) == (
        "VolumeSnapshotClass csi-hostpath-snapclass is for driver ebs.csi.aws.com, but StorageClass csi-hostpath-sc "
        "provisions with hostpath.csi.k8s.io: its volumes could not be snapshotted"
    )
    same = '{"driver": "hostpath.csi.k8s.io"}'
    assert backupchecks.snapshot_class_problem(SUPPORT, True, same, "hostpath.csi.k8s.io") is None


def test_a_provisioner_without_a_csi_driver_object_cannot_snapshot() -> None:
    assert backupchecks.csi_driver_problem(SUPPORT, False, "rancher.io/local-path") == (
        "StorageClass csi-hostpath-sc provisions with rancher.io/local-path, which is not a CSI driver (no CSIDriver "
        "object): it cannot snapshot, and the volume-snapshot backups of postgresql, mysql need it"
    )
    assert backupchecks.csi_driver_problem(SUPPORT, True, "hostpath.csi.k8s.io") is None


def test_restores_are_summed_up_by_phase() -> None:
    state = backupchecks.restore_state(
        restores(restore("r-preparedata", {"phase": "Completed"}), restore("r-postready", {}), {"status": None})
    )
    assert state == backupchecks.RestoreState(
        "restores: r-preparedata Completed; r-postready without a phase yet; restore without a phase yet", None
    )
    assert backupchecks.restore_state(restores()) == backupchecks.RestoreState("", None)
    assert backupchecks.restore_state("") == backupchecks.RestoreState("", None)


def test_a_failed_restore_says_its_failed_actions_message() -> None:
    failed = {
        "phase": "Failed",
        "actions": {
            "prepareData": [{"name": "dp-prepare", "status": "Completed", "message": "fine"}],
            "postReady": [
                {"name": "dp-post", "status": "Running"},
                {"name": "dp-post-ready", "status": "Failed", "message": "exit code 1: psql: connection refused"},
            ],
        },
        "conditions": [{"type": "ValidationPassed", "status": "False", "message": "not this one"}],
    }
    state = backupchecks.restore_state(restores(restore("r-a", {"phase": "Completed"}), restore("r-b", failed)))
    assert state.summary == "restores: r-a Completed; r-b Failed"
    assert state.failed == "Restore r-b Failed: postReady dp-post-ready: exit code 1: psql: connection refused"


def test_a_failed_restore_without_a_failed_action_says_a_false_conditions_message() -> None:
    failed = {
        "phase": "Failed",
        "actions": {"prepareData": [{"name": "x", "status": "Failed"}]},
        "conditions": [
            {"type": "Ready", "status": "True", "message": "ignored"},
            {"type": "ValidationPassed", "status": "False", "message": 'backup "b-1" not found'},
        ],
    }
    state = backupchecks.restore_state(restores(restore("r-a", failed)))
    assert state.failed == 'Restore r-a Failed: backup "b-1" not found'


def test_a_failed_restore_that_says_nothing_points_at_describe() -> None:
    state = backupchecks.restore_state(restores(restore("r-a", {"phase": "Failed"})))
    assert state.failed == "Restore r-a Failed: no message (kubectl describe it)"


def test_a_failed_prepare_data_action_without_a_name_says_its_stage() -> None:
    failed = {
        "phase": "Failed",
        "actions": {"prepareData": [{"status": "Failed", "message": "volume snapshot not ready"}]},
    }
    state = backupchecks.restore_state(restores(restore("r-a", failed)))
    assert state.failed == "Restore r-a Failed: prepareData: volume snapshot not ready"


def test_a_storage_class_answer_that_is_not_an_object_names_no_provisioner() -> None:
    for answer in ("Warning: v1 StorageClass is deprecated", '["hostpath.csi.k8s.io"]'):
        assert backupchecks.storage_class_problem(SUPPORT, True, answer) == (
            "StorageClass csi-hostpath-sc names no provisioner",
            None,
        )
