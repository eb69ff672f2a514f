"""Hand-built RunResults for the report tests: shaped like real runs, every value chosen here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dbstack.run.results import (
    CheckResult,
    DatabaseResult,
    Finding,
    Outcome,
    ReleaseChangeResult,
    RunResults,
    StepResult,
    Survival,
    UpgradeResults,
)

RUN_START = 1_790_000_000.0
PENDING_CAUSE = "pg-cluster-postgresql-1 Pending: 0/1 nodes are available: 1 Insufficient cpu"
ABNORMAL_CAUSE = "Cluster redis-cluster is Abnormal: redis-cluster-redis-0 CrashLoopBackOff"
REDIS_FINDING = Finding(
    subject="pod/redis-cluster-redis-0 container redis",
    reason="OOMKilled",
    message="killed for using more memory than its limit (exit code 137); restarted 3 times; now CrashLoopBackOff",
    event="BackOff: Back-off restarting failed container redis in pod redis-cluster-redis-0_default",
    logs=["1:M 01 Jan 2026 00:00:01.000 * Ready to accept connections tcp"],
    sources=["diagnostics/redis/pods.txt", "diagnostics/redis/events.txt"],
)


@dataclass(frozen=True)
class Db:
    key: str
    title: str
    release: str
    service_suffix: str
    port: int
    secret: str | None
    version: str
    mode: str | None
    replicas: int


DATABASES = (
    Db(
        "postgresql", "PostgreSQL", "pg-cluster", "-postgresql-postgresql", 5432, "postgres", "16.4.0", "replication", 2
    ),
    Db("redis", "Redis", "redis-cluster", "-redis-redis", 6379, "default", "7.2.7", "standalone", 1),
    Db("qdrant", "Qdrant", "qdrant-cluster", "-qdrant-qdrant", 6333, None, "1.10.0", None, 1),
    Db("elasticsearch", "Elasticsearch", "es-cluster", "-mdit-http", 9200, "elastic", "8.8.2", "single-node", 1),
)
CHECK_NAMES = {
    "postgresql": ("test_vector_extension_is_installed", "test_upsert_on_conflict_updates_chunk", "test_rollback"),
    "redis": ("test_set_get_with_ttl_expires", "test_db0_and_db1_are_kept_apart"),
    "qdrant": ("test_create_cosine_collection", "test_top1_search_returns_the_nearest_point"),
    "elasticsearch": ("test_cluster_health_is_green_or_yellow", "test_ik_analysis_plugin_tokenizes_chinese"),
}
PLATFORM_STEPS = (
    ("snapshot-crds", "Install VolumeSnapshot CRDs (v8.2.0)", "snapshot-crds"),
    ("snapshot-controller", "Install the snapshot controller (v8.2.0)", "snapshot-controller"),
    ("kubeblocks-crds", "Install KubeBlocks CRDs (v1.0.1)", "kubeblocks-crds"),
    ("kubeblocks", "Install KubeBlocks 1.0.1", "kubeblocks"),
)


class Clock:
    """Hands out consecutive step times, so every sample's timeline is monotone by construction."""

    def __init__(self) -> None:
        self.now = RUN_START

    def span(self, seconds: float) -> tuple[float, float]:
        start = self.now
        self.now += seconds
        return start, self.now


def database_result(db: Db, outcome: Outcome, checks: list[CheckResult]) -> DatabaseResult:
    ready_after = 95.5 if outcome is Outcome.PASSED else None
    return DatabaseResult(
        key=db.key,
        title=db.title,
        release=db.release,
        namespace="default",
        chart_version="1.0.1",
        version=db.version,
        mode=db.mode,
        replicas=db.replicas,
        service=f"{db.release}{db.service_suffix}",
        port=db.port,
        secret=f"{db.release}-{db.key}-account-{db.secret}" if db.secret else None,
        outcome=outcome,
        ready_after_s=ready_after,
        checks=checks,
    )


def passing_checks(key: str) -> list[CheckResult]:
    return [CheckResult(key, name, Outcome.PASSED, 0.25) for name in CHECK_NAMES[key]]


def platform_steps(
    clock: Clock, skipped: tuple[str, ...] = ("snapshot-crds", "snapshot-controller")
) -> list[StepResult]:
    steps = []
    for step_id, title, kind in PLATFORM_STEPS:
        outcome = Outcome.SKIPPED if step_id in skipped else Outcome.PASSED
        start, end = clock.span(0.4 if outcome is Outcome.SKIPPED else 30.0)
        steps.append(StepResult(step_id, title, kind, None, outcome, start, end, attempts=1))
    return steps


def database_steps(clock: Clock, db: Db, cluster: Outcome, cause: str | None = None) -> list[StepResult]:
    addon_start, addon_end = clock.span(12.0)
    cluster_start, cluster_end = clock.span(95.5 if cluster is Outcome.PASSED else 600.0)
    diagnostics = [f"diagnostics/{db.key}/{name}" for name in ("pods.txt", "events.txt", "nodes.txt")]
    return [
        StepResult(
            f"addon:{db.key}",
            f"Install addon {db.key} 1.0.1",
            "addon",
            db.key,
            Outcome.PASSED,
            addon_start,
            addon_end,
            attempts=1,
        ),
        StepResult(
            f"cluster:{db.key}",
            f"Deploy {db.title} ({db.release}) and wait until Running",
            "cluster",
            db.key,
            cluster,
            cluster_start,
            cluster_end,
            cause=cause,
            diagnostics=diagnostics if not cluster.ok else [],
            attempts=1,
        ),
    ]


def new_run(clock: Clock, steps: list[StepResult], databases: list[DatabaseResult]) -> RunResults:
    return RunResults(
        run_id="run-20260926-1",
        started_at=RUN_START,
        ended_at=None,
        cluster_kind="k3s",
        profile="ci",
        namespace="default",
        versions={"kubeblocks": "1.0.1", "snapshotter": "v8.2.0", **{d.key: d.version for d in DATABASES}},
        steps=steps,
        databases=databases,
    )


def with_smoke(results: RunResults, clock: Clock, outcome: Outcome, cause: str | None = None) -> RunResults:
    results.smoke_started_at, results.smoke_ended_at = clock.span(20.0)
    results.smoke_outcome = outcome
    results.smoke_cause = cause
    results.ended_at = clock.now
    return results


def successful_run() -> RunResults:
    clock = Clock()
    steps = platform_steps(clock)
    for db in DATABASES:
        steps += database_steps(clock, db, Outcome.PASSED)
    databases = [database_result(db, Outcome.PASSED, passing_checks(db.key)) for db in DATABASES]
    databases[2].checks.append(CheckResult("qdrant", "test_grpc_port", Outcome.SKIPPED, 0.0, "gRPC not exposed"))
    return with_smoke(new_run(clock, steps, databases), clock, Outcome.PASSED)


def failed_run() -> RunResults:
    """PostgreSQL times out on a Pending pod (Insufficient cpu), Redis turns Abnormal, one Qdrant check fails."""
    clock = Clock()
    steps = platform_steps(clock)
    outcomes = {
        "postgresql": (Outcome.TIMED_OUT, f"{PENDING_CAUSE}\nwaited 600s for clusters.apps.kubeblocks.io/pg-cluster"),
        "redis": (Outcome.FAILED, ABNORMAL_CAUSE),
    }
    databases = []
    for db in DATABASES:
        outcome, cause = outcomes.get(db.key, (Outcome.PASSED, None))
        steps += database_steps(clock, db, outcome, cause)
        checks = passing_checks(db.key) if outcome is Outcome.PASSED else []
        databases.append(database_result(db, outcome, checks))
    databases[2].checks[1] = CheckResult(
        "qdrant", CHECK_NAMES["qdrant"][1], Outcome.FAILED, 1.5, "AssertionError: nearest point was 7, expected 3"
    )
    redis = next(s for s in steps if s.id == "cluster:redis")
    redis.findings = [REDIS_FINDING]
    return with_smoke(new_run(clock, steps, databases), clock, Outcome.FAILED, "1 check failed")


def cancelled_run() -> RunResults:
    """Cancelled while KubeBlocks was installing: every later step and database not run."""
    clock = Clock()
    steps = platform_steps(clock)
    steps[-1].outcome = Outcome.CANCELLED
    steps[-1].cause = "cancelled by the user (SIGINT)"
    for db in DATABASES:
        for step in database_steps(clock, db, Outcome.NOT_RUN):
            steps.append(
                StepResult(
                    step.id,
                    step.title,
                    step.kind,
                    step.database,
                    Outcome.NOT_RUN,
                    cause="needs kubeblocks, which was cancelled",
                )
            )
    databases = [database_result(db, Outcome.NOT_RUN, []) for db in DATABASES]
    results = new_run(clock, steps, databases)
    results.ended_at = steps[3].ended_at
    results.smoke_outcome = Outcome.NOT_RUN
    return results


def empty_run() -> RunResults:
    """No database enabled: only the platform steps run."""
    clock = Clock()
    results = new_run(clock, platform_steps(clock, skipped=()), [])
    results.ended_at = clock.now
    results.smoke_outcome = Outcome.SKIPPED
    return results


UPGRADE_CAUSE = "redis-cluster-redis-0 CrashLoopBackOff: back-off 10s restarting failed container=redis"


def upgraded_run() -> RunResults:
    """An upgrade test: the base deployed, each database's markers written, PostgreSQL upgraded and its markers read
    back, Redis' upgrade broken (its markers then not read back), Qdrant and Elasticsearch unchanged."""
    clock = Clock()
    steps = platform_steps(clock)
    for db in DATABASES:
        steps += database_steps(clock, db, Outcome.PASSED)
    upgrade_start = clock.now

    def stage_step(step_id: str, title: str, kind: str, db: Db, outcome: Outcome, cause: str | None = None) -> None:
        start, end = clock.span(80.0 if kind == "cluster" else 12.0)
        ran = outcome is not Outcome.NOT_RUN
        steps.append(
            StepResult(
                step_id,
                title,
                kind,
                db.key,
                outcome,
                start if ran else None,
                end if ran else None,
                cause=cause,
                diagnostics=[f"diagnostics/{db.key}/logs-previous.txt"] if outcome is Outcome.FAILED else [],
                attempts=1 if ran else 0,
            )
        )

    for db in DATABASES:
        stage_step(
            f"upgrade:markers-write:{db.key}",
            f"Write marker data into {db.title} ({db.release})",
            "markers",
            db,
            Outcome.PASSED,
        )
    pg, redis = DATABASES[0], DATABASES[1]
    stage_step(
        "upgrade:cluster:postgresql",
        f"Upgrade {pg.title} ({pg.release}) and wait until Running with the new spec",
        "cluster",
        pg,
        Outcome.PASSED,
    )
    stage_step(
        "upgrade:cluster:redis",
        f"Upgrade {redis.title} ({redis.release}) and wait until Running with the new spec",
        "cluster",
        redis,
        Outcome.FAILED,
        UPGRADE_CAUSE,
    )
    for db in DATABASES:
        outcome = Outcome.NOT_RUN if db is redis else Outcome.PASSED
        cause = "not run: upgrade:cluster:redis did not succeed" if db is redis else None
        stage_step(
            f"upgrade:markers-verify:{db.key}",
            f"Read the marker data back from {db.title} ({db.release})",
            "markers",
            db,
            outcome,
            cause,
        )
    databases = [
        database_result(db, Outcome.FAILED if db.key == "redis" else Outcome.PASSED, passing_checks(db.key))
        for db in DATABASES
    ]
    databases[1].checks = []
    results = with_smoke(new_run(clock, steps, databases), clock, Outcome.PASSED)
    results.upgrade = UpgradeResults(
        base_values="base/values",
        changes=[
            ReleaseChangeResult("kubeblocks", "kubeblocks", None, "unchanged", "1.0.1", "1.0.1"),
            ReleaseChangeResult(
                "cluster:postgresql",
                "pg-cluster",
                "postgresql",
                "upgrade",
                "chart 1.0.1, PostgreSQL 16.4.0",
                "chart 1.0.1, PostgreSQL 16.9.0",
                ['~ version: "16.4.0" -> "16.9.0"'],
            ),
            ReleaseChangeResult(
                "cluster:redis",
                "redis-cluster",
                "redis",
                "upgrade",
                "chart 1.0.1, Redis 7.2.7",
                "chart 1.0.1, Redis 7.2.7",
                ["~ requests.cpu: 0.1 -> 0.2", "+ extra.disableExporter: false"],
            ),
        ],
        cautions=["redis-cluster's redis volumes grow 1 -> 2 Gi: needs allowVolumeExpansion"],
        started_at=upgrade_start,
        survival=[
            Survival("postgresql", Outcome.PASSED),
            Survival("redis", Outcome.FAILED, f"its markers were not read back: Upgrade Redis failed: {UPGRADE_CAUSE}"),
            Survival("qdrant", Outcome.PASSED),
            Survival("elasticsearch", Outcome.PASSED),
        ],
    )
    return results


def backup_run() -> RunResults:
    """The `full` profile's backup stage on the simulated cluster: PostgreSQL and Qdrant restored and read back,
    Redis's Backup failing with its own reason, Elasticsearch left out; the smoke suite passing afterwards."""
    import tempfile

    from dbstack.config.validate import validate
    from dbstack.plan.backup import ON_K3S
    from dbstack.plan.build import build_plan
    from dbstack.sim.backups import BackupScenario, SimMarkers
    from dbstack.sim.cluster import Scenario, SimCluster, run_simulated

    plan = build_plan(validate(Path(__file__).resolve().parents[1] / "values", "full").config, ON_K3S)
    scenario = Scenario(backup=BackupScenario(backup_failures={"redis": "failed to create volume snapshot: no space"}))
    sim = SimCluster(scenario, epoch=RUN_START)
    with tempfile.TemporaryDirectory() as out:
        results = run_simulated(plan, sim, Path(out), epoch=RUN_START, markers=SimMarkers(sim))
    results.run_id = "20260918T120000Z-b4c5d6"
    for database in results.databases:
        database.checks.extend(passing_checks(database.key))
    assert results.ended_at is not None
    results.smoke_started_at, results.smoke_ended_at = results.ended_at, results.ended_at + 20.0
    results.smoke_outcome = Outcome.PASSED
    results.ended_at = results.smoke_ended_at
    return results


ES_ADDON_CAUSE = "Error: INSTALLATION FAILED: chart kb-addon-elasticsearch 1.0.1 not found in the repository"
QDRANT_CHECKS = (
    ("test_create_cosine_collection", Outcome.PASSED, None),
    ("test_upsert_points", Outcome.PASSED, None),
    ("test_top1_search_returns_the_nearest_point", Outcome.FAILED, "AssertionError: nearest point was 7, expected 3"),
    ("test_payload_filter", Outcome.FAILED, "AssertionError: filter matched 0 points, expected 2\nassert 0 == 2"),
    ("test_grpc_port", Outcome.SKIPPED, "gRPC not exposed"),
    ("test_delete_collection", Outcome.PASSED, None),
)


def counted_run() -> RunResults:
    """A run with every outcome in known numbers, spelled out here so tests can assert them literally.

    Steps (12): 5 passed, 2 failed, 1 timed out, 3 skipped, 1 not run, 0 cancelled.
    Databases (4): PostgreSQL timed out (Pending), Redis failed (Abnormal), Elasticsearch failed (its addon),
    Qdrant ready. Checks (6, all Qdrant's): 3 passed, 2 failed, 1 skipped. The smoke suite failed.
    """
    pg, redis, qdrant, es = DATABASES

    def step(
        step_id: str,
        title: str,
        kind: str,
        database: str | None,
        outcome: Outcome,
        start: float,
        end: float | None,
        cause: str | None = None,
    ) -> StepResult:
        ran = end is not None
        return StepResult(
            step_id,
            title,
            kind,
            database,
            outcome,
            RUN_START + start if ran else None,
            RUN_START + end if end is not None else None,
            cause=cause,
            attempts=1 if ran and outcome is not Outcome.SKIPPED else 0,
        )

    steps = [
        step("snapshot-crds", "Install VolumeSnapshot CRDs (v8.2.0)", "snapshot-crds", None, Outcome.SKIPPED, 0, 0.5),
        step(
            "snapshot-controller",
            "Install the snapshot controller (v8.2.0)",
            "snapshot-controller",
            None,
            Outcome.SKIPPED,
            0.5,
            1,
        ),
        step("kubeblocks-crds", "Install KubeBlocks CRDs (v1.0.1)", "kubeblocks-crds", None, Outcome.SKIPPED, 1, 1.5),
        step("kubeblocks", "Install KubeBlocks 1.0.1", "kubeblocks", None, Outcome.PASSED, 1.5, 31.5),
        step("addon:postgresql", "Install addon postgresql 1.0.1", "addon", "postgresql", Outcome.PASSED, 31.5, 43.5),
        step(
            "cluster:postgresql",
            "Deploy PostgreSQL (pg-cluster) and wait until Running",
            "cluster",
            "postgresql",
            Outcome.TIMED_OUT,
            43.5,
            643.5,
            f"{PENDING_CAUSE}\nwaited 600s for clusters.apps.kubeblocks.io/pg-cluster",
        ),
        step("addon:redis", "Install addon redis 1.0.1", "addon", "redis", Outcome.PASSED, 31.5, 43.5),
        step(
            "cluster:redis",
            "Deploy Redis (redis-cluster) and wait until Running",
            "cluster",
            "redis",
            Outcome.FAILED,
            43.5,
            163.5,
            ABNORMAL_CAUSE,
        ),
        step("addon:qdrant", "Install addon qdrant 1.0.1", "addon", "qdrant", Outcome.PASSED, 31.5, 43.5),
        step(
            "cluster:qdrant",
            "Deploy Qdrant (qdrant-cluster) and wait until Running",
            "cluster",
            "qdrant",
            Outcome.PASSED,
            43.5,
            139.0,
        ),
        step(
            "addon:elasticsearch",
            "Install addon elasticsearch 1.0.1",
            "addon",
            "elasticsearch",
            Outcome.FAILED,
            31.5,
            36.5,
            ES_ADDON_CAUSE,
        ),
        step(
            "cluster:elasticsearch",
            "Deploy Elasticsearch (es-cluster) and wait until Running",
            "cluster",
            "elasticsearch",
            Outcome.NOT_RUN,
            0,
            None,
            "not run: addon:elasticsearch did not succeed",
        ),
    ]
    checks = [CheckResult("qdrant", name, outcome, 0.5, message) for name, outcome, message in QDRANT_CHECKS]
    databases = [
        database_result(pg, Outcome.TIMED_OUT, []),
        database_result(redis, Outcome.FAILED, []),
        database_result(qdrant, Outcome.PASSED, checks),
        database_result(es, Outcome.FAILED, []),
    ]
    results = new_run(Clock(), steps, databases)
    results.smoke_started_at, results.smoke_ended_at = RUN_START + 643.5, RUN_START + 663.5
    results.smoke_outcome = Outcome.FAILED
    results.smoke_cause = "2 checks failed"
    results.ended_at = RUN_START + 665.0
    return results


ALL_SAMPLES = {
    "success": successful_run,
    "failure": failed_run,
    "cancelled": cancelled_run,
    "no-databases": empty_run,
    "upgrade": upgraded_run,
}
"""Samples every report test runs on (`backup_run` has tests of its own: tests/test_backup_reports.py)."""
SAMPLE_HEADLINES = {
    "success": "✅ dbstack: all 4 databases ready, 9 checks passed, 1 skipped",
    "failure": "❌ dbstack: 2 of 4 databases failed (postgresql, redis); 1 of 4 checks failed (qdrant)",
    "cancelled": "⏹️ dbstack: run cancelled; 4 of 4 databases not deployed (postgresql, redis, qdrant, elasticsearch)",
    "no-databases": "✅ dbstack: no databases enabled, 4 of 4 steps done",
    "upgrade": "❌ dbstack: 1 of 4 databases failed (redis); 1 of 4 databases did not survive the upgrade (redis)",
}
"""Each sample's headline, worked out by hand from how the sample is built."""


def written_files(out_dir: Path) -> dict[str, bytes]:
    """Every file under out_dir by relative path, for comparing folders and scanning them whole."""
    return {
        path.relative_to(out_dir).as_posix(): path.read_bytes() for path in sorted(out_dir.rglob("*")) if path.is_file()
    }


# --- reading the Mermaid gantt block back, strictly ------------------------------------------------------------

TASK_LINE = re.compile(r"^    (?P<name>[^:;#\n]+?) :(?P<status>done|crit), (?P<id>t\d+), (?P<start>\d+), (?P<end>\d+)$")
DIRECTIVE = re.compile(r"^    (title [^:;#]+|dateFormat x|axisFormat [%HMS:]+|todayMarker off)$")


@dataclass(frozen=True)
class GanttTask:
    section: str
    name: str
    status: str
    start: int
    end: int


def parse_gantt(markdown: str) -> list[GanttTask]:
    """The strict reading of the report's one Mermaid block: every line a directive, a section or a task."""
    blocks = re.findall(r"^```mermaid\n(.*?)\n```$", markdown, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "expected exactly one mermaid block"
    lines = blocks[0].splitlines()
    assert lines[0] == "gantt"
    assert "    dateFormat x" in lines
    tasks: list[GanttTask] = []
    section = ""
    ids: set[str] = set()
    for line in lines[1:]:
        if DIRECTIVE.match(line):
            continue
        if line.startswith("    section "):
            section = line.removeprefix("    section ")
            assert section and not set(section) & set(":;#")
            continue
        match = TASK_LINE.match(line)
        assert match, f"not a gantt task line: {line!r}"
        assert match["id"] not in ids, f"task id {match['id']} used twice"
        ids.add(match["id"])
        start, end = int(match["start"]), int(match["end"])
        assert start <= end, line
        tasks.append(GanttTask(section, match["name"], match["status"], start, end))
    return tasks
