"""Our encoded chart rules against the charts' own files (apecloud/kubeblocks-addons 1.0.1, kept in ../shared/upstream).

Three checks: the values we hand Helm (defaults and the `ci` profile, merged over the chart's defaults as Helm
merges them) satisfy each chart's `values.schema.json`; every schema property has a rule with the same type, enum
and bounds, apart from the deliberate differences listed below, or is a key the 1.0.1 templates never read
(chartrules.DEAD, proved dead by tests/test_upstream_render.py); and every key of the chart's default values.yaml
is known to our rules and passes them, or is reported as such a dead key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dbstack.config.catalog import DATABASES, Database
from dbstack.config.chartrules import Rule
from dbstack.config.load import Layers, check_rules, load_config
from dbstack.config.problems import Problem
from dbstack.config.yamlfile import load_yaml
from upstream import upstream_or_skip

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"
UPSTREAM = upstream_or_skip()

# Where our rules are stricter than the schema on purpose, and why.
DELIBERATE: dict[tuple[str, str], str] = {
    ("postgresql", "replicas.minimum"): "the 1.0 chart renders at least 2 replicas whatever the schema allows",
    ("redis", "sentinel.replicas.type"): "the chart writes it into the Cluster's int32 replicas: a fraction fails",
}
# JSON Schema type (as a sorted tuple) -> the rule kinds that mean the same. `quantity` narrows ["number", "string"]
# to numbers and decimal strings, because the charts paste the value before a unit (`{{ .Values.cpu }}`).
KINDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("string",): ("string",),
    ("integer",): ("integer",),
    ("number",): ("number",),
    ("number", "string"): ("quantity",),
    ("boolean",): ("boolean",),
    ("object",): ("mapping",),
}
PROFILES = [None, "ci"]


def schema_of(db: Database) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((UPSTREAM / f"{db.cluster_chart}.values.schema.json").read_text())
    return data


def chart_defaults(db: Database) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((UPSTREAM / f"{db.cluster_chart}.values.yaml").read_text())
    return data


def helm_merge(defaults: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """What Helm validates: user values over the chart's defaults, maps merged, a user null removing the key."""
    merged = dict(defaults)
    for key, value in user.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def schema_properties(schema: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        yield path, prop
        yield from schema_properties(prop, path)


def dead_at(db: Database, path: str) -> str | None:
    """The dead key covering `path` (itself or a parent), if any."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in db.dead_keys:
            return key
    return None


def rule_at(rules: Mapping[str, Rule], path: str) -> Rule | None:
    rule: Rule | None = None
    children = rules
    for part in path.split("."):
        rule = children.get(part)
        if rule is None:
            return None
        children = rule.children
    return rule


def leaf_paths(data: Mapping[str, Any], rules: Mapping[str, Rule], prefix: str = "") -> Iterator[str]:
    """Every key path of `data`, not descending into mappings our rules keep opaque (no children listed)."""
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path
        rule = rules.get(key)
        if isinstance(value, Mapping) and rule is not None and rule.children:
            yield from leaf_paths(value, rule.children, path)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("key", list(DATABASES))
def test_our_values_merged_over_the_chart_defaults_satisfy_the_chart_schema(key: str, profile: str | None) -> None:
    db = DATABASES[key]
    config = load_config(VALUES, profile)
    values = helm_merge(chart_defaults(db), config.database(key).values)
    validator = jsonschema.Draft7Validator(schema_of(db))
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '-'}: {e.message}" for e in validator.iter_errors(values)]
    assert errors == []


def test_the_schema_check_would_catch_a_value_the_chart_rejects() -> None:
    db = DATABASES["neo4j"]
    values = helm_merge(chart_defaults(db), {"mode": "standalone", "cpu": 1})
    messages = sorted(e.message for e in jsonschema.Draft7Validator(schema_of(db)).iter_errors(values))
    assert messages == ["'standalone' is not one of ['singlealone']", "1 is less than the minimum of 2"]


@pytest.mark.parametrize("key", list(DATABASES))
def test_every_schema_property_has_a_rule_with_the_same_limits(key: str) -> None:
    db = DATABASES[key]
    differences = []
    for path, prop in schema_properties(schema_of(db)):
        rule = rule_at(db.values_rules, path)
        if rule is None:
            if dead_at(db, path) is None:
                differences.append(f"{path}: no rule")
            continue
        schema_type = prop.get("type")
        types = [schema_type] if isinstance(schema_type, str) else list(schema_type or [])
        wanted_kinds = KINDS.get(tuple(sorted(types)))
        if rule.kinds != wanted_kinds and (key, f"{path}.type") not in DELIBERATE:
            differences.append(f"{path}.type: schema {schema_type}, rule {rule.kinds}")
        ours = {
            "enum": tuple(rule.enum) or None,
            "minimum": rule.minimum,
            "maximum": rule.maximum,
            "multipleOf": rule.multiple_of,
        }
        for facet, value in ours.items():
            theirs = prop.get(facet)
            theirs = tuple(theirs) if isinstance(theirs, list) else theirs
            if value != theirs and (key, f"{path}.{facet}") not in DELIBERATE:
                differences.append(f"{path}.{facet}: schema {theirs}, rule {value}")
    assert differences == []


def test_deliberate_differences_are_still_differences() -> None:
    """An entry in DELIBERATE that matches upstream again is stale: drop it, or the exception hides a real change."""
    for (key, where), why in DELIBERATE.items():
        path, facet = where.rsplit(".", 1)
        prop = dict(schema_properties(schema_of(DATABASES[key])))[path]
        rule = rule_at(DATABASES[key].values_rules, path)
        assert rule is not None
        if facet == "type":
            assert KINDS.get(tuple(sorted([prop["type"]]))) != rule.kinds, f"{key} {where} ({why}) now matches"
            continue
        ours = {"minimum": rule.minimum, "maximum": rule.maximum, "multipleOf": rule.multiple_of}[facet]
        assert prop.get(facet) != ours, f"{key} {where} ({why}) now matches upstream"


@pytest.mark.parametrize("key", list(DATABASES))
def test_every_key_of_the_chart_defaults_is_known_to_our_rules_or_dead(key: str) -> None:
    db = DATABASES[key]
    unknown = [
        path
        for path in leaf_paths(chart_defaults(db), db.values_rules)
        if rule_at(db.values_rules, path) is None and dead_at(db, path) is None
    ]
    assert unknown == []


@pytest.mark.parametrize("key", list(DATABASES))
def test_the_chart_defaults_pass_our_rules_but_for_the_keys_the_templates_never_read(key: str) -> None:
    db = DATABASES[key]
    problems: list[Problem] = []
    doc = load_yaml(UPSTREAM / f"{db.cluster_chart}.values.yaml", problems)
    assert doc is not None
    layers = Layers()
    layers.add(doc)
    check_rules(layers, db.values_rules, problems, require_all=False, dead=db.dead_keys, chart=db.cluster_chart)
    # PostgreSQL's deliberate minimum is met by its defaults (2 replicas), so no exception is needed here.
    dead_in_defaults = sorted({k for p in leaf_paths(doc.data, db.values_rules) if (k := dead_at(db, p))})
    assert sorted(p.key for p in problems) == dead_in_defaults
    assert all(p.message.startswith(f"the {db.cluster_chart} 1.0.1 chart ") for p in problems)


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            yield from flatten(value, path)
        else:
            yield path, value


@pytest.mark.parametrize("key", list(DATABASES))
def test_catalog_chart_defaults_are_the_charts_defaults(key: str) -> None:
    """Capacity fills keys a values file leaves out from the catalog; those must be what the chart renders."""
    db = DATABASES[key]
    rendered = dict(flatten(chart_defaults(db)))
    schema_defaults = {path: prop.get("default") for path, prop in schema_properties(schema_of(db))}
    wrong = []
    for path, ours in flatten(db.chart_defaults):
        theirs = rendered[path] if path in rendered else schema_defaults.get(path)
        if ours != theirs:
            wrong.append(f"{path}: catalog {ours!r}, chart {theirs!r}")
    assert wrong == []
