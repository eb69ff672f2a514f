"""The real upstream charts and CRDs as the oracle: render them with Helm's own engine and admit the objects the
way the API server would.

Test-side only (helm-python-sdk is a test dependency; the runtime calls the helm binary). Reusable by any test or
benchmark that needs to know what Helm and KubeBlocks would really create:

- `upstream_or_skip()` finds `../shared/upstream` (or `DBSTACK_UPSTREAM`); without it a test skips with the reason,
  except under `CI=true`, where it fails: CI must run these checks.
- `render(...)` renders a chart of the upstream tree with exactly the values given (a cluster chart with the YAML
  the plan pipes to `helm -f -`), after copying its `file://../kblib` dependency into `charts/kblib` inside a
  per-process cache folder; `/work/shared` is never written.
- `admit(obj)` applies what the API server does to a custom resource before storing it (nulls of non-nullable
  fields dropped, defaults filled, int-or-string, nullable, preserve-unknown-fields) and returns every way the
  object breaks the CRD's openAPIV3Schema, unknown fields included (the server would prune them silently).
- `AddonFacts` reads the addon chart's ClusterDefinition, ComponentDefinitions and ComponentVersions, and resolves
  a Cluster's component to its ComponentDefinition the way KubeBlocks 1.0.1 does (prefix or regular expression,
  then the service version's compatibility rule).
- `rendered_topology` turns a cluster chart's render into the simulator's components (dbstack.sim.cluster takes it
  as `Scenario.topology`).
"""

from __future__ import annotations

import atexit
import copy
import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from dbstack.config.catalog import DATABASES
from dbstack.config.topology import Component

REPO = Path(__file__).resolve().parents[1]
ENV = "DBSTACK_UPSTREAM"
ADDONS = "kubeblocks-addons-v1.0.1"
KUBEBLOCKS = "kubeblocks-v1.0.1/deploy/helm"
SNAPSHOTTER = "external-snapshotter-v8.2.0"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def upstream_dir() -> Path:
    """Where the upstream sources are expected: `DBSTACK_UPSTREAM`, else `../shared/upstream` beside the repo."""
    return Path(os.environ.get(ENV) or REPO.parent / "shared" / "upstream")


def upstream_available() -> bool:
    return (upstream_dir() / ADDONS).is_dir()


def upstream_or_skip() -> Path:
    """The upstream folder; else skip the calling test module with the reason, or fail it under CI=true."""
    import pytest

    root = upstream_dir()
    if (root / ADDONS).is_dir():
        return root
    reason = (
        f"the upstream charts are absent ({root / ADDONS}); point {ENV} at a folder holding them "
        "(see ../shared/upstream/README.md)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true these checks must run, not skip", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
    raise AssertionError("unreachable")


# --- charts ----------------------------------------------------------------------------------------------------


@functools.cache
def _cache() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="dbstack-charts-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _copy(source: Path, target: Path) -> None:
    """A writable copy (the upstream tree is read-only, and copytree would copy that too)."""
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


def chart_source(kind: str, name: str) -> Path:
    """`kind` is `cluster` (addons-cluster/<name>), `addon` (addons/<name>) or `kubeblocks`."""
    root = upstream_dir()
    if kind == "kubeblocks":
        return root / KUBEBLOCKS
    return root / ADDONS / ("addons-cluster" if kind == "cluster" else "addons") / name


@functools.cache
def prepared_chart(kind: str, name: str) -> Path:
    """The chart copied into the cache with its `file://../kblib` dependency in `charts/kblib`, as `helm dependency
    build` would leave it."""
    source = chart_source(kind, name)
    target = _cache() / kind / name
    _copy(source, target)
    meta = yaml.safe_load((source / "Chart.yaml").read_text())
    for dep in meta.get("dependencies") or []:
        repository = str(dep.get("repository", ""))
        if repository.startswith("file://"):
            _copy((source / repository.removeprefix("file://")).resolve(), target / "charts" / dep["name"])
    if kind == "kubeblocks":
        _stamp(target / "Chart.yaml", KUBEBLOCKS_RELEASE)
    return target


KUBEBLOCKS_RELEASE = "1.0.1"
"""The tag of the KubeBlocks sources. Its deploy/helm/Chart.yaml still says 1.0.0: the release workflow
(`make helm-package`, which runs `bump-chart-ver VERSION=<tag>`) writes the tag into `version` and `appVersion`
before packaging, so the published chart is 1.0.1 throughout; `_stamp` does the same to the copy."""


def _stamp(chart_yaml: Path, version: str) -> None:
    text = chart_yaml.read_text()
    text = re.sub(r"(?m)^version:.*$", f"version: {version}", text)
    text = re.sub(r"(?m)^appVersion:.*$", f"appVersion: {version}", text)
    chart_yaml.write_text(text)


@functools.cache
def chart(kind: str, name: str) -> Any:
    import helm_python

    return helm_python.Chart.load(prepared_chart(kind, name))


def render(kind: str, name: str, values: Mapping[str, Any], release: str, namespace: str) -> list[dict[str, Any]]:
    """Every object the chart renders for an install of `release` into `namespace` with `values` (Helm merges them
    over the chart's defaults and enforces its values.schema.json, as `helm install` does)."""
    return copy.deepcopy(_render(kind, name, json.dumps(values, sort_keys=True), release, namespace))


@functools.lru_cache(maxsize=256)
def _render(kind: str, name: str, values_json: str, release: str, namespace: str) -> list[dict[str, Any]]:
    manifests = chart(kind, name).render(json.loads(values_json), name=release, namespace=namespace, is_install=True)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.load_all(text, Loader=_LOADER) if doc)
    return objects


def values_from_stdin(stdin: str) -> dict[str, Any]:
    """The values Helm reads from `-f -`, parsed by Helm itself."""
    import helm_python

    values: dict[str, Any] = helm_python.values_from_yaml(stdin)
    return values


def render_helm_command(argv: Sequence[str], stdin: str | None) -> list[dict[str, Any]]:
    """Render what `helm upgrade --install <release> <chart> ... -n <ns> [-f -]` (a plan's cluster or addon command)
    would install, from the upstream tree."""
    if list(argv[:3]) != ["helm", "upgrade", "--install"]:
        raise ValueError(f"not a helm install: {argv}")
    release, chart_name = argv[3], argv[4]
    namespace = argv[argv.index("-n") + 1]
    values = values_from_stdin(stdin) if stdin is not None and "-f" in argv else {}
    if chart_name.endswith("-cluster"):
        return render("cluster", chart_name.removesuffix("-cluster"), values, release, namespace)
    return render("addon", chart_name, values, release, namespace)


def of_kind(objects: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def the_cluster(objects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    clusters = of_kind(objects, "Cluster")
    if len(clusters) != 1:
        raise AssertionError(f"expected one Cluster in the render, got {len(clusters)}")
    return dict(clusters[0])


# --- what the API server does with a custom resource -----------------------------------------------------------


@functools.cache
def _crd_files() -> dict[str, Path]:
    """Kind -> its CRD file in the KubeBlocks chart (read by pattern: parsing all 10 MB takes seconds)."""
    found = {}
    for path in sorted((upstream_dir() / KUBEBLOCKS / "crds").glob("*.yaml")):
        match = re.search(r"(?m)^    kind: (\w+)$", path.read_text())
        if match:
            found[match[1]] = path
    return found


@functools.cache
def _crd(kind: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.load(_crd_files()[kind].read_text(), Loader=_LOADER)  # noqa: S506 - a safe loader
    return crd


def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    crd = _crd(kind)
    for version in crd["spec"]["versions"]:
        if f"{crd['spec']['group']}/{version['name']}" == api_version and version.get("served"):
            schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{api_version} {kind}")


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_strict(crd_schema(api_version, kind), top=True))


def admit(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The object as the API server would store it (nulls dropped, defaults filled) and every violation of its CRD's
    schema, unknown fields included. `metadata` is left to the server's own ObjectMeta rules; x-kubernetes-validations
    (CEL) are not evaluated."""
    api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
    stored = copy.deepcopy(dict(obj))
    _default(stored, crd_schema(api_version, kind))
    errors = sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '-'}: {error.message}"
        for error in _validator(api_version, kind).iter_errors(stored)
    )
    return stored, errors


def _child(node: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    child = node.get("properties", {}).get(key)
    if child is None and isinstance(node.get("additionalProperties"), Mapping):
        child = node["additionalProperties"]
    return child if isinstance(child, Mapping) else None


def _default(value: Any, node: Mapping[str, Any]) -> None:
    """Structural defaulting: a null is dropped unless the field is nullable (then a default may fill it), and every
    missing property with a default gets it, recursively, as the API server does on create."""
    if isinstance(value, dict):
        for key in list(value):
            child = _child(node, key)
            if child is None:
                continue
            if value[key] is None and not child.get("nullable"):
                del value[key]
                continue
            _default(value[key], child)
        for key, child in node.get("properties", {}).items():
            if key not in value and "default" in child:
                value[key] = copy.deepcopy(child["default"])
                _default(value[key], child)
    elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
        for item in value:
            _default(item, node["items"])


_IGNORED = ("description", "default", "format", "nullable", "example")


def _strict(node: Mapping[str, Any], top: bool = False) -> dict[str, Any]:
    """A JSON Schema (draft 7) for a structural schema node in which an unknown field is an error."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _IGNORED:
            continue
        if key == "properties":
            out[key] = {name: _strict(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = _strict(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_strict(v) for v in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if top:
        out.setdefault("properties", {})["metadata"] = {"type": "object"}
        out["properties"].setdefault("apiVersion", {"type": "string"})
        out["properties"].setdefault("kind", {"type": "string"})
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for name in ("apiVersion", "kind"):
            props.setdefault(name, {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if node.get("type") == "object" and not preserve and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


# --- quantities ------------------------------------------------------------------------------------------------

_SUFFIX = {"m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a number (cores, or bytes)."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value).strip())
    if match is None or match[2] not in _SUFFIX:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match[1]) * _SUFFIX[match[2]]


# --- the addon charts: definitions, versions, images -----------------------------------------------------------


def prefix_or_regex_matched(name: str, pattern: str) -> bool:
    """KubeBlocks 1.0.1's `PrefixOrRegexMatched`: a prefix, or (when the pattern holds regex syntax) a match."""
    if name.startswith(pattern):
        return True
    if re.escape(pattern) == pattern:
        return False
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


@dataclass(frozen=True)
class Resolved:
    """A Cluster component resolved to the addon's definitions."""

    component: str
    cmpd: Mapping[str, Any]
    cmpv: Mapping[str, Any]
    release: Mapping[str, Any]
    """The ComponentVersion release of the component's serviceVersion (its images)."""


class AddonFacts:
    """The addon chart's render for `addon`, and lookups KubeBlocks would make in it."""

    def __init__(self, addon: str) -> None:
        self.addon = addon
        self.objects = render("addon", addon, {}, f"kb-addon-{addon}", "kb-system")

    def named(self, kind: str) -> dict[str, Mapping[str, Any]]:
        return {o["metadata"]["name"]: o for o in of_kind(self.objects, kind)}

    def resolve(self, cluster: Mapping[str, Any], spec: Mapping[str, Any]) -> Resolved:
        """The ComponentDefinition and ComponentVersion release KubeBlocks would pick for one componentSpec."""
        pattern = spec.get("componentDef") or self._topology_pattern(cluster, spec["name"])
        version = str(spec["serviceVersion"])
        candidates = [n for n in self.named("ComponentDefinition") if prefix_or_regex_matched(n, pattern)]
        for cmpv in self.named("ComponentVersion").values():
            for rule in cmpv["spec"]["compatibilityRules"]:
                if version not in rule["releases"]:
                    continue
                matched = [n for n in candidates if any(prefix_or_regex_matched(n, p) for p in rule["compDefs"])]
                if matched:
                    release = next(r for r in cmpv["spec"]["releases"] if r["name"] == version)
                    cmpd = self.named("ComponentDefinition")[sorted(matched)[-1]]
                    return Resolved(spec["name"], cmpd, cmpv, release)
        raise AssertionError(f"{self.addon}: no ComponentDefinition for {spec['name']} ({pattern}) at {version}")

    def _topology_pattern(self, cluster: Mapping[str, Any], component: str) -> str:
        definition = self.named("ClusterDefinition")[cluster["spec"]["clusterDef"]]
        topologies = definition["spec"]["topologies"]
        wanted = cluster["spec"].get("topology")
        topology = next(t for t in topologies if t["name"] == wanted or (wanted is None and t.get("default")))
        return str(next(c["compDef"] for c in topology["components"] if c["name"] == component))


def service_name(cluster: str, component: str, service: Mapping[str, Any]) -> str:
    """KubeBlocks 1.0.1 `GenerateComponentServiceName`."""
    suffix = service.get("serviceName") or ""
    return f"{cluster}-{component}-{suffix}" if suffix else f"{cluster}-{component}"


def account_secret_name(cluster: str, component: str, account: str) -> str:
    """KubeBlocks 1.0.1 `GenerateAccountSecretName`."""
    return f"{cluster}-{component}-account-{account.replace('_', '-')}"


def component_pods(cluster: str, component: str, replicas: int) -> list[str]:
    """KubeBlocks 1.0.1 `GeneratePodName` for each ordinal."""
    return [f"{cluster}-{component}-{i}" for i in range(replicas)]


# --- the render as the simulator's topology --------------------------------------------------------------------


def components_of(cluster: Mapping[str, Any]) -> tuple[Component, ...]:
    """The Cluster's components as stored (defaults applied): name, pods, and what each pod requests."""
    stored, _ = admit(cluster)
    out = []
    for spec in stored["spec"].get("componentSpecs", []):
        requests = spec.get("resources", {}).get("requests", {})
        out.append(
            Component(
                name=spec["name"],
                replicas=int(spec["replicas"]),
                cpu=quantity(requests.get("cpu", 0)),
                memory_gi=quantity(requests.get("memory", 0)) / 2**30,
            )
        )
    for sharding in stored["spec"].get("shardings", []):
        template = sharding["template"]
        requests = template.get("resources", {}).get("requests", {})
        out.append(
            Component(
                name=sharding["name"],
                replicas=int(template["replicas"]) * int(sharding["shards"]),
                cpu=quantity(requests.get("cpu", 0)),
                memory_gi=quantity(requests.get("memory", 0)) / 2**30,
            )
        )
    return tuple(out)


def rendered_topology(chart_name: str, release: str, namespace: str, stdin: str) -> tuple[Component, ...]:
    """What the simulator's `Scenario.topology` asks: the components Helm would create for this install."""
    key = chart_name.removesuffix("-cluster")
    objects = render("cluster", DATABASES[key].addon, values_from_stdin(stdin), release, namespace)
    return components_of(the_cluster(objects))


# --- the snapshot controller manifests -------------------------------------------------------------------------


def snapshot_controller_manifest() -> list[dict[str, Any]]:
    path = upstream_dir() / SNAPSHOTTER / "deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml"
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def leaves(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every non-mapping value."""
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            yield from leaves(value, path)
        else:
            yield path, value


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# --- the ComponentVersion table the runtime reads (ci/dbstack/config/componentversions.json) -------------------


def modelled_variants(key: str) -> list[dict[str, Any]]:
    """Values that reach every component dbstack deploys for `key`: each modelled mode, Kibana on."""
    db = DATABASES[key]
    mode_rule = db.values_rules.get("mode")
    unmodelled = db.unmodelled.get("mode")
    modes = [m for m in (mode_rule.enum if mode_rule else ()) if unmodelled is None or m not in unmodelled.values]
    extra: dict[str, Any] = {"enableKibana": True} if "enableKibana" in db.values_rules else {}
    return [{"mode": m, **extra} for m in modes] or [dict(extra)]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def component_versions_table(chart_version: str = "1.0.1") -> dict[str, Any]:
    """For each database: every service version all its deployed components have a ComponentVersion release for,
    and the images of those releases, found by rendering the cluster chart at that version and resolving each
    component as KubeBlocks does."""
    from helm_python import HelmError

    charts: dict[str, Any] = {}
    for key, db in DATABASES.items():
        facts = AddonFacts(db.addon)
        candidates = {r["name"] for cmpv in facts.named("ComponentVersion").values() for r in cmpv["spec"]["releases"]}
        table: dict[str, Any] = {}
        for version in sorted(candidates, key=_version_key):
            images: dict[str, dict[str, str]] = {}
            try:
                for variant in modelled_variants(key):
                    values = {**variant, "version": version}
                    cluster = the_cluster(render("cluster", db.addon, values, "x", "default"))
                    for spec in cluster["spec"]["componentSpecs"]:
                        images[spec["name"]] = dict(sorted(facts.resolve(cluster, spec).release["images"].items()))
            except (HelmError, AssertionError):  # the chart's schema, or a missing release, rules this version out
                continue
            table[version] = dict(sorted(images.items()))
        charts[key] = table
    return {
        "_comment": (
            "Generated by `python tests/upstream.py` from the kubeblocks-addons addon and cluster charts; "
            "tests/test_upstream_render.py proves it current. Database -> service version -> component -> "
            "container -> image."
        ),
        "charts": {chart_version: charts},
    }


def table_json(table: Mapping[str, Any]) -> str:
    return json.dumps(table, indent=1) + "\n"


if __name__ == "__main__":
    target = REPO / "ci" / "dbstack" / "config" / "componentversions.json"
    target.write_text(table_json(component_versions_table()), encoding="utf-8")
    print(f"wrote {target}")
