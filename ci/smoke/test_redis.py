"""Redis as ApeRAG uses it: pools built from CELERY_BROKER_URL (DB 0, Celery's queues) and MEMORY_REDIS_URL (DB 1,
its RedisConnectionManager) with ApeRAG's pool options; the Lua EVAL that releases its locks; the BRPOP that
Celery's workers block on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from smokekit import markers
from smokekit.errors import cleanup, scrubbed
from smokekit.gate import Gate, fail_plainly
from smokekit.redis_clients import async_client, sync_client
from smokekit.settings import MarkerPhase, RedisSettings

pytestmark = pytest.mark.redis

# concurrent_control/redis_lock.py releases a lock only if it still holds the token it set: GET, compare, DEL,
# atomically, as one EVAL. Without scripting a lock is never released and waits out its expiry.
RELEASE_LOCK = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""
LOCK_EXPIRY_S = 120
BRPOP_TIMEOUT_S = 0.1
CELERY_MAXMEMORY_POLICY = "noeviction"


@dataclass(frozen=True)
class Clients:
    broker: redis.Redis
    """DB 0 through CELERY_BROKER_URL."""
    memory: redis.Redis
    """DB 1 through MEMORY_REDIS_URL."""
    prefix: str


def _delete_prefixed(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def clients(redis_settings: RedisSettings, run_id: str, gate: Gate, secret_values: list[str]) -> Iterator[Clients]:
    prefix = f"{run_id}:"
    try:
        with scrubbed("pool from CELERY_BROKER_URL, PING", secret_values):
            broker = sync_client(redis_settings.broker_url.reveal())
            broker.ping()
        with scrubbed("pool from MEMORY_REDIS_URL, PING", secret_values):
            memory = sync_client(redis_settings.memory_url.reveal())
            memory.ping()
    except Exception as exc:
        gate.unreachable("redis", exc)

    def forget() -> None:
        for client in (broker, memory):
            _delete_prefixed(client, prefix)
            client.connection_pool.disconnect()

    with cleanup(f"delete the run's keys ({prefix}*) from DB 0 and DB 1", forget, secret_values):
        yield Clients(broker, memory, prefix)


def test_urls_authenticate_as_their_user_on_their_databases(clients: Clients) -> None:
    for client, db in ((clients.broker, 0), (clients.memory, 1)):
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["db"] == db
        assert client.acl_whoami() == (kwargs.get("username") or "default")
        assert client.client_info()["db"] == db


@pytest.mark.anyio
async def test_lock_is_taken_and_released_by_eval_on_db1(redis_settings: RedisSettings, clients: Clients) -> None:
    # RedisLock: SET NX EX with a fresh token, then the release script, through the async client on DB 1.
    client = async_client(redis_settings.memory_url.reveal())
    key, token = f"{clients.prefix}lock", str(uuid.uuid4())
    try:
        assert await client.set(key, token, nx=True, ex=LOCK_EXPIRY_S) is True
        assert await client.set(key, "another holder", nx=True, ex=LOCK_EXPIRY_S) is None
        try:
            not_ours = await client.eval(RELEASE_LOCK, 1, key, "another holder")
            released = await client.eval(RELEASE_LOCK, 1, key, token)
        except redis.ResponseError as exc:
            fail_plainly(
                f"EVAL refused ({exc}): ApeRAG releases its locks with a Lua script (concurrent_control/redis_lock.py)"
            )
        remaining = await client.exists(key)
    finally:
        await client.connection_pool.disconnect()
    assert (not_ours, released, remaining) == (0, 1, 0)


def test_celery_queue_is_consumed_with_brpop_on_db0(clients: Clients) -> None:
    queue = f"{clients.prefix}celery"
    clients.broker.lpush(queue, "task-1", "task-2")
    try:
        taken = [clients.broker.brpop([queue], timeout=BRPOP_TIMEOUT_S) for _ in range(2)]
        started = time.monotonic()
        empty = clients.broker.brpop([queue], timeout=BRPOP_TIMEOUT_S)
        waited = time.monotonic() - started
    except redis.ResponseError as exc:
        fail_plainly(f"BRPOP refused ({exc}): Celery's workers block on it for their queues on DB 0")
    assert taken == [(queue, "task-1"), (queue, "task-2")]
    assert empty is None
    assert waited >= BRPOP_TIMEOUT_S * 0.5, "BRPOP on an empty queue came back without blocking"


def test_maxmemory_policy_is_read_and_reported(
    clients: Clients, record_testsuite_property: Callable[[str, object], None], warn: Callable[[str, str], None]
) -> None:
    memory = clients.broker.info("memory")
    policy = memory.get("maxmemory_policy")
    assert policy, "INFO memory has no maxmemory_policy"
    record_testsuite_property("redis_maxmemory_policy", policy)
    if policy != CELERY_MAXMEMORY_POLICY:
        warn(
            "redis",
            f"maxmemory-policy is {policy}: under memory pressure Redis may evict Celery's queued tasks "
            f"(Celery needs {CELERY_MAXMEMORY_POLICY})",
        )


def test_set_get_with_ttl_expires(clients: Clients) -> None:
    lasting, fleeting = f"{clients.prefix}ttl-lasting", f"{clients.prefix}ttl-fleeting"
    assert clients.memory.set(lasting, "value", ex=60) is True
    assert clients.memory.set(fleeting, "value", px=150) is True
    assert clients.memory.get(lasting) == "value"
    assert 0 < clients.memory.ttl(lasting) <= 60
    deadline = time.monotonic() + 5
    while clients.memory.exists(fleeting) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert clients.memory.get(fleeting) is None


def test_db0_and_db1_are_kept_apart(clients: Clients) -> None:
    key = f"{clients.prefix}memory"
    clients.memory.set(key, "db1-only", ex=60)
    assert clients.memory.get(key) == "db1-only"
    assert clients.broker.get(key) is None


def test_pipeline_runs_commands_in_one_transaction(clients: Clients) -> None:
    counter, items = f"{clients.prefix}counter", f"{clients.prefix}items"
    with clients.broker.pipeline(transaction=True) as pipe:
        pipe.incr(counter).incr(counter).rpush(items, "a", "b").expire(items, 60).expire(counter, 60)
        results = pipe.execute()
    assert results == [1, 2, 2, True, True]
    assert clients.broker.lrange(items, 0, -1) == ["a", "b"]


def test_pubsub_delivers_a_published_message(clients: Clients) -> None:
    channel = f"{clients.prefix}events"
    pubsub = clients.broker.pubsub()
    try:
        pubsub.subscribe(channel)
        # The subscription is in effect once its confirmation has been read.
        confirmation = pubsub.get_message(timeout=5)
        assert confirmation is not None and confirmation["type"] == "subscribe"
        assert clients.broker.publish(channel, "hello") == 1
        message = pubsub.get_message(timeout=5)
    finally:
        pubsub.close()
    assert message is not None
    assert (message["channel"], message["data"]) == (channel, "hello")


@pytest.mark.anyio
async def test_async_pool_from_memory_url_round_trips(redis_settings: RedisSettings, clients: Clients) -> None:
    client = async_client(redis_settings.memory_url.reveal())
    key = f"{clients.prefix}async"
    try:
        assert await client.ping() is True
        await client.set(key, "async-value", ex=60)
        assert await client.get(key) == "async-value"
    finally:
        await client.connection_pool.disconnect()
    assert clients.memory.get(key) == "async-value"


def test_markers(marker_phase: MarkerPhase, clients: Clients, gate: Gate) -> None:
    """Marker keys in DB 0 (through CELERY_BROKER_URL) and DB 1 (through MEMORY_REDIS_URL)."""
    by_db = {0: clients.broker, 1: clients.memory}
    marker_id = marker_phase.marker_id
    gate.markers(
        "redis",
        marker_phase,
        write=lambda: markers.write_redis(by_db, marker_id),
        verify=lambda: markers.verify_redis(by_db, marker_id),
        clean=lambda: markers.clean_redis(by_db, marker_id),
    )
