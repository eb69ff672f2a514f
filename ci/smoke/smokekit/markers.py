"""Marker data: recognisable rows, keys, points, documents and nodes, written through ApeRAG's own access paths
before a backup (or an upgrade) and read back afterwards, compared exactly.

Everything is named after one marker id (`SMOKE_MARKER_ID`: lowercase letters and digits, at most
`MARKER_ID_MAX` characters, so every database's naming rules hold): the PostgreSQL table
`public.dbstack_marker_<id>` (rows with pgvector vectors), the Redis keys `dbstack-marker:<id>:*` in DB 0 and DB 1,
the Qdrant collection `dbstack_marker_<id>` (ApeRAG's collection settings, its tenant key on every point), the
Elasticsearch index `dbstack-marker-<id>` and the Neo4j entities `dbstack-marker-<id>-<n>` (LightRAG's `base`
label). The values are fixed by the id alone, so a reader needs nothing but the id to know what was written.
Vector components are exact binary fractions: float32 storage (pgvector, Qdrant) returns them unchanged.

`write` replaces whatever markers of that id exist; `verify` returns what differs, one line each, naming the
object (never a credential); `clean` removes them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import qdrant_ops

if TYPE_CHECKING:
    import redis
    from elasticsearch import Elasticsearch
    from neo4j import Driver
    from qdrant_client import QdrantClient
    from sqlalchemy import Engine, Table

PHASES = ("write", "verify", "clean")
MARKER_ID_MAX = 20
MARKER_ID = re.compile(rf"^[a-z0-9]{{1,{MARKER_ID_MAX}}}$")
COUNT = 3
DIMENSION = 4
EXTENSION_LOCK_KEY = 0x5EC7_0125
"""The advisory lock test_postgresql.py takes around CREATE EXTENSION (concurrent first creations race)."""


def marker_id_problem(marker_id: str) -> str | None:
    """Why `marker_id` cannot name markers, or None when it can."""
    if MARKER_ID.fullmatch(marker_id):
        return None
    return f"{marker_id!r} must be 1-{MARKER_ID_MAX} lowercase letters or digits"


def _differences(what: str, written: Mapping[Any, Any], found: Mapping[Any, Any]) -> list[str]:
    """`what <key> is missing` / `... holds X, written as Y` / `... was not written`, in key order."""
    problems = [f"{what} {key} is missing" for key in written if key not in found]
    problems += [
        f"{what} {key} holds {found[key]!r}, written as {value!r}"
        for key, value in written.items()
        if key in found and found[key] != value
    ]
    problems += [f"{what} {key} was not written" for key in found if key not in written]
    return problems


# --- PostgreSQL: rows with pgvector vectors in a table in `public`, through DATABASE_URL (psycopg2) ------------


def postgresql_table(marker_id: str) -> str:
    return f"dbstack_marker_{marker_id}"


def postgresql_rows(marker_id: str) -> dict[int, tuple[str, list[float]]]:
    return {n: (f"marker {marker_id} row {n}", [n + 0.5, -0.25, 0.125 * n, 1.0]) for n in range(COUNT)}


def _postgresql_table(marker_id: str) -> Table:
    from pgvector.sqlalchemy import Vector
    from sqlalchemy import Column, Integer, MetaData, Table, Text

    return Table(
        postgresql_table(marker_id),
        MetaData(schema="public"),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("label", Text, nullable=False),
        Column("embedding", Vector(DIMENSION), nullable=False),
    )


def write_postgresql(engine: Engine, marker_id: str) -> None:
    from sqlalchemy import text

    table = _postgresql_table(marker_id)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EXTENSION_LOCK_KEY})
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
        rows = postgresql_rows(marker_id)
        conn.execute(
            table.insert(), [{"id": n, "label": label, "embedding": vector} for n, (label, vector) in rows.items()]
        )


def verify_postgresql(engine: Engine, marker_id: str) -> list[str]:
    from sqlalchemy import inspect, select

    table = _postgresql_table(marker_id)
    with engine.connect() as conn:
        if not inspect(conn).has_table(table.name, schema="public"):
            return [f"table public.{table.name} is missing"]
        rows = conn.execute(select(table.c.id, table.c.label, table.c.embedding).order_by(table.c.id)).all()
    found = {int(row.id): (str(row.label), [float(x) for x in row.embedding]) for row in rows}
    return _differences(f"public.{table.name} row", postgresql_rows(marker_id), found)


def clean_postgresql(engine: Engine, marker_id: str) -> None:
    with engine.begin() as conn:
        _postgresql_table(marker_id).drop(conn, checkfirst=True)


# --- Redis: keys in DB 0 (CELERY_BROKER_URL) and DB 1 (MEMORY_REDIS_URL) ------------------------------------------


def redis_prefix(marker_id: str) -> str:
    return f"dbstack-marker:{marker_id}:"


def redis_keys(marker_id: str) -> dict[int, dict[str, Any]]:
    """DB -> key -> value: a list is a list, a mapping a hash, a string a string. No TTLs: they must persist."""
    prefix = redis_prefix(marker_id)
    return {
        0: {f"{prefix}queue": [f"task-{n}" for n in range(COUNT)]},
        1: {f"{prefix}string": f"marker {marker_id}", f"{prefix}hash": {"id": marker_id, "count": str(COUNT)}},
    }


def write_redis(clients: Mapping[int, redis.Redis], marker_id: str) -> None:
    for db, keys in redis_keys(marker_id).items():
        with clients[db].pipeline(transaction=True) as pipe:
            pipe.delete(*keys)
            for key, value in keys.items():
                if isinstance(value, list):
                    pipe.rpush(key, *value)
                elif isinstance(value, dict):
                    pipe.hset(key, mapping=value)
                else:
                    pipe.set(key, value)
            pipe.execute()


def _read_redis(client: redis.Redis, key: str) -> Any:
    kind = client.type(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "string":
        return client.get(key)
    return f"a {kind}" if kind != "none" else None


def verify_redis(clients: Mapping[int, redis.Redis], marker_id: str) -> list[str]:
    problems = []
    for db, keys in redis_keys(marker_id).items():
        found = {key: value for key in keys if (value := _read_redis(clients[db], key)) is not None}
        extra = {key: "?" for key in clients[db].scan_iter(match=f"{redis_prefix(marker_id)}*") if key not in keys}
        problems += _differences(f"DB {db} key", keys, found | extra)
    return problems


def clean_redis(clients: Mapping[int, redis.Redis], marker_id: str) -> None:
    for db, keys in redis_keys(marker_id).items():
        clients[db].delete(*keys)


# --- Qdrant: points in a collection with ApeRAG's settings, through VECTOR_DB_CONTEXT -------------------------------


def qdrant_collection(marker_id: str) -> str:
    return f"dbstack_marker_{marker_id}"


def qdrant_points(marker_id: str) -> dict[str, tuple[list[float], dict[str, Any]]]:
    """Point id (a UUID, as ApeRAG's) -> (unit vector, payload with ApeRAG's tenant key)."""
    vectors = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.5, -0.5, 0.5, -0.5]]
    return {
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"dbstack-marker/{marker_id}/{n}")): (
            vectors[n % len(vectors)],
            {"text": f"marker {marker_id} point {n}", qdrant_ops.TENANT_KEY: f"marker{marker_id}"},
        )
        for n in range(COUNT)
    }


def write_qdrant(client: QdrantClient, marker_id: str) -> None:
    name = qdrant_collection(marker_id)
    if client.collection_exists(name):
        client.delete_collection(name)
    qdrant_ops.ensure_collection(client, name, DIMENSION)
    points = qdrant_points(marker_id)
    tenant = f"marker{marker_id}"
    qdrant_ops.upsert(
        client,
        name,
        tenant,
        [
            (point_id, vector, {k: v for k, v in payload.items() if k != qdrant_ops.TENANT_KEY})
            for point_id, (vector, payload) in points.items()
        ],
    )


def _plain_vector(vector: Any) -> Any:
    """An unnamed dense vector as a list of floats; anything else as it came (it then differs, visibly)."""
    if isinstance(vector, list) and all(isinstance(x, (int, float)) for x in vector):
        return [float(x) for x in vector]
    return vector


def verify_qdrant(client: QdrantClient, marker_id: str) -> list[str]:
    name = qdrant_collection(marker_id)
    if not client.collection_exists(name):
        return [f"collection {name} is missing"]
    written = qdrant_points(marker_id)
    stored = client.retrieve(name, ids=list(written), with_payload=True, with_vectors=True)
    found = {str(p.id): (_plain_vector(p.vector), dict(p.payload or {})) for p in stored}
    problems = _differences(f"collection {name} point", written, found)
    count = client.count(name, exact=True).count
    if count != len(written):
        problems.append(f"collection {name} holds {count} points, {len(written)} were written")
    return problems


def clean_qdrant(client: QdrantClient, marker_id: str) -> None:
    name = qdrant_collection(marker_id)
    if client.collection_exists(name):
        client.delete_collection(name)


# --- Elasticsearch: documents in an index, through ES_HOST ---------------------------------------------------------


def elasticsearch_index(marker_id: str) -> str:
    return f"dbstack-marker-{marker_id}"


def elasticsearch_documents(marker_id: str) -> dict[str, dict[str, str]]:
    """Document id -> source, shaped as ApeRAG indexes them (`name`, `content`)."""
    return {str(n): {"name": f"marker-{n}.md", "content": f"marker {marker_id} document {n}"} for n in range(COUNT)}


# Not ApeRAG's IK mapping: markers prove the data survives, the smoke suite proves the analyzers.
ELASTICSEARCH_MAPPING = {"properties": {"name": {"type": "keyword"}, "content": {"type": "text"}}}


def write_elasticsearch(es: Elasticsearch, marker_id: str) -> None:
    index = elasticsearch_index(marker_id)
    es.indices.delete(index=index, ignore_unavailable=True)
    es.indices.create(index=index, mappings=ELASTICSEARCH_MAPPING)
    for document_id, source in elasticsearch_documents(marker_id).items():
        es.index(index=index, id=document_id, document=source)
    # Searchable and on disk before a backup is taken.
    es.indices.refresh(index=index)
    es.indices.flush(index=index)


def verify_elasticsearch(es: Elasticsearch, marker_id: str) -> list[str]:
    index = elasticsearch_index(marker_id)
    if not es.indices.exists(index=index):
        return [f"index {index} is missing"]
    written = elasticsearch_documents(marker_id)
    docs = es.mget(index=index, ids=list(written))["docs"]
    found = {str(doc["_id"]): doc.get("_source") for doc in docs if doc.get("found")}
    problems = _differences(f"index {index} document", written, found)
    count = int(es.count(index=index)["count"])
    if count != len(written):
        problems.append(f"index {index} holds {count} documents, {len(written)} were written")
    return problems


def clean_elasticsearch(es: Elasticsearch, marker_id: str) -> None:
    es.indices.delete(index=elasticsearch_index(marker_id), ignore_unavailable=True)


# --- Neo4j: entities and a relation as LightRAG writes them, through NEO4J_URI (the home database) -----------------


def neo4j_prefix(marker_id: str) -> str:
    return f"dbstack-marker-{marker_id}-"


def neo4j_entities(marker_id: str) -> dict[str, str]:
    """entity_id -> description."""
    return {f"{neo4j_prefix(marker_id)}{n}": f"marker {marker_id} entity {n}" for n in range(COUNT)}


def write_neo4j(driver: Driver, marker_id: str) -> None:
    clean_neo4j(driver, marker_id)
    entities = list(neo4j_entities(marker_id).items())
    for entity_id, description in entities:
        # LightRAG's upsert_node: MERGE on :base {entity_id}, its type as a label.
        driver.execute_query(
            "MERGE (n:base {entity_id: $entity_id}) SET n += $properties SET n:`MARKER`",
            entity_id=entity_id,
            properties={"entity_id": entity_id, "entity_type": "MARKER", "description": description},
        )
    driver.execute_query(
        "MATCH (a:base {entity_id: $a}) MATCH (b:base {entity_id: $b}) MERGE (a)-[r:DIRECTED]-(b) SET r.weight = 1.0",
        a=entities[0][0],
        b=entities[1][0],
    )


def verify_neo4j(driver: Driver, marker_id: str) -> list[str]:
    records, _, _ = driver.execute_query(
        "MATCH (n:base) WHERE n.entity_id STARTS WITH $prefix "
        "RETURN n.entity_id AS id, n.description AS description, COUNT { (n)-[:DIRECTED]-() } AS relations",
        prefix=neo4j_prefix(marker_id),
    )
    found = {str(r["id"]): r["description"] for r in records}
    problems = _differences("entity", neo4j_entities(marker_id), found)
    relations = sum(int(r["relations"]) for r in records)
    if relations != 2:  # one relation, seen from both ends
        problems.append(f"{relations // 2} DIRECTED relations between the marker entities, 1 was written")
    return problems


def clean_neo4j(driver: Driver, marker_id: str) -> None:
    driver.execute_query(
        "MATCH (n:base) WHERE n.entity_id STARTS WITH $prefix DETACH DELETE n", prefix=neo4j_prefix(marker_id)
    )
