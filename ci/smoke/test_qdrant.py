"""Qdrant as ApeRAG uses it: cosine collections, points with payload, filtered top-k search.

With `QDRANT_URL=:memory:` these checks run against qdrant-client's in-process mode: they then check the
client API only, not a server, and their ids say `client-api-in-process`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from smokekit.errors import scrubbed
from smokekit.gate import Gate, settings_of
from smokekit.settings import QdrantSettings

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

pytestmark = pytest.mark.qdrant

SERVER_MODE = "server"
IN_PROCESS_MODE = "client-api-in-process"
DIMENSION = 4
POINTS = {
    1: ([1.0, 0.0, 0.0, 0.0], {"workspace": "alpha", "document_id": "doc-1"}),
    2: ([0.0, 1.0, 0.0, 0.0], {"workspace": "alpha", "document_id": "doc-2"}),
    3: ([0.0, 0.9, 0.1, 0.0], {"workspace": "beta", "document_id": "doc-3"}),
}
_collection_numbers = itertools.count()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The mode is part of every test id, so a JUnit report can never pass off client-API checks as a server's.
    if "qdrant_mode" in metafunc.fixturenames:
        qdrant = settings_of(metafunc.config).qdrant
        mode = IN_PROCESS_MODE if qdrant is not None and qdrant.in_process else SERVER_MODE
        metafunc.parametrize("qdrant_mode", [mode], ids=[mode], scope="module")


@pytest.fixture(scope="module")
def client(
    qdrant_settings: QdrantSettings, qdrant_mode: str, gate: Gate, secret_values: list[str]
) -> Iterator[QdrantClient]:
    from qdrant_client import QdrantClient

    try:
        with scrubbed("GET /collections", secret_values):
            if qdrant_settings.in_process:
                client = QdrantClient(location=qdrant_settings.url)
            else:
                client = QdrantClient(url=qdrant_settings.url, timeout=10)
            try:
                client.get_collections()
            except Exception:
                client.close()
                raise
    except Exception as exc:
        gate.unreachable("qdrant", exc)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module", autouse=True)
def _record_mode(qdrant_mode: str, record_testsuite_property: Callable[[str, object], None]) -> None:
    record_testsuite_property("qdrant_mode", qdrant_mode)


@pytest.fixture
def collection(client: QdrantClient, run_id: str) -> Iterator[str]:
    from qdrant_client import models

    name = f"{run_id}_{next(_collection_numbers)}"
    client.create_collection(name, vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE))
    try:
        yield name
    finally:
        client.delete_collection(name)


def _upsert_points(client: QdrantClient, collection: str) -> None:
    from qdrant_client import models

    client.upsert(
        collection,
        points=[
            models.PointStruct(id=pid, vector=vector, payload=payload) for pid, (vector, payload) in POINTS.items()
        ],
        wait=True,
    )


def test_create_cosine_collection(client: QdrantClient, collection: str) -> None:
    from qdrant_client import models

    info = client.get_collection(collection)
    vectors = info.config.params.vectors
    assert isinstance(vectors, models.VectorParams)
    assert (vectors.size, vectors.distance) == (DIMENSION, models.Distance.COSINE)
    assert client.collection_exists(collection)


def test_upserted_points_keep_their_payload(client: QdrantClient, collection: str) -> None:
    _upsert_points(client, collection)
    assert client.count(collection, exact=True).count == len(POINTS)
    stored = client.retrieve(collection, ids=[2], with_payload=True)
    assert [point.payload for point in stored] == [POINTS[2][1]]


def test_top1_search_returns_the_nearest_point(client: QdrantClient, collection: str) -> None:
    _upsert_points(client, collection)
    hits = client.query_points(collection, query=[0.9, 0.1, 0.0, 0.0], limit=1).points
    assert [hit.id for hit in hits] == [1]
    assert hits[0].score > 0.9


def test_payload_filter_restricts_search(client: QdrantClient, collection: str) -> None:
    from qdrant_client import models

    _upsert_points(client, collection)
    only_beta = models.Filter(must=[models.FieldCondition(key="workspace", match=models.MatchValue(value="beta"))])
    hits = client.query_points(collection, query=[0.0, 1.0, 0.0, 0.0], query_filter=only_beta, limit=3).points
    assert [hit.id for hit in hits] == [3]


def test_deleted_points_are_gone(client: QdrantClient, collection: str) -> None:
    from qdrant_client import models

    _upsert_points(client, collection)
    client.delete(collection, points_selector=models.PointIdsList(points=[1, 2]), wait=True)
    assert client.count(collection, exact=True).count == 1
    assert client.retrieve(collection, ids=[1, 2]) == []


def test_deleted_collection_is_gone(client: QdrantClient, run_id: str) -> None:
    from qdrant_client import models

    name = f"{run_id}_deleted"
    client.create_collection(name, vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE))
    try:
        assert client.collection_exists(name)
    finally:
        client.delete_collection(name)
    assert not client.collection_exists(name)
