"""What an in-place upgrade does to a database's pods, against real local PostgreSQL + pgvector and Redis, with the
marker phases run exactly as upgrade-test runs them (smokeenv's command and environment, each endpoint's contract).

Markers are written; then each server is stopped and started again on its own data, as a rolling restart does to a
pod with its volume (PostgreSQL with `pg_ctl restart`, Redis saved and started anew on its RDB file); the read-back
then passes. A Redis restarted without its data (no snapshot taken: what a restart does to a server that does not
persist) fails the read-back naming what is missing: the check that says a database did not survive.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbstack.run import smokeenv
from smoke.local_servers import LocalPostgres, LocalRedis
from smoke.test_markers import PG_PASSWORD, PG_USER, REDIS_PASSWORD, REDIS_USER, Target, client, pipeline_phase

DATABASE = "upgraded"


@dataclass
class Written:
    postgres: LocalPostgres
    redis: LocalRedis
    marker: str


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    """Markers written once for the module; each test leaves them as they are (PostgreSQL restarted keeps them, and
    the source Redis is only saved and copied)."""
    with LocalPostgres() as postgres, LocalRedis() as redis_server:
        postgres.create_login(PG_USER, PG_PASSWORD, DATABASE)
        redis_server.create_acl_user(REDIS_USER, REDIS_PASSWORD)
        marker = smokeenv.marker_id(f"upgrade-{secrets.token_hex(3)}")
        junit = tmp_path_factory.mktemp("write") / "write.xml"
        phase = pipeline_phase(postgres, Target(DATABASE, redis_server), "write", marker, junit)
        assert phase.returncode == 0, phase.output
        yield Written(postgres, redis_server, marker)


def restarted_redis(old: LocalRedis, root: Path, *, keep_data: bool) -> LocalRedis:
    """A new Redis process on the old one's data (its RDB file saved first), or on none."""
    if keep_data:
        with client(old, 0) as admin:
            admin.save()
    root.mkdir()
    if keep_data:
        shutil.copyfile(old.root / "dump.rdb", root / "dump.rdb")
    return LocalRedis(root=root)


def test_markers_read_back_after_each_server_restarts_on_its_own_data(written: Written, tmp_path: Path) -> None:
    postgres = written.postgres
    postgres._pg("pg_ctl", "-D", str(postgres.data_dir), "-l", str(postgres.root / "postgres.log"), "-w", "restart")
    with restarted_redis(written.redis, tmp_path / "redis-after", keep_data=True) as redis_after:
        # ACL users live in the server's configuration, which KubeBlocks renders again for the new pod.
        redis_after.create_acl_user(REDIS_USER, REDIS_PASSWORD)
        checked = pipeline_phase(
            postgres, Target(DATABASE, redis_after), "verify", written.marker, tmp_path / "verify.xml"
        )
    assert checked.returncode == 0, checked.output
    assert checked.cases() == {
        ("test_postgresql", "test_markers[verify]"): "passed",
        ("test_redis", "test_markers[verify]"): "passed",
    }
    assert not checked.leaks()


def test_a_server_that_comes_back_without_its_data_fails_the_read_back_naming_what_is_missing(
    written: Written, tmp_path: Path
) -> None:
    with restarted_redis(written.redis, tmp_path / "redis-empty", keep_data=False) as redis_after:
        redis_after.create_acl_user(REDIS_USER, REDIS_PASSWORD)
        checked = pipeline_phase(
            written.postgres, Target(DATABASE, redis_after), "verify", written.marker, tmp_path / "verify.xml"
        )
    assert checked.returncode != 0
    assert checked.cases() == {
        ("test_postgresql", "test_markers[verify]"): "passed",
        ("test_redis", "test_markers[verify]"): "failure",
    }
    found = smokeenv.read_markers("verify", ["redis"], checked.returncode, checked.junit)["redis"]
    assert f"dbstack-marker:{written.marker}:" in (found.message or "")
    assert "missing" in (found.message or "")
    assert not checked.leaks()
