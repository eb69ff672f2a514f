"""The upgrade stage: what changes between a base deployment (usually the target branch's values/) and the change,
release by release, and the steps that apply it in place. Pure data, like the deploy plan.

Changes KubeBlocks or the charts cannot apply in place are refused before anything runs, each with its reason
(`upgrade_problems`, raised by `build_upgrade_plan` as InvalidInput):

- the Cluster's topology (Redis standalone <-> replication): the v1 Cluster CRD says `topology is immutable`
  (an `x-kubernetes-validations` rule the API server enforces), so `helm upgrade` is refused;
- a smaller volume: KubeBlocks 1.0.1 refuses it ("shrinking the volume is not supported",
  controllers/apps/component/transformer_component_workload_ops.go), and another StorageClass: a
  PersistentVolumeClaim's class never changes, so the existing volumes would stay where they are;
- a larger volume where the StorageClass cannot expand (k3s's local-path has no `allowVolumeExpansion`);
- another major database version: the addon's ComponentVersion puts it under another ComponentDefinition, and
  KubeBlocks then restarts the pods on the old data with the new major's images, running no migration; a
  downgrade, except PostgreSQL within a major; Qdrant more than one minor version up (its storage migrates one
  minor version at a time);
- another release name, namespace or KubeBlocks namespace: Helm would install a second, empty release;
- KubeBlocks to another minor line, or down; a chart version down.

The stage runs after the base is deployed: KubeBlocks (CRDs first) and the addons whose versions changed, then
`helm upgrade` of every cluster release whose chart version or values changed, each waited on until its Cluster
runs the new spec. Unchanged releases are left alone; after a KubeBlocks upgrade their Clusters are only checked.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from dbstack.config.load import Config, DatabaseConfig, Source
from dbstack.config.problems import InvalidInput, Problem
from dbstack.config.topology import Volume, cluster_topology, volumes
from dbstack.config.yamlfile import load_yaml
from dbstack.plan.build import build_plan
from dbstack.plan.model import Endpoint, Markers, Plan, Step, StepKind

PREFIX = "upgrade:"
"""Every step of the upgrade stage has the id of the deploy step it repeats, after this prefix (the reports tell the
phases apart by it: run/results.py UPGRADE_STEP_PREFIX)."""
CHECK = "check:"
"""`upgrade:check:<database>`: a Cluster left unchanged, checked after KubeBlocks was upgraded under it."""
STAGE = "upgrade"
"""The `stage` of the marker steps: they report on the upgrade, and leave each database's outcome its own."""
MARKER_PHASES = {"write": "markers-write:", "verify": "markers-verify:", "clean": "markers-clean:"}
"""`upgrade:markers-<phase>:<database>`: the smoke suite's marker check, before and after the upgrade."""
MARKER_SETUP_S = 240
"""A marker step's time beyond the suite's own limit (`timeouts.smoke`): reaching the database (its forward and
account) and installing the suite's dependencies (ci/pipeline.py gives pytest the rest)."""
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")
LOCAL_PATH_EXPANSION = (
    "k3s's local-path StorageClass has no allowVolumeExpansion (k3s manifests/local-storage.yaml), so the API "
    "server refuses to grow the volumes"
)
CRD_TOPOLOGY_RULE = "topology is immutable"
"""The message of the v1 Cluster CRD's x-kubernetes-validations rule on spec.topology (`self == oldSelf`)."""
KUBEBLOCKS_SHRINK = "shrinking the volume is not supported"
"""KubeBlocks 1.0.1's words when a volume claim template asks for less (transformer_component_workload_ops.go)."""


class Action(StrEnum):
    UPGRADE = "upgrade"
    UNCHANGED = "unchanged"
    INSTALL = "install"
    """Enabled by the change: installed as a deploy would."""
    LEFT = "left"
    """Disabled by the change: left as it is (an upgrade never deletes data) and not tested."""


@dataclass(frozen=True)
class ReleaseChange:
    id: str
    """The deploy plan's step id (`kubeblocks`, `addon:redis`, `cluster:redis`, `snapshot-crds`)."""
    name: str
    """The Helm release, or the manifests (`snapshot CRDs v8.2.0`)."""
    database: str | None
    action: Action
    before: str | None
    after: str | None
    diff: tuple[str, ...]
    """What Helm (or kubectl) receives differently, one line each: `~ key: old -> new`, `+ key: new`,
    `- key: old`."""


@dataclass(frozen=True)
class UpgradePlan:
    base_values: str
    """Where the base values came from, as given."""
    base: Plan
    """The deployment of the base, run first."""
    target: Plan
    """The change's whole deployment (what a fresh deploy of it would run): its versions and endpoints."""
    releases: tuple[ReleaseChange, ...]
    stage: Plan
    """The upgrade stage's steps, run once the base is deployed (and its markers written)."""
    cautions: tuple[str, ...]
    """What the change needs that only the cluster can tell (a StorageClass that can expand volumes)."""
    config: Config = field(compare=False, repr=False)
    """The change's settings: the run's images, timeouts and smoke options are the change's."""

    @property
    def changed(self) -> bool:
        return any(r.action is not Action.UNCHANGED for r in self.releases)

    def to_json(self) -> dict[str, Any]:
        stage = self.stage.to_json()
        return {
            "schemaVersion": stage["schemaVersion"],
            "kind": "upgrade",
            "baseValues": self.base_values,
            "namespace": self.stage.namespace,
            "profile": self.stage.profile,
            "versions": self.target.versions,
            "baseVersions": self.base.versions,
            "releases": [
                {
                    "id": r.id,
                    "name": r.name,
                    "database": r.database,
                    "action": r.action.value,
                    "before": r.before,
                    "after": r.after,
                    "diff": list(r.diff),
                }
                for r in self.releases
            ],
            "cautions": list(self.cautions),
            "base": self.base.to_json(),
            "steps": stage["steps"],
            "endpoints": stage["endpoints"],
        }


@dataclass(frozen=True)
class MarkerOptions:
    """Whether the stage proves the data survives with marker steps (only a run with the smoke suite can run them),
    and whether it removes the markers once read back (on a cluster that outlives the run)."""

    write_and_verify: bool = True
    clean: bool = False


WITH_MARKERS = MarkerOptions()
NO_MARKERS = MarkerOptions(write_and_verify=False)
"""For runs without the smoke suite (the host CLI, the benchmark): nothing proves the data survived."""


def build_upgrade_plan(
    base: Config,
    new: Config,
    *,
    base_values: str,
    volume_expansion: bool | None = None,
    markers: MarkerOptions = WITH_MARKERS,
) -> UpgradePlan:
    """The upgrade from `base` to `new` (both loaded with the same profile and overrides). `volume_expansion`:
    whether the cluster's StorageClass can grow volumes (False on k3s), None when it is not known here (a caution
    then says what a larger volume needs). Raises InvalidInput with every change that cannot be applied in place."""
    problems, cautions = upgrade_problems(base, new, volume_expansion)
    problems += _backup_problems(new)
    if problems:
        raise InvalidInput(problems)
    base_plan, target = build_plan(base), build_plan(new)
    releases = tuple(_release_changes(base, new, base_plan, target))
    stage = _stage(target, releases)
    if markers.write_and_verify:
        stage = _with_markers(stage, base_plan, target, releases, new.timeouts.smoke + MARKER_SETUP_S, markers.clean)
    return UpgradePlan(
        base_values=base_values,
        base=base_plan,
        target=target,
        releases=releases,
        stage=stage,
        cautions=tuple(cautions),
        config=new,
    )


def _backup_problems(new: Config) -> list[Problem]:
    """An upgrade test runs no backup stage (plan/backup.py): its steps are no releases to upgrade."""
    if not new.backup.enabled:
        return []
    where = new.where("backup.enabled")
    return [
        Problem(
            where.file,
            where.line,
            "backup.enabled",
            "an upgrade test runs no backup stage",
            "false here; `dagger call deploy-and-test --profile full` runs it",
        )
    ]


# --- what changes ------------------------------------------------------------------------------------------------


def _release_changes(base: Config, new: Config, base_plan: Plan, target: Plan) -> list[ReleaseChange]:
    before = {s.id: s for s in base_plan.steps}
    changes = []
    for step in target.steps:
        old = before.pop(step.id, None)
        name, after = _describe(new, step)
        if old is None:
            changes.append(ReleaseChange(step.id, name, step.database, Action.INSTALL, None, after, ()))
            continue
        _, was = _describe(base, old)
        action = Action.UNCHANGED if _installs(old) == _installs(step) else Action.UPGRADE
        diff = _diff(base, new, step) if action is Action.UPGRADE else ()
        changes.append(ReleaseChange(step.id, name, step.database, action, was, after, diff))
    for old in before.values():
        name, was = _describe(base, old)
        changes.append(ReleaseChange(old.id, name, old.database, Action.LEFT, was, None, ()))
    return changes


def _installs(step: Step) -> tuple[Any, ...]:
    """What a step installs, for comparison: its commands without Helm's time limit or the repository's URL (the
    same chart at the same version is the same release wherever it is fetched from), values parsed."""
    out: list[Any] = []
    for command in step.commands:
        argv = [a for a in command.argv if not a.startswith("--timeout=")]
        if "--repo" in argv:
            at = argv.index("--repo")
            del argv[at : at + 2]
        values = json.dumps(yaml.safe_load(command.stdin), sort_keys=True) if command.stdin is not None else None
        out.append((tuple(argv), values))
    return tuple(out)


def _describe(config: Config, step: Step) -> tuple[str, str]:
    """What the step installs (its name) and at which version, in words."""
    if step.kind is StepKind.CLUSTER and step.database:
        d = config.database(step.database)
        return d.release, f"chart {d.chart_version}, {d.db.title} {d.version}"
    if step.kind is StepKind.ADDON and step.database:
        d = config.database(step.database)
        return d.db.addon_release, d.chart_version
    if step.kind is StepKind.KUBEBLOCKS:
        return "kubeblocks", config.kubeblocks_version
    if step.kind is StepKind.KUBEBLOCKS_CRDS:
        return "KubeBlocks CRDs", f"v{config.kubeblocks_version}"
    if step.kind is StepKind.SNAPSHOT_CRDS:
        return "VolumeSnapshot CRDs", config.snapshotter_version
    return "snapshot controller", config.snapshotter_version


def _diff(base: Config, new: Config, step: Step) -> tuple[str, ...]:
    if step.kind is StepKind.CLUSTER and step.database:
        old, now = base.database(step.database), new.database(step.database)
        lines = []
        if old.chart_version != now.chart_version:
            lines.append(f"~ chart: {old.db.cluster_chart} {old.chart_version} -> {now.chart_version}")
        return (*lines, *values_diff(old.values, now.values))
    if step.kind is StepKind.ADDON and step.database:
        old, now = base.database(step.database), new.database(step.database)
        return (f"~ chart: {old.db.addon} {old.chart_version} -> {now.chart_version}",)
    if step.kind is StepKind.KUBEBLOCKS:
        lines = []
        if base.kubeblocks_version != new.kubeblocks_version:
            lines.append(f"~ chart: kubeblocks {base.kubeblocks_version} -> {new.kubeblocks_version}")
        return (*lines, *values_diff(_sets(base, step.id), _sets(new, step.id)))
    if step.kind is StepKind.KUBEBLOCKS_CRDS:
        return (f"~ version: v{base.kubeblocks_version} -> v{new.kubeblocks_version}",)
    return (f"~ version: {base.snapshotter_version} -> {new.snapshotter_version}",)


def _sets(config: Config, step_id: str) -> dict[str, Any]:
    """The `--set key=value` pairs of the KubeBlocks install, as nested values."""
    argv = build_plan(config).step(step_id).commands[0].argv
    out: dict[str, Any] = {}
    for flag, value in itertools.pairwise(argv):
        if flag == "--set":
            key, _, text = value.partition("=")
            out[key] = text
    return out


def values_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Leaf by leaf, in the new values' order, then what only the old values had: `~ a.b: 1 -> 2`, `+ c: x`,
    `- d: y`."""
    before, after = dict(_leaves(old)), dict(_leaves(new))
    lines = []
    for key, value in after.items():
        if key not in before:
            lines.append(f"+ {key}: {_shown(value)}")
        elif before[key] != value:
            lines.append(f"~ {key}: {_shown(before[key])} -> {_shown(value)}")
    lines += [f"- {key}: {_shown(value)}" for key, value in before.items() if key not in after]
    return tuple(lines)


def _leaves(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.extend(_leaves(value, path))
        else:
            out.append((path, value))
    return out


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (str, bool)) or value is None else str(value)


# --- the stage ---------------------------------------------------------------------------------------------------


def _stage(target: Plan, releases: Sequence[ReleaseChange]) -> Plan:
    actions = {r.id: r for r in releases}
    steps: list[Step] = []
    ids: set[str] = set()

    def needs(step: Step) -> tuple[str, ...]:
        """The stage's steps the deploy step's needs stand for: the nearest ones the stage repeats."""
        found: list[str] = []
        for need in step.needs:
            found += [PREFIX + need] if PREFIX + need in ids else list(needs(target.step(need)))
        return tuple(dict.fromkeys(found))

    for step in target.steps:
        change = actions[step.id]
        if change.action is Action.UPGRADE:
            # No skip probe: what it would find is the base's release, which is what this step upgrades.
            steps.append(
                replace(step, id=PREFIX + step.id, title=_upgrade_title(step, change), needs=needs(step), skip_when=())
            )
        elif change.action is Action.INSTALL:
            steps.append(replace(step, id=PREFIX + step.id, needs=needs(step)))
        else:
            continue
        ids.add(steps[-1].id)
    if PREFIX + "kubeblocks" in ids:
        for step in target.steps:
            if step.kind is StepKind.CLUSTER and actions[step.id].action is Action.UNCHANGED:
                steps.append(_check_step(step, needs(step)))
    return replace(target, steps=tuple(steps))


_KEPT = (Action.UPGRADE, Action.UNCHANGED)


def _with_markers(
    stage: Plan, base: Plan, target: Plan, releases: Sequence[ReleaseChange], timeout_s: int, clean: bool
) -> Plan:
    """The stage between marker steps: each database the base deployed and the change keeps gets its markers
    written first (through the base's endpoint), before any upgrade starts; once its own Cluster has been upgraded
    (or checked, or left alone) they are read back through the change's endpoint, and, with `clean`, removed."""
    kept = [r.database for r in releases if r.id.startswith("cluster:") and r.database and r.action in _KEPT]
    if not kept or not stage.steps:
        return stage  # Nothing is upgraded: there is nothing for markers to prove.
    before = {e.database: e for e in base.endpoints}
    after = {e.database: e for e in target.endpoints}
    writes = [_marker_step("write", before[key], (), timeout_s) for key in kept]
    write_ids = tuple(s.id for s in writes)
    ids = {s.id for s in stage.steps}
    upgrades = [replace(s, needs=s.needs or write_ids) for s in stage.steps]
    finals: list[Step] = []
    for key in kept:
        own = [i for i in (f"{PREFIX}cluster:{key}", f"{PREFIX}{CHECK}{key}") if i in ids]
        needs = tuple(own) or _roots(stage, target, key) or (f"{PREFIX}{MARKER_PHASES['write']}{key}",)
        verify = _marker_step("verify", after[key], needs, timeout_s)
        finals.append(verify)
        if clean:
            finals.append(_marker_step("clean", after[key], (verify.id,), timeout_s))
    return replace(stage, steps=(*writes, *upgrades, *finals))


def _roots(stage: Plan, target: Plan, key: str) -> tuple[str, ...]:
    """The stage's steps the database's deploy step comes after (KubeBlocks' upgrade, its addon's)."""
    ids = {s.id for s in stage.steps}
    found: list[str] = []
    pending = list(target.step(f"cluster:{key}").needs)
    while pending:
        need = pending.pop(0)
        if PREFIX + need in ids:
            found.append(PREFIX + need)
        else:
            pending += target.step(need).needs
    return tuple(dict.fromkeys(found))


def _marker_step(phase: str, endpoint: Endpoint, needs: tuple[str, ...], timeout_s: int) -> Step:
    words = {
        "write": "Write marker data into",
        "verify": "Read the marker data back from",
        "clean": "Remove the marker data from",
    }
    return Step(
        id=f"{PREFIX}{MARKER_PHASES[phase]}{endpoint.database}",
        title=f"{words[phase]} {endpoint.title} ({endpoint.release})",
        kind=StepKind.MARKERS,
        database=endpoint.database,
        needs=needs,
        commands=(),
        done_when=(),
        timeout_s=timeout_s,
        markers=Markers(phase, endpoint),
        stage=STAGE,
    )


def marker_step_id(phase: str, database: str) -> str:
    return f"{PREFIX}{MARKER_PHASES[phase]}{database}"


def _upgrade_title(step: Step, change: ReleaseChange) -> str:
    if step.kind is StepKind.CLUSTER:
        return f"{step.title.replace('Deploy ', 'Upgrade ', 1)} with the new spec"
    versions = f"{change.before} -> {change.after}"
    if step.kind is StepKind.KUBEBLOCKS:
        return f"Upgrade KubeBlocks {versions}"
    if step.kind is StepKind.ADDON:
        return f"Upgrade addon {change.name} {versions}"
    return f"Apply the {change.name} {change.after} (was {change.before})"


def _check_step(step: Step, needs: tuple[str, ...]) -> Step:
    """Its release untouched, the Cluster waited on as after a deploy: KubeBlocks' own upgrade may restart its pods
    (the kbagent sidecar comes with KubeBlocks)."""
    name = step.title.removeprefix("Deploy ").removesuffix(" and wait until Running")
    return replace(
        step,
        id=f"{PREFIX}{CHECK}{step.database}",
        title=f"Check {name} is Running after the KubeBlocks upgrade",
        needs=needs,
        commands=(),
        skip_when=(),
        retry_while=(),
    )


def is_upgrade_step(step_id: str) -> bool:
    return step_id.startswith(PREFIX)


# --- what cannot be applied in place -----------------------------------------------------------------------------


def upgrade_problems(base: Config, new: Config, volume_expansion: bool | None) -> tuple[list[Problem], list[str]]:
    """Every change from `base` to `new` KubeBlocks or the charts cannot apply in place (as problems of the new
    values, naming file, line and key), and the cautions about what only the cluster can tell."""
    problems: list[Problem] = []
    cautions: list[str] = []
    for key in ("namespace", "kubeblocks.namespace"):
        was, now = _setting(base, key), _setting(new, key)
        if was != now:
            problems.append(
                _setting_problem(
                    new,
                    key,
                    f"{was!r} -> {now!r}: the releases in {was!r} would stay and new, empty ones start in {now!r}",
                    f"keep {was}, or deploy anew",
                )
            )
    problems += _kubeblocks_problems(base, new)
    enabled_before = {d.key for d in base.enabled}
    for d in new.enabled:
        if d.key not in enabled_before:
            continue
        old = base.database(d.key)
        if old.release != d.release:
            problems.append(
                _setting_problem(
                    new,
                    f"databases.{d.key}.release",
                    f"{old.release!r} -> {d.release!r}: Helm cannot rename a release; {old.release} and its data "
                    f"would stay and an empty {d.release} start",
                    f"keep {old.release}, or deploy anew",
                )
            )
        problems += _chart_problems(old, d, new)
        problems += _topology_problems(old, d)
        problems += _version_problems(old, d)
        found, said = _volume_problems(old, d, volume_expansion)
        problems += found
        cautions += said
    return problems, cautions


def _setting(config: Config, key: str) -> str:
    return config.namespace if key == "namespace" else config.kubeblocks_namespace


def _setting_problem(config: Config, key: str, message: str, allowed: str) -> Problem:
    where = config.where(key)
    return Problem(where.file, where.line, key, message, allowed)


def version_numbers(version: str) -> tuple[int, int, int] | None:
    found = VERSION.match(version)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def _kubeblocks_problems(base: Config, new: Config) -> list[Problem]:
    was, now = version_numbers(base.kubeblocks_version), version_numbers(new.kubeblocks_version)
    if was is None or now is None or was == now:
        return []
    line = f"{was[0]}.{was[1]}.x"
    if now < was:
        why = "KubeBlocks is never downgraded in place: the newer CRDs and what they stored stay"
    elif now[:2] != was[:2]:
        why = (
            "another minor line is a migration, not an upgrade (0.9 -> 1.0 moved every API from v1alpha1 to v1); "
            f"dbstack upgrades KubeBlocks within one line, {line} here"
        )
    else:
        return []
    change = f"{base.kubeblocks_version} -> {new.kubeblocks_version}"
    allowed = f"{base.kubeblocks_version} or a later {line}"
    return [_setting_problem(new, "kubeblocks.version", f"{change}: {why}", allowed)]


def _chart_problems(old: DatabaseConfig, new_d: DatabaseConfig, new: Config) -> list[Problem]:
    was, now = version_numbers(old.chart_version), version_numbers(new_d.chart_version)
    if was is None or now is None or now >= was:
        return []
    return [
        _setting_problem(
            new,
            f"databases.{new_d.key}.chartVersion",
            f"{old.chart_version} -> {new_d.chart_version}: a chart is never downgraded in place (the newer addon's "
            "ComponentDefinitions stay, kept by helm.sh/resource-policy)",
            f"{old.chart_version} or later",
        )
    ]


def _topology_problems(old: DatabaseConfig, new_d: DatabaseConfig) -> list[Problem]:
    was = cluster_topology(old.key, old.values, old.db.chart_defaults)
    now = cluster_topology(new_d.key, new_d.values, new_d.db.chart_defaults)
    if was == now:
        return []
    return [
        _value_problem(
            new_d,
            "mode",
            f"{old.mode!r} -> {new_d.mode!r} changes the Cluster's topology ({was} -> {now}), which the API server "
            f'refuses on an existing Cluster (KubeBlocks 1.0.1 Cluster CRD: "{CRD_TOPOLOGY_RULE}")',
            f"keep {old.mode}, or deploy anew",
        )
    ]


def _version_problems(old: DatabaseConfig, new_d: DatabaseConfig) -> list[Problem]:
    was, now = version_numbers(old.version), version_numbers(new_d.version)
    if was is None or now is None or was == now:
        return []
    title = new_d.db.title
    change = f"{old.version} -> {new_d.version}"
    db = new_d.db
    if now[0] != was[0]:
        why = (
            f"another major version of {title}: the addon's ComponentVersion puts it under another "
            "ComponentDefinition, and KubeBlocks 1.0.1 restarts the pods on the old data with the new images, "
            "running no migration"
        )
        allowed = f"{was[0]}.x, or deploy the new major anew and move the data"
    elif now < was and not db.downgrades_within_major:
        why = f"{title} refuses data a newer release wrote, and KubeBlocks runs no downgrade"
        allowed = f"{old.version} or later"
    elif db.minor_versions_per_upgrade is not None and now[1] - was[1] > db.minor_versions_per_upgrade:
        why = (
            f"{title} migrates its storage one minor version at a time, so an in-place upgrade may move up "
            f"{db.minor_versions_per_upgrade} minor version"
        )
        allowed = f"{was[0]}.{was[1] + db.minor_versions_per_upgrade}.x first"
    else:
        return []
    return [_value_problem(new_d, "version", f"{change}: {why}", allowed)]


def _volume_problems(
    old: DatabaseConfig, new_d: DatabaseConfig, expansion: bool | None
) -> tuple[list[Problem], list[str]]:
    problems: list[Problem] = []
    cautions: list[str] = []
    before = {(v.component, v.name): v for v in volumes(old.key, old.values, old.db.chart_defaults)}
    for volume in volumes(new_d.key, new_d.values, new_d.db.chart_defaults):
        was = before.get((volume.component, volume.name))
        if was is None:
            continue
        prefix = "sentinel." if volume.component == "redis-sentinel" else ""
        where = f"{new_d.release}'s {volume.component} volumes"
        if was.storage_class != volume.storage_class:
            problems.append(
                _value_problem(
                    new_d,
                    f"{prefix}storageClassName",
                    f"{_class(was)} -> {_class(volume)}: a PersistentVolumeClaim's StorageClass never changes, so "
                    f"{where} would stay on {_class(was)}",
                    f"{_class(was)}, or deploy anew",
                )
            )
        if volume.size_gi < was.size_gi:
            problems.append(
                _value_problem(
                    new_d,
                    f"{prefix}storage",
                    f"{was.size_gi:g} -> {volume.size_gi:g} Gi: KubeBlocks 1.0.1 refuses to shrink {where} "
                    f'("{KUBEBLOCKS_SHRINK}")',
                    f"{was.size_gi:g} or more",
                )
            )
        elif volume.size_gi > was.size_gi:
            grow = f"{was.size_gi:g} -> {volume.size_gi:g} Gi"
            if expansion is False:
                problems.append(
                    _value_problem(
                        new_d, f"{prefix}storage", f"{grow}: {LOCAL_PATH_EXPANSION}", f"{was.size_gi:g} on k3s"
                    )
                )
            elif expansion is None:
                cautions.append(
                    f"{where} grow {grow}: KubeBlocks expands them in place only where their StorageClass has "
                    "allowVolumeExpansion (k3s's local-path has not); otherwise the upgrade of "
                    f"{new_d.release} does not finish"
                )
    return problems, cautions


def _class(volume: Volume) -> str:
    return repr(volume.storage_class) if volume.storage_class else "the default StorageClass"


def _value_problem(d: DatabaseConfig, key: str, message: str, allowed: str) -> Problem:
    where = value_source(d, key)
    return Problem(where.file, where.line, key, message, allowed)


def value_source(d: DatabaseConfig, key: str) -> Source:
    """The values file (and line) that sets `key` for the database last, after profiles; where none sets it, the
    last file read."""
    for path in reversed(d.values_files):
        doc = load_yaml(path, [])
        node: Any = doc.data if doc else None
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if doc is not None and node is not None:
            return Source(path, doc.line_of(key))
    last = d.values_files[-1] if d.values_files else Path(f"{d.key}.yaml")
    return Source(last, 1)


def load_upgrade_plan(
    base_values: Path,
    values: Path,
    profile: str | None = None,
    overrides: Sequence[str] = (),
    *,
    volume_expansion: bool | None = None,
    base_label: str | None = None,
    markers: MarkerOptions = WITH_MARKERS,
) -> UpgradePlan:
    """Both sides validated with the same profile and overrides (the base takes the settings it lacks from the
    change's pipeline.yaml: a setting the change adds), then the upgrade between them; raises InvalidInput with the
    problems of both sides, or with every change that cannot be applied in place."""
    from dbstack.config.load import SETTINGS_FILE
    from dbstack.config.validate import validate

    problems: list[Problem] = []
    configs: list[Config] = []
    fallback = values / SETTINGS_FILE
    for folder, settings_fallback in ((base_values, fallback if fallback.is_file() else None), (values, None)):
        try:
            configs.append(validate(folder, profile, overrides, settings_fallback=settings_fallback).config)
        except InvalidInput as exc:
            problems += exc.problems
    if problems:
        raise InvalidInput(problems)
    base, new = configs
    label = base_label or str(base_values)
    return build_upgrade_plan(base, new, base_values=label, volume_expansion=volume_expansion, markers=markers)
