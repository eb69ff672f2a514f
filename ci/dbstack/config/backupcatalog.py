"""What each database's 1.0.1 addon can back up and restore: its BackupPolicyTemplate's methods, in one table.

KubeBlocks generates one BackupPolicy per Cluster component whose ComponentDefinition a BackupPolicyTemplate names
(`<cluster>-<component>-backup-policy`); a Backup names that policy and one of its methods. The runtime cannot
render the addon charts, so the methods are written down here; tests/test_upstream_backup.py proves this table
equal to the addons' render (method names, whether they snapshot volumes, their ActionSets' backup types, which
component's policy holds them, and which method's script needs an S3-compatible repository).
"""

from __future__ import annotations

from dataclasses import dataclass

SNAPSHOT = "snapshot"
"""Volume snapshots: a CSI StorageClass whose driver can snapshot, its VolumeSnapshotClass, the snapshot controller."""
REPO = "repo"
"""A BackupRepo (any StorageProvider, `pvc` included): the method's job writes files into it."""
S3_REPO = "s3-repo"
"""An S3-compatible BackupRepo reached as a tool (`accessMethod: Tool`): the method's script reads its endpoint and
keys from the repo's datasafed configuration."""
NONE = "none"
"""The `backup.methods` value of a database left out of the backup stage."""
NO_TEMPLATE = "not supported by the 1.0.1 addon (it ships no BackupPolicyTemplate)"


@dataclass(frozen=True)
class BackupMethod:
    name: str
    snapshot_volumes: bool
    action_set: str | None
    """The ActionSet that runs it; None for a volume snapshot."""
    backup_type: str | None
    """The ActionSet's backupType (Full, Incremental, Continuous); None for a volume snapshot."""
    needs: str
    """SNAPSHOT, REPO or S3_REPO."""
    refused: str | None = None
    """Why the backup stage cannot run it (it takes one full backup and restores a new cluster from it)."""


_INCREMENTAL = "an incremental backup needs a full one as its parent; the stage takes one full backup"
_CONTINUOUS = "a continuous (point-in-time) method archives logs beside a full backup; the stage takes one full backup"

BACKUP_COMPONENTS: dict[str, str] = {
    "postgresql": "postgresql",
    "redis": "redis",
    "qdrant": "qdrant",
    "elasticsearch": "mdit",
}
"""Database -> the Cluster component whose generated BackupPolicy a Backup names (and that a restore restores)."""

BACKUP_METHODS: dict[str, tuple[BackupMethod, ...]] = {
    "postgresql": (
        BackupMethod("pg-basebackup", False, "postgresql-basebackup", "Full", REPO),
        BackupMethod("volume-snapshot", True, None, None, SNAPSHOT),
        BackupMethod("wal-g", False, "postgresql-wal-g", "Full", REPO),
        BackupMethod("wal-g-incremental", False, "postgres-wal-g-incremental", "Incremental", REPO, _INCREMENTAL),
        BackupMethod("archive-wal", False, "postgresql-for-pitr", "Continuous", REPO, _CONTINUOUS),
        BackupMethod("wal-g-archive", False, "postgres-wal-g-pitr", "Continuous", REPO, _CONTINUOUS),
    ),
    "redis": (
        BackupMethod("datafile", False, "redis-physical-br", "Full", REPO),
        BackupMethod("aof", False, "redis-for-pitr", "Continuous", REPO, _CONTINUOUS),
        BackupMethod("volume-snapshot", True, None, None, SNAPSHOT),
        BackupMethod(
            "backup-for-rebuild-instance",
            False,
            "redis-for-rebuild-instance",
            "Full",
            REPO,
            "made for KubeBlocks' instance rebuild (its env sets REBUILD_CLUSTER_INSTANCE=true), not a cluster restore",
        ),
    ),
    "qdrant": (BackupMethod("datafile", False, "qdrant-snapshot-br", "Full", REPO),),
    "elasticsearch": (BackupMethod("full-backup", False, "elasticsearch-physical-br", "Full", S3_REPO),),
    "neo4j": (),
}
"""Database -> the methods of its addon's BackupPolicyTemplate, in the template's order."""


def methods(key: str) -> tuple[BackupMethod, ...]:
    return BACKUP_METHODS.get(key, ())


def method(key: str, name: str) -> BackupMethod | None:
    return next((m for m in methods(key) if m.name == name), None)


def backup_policy(release: str, key: str) -> str:
    """The BackupPolicy KubeBlocks 1.0.1 generates for the database's component (controllers/dataprotection/
    backuppolicydriver_controller.go generateBackupPolicyName)."""
    return f"{release}-{BACKUP_COMPONENTS[key]}-backup-policy"
