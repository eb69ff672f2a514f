"""PostgreSQL as ApeRAG uses it: SQLAlchemy 2 over psycopg 3 and asyncpg, pgvector, native enums."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from smokekit.errors import scrubbed
from smokekit.gate import Gate
from smokekit.models import (
    Base,
    DocumentIndex,
    DocumentIndexStatus,
    DocumentIndexType,
    DocumentStatus,
    LightRAGDocChunks,
    LightRAGGraphEdge,
    LightRAGGraphNode,
    LightRAGVDBEntity,
    LightRAGVDBRelation,
    derive_document_status,
)
from smokekit.settings import PostgresSettings
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

pytestmark = pytest.mark.postgresql

CONNECT_TIMEOUT_S = 5
# Serialises CREATE EXTENSION across parallel runs: two concurrent first-time creations race on the catalog.
EXTENSION_LOCK_KEY = 0x5EC7_0125


def pg_url(settings: PostgresSettings, driver: str) -> URL:
    # URL.create escapes every special character itself; the URL is never rendered with its password.
    return URL.create(
        f"postgresql+{driver}",
        username=settings.user,
        password=settings.password.reveal() or None,
        host=settings.host,
        port=settings.port,
        database=settings.database,
    )


def new_id(length: int = 24) -> str:
    return secrets.token_hex(length // 2)


@pytest.fixture(scope="module")
def pg_schema(run_id: str) -> str:
    return run_id


@pytest.fixture(scope="module")
def engine(pg_settings: PostgresSettings, pg_schema: str, gate: Gate, secret_values: list[str]) -> Iterator[Engine]:
    engine = create_engine(
        pg_url(pg_settings, "psycopg"),
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "dbstack-smoke",
            # Unqualified names, enum types too, land in this run's schema; `vector` resolves from public.
            "options": f"-c search_path={pg_schema},public",
        },
    )
    try:
        with scrubbed("sync connect", secret_values), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        gate.unreachable("postgresql", exc)
    try:
        with scrubbed("prepare schema", secret_values):
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EXTENSION_LOCK_KEY})
                conn.execute(text("SET LOCAL search_path TO public"))
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{pg_schema}"'))
            Base.metadata.create_all(engine)
        yield engine
    finally:
        with scrubbed("drop schema", secret_values), engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{pg_schema}" CASCADE'))
        engine.dispose()


def test_sync_connection_runs_queries_as_configured_user(engine: Engine, pg_settings: PostgresSettings) -> None:
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version()")).scalar_one()
        user = conn.execute(text("SELECT current_user")).scalar_one()
        database = conn.execute(text("SELECT current_database()")).scalar_one()
    assert version.startswith("PostgreSQL")
    assert (user, database) == (pg_settings.user, pg_settings.database)


@pytest.mark.anyio
async def test_async_connection_round_trips_a_vector(
    engine: Engine, pg_settings: PostgresSettings, pg_schema: str, secret_values: list[str]
) -> None:
    async_engine = create_async_engine(
        pg_url(pg_settings, "asyncpg"),
        connect_args={
            "timeout": CONNECT_TIMEOUT_S,
            "server_settings": {"search_path": f"{pg_schema},public", "application_name": "dbstack-smoke"},
        },
    )
    workspace = new_id()
    try:
        with scrubbed("async connect", secret_values):
            async with async_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        async with async_engine.begin() as conn:
            await conn.execute(
                insert(LightRAGDocChunks).values(
                    id="chunk-async", workspace=workspace, content="async", content_vector=[0.5, 0.25, 1.0]
                )
            )
        async with async_engine.connect() as conn:
            stored = (
                await conn.execute(
                    select(LightRAGDocChunks.content_vector).where(LightRAGDocChunks.workspace == workspace)
                )
            ).scalar_one()
    finally:
        await async_engine.dispose()
    assert stored is not None
    assert [float(x) for x in stored] == [0.5, 0.25, 1.0]


def test_vector_extension_is_installed_and_computes_cosine_distance(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EXTENSION_LOCK_KEY})
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar_one()
        distance = conn.execute(text("SELECT '[1,2,3]'::vector <=> '[2,4,6]'::vector")).scalar_one()
    assert version
    assert distance == pytest.approx(0.0, abs=1e-6)


def test_orm_schema_has_native_enums_dimensionless_vectors_and_string_arrays(engine: Engine, pg_schema: str) -> None:
    with engine.connect() as conn:
        enum_labels = conn.execute(
            text(
                "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t "
                "JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = :schema GROUP BY t.typname"
            ),
            {"schema": pg_schema},
        ).all()
        column_types = conn.execute(
            text(
                "SELECT c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod) "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema AND a.attname IN ('content_vector', 'chunk_ids', 'status') "
                "AND a.attnum > 0"
            ),
            {"schema": pg_schema},
        ).all()
    assert {name: labels for name, labels in enum_labels} == {
        "documentindextype": [t.value for t in DocumentIndexType],
        "documentindexstatus": [s.value for s in DocumentIndexStatus],
    }
    assert {column: type_ for column, type_ in column_types} == {
        "document_index.status": "documentindexstatus",
        "lightrag_doc_chunks.content_vector": "vector",
        "lightrag_vdb_entity.content_vector": "vector",
        "lightrag_vdb_entity.chunk_ids": "character varying[]",
        "lightrag_vdb_relation.content_vector": "vector",
        "lightrag_vdb_relation.chunk_ids": "character varying[]",
    }


def test_document_index_row_gets_aperag_defaults(engine: Engine) -> None:
    document_id = new_id()
    with Session(engine) as session, session.begin():
        session.add(DocumentIndex(document_id=document_id, index_type=DocumentIndexType.VECTOR))
    with Session(engine) as session:
        row = session.scalars(select(DocumentIndex).where(DocumentIndex.document_id == document_id)).one()
    assert (row.status, row.version, row.observed_version) == (DocumentIndexStatus.PENDING, 1, 0)
    assert row.gmt_created is not None and row.gmt_created.tzinfo is not None
    assert row.gmt_last_reconciled is None


def test_duplicate_document_index_violates_uq_document_index(engine: Engine) -> None:
    document_id = new_id()
    with Session(engine) as session, session.begin():
        session.add(DocumentIndex(document_id=document_id, index_type=DocumentIndexType.FULLTEXT))
    with pytest.raises(IntegrityError) as caught, Session(engine) as session, session.begin():
        session.add(DocumentIndex(document_id=document_id, index_type=DocumentIndexType.FULLTEXT))
    assert caught.value.orig is not None
    assert getattr(caught.value.orig.diag, "constraint_name", None) == "uq_document_index"  # type: ignore[attr-defined]
    with Session(engine) as session, session.begin():
        # Same document, another index type: allowed.
        session.add(DocumentIndex(document_id=document_id, index_type=DocumentIndexType.GRAPH))


def test_upsert_on_conflict_updates_chunk_entity_and_relation(engine: Engine) -> None:
    workspace = new_id()
    chunk_upsert = insert(LightRAGDocChunks).values(
        id="chunk-1", workspace=workspace, full_doc_id="doc-1", content="first", content_vector=[1.0, 0.0]
    )
    chunk_upsert = chunk_upsert.on_conflict_do_update(
        index_elements=[LightRAGDocChunks.id, LightRAGDocChunks.workspace],
        set_={"content": chunk_upsert.excluded.content, "update_time": func.now()},
    )
    entity_upsert = insert(LightRAGVDBEntity).values(
        id="ent-1", workspace=workspace, entity_name="Alice", chunk_ids=["chunk-1"], content_vector=[0.0, 1.0]
    )
    entity_upsert = entity_upsert.on_conflict_do_update(
        index_elements=[LightRAGVDBEntity.id, LightRAGVDBEntity.workspace],
        set_={"chunk_ids": entity_upsert.excluded.chunk_ids},
    )
    relation_upsert = insert(LightRAGVDBRelation).values(
        id="rel-1", workspace=workspace, source_id="Alice", target_id="Bob", content="knows", chunk_ids=["chunk-1"]
    )
    relation_upsert = relation_upsert.on_conflict_do_update(
        index_elements=[LightRAGVDBRelation.id, LightRAGVDBRelation.workspace],
        set_={"content": relation_upsert.excluded.content, "chunk_ids": relation_upsert.excluded.chunk_ids},
    )
    with engine.begin() as conn:
        conn.execute(chunk_upsert)
        conn.execute(entity_upsert)
        conn.execute(relation_upsert)
    with engine.begin() as conn:
        conn.execute(chunk_upsert.values(content="second"))
        conn.execute(entity_upsert.values(chunk_ids=["chunk-1", "chunk-2"]))
        conn.execute(relation_upsert.values(content="works with", chunk_ids=["chunk-2"]))
    with engine.connect() as conn:
        contents = (
            conn.execute(select(LightRAGDocChunks.content).where(LightRAGDocChunks.workspace == workspace))
            .scalars()
            .all()
        )
        chunk_ids = (
            conn.execute(select(LightRAGVDBEntity.chunk_ids).where(LightRAGVDBEntity.workspace == workspace))
            .scalars()
            .all()
        )
        relations = conn.execute(
            select(LightRAGVDBRelation.content, LightRAGVDBRelation.chunk_ids).where(
                LightRAGVDBRelation.workspace == workspace
            )
        ).all()
    assert contents == ["second"]
    assert chunk_ids == [["chunk-1", "chunk-2"]]
    assert [tuple(row) for row in relations] == [("works with", ["chunk-2"])]


def test_cosine_nearest_neighbour_returns_the_closest_chunk(engine: Engine) -> None:
    workspace = new_id()
    vectors = {"east": [1.0, 0.0, 0.0], "north": [0.0, 1.0, 0.0], "up": [0.0, 0.0, 1.0]}
    with engine.begin() as conn:
        conn.execute(
            insert(LightRAGDocChunks),
            [{"id": name, "workspace": workspace, "content": name, "content_vector": v} for name, v in vectors.items()],
        )
    # Scaled to show the metric is cosine, not Euclidean: by length "east" would be nearer.
    query_vector = [0.5, 4.0, 0.2]
    distance = LightRAGDocChunks.content_vector.cosine_distance(query_vector)
    statement = (
        select(LightRAGDocChunks.id, distance.label("distance"))
        .where(LightRAGDocChunks.workspace == workspace)
        .order_by(distance)
        .limit(1)
    )
    assert "<=>" in str(statement.compile(engine))
    with engine.connect() as conn:
        nearest, nearest_distance = conn.execute(statement).one()
    assert nearest == "north"
    assert 0.0 <= nearest_distance < 0.1


def test_graph_nodes_and_edges_reject_duplicate_keys_and_upsert(engine: Engine) -> None:
    workspace = new_id()
    with engine.begin() as conn:
        conn.execute(insert(LightRAGGraphNode).values(workspace=workspace, entity_id="Alice", entity_type="PERSON"))
        conn.execute(
            insert(LightRAGGraphEdge).values(workspace=workspace, source_entity_id="Alice", target_entity_id="Bob")
        )
    for duplicate in (
        insert(LightRAGGraphNode).values(workspace=workspace, entity_id="Alice"),
        insert(LightRAGGraphEdge).values(workspace=workspace, source_entity_id="Alice", target_entity_id="Bob"),
    ):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(duplicate)
    node_upsert = insert(LightRAGGraphNode).values(workspace=workspace, entity_id="Alice", description="updated")
    with engine.begin() as conn:
        conn.execute(
            node_upsert.on_conflict_do_update(
                constraint="uq_lightrag_graph_nodes_workspace_entity",
                set_={"description": node_upsert.excluded.description},
            )
        )
    with engine.connect() as conn:
        nodes = conn.execute(
            select(LightRAGGraphNode.entity_type, LightRAGGraphNode.description).where(
                LightRAGGraphNode.workspace == workspace
            )
        ).all()
    assert [tuple(node) for node in nodes] == [("PERSON", "updated")]


S = DocumentIndexStatus


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param([S.ACTIVE, S.FAILED, S.CREATING], DocumentStatus.FAILED, id="any-failed-is-failed"),
        pytest.param([S.ACTIVE, S.CREATING, S.PENDING], DocumentStatus.RUNNING, id="creating-is-running"),
        pytest.param([S.ACTIVE, S.DELETION_IN_PROGRESS], DocumentStatus.RUNNING, id="deleting-is-running"),
        pytest.param([S.ACTIVE, S.ACTIVE, S.ACTIVE], DocumentStatus.COMPLETE, id="all-active-is-complete"),
        pytest.param([S.ACTIVE, S.PENDING, S.DELETING], DocumentStatus.PENDING, id="otherwise-pending"),
    ],
)
def test_document_status_derives_from_stored_index_rows(
    engine: Engine, statuses: list[DocumentIndexStatus], expected: DocumentStatus
) -> None:
    document_id = new_id()
    with Session(engine) as session, session.begin():
        session.add_all(
            DocumentIndex(document_id=document_id, index_type=index_type, status=status)
            for index_type, status in zip(DocumentIndexType, statuses, strict=False)
        )
    with Session(engine) as session:
        stored = session.scalars(select(DocumentIndex.status).where(DocumentIndex.document_id == document_id)).all()
    assert sorted(stored) == sorted(statuses)
    assert derive_document_status(stored) is expected


def test_rolled_back_transaction_leaves_nothing_behind(engine: Engine) -> None:
    document_id, workspace = new_id(), new_id()
    with Session(engine) as session:
        session.begin()
        session.add(DocumentIndex(document_id=document_id, index_type=DocumentIndexType.VECTOR))
        session.add(LightRAGDocChunks(id="chunk", workspace=workspace, content="gone", content_vector=[1.0]))
        session.flush()
        seen_inside = session.scalar(select(func.count()).where(DocumentIndex.document_id == document_id))
        session.rollback()
    with engine.connect() as conn:
        index_rows = conn.scalar(select(func.count()).where(DocumentIndex.document_id == document_id))
        chunk_rows = conn.scalar(select(func.count()).where(LightRAGDocChunks.workspace == workspace))
    assert seen_inside == 1
    assert (index_rows, chunk_rows) == (0, 0)
