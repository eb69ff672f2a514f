"""ApeRAG-like ORM models: the shapes ApeRAG's app puts into PostgreSQL, reduced to what a smoke test needs.

Tables are declared without a schema; each smoke run places them in its own schema through `search_path`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    DateTime,
    Enum,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


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


class DocumentStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


def derive_document_status(index_statuses: Iterable[DocumentIndexStatus]) -> DocumentStatus:
    """ApeRAG's rule: any FAILED wins, then any work in flight, then all ACTIVE; otherwise PENDING."""
    statuses = list(index_statuses)
    if DocumentIndexStatus.FAILED in statuses:
        return DocumentStatus.FAILED
    if {DocumentIndexStatus.CREATING, DocumentIndexStatus.DELETION_IN_PROGRESS} & set(statuses):
        return DocumentStatus.RUNNING
    if statuses and all(s is DocumentIndexStatus.ACTIVE for s in statuses):
        return DocumentStatus.COMPLETE
    return DocumentStatus.PENDING


def _timestamp(nullable: bool = False) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=nullable, server_default=func.now())


class DocumentIndex(Base):
    __tablename__ = "document_index"
    __table_args__ = (UniqueConstraint("document_id", "index_type", name="uq_document_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(24), nullable=False, index=True)
    # native_enum with an explicit name gives `CREATE TYPE documentindextype AS ENUM (...)` as in ApeRAG.
    index_type: Mapped[DocumentIndexType] = mapped_column(
        Enum(DocumentIndexType, name="documentindextype", native_enum=True), nullable=False
    )
    status: Mapped[DocumentIndexStatus] = mapped_column(
        Enum(DocumentIndexStatus, name="documentindexstatus", native_enum=True),
        nullable=False,
        default=DocumentIndexStatus.PENDING,
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    observed_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    index_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    gmt_created: Mapped[datetime] = _timestamp()
    gmt_updated: Mapped[datetime] = _timestamp()
    gmt_last_reconciled: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LightRAGDocChunks(Base):
    __tablename__ = "lightrag_doc_chunks"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(255), primary_key=True)
    full_doc_id: Mapped[str | None] = mapped_column(String(256), index=True)
    chunk_order_index: Mapped[int | None] = mapped_column(Integer)
    tokens: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[str | None] = mapped_column(Text)
    # Dimensionless on purpose: ApeRAG stores embeddings from whichever model a collection uses.
    content_vector: Mapped[list[float] | None] = mapped_column(Vector())
    file_path: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = _timestamp()
    update_time: Mapped[datetime] = _timestamp()


class LightRAGVDBEntity(Base):
    __tablename__ = "lightrag_vdb_entity"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(255), primary_key=True)
    entity_name: Mapped[str | None] = mapped_column(String(255), index=True)
    content: Mapped[str | None] = mapped_column(Text)
    content_vector: Mapped[list[float] | None] = mapped_column(Vector())
    chunk_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String))
    file_path: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = _timestamp()
    update_time: Mapped[datetime] = _timestamp()


class LightRAGVDBRelation(Base):
    __tablename__ = "lightrag_vdb_relation"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(255), primary_key=True)
    source_id: Mapped[str | None] = mapped_column(String(255))
    target_id: Mapped[str | None] = mapped_column(String(255))
    content: Mapped[str | None] = mapped_column(Text)
    content_vector: Mapped[list[float] | None] = mapped_column(Vector())
    chunk_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String))
    file_path: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = _timestamp()
    update_time: Mapped[datetime] = _timestamp()


class LightRAGGraphNode(Base):
    __tablename__ = "lightrag_graph_nodes"
    __table_args__ = (UniqueConstraint("workspace", "entity_id", name="uq_lightrag_graph_nodes_workspace_entity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity_id: Mapped[str] = mapped_column(String(256), nullable=False)
    workspace: Mapped[str] = mapped_column(String(255), nullable=False)
    entity_type: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[str | None] = mapped_column(Text)
    file_path: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = _timestamp()
    update_time: Mapped[datetime] = _timestamp()


class LightRAGGraphEdge(Base):
    __tablename__ = "lightrag_graph_edges"
    __table_args__ = (
        UniqueConstraint(
            "workspace", "source_entity_id", "target_entity_id", name="uq_lightrag_graph_edges_workspace_pair"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_entity_id: Mapped[str] = mapped_column(String(255), nullable=False)
    target_entity_id: Mapped[str] = mapped_column(String(255), nullable=False)
    workspace: Mapped[str] = mapped_column(String(255), nullable=False)
    weight: Mapped[float | None] = mapped_column(Float, default=0.0)
    keywords: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[str | None] = mapped_column(Text)
    file_path: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = _timestamp()
    update_time: Mapped[datetime] = _timestamp()
