"""What a run produced, step by step and database by database: the only input of the reports.

Serialised with `to_json` / `from_json` (results.json), so a saved run can be rendered again.
No field ever holds a secret value: Secrets are named, never read into Results.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from enum import Enum, StrEnum
from typing import Any, TypeVar, Union

RESULTS_SCHEMA_VERSION = 1
_T = TypeVar("_T")


class ResultsFormatError(ValueError):
    """A results.json that is not a dbstack RunResults of this schema version; the message names the field."""


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    """Not needed: already present and verified (steps), or deliberately not run (checks)."""
    NOT_RUN = "not_run"
    """A step it needs failed, or the run was cancelled before it started."""
    CANCELLED = "cancelled"

    @property
    def ok(self) -> bool:
        return self in (Outcome.PASSED, Outcome.SKIPPED)


@dataclass
class Finding:
    """Why a database did not come up, in the cluster's own words: read from its pods, events and logs after the
    failure. Added within schema version 1 (results.json written before it have none)."""

    subject: str
    """What it is about: `pod/<name> container <container>`, `pod/<name>`, or another object (`cluster/<name>`)."""
    reason: str
    """Kubernetes' reason: ImagePullBackOff, OOMKilled, CrashLoopBackOff, FailedScheduling, Unhealthy (a failed
    probe), ..."""
    message: str
    """Its message, one line, with the image for a pull failure and the exit code for a crash."""
    event: str | None = None
    """The event that explains it (`Failed: Failed to pull image "...": not found`), when there is one."""
    logs: list[str] = field(default_factory=list)
    """The container's last log lines (of its previous run after a crash)."""
    sources: list[str] = field(default_factory=list)
    """Diagnostics files it was read from, relative to the report folder."""


@dataclass
class StepResult:
    id: str
    title: str
    kind: str
    database: str | None
    outcome: Outcome
    started_at: float | None = None
    """Unix time, seconds."""
    ended_at: float | None = None
    cause: str | None = None
    """Plain words, most useful line first (e.g. "pg-cluster-postgresql-1 Pending: Insufficient cpu")."""
    diagnostics: list[str] = field(default_factory=list)
    """Paths relative to the report folder, e.g. diagnostics/postgresql/pods.txt."""
    attempts: int = 0
    """How many times its commands were tried: 1, plus one per retry (0 when its work was already there)."""
    notes: list[str] = field(default_factory=list)
    """What the run did beyond the plan's commands, one line each (a Helm release a killed helm left pending, freed)."""
    facts: dict[str, str] = field(default_factory=dict)
    """What the step read off the cluster once done (a Backup's `size` and `duration`, as KubeBlocks reports them)."""
    stage: str | None = None
    """The stage it belongs to (`backup`), run on deployed databases; None for the deployment's own steps."""
    findings: list[Finding] = field(default_factory=list)
    """For a failed database: the concrete reasons read from the cluster after the failure, most telling first."""

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass
class CheckResult:
    """One smoke check (one JUnit test case of the smoke suite)."""

    database: str
    name: str
    outcome: Outcome
    duration_s: float = 0.0
    message: str | None = None


@dataclass
class DatabaseResult:
    key: str
    title: str
    release: str
    namespace: str
    chart_version: str
    version: str
    mode: str | None
    replicas: int
    service: str
    port: int
    secret: str | None
    """The Secret's name; its values are never read into Results."""
    outcome: Outcome = Outcome.NOT_RUN
    ready_after_s: float | None = None
    """Seconds from the cluster's install to Running."""
    checks: list[CheckResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What the smoke suite found working but worth knowing (e.g. a client/server version skew)."""

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"


UPGRADE_STEP_PREFIX = "upgrade:"
"""The ids of the upgrade stage's steps start with this (plan/upgrade.py PREFIX); the others are the base's."""


def in_upgrade_stage(step: StepResult) -> bool:
    return step.id.startswith(UPGRADE_STEP_PREFIX)


@dataclass
class ReleaseChangeResult:
    """One release of an upgrade: what the change did to it (plan/upgrade.py ReleaseChange)."""

    id: str
    name: str
    database: str | None
    action: str
    """upgrade, unchanged, install (enabled by the change) or left (disabled by it, left as it was)."""
    before: str | None
    after: str | None
    diff: list[str] = field(default_factory=list)


@dataclass
class Survival:
    """Whether a database's marker data, written before the upgrade, read back unchanged after it."""

    database: str
    outcome: Outcome
    """passed: read back; failed: missing or changed; skipped: not checked (the message says why)."""
    message: str | None = None


@dataclass
class UpgradeResults:
    """What an upgrade test adds to a run: where the base came from, what changed, and what survived."""

    base_values: str
    changes: list[ReleaseChangeResult] = field(default_factory=list)
    cautions: list[str] = field(default_factory=list)
    started_at: float | None = None
    """When the upgrade stage started (its marker writers first, then the upgrades); the base's deployment came
    before."""
    survival: list[Survival] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(s.outcome.ok for s in self.survival)


@dataclass
class BackupResult:
    """One database in the backup stage: backed up, restored into a new Cluster, its markers read back from it."""

    database: str
    title: str
    method: str | None
    """None: left out of the stage, for `cause`."""
    outcome: Outcome = Outcome.NOT_RUN
    """passed when every step of it passed (cleanup included); skipped when left out."""
    cause: str | None = None
    backup: str | None = None
    policy: str | None = None
    restored: str | None = None
    backup_s: float | None = None
    """From the Backup's creation to Completed, as the run saw it."""
    size: str | None = None
    """The Backup's totalSize, as KubeBlocks reports it."""
    duration: str | None = None
    """The Backup's duration, as KubeBlocks reports it."""
    restore_s: float | None = None
    """From the restored Cluster's creation to Running with its data restored."""
    markers_written: Outcome = Outcome.NOT_RUN
    markers_read_back: Outcome = Outcome.NOT_RUN
    """passed: every marker read back from the restored Cluster as written."""


@dataclass
class RunResults:
    run_id: str
    started_at: float
    ended_at: float | None
    cluster_kind: str
    """k3s (inside Dagger), existing (a kubeconfig), or simulated."""
    profile: str | None
    namespace: str
    versions: dict[str, str]
    steps: list[StepResult] = field(default_factory=list)
    installed_versions: dict[str, str] = field(default_factory=dict)
    """What the run found already installed and reused: `kubeblocks`, `<database>Addon` -> version (`unknown`
    when it could not be read)."""
    databases: list[DatabaseResult] = field(default_factory=list)
    smoke_outcome: Outcome = Outcome.NOT_RUN
    smoke_cause: str | None = None
    smoke_started_at: float | None = None
    """Unix time the smoke suite started; with smoke_ended_at it puts the suite on the report's timeline."""
    smoke_ended_at: float | None = None
    upgrade: UpgradeResults | None = None
    """Set by an upgrade test (`upgrade-test`): the base, the changes, the markers and what survived."""
    backups: list[BackupResult] = field(default_factory=list)
    """The backup stage, one entry per enabled database, when it ran."""
    schema_version: int = RESULTS_SCHEMA_VERSION

    @property
    def passed(self) -> bool:
        if any(not s.outcome.ok for s in self.steps):
            return False
        if any(d.outcome is not Outcome.PASSED for d in self.databases):
            return False
        if any(not c.outcome.ok for d in self.databases for c in d.checks):
            return False
        if self.upgrade is not None and not self.upgrade.passed:
            return False
        return self.smoke_outcome in (Outcome.PASSED, Outcome.SKIPPED)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        plain: dict[str, Any] = _plain(data)
        return plain

    @classmethod
    def from_json(cls, data: Any) -> RunResults:
        """The inverse of `to_json`; raises ResultsFormatError naming the first field that does not fit."""
        if not isinstance(data, dict):
            raise ResultsFormatError(f"expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != RESULTS_SCHEMA_VERSION:
            raise ResultsFormatError(f"results schema_version {_short(version)} is not {RESULTS_SCHEMA_VERSION}")
        return _build(cls, {k: v for k, v in data.items() if k != "passed"}, "results")


def _build(cls: type[_T], data: Any, where: str) -> _T:
    if not isinstance(data, dict):
        raise ResultsFormatError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ResultsFormatError(f"{where}: unknown field {_short(unknown[0])}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ResultsFormatError(f"{where}: missing field {name!r}")
    return cls(**values)


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _convert(value, inner, where)
    if origin is list:
        if not isinstance(value, list):
            raise ResultsFormatError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ResultsFormatError(f"{where}: expected an object, got {type(value).__name__}")
        key_type, value_type = typing.get_args(hint)
        return {_convert(k, key_type, where): _convert(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in hint)
            raise ResultsFormatError(f"{where}: {_short(value)} is not one of {allowed}") from None
    if isinstance(hint, type) and is_dataclass(hint):
        return _build(hint, value, where)
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: Any, where: str) -> Any:
    accepted: tuple[type, ...] = (int, float) if hint is float else (hint,)
    if (isinstance(value, bool) and hint is not bool) or not isinstance(value, accepted):
        raise ResultsFormatError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
    return value


def _short(value: Any, limit: int = 60) -> str:
    """A value for an error message: repr, one line, cut short (a results file may hold anything)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
