from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import REPO
from dbstack.cli.main import main
from dbstack.config.validate import validate
from dbstack.plan.build import build_plan
from dbstack.plan.model import StepKind


def _plan(values_dir: Path, *overrides: str, profile: str | None = None):  # type: ignore[no-untyped-def]
    return build_plan(validate(values_dir, profile, overrides).config)


def test_every_step_comes_after_the_steps_it_needs(values_dir: Path) -> None:
    plan = _plan(values_dir, "databases.neo4j.enabled=true", profile="ci")
    seen: set[str] = set()
    for step in plan.steps:
        assert set(step.needs) <= seen, f"{step.id} runs before {set(step.needs) - seen}"
        seen.add(step.id)


def test_plan_orders_snapshot_support_then_kubeblocks_then_addons_then_clusters(values_dir: Path) -> None:
    kinds = [s.kind for s in _plan(values_dir).steps]
    assert kinds[:4] == [
        StepKind.SNAPSHOT_CRDS,
        StepKind.SNAPSHOT_CONTROLLER,
        StepKind.KUBEBLOCKS_CRDS,
        StepKind.KUBEBLOCKS,
    ]
    assert kinds[4:] == [StepKind.ADDON] * 4 + [StepKind.CLUSTER] * 4


def test_plan_has_one_addon_and_one_cluster_per_enabled_database(values_dir: Path) -> None:
    plan = _plan(values_dir, "databases.qdrant.enabled=false", "databases.neo4j.enabled=true")
    ids = [s.id for s in plan.steps if s.database]
    assert ids == [
        "addon:postgresql",
        "addon:redis",
        "addon:elasticsearch",
        "addon:neo4j",
        "cluster:postgresql",
        "cluster:redis",
        "cluster:elasticsearch",
        "cluster:neo4j",
    ]


def test_kubeblocks_uses_docker_io_and_switches_default_addons_off(values_dir: Path) -> None:
    argv = _plan(values_dir).step("kubeblocks").commands[0].argv
    assert "image.registry=docker.io" in argv
    assert "registryConfig.defaultNamespace=apecloud" in argv
    assert "autoInstalledAddons={}" in argv
    assert argv[argv.index("--version") + 1] == "1.0.1"


def test_endpoints_follow_kubeblocks_naming(values_dir: Path) -> None:
    endpoints = {e.database: e for e in _plan(values_dir, "databases.neo4j.enabled=true").endpoints}
    pg = endpoints["postgresql"]
    assert (pg.service, pg.port, pg.secret) == (
        "pg-cluster-postgresql-postgresql",
        5432,
        "pg-cluster-postgresql-account-postgres",
    )
    assert pg.host == "pg-cluster-postgresql-postgresql.default.svc.cluster.local"
    assert (endpoints["redis"].service, endpoints["redis"].secret) == (
        "redis-cluster-redis-redis",
        "redis-cluster-redis-account-default",
    )
    assert (endpoints["qdrant"].service, endpoints["qdrant"].port, endpoints["qdrant"].secret) == (
        "qdrant-cluster-qdrant-qdrant",
        6333,
        None,
    )
    assert endpoints["elasticsearch"].service == "es-cluster-mdit-http"
    assert endpoints["neo4j"].service == "neo4j-cluster-neo4j"
    assert endpoints["neo4j"].secret == "neo4j-cluster-neo4j-account-neo4j"


def test_cluster_values_reach_helm_on_stdin_with_the_profile_applied(values_dir: Path) -> None:
    step = _plan(values_dir, profile="ci").step("cluster:elasticsearch")
    command = step.commands[0]
    assert command.argv[-2:] == ("-f", "-")
    assert command.stdin is not None
    assert "enableKibana: false" in command.stdin
    assert "mode: single-node" in command.stdin


def test_plan_json_is_documented_shape(values_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["plan", "--json", "--values", str(values_dir)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schemaVersion"] == 1
    assert [s["id"] for s in data["steps"]][:4] == [
        "snapshot-crds",
        "snapshot-controller",
        "kubeblocks-crds",
        "kubeblocks",
    ]
    cluster = next(s for s in data["steps"] if s["id"] == "cluster:postgresql")
    assert cluster["doneWhen"][0]["condition"] == "jsonpath={.status.phase}=Running"
    assert cluster["timeoutSeconds"] == 600
    assert cluster["diagnostics"]
    assert {e["database"] for e in data["endpoints"]} == {"postgresql", "redis", "qdrant", "elasticsearch"}


def _field_paths(value: object, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= _field_paths(child, path)
    elif isinstance(value, list):
        for item in value:
            paths |= _field_paths(item, f"{prefix}[]")
    return paths


BACKUP_ON = ("--set", "backup.enabled=true", "--set", "backup.methods.elasticsearch=none", "--set", "node.cpu=16")


@pytest.mark.parametrize(
    "extra",
    [(), (*BACKUP_ON, "--cluster", "k3s"), (*BACKUP_ON, "--cluster", "existing")],
    ids=["deploy", "backup-on-k3s", "backup-on-existing"],
)
def test_every_plan_json_field_is_documented(values_dir: Path, capsys, extra: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    argv = ["plan", "--json", "--values", str(values_dir), "--set", "databases.neo4j.enabled=true", *extra]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    documented = set(re.findall(r"^\| `([^`]+)` \|", (REPO / "docs" / "plan.md").read_text(), re.MULTILINE))
    # Every command object has the shape documented once, under steps[].commands[]; doneWhenSkipped's waits have
    # doneWhen's fields. A marker step's endpoint has the fields of endpoints[].
    fields = {
        re.sub(r"^steps\[\]\.markers\.endpoint\.", "endpoints[].", p)
        for p in (
            re.sub(r"^steps\[\]\.doneWhenSkipped\[\]\.", "steps[].doneWhen[].", p)
            for p in (
                re.sub(r"^.*\.command\.(argv|stdin)$", r"steps[].commands[].\1", p)
                for p in _field_paths(data)
                if not p.startswith("versions.")
            )
        )
    }
    missing = sorted(fields - documented)
    assert not missing, f"docs/plan.md does not describe: {missing}"


def test_snapshot_controller_step_is_left_out_where_the_platform_runs_its_own(values_dir: Path) -> None:
    plan = _plan(values_dir, "snapshotter.installController=false")
    ids = [s.id for s in plan.steps]
    assert "snapshot-controller" not in ids
    assert "snapshot-crds" in ids
    assert plan.step("kubeblocks").needs == ("snapshot-crds", "kubeblocks-crds")


HELM_REFUSALS_WHILE_ANOTHER_CLIENT_INSTALLS = (
    "another operation (install/upgrade/rollback) is in progress",
    "cannot re-use a name that is still in use",
    "cannot reuse a name that is still in use",
    "release: already exists",
)


def test_the_plan_is_this_graph_of_needs(values_dir: Path) -> None:
    plan = _plan(values_dir, "databases.neo4j.enabled=true")
    assert {s.id: set(s.needs) for s in plan.steps} == {
        "snapshot-crds": set(),
        "snapshot-controller": {"snapshot-crds"},
        "kubeblocks-crds": set(),
        # The dataprotection controller crashes when the VolumeSnapshot CRDs are missing at its start.
        "kubeblocks": {"snapshot-crds", "kubeblocks-crds"},
        "addon:postgresql": {"kubeblocks"},
        "addon:redis": {"kubeblocks"},
        "addon:qdrant": {"kubeblocks"},
        "addon:elasticsearch": {"kubeblocks"},
        "addon:neo4j": {"kubeblocks"},
        "cluster:postgresql": {"addon:postgresql"},
        "cluster:redis": {"addon:redis"},
        "cluster:qdrant": {"addon:qdrant"},
        "cluster:elasticsearch": {"addon:elasticsearch"},
        "cluster:neo4j": {"addon:neo4j"},
    }


def test_every_helm_install_waits_out_another_clients_install_of_the_same_release(values_dir: Path) -> None:
    plan = _plan(values_dir)
    racing = {s.id for s in plan.steps if s.retry_while == HELM_REFUSALS_WHILE_ANOTHER_CLIENT_INSTALLS}
    assert racing == {
        "kubeblocks",
        "addon:postgresql",
        "addon:redis",
        "addon:qdrant",
        "addon:elasticsearch",
        "cluster:postgresql",
        "cluster:redis",
        "cluster:qdrant",
        "cluster:elasticsearch",
    }
    assert {s.id for s in plan.steps if s.retry_while or s.retry_on} == racing
