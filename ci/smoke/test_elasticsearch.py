"""Elasticsearch as ApeRAG uses it: an 8.x client against the 8.8 server, full-text chunks analysed by IK.

Runs only in the pipeline: no Elasticsearch server installs on the project's own test machines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from smokekit.errors import scrubbed
from smokekit.gate import Gate
from smokekit.settings import ElasticsearchSettings, SmokeSettings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

pytestmark = pytest.mark.elasticsearch

IK_PLUGIN = "analysis-ik"
CHUNKS = [
    {"chunk_id": "c1", "document_id": "doc-1", "name": "guide.md", "content": "KubeBlocks deploys databases"},
    {"chunk_id": "c2", "document_id": "doc-1", "name": "guide.md", "content": "Qdrant stores vectors"},
    {"chunk_id": "c3", "document_id": "doc-2", "name": "notes.md", "content": "中华人民共和国国歌"},
]


def aperag_like_mapping(ik: bool) -> dict[str, Any]:
    """ApeRAG's chunk index shape; without IK the text fields fall back to the standard analyzer."""
    text: dict[str, Any] = {"type": "text"}
    if ik:
        text |= {"analyzer": "ik_max_word", "search_analyzer": "ik_smart"}
    return {
        "properties": {
            "chunk_id": {"type": "keyword"},
            "document_id": {"type": "keyword"},
            "name": text,
            "content": text,
        }
    }


@pytest.fixture(scope="module")
def es(es_settings: ElasticsearchSettings, gate: Gate, secret_values: list[str]) -> Iterator[Elasticsearch]:
    from elasticsearch import Elasticsearch

    auth = None
    if es_settings.user and es_settings.password:
        auth = (es_settings.user, es_settings.password.reveal())
    try:
        with scrubbed("GET /", secret_values):
            client = Elasticsearch(es_settings.url, basic_auth=auth, request_timeout=10, max_retries=1)
            try:
                client.info()
            except Exception:
                client.close()
                raise
    except Exception as exc:
        gate.unreachable("elasticsearch", exc)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def ik_installed(es: Elasticsearch) -> bool:
    plugins = es.cat.plugins(format="json").body
    assert isinstance(plugins, list)
    return any(plugin.get("component") == IK_PLUGIN for plugin in plugins)


@pytest.fixture
def index(es: Elasticsearch, run_id: str, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"{run_id}_{request.node.name}".lower()[:200]
    try:
        yield name
    finally:
        es.indices.delete(index=name, ignore_unavailable=True)


def test_cluster_health_is_green_or_yellow(
    es: Elasticsearch, ik_installed: bool, record_testsuite_property: Callable[[str, object], None]
) -> None:
    version = es.info()["version"]["number"]
    health = es.cluster.health(timeout="30s")
    # Suite-level properties are what JUnit's xunit2 schema allows.
    record_testsuite_property("elasticsearch_version", version)
    record_testsuite_property("elasticsearch_ik_plugin", "installed" if ik_installed else "missing")
    assert version.startswith("8.")
    assert health["status"] in ("green", "yellow")


def test_ik_analysis_plugin_tokenizes_chinese(
    es: Elasticsearch, ik_installed: bool, smoke_settings: SmokeSettings
) -> None:
    if not ik_installed:
        message = f"the {IK_PLUGIN} plugin is not installed; ApeRAG's index mapping needs ik_max_word/ik_smart"
        if smoke_settings.require_ik:
            pytest.fail(f"{message} (SMOKE_REQUIRE_IK=1)", pytrace=False)
        pytest.skip(f"{message}; set SMOKE_REQUIRE_IK=1 to fail instead")
    tokens = es.indices.analyze(analyzer="ik_smart", text="中华人民共和国国歌")["tokens"]
    # The standard analyzer would split this into single characters.
    assert {"中华人民共和国", "国歌"} <= {token["token"] for token in tokens}


def test_aperag_like_index_is_created_with_its_mapping(es: Elasticsearch, ik_installed: bool, index: str) -> None:
    es.indices.create(index=index, mappings=aperag_like_mapping(ik_installed), settings={"number_of_replicas": 0})
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["document_id"] == {"type": "keyword"}
    assert mapping["content"]["type"] == "text"
    if ik_installed:
        assert mapping["content"]["analyzer"] == "ik_max_word"


def test_bulk_indexed_chunks_are_found_by_match_query(es: Elasticsearch, ik_installed: bool, index: str) -> None:
    from elasticsearch import helpers

    es.indices.create(index=index, mappings=aperag_like_mapping(ik_installed), settings={"number_of_replicas": 0})
    indexed, errors = helpers.bulk(
        es,
        ({"_index": index, "_id": chunk["chunk_id"], "_source": chunk} for chunk in CHUNKS),
        raise_on_error=False,
    )
    assert (indexed, errors) == (len(CHUNKS), [])
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == len(CHUNKS)
    hits = es.search(index=index, query={"match": {"content": "vectors"}})["hits"]["hits"]
    assert [hit["_id"] for hit in hits] == ["c2"]
    by_document = es.search(index=index, query={"term": {"document_id": "doc-1"}})["hits"]["total"]["value"]
    assert by_document == 2
