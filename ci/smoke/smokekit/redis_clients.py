"""Redis clients built the way ApeRAG's RedisConnectionManager (aperag/db/redis_manager.py) builds its pools."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis

# ApeRAG's pool options, for both the sync and the async pool (ConnectionPool.from_url(url, **options)).
APERAG_POOL_OPTIONS: dict[str, Any] = {
    "max_connections": 20,
    "encoding": "utf-8",
    "decode_responses": True,
    "socket_connect_timeout": 5,
    "socket_timeout": 5,
    "retry_on_timeout": True,
    "health_check_interval": 30,
}


def sync_client(url: str) -> redis.Redis:
    return redis.Redis(connection_pool=redis.ConnectionPool.from_url(url, **APERAG_POOL_OPTIONS))


def async_client(url: str) -> aioredis.Redis:
    # The async pool binds to the event loop that first uses it, as in ApeRAG's manager.
    return aioredis.Redis(connection_pool=aioredis.ConnectionPool.from_url(url, **APERAG_POOL_OPTIONS))
