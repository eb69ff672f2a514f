"""The smoke suite's marker phases (SMOKE_MARKERS=write|verify|clean) against real local PostgreSQL + pgvector and
Redis, with a copy of the data standing in for a restore, run exactly as the pipeline runs them: smokeenv's command
and environment, each endpoint's contract, its account's username and password, and the checks read back into
Results by `smokeenv.record_markers`.

Markers are written into the source; the PostgreSQL database is then copied with `CREATE DATABASE ... TEMPLATE` and
Redis's data with its own RDB file (SAVE, then a second server started on the copied file, the way a volume snapshot
carries it). The verify phase runs against the copies only, as the pipeline runs it against a restored cluster's own
Service and Secret. A marker missing or altered in the copy fails with a cause naming it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Endpoint
from dbstack.run import smokeenv
from dbstack.run.orchestrator import new_results
from dbstack.run.results import Outcome, RunResults
from dbstack.text import first_line
from psycopg2 import sql
from smoke.local_servers import LocalPostgres, LocalRedis
from smoke.test_smoke_suite import generated_password, run_suite, suite_environment
from smokekit import markers
from smokekit.settings import ConfigError, load_settings
from sqlalchemy import create_engine

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "values"
PG_USER, PG_PASSWORD = "marker", generated_password()
REDIS_USER, REDIS_PASSWORD = "marker", generated_password()
SOURCE_DB = "source"
DATABASES = ["postgresql", "redis"]


@dataclass
class Target:
    """Where a phase runs: a PostgreSQL database of the shared server, and a Redis server."""

    database: str
    redis: LocalRedis


@dataclass
class Phase:
    returncode: int
    output: str
    junit: Path

    def cases(self) -> dict[tuple[str, str], str]:
        """(module, check) -> outcome, from the JUnit file the phase wrote."""
        found = {}
        for case in ET.parse(self.junit).getroot().iter("testcase"):  # noqa: S314 - written by this test's pytest
            outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
            found[(case.get("classname", ""), case.get("name", ""))] = outcome
        return found

    def leaks(self) -> bool:
        text = self.output + self.junit.read_text()
        return PG_PASSWORD in text or REDIS_PASSWORD in text


def plan_endpoint(key: str) -> Endpoint:
    return next(e for e in build_plan(load_config(VALUES, None, [])).endpoints if e.database == key)


def pipeline_phase(postgres: LocalPostgres, target: Target, phase: str, marker: str, junit: Path) -> Phase:
    """The pipeline's marker phase as the smoke container runs it (under `timeout`, from the repository root)."""
    config = load_config(VALUES, None, [])
    endpoints = [
        replace(plan_endpoint("postgresql"), service=postgres.host, port=postgres.port),
        replace(plan_endpoint("redis"), service=target.redis.host, port=target.redis.port),
    ]
    environment = smokeenv.marker_environment(endpoints, config, phase, marker)
    for endpoint in endpoints:
        environment |= smokeenv.plain_variables(endpoint)
    environment |= {"POSTGRES_DB": target.database, "POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": PG_PASSWORD}
    environment |= {"REDIS_USER": REDIS_USER, "REDIS_PASSWORD": REDIS_PASSWORD}
    command = smokeenv.marker_command(str(junit), 120, [e.database for e in endpoints])
    command[command.index("python")] = sys.executable
    done = subprocess.run(
        [*command, "-p", "anyio.pytest_plugin"],
        cwd=REPO,
        env=suite_environment(environment),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Phase(done.returncode, done.stdout + done.stderr, junit)


def client(server: LocalRedis, db: int) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, db=db, username=REDIS_USER, password=REDIS_PASSWORD)


@dataclass
class Source:
    postgres: LocalPostgres
    target: Target
    marker: str
    written: Phase
    results: RunResults


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """The markers of one id written into a source database and Redis through the pipeline's write phase."""
    with LocalPostgres() as postgres, LocalRedis() as source_redis:
        postgres.create_login(PG_USER, PG_PASSWORD, SOURCE_DB)
        source_redis.create_acl_user(REDIS_USER, REDIS_PASSWORD)
        marker = smokeenv.marker_id(f"20260301T101010Z-{secrets.token_hex(3)}")
        target = Target(SOURCE_DB, source_redis)
        written = pipeline_phase(postgres, target, "write", marker, tmp_path_factory.mktemp("write") / "junit.xml")
        results = new_results(build_plan(load_config(VALUES, None, [])), "k3s", 0.0)
        smokeenv.record_markers(results, "write", DATABASES, written.returncode, written.junit)
        yield Source(postgres, target, marker, written, results)


@pytest.fixture
def copy(source: Source, tmp_path: Path) -> Iterator[Target]:
    """The stand-in for a restore: the source database cloned, and Redis started on a copy of its RDB file."""
    name = f"copy_{secrets.token_hex(4)}"
    # The write phase's engine went with its process: nothing holds the source open.
    source.postgres.run(
        sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(SOURCE_DB), sql.Identifier(PG_USER)
        )
    )
    with client(source.target.redis, 0) as admin:
        admin.save()
    restored = LocalRedis(root=tmp_path / "restored-redis")
    restored.root.mkdir()
    shutil.copyfile(source.target.redis.root / "dump.rdb", restored.root / "dump.rdb")
    try:
        with restored:
            # ACL users live in the server's configuration, not its data: the restored cluster brings its own.
            restored.create_acl_user(REDIS_USER, REDIS_PASSWORD)
            yield Target(name, restored)
    finally:
        source.postgres.run(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_markers_written_then_copied_read_back_from_the_copy_and_land_in_results(
    source: Source, copy: Target, tmp_path: Path
) -> None:
    checked = pipeline_phase(source.postgres, copy, "verify", source.marker, tmp_path / "verify.xml")
    smokeenv.record_markers(
        source.results, "verify", DATABASES, checked.returncode, checked.junit, context=f"restored {copy.database}"
    )

    assert (source.written.returncode, checked.returncode) == (0, 0), checked.output
    # Only the marker checks ran, one per database.
    assert source.written.cases() == {
        ("test_postgresql", "test_markers[write]"): "passed",
        ("test_redis", "test_markers[write]"): "passed",
    }
    assert checked.cases() == {
        ("test_postgresql", "test_markers[verify]"): "passed",
        ("test_redis", "test_markers[verify]"): "passed",
    }
    assert {d.key: [(c.name, c.outcome) for c in d.checks] for d in source.results.databases if d.checks} == {
        key: [
            ("test_markers[write]", Outcome.PASSED),
            (f"test_markers[verify] (restored {copy.database})", Outcome.PASSED),
        ]
        for key in DATABASES
    }
    # What was read back is what the copy holds: the rows with their vectors, the keys of both DBs.
    rows = source.postgres.run(
        sql.SQL("SELECT label, embedding::text FROM {} ORDER BY id").format(
            sql.Identifier(markers.postgresql_table(source.marker))
        ),
        copy.database,
    )
    assert rows[1] == (f"marker {source.marker} row 1", "[1.5,-0.25,0.125,1]")
    with client(copy.redis, 1) as memory:
        hash_key = f"{markers.redis_prefix(source.marker)}hash"
        assert memory.hgetall(hash_key) == {b"id": source.marker.encode(), b"count": b"3"}
    assert not (source.written.leaks() or checked.leaks())


def test_a_marker_missing_or_altered_in_the_copy_fails_naming_it(source: Source, copy: Target, tmp_path: Path) -> None:
    marker, table = source.marker, markers.postgresql_table(source.marker)
    prefix = markers.redis_prefix(marker)
    with client(copy.redis, 1) as memory:
        memory.delete(f"{prefix}hash")
    with client(copy.redis, 0) as broker:
        broker.lpop(f"{prefix}queue")
    empty = f"empty_{secrets.token_hex(4)}"
    source.postgres.run(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(empty), sql.Identifier(PG_USER)))
    results = new_results(build_plan(load_config(VALUES, None, [])), "k3s", 0.0)
    try:
        # A database restored from before the markers, and a Redis that lost and changed some.
        checked = pipeline_phase(source.postgres, Target(empty, copy.redis), "verify", marker, tmp_path / "v.xml")
    finally:
        source.postgres.run(sql.SQL("DROP DATABASE {}").format(sql.Identifier(empty)))
    recorded = smokeenv.record_markers(results, "verify", DATABASES, checked.returncode, checked.junit, "restored x")

    assert checked.returncode == pytest.ExitCode.TESTS_FAILED
    assert {key: check.outcome for key, check in recorded.items()} == {key: Outcome.FAILED for key in DATABASES}
    assert first_line(recorded["postgresql"].message) == (
        f"Failed: postgresql markers {marker} do not read back as written: table public.{table} is missing"
    )
    assert first_line(recorded["redis"].message) == (
        f"Failed: redis markers {marker} do not read back as written: DB 0 key {prefix}queue holds "
        f"['task-1', 'task-2'], written as ['task-0', 'task-1', 'task-2']; DB 1 key {prefix}hash is missing"
    )
    assert not checked.leaks()


def test_rows_missing_altered_or_added_in_a_copy_are_each_named(source: Source, copy: Target) -> None:
    table = markers.postgresql_table(source.marker)
    for statement in (
        "DELETE FROM {} WHERE id = 1",
        "UPDATE {} SET embedding = '[9,9,9,9]' WHERE id = 2",
        "INSERT INTO {} VALUES (7, 'stray', '[0,0,0,0]')",
    ):
        source.postgres.run(sql.SQL(statement).format(sql.Identifier(table)), copy.database)
    engine = create_engine(
        f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@{source.postgres.host}:{source.postgres.port}/{copy.database}"
    )
    try:
        problems = markers.verify_postgresql(engine, source.marker)
    finally:
        engine.dispose()
    label = f"marker {source.marker} row 2"
    assert problems == [
        f"public.{table} row 1 is missing",
        f"public.{table} row 2 holds ('{label}', [9.0, 9.0, 9.0, 9.0]), "
        f"written as ('{label}', [2.5, -0.25, 0.25, 1.0])",
        f"public.{table} row 7 was not written",
    ]


def test_clean_removes_every_marker(source: Source, copy: Target, tmp_path: Path) -> None:
    cleaned = pipeline_phase(source.postgres, copy, "clean", source.marker, tmp_path / "clean.xml")

    assert cleaned.returncode == 0, cleaned.output
    assert set(cleaned.cases()) == {("test_postgresql", "test_markers[clean]"), ("test_redis", "test_markers[clean]")}
    table = markers.postgresql_table(source.marker)
    assert source.postgres.run(f"SELECT to_regclass('public.{table}')", copy.database) == [(None,)]
    for db in (0, 1):
        with client(copy.redis, db) as restored:
            assert list(restored.scan_iter(match=f"{markers.redis_prefix(source.marker)}*")) == []


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SMOKE_MARKERS": "backup", "SMOKE_MARKER_ID": "m1"}, "SMOKE_MARKERS='backup' is not a marker phase"),
        ({"SMOKE_MARKERS": "write"}, "SMOKE_MARKERS is set without SMOKE_MARKER_ID"),
        ({"SMOKE_MARKER_ID": "m1"}, "SMOKE_MARKER_ID is set but SMOKE_MARKERS is not"),
        ({"SMOKE_MARKERS": "verify", "SMOKE_MARKER_ID": "Bad_Id"}, "SMOKE_MARKER_ID 'Bad_Id' must be 1-20 lowercase"),
        ({"SMOKE_MARKERS": "verify", "SMOKE_MARKER_ID": "a" * 21}, "must be 1-20 lowercase letters or digits"),
    ],
    ids=["unknown-phase", "no-id", "id-alone", "bad-id", "long-id"],
)
def test_a_malformed_marker_setting_is_refused_naming_the_variable(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environment)
    assert message in str(refused.value)


def test_a_malformed_marker_setting_stops_the_suite_as_a_usage_error(tmp_path: Path) -> None:
    run = run_suite({"SMOKE_MARKERS": "backup", "SMOKE_MARKER_ID": "m1"}, tmp_path / "junit.xml")

    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "smoke suite environment: SMOKE_MARKERS='backup' is not a marker phase" in run.output


def test_marker_ids_fit_every_database_s_names() -> None:
    longest = "z" * markers.MARKER_ID_MAX
    assert markers.marker_id_problem(longest) is None
    # PostgreSQL identifiers hold 63 bytes; Elasticsearch index names are lowercase; Qdrant's and Redis's are free.
    assert len(markers.postgresql_table(longest)) <= 63
    index = markers.elasticsearch_index(longest)
    assert index == index.lower() and not index.startswith(("-", "_", "+"))


def test_qdrant_markers_round_trip_in_the_client_s_in_process_mode() -> None:
    from qdrant_client import QdrantClient

    client, marker_id = QdrantClient(":memory:"), f"m{secrets.token_hex(5)}"
    name = markers.qdrant_collection(marker_id)
    markers.write_qdrant(client, marker_id)
    assert markers.verify_qdrant(client, marker_id) == []
    (first, *_) = markers.qdrant_points(marker_id)
    client.delete(name, points_selector=[first])
    assert markers.verify_qdrant(client, marker_id) == [
        f"collection {name} point {first} is missing",
        f"collection {name} holds 2 points, 3 were written",
    ]
    markers.clean_qdrant(client, marker_id)
    assert markers.verify_qdrant(client, marker_id) == [f"collection {name} is missing"]


def test_qdrant_marker_requests_fit_the_1_10_api(monkeypatch: pytest.MonkeyPatch) -> None:
    from smoke import qdrant_1_10
    from smokekit import qdrant_ops

    with qdrant_1_10.Qdrant110() as server:
        connection = qdrant_ops.connect({"url": "http://127.0.0.1", "port": server.port, "timeout": 5})
        marker_id = f"m{secrets.token_hex(5)}"
        try:
            markers.write_qdrant(connection.client, marker_id)
            # The stand-in stores nothing: make it say the collection exists, so the read-back asks for the points.
            monkeypatch.setitem(qdrant_1_10.ANSWERS, "collection_exists", {"exists": True})
            problems = markers.verify_qdrant(connection.client, marker_id)
            markers.clean_qdrant(connection.client, marker_id)
        finally:
            connection.client.close()
    judged = [(r.operation, r.problem) for r in server.requests]
    assert [operation for operation, _ in judged] == [
        "collection_exists",
        "collection_exists",
        "create_collection",
        "upsert_points",
        "collection_exists",
        "get_points",
        "count_points",
        "collection_exists",
        "delete_collection",
    ]
    assert [problem for _, problem in judged if problem is not None] == []
    assert len(problems) == 4  # three points missing, and the count
