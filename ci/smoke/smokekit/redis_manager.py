"""A Redis connection manager shaped like ApeRAG's: lazily created, shared, pooled sync and async clients."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from .settings import RedisSettings


@dataclass(frozen=True)
class PoolOptions:
    max_connections: int = 20
    socket_timeout: float = 5.0
    socket_connect_timeout: float = 5.0
    health_check_interval: int = 30


class RedisConnectionManager:
    """One shared client per flavour and database, created on first use.

    Credentials go in as keyword arguments, never through a URL, so no special character needs escaping and no
    URL carrying a password is ever formatted.
    """

    def __init__(self, settings: RedisSettings, db: int = 0, options: PoolOptions | None = None) -> None:
        self._settings = settings
        self._db = db
        self._options = options or PoolOptions()
        self._lock = threading.Lock()
        self._sync_client: redis.Redis | None = None
        self._async_client: aioredis.Redis | None = None

    def _pool_kwargs(self) -> dict[str, object]:
        return {
            "host": self._settings.host,
            "port": self._settings.port,
            "db": self._db,
            "username": self._settings.username,
            "password": self._settings.password.reveal() if self._settings.password else None,
            "max_connections": self._options.max_connections,
            "socket_timeout": self._options.socket_timeout,
            "socket_connect_timeout": self._options.socket_connect_timeout,
            "health_check_interval": self._options.health_check_interval,
            "decode_responses": True,
        }

    def get_sync_client(self) -> redis.Redis:
        if self._sync_client is None:
            with self._lock:
                if self._sync_client is None:
                    pool = redis.ConnectionPool(**self._pool_kwargs())
                    self._sync_client = redis.Redis(connection_pool=pool)
        return self._sync_client

    def get_async_client(self) -> aioredis.Redis:
        # The async pool binds to the event loop that first uses it, as in ApeRAG's manager.
        if self._async_client is None:
            pool = aioredis.ConnectionPool(**self._pool_kwargs())
            self._async_client = aioredis.Redis(connection_pool=pool)
        return self._async_client

    def close_sync(self) -> None:
        if self._sync_client is not None:
            self._sync_client.connection_pool.disconnect()
            self._sync_client = None

    async def close_async(self) -> None:
        if self._async_client is not None:
            await self._async_client.connection_pool.disconnect()
            self._async_client = None
