"""The backup stage against the real upstream sources (tests/upstream.py and ../shared/upstream):

- The runtime's method catalog (config/backupcatalog.py) is what the 1.0.1 addons' BackupPolicyTemplates and
  ActionSets render: each method's name, whether it snapshots volumes, its ActionSet's backup type, the component
  whose policy holds it, which one's script needs an S3-compatible repository; Neo4j renders none.
- The BackupPolicy the Backup names is `<cluster>-<component>-backup-policy` for the rendered Cluster's component whose
  ComponentDefinition the template matches (KubeBlocks' own derivation).
- Every object the stage creates is admitted by the v1.0.1 CRDs: the Backup, the BackupRepo (its parameters are the
  `pvc` StorageProvider's), and the restored Cluster built from each rendered Cluster, with its annotation.
- The CSI hostpath driver's URLs name files of the pinned release, and each sidecar's RBAC at the version its image
  pins, as its deploy script applies them; the classes, names and labels the plan and simulator use are the
  manifests'.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dbstack.config import backupcatalog
from dbstack.config.catalog import DATABASES
from dbstack.config.load import Config, load_config
from dbstack.plan import backup as stage
from dbstack.plan.build import build_plan
from dbstack.plan.model import RestoreCluster
from dbstack.sim import backups as simbackups
from upstream import (
    KUBEBLOCKS,
    AddonFacts,
    admit,
    modelled_variants,
    prefix_or_regex_matched,
    render,
    render_helm_command,
    the_cluster,
    upstream_or_skip,
)

UPSTREAM = upstream_or_skip()
REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"
CSI = UPSTREAM / "csi-driver-host-path-v1.17.1"
BACKUP_ON = [
    *(f"databases.{key}.enabled=true" for key in DATABASES),
    "backup.enabled=true",
    "backup.methods.elasticsearch=none",
]
_FACTS: dict[str, AddonFacts] = {}


def facts(addon: str) -> AddonFacts:
    return _FACTS.setdefault(addon, AddonFacts(addon))


def config(*overrides: str) -> Config:
    return load_config(VALUES, "full", [*BACKUP_ON, *overrides])


def templates_matching(key: str, cmpd: str) -> list[dict[str, Any]]:
    bpts = facts(DATABASES[key].addon).named("BackupPolicyTemplate")
    return [dict(b) for b in bpts.values() if any(prefix_or_regex_matched(cmpd, p) for p in b["spec"]["compDefs"])]


def rendered_clusters(key: str) -> list[dict[str, Any]]:
    """The Cluster of every modelled mode of `key`."""
    db = DATABASES[key]
    return [the_cluster(render("cluster", db.addon, variant, "c", "default")) for variant in modelled_variants(key)]


# --- the method catalog ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(DATABASES))
def test_the_method_catalog_is_what_the_addon_renders(key: str) -> None:
    addon = facts(DATABASES[key].addon)
    action_sets = addon.named("ActionSet")
    for cluster in rendered_clusters(key):
        for spec in cluster["spec"]["componentSpecs"]:
            cmpd = addon.resolve(cluster, spec).cmpd["metadata"]["name"]
            matched = templates_matching(key, cmpd)
            if spec["name"] != backupcatalog.BACKUP_COMPONENTS.get(key):
                assert matched == [], f"{key}: component {spec['name']} has a BackupPolicyTemplate too"
                continue
            (template,) = matched
            rendered = []
            for m in template["spec"]["backupMethods"]:
                action = action_sets.get(m.get("actionSetName", ""))
                script = yaml.safe_dump(action) if action else ""
                rendered.append(
                    (
                        m["name"],
                        bool(m.get("snapshotVolumes")),
                        m.get("actionSetName"),
                        action["spec"]["backupType"] if action else None,
                        # Its script reads the repo's S3 endpoint and keys out of the datasafed configuration.
                        "getToolConfigValue endpoint" in script,
                    )
                )
            catalog = [
                (m.name, m.snapshot_volumes, m.action_set, m.backup_type, m.needs == backupcatalog.S3_REPO)
                for m in backupcatalog.methods(key)
            ]
            assert catalog == rendered
    if not backupcatalog.methods(key):
        assert facts(DATABASES[key].addon).named("BackupPolicyTemplate") == {}


def test_only_neo4j_renders_no_template_and_the_stage_says_so() -> None:
    plan = build_plan(config(), stage.ON_K3S)
    neo4j = next(case for case in plan.backups if case.database == "neo4j")
    assert (neo4j.method, neo4j.reason) == (None, "not supported by the 1.0.1 addon (it ships no BackupPolicyTemplate)")
    assert [key for key in DATABASES if not backupcatalog.methods(key)] == ["neo4j"]


def test_the_backup_policy_named_is_the_one_kubeblocks_generates_for_the_rendered_component() -> None:
    c = config()
    plan = build_plan(c, stage.ON_K3S)
    for case in plan.backups:
        if case.method is None:
            continue
        step = plan.step(f"cluster:{case.database}")
        cluster = the_cluster(render_helm_command(step.commands[0].argv, step.commands[0].stdin))
        addon = facts(DATABASES[case.database].addon)
        backed_up = [
            spec["name"]
            for spec in cluster["spec"]["componentSpecs"]
            if templates_matching(case.database, addon.resolve(cluster, spec).cmpd["metadata"]["name"])
        ]
        # controllers/dataprotection/backuppolicydriver_controller.go generateBackupPolicyName.
        assert [f"{cluster['metadata']['name']}-{name}-backup-policy" for name in backed_up] == [case.policy]
        (template,) = templates_matching(
            case.database, addon.resolve(cluster, cluster["spec"]["componentSpecs"][0]).cmpd["metadata"]["name"]
        )
        assert case.method in [m["name"] for m in template["spec"]["backupMethods"]]


# --- the objects the stage creates, admitted by the v1.0.1 CRDs --------------------------------------------------


def stdin_objects(plan_step: Any) -> list[dict[str, Any]]:
    return [yaml.safe_load(c.stdin) for c in plan_step.commands if c.stdin is not None]


def test_the_backups_the_stage_creates_are_admitted_and_name_repo_policy_and_method() -> None:
    c = config()
    plan = build_plan(c, stage.ON_K3S)
    for case in plan.backups:
        if case.method is None:
            continue
        (backup,) = stdin_objects(plan.step(f"backup:{case.database}"))
        stored, errors = admit(backup)
        assert errors == []
        assert (stored["spec"]["backupPolicyName"], stored["spec"]["backupMethod"]) == (case.policy, case.method)
        assert stored["spec"]["deletionPolicy"] == "Delete"
        snapshot = backupcatalog.method(case.database, case.method)
        assert snapshot is not None
        labels = backup["metadata"].get("labels", {})
        if snapshot.needs == backupcatalog.SNAPSHOT:
            assert labels == {}
        else:
            assert labels == {stage.REPO_LABEL: c.backup.repo.name}


@pytest.mark.parametrize("repo_class", ["", "fast-ssd"])
def test_the_backup_repo_is_admitted_and_fits_the_pvc_storage_provider(repo_class: str) -> None:
    c = config(f"backup.repo.storageClass={repo_class!r}" if repo_class else "backup.repo.capacityGi=7")
    (repo,) = stdin_objects(build_plan(c, stage.ON_K3S).step("backup-repo"))
    stored, errors = admit(repo)
    assert errors == []
    provider = next(
        doc
        for doc in render("kubeblocks", "kubeblocks", {}, "kubeblocks", "kb-system")
        if doc.get("kind") == "StorageProvider" and doc["metadata"]["name"] == "pvc"
    )
    assert stored["spec"]["storageProviderRef"] == provider["metadata"]["name"]
    schema = provider["spec"]["parametersSchema"]["openAPIV3Schema"]["properties"]
    assert set(stored["spec"]["config"]) <= set(schema)
    for key, value in stored["spec"]["config"].items():
        assert value in schema[key].get("enum", [value])
    # The provider has a PVC template and no tool configuration: it is reached by mounting.
    assert "persistentVolumeClaimTemplate" in provider["spec"] and "datasafedConfigTemplate" not in provider["spec"]
    assert stored["spec"]["accessMethod"] == "Mount"
    assert stored["spec"]["config"].get("storageClassName", "") == repo_class


def test_the_restored_clusters_are_admitted_with_the_source_s_spec_and_the_restore_annotation() -> None:
    c = config()
    plan = build_plan(c, stage.ON_K3S)
    for case in plan.backups:
        if case.method is None:
            continue
        deploy = plan.step(f"cluster:{case.database}")
        source, errors = admit(the_cluster(render_helm_command(deploy.commands[0].argv, deploy.commands[0].stdin)))
        assert errors == []
        restore = plan.step(f"restore:{case.database}").restore
        assert restore is not None and restore.source == source["metadata"]["name"]
        restored, errors = admit(stage.restored_cluster(source, restore))
        assert errors == []
        assert restored["metadata"]["name"] == case.restored
        expected_spec = {**source["spec"], "terminationPolicy": "Delete"}
        assert restored["spec"] == expected_spec
        annotation = json.loads(restored["metadata"]["annotations"][stage.RESTORE_ANNOTATION])
        # Keyed by a component the spec has, naming the Backup the stage takes.
        assert list(annotation) == [backupcatalog.BACKUP_COMPONENTS[case.database]]
        assert annotation[restore.component]["name"] == case.backup
        assert annotation[restore.component]["namespace"] == c.namespace
        assert restore.component in [s["name"] for s in restored["spec"]["componentSpecs"]]
        # Nothing in it still points at the source cluster, and Helm does not own it.
        text = json.dumps(restored)
        assert not re.search(rf'"{re.escape(source["metadata"]["name"])}"', text)
        assert "helm" not in json.dumps(restored["metadata"]).lower()


def test_a_restored_cluster_of_a_source_with_services_and_scheduling_drops_what_points_at_the_source() -> None:
    source = the_cluster(render("cluster", "postgresql", {"mode": "replication"}, "pg", "default"))
    source["metadata"]["annotations"] = {"meta.helm.sh/release-name": "pg", "keep": "me"}
    source["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm"
    source["spec"]["services"] = [
        {"name": "lb", "spec": {"type": "LoadBalancer", "ports": [{"port": 5432}]}},
        {
            "name": "np",
            "spec": {
                "type": "NodePort",
                "ports": [{"port": 5432, "nodePort": 30001}],
                "selector": {"app.kubernetes.io/instance": "pg"},
            },
        },
    ]
    source["spec"]["componentSpecs"][0]["offlineInstances"] = ["pg-postgresql-1"]
    source["spec"]["componentSpecs"][0]["schedulingPolicy"] = {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "k",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "pg"}},
            }
        ]
    }
    restored = stage.restored_cluster(source, RestoreCluster("pg", "pg-r", "default", "pg-backup", "postgresql"))
    _, errors = admit(restored)
    assert errors == []
    assert [s["name"] for s in restored["spec"]["services"]] == ["np"]
    assert restored["spec"]["services"][0]["spec"] == {"type": "NodePort", "ports": [{"port": 5432}], "selector": {}}
    assert "offlineInstances" not in restored["spec"]["componentSpecs"][0]
    spread = restored["spec"]["componentSpecs"][0]["schedulingPolicy"]["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "pg-r"}
    assert restored["metadata"]["annotations"]["keep"] == "me"
    assert "meta.helm.sh/release-name" not in restored["metadata"]["annotations"]
    assert "app.kubernetes.io/managed-by" not in restored["metadata"].get("labels", {})


def test_the_restore_waits_on_kubeblocks_component_names_and_the_restore_done_annotation() -> None:
    plan = build_plan(config(), stage.ON_K3S)
    step = plan.step("restore:postgresql")
    component = step.done_when[1]
    # KubeBlocks names a Component <cluster>-<component> (pkg/constant GenerateClusterComponentName) and marks it
    # restored with kubeblocks.io/restore-done (pkg/controller/plan/restore.go).
    assert component.resource == "components.apps.kubeblocks.io/pg-cluster-r-postgresql"
    assert component.condition == "jsonpath={.metadata.annotations.kubeblocks\\.io/restore-done}=true"
    components_crd = (UPSTREAM / KUBEBLOCKS / "crds" / "apps.kubeblocks.io_components.yaml").read_text()
    assert "kind: Component\n" in components_crd


# --- the CSI hostpath driver -------------------------------------------------------------------------------------


def test_the_csi_driver_urls_name_files_of_the_pinned_release() -> None:
    for path in stage.CSI_MANIFESTS:
        assert (CSI / path).is_file(), path
    # deploy/kubernetes-1.31 (k3s 1.31 runs here) is a link to kubernetes-1.30: the URLs name its target.
    assert (CSI / "deploy" / "kubernetes-1.31").read_text().strip() == "kubernetes-1.30"
    assert stage.CSI_DEPLOY_DIR == "deploy/kubernetes-1.30"
    assert stage.CSI_RAW.endswith(
        f"/kubernetes-csi/csi-driver-host-path/{CSI.name.removeprefix('csi-driver-host-path-')}"
    )
    # What deploy-hostpath.sh applies from hostpath/: every manifest but the socat relay for csi-sanity.
    applied = sorted(p.name for p in (CSI / stage.CSI_DEPLOY_DIR / "hostpath").glob("*.yaml"))
    assert applied == sorted([*(Path(p).name for p in stage.CSI_MANIFESTS[:3]), "csi-hostpath-testing.yaml"])
    assert "socat" in (CSI / stage.CSI_DEPLOY_DIR / "hostpath" / "csi-hostpath-testing.yaml").read_text()


def plugin_images() -> dict[str, str]:
    text = (CSI / stage.CSI_DEPLOY_DIR / "hostpath" / "csi-hostpath-plugin.yaml").read_text()
    return dict(re.findall(r"image: \S+/([\w-]+):(v[\d.]+)", text))


def test_each_sidecar_s_rbac_comes_from_its_repository_at_the_version_its_image_pins() -> None:
    script = (CSI / "deploy" / "util" / "deploy-hostpath.sh").read_text()
    images = plugin_images()
    repositories = {
        "external-provisioner": "csi-provisioner",
        "external-attacher": "csi-attacher",
        "external-snapshotter": "csi-snapshotter",
        "external-resizer": "csi-resizer",
        "external-health-monitor": "csi-external-health-monitor-controller",
    }
    for repo, version, path in stage.CSI_SIDECAR_RBAC:
        assert images[repositories[repo]] == version, repo
        # The script's URL for it: github.com/kubernetes-csi/<repo>/<version>/<path>.
        if repo == "external-snapshotter":
            assert 'SNAPSHOTTER_RBAC_RELATIVE_PATH="csi-snapshotter/rbac-csi-snapshotter.yaml"' in script
            assert path == "deploy/kubernetes/csi-snapshotter/rbac-csi-snapshotter.yaml"
        else:
            assert f"kubernetes-csi/{repo}/$(rbac_version" in script and f"{path}}}" in script, repo
    # The snapshot-metadata RBAC only with SNAPSHOT_METADATA_TESTS, which the stage leaves off.
    assert "components+=(CSI_SNAPSHOT_METADATA)" in script
    assert sorted(repositories) == sorted(repo for repo, _, _ in stage.CSI_SIDECAR_RBAC)


def test_the_driver_s_names_classes_and_labels_are_the_manifests() -> None:
    hostpath = CSI / stage.CSI_DEPLOY_DIR / "hostpath"
    plugin = [d for d in yaml.safe_load_all((hostpath / "csi-hostpath-plugin.yaml").read_text()) if d]
    statefulset = next(d for d in plugin if d["kind"] == "StatefulSet")
    assert f"statefulset/{statefulset['metadata']['name']}" == stage.HOSTPATH_PLUGIN
    assert statefulset["metadata"]["namespace"] == stage.HOSTPATH_NAMESPACE
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    key, value = stage.HOSTPATH_SELECTOR.split("=")
    assert pod_labels[key] == value
    assert pod_labels == simbackups.HOSTPATH_POD_LABELS
    driver = yaml.safe_load((hostpath / "csi-hostpath-driverinfo.yaml").read_text())
    assert driver["metadata"]["name"] == stage.HOSTPATH_DRIVER
    snapclass = yaml.safe_load((hostpath / "csi-hostpath-snapshotclass.yaml").read_text())
    assert (snapclass["metadata"]["name"], snapclass["driver"]) == (
        stage.HOSTPATH_SNAPSHOT_CLASS,
        stage.HOSTPATH_DRIVER,
    )
    storage = yaml.safe_load((CSI / "examples" / "csi-storageclass.yaml").read_text())
    assert (storage["metadata"]["name"], storage["provisioner"]) == (
        stage.HOSTPATH_STORAGE_CLASS,
        stage.HOSTPATH_DRIVER,
    )
    # The defaults of backup.storageClass and backup.snapshotClass are the driver's.
    c = load_config(VALUES)
    assert (c.backup.storage_class, c.backup.snapshot_class) == (
        stage.HOSTPATH_STORAGE_CLASS,
        stage.HOSTPATH_SNAPSHOT_CLASS,
    )
