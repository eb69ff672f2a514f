"""The only reader of values/: files -> layered data -> typed Config, naming the file and line of every problem."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dbstack.config import backupcatalog, naming
from dbstack.config.catalog import DATABASES, Database, service_releases
from dbstack.config.chartrules import BOOL, RULES_CHART_VERSION, Rule, Unmodelled
from dbstack.config.problems import InvalidInput, Problem
from dbstack.config.topology import Component, components, lookup
from dbstack.config.yamlfile import YamlDocument, load_yaml, text_problem

SETTINGS_FILE = "pipeline.yaml"
PROFILES_DIR = "profiles"

_INT = Rule(("integer",))
REUSE_PINNED, REUSE_ANY = "pinned", "any"
REUSE_CHOICES = (REUSE_PINNED, REUSE_ANY)
"""kubeblocks.reuseInstalled: reuse an installed KubeBlocks or addon only at the pinned version, or at any."""
_TIMEOUT = Rule(("integer",), minimum=10, maximum=7200)
_DATABASE_SETTINGS = Rule(
    ("mapping",),
    children={"enabled": BOOL, "release": Rule(("string",)), "chartVersion": Rule(("string",))},
)
SETTINGS_RULES: dict[str, Rule] = {
    "namespace": Rule(("string",)),
    "databases": Rule(("mapping",), children={key: _DATABASE_SETTINGS for key in DATABASES}),
    "kubeblocks": Rule(
        ("mapping",),
        children={
            "version": Rule(("string",)),
            "namespace": Rule(("string",)),
            "helmRepo": Rule(("string",)),
            "registry": Rule(("string",)),
            "reuseInstalled": Rule(("string",), enum=REUSE_CHOICES),
        },
    ),
    "snapshotter": Rule(("mapping",), children={"version": Rule(("string",)), "installController": BOOL}),
    "images": Rule(
        ("mapping",),
        children={"k3s": Rule(("string",)), "toolbox": Rule(("string",)), "python": Rule(("string",))},
    ),
    "node": Rule(
        ("mapping",),
        children={"cpu": Rule(("number",), minimum=1, maximum=1024), "memoryGi": Rule(("number",), minimum=1)},
    ),
    "timeouts": Rule(
        ("mapping",),
        children={name: _TIMEOUT for name in ("crds", "snapshotController", "kubeblocks", "addon", "cluster", "smoke")},
    ),
    "smoke": Rule(("mapping",), children={"requireIkPlugin": Rule(("boolean",))}),
    "backup": Rule(
        ("mapping",),
        children={
            "enabled": BOOL,
            "methods": Rule(("mapping",), children={key: Rule(("string",)) for key in DATABASES}),
            "storageClass": Rule(("string",)),
            "snapshotClass": Rule(("string",)),
            "repo": Rule(
                ("mapping",),
                children={
                    "name": Rule(("string",)),
                    "create": BOOL,
                    "storageClass": Rule(("string",)),
                    "capacityGi": Rule(("integer",), minimum=1, maximum=100_000),
                },
            ),
            "timeouts": Rule(("mapping",), children={name: _TIMEOUT for name in ("csiDriver", "backup", "restore")}),
        },
    ),
    "preview": Rule(
        ("mapping",),
        children={
            "openIdleHours": Rule(("number",), minimum=1, maximum=24 * 365),
            "closedIdleHours": Rule(("number",), minimum=0, maximum=24 * 365),
            "maxConcurrent": Rule(("integer",), minimum=1, maximum=1000),
            "quota": Rule(
                ("mapping",),
                children={
                    "cpu": Rule(("number",), minimum=0.1, maximum=4096),
                    "memoryGi": Rule(("number",), minimum=0.1, maximum=65536),
                    "storageGi": Rule(("number",), minimum=1, maximum=1_000_000),
                    "pods": Rule(("integer",), minimum=1, maximum=10_000),
                },
            ),
            "containerDefaults": Rule(
                ("mapping",),
                children={
                    name: Rule(("number",), minimum=0.001, maximum=1024)
                    for name in ("requestCpu", "requestMemoryGi", "limitCpu", "limitMemoryGi")
                },
            ),
        },
    ),
}
CHART_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
SERVICE_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
SNAPSHOTTER_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
_IMAGE_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_IMAGE_PART}(?:/{_IMAGE_PART})*"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?P<digest>@sha256:[0-9a-f]{64})?$"
)
IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
"""A content digest: `name:tag@sha256:...` pins the image even when the tag is pushed again (the tag then only
documents which release it was; Dagger pulls by the digest)."""
DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
"""A string quantity the charts can paste before their unit (`{{ .Values.memory }}Gi`)."""


@dataclass(frozen=True)
class Source:
    """Where a value came from: a file and line, or a command-line override."""

    file: Path
    line: int


class Layers:
    """Values merged from several YAML mappings, remembering the file and line of each leaf."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.sources: dict[str, Source] = {}
        self.files: list[Path] = []

    def add(self, doc: YamlDocument) -> None:
        self.files.append(doc.path)
        self._merge(self.data, doc.data, "", doc)

    def _merge(self, into: dict[str, Any], new: Mapping[str, Any], prefix: str, doc: YamlDocument) -> None:
        for key, value in new.items():
            path = f"{prefix}.{key}" if prefix else key
            self.sources[path] = Source(doc.path, doc.line_of(path))
            if isinstance(value, dict):
                if not isinstance(into.get(key), dict):
                    into[key] = {}
                self._merge(into[key], value, path, doc)
            else:
                into[key] = _copy(value)

    def source(self, key: str) -> Source:
        parts = key.split(".")
        while parts:
            found = self.sources.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return Source(self.files[0] if self.files else Path("-"), 1)

    def problem(self, key: str, message: str, allowed: str | None = None) -> Problem:
        where = self.source(key)
        return Problem(where.file, where.line, key, message, allowed)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def parse_override(text: str) -> YamlDocument:
    """`key.path=value` from the command line (value read as YAML) as a one-key document."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    origin = Path(f"--set {text}")
    if not sep or not key or any(not part for part in key.split(".")):
        raise InvalidInput([Problem(origin, 1, key or "-", "expected key.path=value", "e.g. namespace=ci")])
    too_big = text_problem(raw)
    if too_big is not None:
        raise InvalidInput([Problem(origin, 1, key, f"the value {too_big}")])
    try:
        value = _string_keys(yaml.safe_load(raw)) if raw.strip() else ""
    except (yaml.YAMLError, ValueError, RecursionError):
        value = raw
    data: dict[str, Any] = {}
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return YamlDocument(path=origin, data=data, lines={})


def _string_keys(value: Any) -> Any:
    """Keys as strings, as files give them (`--set x=1:` parses to {1: None})."""
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


@dataclass(frozen=True)
class DatabaseConfig:
    db: Database
    enabled: bool
    release: str
    chart_version: str
    values: Mapping[str, Any]
    """The merged chart values handed to Helm."""
    values_files: tuple[Path, ...]

    @property
    def key(self) -> str:
        return self.db.key

    def effective(self, key: str) -> Any:
        """A chart value as the chart will see it: the merged values, else the chart's own default."""
        return lookup(self.values, self.db.chart_defaults)(key)

    @property
    def version(self) -> str:
        return str(self.effective("version") or "chart default")

    @property
    def mode(self) -> str | None:
        mode = self.effective("mode")
        return str(mode) if mode is not None else None

    @property
    def components(self) -> tuple[Component, ...]:
        """The Cluster's components as the chart renders them; the first is the one the application uses."""
        return components(self.key, self.values, self.db.chart_defaults)

    @property
    def replicas(self) -> int:
        """Pods of the component the application uses."""
        return self.components[0].replicas

    def values_yaml(self, overrides: Mapping[str, Any] | None = None) -> str:
        """The values Helm gets; `overrides` (top-level keys the plan sets, e.g. `storageClassName`) win."""
        return yaml.safe_dump({**self.values, **(overrides or {})}, sort_keys=False)


@dataclass(frozen=True)
class Timeouts:
    crds: int
    snapshot_controller: int
    kubeblocks: int
    addon: int
    cluster: int
    smoke: int


@dataclass(frozen=True)
class PreviewQuota:
    """One ResourceQuota per preview namespace: what its pods may request together."""

    cpu: float
    memory_gi: float
    storage_gi: float
    pods: int


@dataclass(frozen=True)
class ContainerDefaults:
    """A preview namespace's LimitRange: requests and limits of containers that declare none."""

    request_cpu: float
    request_memory_gi: float
    limit_cpu: float
    limit_memory_gi: float


@dataclass(frozen=True)
class PreviewSettings:
    """Pull-request previews on a shared cluster (`preview`, `teardown`, `sweep`; ignored by other commands)."""

    open_idle_hours: float
    """An open pull request's preview without a deploy for this long is removed by the sweep."""
    closed_idle_hours: float
    """A closed or merged pull request's preview is removed this long after its last deploy (0: at once)."""
    max_concurrent: int
    quota: PreviewQuota
    container_defaults: ContainerDefaults


DEFAULT_PREVIEW = PreviewSettings(
    open_idle_hours=168,
    closed_idle_hours=0,
    max_concurrent=10,
    quota=PreviewQuota(cpu=8, memory_gi=16, storage_gi=200, pods=50),
    container_defaults=ContainerDefaults(request_cpu=0.05, request_memory_gi=0.0625, limit_cpu=1, limit_memory_gi=1),
)
"""For Configs built in code (tests); values/pipeline.yaml always sets every key."""


@dataclass(frozen=True)
class BackupRepo:
    name: str
    create: bool
    """True: the stage creates it on KubeBlocks' `pvc` StorageProvider; False: an existing BackupRepo of that name."""
    storage_class: str
    """The StorageClass of the `pvc` repo's volume; "" the cluster's default."""
    capacity_gi: int


@dataclass(frozen=True)
class BackupSettings:
    """The backup stage: per database with a method, markers written, a Backup taken, a new Cluster restored from
    it, the markers read back from that cluster, then the restored cluster and the backup deleted."""

    enabled: bool
    methods: Mapping[str, str]
    """Database key -> a method of its addon's BackupPolicyTemplate, or `none`."""
    storage_class: str
    """On an existing cluster: the StorageClass the backed-up databases' volumes go on (a CSI driver that snapshots)."""
    snapshot_class: str
    """On an existing cluster: that driver's VolumeSnapshotClass."""
    repo: BackupRepo
    csi_driver_timeout: int
    backup_timeout: int
    restore_timeout: int

    def method(self, key: str) -> str:
        return self.methods.get(key, backupcatalog.NONE)


DEFAULT_BACKUP = BackupSettings(
    enabled=False,
    methods={"postgresql": "volume-snapshot", "redis": "volume-snapshot", "qdrant": "datafile"},
    storage_class="csi-hostpath-sc",
    snapshot_class="csi-hostpath-snapclass",
    repo=BackupRepo(name="dbstack-backups", create=True, storage_class="", capacity_gi=5),
    csi_driver_timeout=300,
    backup_timeout=900,
    restore_timeout=900,
)
"""For Configs built in code (tests); values/pipeline.yaml always sets every key."""


@dataclass(frozen=True)
class Config:
    values_dir: Path
    profile: str | None
    namespace: str
    kubeblocks_version: str
    kubeblocks_namespace: str
    helm_repo: str
    registry: str
    reuse_installed: str
    """`pinned` (an installed KubeBlocks or addon at another version fails its step) or `any`."""
    snapshotter_version: str
    install_snapshot_controller: bool
    images: Mapping[str, str]
    node_cpu: float
    node_memory_gi: float
    timeouts: Timeouts
    databases: tuple[DatabaseConfig, ...]
    preview: PreviewSettings = DEFAULT_PREVIEW
    backup: BackupSettings = DEFAULT_BACKUP
    smoke_require_ik: bool = True
    """The smoke suite fails, instead of skipping, when Elasticsearch lacks the IK analysis plugin."""
    files: tuple[Path, ...] = field(default=())
    """The YAML files read, in layering order (command-line overrides are in `overrides`)."""
    settings_sources: Mapping[str, Source] = field(default_factory=dict)
    overrides: tuple[str, ...] = field(default=())

    def where(self, key: str) -> Source:
        """The file and line that set a pipeline setting (after profiles and overrides)."""
        return self.settings_sources.get(key) or Source(self.values_dir / SETTINGS_FILE, 1)

    @property
    def enabled(self) -> tuple[DatabaseConfig, ...]:
        return tuple(d for d in self.databases if d.enabled)

    def database(self, key: str) -> DatabaseConfig:
        for d in self.databases:
            if d.key == key:
                return d
        raise KeyError(key)


def profile_names(values_dir: Path) -> list[str]:
    root = values_dir / PROFILES_DIR
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def load_config(
    values_dir: Path,
    profile: str | None = None,
    overrides: Sequence[str] = (),
    *,
    settings_fallback: Path | None = None,
) -> Config:
    """Read and check everything under `values_dir`; raise InvalidInput with every problem found.

    `settings_fallback`: another pipeline.yaml whose settings fill in those `values_dir`'s lacks (an upgrade's base
    values, older than the change that added a setting)."""
    if not values_dir.is_dir():
        what = "is not a folder" if values_dir.exists() else "does not exist"
        raise InvalidInput([Problem(values_dir, 1, "-", f"values folder {what}")])
    try:
        return _load_config(values_dir, profile, overrides, settings_fallback)
    except OSError as exc:  # A folder that cannot be listed; files themselves are read by load_yaml, never raising.
        where = Path(exc.filename) if exc.filename else values_dir
        raise InvalidInput([Problem(where, 1, "-", f"cannot read: {exc.strerror or exc}")]) from None


def _load_config(
    values_dir: Path, profile: str | None, overrides: Sequence[str], settings_fallback: Path | None
) -> Config:
    problems: list[Problem] = []
    profile_dir: Path | None = None
    if profile:
        known = profile_names(values_dir)
        profile_dir = values_dir / PROFILES_DIR / profile
        # Only a folder directly under profiles/: `--profile .` or `../x` must not quietly layer something else.
        if profile not in known:
            raise InvalidInput(
                [
                    Problem(
                        profile_dir, 1, "profile", f"no profile named {profile!r}", ", ".join(known) or "none defined"
                    )
                ]
            )
    problems.extend(unknown_files(values_dir))
    if profile_dir is not None:
        problems.extend(unknown_files(profile_dir))

    settings = Layers()
    if settings_fallback is not None:
        _layer(settings, settings_fallback, None, problems, required=True)
    _layer(settings, values_dir / SETTINGS_FILE, profile_dir, problems, required=True)
    settings_files = tuple(settings.files)
    for text in overrides:
        try:
            settings.add(parse_override(text))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    # A missing or unparsable pipeline.yaml is reported already; listing every key as missing would be noise.
    settings_ok = values_dir / SETTINGS_FILE in settings_files
    if settings_ok:
        before = len(problems)
        check_rules(settings, SETTINGS_RULES, problems, require_all=True, unknown_means=PIPELINE_IGNORES)
        settings_ok = len(problems) == before
    # Broken settings must not hide the problems of the database files: those are checked either way, and only
    # the checks that need the settings (enabled, release names) wait for them to be right.
    s = settings.data
    if settings_ok:
        _check_settings(settings, problems)
    databases = []
    values_layers: dict[str, Layers] = {}
    for db in DATABASES.values():
        entry: Mapping[str, Any] | None = s["databases"][db.key] if settings_ok else None
        layers = values_layers[db.key] = Layers()
        base = values_dir / f"{db.key}.yaml"
        in_profile = profile_dir is not None and (profile_dir / base.name).exists()
        if not base.exists():
            if entry is not None and entry["enabled"]:
                # A profile only overrides: alone it would deploy the chart's defaults, not ApeRAG's values.
                only = f" (the profile's {base.name} only overrides it)" if in_profile else ""
                problems.append(
                    settings.problem(
                        f"databases.{db.key}.enabled",
                        f"database is enabled but its values file {base} is missing{only}",
                        f"create {base.name}, or set enabled: false",
                    )
                )
            if not in_profile:
                continue
        _layer(layers, base, profile_dir, problems, required=False)
        _check_database_values(db, layers, problems, str(entry["chartVersion"]) if entry is not None else None)
        if entry is not None:
            databases.append(
                DatabaseConfig(
                    db=db,
                    enabled=bool(entry["enabled"]),
                    release=str(entry["release"]),
                    chart_version=str(entry["chartVersion"]),
                    values=layers.data,
                    values_files=tuple(layers.files),
                )
            )
    if not settings_ok:
        raise InvalidInput(problems)
    _check_releases(settings, problems)
    _check_backup(settings, databases, values_layers, problems)
    if problems:
        raise InvalidInput(problems)
    return Config(
        values_dir=values_dir,
        profile=profile,
        namespace=s["namespace"],
        kubeblocks_version=s["kubeblocks"]["version"],
        kubeblocks_namespace=s["kubeblocks"]["namespace"],
        helm_repo=s["kubeblocks"]["helmRepo"],
        registry=s["kubeblocks"]["registry"],
        reuse_installed=s["kubeblocks"]["reuseInstalled"],
        snapshotter_version=s["snapshotter"]["version"],
        install_snapshot_controller=bool(s["snapshotter"]["installController"]),
        images=dict(s["images"]),
        node_cpu=float(s["node"]["cpu"]),
        node_memory_gi=float(s["node"]["memoryGi"]),
        timeouts=Timeouts(
            crds=s["timeouts"]["crds"],
            snapshot_controller=s["timeouts"]["snapshotController"],
            kubeblocks=s["timeouts"]["kubeblocks"],
            addon=s["timeouts"]["addon"],
            cluster=s["timeouts"]["cluster"],
            smoke=s["timeouts"]["smoke"],
        ),
        databases=tuple(databases),
        preview=_preview_settings(s["preview"]),
        backup=_backup_settings(s["backup"]),
        smoke_require_ik=s["smoke"]["requireIkPlugin"],
        files=settings_files + tuple(f for d in databases for f in d.values_files),
        settings_sources=dict(settings.sources),
        overrides=tuple(overrides),
    )


def _preview_settings(p: Mapping[str, Any]) -> PreviewSettings:
    quota, defaults = p["quota"], p["containerDefaults"]
    return PreviewSettings(
        open_idle_hours=float(p["openIdleHours"]),
        closed_idle_hours=float(p["closedIdleHours"]),
        max_concurrent=int(p["maxConcurrent"]),
        quota=PreviewQuota(
            cpu=float(quota["cpu"]),
            memory_gi=float(quota["memoryGi"]),
            storage_gi=float(quota["storageGi"]),
            pods=int(quota["pods"]),
        ),
        container_defaults=ContainerDefaults(
            request_cpu=float(defaults["requestCpu"]),
            request_memory_gi=float(defaults["requestMemoryGi"]),
            limit_cpu=float(defaults["limitCpu"]),
            limit_memory_gi=float(defaults["limitMemoryGi"]),
        ),
    )


def _backup_settings(b: Mapping[str, Any]) -> BackupSettings:
    repo, timeouts = b["repo"], b["timeouts"]
    return BackupSettings(
        enabled=bool(b["enabled"]),
        methods={key: str(value) for key, value in b["methods"].items()},
        storage_class=b["storageClass"],
        snapshot_class=b["snapshotClass"],
        repo=BackupRepo(
            name=repo["name"],
            create=bool(repo["create"]),
            storage_class=repo["storageClass"],
            capacity_gi=int(repo["capacityGi"]),
        ),
        csi_driver_timeout=timeouts["csiDriver"],
        backup_timeout=timeouts["backup"],
        restore_timeout=timeouts["restore"],
    )


VALUES_SUFFIXES = (".yaml", ".yml")


def unknown_files(folder: Path) -> list[Problem]:
    """YAML files the loader would never read (a misspelt database, `.yml`): silently ignored otherwise."""
    expected = [SETTINGS_FILE, *(f"{key}.yaml" for key in DATABASES)]
    problems = []
    for path in sorted(folder.iterdir()):
        if path.suffix in VALUES_SUFFIXES and path.name not in expected:
            hint = did_you_mean(path.name, expected)
            problems.append(Problem(path, 1, "-", f"unknown values file, never read{hint}", ", ".join(expected)))
    return problems


def _layer(layers: Layers, base: Path, profile_dir: Path | None, problems: list[Problem], *, required: bool) -> None:
    # Links may point anywhere inside the values folder (a profile may reuse a base file), never out of it.
    if base.exists():
        doc = load_yaml(base, problems, within=base.parent)
        if doc:
            layers.add(doc)
    elif required:
        problems.append(Problem(base, 1, "-", "file is missing"))
    if profile_dir is not None and (profile_dir / base.name).exists():
        doc = load_yaml(profile_dir / base.name, problems, within=base.parent)
        if doc:
            layers.add(doc)


# --- rule checking ---------------------------------------------------------------------------------------------

_KIND_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "quantity": "a number",
    "boolean": "true or false",
    "mapping": "a mapping",
}


HELM_IGNORES = "Helm would silently ignore it"
PIPELINE_IGNORES = "the pipeline would never read it"


def check_rules(
    layers: Layers,
    rules: Mapping[str, Rule],
    problems: list[Problem],
    *,
    require_all: bool,
    unknown_means: str = HELM_IGNORES,
    dead: Mapping[str, str] | None = None,
    chart: str = "",
) -> None:
    """Check `layers` against `rules`; `unknown_means` says, in the message, what an unknown key would cost. A key
    listed in `dead` (a chart's key its templates never read) gets its own line saying what `chart` does instead."""
    dead_keys = _DeadKeys(dead or {}, chart)
    _check_mapping(layers, layers.data, rules, "", problems, require_all, unknown_means, dead_keys)


@dataclass(frozen=True)
class _DeadKeys:
    reasons: Mapping[str, str]
    chart: str

    def problem(self, layers: Layers, path: str) -> Problem | None:
        reason = self.reasons.get(path)
        if reason is None:
            return None
        return layers.problem(path, f"the {self.chart} {RULES_CHART_VERSION} chart {reason}")


def _check_mapping(
    layers: Layers,
    data: Mapping[str, Any],
    rules: Mapping[str, Rule],
    prefix: str,
    problems: list[Problem],
    require_all: bool,
    unknown_means: str,
    dead: _DeadKeys,
) -> None:
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        rule = rules.get(key)
        if rule is None:
            dead_key = dead.problem(layers, path)
            if dead_key is not None:
                problems.append(dead_key)
                continue
            hint = did_you_mean(key, list(rules))
            problems.append(layers.problem(path, f"unknown key{hint} ({unknown_means})", ", ".join(sorted(rules))))
            continue
        _check_value(layers, value, rule, path, problems, require_all, unknown_means, dead)
    if require_all:
        for key in rules:
            if key not in data:
                where = prefix or "-"
                problems.append(layers.problem(where, f"missing required key {key!r}"))


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`; did you mean 'x'?` for the closest choice, or "" when none is close."""
    import difflib  # only on the error path: valid input never pays for it

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_value(
    layers: Layers,
    value: Any,
    rule: Rule,
    path: str,
    problems: list[Problem],
    require_all: bool,
    unknown_means: str,
    dead: _DeadKeys,
) -> None:
    if value is None:
        if not rule.nullable:
            problems.append(layers.problem(path, "has no value", _allowed(rule)))
        return
    kind_ok = any(_is_kind(value, kind) for kind in rule.kinds)
    if not kind_ok:
        got = type(value).__name__
        shown = {"dict": "mapping", "list": "list", "str": "string", "bool": "boolean"}.get(got, got)
        # `version: 8.8` is a float to YAML; the chart needs the string "8.8".
        hint = "; quote it" if rule.kinds == ("string",) and isinstance(value, (int, float)) else ""
        problems.append(
            layers.problem(path, f"must be {_kinds(rule)}, got {shown} {_show(value)}{hint}", _allowed(rule))
        )
        return
    if isinstance(value, dict):
        if rule.children:
            _check_mapping(layers, value, rule.children, path, problems, require_all, unknown_means, dead)
        return
    if rule.enum and value not in rule.enum:
        problems.append(layers.problem(path, f"{_show(value)} is not one of the chart's choices", _allowed(rule)))
        return
    if rule.written_unquoted and isinstance(value, str) and (becomes := _read_bare(value)) is not None:
        problems.append(
            layers.problem(
                path,
                f"{_show(value)} would reach the cluster as {becomes}: the chart writes it unquoted",
                "a string that YAML 1.1 does not read as a boolean, number or null",
            )
        )
        return
    number = _as_number(value)
    if number is None or isinstance(value, bool):
        return
    if rule.minimum is not None and number < rule.minimum:
        problems.append(layers.problem(path, f"{_show(value)} is below the minimum", _allowed(rule)))
    elif rule.maximum is not None and number > rule.maximum:
        problems.append(layers.problem(path, f"{_show(value)} is above the maximum", _allowed(rule)))
    elif rule.multiple_of and not _is_multiple(number, rule.multiple_of):
        problems.append(layers.problem(path, f"{_show(value)} is not a multiple of {rule.multiple_of}", _allowed(rule)))


_YAML11_BOOLEANS = {"y", "yes", "n", "no", "true", "false", "on", "off"}
"""Kubernetes reads manifests with go-yaml v2, which takes these (in any of their three casings) as booleans."""


def _read_bare(text: str) -> str | None:
    """What a bare scalar other than a string becomes, or None when it stays the string it was."""
    if text.lower() in _YAML11_BOOLEANS and text in (text.lower(), text.upper(), text.capitalize()):
        return "a boolean"
    if text == "":
        return None
    try:
        read = yaml.safe_load(text)
    except yaml.YAMLError:
        return "text YAML cannot read"
    if read is None:
        return "null"
    names = {"int": "a number", "float": "a number", "bool": "a boolean", "dict": "a mapping", "list": "a list"}
    return None if isinstance(read, str) else names.get(type(read).__name__, f"a {type(read).__name__}")


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float)) and math.isfinite(value)
    if kind == "quantity":
        return _as_number(value) is not None
    if kind == "mapping":
        return isinstance(value, dict)
    return False


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and DECIMAL.fullmatch(value):
        return float(value)
    return None


def _is_multiple(number: float, step: float) -> bool:
    ratio = number / step
    return abs(ratio - round(ratio)) < 1e-9


def _kinds(rule: Rule) -> str:
    return " or ".join(dict.fromkeys(_KIND_NAMES[k] for k in rule.kinds))


def _allowed(rule: Rule) -> str:
    if rule.enum:
        return ", ".join(str(v) for v in rule.enum)
    parts = [_kinds(rule)]
    if rule.minimum is not None and rule.maximum is not None:
        parts.append(f"{_fmt(rule.minimum)} to {_fmt(rule.maximum)}")
    elif rule.minimum is not None:
        parts.append(f"at least {_fmt(rule.minimum)}")
    elif rule.maximum is not None:
        parts.append(f"at most {_fmt(rule.maximum)}")
    if rule.multiple_of:
        parts.append(f"in steps of {_fmt(rule.multiple_of)}")
    return " ".join(parts[:1]) + (" " + ", ".join(parts[1:]) if len(parts) > 1 else "")


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- cross-field checks ----------------------------------------------------------------------------------------


def _check_settings(settings: Layers, problems: list[Problem]) -> None:
    s = settings.data
    for key in ("namespace", "kubeblocks.namespace"):
        value = s["namespace"] if key == "namespace" else s["kubeblocks"]["namespace"]
        why = naming.namespace_problem(value)
        if why:
            problems.append(settings.problem(key, f"{value!r} {why}", "lowercase RFC 1123 label, e.g. default"))
    if not CHART_VERSION.fullmatch(s["kubeblocks"]["version"]):
        problems.append(settings.problem("kubeblocks.version", "must be a chart version without 'v'", "e.g. 1.0.1"))
    for key, entry in s["databases"].items():
        if not CHART_VERSION.fullmatch(entry["chartVersion"]):
            problems.append(
                settings.problem(f"databases.{key}.chartVersion", "must be a chart version without 'v'", "e.g. 1.0.1")
            )
    if not SNAPSHOTTER_VERSION.fullmatch(s["snapshotter"]["version"]):
        problems.append(settings.problem("snapshotter.version", "must be a release tag", "e.g. v8.2.0"))
    if not s["kubeblocks"]["helmRepo"].startswith(("https://", "http://", "oci://")):
        problems.append(settings.problem("kubeblocks.helmRepo", "must be a URL", "https://..., oci://..."))
    defaults = s["preview"]["containerDefaults"]
    for resource, unit in (("Cpu", "cores"), ("MemoryGi", "Gi")):
        request, limit = defaults[f"request{resource}"], defaults[f"limit{resource}"]
        if request > limit:
            problems.append(
                settings.problem(
                    f"preview.containerDefaults.request{resource}",
                    f"{_fmt(request)} {unit} is above limit{resource} {_fmt(limit)}",
                    f"at most {_fmt(limit)}",
                )
            )
    for name, image in s["images"].items():
        _, at, digest = image.partition("@")
        if at and not IMAGE_DIGEST.fullmatch(digest):
            problems.append(
                settings.problem(
                    f"images.{name}",
                    f"{image!r} has a malformed digest {digest!r}",
                    "sha256: and 64 lowercase hex digits, e.g. name:tag@sha256:<digest>",
                )
            )
            continue
        match = IMAGE_REFERENCE.fullmatch(image)
        pinned = match is not None and (match["digest"] or (match["tag"] and match["tag"] != "latest"))
        if not pinned:
            problems.append(
                settings.problem(
                    f"images.{name}", f"{image!r} is not a pinned image", "name:tag (not latest) or @sha256"
                )
            )


def _check_releases(settings: Layers, problems: list[Problem]) -> None:
    seen: dict[str, str] = {}
    for key, entry in settings.data["databases"].items():
        release = entry["release"]
        why = naming.release_problem(release)
        if why:
            problems.append(
                settings.problem(f"databases.{key}.release", f"{release!r} {why}", "^[a-z]([-a-z0-9]*[a-z0-9])?$, 1-16")
            )
        if release in seen:
            problems.append(
                settings.problem(f"databases.{key}.release", f"{release!r} is already the release of {seen[release]}")
            )
        seen.setdefault(release, key)


RESTORED_SUFFIX = "-r"
"""A restored cluster is named after its source: `<release>-r`."""


def _check_backup(
    settings: Layers,
    databases: Sequence[DatabaseConfig],
    values_layers: Mapping[str, Layers],
    problems: list[Problem],
) -> None:
    """Methods the addons have and the stage can run; names the cluster accepts. Checked whatever `enabled` says
    (a profile or --set turns it on), except what depends on the stage running: restored names, volume classes."""
    b = settings.data["backup"]
    for key, name in b["methods"].items():
        allowed = [m.name for m in backupcatalog.methods(key) if m.refused is None]
        if name == backupcatalog.NONE:
            continue
        found = backupcatalog.method(key, name)
        if not allowed:
            problems.append(
                settings.problem(f"backup.methods.{key}", f"{key} backups are {backupcatalog.NO_TEMPLATE}", "none")
            )
        elif found is None:
            hint = did_you_mean(name, allowed)
            problems.append(
                settings.problem(
                    f"backup.methods.{key}",
                    f"{name!r} is no backup method of the {key} 1.0.1 addon{hint}",
                    ", ".join([*allowed, backupcatalog.NONE]),
                )
            )
        elif found.refused is not None:
            problems.append(
                settings.problem(f"backup.methods.{key}", f"{name}: {found.refused}", ", ".join([*allowed, "none"]))
            )
        elif found.needs == backupcatalog.S3_REPO and b["repo"]["create"] and b["enabled"]:
            problems.append(
                settings.problem(
                    f"backup.methods.{key}",
                    f"{name} needs an S3-compatible BackupRepo reached as a tool (its script reads the repo's endpoint "
                    "and keys); the pvc repo the stage creates (backup.repo.create: true) has none",
                    "set backup.repo.name to such a repo and backup.repo.create: false, or none",
                )
            )
    for key in ("storageClass", "snapshotClass", "repo.name"):
        value = b["repo"]["name"] if key == "repo.name" else b[key]
        why = naming.object_name_problem(value)
        if why:
            problems.append(
                settings.problem(f"backup.{key}", f"{value!r} {why}", "a DNS subdomain, e.g. csi-hostpath-sc")
            )
    if b["repo"]["storageClass"]:
        why = naming.object_name_problem(b["repo"]["storageClass"])
        if why:
            problems.append(settings.problem("backup.repo.storageClass", f"{b['repo']['storageClass']!r} {why}"))
    if not b["enabled"]:
        return
    for d in databases:
        if not d.enabled or b["methods"].get(d.key, backupcatalog.NONE) == backupcatalog.NONE:
            continue
        restored = f"{d.release}{RESTORED_SUFFIX}"
        why = naming.release_problem(restored)
        if why:
            problems.append(
                settings.problem(
                    f"databases.{d.key}.release",
                    f"its restored cluster {restored!r} {why}",
                    f"a release of at most {naming.RELEASE_MAX - len(RESTORED_SUFFIX)} characters",
                )
            )
        own = d.values.get("storageClassName")
        if own and d.key in values_layers:
            problems.append(
                values_layers[d.key].problem(
                    "storageClassName",
                    f"{own!r}: the backup stage puts {d.key}'s volumes on its own class (backup.storageClass, or the "
                    "CSI hostpath driver's on k3s)",
                    f"remove it, or set backup.methods.{d.key}: none",
                )
            )


def chart_value_problems(db: Database, data: Mapping[str, Any], chart_version: str | None) -> list[Problem]:
    """Every problem validation finds in `db`'s merged chart values (for callers holding values, not files)."""
    layers = Layers()
    layers.add(YamlDocument(path=Path(f"{db.key}.yaml"), data=_copy(dict(data)), lines={}))
    problems: list[Problem] = []
    _check_database_values(db, layers, problems, chart_version)
    return problems


def _check_database_values(db: Database, layers: Layers, problems: list[Problem], chart_version: str | None) -> None:
    check_rules(layers, db.values_rules, problems, require_all=False, dead=db.dead_keys, chart=db.cluster_chart)
    _check_chart_values(db, layers, problems, chart_version)


def _check_chart_values(db: Database, layers: Layers, problems: list[Problem], chart_version: str | None) -> None:
    v = layers.data
    requests = v.get("requests")
    for resource in ("cpu", "memory"):
        # A `requests` of the wrong type is already reported by the rules.
        request = _as_number(requests.get(resource)) if isinstance(requests, dict) else None
        limit = _as_number(v.get(resource, db.chart_defaults.get(resource)))
        if request is not None and limit is not None and request > limit:
            problems.append(
                layers.problem(
                    f"requests.{resource}",
                    f"{_fmt(request)} is above {resource} {_fmt(limit)}; the chart ignores a request above the limit",
                    f"at most {_fmt(limit)}",
                )
            )
    version = v.get("version")
    if isinstance(version, str) and not SERVICE_VERSION.fullmatch(version):
        # The addon's ComponentVersion lists full versions; a partial one matches none and the Cluster never starts.
        problems.append(
            layers.problem("version", f"{version!r} is not a full service version", "major.minor.patch, e.g. 16.4.0")
        )
    elif isinstance(version, str) and chart_version is not None:
        releases = service_releases(db.key, chart_version)
        if releases is not None and version not in releases:
            problems.append(
                layers.problem(
                    "version",
                    f"{version!r} is no release of the {db.addon} {chart_version} addon's ComponentVersion; "
                    "KubeBlocks would never start the Cluster",
                    ", ".join(releases),
                )
            )
    mode = v.get("mode", db.chart_defaults.get("mode"))
    # A single-node mode renders one replica whatever the chart's default says; only a given number can contradict.
    given = v.get("replicas")
    if db.single_mode and mode == db.single_mode and type(given) is int and given != 1:
        problems.append(layers.problem("replicas", f"{mode} mode runs exactly one replica, got {given}", "1"))
    replicas = v.get("replicas", db.chart_defaults.get("replicas"))
    fewest = db.replicas_at_least.get(str(mode))
    if fewest is not None and type(replicas) is int and replicas < fewest:
        problems.append(
            layers.problem("replicas", f"{mode} mode runs at least {fewest} replicas, got {replicas}", f"{fewest} to 5")
        )
    for key, unmodelled in db.unmodelled.items():
        _check_unmodelled(db, layers, key, unmodelled, problems)


def _check_unmodelled(db: Database, layers: Layers, key: str, unmodelled: Unmodelled, problems: list[Problem]) -> None:
    """A value the chart accepts but dbstack does not model (given, or the chart's default when left out)."""
    given: Any = layers.data
    default: Any = db.chart_defaults
    for part in key.split("."):
        given = given.get(part) if isinstance(given, Mapping) else None
        default = default.get(part) if isinstance(default, Mapping) else None
    value = default if given is None else given
    reason = unmodelled.values.get(value) if isinstance(value, (str, bool)) else None
    if reason is None:
        return
    allowed = ", ".join(str(m).lower() if isinstance(m, bool) else str(m) for m in unmodelled.modelled)
    shown = _show(value) if isinstance(value, str) else str(value).lower()
    what = f"{shown} is not modelled" if given is not None else f"the chart's default {shown} is not modelled; set it"
    problems.append(layers.problem(key, f"{what}: {reason}", allowed))
