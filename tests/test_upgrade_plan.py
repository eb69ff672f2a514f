"""The upgrade plan (`dbstack plan --base-values`): what changes per release, which steps run, and every change
KubeBlocks or the charts cannot apply in place refused before anything runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from dbstack.cli.main import main
from dbstack.config.problems import InvalidInput
from dbstack.config.validate import validate
from dbstack.plan.model import StepKind
from dbstack.plan.upgrade import (
    NO_MARKERS,
    WITH_MARKERS,
    Action,
    MarkerOptions,
    UpgradePlan,
    load_upgrade_plan,
    values_diff,
)


@pytest.fixture
def base_dir(values_dir: Path) -> Path:
    """The base: a copy of the repository's values/, as a target branch would hold them."""
    target = values_dir.parent / "base"
    shutil.copytree(values_dir, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def set_top(path: Path, key: str, value: str) -> None:
    """Set a top-level key of a values file (appended when absent)."""
    text = path.read_text()
    line = f"{key}: {value}"
    updated, count = re.subn(rf"(?m)^{re.escape(key)}:.*$", line, text)
    path.write_text(updated if count else text + line + "\n")


def upgrade(
    base: Path, new: Path, *overrides: str, expansion: bool | None = None, markers: MarkerOptions = NO_MARKERS
) -> UpgradePlan:
    """The upgrade plan; without marker steps unless asked (they have tests of their own below)."""
    return load_upgrade_plan(base, new, "ci", overrides, volume_expansion=expansion, markers=markers)


def actions(plan: UpgradePlan) -> dict[str, Action]:
    return {r.id: r.action for r in plan.releases}


def refusals(base: Path, new: Path, *overrides: str, expansion: bool | None = None) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        upgrade(base, new, *overrides, expansion=expansion)
    return [str(p) for p in caught.value.problems]


def plan_cli(base: Path, new: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", "--values", str(new), "--base-values", str(base), "--profile", "ci", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --- what changes --------------------------------------------------------------------------------------------------


def test_no_change_upgrades_nothing_and_says_so(
    base_dir: Path, values_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = upgrade(base_dir, values_dir)
    assert set(actions(plan).values()) == {Action.UNCHANGED}
    assert plan.stage.steps == () and not plan.changed and plan.cautions == ()
    code, out, _ = plan_cli(base_dir, values_dir, capsys)
    assert code == 0
    assert "nothing to upgrade: every release is unchanged" in out
    assert "helm upgrade" not in out


def test_a_resource_change_upgrades_only_that_cluster_with_the_new_values(base_dir: Path, values_dir: Path) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    plan = upgrade(base_dir, values_dir)
    changed = {k: v for k, v in actions(plan).items() if v is not Action.UNCHANGED}
    assert changed == {"cluster:redis": Action.UPGRADE}
    redis = next(r for r in plan.releases if r.id == "cluster:redis")
    assert redis.name == "redis-cluster"
    assert redis.diff == ("~ requests.cpu: 0.1 -> 0.2",)
    (step,) = plan.stage.steps
    assert step.id == "upgrade:cluster:redis" and step.kind is StepKind.CLUSTER
    # Nothing else is upgraded first, and no probe can skip it: what a probe would find is the base's release.
    assert step.needs == () and step.skip_when == ()
    (command,) = step.commands
    assert command.argv[:4] == ("helm", "upgrade", "--install", "redis-cluster")
    assert command.stdin is not None and "cpu: 0.2" in command.stdin
    assert step.watch is not None and step.watch.cluster == "redis-cluster"
    assert "Upgrade Redis (redis-cluster)" in step.title


def test_a_patch_version_bump_upgrades_the_cluster_and_pulls_the_new_images(base_dir: Path, values_dir: Path) -> None:
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    plan = upgrade(base_dir, values_dir)
    pg = next(r for r in plan.releases if r.id == "cluster:postgresql")
    assert pg.action is Action.UPGRADE
    assert (pg.before, pg.after) == ("chart 1.0.1, PostgreSQL 16.4.0", "chart 1.0.1, PostgreSQL 16.9.0")
    assert pg.diff == ('~ version: "16.4.0" -> "16.9.0"',)
    (step,) = plan.stage.steps
    assert "docker.io/apecloud/spilo:16.9" in {image.image for image in step.images}
    assert plan.target.versions["postgresql"] == "16.9.0" and plan.base.versions["postgresql"] == "16.4.0"


def test_a_kubeblocks_bump_applies_its_crds_then_the_chart_then_checks_every_cluster(
    base_dir: Path, values_dir: Path
) -> None:
    edit(base_dir / "pipeline.yaml", "version: 1.0.1\n  namespace: kb-system", "version: 1.0.0\n  namespace: kb-system")
    plan = upgrade(base_dir, values_dir)
    changed = {k: v for k, v in actions(plan).items() if v is not Action.UNCHANGED}
    assert changed == {"kubeblocks-crds": Action.UPGRADE, "kubeblocks": Action.UPGRADE}
    ids = [s.id for s in plan.stage.steps]
    assert ids[:2] == ["upgrade:kubeblocks-crds", "upgrade:kubeblocks"]
    crds, kubeblocks = plan.stage.steps[:2]
    # The CRDs exist already (the base's): without a skip probe they are applied at the new version.
    assert crds.skip_when == () and "v1.0.1/kubeblocks_crds.yaml" in crds.commands[0].argv[-1]
    assert kubeblocks.needs == ("upgrade:kubeblocks-crds",) and kubeblocks.skip_when == ()
    assert kubeblocks.commands[0].argv[kubeblocks.commands[0].argv.index("--version") + 1] == "1.0.1"
    assert kubeblocks.title == "Upgrade KubeBlocks 1.0.0 -> 1.0.1"
    # Clusters are untouched (no command) but waited on after KubeBlocks' own upgrade.
    checks = plan.stage.steps[2:]
    assert [s.id for s in checks] == [f"upgrade:check:{k}" for k in ("postgresql", "redis", "qdrant", "elasticsearch")]
    assert all(s.commands == () and s.needs == ("upgrade:kubeblocks",) and s.watch for s in checks)
    kb = next(r for r in plan.releases if r.id == "kubeblocks")
    assert kb.diff == ("~ chart: kubeblocks 1.0.0 -> 1.0.1",)


def test_an_addon_and_chart_bump_upgrades_the_addon_before_its_cluster(base_dir: Path, values_dir: Path) -> None:
    edit(
        base_dir / "pipeline.yaml",
        "release: redis-cluster\n    chartVersion: 1.0.1",
        "release: redis-cluster\n    chartVersion: 1.0.0",
    )
    plan = upgrade(base_dir, values_dir)
    assert [s.id for s in plan.stage.steps] == ["upgrade:addon:redis", "upgrade:cluster:redis"]
    addon, cluster = plan.stage.steps
    assert addon.skip_when == () and addon.title == "Upgrade addon kb-addon-redis 1.0.0 -> 1.0.1"
    assert cluster.needs == ("upgrade:addon:redis",)
    assert next(r for r in plan.releases if r.id == "cluster:redis").diff == ("~ chart: redis-cluster 1.0.0 -> 1.0.1",)


def test_a_database_the_change_enables_is_installed_and_one_it_disables_is_left(
    base_dir: Path, values_dir: Path
) -> None:
    edit(values_dir / "pipeline.yaml", "  neo4j:\n    enabled: false", "  neo4j:\n    enabled: true")
    edit(values_dir / "pipeline.yaml", "  qdrant:\n    enabled: true", "  qdrant:\n    enabled: false")
    plan = upgrade(base_dir, values_dir)
    assert actions(plan)["addon:neo4j"] is Action.INSTALL and actions(plan)["cluster:neo4j"] is Action.INSTALL
    assert actions(plan)["cluster:qdrant"] is Action.LEFT and actions(plan)["addon:qdrant"] is Action.LEFT
    install = plan.stage.steps[0]
    # A fresh install keeps its skip probe: the shared addon may be there already.
    assert install.id == "upgrade:addon:neo4j" and install.skip_when
    assert [s.id for s in plan.stage.steps] == ["upgrade:addon:neo4j", "upgrade:cluster:neo4j"]
    assert [e.database for e in plan.stage.endpoints] == ["postgresql", "redis", "elasticsearch", "neo4j"]


def test_a_repository_or_timeout_change_alone_is_no_upgrade(base_dir: Path, values_dir: Path) -> None:
    edit(
        values_dir / "pipeline.yaml",
        "helmRepo: https://apecloud.github.io/helm-charts",
        "helmRepo: https://mirror.example/charts",
    )
    edit(values_dir / "pipeline.yaml", "  cluster: 600", "  cluster: 900")
    assert set(actions(upgrade(base_dir, values_dir)).values()) == {Action.UNCHANGED}


def test_a_setting_the_change_adds_is_taken_for_the_base_too(base_dir: Path, values_dir: Path) -> None:
    # The base predates the `smoke` section: alone it is refused ("missing required key").
    text = (base_dir / "pipeline.yaml").read_text()
    (base_dir / "pipeline.yaml").write_text(re.sub(r"(?m)^smoke:\n(  .*\n)+", "", text))
    with pytest.raises(InvalidInput, match="missing required key 'smoke'"):
        validate(base_dir, "ci")
    assert not upgrade(base_dir, values_dir).changed


def test_values_diff_lists_changed_added_and_removed_leaves() -> None:
    old = {"cpu": 0.5, "extra": {"disableExporter": True}, "version": "7.2.7"}
    new = {"cpu": 1, "requests": {"cpu": 0.25}, "version": "7.2.7"}
    assert values_diff(old, new) == ("~ cpu: 0.5 -> 1", "+ requests.cpu: 0.25", "- extra.disableExporter: true")


def test_the_json_form_holds_the_releases_the_base_and_the_stage(
    base_dir: Path, values_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "storage: 1", "storage: 2")
    code, out, _ = plan_cli(base_dir, values_dir, capsys, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["kind"] == "upgrade" and data["schemaVersion"] == 1
    assert out.splitlines()[:3] == ["{", '  "schemaVersion": 1,', '  "kind": "upgrade",'], "indented two spaces"
    assert data["baseValues"] == str(base_dir)
    redis = next(r for r in data["releases"] if r["id"] == "cluster:redis")
    assert redis == {
        "id": "cluster:redis",
        "name": "redis-cluster",
        "database": "redis",
        "action": "upgrade",
        "before": "chart 1.0.1, Redis 7.2.7",
        "after": "chart 1.0.1, Redis 7.2.7",
        "diff": ["~ storage: 1 -> 2"],
    }
    assert [s["id"] for s in data["steps"] if s["kind"] != "markers"] == ["upgrade:cluster:redis"]
    verify = next(s for s in data["steps"] if s["id"] == "upgrade:markers-verify:redis")
    assert (verify["markers"]["phase"], verify["stage"]) == ("verify", "upgrade")
    assert [s["id"] for s in data["base"]["steps"]][-1] == "cluster:elasticsearch"
    assert data["cautions"] and "allowVolumeExpansion" in data["cautions"][0]


def test_the_text_form_shows_each_release_its_diff_and_the_steps_in_order(
    base_dir: Path, values_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    code, out, err = plan_cli(base_dir, values_dir, capsys)
    assert code == 0 and err == ""
    assert re.search(r"pg-cluster +upgrade: chart 1.0.1, PostgreSQL 16.4.0 -> chart 1.0.1, PostgreSQL 16.9.0", out)
    assert '~ version: "16.4.0" -> "16.9.0"' in out
    assert re.search(r"redis-cluster +unchanged", out)
    lines = out.splitlines()
    steps = [re.sub(r"^ ?\d+\. ", "", line) for line in lines if re.match(r"^ ?\d+\. ", line)]
    assert steps[0].startswith("Deploy the base: the 12 steps")
    assert steps[1:5] == [
        f"Write marker data into {title}"
        for title in (
            "PostgreSQL (pg-cluster)",
            "Redis (redis-cluster)",
            "Qdrant (qdrant-cluster)",
            "Elasticsearch (es-cluster)",
        )
    ]
    assert steps[5].startswith("Upgrade PostgreSQL (pg-cluster) and wait until Running with the new spec (after ")
    assert steps[6] == "Read the marker data back from PostgreSQL (pg-cluster) (after upgrade:cluster:postgresql)"
    assert steps[7:10] == [
        "Read the marker data back from Redis (redis-cluster) (after upgrade:markers-write:redis)",
        "Read the marker data back from Qdrant (qdrant-cluster) (after upgrade:markers-write:qdrant)",
        "Read the marker data back from Elasticsearch (es-cluster) (after upgrade:markers-write:elasticsearch)",
    ]
    assert steps[10].startswith("Run the whole smoke suite")
    assert "runs:      the smoke suite's marker check, SMOKE_MARKERS=write" in out


# --- what cannot be applied in place -------------------------------------------------------------------------------


def test_every_change_that_cannot_be_applied_in_place_is_refused_at_once_with_its_reason(
    base_dir: Path, values_dir: Path
) -> None:
    edit(values_dir / "redis.yaml", "mode: standalone", "mode: replication")
    edit(values_dir / "redis.yaml", "replicas: 1", "replicas: 2")
    edit(values_dir / "postgresql.yaml", "16.4.0", "17.5.0")
    edit(values_dir / "qdrant.yaml", "1.10.0", "1.8.4")
    set_top(values_dir / "elasticsearch.yaml", "storage", "4")
    edit(values_dir / "pipeline.yaml", "release: qdrant-cluster", "release: qdrant2")
    found = refusals(base_dir, values_dir)
    text = "\n".join(found)
    assert len(found) == 5, text
    assert re.search(r"redis\.yaml:\d+: mode: 'standalone' -> 'replication' changes the Cluster's topology", text)
    assert '"topology is immutable"' in text
    assert re.search(r"postgresql\.yaml:\d+: version: 16\.4\.0 -> 17\.5\.0: another major version of PostgreSQL", text)
    assert re.search(r"qdrant\.yaml:\d+: version: 1\.10\.0 -> 1\.8\.4: Qdrant refuses data a newer release wrote", text)
    assert re.search(r"elasticsearch\.yaml:\d+: storage: \d+ -> \d+ Gi: KubeBlocks 1\.0\.1 refuses to shrink", text)
    assert re.search(r"pipeline\.yaml:\d+: databases\.qdrant\.release: 'qdrant-cluster' -> 'qdrant2'", text)
    assert all("(allowed: " in line for line in found)


def test_the_cli_refuses_with_one_line_per_problem_exit_2_and_no_traceback(
    base_dir: Path, values_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(values_dir / "redis.yaml", "version: 7.2.7", "version: 6.2.14")
    edit(values_dir / "pipeline.yaml", "namespace: default", "namespace: other")
    code, out, err = plan_cli(base_dir, values_dir, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[-1] == "2 problems found; nothing was deployed."
    assert re.match(rf"{re.escape(str(values_dir / 'pipeline.yaml'))}:\d+: namespace: 'default' -> 'other'", lines[0])
    assert re.match(
        rf"{re.escape(str(values_dir / 'redis.yaml'))}:\d+: version: 7\.2\.7 -> 6\.2\.14: another major", lines[1]
    )
    assert "Traceback" not in err


def test_problems_of_either_side_are_reported_together(
    base_dir: Path, values_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(base_dir / "redis.yaml", "cpu: 0.5", "cpu: lots")
    edit(values_dir / "qdrant.yaml", "replicas: 1", "replicas: 0")
    code, _, err = plan_cli(base_dir, values_dir, capsys)
    assert code == 2
    assert str(base_dir / "redis.yaml") in err and str(values_dir / "qdrant.yaml") in err


@pytest.mark.parametrize(
    ("before", "after", "refused"),
    [
        ("16.4.0", "16.9.0", False),
        ("16.9.0", "16.4.0", False),  # PostgreSQL's minor releases share one storage format
        ("16.4.0", "17.5.0", True),
        ("16.4.0", "15.13.0", True),
    ],
)
def test_postgresql_versions(base_dir: Path, values_dir: Path, before: str, after: str, refused: bool) -> None:
    edit(base_dir / "postgresql.yaml", "16.4.0", before)
    edit(values_dir / "postgresql.yaml", "16.4.0", after)
    if refused:
        assert refusals(base_dir, values_dir)
    else:
        assert actions(upgrade(base_dir, values_dir))["cluster:postgresql"] is Action.UPGRADE


@pytest.mark.parametrize(
    ("key", "before", "after", "refused"),
    [
        ("qdrant", "1.8.4", "1.10.0", True),  # no 1.9 in the addon: Qdrant migrates one minor version at a time
        ("qdrant", "1.8.1", "1.8.4", False),
        ("qdrant", "1.7.3", "1.8.4", False),
        ("redis", "7.2.7", "7.4.5", False),
        ("redis", "7.4.5", "7.2.7", True),
        ("elasticsearch", "8.8.2", "8.15.5", False),
        ("elasticsearch", "8.15.5", "8.8.2", True),
        ("elasticsearch", "7.10.1", "8.8.2", True),
    ],
)
def test_version_rules_per_database(
    base_dir: Path, values_dir: Path, key: str, before: str, after: str, refused: bool
) -> None:
    set_top(base_dir / f"{key}.yaml", "version", f'"{before}"')
    set_top(values_dir / f"{key}.yaml", "version", f'"{after}"')
    if refused:
        (problem,) = refusals(base_dir, values_dir)
        assert f"version: {before} -> {after}" in problem
    else:
        assert actions(upgrade(base_dir, values_dir))[f"cluster:{key}"] is Action.UPGRADE


def test_storage_growth_is_a_caution_where_the_class_is_unknown_and_refused_on_k3s(
    base_dir: Path, values_dir: Path
) -> None:
    edit(values_dir / "profiles/ci/redis.yaml", "storage: 1", "storage: 3")
    plan = upgrade(base_dir, values_dir)
    (caution,) = plan.cautions
    assert "redis-cluster's redis volumes grow 1 -> 3 Gi" in caution and "allowVolumeExpansion" in caution
    (problem,) = refusals(base_dir, values_dir, expansion=False)
    assert "storage: 1 -> 3 Gi: k3s's local-path StorageClass has no allowVolumeExpansion" in problem
    assert upgrade(base_dir, values_dir, expansion=True).cautions == ()


def test_another_storage_class_is_refused(base_dir: Path, values_dir: Path) -> None:
    (values_dir / "profiles/ci/redis.yaml").write_text(
        (values_dir / "profiles/ci/redis.yaml").read_text() + 'storageClassName: "fast"\n'
    )
    (problem,) = refusals(base_dir, values_dir)
    assert (
        "storageClassName: the default StorageClass -> 'fast': a PersistentVolumeClaim's StorageClass never changes"
        in problem
    )


@pytest.mark.parametrize(
    ("before", "after", "words"),
    [
        ("1.0.1", "1.1.0", "another minor line is a migration"),
        ("1.0.1", "1.0.0", "KubeBlocks is never downgraded in place"),
        ("0.9.5", "1.0.1", "another minor line is a migration"),
    ],
)
def test_kubeblocks_moves_only_up_within_its_minor_line(
    base_dir: Path, values_dir: Path, before: str, after: str, words: str
) -> None:
    edit(
        base_dir / "pipeline.yaml",
        "version: 1.0.1\n  namespace: kb-system",
        f"version: {before}\n  namespace: kb-system",
    )
    edit(
        values_dir / "pipeline.yaml",
        "version: 1.0.1\n  namespace: kb-system",
        f"version: {after}\n  namespace: kb-system",
    )
    (problem,) = refusals(base_dir, values_dir)
    assert f"kubeblocks.version: {before} -> {after}: {words}" in problem


def test_a_chart_is_never_downgraded(base_dir: Path, values_dir: Path) -> None:
    edit(
        values_dir / "pipeline.yaml",
        "release: qdrant-cluster\n    chartVersion: 1.0.1",
        "release: qdrant-cluster\n    chartVersion: 1.0.0",
    )
    (problem,) = refusals(base_dir, values_dir)
    assert "databases.qdrant.chartVersion: 1.0.1 -> 1.0.0: a chart is never downgraded in place" in problem


def test_a_kubeblocks_namespace_change_is_refused(base_dir: Path, values_dir: Path) -> None:
    edit(values_dir / "pipeline.yaml", "namespace: kb-system", "namespace: kb-other")
    (problem,) = refusals(base_dir, values_dir)
    assert "kubeblocks.namespace: 'kb-system' -> 'kb-other'" in problem


# --- marker steps ----------------------------------------------------------------------------------------------------


def test_markers_are_written_before_any_upgrade_and_read_back_after_each_database_s_own(
    base_dir: Path, values_dir: Path
) -> None:
    edit(
        base_dir / "pipeline.yaml",
        "release: redis-cluster\n    chartVersion: 1.0.1",
        "release: redis-cluster\n    chartVersion: 1.0.0",
    )
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    plan = upgrade(base_dir, values_dir, markers=WITH_MARKERS)
    steps = {s.id: s for s in plan.stage.steps}
    ids = list(steps)
    writes = [f"upgrade:markers-write:{k}" for k in ("postgresql", "redis", "qdrant", "elasticsearch")]
    assert ids[:4] == writes
    for write in writes:
        step = steps[write]
        assert (step.kind, step.needs, step.stage, step.commands) == (StepKind.MARKERS, (), "upgrade", ())
        assert step.markers is not None and step.markers.phase == "write"
        # Written through the base's endpoint, read back through the change's.
        assert step.markers.endpoint == next(e for e in plan.base.endpoints if e.database == step.database)
    # Every upgrade that starts the stage waits for all the markers.
    assert steps["upgrade:cluster:postgresql"].needs == tuple(writes)
    assert steps["upgrade:addon:redis"].needs == tuple(writes)
    assert steps["upgrade:cluster:redis"].needs == ("upgrade:addon:redis",)
    # Each database is read back once its own Cluster was upgraded (or right after the write: left alone).
    assert steps["upgrade:markers-verify:postgresql"].needs == ("upgrade:cluster:postgresql",)
    assert steps["upgrade:markers-verify:redis"].needs == ("upgrade:cluster:redis",)
    assert steps["upgrade:markers-verify:qdrant"].needs == ("upgrade:markers-write:qdrant",)
    verify = steps["upgrade:markers-verify:postgresql"]
    assert verify.markers is not None and verify.markers.endpoint.version == "16.9.0"
    assert verify.timeout_s == 600 + 240  # the suite's limit, and reaching the database
    assert not any("clean" in i for i in ids)


def test_markers_are_removed_after_a_read_back_when_the_cluster_outlives_the_run(
    base_dir: Path, values_dir: Path
) -> None:
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    plan = upgrade(base_dir, values_dir, markers=MarkerOptions(clean=True))
    clean = plan.stage.step("upgrade:markers-clean:postgresql")
    assert clean.needs == ("upgrade:markers-verify:postgresql",)
    assert clean.markers is not None and clean.markers.phase == "clean"


def test_after_a_kubeblocks_upgrade_markers_are_read_back_once_each_cluster_was_checked(
    base_dir: Path, values_dir: Path
) -> None:
    edit(base_dir / "pipeline.yaml", "version: 1.0.1\n  namespace: kb-system", "version: 1.0.0\n  namespace: kb-system")
    plan = upgrade(base_dir, values_dir, markers=WITH_MARKERS)
    assert plan.stage.step("upgrade:kubeblocks-crds").needs[0] == "upgrade:markers-write:postgresql"
    assert plan.stage.step("upgrade:markers-verify:redis").needs == ("upgrade:check:redis",)


def test_no_change_needs_no_markers_and_a_database_the_change_enables_gets_none(
    base_dir: Path, values_dir: Path
) -> None:
    assert upgrade(base_dir, values_dir, markers=WITH_MARKERS).stage.steps == ()
    edit(values_dir / "pipeline.yaml", "  neo4j:\n    enabled: false", "  neo4j:\n    enabled: true")
    ids = [s.id for s in upgrade(base_dir, values_dir, markers=WITH_MARKERS).stage.steps]
    assert "upgrade:cluster:neo4j" in ids and not any(i.endswith(":neo4j") and "markers" in i for i in ids)


def test_a_snapshotter_bump_applies_its_crds_then_its_controller_and_nothing_else(
    base_dir: Path, values_dir: Path
) -> None:
    edit(values_dir / "pipeline.yaml", "version: v8.2.0", "version: v8.3.0")
    plan = upgrade(base_dir, values_dir)
    changed = [(r.id, r.name, r.before, r.after, r.diff) for r in plan.releases if r.action is not Action.UNCHANGED]
    assert changed == [
        ("snapshot-crds", "VolumeSnapshot CRDs", "v8.2.0", "v8.3.0", ("~ version: v8.2.0 -> v8.3.0",)),
        ("snapshot-controller", "snapshot controller", "v8.2.0", "v8.3.0", ("~ version: v8.2.0 -> v8.3.0",)),
    ]
    assert [(s.id, s.needs, s.title, s.skip_when) for s in plan.stage.steps] == [
        ("upgrade:snapshot-crds", (), "Apply the VolumeSnapshot CRDs v8.3.0 (was v8.2.0)", ()),
        (
            "upgrade:snapshot-controller",
            ("upgrade:snapshot-crds",),
            "Apply the snapshot controller v8.3.0 (was v8.2.0)",
            (),
        ),
    ]
    assert plan.stage.steps[0].commands[0].argv[-1] == (
        "https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/v8.3.0/client/config/crd/"
        "snapshot.storage.k8s.io_volumesnapshotclasses.yaml"
    )


def test_after_a_snapshotter_bump_markers_are_read_back_once_the_crds_the_clusters_rest_on_were_applied(
    base_dir: Path, values_dir: Path
) -> None:
    edit(values_dir / "pipeline.yaml", "version: v8.2.0", "version: v8.3.0")
    plan = upgrade(base_dir, values_dir, markers=WITH_MARKERS)
    writes = tuple(f"upgrade:markers-write:{k}" for k in ("postgresql", "redis", "qdrant", "elasticsearch"))
    assert [(s.id, s.needs) for s in plan.stage.steps] == [
        *((write, ()) for write in writes),
        ("upgrade:snapshot-crds", writes),
        ("upgrade:snapshot-controller", ("upgrade:snapshot-crds",)),
        *(
            (f"upgrade:markers-verify:{k}", ("upgrade:snapshot-crds",))
            for k in ("postgresql", "redis", "qdrant", "elasticsearch")
        ),
    ]


def test_the_json_form_names_both_sides_versions_and_the_changes_endpoints(base_dir: Path, values_dir: Path) -> None:
    edit(values_dir / "postgresql.yaml", "16.4.0", "16.9.0")
    plan = load_upgrade_plan(base_dir, values_dir, "ci", ["namespace=apps"], markers=NO_MARKERS, base_label="main")
    data = plan.to_json()
    shared = {
        "kubeblocks": "1.0.1",
        "snapshotter": "v8.2.0",
        "postgresqlChart": "1.0.1",
        "redisChart": "1.0.1",
        "qdrantChart": "1.0.1",
        "elasticsearchChart": "1.0.1",
        "redis": "7.2.7",
        "qdrant": "1.10.0",
        "elasticsearch": "8.8.2",
        "image.k3s": "rancher/k3s:v1.31.5-k3s1",
        "image.toolbox": "alpine/k8s:1.31.4",
        "image.python": "python:3.12.8-slim-bookworm",
    }
    assert {k: v for k, v in data.items() if k not in ("base", "steps", "releases", "endpoints")} == {
        "schemaVersion": 1,
        "kind": "upgrade",
        "baseValues": "main",
        "namespace": "apps",
        "profile": "ci",
        "versions": {**shared, "postgresql": "16.9.0"},
        "baseVersions": {**shared, "postgresql": "16.4.0"},
        "cautions": [],
    }
    assert [(e["database"], e["host"], e["version"]) for e in data["endpoints"]] == [
        ("postgresql", "pg-cluster-postgresql-postgresql.apps.svc.cluster.local", "16.9.0"),
        ("redis", "redis-cluster-redis-redis.apps.svc.cluster.local", "7.2.7"),
        ("qdrant", "qdrant-cluster-qdrant-qdrant.apps.svc.cluster.local", "1.10.0"),
        ("elasticsearch", "es-cluster-mdit-http.apps.svc.cluster.local", "8.8.2"),
    ]
    assert [s["id"] for s in data["steps"]] == ["upgrade:cluster:postgresql"]
    assert (data["base"]["namespace"], len(data["base"]["steps"])) == ("apps", 12)
