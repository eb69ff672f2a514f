"""PostgreSQL as ApeRAG uses it: DATABASE_URL through psycopg2 (its sync engine and Alembic) and asyncpg (its
async engine), with its pool settings; its tables created in `public` as its migrations create them; pgvector
through the raw SQL its LightRAG repository runs."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from smokekit import markers
from smokekit.aperag_urls import async_database_url, sync_database_url
from smokekit.errors import SmokeError, cleanup, scrubbed
from smokekit.gate import Gate
from smokekit.schema import AperagTables, DocumentIndexStatus, DocumentIndexType, aperag_tables, utc_now
from smokekit.settings import MarkerPhase, PostgresSettings
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.postgresql

CONNECT_TIMEOUT_S = 5
# Serialises CREATE EXTENSION across parallel runs: two concurrent first-time creations race on the catalog.
EXTENSION_LOCK_KEY = 0x5EC7_0125
# aperag/config.py: create_engine and create_async_engine, each with these, in every ApeRAG process.
APERAG_POOL = {"pool_size": 20, "max_overflow": 40, "pool_timeout": 60, "pool_recycle": 3600, "pool_pre_ping": True}
ENGINES_PER_PROCESS = 2
CONNECTIONS_FLOOR = ENGINES_PER_PROCESS * APERAG_POOL["pool_size"]
"""What one ApeRAG process keeps open when busy: both engines' pool_size. Fewer usable connections fail."""
CONNECTIONS_PEAK = ENGINES_PER_PROCESS * (APERAG_POOL["pool_size"] + APERAG_POOL["max_overflow"])
"""One process with both pools overflowing: fewer is a warning, not a failure."""


@dataclass(frozen=True)
class Postgres:
    engine: Engine
    tables: AperagTables
    settings: PostgresSettings


def new_id(length: int = 24) -> str:
    return secrets.token_hex(length // 2)


def _engine(pg_settings: PostgresSettings, gate: Gate, secret_values: list[str]) -> Engine:
    """ApeRAG's sync engine on DATABASE_URL, connected once (else the database is unreachable)."""
    url = pg_settings.database_url.reveal()
    try:
        with scrubbed("create_engine(DATABASE_URL) as ApeRAG's sync engine", secret_values):
            engine = create_engine(
                sync_database_url(url), **APERAG_POOL, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
            )
    except Exception as exc:
        # DATABASE_URL names no driver SQLAlchemy has (postgres:// since SQLAlchemy 1.4): ApeRAG fails the same way.
        gate.setup_failed("postgresql", exc)
    try:
        with scrubbed("connect through DATABASE_URL (psycopg2)", secret_values), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        gate.unreachable("postgresql", exc)
    return engine


@pytest.fixture(scope="module")
def pg(pg_settings: PostgresSettings, run_id: str, gate: Gate, secret_values: list[str]) -> Iterator[Postgres]:
    engine = _engine(pg_settings, gate, secret_values)
    tables = aperag_tables(f"{run_id}_")
    with (
        cleanup("dispose of the engine", engine.dispose, secret_values),
        cleanup(
            f"drop the run's tables ({run_id}_*) from public", lambda: tables.metadata.drop_all(engine), secret_values
        ),
    ):
        try:
            _prepare_public(engine, tables, secret_values)
        except Exception as exc:
            gate.setup_failed("postgresql", exc)
        yield Postgres(engine, tables, pg_settings)


def _prepare_public(engine: Engine, tables: AperagTables, secret_values: list[str]) -> None:
    """What ApeRAG's entrypoint and first migrations do: pgvector, then the tables, in `public`."""
    with engine.connect() as conn:
        user = conn.execute(text("SELECT current_user")).scalar_one()
        may_create = conn.execute(text("SELECT has_schema_privilege('public', 'CREATE')")).scalar_one()
    if not may_create:
        raise SmokeError(
            f"role {user} may not CREATE in schema public, where ApeRAG's Alembic migrations create its tables "
            f"(PostgreSQL 15+ leaves that to the database owner; GRANT CREATE ON SCHEMA public TO {user})"
        )
    with scrubbed("CREATE EXTENSION vector (ApeRAG's first migration)", secret_values), engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EXTENSION_LOCK_KEY})
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    with scrubbed("create ApeRAG's tables in public (as migration 0b274fcc91e2 does)", secret_values):
        tables.metadata.create_all(engine)


def test_database_url_connects_as_its_user_through_psycopg2(pg: Postgres) -> None:
    url = make_url(sync_database_url(pg.settings.database_url.reveal()))
    with pg.engine.connect() as conn:
        driver = conn.dialect.driver
        user = conn.execute(text("SELECT current_user")).scalar_one()
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        version = conn.execute(text("SHOW server_version")).scalar_one()
    assert driver == "psycopg2", f"DATABASE_URL gave SQLAlchemy driver {driver}, ApeRAG's sync engine uses psycopg2"
    assert (user, database) == (url.username, url.database)
    assert int(version.split(".")[0]) >= 12, f"PostgreSQL {version}"


@pytest.mark.anyio
async def test_async_engine_round_trips_a_vector_through_asyncpg(pg: Postgres, secret_values: list[str]) -> None:
    chunks = pg.tables.doc_chunks
    async_engine = create_async_engine(
        async_database_url(pg.settings.database_url.reveal()),
        **APERAG_POOL,
        connect_args={"timeout": CONNECT_TIMEOUT_S},
    )
    workspace = new_id()
    try:
        with scrubbed("connect through DATABASE_URL (asyncpg)", secret_values):
            async with async_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        async with async_engine.begin() as conn:
            await conn.execute(
                insert(chunks).values(
                    id="chunk-async", workspace=workspace, content="async", content_vector=[0.5, 0.25, 1.0]
                )
            )
        async with async_engine.connect() as conn:
            stored = (
                await conn.execute(select(chunks.c.content_vector).where(chunks.c.workspace == workspace))
            ).scalar_one()
    finally:
        await async_engine.dispose()
    assert [float(x) for x in stored] == [0.5, 0.25, 1.0]


V = "character varying"
TZ = "timestamp with time zone"
# Migration 0b274fcc91e2 (aperag/migration/versions/20250703133208-0b274fcc91e2.py), table by table: columns (type,
# NOT NULL), primary key, unique constraints and indexes, named as there.
MIGRATION: dict[str, dict[str, Any]] = {
    "document_index": {
        "columns": {
            "id": ("integer", True),
            "document_id": (f"{V}(24)", True),
            "index_type": ("documentindextype", True),
            "status": ("documentindexstatus", True),
            "version": ("integer", True),
            "observed_version": ("integer", True),
            "index_data": ("text", False),
            "error_message": ("text", False),
            "gmt_created": (TZ, True),
            "gmt_updated": (TZ, True),
            "gmt_last_reconciled": (TZ, False),
        },
        "primary_key": ["id"],
        "unique": {"uq_document_index": ["document_id", "index_type"]},
        "indexes": {
            "ix_document_index_document_id": ["document_id"],
            "ix_document_index_id": ["id"],
            "ix_document_index_index_type": ["index_type"],
            "ix_document_index_status": ["status"],
        },
    },
    "lightrag_doc_chunks": {
        "columns": {
            "id": (f"{V}(255)", True),
            "workspace": (f"{V}(255)", True),
            "full_doc_id": (f"{V}(256)", False),
            "chunk_order_index": ("integer", False),
            "tokens": ("integer", False),
            "content": ("text", False),
            "content_vector": ("vector", False),
            "file_path": (f"{V}(256)", False),
            "create_time": (TZ, True),
            "update_time": (TZ, True),
        },
        "primary_key": ["id", "workspace"],
        "unique": {},
        "indexes": {},
    },
    "lightrag_graph_edges": {
        "columns": {
            "id": ("bigint", True),
            "source_entity_id": (f"{V}(255)", True),
            "target_entity_id": (f"{V}(255)", True),
            "weight": ("numeric(10,6)", True),
            "keywords": ("text", False),
            "description": ("text", False),
            "source_id": ("text", False),
            "file_path": ("text", False),
            "workspace": (f"{V}(255)", True),
            "createtime": (TZ, True),
            "updatetime": (TZ, True),
        },
        "primary_key": ["id"],
        "unique": {
            "uq_lightrag_graph_edges_workspace_source_target": ["workspace", "source_entity_id", "target_entity_id"]
        },
        "indexes": {
            "idx_lightrag_edges_degree_calc": ["workspace", "source_entity_id", "target_entity_id", "weight"],
            "idx_lightrag_edges_metadata": ["workspace", "source_entity_id", "target_entity_id", "weight", "keywords"],
            "idx_lightrag_edges_weight": ["workspace", "weight"],
            "idx_lightrag_edges_workspace_createtime": ["workspace", "createtime"],
            "idx_lightrag_edges_workspace_source": ["workspace", "source_entity_id"],
            "idx_lightrag_edges_workspace_source_target": ["workspace", "source_entity_id", "target_entity_id"],
            "idx_lightrag_edges_workspace_target": ["workspace", "target_entity_id"],
            "idx_lightrag_edges_workspace_target_source": ["workspace", "target_entity_id", "source_entity_id"],
        },
    },
    "lightrag_graph_nodes": {
        "columns": {
            "id": ("bigint", True),
            "entity_id": (f"{V}(256)", True),
            "entity_name": (f"{V}(255)", False),
            "entity_type": (f"{V}(255)", False),
            "description": ("text", False),
            "source_id": ("text", False),
            "file_path": ("text", False),
            "workspace": (f"{V}(255)", True),
            "createtime": (TZ, True),
            "updatetime": (TZ, True),
        },
        "primary_key": ["id"],
        "unique": {"uq_lightrag_graph_nodes_workspace_entity": ["workspace", "entity_id"]},
        "indexes": {
            "idx_lightrag_nodes_entity_name": ["workspace", "entity_name"],
            "idx_lightrag_nodes_entity_type": ["workspace", "entity_type"],
            "idx_lightrag_nodes_entity_type_createtime": ["workspace", "entity_type", "createtime"],
            "idx_lightrag_nodes_workspace_createtime": ["workspace", "createtime"],
            "idx_lightrag_nodes_workspace_type_id": ["workspace", "entity_type", "entity_id"],
        },
    },
    "lightrag_vdb_entity": {
        "columns": {
            "id": (f"{V}(255)", True),
            "workspace": (f"{V}(255)", True),
            "entity_name": (f"{V}(255)", False),
            "content": ("text", False),
            "content_vector": ("vector", False),
            "create_time": (TZ, True),
            "update_time": (TZ, True),
            "chunk_ids": (f"{V}[]", False),
            "file_path": ("text", False),
        },
        "primary_key": ["id", "workspace"],
        "unique": {},
        "indexes": {},
    },
    "lightrag_vdb_relation": {
        "columns": {
            "id": (f"{V}(255)", True),
            "workspace": (f"{V}(255)", True),
            "source_id": (f"{V}(256)", False),
            "target_id": (f"{V}(256)", False),
            "content": ("text", False),
            "content_vector": ("vector", False),
            "create_time": (TZ, True),
            "update_time": (TZ, True),
            "chunk_ids": (f"{V}[]", False),
            "file_path": ("text", False),
        },
        "primary_key": ["id", "workspace"],
        "unique": {},
        "indexes": {},
    },
}
ENUMS = {
    "documentindextype": [t.value for t in DocumentIndexType],
    "documentindexstatus": [s.value for s in DocumentIndexStatus],
}

COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND left(c.relname, length(:p)) = :p
  AND a.attnum > 0 AND NOT a.attisdropped
"""
CONSTRAINTS_SQL = """
SELECT t.relname, c.conname, c.contype, array_agg(a.attname ORDER BY k.ord)
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE t.relnamespace = 'public'::regnamespace AND left(t.relname, length(:p)) = :p AND c.contype IN ('p', 'u')
GROUP BY t.relname, c.conname, c.contype
"""
INDEXES_SQL = """
SELECT t.relname, ic.relname, array_agg(a.attname ORDER BY k.ord)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE t.relnamespace = 'public'::regnamespace AND left(t.relname, length(:p)) = :p
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
GROUP BY t.relname, ic.relname
"""
ENUMS_SQL = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = 'public'::regnamespace AND left(t.typname, length(:p)) = :p GROUP BY t.typname
"""


def test_tables_in_public_match_aperag_migration(pg: Postgres) -> None:
    prefix = pg.tables.prefix

    def bare(name: str) -> str:
        return name[len(prefix) :] if name.startswith(prefix) else name

    found: dict[str, dict[str, Any]] = {
        table: {"columns": {}, "primary_key": [], "unique": {}, "indexes": {}} for table in MIGRATION
    }
    with pg.engine.connect() as conn:
        for table, column, type_, not_null in conn.execute(text(COLUMNS_SQL), {"p": prefix}):
            found[bare(table)]["columns"][column] = (bare(type_), not_null)
        for table, name, kind, columns in conn.execute(text(CONSTRAINTS_SQL), {"p": prefix}):
            if kind == "p":
                found[bare(table)]["primary_key"] = columns
            else:
                found[bare(table)]["unique"][bare(name)] = columns
        for table, name, columns in conn.execute(text(INDEXES_SQL), {"p": prefix}):
            found[bare(table)]["indexes"][bare(name)] = columns
        enums = {bare(name): labels for name, labels in conn.execute(text(ENUMS_SQL), {"p": prefix})}
    for table, expected in MIGRATION.items():
        assert found[table] == expected, f"{table} differs from ApeRAG's migration"
    assert enums == ENUMS


def test_document_index_enums_and_unique_constraint_hold(pg: Postgres) -> None:
    document_index = pg.tables.document_index
    document_id = new_id()
    with pg.engine.begin() as conn:
        conn.execute(insert(document_index).values(document_id=document_id, index_type=DocumentIndexType.FULLTEXT))
    with pytest.raises(IntegrityError) as caught, pg.engine.begin() as conn:
        conn.execute(insert(document_index).values(document_id=document_id, index_type=DocumentIndexType.FULLTEXT))
    constraint = getattr(getattr(caught.value.orig, "diag", None), "constraint_name", None)
    assert constraint == pg.tables.name("uq_document_index")
    unknown_status = insert(document_index).values(document_id=new_id(), index_type="VECTOR", status="UNKNOWN")
    with pytest.raises(DataError), pg.engine.begin() as conn:
        # Not one of the enum's labels: the native enum refuses it (SQLAlchemy's Enum does not check on insert).
        conn.execute(unknown_status)
    with pg.engine.begin() as conn:
        # Same document, another index type: allowed.
        conn.execute(insert(document_index).values(document_id=document_id, index_type=DocumentIndexType.GRAPH))
        rows = conn.execute(
            select(document_index.c.index_type, document_index.c.status)
            .where(document_index.c.document_id == document_id)
            .order_by(document_index.c.index_type)
        ).all()
    assert [tuple(row) for row in rows] == [("FULLTEXT", "PENDING"), ("GRAPH", "PENDING")]


# aperag/db/repositories/lightrag.py's chunk upsert: raw SQL through the sync session, the vector bound as a Python
# list (psycopg2 sends an ARRAY; pgvector casts it to vector on assignment).
CHUNK_UPSERT = """
INSERT INTO "{table}" (workspace, id, tokens, chunk_order_index, full_doc_id, content, content_vector, file_path,
                       create_time, update_time)
VALUES (:workspace, :id, :tokens, :chunk_order_index, :full_doc_id, :content, :content_vector, :file_path,
        :create_time, :update_time)
ON CONFLICT (workspace, id) DO UPDATE SET
    content = EXCLUDED.content,
    content_vector = CASE WHEN EXCLUDED.content_vector IS NOT NULL THEN EXCLUDED.content_vector
                          ELSE "{table}".content_vector END,
    update_time = EXCLUDED.update_time
"""
# Its similarity search: the embedding pasted into a vector literal, cosine distance through `<=>`.
SIMILARITY = """
SELECT id, content, 1 - (content_vector <=> '[{embedding}]'::vector) AS distance
FROM "{table}"
WHERE workspace = :workspace AND 1 - (content_vector <=> '[{embedding}]'::vector) > :threshold
ORDER BY distance DESC LIMIT :top_k
"""


def _upsert_chunk(pg: Postgres, workspace: str, chunk_id: str, content: str, vector: list[float] | None) -> None:
    with pg.engine.begin() as conn:
        conn.execute(
            text(CHUNK_UPSERT.format(table=pg.tables.doc_chunks.name)),
            {
                "workspace": workspace,
                "id": chunk_id,
                "tokens": len(content.split()),
                "chunk_order_index": 0,
                "full_doc_id": "doc-1",
                "content": content,
                "content_vector": vector,
                "file_path": "guide.md",
                "create_time": utc_now(),
                "update_time": utc_now(),
            },
        )


def test_chunk_upsert_and_similarity_search_run_as_lightrag_runs_them(pg: Postgres) -> None:
    workspace = new_id()
    for chunk_id, vector in {"east": [1.0, 0.0, 0.0], "north": [0.0, 1.0, 0.0], "up": [0.0, 0.0, 1.0]}.items():
        _upsert_chunk(pg, workspace, chunk_id, f"points {chunk_id}", vector)
    # A second upsert without a vector keeps the stored one and replaces the content.
    _upsert_chunk(pg, workspace, "north", "points north, updated", None)
    embedding = ",".join(map(str, [0.1, 0.9, 0.0]))
    with pg.engine.connect() as conn:
        hits = conn.execute(
            text(SIMILARITY.format(table=pg.tables.doc_chunks.name, embedding=embedding)),
            {"workspace": workspace, "threshold": 0.2, "top_k": 2},
        ).all()
    assert [(hit.id, hit.content) for hit in hits] == [("north", "points north, updated")]
    assert hits[0].distance > 0.9


def test_graph_nodes_and_edges_upsert_on_their_unique_keys(pg: Postgres) -> None:
    nodes, edges = pg.tables.graph_nodes, pg.tables.graph_edges
    workspace = new_id()

    def upsert_node(entity_id: str, description: str) -> None:
        # aperag/db/repositories/graph.py upsert_graph_node: ON CONFLICT (workspace, entity_id).
        statement = insert(nodes).values(
            workspace=workspace, entity_id=entity_id, entity_type="PERSON", description=description
        )
        statement = statement.on_conflict_do_update(
            index_elements=["workspace", "entity_id"],
            set_={"description": statement.excluded.description, "updatetime": func.now()},
        )
        with pg.engine.begin() as conn:
            conn.execute(statement)

    def upsert_edge(weight: float) -> None:
        statement = insert(edges).values(
            workspace=workspace, source_entity_id="Alice", target_entity_id="Bob", weight=weight, keywords="knows"
        )
        statement = statement.on_conflict_do_update(
            index_elements=["workspace", "source_entity_id", "target_entity_id"],
            set_={"weight": statement.excluded.weight, "updatetime": func.now()},
        )
        with pg.engine.begin() as conn:
            conn.execute(statement)

    for description in ("first", "second"):
        upsert_node("Alice", description)
    upsert_node("Bob", "only")
    for weight in (1.0, 2.5):
        upsert_edge(weight)
    with pg.engine.connect() as conn:
        stored_nodes = conn.execute(
            select(nodes.c.entity_id, nodes.c.description).where(nodes.c.workspace == workspace).order_by(nodes.c.id)
        ).all()
        stored_edges = conn.execute(select(edges.c.weight).where(edges.c.workspace == workspace)).scalars().all()
    assert [tuple(row) for row in stored_nodes] == [("Alice", "second"), ("Bob", "only")]
    assert [float(weight) for weight in stored_edges] == [2.5]


def test_entity_and_relation_rows_keep_vectors_and_chunk_id_arrays(pg: Postgres) -> None:
    entity, relation = pg.tables.vdb_entity, pg.tables.vdb_relation
    workspace = new_id()
    with pg.engine.begin() as conn:
        conn.execute(
            insert(entity).values(
                id="ent-1", workspace=workspace, entity_name="Alice", content_vector=[0.0, 1.0], chunk_ids=["c1", "c2"]
            )
        )
        conn.execute(
            insert(relation).values(
                id="rel-1", workspace=workspace, source_id="Alice", target_id="Bob", chunk_ids=["c2"], content="knows"
            )
        )
    with pg.engine.connect() as conn:
        stored_entity = conn.execute(
            select(entity.c.content_vector, entity.c.chunk_ids).where(entity.c.workspace == workspace)
        ).one()
        stored_relation = conn.execute(
            select(relation.c.chunk_ids).where(relation.c.workspace == workspace)
        ).scalar_one()
    assert [float(x) for x in stored_entity.content_vector] == [0.0, 1.0]
    assert (stored_entity.chunk_ids, stored_relation) == (["c1", "c2"], ["c2"])


def test_rolled_back_transaction_leaves_nothing_behind(pg: Postgres) -> None:
    document_index, chunks = pg.tables.document_index, pg.tables.doc_chunks
    document_id, workspace = new_id(), new_id()
    with pg.engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(insert(document_index).values(document_id=document_id, index_type=DocumentIndexType.VECTOR))
        conn.execute(insert(chunks).values(id="chunk", workspace=workspace, content="gone", content_vector=[1.0]))
        seen_inside = conn.scalar(select(func.count()).where(document_index.c.document_id == document_id))
        transaction.rollback()
    with pg.engine.connect() as conn:
        index_rows = conn.scalar(select(func.count()).where(document_index.c.document_id == document_id))
        chunk_rows = conn.scalar(select(func.count()).where(chunks.c.workspace == workspace))
    assert seen_inside == 1
    assert (index_rows, chunk_rows) == (0, 0)


def test_max_connections_holds_aperag_pools(
    pg: Postgres, record_testsuite_property: Callable[[str, object], None], warn: Callable[[str, str], None]
) -> None:
    with pg.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT name, setting FROM pg_settings "
                "WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
            )
        ).all()
        settings: dict[str, int] = {str(name): int(setting) for name, setting in rows}
        superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one()
    max_connections = settings["max_connections"]
    # Reserved slots (reserved_connections exists from PostgreSQL 16) are out of reach for a non-superuser.
    reserved = (
        0 if superuser else settings.get("superuser_reserved_connections", 0) + settings.get("reserved_connections", 0)
    )
    usable = max_connections - reserved
    record_testsuite_property("postgresql_max_connections", max_connections)
    assert usable >= CONNECTIONS_FLOOR, (
        f"{usable} connections usable by this role (max_connections {max_connections}, {reserved} reserved); one "
        f"ApeRAG process holds up to {CONNECTIONS_FLOOR} (two engines, pool_size 20)"
    )
    if usable < CONNECTIONS_PEAK:
        warn(
            "postgresql",
            f"{usable} connections usable (max_connections {max_connections}); one ApeRAG process may open "
            f"{CONNECTIONS_PEAK} at peak (two engines, pool_size 20 + max_overflow 40)",
        )


def test_markers(
    marker_phase: MarkerPhase, pg_settings: PostgresSettings, gate: Gate, secret_values: list[str]
) -> None:
    """Marker rows with pgvector vectors in public (smokekit.markers), through ApeRAG's sync engine."""
    engine = _engine(pg_settings, gate, secret_values)
    marker_id = marker_phase.marker_id
    try:
        gate.markers(
            "postgresql",
            marker_phase,
            write=lambda: markers.write_postgresql(engine, marker_id),
            verify=lambda: markers.verify_postgresql(engine, marker_id),
            clean=lambda: markers.clean_postgresql(engine, marker_id),
        )
    finally:
        engine.dispose()
