"""Neo4j as ApeRAG's LightRAG graph storage uses it: the driver with ApeRAG's settings, a database prepared per
workspace (created, or the Community fallback to `neo4j`), entities labelled `base` and keyed by `entity_id`.

Runs only in the pipeline: no Neo4j server installs on the project's own test machines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from smokekit import graphdb, markers
from smokekit.errors import cleanup, scrubbed
from smokekit.gate import Gate
from smokekit.settings import MarkerPhase, Neo4jSettings

if TYPE_CHECKING:
    from neo4j import Driver

pytestmark = pytest.mark.neo4j

ONLINE_TIMEOUT_S = 30


@dataclass(frozen=True)
class Workspace:
    driver: Driver
    prepared: graphdb.Prepared
    entity_prefix: str
    """Every entity this run writes starts with it: on the Community fallback the database is shared."""


@pytest.fixture(scope="module")
def driver(neo4j_settings: Neo4jSettings, gate: Gate, secret_values: list[str]) -> Iterator[Driver]:
    from neo4j import GraphDatabase

    try:
        with scrubbed("GraphDatabase.driver(NEO4J_URI), verify_connectivity", secret_values):
            driver = GraphDatabase.driver(
                neo4j_settings.uri,
                auth=(neo4j_settings.username, neo4j_settings.password.reveal()),
                **graphdb.DRIVER_SETTINGS,
            )
            try:
                driver.verify_connectivity()
            except Exception:
                driver.close()
                raise
    except Exception as exc:
        gate.unreachable("neo4j", exc)
    with cleanup("close the driver", driver.close, secret_values):
        yield driver


def _wait_online(driver: Driver, database: str) -> str:
    deadline = time.monotonic() + ONLINE_TIMEOUT_S
    status = "unknown"
    while time.monotonic() < deadline:
        records, _, _ = driver.execute_query(
            "SHOW DATABASES YIELD name, currentStatus WHERE name = $name RETURN currentStatus",
            name=database,
            database_="system",
        )
        status = records[0]["currentStatus"] if records else "absent"
        if status == "online":
            break
        time.sleep(0.5)
    return status


def _forget(driver: Driver, prepared: graphdb.Prepared, entity_prefix: str) -> None:
    if prepared.how == graphdb.CREATED:
        driver.execute_query(f"DROP DATABASE `{prepared.database}` IF EXISTS", database_="system")
    else:
        driver.execute_query(
            "MATCH (n:base) WHERE n.entity_id STARTS WITH $prefix DETACH DELETE n",
            prefix=entity_prefix,
            database_=prepared.database,
        )


@pytest.fixture(scope="module")
def workspace(driver: Driver, run_id: str, gate: Gate, secret_values: list[str]) -> Iterator[Workspace]:
    try:
        with scrubbed(f"prepare_database({run_id!r}) as ApeRAG runs it", secret_values):
            prepared = graphdb.prepare_database(driver, run_id)
    except Exception as exc:
        gate.setup_failed("neo4j", exc)
    entity_prefix = f"{run_id}:"
    with cleanup(
        f"drop database {prepared.database}" if prepared.how == graphdb.CREATED else "delete the run's entities",
        lambda: _forget(driver, prepared, entity_prefix),
        secret_values,
    ):
        yield Workspace(driver, prepared, entity_prefix)


def test_driver_with_aperag_settings_reaches_neo4j_5(
    driver: Driver, record_testsuite_property: Callable[[str, object], None]
) -> None:
    driver.verify_connectivity()
    agent = driver.get_server_info().agent
    record_testsuite_property("neo4j_agent", agent)
    assert agent.startswith("Neo4j/5."), f"{agent}; ApeRAG's driver is 5.28"


def test_prepare_database_gives_the_workspace_a_database(
    workspace: Workspace, record_testsuite_property: Callable[[str, object], None], warn: Callable[[str, str], None]
) -> None:
    prepared = workspace.prepared
    record_testsuite_property("neo4j_workspace_database", prepared.how)
    assert prepared.how in (graphdb.CREATED, graphdb.COMMUNITY_FALLBACK), (
        f"database {prepared.database} already existed before this run prepared it"
    )
    status = _wait_online(workspace.driver, prepared.database)
    assert status == "online", f"database {prepared.database} is {status} after {ONLINE_TIMEOUT_S} s"
    if prepared.how == graphdb.COMMUNITY_FALLBACK:
        warn(
            "neo4j",
            "CREATE DATABASE is not supported (Community edition): every ApeRAG workspace shares database neo4j, "
            "where ApeRAG creates no :base(entity_id) index",
        )
        return
    records, _, _ = workspace.driver.execute_query(
        "SHOW INDEXES YIELD labelsOrTypes, properties, state "
        "WHERE labelsOrTypes = ['base'] AND properties = ['entity_id'] RETURN state",
        database_=prepared.database,
    )
    if not records:
        warn(
            "neo4j",
            f"ApeRAG's :base(entity_id) index was not created in the new database {prepared.database} "
            f"({prepared.index_error or 'no error'}); ApeRAG only logs this, and graph lookups go unindexed",
        )
        return
    workspace.driver.execute_query(
        "CALL db.awaitIndexes($timeout)", timeout=ONLINE_TIMEOUT_S, database_=prepared.database
    )


def test_entities_are_merged_matched_and_detach_deleted(workspace: Workspace) -> None:
    database, prefix = workspace.prepared.database, workspace.entity_prefix
    alice, bob = f"{prefix}Alice", f"{prefix}Bob"
    run = workspace.driver.execute_query
    for entity_id in (alice, bob):
        # LightRAG's upsert_node: MERGE on :base {entity_id}, properties added, the entity type as a label.
        run(
            "MERGE (n:base {entity_id: $entity_id}) SET n += $properties SET n:`PERSON`",
            entity_id=entity_id,
            properties={"entity_id": entity_id, "entity_type": "PERSON", "description": "a person"},
            database_=database,
        )
    run(
        "MATCH (source:base {entity_id: $source}) WITH source MATCH (target:base {entity_id: $target}) "
        "MERGE (source)-[r:DIRECTED]-(target) SET r += $properties",
        source=alice,
        target=bob,
        properties={"weight": 1.0, "description": "knows"},
        database_=database,
    )
    records, _, _ = run(
        "MATCH (a:base {entity_id: $a})-[r]-(b:base) RETURN b.entity_id AS target, r.weight AS w, labels(b) AS labels",
        a=alice,
        database_=database,
    )
    assert [(r["target"], r["w"], sorted(r["labels"])) for r in records] == [(bob, 1.0, ["PERSON", "base"])]
    # LightRAG's delete_node: DETACH DELETE (a plain DELETE refuses a node with relationships).
    run("MATCH (n:base {entity_id: $a}) DETACH DELETE n", a=alice, database_=database)
    records, _, _ = run(
        "MATCH (n:base) WHERE n.entity_id STARTS WITH $prefix OPTIONAL MATCH (n)-[r]-() "
        "RETURN n.entity_id AS id, count(r) AS rels",
        prefix=prefix,
        database_=database,
    )
    assert [(r["id"], r["rels"]) for r in records] == [(bob, 0)]


def test_markers(marker_phase: MarkerPhase, driver: Driver, gate: Gate) -> None:
    """Marker entities and a relation, as LightRAG writes them, in the home database."""
    marker_id = marker_phase.marker_id
    gate.markers(
        "neo4j",
        marker_phase,
        write=lambda: markers.write_neo4j(driver, marker_id),
        verify=lambda: markers.verify_neo4j(driver, marker_id),
        clean=lambda: markers.clean_neo4j(driver, marker_id),
    )
