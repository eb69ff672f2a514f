"""The plan against Helm's own render of the real KubeBlocks 1.0.1 charts (tests/upstream.py).

- Every profile, every database enabled, every mode and topology validation accepts: the cluster chart rendered
  with exactly the YAML the plan pipes to `helm -f -` passes the chart's values.schema.json and the v1.0.1
  Cluster CRD (as the API server admits it), and the catalog's components, pods, requests, Service, port, account
  Secret and images are what the render, the addon's ComponentDefinition and KubeBlocks' naming give.
- Every key and value validation accepts changes what the chart renders; every key it rejects as dead renders
  nothing different; every value it rejects as unmodelled deploys something the plan does not describe.
- The addon charts hold the definitions the plan waits on, at releases for every pinned version; the table of
  ComponentVersion releases the runtime reads is what the addon charts say.
- The KubeBlocks chart knows every `--set` key the plan passes and renders the Deployments the step waits on.
- The snapshot controller's probe and waits fit the v8.2.0 manifest's labels, and the simulator applies them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from dbstack.config.capacity import CONTROL_PLANE, database_pods
from dbstack.config.catalog import DATABASES, service_releases
from dbstack.config.chartrules import Rule
from dbstack.config.load import Config, chart_value_problems, load_config, profile_names
from dbstack.config.topology import Component
from dbstack.plan.build import (
    KUBEBLOCKS_DEPLOYMENTS,
    KUBEBLOCKS_VERSION_LABEL,
    SNAPSHOT_CONTROLLER_SELECTOR,
    build_plan,
    kubeblocks_image,
)
from dbstack.plan.model import Image, Plan, Step, kubectl
from dbstack.run.orchestrator import run_plan
from dbstack.run.results import Outcome, RunResults
from dbstack.sim import cluster as sim
from dbstack.sim.cluster import Scenario, SimCluster, in_virtual_time
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from upstream import (
    AddonFacts,
    account_secret_name,
    admit,
    chart,
    component_pods,
    component_versions_table,
    components_of,
    dumps,
    leaves,
    modelled_variants,
    of_kind,
    render,
    render_helm_command,
    rendered_topology,
    service_name,
    snapshot_controller_manifest,
    table_json,
    the_cluster,
    upstream_or_skip,
    values_from_stdin,
)

UPSTREAM = upstream_or_skip()
REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"
PROFILES: list[str | None] = [None, *profile_names(VALUES)]
ALL_ENABLED = [f"databases.{key}.enabled=true" for key in DATABASES]


def addon_facts(addon: str) -> AddonFacts:
    return _FACTS.setdefault(addon, AddonFacts(addon))


_FACTS: dict[str, AddonFacts] = {}


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def with_values(config: Config, key: str, values: Mapping[str, Any]) -> Config:
    databases = tuple(dataclasses.replace(d, values=values) if d.key == key else d for d in config.databases)
    return dataclasses.replace(config, databases=databases)


def accepted_variants(key: str) -> list[dict[str, Any]]:
    """Each mode validation accepts, at its fewest and at more replicas (where the mode has a choice), Kibana on
    and off, and Redis sentinels resized."""
    db = DATABASES[key]
    out: list[dict[str, Any]] = []
    for variant in modelled_variants(key):
        mode = variant.get("mode")
        if mode == db.single_mode:
            out.append(variant)
            continue
        fewest = db.replicas_at_least.get(str(mode), int(db.values_rules["replicas"].minimum or 1))
        out += [{**variant, "replicas": fewest}, {**variant, "replicas": 3}]
    if "enableKibana" in db.values_rules:
        out.append({**modelled_variants(key)[0], "enableKibana": False})
    if "sentinel" in db.values_rules:
        out.append({"mode": "replication", "replicas": 2, "sentinel": {"replicas": 5, "cpu": 0.2, "memory": 0.3}})
    return out


CASES = [(profile, key, variant) for profile in PROFILES for key in DATABASES for variant in accepted_variants(key)]


def case_id(case: tuple[str | None, str, dict[str, Any]]) -> str:
    profile, key, variant = case
    return f"{profile or 'default'}-{key}-" + ("-".join(f"{k}={v}" for k, v in leaves(variant)) or "as-is")


def plan_for(profile: str | None, key: str, variant: Mapping[str, Any]) -> tuple[Plan, Config]:
    config = load_config(VALUES, profile, ALL_ENABLED)
    values = merged(config.database(key).values, variant)
    assert chart_value_problems(DATABASES[key], values, config.database(key).chart_version) == []
    changed = with_values(config, key, values)
    return build_plan(changed), changed


def rendered(step: Step) -> list[dict[str, Any]]:
    command = step.commands[0]
    return render_helm_command(command.argv, command.stdin)


# --- 1. cluster charts: schema, CRD, and the catalog against the render -----------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_cluster_the_plan_installs_is_valid_and_is_what_the_catalog_says(
    case: tuple[str | None, str, dict[str, Any]],
) -> None:
    profile, key, variant = case
    plan, config = plan_for(profile, key, variant)
    d = config.database(key)
    step = plan.step(f"cluster:{key}")
    argv = step.commands[0].argv
    loaded = chart("cluster", d.db.addon)
    assert (argv[4], argv[argv.index("--version") + 1]) == (loaded.name, loaded.version)
    values = values_from_stdin(step.commands[0].stdin or "")
    loaded.validate_schema(values)  # what `helm install` enforces (render enforces it too)
    cluster = the_cluster(rendered(step))
    stored, errors = admit(cluster)
    assert errors == []
    assert stored["metadata"]["name"] == d.release
    assert step.watch is not None and step.watch.pod_selector == f"app.kubernetes.io/instance={d.release}"

    # Components, pods and what each pod requests.
    components = components_of(cluster)
    assert components == d.components
    consumers = database_pods(d)
    assert math.isclose(sum(c.cpu for c in consumers), sum(c.replicas * c.cpu for c in components))
    assert math.isclose(sum(c.memory_gi for c in consumers), sum(c.replicas * c.memory_gi for c in components))

    # Service, port and account Secret: KubeBlocks' names from the ComponentDefinition the component resolves to.
    facts = addon_facts(d.db.addon)
    main = next(s for s in stored["spec"]["componentSpecs"] if s["name"] == d.db.component)
    resolved = facts.resolve(stored, main)
    endpoint = next(e for e in plan.endpoints if e.database == key)
    services = [
        service_name(d.release, main["name"], svc)
        for svc in resolved.cmpd["spec"].get("services", [])
        if not svc.get("podService") and any(p["port"] == endpoint.port for p in svc["spec"]["ports"])
    ]
    assert services == [endpoint.service]
    accounts = [a["name"] for a in resolved.cmpd["spec"].get("systemAccounts", [])]
    if endpoint.secret is None:
        assert accounts == []
    else:
        assert d.db.account is not None and d.db.account in accounts
        assert endpoint.secret == account_secret_name(d.release, main["name"], d.db.account)

    # Images: every release image of every component, as KubeBlocks rewrites them.
    wanted = [
        Image(spec["name"], container, source, kubeblocks_image(source, config.registry))
        for spec in stored["spec"]["componentSpecs"]
        for container, source in sorted(facts.resolve(stored, spec).release["images"].items())
    ]
    assert sorted(step.images, key=str) == sorted(wanted, key=str)


def test_kubeblocks_image_rewrite_keeps_only_the_repository_and_tag() -> None:
    """pkg/controllerutil/image_util.go ReplaceImageRegistry with defaultRegistry and defaultNamespace set."""
    assert kubeblocks_image("docker.io/redis/redis-stack-server:7.2.0-v14", "docker.io") == (
        "docker.io/apecloud/redis-stack-server:7.2.0-v14"
    )
    assert kubeblocks_image("registry.k8s.io/sig-storage/x@sha256:" + "a" * 64, "r.example:5000") == (
        "r.example:5000/apecloud/x@sha256:" + "a" * 64
    )


# --- 2. every accepted key changes the render; dead keys do not; unmodelled values deploy something else --------


def rule_leaves(rules: Mapping[str, Rule], prefix: str = "") -> Iterator[tuple[str, Rule]]:
    for name, rule in rules.items():
        path = f"{prefix}.{name}" if prefix else name
        if rule.children:
            yield from rule_leaves(rule.children, path)
        else:
            yield path, rule


REPLICATION = {"mode": "replication", "replicas": 2}
CONTEXT: dict[tuple[str, str], dict[str, Any]] = {
    # Keys a mode or a partner key switches on: the chart reads them only then.
    ("redis", "replicas"): {"mode": "replication"},
    ("redis", "customSecretName"): {"customSecretNamespace": "secrets"},
    ("redis", "customSecretNamespace"): {"customSecretName": "redis-password"},
    **{("redis", f"sentinel.{k}"): REPLICATION for k in DATABASES["redis"].values_rules["sentinel"].children},
    ("redis", "sentinel.customSecretName"): {**REPLICATION, "sentinel": {"customSecretNamespace": "secrets"}},
    ("redis", "sentinel.customSecretNamespace"): {**REPLICATION, "sentinel": {"customSecretName": "pw"}},
}
WITHOUT: dict[tuple[str, str], tuple[str, ...]] = {
    # ApeRAG's `replicas: 1` fits standalone only; each mode brings its own count when left to the chart.
    ("redis", "mode"): ("replicas",),
}


def context_for(key: str, path: str) -> dict[str, Any]:
    context = merged(base_values(key), CONTEXT.get((key, path), {}))
    for dropped in WITHOUT.get((key, path), ()):
        context.pop(dropped, None)
    return context


def base_values(key: str) -> dict[str, Any]:
    return dict(load_config(VALUES).database(key).values)


def put(values: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(dict(values))
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def without_key(values: Mapping[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(values))
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)
    return out


def get(values: Mapping[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def enumerable(key: str, path: str, rule: Rule) -> list[Any] | None:
    """Every value of a small domain (enum, boolean, whole numbers, the addon's releases), or None."""
    if rule.enum:
        return list(rule.enum)
    if rule.kinds == ("boolean",):
        return [False, True]
    if rule.kinds == ("integer",) and rule.minimum is not None and rule.maximum is not None:
        return list(range(int(rule.minimum), int(rule.maximum) + 1))
    if path == "version":
        return sorted(service_releases(key, "1.0.1") or {})
    return None


def numbers(key: str, path: str, rule: Rule, context: Mapping[str, Any]) -> st.SearchStrategy[float]:
    db = DATABASES[key]
    low = rule.minimum if rule.minimum is not None else 0.001
    high = rule.maximum if rule.maximum is not None else 64.0
    if path.startswith("requests."):  # above the limit is refused, so draw below it
        high = float(get(context, path.split(".")[1]) or get(db.chart_defaults, path.split(".")[1]))
    step = rule.multiple_of or 0.001
    return st.integers(math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)).map(lambda n: round(n * step, 6))


def meaning(value: Any) -> Any:
    """What Helm makes of a value: 1, 1.0 and "1" write the same number into the templates."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        return float(value)
    return value


def render_values(key: str, values: Mapping[str, Any]) -> str:
    objects = render("cluster", DATABASES[key].addon, values, "pg-cluster", "default")
    return dumps(objects)


def accepted(key: str, values: Mapping[str, Any]) -> bool:
    return chart_value_problems(DATABASES[key], values, "1.0.1") == []


KEYS = [(key, path) for key, db in DATABASES.items() for path, _ in rule_leaves(db.values_rules)]
SINGLE_VALUED = {
    ("postgresql", "mode"): "replication is the ClusterDefinition's only topology",
    ("postgresql", "etcd.enabled"): "an external etcd is not modelled",
    ("elasticsearch", "mode"): "multi-node is not modelled",
    ("elasticsearch", "replicas"): "single-node runs one replica",
    ("elasticsearch", "tls.enabled"): "TLS is not modelled",
    ("neo4j", "mode"): "singlealone is the chart's only mode",
    ("neo4j", "replicas"): "singlealone runs one replica",
}
"""Keys validation accepts with one value only, and why: they let ApeRAG's values say what runs."""


def rule_of(key: str, path: str) -> Rule:
    return dict(rule_leaves(DATABASES[key].values_rules))[path]


SMALL_KEYS = [(k, p) for k, p in KEYS if enumerable(k, p, rule_of(k, p)) is not None]
FREE_KEYS = [(k, p) for k, p in KEYS if enumerable(k, p, rule_of(k, p)) is None]


@pytest.mark.parametrize(("key", "path"), SMALL_KEYS, ids=[f"{k}-{p}" for k, p in SMALL_KEYS])
def test_every_value_of_a_small_domain_that_validation_accepts_renders_differently(key: str, path: str) -> None:
    choices = enumerable(key, path, rule_of(key, path))
    assert choices is not None
    context = context_for(key, path)
    valid = [v for v in choices if accepted(key, put(context, path, v))]
    assert valid, f"validation accepts no value of {path}"
    renders = {render_values(key, put(context, path, v)) for v in valid}
    if len(valid) == 1:
        # A key with one accepted value restates what dbstack models; which keys these are is pinned below.
        assert (key, path) in SINGLE_VALUED, f"{path} accepts only {valid}"
    else:
        assert (key, path) not in SINGLE_VALUED
        assert len(renders) == len(valid), f"{path}: two of {valid} render the same"
    for v in valid:
        cluster = the_cluster(render("cluster", DATABASES[key].addon, put(context, path, v), "pg-cluster", "default"))
        assert admit(cluster)[1] == []


YAML11_WORDS = ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
WRITTEN_BARE = {
    ("redis", "customSecretName"),
    ("redis", "customSecretNamespace"),
    ("redis", "sentinel.customMasterName"),
    ("redis", "sentinel.customSecretName"),
    ("redis", "sentinel.customSecretNamespace"),
    ("redis", "sentinel.storageClassName"),
}
"""The string keys whose templates write the value unquoted: found by rendering each word below for every key."""


@pytest.mark.parametrize(("key", "path"), [k for k in FREE_KEYS if "string" in rule_of(*k).kinds])
def test_a_word_yaml_reads_as_a_boolean_is_refused_exactly_where_the_chart_would_write_it_bare(
    key: str, path: str
) -> None:
    context = context_for(key, path)
    for word in ("on", "No"):
        values = put(context, path, word)
        cluster = the_cluster(render("cluster", DATABASES[key].addon, values, "pg-cluster", "default"))
        admitted = admit(cluster)[1] == []
        assert admitted == ((key, path) not in WRITTEN_BARE), f"{path}={word!r} admitted: {admitted}"
        assert accepted(key, values) == admitted
    # A bare null is admitted where the field is optional, but it is no longer the name that was asked for.
    assert accepted(key, put(context, path, "null")) == ((key, path) not in WRITTEN_BARE)


@pytest.mark.parametrize(("key", "path"), FREE_KEYS, ids=[f"{k}-{p}" for k, p in FREE_KEYS])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_two_accepted_values_of_a_key_render_differently(key: str, path: str, data: st.DataObject) -> None:
    rule = rule_of(key, path)
    context = context_for(key, path)
    strategy: st.SearchStrategy[Any]
    if "string" in rule.kinds:
        names = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
        if (key, path) in WRITTEN_BARE:  # words YAML 1.1 reads as booleans or null are refused: tested below
            names = names.filter(lambda name: name not in YAML11_WORDS)
        strategy = st.one_of(st.just(""), names)
    else:
        strategy = numbers(key, path, rule, context)
        if "quantity" in rule.kinds:  # the charts take quantities as numbers or decimal strings
            strategy = st.one_of(strategy, strategy.map(str))
    first, second = data.draw(strategy), data.draw(strategy)
    assume(meaning(first) != meaning(second))
    one, other = put(context, path, first), put(context, path, second)
    assert accepted(key, one) and accepted(key, other)
    assert render_values(key, one) != render_values(key, other)
    assert admit(the_cluster(render("cluster", DATABASES[key].addon, one, "pg-cluster", "default")))[1] == []


def perturbed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, Mapping):
        return {k: perturbed(v) for k, v in value.items()} or {"x": 1}
    if value is None or value == "":
        return "something"
    return f"{value}-changed"


def alternative(loaded: Any, context: Mapping[str, Any], path: str, current: Any) -> Any:
    """Another value for `path` that the chart's (and its subcharts') schemas still accept."""
    from helm_python import HelmValuesError

    for candidate in (perturbed(current), "WipeOut", "DoNotTerminate"):
        try:
            loaded.validate_schema(put(context, path, candidate))
        except HelmValuesError:
            continue
        return candidate
    raise AssertionError(f"no other value of {path} passes the chart's schema")


DEAD = [(key, path) for key, db in DATABASES.items() for path in db.dead_keys]


@pytest.mark.parametrize(("key", "path"), DEAD, ids=[f"{k}-{p}" for k, p in DEAD])
def test_a_key_validation_rejects_as_dead_changes_nothing_in_any_modelled_mode(key: str, path: str) -> None:
    db = DATABASES[key]
    loaded = chart("cluster", db.addon)
    current = get(loaded.values, path)
    for variant in accepted_variants(key):
        context = merged(base_values(key), variant)
        assert accepted(key, context)
        other = alternative(loaded, context, path, current)
        renders = {render_values(key, put(context, path, v)) for v in (current, other)}
        assert len(renders) == 1, f"{path} changes the render in {variant}"
        problems = chart_value_problems(db, put(context, path, other), "1.0.1")
        assert [(p.key, p.message) for p in problems] == [
            (path, f"the {db.cluster_chart} 1.0.1 chart {db.dead_keys[path]}")
        ]


UNMODELLED = [
    (key, path, value)
    for key, db in DATABASES.items()
    for path, unmodelled in db.unmodelled.items()
    for value in unmodelled.values
]


def evidence(key: str, path: str, value: Any, objects: list[dict[str, Any]]) -> bool:
    """What the rejected value deploys that the plan does not model (the reason validation gives)."""
    cluster = the_cluster(objects)
    names = [c["name"] for c in cluster["spec"].get("componentSpecs", [])]
    if (key, path, value) == ("redis", "mode", "cluster"):
        return "redis" not in names and bool(cluster["spec"].get("shardings"))
    if (key, path, value) == ("redis", "mode", "replication-twemproxy"):
        return "redis-twemproxy" in names
    if (key, path, value) == ("elasticsearch", "mode", "multi-node"):
        replicas = [c["replicas"] for c in cluster["spec"]["componentSpecs"] if c["name"] in ("master", "data")]
        return "mdit" not in names and len(replicas) == 2 and min(replicas) >= 3
    if (key, path, value) == ("elasticsearch", "tls.enabled", True):
        secrets = {s["metadata"]["name"] for s in of_kind(objects, "Secret")}
        tls = {c["name"]: c.get("tls") for c in cluster["spec"]["componentSpecs"]}
        refs = [a.get("secretRef", {}).get("name") for a in cluster["spec"]["componentSpecs"][0]["systemAccounts"]]
        return set(refs) <= secrets and tls == {"mdit": None, "kibana": True}
    if (key, path, value) == ("postgresql", "etcd.enabled", True):
        return bool(of_kind(objects, "ServiceDescriptor")) and "serviceRefs" in cluster["spec"]["componentSpecs"][0]
    raise AssertionError(f"no evidence written for {key} {path}={value!r}")


@pytest.mark.parametrize(("key", "path", "value"), UNMODELLED, ids=[f"{k}-{p}-{v}" for k, p, v in UNMODELLED])
def test_a_value_validation_rejects_as_unmodelled_deploys_what_it_says(key: str, path: str, value: Any) -> None:
    context = merged(base_values(key), accepted_variants(key)[0])
    values = put(context, path, value)
    problems = chart_value_problems(DATABASES[key], values, "1.0.1")
    assert [p.key for p in problems] == [path]
    assert " is not modelled: " in problems[0].message
    objects = render("cluster", DATABASES[key].addon, values, "pg-cluster", "default")
    assert evidence(key, path, value, objects)


# --- 4. addon charts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_the_addon_definitions_the_plan_waits_on_exist_at_every_pinned_version(profile: str | None) -> None:
    config = load_config(VALUES, profile, ALL_ENABLED)
    plan = build_plan(config)
    for d in config.enabled:
        step = plan.step(f"addon:{d.key}")
        objects = rendered(step)
        loaded = chart("addon", d.db.addon)
        argv = step.commands[0].argv
        assert (argv[4], argv[argv.index("--version") + 1]) == (loaded.name, loaded.version)
        present = {f"{o['kind'].lower()}.apps.kubeblocks.io/{o['metadata']['name']}" for o in objects}
        assert {w.resource for w in step.done_when} <= present
        cluster = the_cluster(rendered(plan.step(f"cluster:{d.key}")))
        for spec in cluster["spec"]["componentSpecs"]:  # raises when the version is no release
            addon_facts(d.db.addon).resolve(cluster, spec)
        assert d.version in (service_releases(d.key, d.chart_version) or {})


def test_the_component_version_table_the_runtime_reads_is_what_the_addon_charts_say() -> None:
    table = REPO / "ci" / "dbstack" / "config" / "componentversions.json"
    assert table.read_text(encoding="utf-8") == table_json(component_versions_table()), (
        "regenerate it: PYTHONPATH=ci .venv/bin/python tests/upstream.py"
    )


def test_elasticsearch_8_8_2_installs_the_ik_plugin_image() -> None:
    """Why smoke.requireIkPlugin defaults to true: the release's prepare-plugins image bundles IK."""
    images = (service_releases("elasticsearch", "1.0.1") or {})["8.8.2"]["mdit"]
    assert images["prepare-plugins"] == "docker.io/apecloud/elasticsearch-plugins:8.8.2"
    assert load_config(VALUES).smoke_require_ik is True


# --- 5. the KubeBlocks chart ----------------------------------------------------------------------------------


def kubeblocks_step_values(step: Step) -> tuple[list[str], dict[str, Any]]:
    import helm_python

    argv = step.commands[0].argv
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    values: dict[str, Any] = {}
    for expression in sets:
        values = merged(values, helm_python.parse_set_string(expression))
    return sets, values


def test_every_set_key_the_plan_passes_exists_in_the_kubeblocks_chart() -> None:
    step = build_plan(load_config(VALUES)).step("kubeblocks")
    sets, _ = kubeblocks_step_values(step)
    defaults = chart("kubeblocks", "kubeblocks").values
    missing = []
    for expression in sets:
        node: Any = defaults
        for part in expression.partition("=")[0].split("."):
            if isinstance(node, Mapping) and not node:
                break  # a free-form map (`registryConfig: {}`): any key is the chart's to read
            if not isinstance(node, Mapping) or part not in node:
                missing.append(expression)
                break
            node = node[part]
    assert missing == []


def test_the_kubeblocks_chart_renders_what_the_step_waits_on_and_what_the_simulator_models() -> None:
    config = load_config(VALUES)
    step = build_plan(config).step("kubeblocks")
    argv = step.commands[0].argv
    _, values = kubeblocks_step_values(step)
    loaded = chart("kubeblocks", "kubeblocks")
    assert argv[argv.index("--version") + 1] == loaded.version == loaded.metadata["appVersion"]
    objects = render("kubeblocks", "kubeblocks", values, "kubeblocks", argv[argv.index("-n") + 1])
    deployments = {o["metadata"]["name"]: o for o in of_kind(objects, "Deployment")}
    assert {w.resource for w in step.done_when} == {f"deployment/{d}" for d in KUBEBLOCKS_DEPLOYMENTS}
    assert set(KUBEBLOCKS_DEPLOYMENTS) <= set(deployments)
    # The skip probe reads the installed version from this label.
    assert deployments["kubeblocks"]["metadata"]["labels"][KUBEBLOCKS_VERSION_LABEL] == config.kubeblocks_version
    for name, component in zip(KUBEBLOCKS_DEPLOYMENTS, ("apps", "dataprotection"), strict=True):
        assert deployments[name]["metadata"]["labels"] == sim.kubeblocks_labels(loaded.version, component)
        for container in deployments[name]["spec"]["template"]["spec"]["containers"]:
            assert container["image"].startswith(f"{config.registry}/apecloud/")
    # Capacity's control plane: each Deployment's replicas times its requests.
    plane = {name: (cpu, memory) for name, cpu, memory in CONTROL_PLANE}
    for name in KUBEBLOCKS_DEPLOYMENTS:
        spec = deployments[name]["spec"]
        requests = spec["template"]["spec"]["containers"][0]["resources"]["requests"]
        cpu = spec.get("replicas", 1) * float(str(requests["cpu"]).removesuffix("m")) / 1000
        assert plane[name] == (cpu, spec.get("replicas", 1) * float(str(requests["memory"]).removesuffix("Gi")))
    # autoInstalledAddons={} registers no Addon; the chart's defaults register the simulator's default addons.
    assert of_kind(objects, "Addon") == []
    default = render("kubeblocks", "kubeblocks", {}, "kubeblocks", "kb-system")
    registered = {o["metadata"]["name"] for o in of_kind(default, "Addon")} & set(DATABASES)
    assert registered == set(sim.KUBEBLOCKS_DEFAULT_ADDONS)


# --- 6. the snapshot controller -------------------------------------------------------------------------------


def selector_labels(selector: str) -> dict[str, str]:
    return dict(term.split("=", 1) for term in selector.split(","))


def test_the_snapshot_controller_probe_and_waits_fit_the_upstream_manifest() -> None:
    plan = build_plan(load_config(VALUES))
    step = plan.step("snapshot-controller")
    (deployment,) = of_kind(snapshot_controller_manifest(), "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    wanted = selector_labels(SNAPSHOT_CONTROLLER_SELECTOR)
    # The label is on the pods, never on the Deployment: probing Deployments by it would never find this controller.
    assert wanted.items() <= pod_labels.items()
    assert not wanted.items() <= (deployment["metadata"].get("labels") or {}).items()
    probe = step.skip_when[0].command.argv
    assert (probe[2], probe[probe.index("-l") + 1]) == ("pods", SNAPSHOT_CONTROLLER_SELECTOR) and "-A" in probe
    (installed,) = step.done_when
    assert (installed.resource, installed.namespace) == (
        f"deployment/{deployment['metadata']['name']}",
        deployment["metadata"]["namespace"],
    )
    assert step.done_when_skipped is not None
    (found,) = step.done_when_skipped
    assert (found.resource, found.namespace, found.selector) == ("pods", None, SNAPSHOT_CONTROLLER_SELECTOR)
    assert any(
        c.argv[-1].endswith("/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml")
        for c in step.commands
    )


def test_the_simulator_labels_the_snapshot_controller_as_the_manifest_does() -> None:
    (deployment,) = of_kind(snapshot_controller_manifest(), "Deployment")
    assert dict(sim.SNAPSHOT_CONTROLLER_LABELS) == (deployment["metadata"].get("labels") or {})
    assert dict(sim.SNAPSHOT_CONTROLLER_POD_LABELS) == deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == sim.SNAPSHOT_CONTROLLER_REPLICAS


# --- 8. the simulator on what Helm would create ---------------------------------------------------------------


def test_a_simulated_run_on_the_rendered_topology_creates_the_pods_kubeblocks_would(tmp_path: Path) -> None:
    config = load_config(VALUES, "ci", ALL_ENABLED)
    redis = merged(config.database("redis").values, {"mode": "replication", "replicas": 2})
    es = merged(config.database("elasticsearch").values, {"enableKibana": True})
    config = with_values(with_values(config, "redis", redis), "elasticsearch", es)
    plan = build_plan(config)
    cluster = SimCluster(Scenario(topology=rendered_topology))
    pods: dict[str, list[dict[str, Any]]] = {}

    async def main() -> RunResults:
        results = await run_plan(plan, cluster, tmp_path, cluster_kind="simulated")
        for d in config.enabled:
            selector = f"app.kubernetes.io/instance={d.release}"
            done = await cluster.run(
                kubectl("-n", config.namespace, "get", "pods", "-l", selector, "-o", "json"), timeout_s=30
            )
            pods[d.key] = json.loads(done.stdout)["items"]
        return results

    results = in_virtual_time(main)
    assert {d.key: d.outcome for d in results.databases} == dict.fromkeys(DATABASES, Outcome.PASSED)
    assert cluster.unknown == []
    for d in config.enabled:
        components = components_of(the_cluster(rendered(plan.step(f"cluster:{d.key}"))))
        wanted = [name for c in components for name in component_pods(d.release, c.name, c.replicas)]
        assert [p["metadata"]["name"] for p in pods[d.key]] == wanted
        for pod in pods[d.key]:
            labels = pod["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == d.release
            assert pod["metadata"]["name"].startswith(f"{d.release}-{labels['apps.kubeblocks.io/component-name']}-")
    names = {key: [p["metadata"]["name"] for p in found] for key, found in pods.items()}
    assert names["redis"][-3:] == [f"redis-cluster-redis-sentinel-{i}" for i in range(3)]
    assert names["elasticsearch"] == ["es-cluster-mdit-0", "es-cluster-kibana-0"]


def test_the_rendered_topology_is_the_catalogs_for_the_values_the_plan_pipes() -> None:
    config = load_config(VALUES, "ci", ALL_ENABLED)
    plan = build_plan(config)
    for d in config.enabled:
        command = plan.step(f"cluster:{d.key}").commands[0]
        topology = rendered_topology(d.db.cluster_chart, d.release, config.namespace, command.stdin or "")
        assert topology == sim.catalog_topology(d.db.cluster_chart, d.release, config.namespace, command.stdin or "")
        assert all(isinstance(c, Component) for c in topology)
