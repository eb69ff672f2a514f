"""ApeRAG's document-index, vector and graph tables, as its Alembic migration 0b274fcc91e2 creates them.

Each smoke run creates them in `public` (where the migrations put them) under names prefixed with its run id,
types, constraints and indexes too, so it never meets ApeRAG's own tables or another run's. Column defaults are
the ORM's Python-side ones (aperag/db/models.py): the migration gives the columns no server default.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    Enum,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)


class DocumentIndexType(enum.StrEnum):
    VECTOR = "VECTOR"
    FULLTEXT = "FULLTEXT"
    GRAPH = "GRAPH"


class DocumentIndexStatus(enum.StrEnum):
    PENDING = "PENDING"
    CREATING = "CREATING"
    ACTIVE = "ACTIVE"
    DELETING = "DELETING"
    DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"
    FAILED = "FAILED"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _timestamp(name: str, nullable: bool = False) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=nullable, default=None if nullable else utc_now)


@dataclass(frozen=True)
class AperagTables:
    prefix: str
    metadata: MetaData
    document_index: Table
    doc_chunks: Table
    vdb_entity: Table
    vdb_relation: Table
    graph_nodes: Table
    graph_edges: Table

    def name(self, unprefixed: str) -> str:
        return f"{self.prefix}{unprefixed}"


def aperag_tables(prefix: str) -> AperagTables:
    """The tables under `prefix` (a run id and `_`); PostgreSQL's 63-byte names leave 16 bytes for it."""
    metadata = MetaData()

    def n(name: str) -> str:
        return f"{prefix}{name}"

    document_index = Table(
        n("document_index"),
        metadata,
        Column("id", Integer, nullable=False),
        Column("document_id", String(24), nullable=False),
        Column("index_type", Enum(*[t.value for t in DocumentIndexType], name=n("documentindextype")), nullable=False),
        Column(
            "status",
            Enum(*[s.value for s in DocumentIndexStatus], name=n("documentindexstatus")),
            nullable=False,
            default=DocumentIndexStatus.PENDING.value,
        ),
        Column("version", Integer, nullable=False, default=1),
        Column("observed_version", Integer, nullable=False, default=0),
        Column("index_data", Text, nullable=True),
        Column("error_message", Text, nullable=True),
        _timestamp("gmt_created"),
        _timestamp("gmt_updated"),
        _timestamp("gmt_last_reconciled", nullable=True),
        PrimaryKeyConstraint("id"),
        UniqueConstraint("document_id", "index_type", name=n("uq_document_index")),
        Index(n("ix_document_index_document_id"), "document_id"),
        Index(n("ix_document_index_id"), "id"),
        Index(n("ix_document_index_index_type"), "index_type"),
        Index(n("ix_document_index_status"), "status"),
    )
    doc_chunks = Table(
        n("lightrag_doc_chunks"),
        metadata,
        Column("id", String(255), nullable=False),
        Column("workspace", String(255), nullable=False),
        Column("full_doc_id", String(256)),
        Column("chunk_order_index", Integer),
        Column("tokens", Integer),
        Column("content", Text),
        Column("content_vector", Vector()),
        Column("file_path", String(256)),
        _timestamp("create_time"),
        _timestamp("update_time"),
        PrimaryKeyConstraint("id", "workspace"),
    )
    graph_edges = Table(
        n("lightrag_graph_edges"),
        metadata,
        Column("id", BigInteger, autoincrement=True, nullable=False),
        Column("source_entity_id", String(255), nullable=False),
        Column("target_entity_id", String(255), nullable=False),
        Column("weight", Numeric(precision=10, scale=6), nullable=False),
        Column("keywords", Text),
        Column("description", Text),
        Column("source_id", Text),
        Column("file_path", Text),
        Column("workspace", String(255), nullable=False),
        _timestamp("createtime"),
        _timestamp("updatetime"),
        PrimaryKeyConstraint("id"),
        UniqueConstraint(
            "workspace",
            "source_entity_id",
            "target_entity_id",
            name=n("uq_lightrag_graph_edges_workspace_source_target"),
        ),
        Index(n("idx_lightrag_edges_degree_calc"), "workspace", "source_entity_id", "target_entity_id", "weight"),
        Index(
            n("idx_lightrag_edges_metadata"), "workspace", "source_entity_id", "target_entity_id", "weight", "keywords"
        ),
        Index(n("idx_lightrag_edges_weight"), "workspace", "weight"),
        Index(n("idx_lightrag_edges_workspace_createtime"), "workspace", "createtime"),
        Index(n("idx_lightrag_edges_workspace_source"), "workspace", "source_entity_id"),
        Index(n("idx_lightrag_edges_workspace_source_target"), "workspace", "source_entity_id", "target_entity_id"),
        Index(n("idx_lightrag_edges_workspace_target"), "workspace", "target_entity_id"),
        Index(n("idx_lightrag_edges_workspace_target_source"), "workspace", "target_entity_id", "source_entity_id"),
    )
    graph_nodes = Table(
        n("lightrag_graph_nodes"),
        metadata,
        Column("id", BigInteger, autoincrement=True, nullable=False),
        Column("entity_id", String(256), nullable=False),
        Column("entity_name", String(255)),
        Column("entity_type", String(255)),
        Column("description", Text),
        Column("source_id", Text),
        Column("file_path", Text),
        Column("workspace", String(255), nullable=False),
        _timestamp("createtime"),
        _timestamp("updatetime"),
        PrimaryKeyConstraint("id"),
        UniqueConstraint("workspace", "entity_id", name=n("uq_lightrag_graph_nodes_workspace_entity")),
        Index(n("idx_lightrag_nodes_entity_name"), "workspace", "entity_name"),
        Index(n("idx_lightrag_nodes_entity_type"), "workspace", "entity_type"),
        Index(n("idx_lightrag_nodes_entity_type_createtime"), "workspace", "entity_type", "createtime"),
        Index(n("idx_lightrag_nodes_workspace_createtime"), "workspace", "createtime"),
        Index(n("idx_lightrag_nodes_workspace_type_id"), "workspace", "entity_type", "entity_id"),
    )
    vdb_entity = Table(
        n("lightrag_vdb_entity"),
        metadata,
        Column("id", String(255), nullable=False),
        Column("workspace", String(255), nullable=False),
        Column("entity_name", String(255)),
        Column("content", Text),
        Column("content_vector", Vector()),
        _timestamp("create_time"),
        _timestamp("update_time"),
        Column("chunk_ids", ARRAY(String())),
        Column("file_path", Text),
        PrimaryKeyConstraint("id", "workspace"),
    )
    vdb_relation = Table(
        n("lightrag_vdb_relation"),
        metadata,
        Column("id", String(255), nullable=False),
        Column("workspace", String(255), nullable=False),
        Column("source_id", String(256)),
        Column("target_id", String(256)),
        Column("content", Text),
        Column("content_vector", Vector()),
        _timestamp("create_time"),
        _timestamp("update_time"),
        Column("chunk_ids", ARRAY(String())),
        Column("file_path", Text),
        PrimaryKeyConstraint("id", "workspace"),
    )
    return AperagTables(
        prefix, metadata, document_index, doc_chunks, vdb_entity, vdb_relation, graph_nodes, graph_edges
    )
