"""Smoke-suite plumbing: the environment contract, skip-or-fail rules, run isolation and secret scrubbing."""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Callable, Generator
from typing import Any

import pytest
from smokekit.gate import SETTINGS_KEY, Gate, settings_of
from smokekit.settings import (
    DATABASES,
    ConfigError,
    ElasticsearchSettings,
    Neo4jSettings,
    PostgresSettings,
    QdrantSettings,
    RedisSettings,
    SmokeSettings,
    load_settings,
    mask,
)


def pytest_configure(config: pytest.Config) -> None:
    for key in DATABASES:
        config.addinivalue_line("markers", f"{key}: smoke check against {key}")
    try:
        config.stash[SETTINGS_KEY] = load_settings(os.environ)
    except ConfigError as exc:
        raise pytest.UsageError(f"smoke suite environment: {exc}") from None


MARKER_CHECK = "test_markers"
"""Each database's marker check: the only check a marker phase runs, and never run otherwise."""


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = settings_of(config)
    configured = [key for key in DATABASES if settings.configured(key)]
    markers = f" markers={settings.markers.phase}:{settings.markers.marker_id}" if settings.markers else ""
    return [
        f"smoke: configured={','.join(configured) or 'none'} "
        f"required={','.join(sorted(settings.required)) or 'none'} require_ik={int(settings.require_ik)}{markers}",
        *(f"smoke: {key} from {getattr(settings, key).source}" for key in configured),
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The phase is part of the check's id (`test_markers[verify]`), so reports tell a write from its read-back.
    if "marker_phase" in metafunc.fixturenames:
        phase = settings_of(metafunc.config).markers
        metafunc.parametrize("marker_phase", [phase], ids=[phase.phase if phase else "off"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        keys = [key for key in DATABASES if item.get_closest_marker(key)]
        if len(keys) != 1:
            raise pytest.UsageError(f"{item.nodeid} must carry exactly one database marker, has {keys}")
    # A marker phase runs only the marker checks; a normal run never runs them.
    marker_run = settings_of(config).markers is not None
    kept = [item for item in items if (getattr(item, "originalname", item.name) == MARKER_CHECK) == marker_run]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


# --- secret scrubbing: the last line of defence behind Secret and scrubbed() ---


def _scrub_report(report: pytest.CollectReport | pytest.TestReport, secret_values: list[str]) -> None:
    if not secret_values:
        return
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        path, lineno, message = longrepr
        report.longrepr = (path, lineno, mask(message, secret_values))
    elif longrepr is not None:
        text = str(longrepr)
        masked = mask(text, secret_values)
        if masked != text:
            report.longrepr = masked
    report.sections = [(title, mask(content, secret_values)) for title, content in report.sections]
    if isinstance(report, pytest.TestReport):
        report.user_properties = [
            (name, mask(value, secret_values) if isinstance(value, str) else value)
            for name, value in report.user_properties
        ]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    _scrub_report(report, settings_of(item.config).secrets())
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    report = yield
    _scrub_report(report, settings_of(collector.config).secrets())
    return report


# --- configured / required / reachable ---


@pytest.fixture(scope="session")
def smoke_settings(pytestconfig: pytest.Config) -> SmokeSettings:
    return settings_of(pytestconfig)


@pytest.fixture(scope="session")
def gate(smoke_settings: SmokeSettings) -> Gate:
    return Gate(smoke_settings)


@pytest.fixture(scope="session")
def secret_values(smoke_settings: SmokeSettings) -> list[str]:
    return smoke_settings.secrets()


@pytest.fixture(scope="session")
def run_id() -> str:
    """Names every object this run creates (tables, key prefix, collection, index, Neo4j database): reruns and
    parallel runs never meet. Short, because PostgreSQL names hold 63 bytes and ApeRAG's longest is 47."""
    return f"smoke_{secrets.token_hex(4)}"


class SmokeWarning(UserWarning):
    """Something that works but that ApeRAG's operators should know (pytest's warnings summary shows it)."""


@pytest.fixture(scope="session")
def warn(
    record_testsuite_property: Callable[[str, object], None], secret_values: list[str]
) -> Callable[[str, str], None]:
    """Record a warning about a database: a `<database>_warning` JUnit property the pipeline's summary shows."""

    def record(database: str, text: str) -> None:
        text = mask(text, secret_values)
        record_testsuite_property(f"{database}_warning", text)
        warnings.warn(SmokeWarning(f"{database}: {text}"), stacklevel=2)

    return record


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # asyncpg and redis.asyncio are asyncio libraries.
    return "asyncio"


@pytest.fixture(scope="session")
def pg_settings(gate: Gate) -> PostgresSettings:
    return gate.usable("postgresql", PostgresSettings)


@pytest.fixture(scope="session")
def redis_settings(gate: Gate) -> RedisSettings:
    return gate.usable("redis", RedisSettings)


@pytest.fixture(scope="session")
def qdrant_settings(gate: Gate) -> QdrantSettings:
    return gate.usable("qdrant", QdrantSettings)


@pytest.fixture(scope="session")
def es_settings(gate: Gate) -> ElasticsearchSettings:
    return gate.usable("elasticsearch", ElasticsearchSettings)


@pytest.fixture(scope="session")
def neo4j_settings(gate: Gate) -> Neo4jSettings:
    return gate.usable("neo4j", Neo4jSettings)
