"""What a run produced, step by step and database by database: the only input of the reports.

Serialised with `to_json` / `from_json` (results.json), so a saved run can be rendered again.
No field ever holds a secret value: Secrets are named, never read into Results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any

RESULTS_SCHEMA_VERSION = 1


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

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"


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
    databases: list[DatabaseResult] = field(default_factory=list)
    smoke_outcome: Outcome = Outcome.NOT_RUN
    smoke_cause: str | None = None
    schema_version: int = RESULTS_SCHEMA_VERSION

    @property
    def passed(self) -> bool:
        if any(not s.outcome.ok for s in self.steps):
            return False
        if any(d.outcome is not Outcome.PASSED for d in self.databases):
            return False
        if any(c.outcome in (Outcome.FAILED,) for d in self.databases for c in d.checks):
            return False
        return self.smoke_outcome in (Outcome.PASSED, Outcome.SKIPPED)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        plain: dict[str, Any] = _plain(data)
        return plain

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResults:
        version = data.get("schema_version")
        if version != RESULTS_SCHEMA_VERSION:
            raise ValueError(f"results schema_version {version!r} is not {RESULTS_SCHEMA_VERSION}")
        steps = [StepResult(**{**s, "outcome": Outcome(s["outcome"])}) for s in data.get("steps", [])]
        databases = []
        for d in data.get("databases", []):
            checks = [CheckResult(**{**c, "outcome": Outcome(c["outcome"])}) for c in d.get("checks", [])]
            databases.append(DatabaseResult(**{**d, "outcome": Outcome(d["outcome"]), "checks": checks}))
        fields = {k: v for k, v in data.items() if k not in ("steps", "databases", "passed")}
        fields["smoke_outcome"] = Outcome(fields.get("smoke_outcome", "not_run"))
        return cls(**fields, steps=steps, databases=databases)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
