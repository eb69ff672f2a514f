"""Qdrant as ApeRAG's vector store connector (aperag/vectorstore/qdrant_connector.py) drives it.

The client is built from VECTOR_DB_CONTEXT with ApeRAG's keys and defaults. Every ApeRAG collection lives in one
shared Qdrant collection per vector shape, its points tagged with the tenant key `collection_id`, which gets a
keyword payload index with `is_tenant=True`; servers before 1.11 refuse that form, so ApeRAG falls back to a plain
keyword index, and then to the old string form. These functions replay those operations with the same requests.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.models import ScoredPoint

TENANT_KEY = "collection_id"
# The forms ensure_tenant_index tries, in ApeRAG's order.
TENANT_INDEX = "keyword index with is_tenant"
PLAIN_INDEX = "plain keyword index (KeywordIndexParams)"
LEGACY_INDEX = 'plain keyword index (field_schema "keyword")'


@dataclass(frozen=True)
class Connection:
    client: QdrantClient
    client_warnings: tuple[str, ...]
    """What qdrant-client warned about while connecting (it compares its version with the server's)."""


def connect(context: Mapping[str, Any]) -> Connection:
    """QdrantClient as ApeRAG builds it from VECTOR_DB_CONTEXT (url, port, grpc_port, prefer_grpc, https, timeout)."""
    from qdrant_client import QdrantClient

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if context.get("url") == ":memory:":
            client = QdrantClient(":memory:")
        else:
            client = QdrantClient(
                url=context.get("url", "http://localhost"),
                port=context.get("port", 6333),
                grpc_port=context.get("grpc_port", 6334),
                prefer_grpc=context.get("prefer_grpc", False),
                https=context.get("https", False),
                api_key=context.get("api_key"),
                timeout=context.get("timeout", 300),
            )
    return Connection(client, tuple(str(w.message) for w in caught))


def client_version() -> str:
    return importlib.metadata.version("qdrant-client")


def version_skew(client: str, server: str) -> int | None:
    """How many minor versions apart client and server are (None across major versions)."""
    client_major, client_minor = (int(part) for part in client.split(".")[:2])
    server_major, server_minor = (int(part) for part in server.split(".")[:2])
    if client_major != server_major:
        return None
    return abs(client_minor - server_minor)


def ensure_collection(client: QdrantClient, name: str, size: int) -> bool:
    """Create the shared collection for a vector shape with ApeRAG's defaults, unless it exists; True if created."""
    from qdrant_client import models

    if client.collection_exists(name):
        return False
    client.create_collection(
        collection_name=name,
        vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE, on_disk=True),
        hnsw_config=models.HnswConfigDiff(m=16, ef_construct=100, on_disk=True),
        optimizers_config=models.OptimizersConfigDiff(default_segment_number=2, memmap_threshold=20480),
        on_disk_payload=True,
    )
    return True


def ensure_tenant_index(client: QdrantClient, name: str) -> tuple[str, list[str]]:
    """The tenant key's payload index, in the first form the server accepts; with what each refusal said."""
    from qdrant_client import models
    from qdrant_client.http.exceptions import UnexpectedResponse

    forms: list[tuple[str, Any]] = [
        (TENANT_INDEX, models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)),
        (PLAIN_INDEX, models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD)),
        (LEGACY_INDEX, "keyword"),
    ]
    refusals: list[str] = []
    for form, schema in forms:
        try:
            client.create_payload_index(collection_name=name, field_name=TENANT_KEY, field_schema=schema)
        except UnexpectedResponse as exc:
            if "already exists" in str(exc).lower():
                return form, refusals
            refusals.append(f"{form}: HTTP {exc.status_code} {exc.content[:300].decode(errors='replace')}")
            continue
        return form, refusals
    raise RuntimeError("the server refused every form of the tenant index: " + "; ".join(refusals))


def upsert(
    client: QdrantClient, name: str, tenant: str, points: Sequence[tuple[str, list[float], dict[str, Any]]]
) -> None:
    """Points with string UUID ids, the tenant key written into every payload, waiting for the write."""
    from qdrant_client import models

    client.upsert(
        collection_name=name,
        points=[
            models.PointStruct(id=point_id, vector=vector, payload={**payload, TENANT_KEY: tenant})
            for point_id, vector, payload in points
        ],
        wait=True,
    )


def tenant_filter(tenant: str, *more: Any) -> Any:
    from qdrant_client import models

    return models.Filter(must=[models.FieldCondition(key=TENANT_KEY, match=models.MatchValue(value=tenant)), *more])


def search(
    client: QdrantClient, name: str, tenant: str, vector: list[float], top_k: int, score_threshold: float
) -> list[ScoredPoint]:
    """Top-k within one tenant above a score threshold, with payloads, at `majority` read consistency."""
    from qdrant_client import models

    response = client.query_points(
        collection_name=name,
        query=vector,
        with_vectors=False,
        with_payload=True,
        limit=top_k,
        consistency=models.ReadConsistencyType.MAJORITY,
        score_threshold=score_threshold,
        query_filter=tenant_filter(tenant),
    )
    return list(response.points)


def delete_points(client: QdrantClient, name: str, tenant: str, ids: Sequence[str]) -> None:
    """Delete by ids, bound to the tenant: a filter selector with the tenant key and a has-id condition."""
    from qdrant_client import models

    client.delete(
        collection_name=name,
        points_selector=models.FilterSelector(filter=tenant_filter(tenant, models.HasIdCondition(has_id=list(ids)))),
    )


def drop_tenant(client: QdrantClient, name: str, tenant: str) -> None:
    """Delete every point of one tenant by filter (ApeRAG's collection deletion in the shared layout)."""
    from qdrant_client import models

    client.delete(collection_name=name, points_selector=models.FilterSelector(filter=tenant_filter(tenant)))
