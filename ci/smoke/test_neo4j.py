"""Neo4j as ApeRAG's LightRAG graph storage uses it: a label per workspace, an index on `entity_id`.

Runs only in the pipeline: no Neo4j server installs on the project's own test machines.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from smokekit.errors import scrubbed
from smokekit.gate import Gate
from smokekit.settings import Neo4jSettings

if TYPE_CHECKING:
    from neo4j import Driver

pytestmark = pytest.mark.neo4j

INDEX_ONLINE_TIMEOUT_S = 30
_label_numbers = itertools.count()


@pytest.fixture(scope="module")
def driver(neo4j_settings: Neo4jSettings, gate: Gate, secret_values: list[str]) -> Iterator[Driver]:
    from neo4j import GraphDatabase

    try:
        with scrubbed("verify_connectivity", secret_values):
            driver = GraphDatabase.driver(
                neo4j_settings.uri,
                auth=(neo4j_settings.username, neo4j_settings.password.reveal()),
                connection_timeout=5,
                connection_acquisition_timeout=10,
            )
            try:
                driver.verify_connectivity()
            except Exception:
                driver.close()
                raise
    except Exception as exc:
        gate.unreachable("neo4j", exc)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def label(driver: Driver, run_id: str) -> Iterator[str]:
    """A label for this run and test (a label stands for a LightRAG workspace), emptied afterwards."""
    name = f"Smoke_{run_id}_{next(_label_numbers)}"
    try:
        yield name
    finally:
        driver.execute_query(f"MATCH (n:`{name}`) DETACH DELETE n")


def test_verify_connectivity_reaches_neo4j_5(
    driver: Driver, record_testsuite_property: Callable[[str, object], None]
) -> None:
    driver.verify_connectivity()
    info = driver.get_server_info()
    record_testsuite_property("neo4j_agent", info.agent)
    assert info.agent.startswith("Neo4j/5.")


def test_entity_id_index_comes_online(driver: Driver, label: str) -> None:
    index_name = f"{label.lower()}_entity_id"
    driver.execute_query(f"CREATE INDEX `{index_name}` IF NOT EXISTS FOR (n:`{label}`) ON (n.entity_id)")
    try:
        driver.execute_query("CALL db.awaitIndex($name, $timeout)", name=index_name, timeout=INDEX_ONLINE_TIMEOUT_S)
        records, _, _ = driver.execute_query(
            "SHOW INDEXES YIELD name, state, labelsOrTypes, properties WHERE name = $name "
            "RETURN state, labelsOrTypes, properties",
            name=index_name,
        )
    finally:
        driver.execute_query(f"DROP INDEX `{index_name}` IF EXISTS")
    assert [(r["state"], r["labelsOrTypes"], r["properties"]) for r in records] == [("ONLINE", [label], ["entity_id"])]


def test_entities_are_created_matched_and_detach_deleted(driver: Driver, label: str) -> None:
    driver.execute_query(
        f"CREATE (a:`{label}` {{entity_id: $a, entity_type: 'PERSON'}})"
        f"-[:DIRECTED {{weight: 1.0, description: 'knows'}}]->"
        f"(b:`{label}` {{entity_id: $b, entity_type: 'PERSON'}})",
        a="Alice",
        b="Bob",
    )
    records, _, _ = driver.execute_query(
        f"MATCH (a:`{label}` {{entity_id: $a}})-[r:DIRECTED]->(b:`{label}`) "
        "RETURN b.entity_id AS target, r.weight AS w",
        a="Alice",
    )
    assert [(r["target"], r["w"]) for r in records] == [("Bob", 1.0)]
    # Plain DELETE would refuse a node with relationships; DETACH DELETE is what LightRAG's delete_node does.
    driver.execute_query(f"MATCH (n:`{label}` {{entity_id: $a}}) DETACH DELETE n", a="Alice")
    records, _, _ = driver.execute_query(
        f"MATCH (n:`{label}`) OPTIONAL MATCH (n)-[r]-() RETURN n.entity_id AS id, count(r) AS rels"
    )
    assert [(r["id"], r["rels"]) for r in records] == [("Bob", 0)]
