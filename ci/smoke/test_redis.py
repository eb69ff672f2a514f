"""Redis as ApeRAG uses it: a shared pooled client per flavour, DB 0 for Celery and DB 1 for memory."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from smokekit.errors import scrubbed
from smokekit.gate import Gate
from smokekit.redis_manager import PoolOptions, RedisConnectionManager
from smokekit.settings import RedisSettings

pytestmark = pytest.mark.redis

CELERY_DB = 0
MEMORY_DB = 1


def _delete_prefixed(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def key_prefix(run_id: str) -> str:
    return f"{run_id}:"


@pytest.fixture(scope="module")
def managers(
    redis_settings: RedisSettings, key_prefix: str, gate: Gate, secret_values: list[str]
) -> Iterator[dict[int, RedisConnectionManager]]:
    managers = {db: RedisConnectionManager(redis_settings, db=db) for db in (CELERY_DB, MEMORY_DB)}
    try:
        with scrubbed("sync PING", secret_values):
            managers[CELERY_DB].get_sync_client().ping()
    except Exception as exc:
        managers[CELERY_DB].close_sync()
        gate.unreachable("redis", exc)
    try:
        yield managers
    finally:
        for manager in managers.values():
            _delete_prefixed(manager.get_sync_client(), key_prefix)
            manager.close_sync()


@pytest.fixture
def db0(managers: dict[int, RedisConnectionManager]) -> redis.Redis:
    return managers[CELERY_DB].get_sync_client()


@pytest.fixture
def db1(managers: dict[int, RedisConnectionManager]) -> redis.Redis:
    return managers[MEMORY_DB].get_sync_client()


def test_manager_shares_one_pooled_client_with_aperag_limits(
    managers: dict[int, RedisConnectionManager],
) -> None:
    manager = managers[MEMORY_DB]
    client = manager.get_sync_client()
    assert manager.get_sync_client() is client
    pool = client.connection_pool
    defaults = PoolOptions()
    assert pool.max_connections == defaults.max_connections
    assert pool.connection_kwargs["socket_timeout"] == defaults.socket_timeout
    assert pool.connection_kwargs["socket_connect_timeout"] == defaults.socket_connect_timeout
    assert pool.connection_kwargs["health_check_interval"] == defaults.health_check_interval
    assert pool.connection_kwargs["db"] == MEMORY_DB


def test_manager_creates_no_connection_before_first_use(
    redis_settings: RedisSettings, managers: dict[int, RedisConnectionManager]
) -> None:
    # `managers` is requested only so this check skips or fails with the others when Redis is unreachable.
    manager = RedisConnectionManager(redis_settings, db=MEMORY_DB)
    try:
        client = manager.get_sync_client()
        assert client.connection_pool._created_connections == 0
        assert client.ping() is True
        assert client.connection_pool._created_connections == 1
    finally:
        manager.close_sync()


def test_client_authenticates_as_configured_user(db0: redis.Redis, redis_settings: RedisSettings) -> None:
    assert db0.ping() is True
    assert db0.acl_whoami() == (redis_settings.username or "default")


def test_set_get_with_ttl_expires(db0: redis.Redis, key_prefix: str) -> None:
    lasting, fleeting = f"{key_prefix}ttl-lasting", f"{key_prefix}ttl-fleeting"
    assert db0.set(lasting, "value", ex=60) is True
    assert db0.set(fleeting, "value", px=150) is True
    assert db0.get(lasting) == "value"
    assert 0 < db0.ttl(lasting) <= 60
    deadline = time.monotonic() + 5
    while db0.exists(fleeting) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db0.get(fleeting) is None


def test_db0_and_db1_are_kept_apart(db0: redis.Redis, db1: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}memory"
    db1.set(key, "db1-only", ex=60)
    assert db1.get(key) == "db1-only"
    assert db0.get(key) is None


def test_pipeline_runs_commands_in_one_transaction(db0: redis.Redis, key_prefix: str) -> None:
    counter, items = f"{key_prefix}counter", f"{key_prefix}items"
    with db0.pipeline(transaction=True) as pipe:
        pipe.incr(counter).incr(counter).rpush(items, "a", "b").expire(items, 60).expire(counter, 60)
        results = pipe.execute()
    assert results == [1, 2, 2, True, True]
    assert db0.lrange(items, 0, -1) == ["a", "b"]


def test_pubsub_delivers_a_published_message(db0: redis.Redis, key_prefix: str) -> None:
    channel = f"{key_prefix}events"
    pubsub = db0.pubsub()
    try:
        pubsub.subscribe(channel)
        # The subscription is in effect once its confirmation has been read.
        confirmation = pubsub.get_message(timeout=5)
        assert confirmation is not None and confirmation["type"] == "subscribe"
        assert db0.publish(channel, "hello") == 1
        message = pubsub.get_message(timeout=5)
    finally:
        pubsub.close()
    assert message is not None
    assert (message["channel"], message["data"]) == (channel, "hello")


@pytest.mark.anyio
async def test_async_client_is_shared_and_round_trips(
    redis_settings: RedisSettings, key_prefix: str, managers: dict[int, RedisConnectionManager]
) -> None:
    manager = RedisConnectionManager(redis_settings, db=MEMORY_DB)
    key = f"{key_prefix}async"
    try:
        client = manager.get_async_client()
        assert manager.get_async_client() is client
        assert await client.ping() is True
        await client.set(key, "async-value", ex=60)
        assert await client.get(key) == "async-value"
    finally:
        await manager.close_async()
    assert managers[MEMORY_DB].get_sync_client().get(key) == "async-value"
