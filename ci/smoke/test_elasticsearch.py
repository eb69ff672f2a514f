"""Elasticsearch as ApeRAG uses it: ES_HOST handed to `Elasticsearch` and `AsyncElasticsearch` (aiohttp), its index
with the IK analyzers, one document indexed at a time, keywords extracted with `ik_smart` and searched with
`bool/should` and `minimum_should_match: 80%`.

Runs only in the pipeline: no Elasticsearch server installs on the project's own test machines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from smokekit import fulltext, markers
from smokekit.errors import cleanup, scrubbed
from smokekit.gate import Gate, fail_plainly
from smokekit.settings import ElasticsearchSettings, MarkerPhase, SmokeSettings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

pytestmark = pytest.mark.elasticsearch

REQUEST_TIMEOUT_S = 10
CHINESE = "中华人民共和国国歌"
DOCUMENTS = {
    "101": {"name": "guide.md", "content": "KubeBlocks deploys database clusters"},
    "102": {"name": "vectors.md", "content": "Qdrant stores vectors"},
    "103": {"name": "anthem.md", "content": f"{CHINESE}: 义勇军进行曲"},
}


@pytest.fixture(scope="module")
def es(es_settings: ElasticsearchSettings, gate: Gate, secret_values: list[str]) -> Iterator[Elasticsearch]:
    from elasticsearch import Elasticsearch

    try:
        with scrubbed("Elasticsearch(ES_HOST), GET /", secret_values):
            client = Elasticsearch(es_settings.es_host.reveal(), request_timeout=REQUEST_TIMEOUT_S)
            try:
                client.info()
            except Exception:
                client.close()
                raise
    except Exception as exc:
        gate.unreachable("elasticsearch", exc)
    with cleanup("close the client", client.close, secret_values):
        yield client


@pytest.fixture(scope="module")
def ik_installed(
    es: Elasticsearch, record_testsuite_property: Callable[[str, object], None], secret_values: list[str]
) -> bool:
    from elasticsearch import BadRequestError

    try:
        es.indices.analyze(analyzer=fulltext.IK_SEARCH_ANALYZER, text=CHINESE)
        installed = True
    except BadRequestError as exc:
        if not fulltext.names_missing_ik(str(exc)):
            raise
        installed = False
    record_testsuite_property("elasticsearch_ik_plugin", "installed" if installed else "missing")
    return installed


def require_ik(installed: bool, settings: SmokeSettings) -> None:
    if installed:
        return
    message = (
        f"the IK analysis plugin is missing (`_analyze` has no {fulltext.IK_SEARCH_ANALYZER}): ApeRAG's index "
        "mapping needs ik_max_word/ik_smart, so its collections never become active"
    )
    if settings.require_ik:
        fail_plainly(f"{message} (SMOKE_REQUIRE_IK=1, the default)")
    pytest.skip(f"{message}; SMOKE_REQUIRE_IK=0 makes this a skip")


@pytest.fixture
def index(es: Elasticsearch, run_id: str, request: pytest.FixtureRequest, secret_values: list[str]) -> Iterator[str]:
    name = f"{run_id}_{request.node.name}".lower()[:200]
    with cleanup(f"delete index {name}", lambda: es.indices.delete(index=name, ignore_unavailable=True), secret_values):
        yield name


def test_cluster_is_elasticsearch_8_and_green_or_yellow(
    es: Elasticsearch, record_testsuite_property: Callable[[str, object], None]
) -> None:
    version = es.info()["version"]["number"]
    health = es.cluster.health(timeout="30s")
    record_testsuite_property("elasticsearch_version", version)
    assert version.startswith("8."), f"Elasticsearch {version}; ApeRAG's client is 8.x"
    assert health["status"] in ("green", "yellow")


def test_ik_smart_segments_chinese_words(es: Elasticsearch, ik_installed: bool, smoke_settings: SmokeSettings) -> None:
    require_ik(ik_installed, smoke_settings)
    tokens = es.indices.analyze(analyzer=fulltext.IK_SEARCH_ANALYZER, text=CHINESE)["tokens"]
    # The standard analyzer would split this into single characters.
    assert {"中华人民共和国", "国歌"} <= {token["token"] for token in tokens}


def test_index_is_created_with_aperag_mapping(
    es: Elasticsearch, ik_installed: bool, smoke_settings: SmokeSettings, index: str
) -> None:
    require_ik(ik_installed, smoke_settings)
    es.indices.create(index=index, mappings=fulltext.aperag_mapping())
    content = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]["content"]
    assert content == fulltext.aperag_mapping()["properties"]["content"]


@pytest.mark.anyio
async def test_documents_indexed_one_by_one_are_found_by_aperag_keyword_search(
    es: Elasticsearch, ik_installed: bool, smoke_settings: SmokeSettings, es_settings: ElasticsearchSettings, index: str
) -> None:
    from elasticsearch import AsyncElasticsearch

    require_ik(ik_installed, smoke_settings)
    es.indices.create(index=index, mappings=fulltext.aperag_mapping())
    for document_id, document in DOCUMENTS.items():
        es.index(index=index, id=document_id, document=document)
    es.indices.refresh(index=index)
    # AsyncElasticsearch(ES_HOST) as ApeRAG builds it: aiohttp underneath.
    async_es = AsyncElasticsearch(es_settings.es_host.reveal(), request_timeout=REQUEST_TIMEOUT_S)
    try:
        assert (await async_es.indices.exists(index=index)).body is True
        analysed = await async_es.indices.analyze(index=index, text=CHINESE, analyzer=fulltext.IK_SEARCH_ANALYZER)
        keywords = list(dict.fromkeys(token["token"] for token in analysed["tokens"]))
        response = await async_es.search(
            index=index, query=fulltext.keyword_query(keywords), sort=[{"_score": {"order": "desc"}}], size=3
        )
    finally:
        await async_es.close()
    hits = response["hits"]["hits"]
    assert {"中华人民共和国", "国歌"} <= set(keywords)
    assert [hit["_id"] for hit in hits] == ["103"]
    assert hits[0]["_source"]["name"] == "anthem.md"


def test_markers(marker_phase: MarkerPhase, es: Elasticsearch, gate: Gate) -> None:
    """Marker documents in an index, through ES_HOST."""
    marker_id = marker_phase.marker_id
    gate.markers(
        "elasticsearch",
        marker_phase,
        write=lambda: markers.write_elasticsearch(es, marker_id),
        verify=lambda: markers.verify_elasticsearch(es, marker_id),
        clean=lambda: markers.clean_elasticsearch(es, marker_id),
    )
