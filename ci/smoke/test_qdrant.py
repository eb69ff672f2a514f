"""Qdrant as ApeRAG uses it: the client built from VECTOR_DB_CONTEXT with ApeRAG's qdrant-client (1.13), one
shared collection per vector shape, a tenant payload index, UUID points, thresholded search and deletes by filter.

With `url` `:memory:` these checks run against qdrant-client's in-process mode: they then check the client API
only, not a server, and their ids say `client-api-in-process`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from smokekit import markers, qdrant_ops
from smokekit.errors import cleanup, scrubbed
from smokekit.gate import Gate, settings_of
from smokekit.settings import MarkerPhase, QdrantSettings

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

pytestmark = pytest.mark.qdrant

SERVER_MODE = "server"
IN_PROCESS_MODE = "client-api-in-process"
DIMENSION = 4
MAX_MINOR_SKEW = 1
"""qdrant-client supports servers at most one minor version away (its own compatibility check)."""


@dataclass(frozen=True)
class Qdrant:
    client: QdrantClient
    collection: str
    in_process: bool


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The mode is part of every test id, so a JUnit report can never pass off client-API checks as a server's.
    if "qdrant_mode" in metafunc.fixturenames:
        qdrant = settings_of(metafunc.config).qdrant
        mode = IN_PROCESS_MODE if qdrant is not None and qdrant.in_process else SERVER_MODE
        metafunc.parametrize("qdrant_mode", [mode], ids=[mode], scope="module")


def _connect(qdrant_settings: QdrantSettings, gate: Gate, secret_values: list[str]) -> qdrant_ops.Connection:
    """The client as ApeRAG builds it from VECTOR_DB_CONTEXT, having answered once (else unreachable)."""
    try:
        with scrubbed("client from VECTOR_DB_CONTEXT, GET /collections", secret_values):
            connection = qdrant_ops.connect(qdrant_settings.context)
            try:
                connection.client.get_collections()
            except Exception:
                connection.client.close()
                raise
    except Exception as exc:
        gate.unreachable("qdrant", exc)
    return connection


@pytest.fixture(scope="module")
def connection(
    qdrant_settings: QdrantSettings, _record_mode: str, gate: Gate, secret_values: list[str]
) -> Iterator[qdrant_ops.Connection]:
    connection = _connect(qdrant_settings, gate, secret_values)
    with cleanup("close the client", connection.client.close, secret_values):
        yield connection


@pytest.fixture(scope="module")
def qdrant(
    connection: qdrant_ops.Connection,
    qdrant_settings: QdrantSettings,
    run_id: str,
    gate: Gate,
    secret_values: list[str],
) -> Iterator[Qdrant]:
    # ApeRAG names the shared collection aperag_vectors_<size>_<distance>; the run's own stands beside it.
    name = f"{run_id}_vectors_{DIMENSION}_cosine"
    client = connection.client
    try:
        with scrubbed(f"create collection {name} as ApeRAG's connector does", secret_values):
            created = qdrant_ops.ensure_collection(client, name, DIMENSION)
    except Exception as exc:
        gate.setup_failed("qdrant", exc)
    if not created:
        gate.fail("qdrant", f"collection {name} existed before this run created it (left alone)")
    with cleanup(f"delete collection {name}", lambda: client.delete_collection(name), secret_values):
        yield Qdrant(client, name, qdrant_settings.in_process)


@pytest.fixture(scope="module")
def _record_mode(qdrant_mode: str, record_testsuite_property: Callable[[str, object], None]) -> str:
    record_testsuite_property("qdrant_mode", qdrant_mode)
    return qdrant_mode


def _points(count: int) -> list[tuple[str, list[float], dict[str, str]]]:
    vectors = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.9, 0.1, 0.0], [0.0, 0.0, 0.0, 1.0]]
    return [(str(uuid.uuid4()), vectors[n % len(vectors)], {"text": f"chunk {n}"}) for n in range(count)]


def test_server_version_and_client_skew_are_reported(
    qdrant: Qdrant,
    connection: qdrant_ops.Connection,
    record_testsuite_property: Callable[[str, object], None],
    warn: Callable[[str, str], None],
) -> None:
    if qdrant.in_process:
        pytest.skip("the client's in-process mode has no server version")
    server = qdrant.client.info().version
    client = qdrant_ops.client_version()
    record_testsuite_property("qdrant_server_version", server)
    record_testsuite_property("qdrant_client_version", client)
    skew = qdrant_ops.version_skew(client, server)
    assert skew is not None, f"qdrant-client {client} and server {server} differ in major version"
    if skew > MAX_MINOR_SKEW:
        said = f" (the client says: {connection.client_warnings[0]})" if connection.client_warnings else ""
        warn(
            "qdrant",
            f"qdrant-client {client} (ApeRAG's lock) is {skew} minor versions from server {server}, outside the "
            f"client's supported {MAX_MINOR_SKEW}; each operation ApeRAG uses was checked against this server{said}",
        )


def test_shared_collection_has_aperag_vector_settings(qdrant: Qdrant) -> None:
    from qdrant_client import models

    info = qdrant.client.get_collection(qdrant.collection)
    vectors = info.config.params.vectors
    assert isinstance(vectors, models.VectorParams)
    assert (vectors.size, vectors.distance) == (DIMENSION, models.Distance.COSINE)
    if not qdrant.in_process:
        # The in-process mode keeps only the vector shape; a server keeps what it was asked for.
        assert vectors.on_disk is True
        assert (info.config.hnsw_config.m, info.config.hnsw_config.ef_construct) == (16, 100)
        assert info.config.params.on_disk_payload is True


def test_tenant_index_is_created_in_a_form_the_server_accepts(
    qdrant: Qdrant, record_testsuite_property: Callable[[str, object], None], warn: Callable[[str, str], None]
) -> None:
    if qdrant.in_process:
        pytest.skip("payload indexes do not exist in the client's in-process mode: checked against a server only")
    form, refusals = qdrant_ops.ensure_tenant_index(qdrant.client, qdrant.collection)
    record_testsuite_property("qdrant_tenant_index", form)
    schema = qdrant.client.get_collection(qdrant.collection).payload_schema
    assert qdrant_ops.TENANT_KEY in schema, f"no payload index on {qdrant_ops.TENANT_KEY} after creating it ({form})"
    assert str(schema[qdrant_ops.TENANT_KEY].data_type.value) == "keyword"
    if refusals:
        warn(
            "qdrant",
            f"the tenant index was created as a {form}, as ApeRAG falls back to on servers before 1.11: tenant "
            f"filters work, per-tenant storage optimisation does not (refused: {refusals[0]})",
        )


def test_uuid_points_keep_their_payload_and_tenant_key(qdrant: Qdrant) -> None:
    tenant, points = f"col{uuid.uuid4().hex}", _points(3)
    qdrant_ops.upsert(qdrant.client, qdrant.collection, tenant, points)
    stored = qdrant.client.retrieve(qdrant.collection, ids=[points[1][0]], with_payload=True)
    assert [(str(p.id), p.payload) for p in stored] == [
        (points[1][0], {"text": "chunk 1", qdrant_ops.TENANT_KEY: tenant})
    ]


def test_search_with_score_threshold_stays_within_its_tenant(qdrant: Qdrant) -> None:
    mine, theirs = f"col{uuid.uuid4().hex}", f"col{uuid.uuid4().hex}"
    my_points, their_points = _points(3), _points(3)
    qdrant_ops.upsert(qdrant.client, qdrant.collection, mine, my_points)
    qdrant_ops.upsert(qdrant.client, qdrant.collection, theirs, their_points)
    hits = qdrant_ops.search(qdrant.client, qdrant.collection, mine, [0.0, 1.0, 0.0, 0.0], 5, score_threshold=0.5)
    # Points 1 and 2 are near the query, point 0 is orthogonal to it (score 0, under the threshold).
    assert [str(hit.id) for hit in hits] == [my_points[1][0], my_points[2][0]]
    assert all(hit.payload and hit.payload[qdrant_ops.TENANT_KEY] == mine for hit in hits)
    assert hits[0].score > 0.99


def test_deletes_by_filter_touch_only_their_tenant(qdrant: Qdrant) -> None:
    mine, theirs = f"col{uuid.uuid4().hex}", f"col{uuid.uuid4().hex}"
    my_points, their_points = _points(3), _points(2)
    qdrant_ops.upsert(qdrant.client, qdrant.collection, mine, my_points)
    qdrant_ops.upsert(qdrant.client, qdrant.collection, theirs, their_points)

    def count(tenant: str) -> int:
        return qdrant.client.count(qdrant.collection, count_filter=qdrant_ops.tenant_filter(tenant), exact=True).count

    # The other tenant's ids under my tenant guard: nothing of theirs may go.
    qdrant_ops.delete_points(qdrant.client, qdrant.collection, mine, [my_points[0][0], their_points[0][0]])
    assert (count(mine), count(theirs)) == (2, 2)
    qdrant_ops.drop_tenant(qdrant.client, qdrant.collection, mine)
    assert (count(mine), count(theirs)) == (0, 2)


def test_markers(
    marker_phase: MarkerPhase, qdrant_settings: QdrantSettings, gate: Gate, secret_values: list[str]
) -> None:
    """Marker points in a collection with ApeRAG's settings. Against `:memory:` a write lives only as long as its
    process: read-backs need a server."""
    client = _connect(qdrant_settings, gate, secret_values).client
    marker_id = marker_phase.marker_id
    try:
        gate.markers(
            "qdrant",
            marker_phase,
            write=lambda: markers.write_qdrant(client, marker_id),
            verify=lambda: markers.verify_qdrant(client, marker_id),
            clean=lambda: markers.clean_qdrant(client, marker_id),
        )
    finally:
        client.close()
