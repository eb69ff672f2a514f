"""ApeRAG's qdrant-client (1.13) against the 1.10.0 server the addon deploys, as far as it can be proven here.

No Qdrant server runs on this machine. The suite's Qdrant operations (ci/smoke/smokekit/qdrant_ops.py, the same
functions test_qdrant.py runs in the pipeline) talk to a stand-in that judges each request by the real 1.10.0
OpenAPI description (tests/smoke/qdrant_1_10.py). This proves the requests' shapes, not their effects; the effects
are checked by the suite against the real server in the pipeline, and against the client's in-process mode here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from smoke.qdrant_1_10 import Api, Qdrant110
from smokekit import qdrant_ops


@pytest.fixture
def server() -> Iterator[Qdrant110]:
    with Qdrant110() as server:
        yield server


def test_the_suite_runs_apes_qdrant_client_version() -> None:
    assert qdrant_ops.client_version().startswith("1.13."), "ApeRAG's uv.lock has qdrant-client 1.13.3"


def test_the_client_warns_that_a_1_10_server_is_out_of_its_range(server: Qdrant110) -> None:
    connection = qdrant_ops.connect({"url": "http://127.0.0.1", "port": server.port, "timeout": 5})
    try:
        assert connection.client.info().version == "1.10.0"
    finally:
        connection.client.close()
    assert qdrant_ops.version_skew(qdrant_ops.client_version(), "1.10.0") == 3
    assert any("incompatible with server version 1.10.0" in w for w in connection.client_warnings)


def test_vector_db_context_keys_reach_the_client_as_aperag_passes_them(server: Qdrant110) -> None:
    connection = qdrant_ops.connect(
        {"url": "http://127.0.0.1", "port": server.port, "grpc_port": 6399, "https": False, "timeout": 7}
    )
    from qdrant_client.qdrant_remote import QdrantRemote

    remote = connection.client._client
    try:
        assert isinstance(remote, QdrantRemote)
        assert remote.rest_uri == f"http://127.0.0.1:{server.port}"
        assert (remote._grpc_port, remote._prefer_grpc, remote._timeout) == (6399, False, 7)
    finally:
        connection.client.close()


def test_every_request_of_apes_operations_fits_the_1_10_api_except_the_newer_tenant_index(
    server: Qdrant110,
) -> None:
    connection = qdrant_ops.connect({"url": "http://127.0.0.1", "port": server.port, "timeout": 5})
    client, name, tenant = connection.client, "aperag_vectors_4_cosine", f"col{uuid.uuid4().hex}"
    point = str(uuid.uuid4())
    try:
        assert qdrant_ops.ensure_collection(client, name, 4) is True
        form, refusals = qdrant_ops.ensure_tenant_index(client, name)
        qdrant_ops.upsert(client, name, tenant, [(point, [1.0, 0.0, 0.0, 0.0], {"text": "chunk"})])
        assert qdrant_ops.search(client, name, tenant, [1.0, 0.0, 0.0, 0.0], 3, score_threshold=0.5) == []
        qdrant_ops.delete_points(client, name, tenant, [point])
        qdrant_ops.drop_tenant(client, name, tenant)
        client.delete_collection(name)
    finally:
        client.close()

    judged = [(r.operation, r.problem) for r in server.requests]
    assert [operation for operation, _ in judged] == [
        "collection_exists",
        "create_collection",
        "create_field_index",
        "create_field_index",
        "create_field_index",
        "upsert_points",
        "query_points",
        "delete_points",
        "delete_points",
        "delete_collection",
    ]
    refused = [(operation, problem) for operation, problem in judged if problem is not None]
    # 1.10.0 knows no KeywordIndexParams: both parameterised forms are refused, the string form is taken.
    assert [operation for operation, _ in refused] == ["create_field_index", "create_field_index"]
    assert (form, len(refusals)) == (qdrant_ops.LEGACY_INDEX, 2)
    assert all("HTTP 400" in refusal for refusal in refusals)


def test_the_stand_in_refuses_what_1_10_does_not_describe() -> None:
    api = Api()
    good = {"vectors": {"size": 4, "distance": "Cosine"}}
    assert api.judge("PUT", "/collections/c", good).problem is None
    assert api.judge("PUT", "/collections/c", {"vectors": {"size": "four", "distance": "Cosine"}}).problem
    assert (
        api.judge("PUT", "/collections/c?no_such_flag=1", good).problem == "query parameters ['no_such_flag'] unknown"
    )
    assert api.judge("POST", "/collections/c/points/no-such-endpoint", {}).problem is not None
    keyword_with_tenant = {"field_name": "collection_id", "field_schema": {"type": "keyword", "is_tenant": True}}
    assert api.judge("PUT", "/collections/c/index", keyword_with_tenant).problem is not None
    assert (
        api.judge("PUT", "/collections/c/index", {"field_name": "collection_id", "field_schema": "keyword"}).problem
        is None
    )
