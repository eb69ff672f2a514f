"""deploy-and-test --profile full (the backup stage) end to end, offline, through the engine stand-ins
(tests/engine_standins.py): the stage's marker phases run in the smoke container, each against the Cluster its
forward reaches, and the markers live in the simulated cluster's store, which its Backups copy and its restored
Clusters get. Nothing of the module itself is replaced."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dbstack.sim.backups import BackupScenario
from dbstack.sim.cluster import Scenario
from engine_standins import Engine, Exec
from test_dagger_flow import ACCOUNTS, deploy_and_test, k3s_services, smoke_execs, summary, world

RESTORED_ACCOUNTS = {
    # A restored Cluster's accounts are the backed-up Cluster's (their passwords come from the Backup).
    "pg-cluster-r-postgresql-account-postgres": ("postgres", "Zq9pgPlain7Hx"),
    "redis-cluster-r-redis-account-default": ("default", "Rd4vPlain2Kq"),
}


def full_world(scenario: Scenario | None = None) -> tuple[Engine, Any]:
    return world(scenario, accounts=ACCOUNTS | RESTORED_ACCOUNTS)


def host(run: Exec) -> str:
    database = run.env["SMOKE_REQUIRE"]
    variable = {"postgresql": "POSTGRES_HOST", "redis": "REDIS_HOST", "qdrant": "QDRANT_URL"}[database]
    return run.env[variable]


def marker_runs(engine: Engine) -> list[tuple[str, str, str, list[str], dict[str, str]]]:
    """(phase, database, host, bound services, secret variables) of every marker phase, sorted."""
    return sorted(
        (
            e.env["SMOKE_MARKERS"],
            e.env["SMOKE_REQUIRE"],
            host(e),
            sorted(e.bindings),
            {k: s.plaintext for k, s in e.secrets.items()},
        )
        for e in smoke_execs(engine)
        if "SMOKE_MARKERS" in e.env
    )


def timeline(engine: Engine) -> list[str]:
    """PostgreSQL's side of the run in the order the engine ran it: the smoke container's runs against it
    (`<phase> <host>`, `suite <host>`), its Backup's and its restored Cluster's creation."""
    smoke = {id(e) for e in smoke_execs(engine)}
    events = []
    for run in engine.execs:
        if id(run) in smoke and "POSTGRES_HOST" in run.env:
            events.append(f"{run.env.get('SMOKE_MARKERS', 'suite')} {run.env['POSTGRES_HOST']}")
        elif run.argv[2:5] == ["kubectl", "create", "-f"] and run.stdin is not None:
            if "kind: Backup\n" in run.stdin and "name: pg-cluster-backup\n" in run.stdin:
                events.append("create Backup pg-cluster-backup")
            elif '"kind": "Cluster"' in run.stdin and '"name": "pg-cluster-r"' in run.stdin:
                events.append("create Cluster pg-cluster-r")
    return events


def backups(report: dict[str, Any]) -> list[tuple[str, str, str | None, str | None, str, str]]:
    return [
        (b["database"], b["outcome"], b["cause"], b["restoredCluster"], b["markersWritten"], b["markersReadBack"])
        for b in report["backups"]
    ]


PG = "pg-cluster-postgresql-postgresql"
PG_RESTORED = "pg-cluster-r-postgresql-postgresql"
REDIS = "redis-cluster-redis-redis"
REDIS_RESTORED = "redis-cluster-r-redis-redis"
QDRANT = "http://qdrant-cluster-qdrant-qdrant:6333"
QDRANT_RESTORED = "http://qdrant-cluster-r-qdrant-qdrant:6333"
PG_PASSWORD = {"POSTGRES_PASSWORD": "Zq9pgPlain7Hx"}
REDIS_PASSWORD = {"REDIS_PASSWORD": "Rd4vPlain2Kq"}


def test_the_backup_stage_writes_markers_backs_up_restores_and_reads_them_back_from_each_restored_cluster(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, cluster = full_world()
    engine_here(engine)
    reports = deploy_and_test(profile="full")

    assert marker_runs(engine) == [
        ("clean", "postgresql", PG, [PG], PG_PASSWORD),
        ("clean", "qdrant", QDRANT, ["qdrant-cluster-qdrant-qdrant"], {}),
        ("clean", "redis", REDIS, [REDIS], REDIS_PASSWORD),
        ("verify", "postgresql", PG_RESTORED, [PG_RESTORED], PG_PASSWORD),
        ("verify", "qdrant", QDRANT_RESTORED, ["qdrant-cluster-r-qdrant-qdrant"], {}),
        ("verify", "redis", REDIS_RESTORED, [REDIS_RESTORED], REDIS_PASSWORD),
        ("write", "postgresql", PG, [PG], PG_PASSWORD),
        ("write", "qdrant", QDRANT, ["qdrant-cluster-qdrant-qdrant"], {}),
        ("write", "redis", REDIS, [REDIS], REDIS_PASSWORD),
    ]
    events = timeline(engine)
    assert events.index(f"write {PG}") < events.index("create Backup pg-cluster-backup")
    assert events.index("create Cluster pg-cluster-r") < events.index(f"verify {PG_RESTORED}")
    assert events[-1] == f"suite {PG}"
    (marker,) = {e.env["SMOKE_MARKER_ID"] for e in smoke_execs(engine) if "SMOKE_MARKERS" in e.env}
    assert re.fullmatch(r"m[0-9a-f]{12}", marker)
    # Written, then removed again from the deployed Clusters; the restored ones are deleted with what they held.
    assert cluster.sim.backups.markers == {
        ("default", "pg-cluster"): set(),
        ("default", "redis-cluster"): set(),
        ("default", "qdrant-cluster"): set(),
    }

    report = summary(reports)
    assert backups(report) == [
        ("postgresql", "passed", None, "pg-cluster-r", "passed", "passed"),
        ("redis", "passed", None, "redis-cluster-r", "passed", "passed"),
        ("qdrant", "passed", None, "qdrant-cluster-r", "passed", "passed"),
        ("elasticsearch", "skipped", "backup.methods.elasticsearch is none", None, "not_run", "not_run"),
    ]
    assert report["totals"]["steps"] == {
        "passed": 33,
        "failed": 0,
        "timed_out": 0,
        "skipped": 0,
        "not_run": 0,
        "cancelled": 0,
    }
    assert report["totals"]["checks"] == {"total": 13, "passed": 13, "failed": 0, "skipped": 0}
    assert (report["passed"], report["smoke"]["outcome"]) == (True, "passed")
    assert reports.files["exit-code"] == "0\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_a_backup_that_lost_the_markers_fails_the_read_back_from_its_restored_cluster_and_the_run(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = full_world(Scenario(backup=BackupScenario(lost_markers=frozenset({"postgresql"}))))
    engine_here(engine)
    reports = deploy_and_test(profile="full")

    (marker,) = {e.env["SMOKE_MARKER_ID"] for e in smoke_execs(engine) if "SMOKE_MARKERS" in e.env}
    lost = f"postgresql markers {marker} do not read back as written: table public.dbstack_marker_{marker} is missing"
    report = summary(reports)
    verify = next(s for s in report["steps"] if s["id"] == "markers-verify:postgresql")
    assert (verify["outcome"], verify["cause"]) == ("failed", lost)
    assert backups(report) == [
        ("postgresql", "failed", f"markers-verify: {lost}", "pg-cluster-r", "passed", "failed"),
        ("redis", "passed", None, "redis-cluster-r", "passed", "passed"),
        ("qdrant", "passed", None, "qdrant-cluster-r", "passed", "passed"),
        ("elasticsearch", "skipped", "backup.methods.elasticsearch is none", None, "not_run", "not_run"),
    ]
    assert ("verify", "postgresql", PG_RESTORED, [PG_RESTORED], PG_PASSWORD) in marker_runs(engine)
    assert report["totals"]["steps"]["failed"] == 1
    assert report["passed"] is False
    assert reports.files["exit-code"] == "1\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]
