"""Neo4j as ApeRAG's graph storage prepares it: one database per workspace (aperag/db/neo4j_sync_manager.py).

`prepare_database(workspace)` names the database after the workspace (anything but letters, digits and `-`
becomes `-`), opens a session on it, and on DatabaseNotFound runs `CREATE DATABASE ... IF NOT EXISTS` from the
default database; an edition without that command (Community: UnsupportedAdministrationCommand) makes every
workspace use the database `neo4j`, and then no index is created. Otherwise it creates the index on
`:base(entity_id)` in the workspace's database, and only warns when that fails. `prepare_database` below replays
those steps and says which way it went.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neo4j import Driver

EXISTING = "existing"
CREATED = "created"
COMMUNITY_FALLBACK = "community fallback"
FALLBACK_DATABASE = "neo4j"
ENTITY_INDEX = "CREATE INDEX IF NOT EXISTS FOR (n:base) ON (n.entity_id)"
# ApeRAG's Neo4jSyncConnectionManager driver settings.
DRIVER_SETTINGS: dict[str, Any] = {
    "max_connection_pool_size": 50,
    "connection_timeout": 30.0,
    "max_transaction_retry_time": 30.0,
}


@dataclass(frozen=True)
class Prepared:
    database: str
    how: str
    """EXISTING, CREATED or COMMUNITY_FALLBACK."""
    index_error: str | None = None
    """What creating the `:base(entity_id)` index raised: ApeRAG logs it and goes on."""
    index_attempted: bool = True
    """False on the Community fallback, where ApeRAG creates no index."""


def database_name(workspace: str) -> str:
    return re.sub(r"[^a-zA-Z0-9-]", "-", workspace)


def _create_index(driver: Driver, database: str) -> str | None:
    try:
        with driver.session(database=database) as session:
            session.run(ENTITY_INDEX).consume()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def prepare_database(driver: Driver, workspace: str) -> Prepared:
    from neo4j.exceptions import ClientError, DatabaseError

    name = database_name(workspace)
    try:
        with driver.session(database=name) as session:
            session.run("MATCH (n) RETURN n LIMIT 0").consume()
        return Prepared(name, EXISTING, _create_index(driver, name))
    except ClientError as exc:
        if exc.code != "Neo.ClientError.Database.DatabaseNotFound":
            raise
    try:
        with driver.session() as session:
            session.run(f"CREATE DATABASE `{name}` IF NOT EXISTS").consume()
    except (ClientError, DatabaseError) as exc:
        if "UnsupportedAdministrationCommand" in str(exc) or "ExecutionFailed" in str(exc):
            return Prepared(FALLBACK_DATABASE, COMMUNITY_FALLBACK, index_attempted=False)
        raise
    return Prepared(name, CREATED, _create_index(driver, name))
