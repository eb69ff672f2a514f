"""What the plan collects when a step fails (the files under diagnostics/ and the commands that fill them), how a
cluster's wait is watched, and the teardown plan's commands: written out literally for the repository's values."""

from __future__ import annotations

from pathlib import Path

from conftest import VALUES
from dbstack.config.validate import validate
from dbstack.plan.build import build_plan, build_teardown_plan
from dbstack.plan.model import InstalledVersion, PodLogs, SnapshotSupport, Step, Watch


def diagnostics(step: Step) -> list[tuple[str, str]]:
    return [(d.name, str(d.command)) for d in step.diagnostics]


KB_SYSTEM = [
    ("kb-system-pods.txt", "kubectl -n kb-system get pods -o wide"),
    ("kb-system-events.txt", "kubectl -n kb-system get events --sort-by=.lastTimestamp"),
    ("kubeblocks.log", "kubectl -n kb-system logs deploy/kubeblocks --all-containers --tail=2000"),
    (
        "kubeblocks-dataprotection.log",
        "kubectl -n kb-system logs deploy/kubeblocks-dataprotection --all-containers --tail=2000",
    ),
    ("helm-releases.txt", "helm list -A"),
    ("nodes.txt", "kubectl describe nodes"),
]


def test_platform_steps_collect_these_files() -> None:
    plan = build_plan(validate(VALUES).config)
    assert diagnostics(plan.step("snapshot-crds")) == [("crds.txt", "kubectl get crd -o wide")]
    assert diagnostics(plan.step("kubeblocks-crds")) == [("crds.txt", "kubectl get crd -o wide")]
    assert diagnostics(plan.step("snapshot-controller")) == [
        ("pods.txt", "kubectl get pods -A -l app.kubernetes.io/name=snapshot-controller -o wide"),
        ("describe.txt", "kubectl -n kube-system describe deploy/snapshot-controller"),
        ("logs.txt", "kubectl -n kube-system logs deploy/snapshot-controller --all-containers --tail=500"),
    ]
    assert diagnostics(plan.step("kubeblocks")) == KB_SYSTEM
    assert diagnostics(plan.step("addon:redis")) == [
        ("addon.txt", "kubectl get addons.extensions.kubeblocks.io redis -o yaml"),
        ("definitions.txt", "kubectl get clusterdefinition,componentdefinition,componentversion"),
        ("helm-status.txt", "helm status kb-addon-redis -n kb-system"),
        *KB_SYSTEM,
    ]
    assert all(d.pod_logs is None for s in plan.steps if s.kind.value != "cluster" for d in s.diagnostics)


def test_a_cluster_step_collects_its_objects_every_containers_logs_and_the_control_plane(tmp_path: Path) -> None:
    config = validate(VALUES, None, ["namespace=apps", "kubeblocks.namespace=kbs"]).config
    step = build_plan(config).step("cluster:postgresql")
    pods = "kubectl -n apps get pods -l app.kubernetes.io/instance=pg-cluster -o json"
    assert diagnostics(step) == [
        ("cluster.yaml", "kubectl -n apps get clusters.apps.kubeblocks.io pg-cluster -o yaml"),
        ("cluster-describe.txt", "kubectl -n apps describe clusters.apps.kubeblocks.io pg-cluster"),
        ("components.txt", "kubectl -n apps describe cmp -l app.kubernetes.io/instance=pg-cluster"),
        ("instancesets.txt", "kubectl -n apps describe its -l app.kubernetes.io/instance=pg-cluster"),
        ("pods.txt", "kubectl -n apps describe pods -l app.kubernetes.io/instance=pg-cluster"),
        ("pvcs.txt", "kubectl -n apps get pvc -l app.kubernetes.io/instance=pg-cluster -o wide"),
        ("logs.txt", pods),
        ("logs-previous.txt", pods),
        ("events.txt", "kubectl -n apps get events --sort-by=.lastTimestamp"),
        ("kb-system-events.txt", "kubectl -n kbs get events --sort-by=.lastTimestamp"),
        ("kubeblocks.log", "kubectl -n kbs logs deploy/kubeblocks --all-containers --tail=2000"),
        (
            "kubeblocks-dataprotection.log",
            "kubectl -n kbs logs deploy/kubeblocks-dataprotection --all-containers --tail=2000",
        ),
        ("addon.txt", "kubectl get addons.extensions.kubeblocks.io postgresql -o yaml"),
        ("helm-releases.txt", "helm list -A"),
        ("nodes.txt", "kubectl describe nodes"),
        ("storageclasses.txt", "kubectl get storageclass -o wide"),
    ]
    logs = {d.name: d.pod_logs for d in step.diagnostics if d.pod_logs is not None}
    assert logs == {
        "logs.txt": PodLogs("apps", 1000, False),
        "logs-previous.txt": PodLogs("apps", 1000, True),
    }
    assert str(logs["logs.txt"].command("pg-cluster-postgresql-0", "postgresql")) == (
        "kubectl -n apps logs pg-cluster-postgresql-0 -c postgresql --tail=1000"
    )
    assert str(logs["logs-previous.txt"].command("pg-cluster-postgresql-1", "dbctl")) == (
        "kubectl -n apps logs pg-cluster-postgresql-1 -c dbctl --previous --tail=1000"
    )


def test_a_cluster_wait_is_watched_for_fatal_signs() -> None:
    step = build_plan(validate(VALUES).config).step("cluster:redis")
    assert step.watch == Watch("redis-cluster", "default", "app.kubernetes.io/instance=redis-cluster")
    watch = step.watch
    assert watch.fail_phases == ("Failed", "Abnormal")
    assert watch.stuck_reasons == (
        "ImagePullBackOff",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "InvalidImageName",
    )
    assert watch.unschedulable_messages == ("Insufficient cpu", "Insufficient memory")
    assert (watch.confirm_looks, watch.crashloop_restarts, watch.restores) == (2, 3, False)
    assert {s.id for s in build_plan(validate(VALUES).config).steps if s.watch is not None} == {
        "cluster:postgresql",
        "cluster:redis",
        "cluster:qdrant",
        "cluster:elasticsearch",
    }


def test_the_teardown_plan_uninstalls_clusters_then_addons_then_kubeblocks_then_its_namespace() -> None:
    config = validate(VALUES, None, ["databases.qdrant.enabled=false", "databases.elasticsearch.enabled=false"]).config
    plan = build_teardown_plan(config, remove_kubeblocks=True)
    assert (plan.namespace, plan.profile, plan.versions) == (
        "default",
        None,
        {"kubeblocks": "1.0.1", "snapshotter": "v8.2.0"},
    )
    steps = [
        (
            s.id,
            s.kind.value,
            s.database,
            s.needs,
            [str(c) for c in s.commands],
            [str(w.command(s.timeout_s)) for w in s.done_when],
            s.timeout_s,
        )
        for s in plan.steps
    ]
    clusters = ("uninstall-cluster:postgresql", "uninstall-cluster:redis")
    assert steps == [
        (
            "uninstall-cluster:postgresql",
            "uninstall-cluster",
            "postgresql",
            (),
            ["helm uninstall pg-cluster -n default --ignore-not-found --wait --timeout=300s"],
            ["kubectl wait clusters.apps.kubeblocks.io/pg-cluster -n default --for=delete --timeout=300s"],
            300,
        ),
        (
            "uninstall-cluster:redis",
            "uninstall-cluster",
            "redis",
            (),
            ["helm uninstall redis-cluster -n default --ignore-not-found --wait --timeout=300s"],
            ["kubectl wait clusters.apps.kubeblocks.io/redis-cluster -n default --for=delete --timeout=300s"],
            300,
        ),
        (
            "uninstall-addon:postgresql",
            "uninstall-addon",
            "postgresql",
            clusters,
            ["helm uninstall kb-addon-postgresql -n kb-system --ignore-not-found --wait --timeout=300s"],
            [],
            300,
        ),
        (
            "uninstall-addon:redis",
            "uninstall-addon",
            "redis",
            clusters,
            ["helm uninstall kb-addon-redis -n kb-system --ignore-not-found --wait --timeout=300s"],
            [],
            300,
        ),
        (
            "uninstall-kubeblocks",
            "uninstall-kubeblocks",
            None,
            ("uninstall-addon:postgresql", "uninstall-addon:redis"),
            ["helm uninstall kubeblocks -n kb-system --ignore-not-found --wait --timeout=300s"],
            [
                "kubectl wait deployment/kubeblocks -n kb-system --for=delete --timeout=300s",
                "kubectl wait deployment/kubeblocks-dataprotection -n kb-system --for=delete --timeout=300s",
            ],
            300,
        ),
        (
            "delete-namespace",
            "delete-namespace",
            None,
            ("uninstall-kubeblocks",),
            ["kubectl delete namespace kb-system --ignore-not-found"],
            ["kubectl wait namespace/kb-system --for=delete --timeout=300s"],
            300,
        ),
    ]
    assert [s.title for s in plan.steps] == [
        "Uninstall PostgreSQL (pg-cluster)",
        "Uninstall Redis (redis-cluster)",
        "Uninstall addon postgresql",
        "Uninstall addon redis",
        "Uninstall KubeBlocks",
        "Delete namespace kb-system",
    ]
    assert diagnostics(plan.step("uninstall-cluster:redis")) == [
        ("cluster-describe.txt", "kubectl -n default describe clusters.apps.kubeblocks.io redis-cluster"),
        ("events.txt", "kubectl -n default get events --sort-by=.lastTimestamp"),
    ]
    assert diagnostics(plan.step("uninstall-kubeblocks")) == KB_SYSTEM
    assert [s.id for s in build_teardown_plan(config, remove_kubeblocks=False).steps] == list(clusters)


def test_a_backup_chain_runs_these_commands_waits_and_reads() -> None:
    sets = ["backup.enabled=true", "backup.methods.elasticsearch=none", "node.cpu=16"]
    plan = build_plan(validate(VALUES, None, sets).config, "k3s")
    backups = "backups.dataprotection.kubeblocks.io"
    backup = plan.step("backup:redis")
    assert [(str(c), c.stdin) for c in backup.commands] == [
        (f"kubectl delete {backups} redis-cluster-backup -n default --ignore-not-found --timeout=900s", None),
        (
            "kubectl create -f - < values",
            "apiVersion: dataprotection.kubeblocks.io/v1alpha1\nkind: Backup\nmetadata:\n  name: redis-cluster-backup\n"
            "  namespace: default\nspec:\n  backupPolicyName: redis-cluster-redis-backup-policy\n"
            "  backupMethod: volume-snapshot\n  deletionPolicy: Delete\n",
        ),
    ]
    (done,) = backup.done_when
    assert str(done.command(900)) == (
        f"kubectl wait {backups}/redis-cluster-backup -n default '--for=jsonpath={{.status.phase}}=Completed' "
        "--timeout=900s"
    )
    assert (done.fails_on, done.failure_reason) == ("jsonpath={.status.phase}=Failed", "{.status.failureReason}")
    assert [(f.name, str(f.command)) for f in backup.facts] == [
        ("size", f"kubectl get {backups} redis-cluster-backup -n default -o 'jsonpath={{.status.totalSize}}'"),
        ("duration", f"kubectl get {backups} redis-cluster-backup -n default -o 'jsonpath={{.status.duration}}'"),
    ]
    assert diagnostics(backup) == [
        ("backup.yaml", f"kubectl get {backups} redis-cluster-backup -n default -o yaml"),
        ("backup-describe.txt", f"kubectl -n default describe {backups} redis-cluster-backup"),
        (
            "backuppolicy.yaml",
            "kubectl get backuppolicies.dataprotection.kubeblocks.io redis-cluster-redis-backup-policy -n default "
            "-o yaml",
        ),
        ("volumesnapshots.yaml", "kubectl -n default get volumesnapshots -o yaml"),
        ("volumesnapshotcontents.txt", "kubectl get volumesnapshotcontents -o wide"),
        (
            "backup-jobs.txt",
            "kubectl -n default get jobs,pods -l dataprotection.kubeblocks.io/backup-name=redis-cluster-backup -o wide",
        ),
        ("events.txt", "kubectl -n default get events --sort-by=.lastTimestamp"),
        (
            "kubeblocks-dataprotection.log",
            "kubectl -n kb-system logs deploy/kubeblocks-dataprotection --all-containers --tail=2000",
        ),
    ]
    restore = plan.step("restore:redis")
    assert [str(c) for c in restore.commands] == [
        "kubectl delete clusters.apps.kubeblocks.io redis-cluster-r -n default --ignore-not-found --timeout=900s"
    ]
    assert [(str(w.command(900)), w.must_exist_first) for w in restore.done_when] == [
        (
            "kubectl wait clusters.apps.kubeblocks.io/redis-cluster-r -n default "
            "'--for=jsonpath={.status.phase}=Running' --timeout=900s",
            False,
        ),
        (
            "kubectl wait components.apps.kubeblocks.io/redis-cluster-r-redis -n default "
            "'--for=jsonpath={.metadata.annotations.kubeblocks\\.io/restore-done}=true' --timeout=900s",
            True,
        ),
    ]
    assert restore.watch is not None
    assert (restore.watch.cluster, restore.watch.restores) == ("redis-cluster-r", True)
    assert [name for name, _ in diagnostics(restore)] == [
        "restored-cluster.yaml",
        "restores.yaml",
        "components.txt",
        "pods.txt",
        "pvcs.txt",
        "restore-jobs.txt",
        "backup.yaml",
        "volumesnapshots.yaml",
        "volumesnapshotcontents.txt",
        "events.txt",
        "kubeblocks-dataprotection.log",
        "kubeblocks.log",
    ]
    assert dict(diagnostics(restore))["restores.yaml"] == (
        "kubectl -n default get restores.dataprotection.kubeblocks.io -l app.kubernetes.io/instance=redis-cluster-r "
        "-o yaml"
    )
    cleanup = plan.step("backup-cleanup:redis")
    assert cleanup.cleanup and cleanup.title == "Delete the restored redis-cluster-r and Backup redis-cluster-backup"
    assert [str(c) for c in cleanup.commands] == [
        "kubectl delete clusters.apps.kubeblocks.io redis-cluster-r -n default --ignore-not-found --wait=false",
        f"kubectl delete {backups} redis-cluster-backup -n default --ignore-not-found --wait=false",
    ]
    assert [str(w.command(900)) for w in cleanup.done_when] == [
        "kubectl wait clusters.apps.kubeblocks.io/redis-cluster-r -n default --for=delete --timeout=900s",
        f"kubectl wait {backups}/redis-cluster-backup -n default --for=delete --timeout=900s",
    ]
    assert diagnostics(cleanup) == [
        ("backup.yaml", f"kubectl get {backups} redis-cluster-backup -n default -o yaml"),
        ("backup-describe.txt", f"kubectl -n default describe {backups} redis-cluster-backup"),
        ("events.txt", "kubectl -n default get events"),
    ]


BACKUP_ON = ["backup.enabled=true", "backup.methods.elasticsearch=none", "node.cpu=16"]
RAW = "https://raw.githubusercontent.com/kubernetes-csi"


def test_on_k3s_the_csi_hostpath_driver_is_applied_from_these_manifests() -> None:
    step = build_plan(validate(VALUES, None, BACKUP_ON).config, "k3s").step("csi-driver")
    assert (step.needs, step.timeout_s, step.title) == (
        ("snapshot-crds",),
        300,
        "Install the CSI hostpath driver (v1.17.1) with its StorageClass and VolumeSnapshotClass",
    )
    (probe,) = step.skip_when
    assert (str(probe.command), probe.expect_output) == (
        "kubectl get csidriver/hostpath.csi.k8s.io storageclass/csi-hostpath-sc "
        "volumesnapshotclass/csi-hostpath-snapclass -o name",
        True,
    )
    hostpath = f"{RAW}/csi-driver-host-path/v1.17.1"
    assert [str(c) for c in step.commands] == [
        f"kubectl apply -f {RAW}/external-provisioner/v5.2.0/deploy/kubernetes/rbac.yaml",
        f"kubectl apply -f {RAW}/external-attacher/v4.8.0/deploy/kubernetes/rbac.yaml",
        f"kubectl apply -f {RAW}/external-snapshotter/v8.2.0/deploy/kubernetes/csi-snapshotter/"
        "rbac-csi-snapshotter.yaml",
        f"kubectl apply -f {RAW}/external-resizer/v1.13.1/deploy/kubernetes/rbac.yaml",
        f"kubectl apply -f {RAW}/external-health-monitor/v0.14.0/deploy/kubernetes/external-health-monitor-controller/"
        "rbac.yaml",
        f"kubectl apply -f {hostpath}/deploy/kubernetes-1.30/hostpath/csi-hostpath-driverinfo.yaml",
        f"kubectl apply -f {hostpath}/deploy/kubernetes-1.30/hostpath/csi-hostpath-plugin.yaml",
        f"kubectl apply -f {hostpath}/deploy/kubernetes-1.30/hostpath/csi-hostpath-snapshotclass.yaml",
        f"kubectl apply -f {hostpath}/examples/csi-storageclass.yaml",
    ]
    assert [str(w.command(step.timeout_s)) for w in step.done_when] == [
        "kubectl rollout status statefulset/csi-hostpathplugin -n default --timeout=300s"
    ]
    assert diagnostics(step) == [
        ("pods.txt", "kubectl get pods -A -l app.kubernetes.io/instance=hostpath.csi.k8s.io -o wide"),
        ("describe.txt", "kubectl -n default describe statefulset/csi-hostpathplugin"),
        ("logs.txt", "kubectl -n default logs statefulset/csi-hostpathplugin --all-containers --tail=500"),
        ("classes.txt", "kubectl get csidriver,storageclass,volumesnapshotclass -o wide"),
        ("events.txt", "kubectl -n default get events --sort-by=.lastTimestamp"),
    ]


def test_the_backup_repo_is_created_on_the_pvc_provider_or_an_existing_one_awaited() -> None:
    sets = [*BACKUP_ON, "backup.repo.storageClass=slow", "backup.repo.capacityGi=9"]
    created = build_plan(validate(VALUES, None, sets).config, "existing").step("backup-repo")
    assert (created.title, created.needs, created.timeout_s) == (
        "BackupRepo dbstack-backups on the pvc StorageProvider Ready",
        ("kubeblocks",),
        900,
    )
    assert [(str(c), c.stdin) for c in created.commands] == [
        (
            "kubectl apply -f - < values",
            "apiVersion: dataprotection.kubeblocks.io/v1alpha1\nkind: BackupRepo\nmetadata:\n  name: dbstack-backups\n"
            "spec:\n  storageProviderRef: pvc\n  accessMethod: Mount\n  pvReclaimPolicy: Delete\n"
            "  volumeCapacity: 9Gi\n  config:\n    accessMode: ReadWriteOnce\n    volumeMode: Filesystem\n"
            "    storageClassName: slow\n",
        )
    ]
    ready = (
        "kubectl wait backuprepos.dataprotection.kubeblocks.io/{} '--for=jsonpath={{.status.phase}}=Ready' "
        "--timeout=900s"
    )
    assert [str(w.command(900)) for w in created.done_when] == [ready.format("dbstack-backups")]
    assert diagnostics(created) == [
        ("backuprepo.yaml", "kubectl get backuprepos.dataprotection.kubeblocks.io dbstack-backups -o yaml"),
        ("storageproviders.txt", "kubectl get storageproviders.dataprotection.kubeblocks.io -o wide"),
        ("kb-system-events.txt", "kubectl -n kb-system get events --sort-by=.lastTimestamp"),
        (
            "kubeblocks-dataprotection.log",
            "kubectl -n kb-system logs deploy/kubeblocks-dataprotection --all-containers --tail=2000",
        ),
    ]
    existing = validate(VALUES, None, [*BACKUP_ON, "backup.repo.create=false", "backup.repo.name=shared"]).config
    step = build_plan(existing, "existing").step("backup-repo")
    assert (step.title, step.commands) == ("BackupRepo shared (existing) Ready", ())
    assert [str(w.command(900)) for w in step.done_when] == [ready.format("shared")]


def test_on_an_existing_cluster_the_configured_classes_are_checked() -> None:
    step = build_plan(validate(VALUES, None, BACKUP_ON).config, "existing").step("snapshot-support")
    assert (step.title, step.needs, step.timeout_s, step.commands) == (
        "Check StorageClass csi-hostpath-sc and VolumeSnapshotClass csi-hostpath-snapclass can snapshot",
        ("snapshot-crds",),
        180,
        (),
    )
    assert step.snapshot_support == SnapshotSupport(
        "csi-hostpath-sc", "csi-hostpath-snapclass", ("postgresql", "redis")
    )
    assert diagnostics(step) == [("classes.txt", "kubectl get csidriver,storageclass,volumesnapshotclass -o wide")]


def test_with_the_backup_stage_on_teardown_removes_what_it_left_before_the_addons() -> None:
    config = validate(VALUES, None, BACKUP_ON).config
    plan = build_teardown_plan(config, remove_kubeblocks=True)
    clusters = tuple(f"uninstall-cluster:{k}" for k in ("postgresql", "redis", "qdrant", "elasticsearch"))
    cleanups = tuple(f"backup-cleanup:{k}" for k in ("postgresql", "redis", "qdrant"))
    assert [s.id for s in plan.steps][4:7] == list(cleanups)
    redis = plan.step("backup-cleanup:redis")
    assert (redis.title, redis.needs, redis.timeout_s, redis.cleanup, redis.diagnostics) == (
        "Delete the restored redis-cluster-r and Backup redis-cluster-backup, if there",
        (),
        300,
        False,
        (),
    )
    assert [str(c) for c in redis.commands] == [
        "kubectl delete clusters.apps.kubeblocks.io redis-cluster-r -n default --ignore-not-found --wait=false",
        "kubectl delete backups.dataprotection.kubeblocks.io redis-cluster-backup -n default --ignore-not-found "
        "--wait=false",
    ]
    assert [str(w.command(300)) for w in redis.done_when] == [
        "kubectl wait clusters.apps.kubeblocks.io/redis-cluster-r -n default --for=delete --timeout=300s",
        "kubectl wait backups.dataprotection.kubeblocks.io/redis-cluster-backup -n default --for=delete --timeout=300s",
    ]
    assert plan.step("uninstall-addon:redis").needs == clusters + cleanups


def test_kubeblocks_and_each_addon_are_reused_only_at_the_pinned_version_unless_any() -> None:
    plan = build_plan(validate(VALUES).config)
    (kubeblocks,) = plan.step("kubeblocks").skip_when
    assert (str(kubeblocks.command), kubeblocks.expect_output, kubeblocks.contains) == (
        "kubectl -n kb-system get deploy kubeblocks -o json",
        True,
        None,
    )
    assert kubeblocks.installed_version == InstalledVersion(
        "kubeblocks", "KubeBlocks", "1.0.1", ("metadata", "labels", "app.kubernetes.io/version"), False
    )
    (addon,) = plan.step("addon:qdrant").skip_when
    assert (str(addon.command), addon.expect_output, addon.contains) == (
        "helm status kb-addon-qdrant -n kb-system -o json",
        False,
        '"status":"deployed"',
    )
    assert addon.installed_version == InstalledVersion(
        "qdrantAddon", "the qdrant addon", "1.0.1", ("chart", "metadata", "version"), False
    )
    anything = build_plan(validate(VALUES, None, ["kubeblocks.reuseInstalled=any"]).config)
    for step_id in ("kubeblocks", "addon:qdrant"):
        version = anything.step(step_id).skip_when[0].installed_version
        assert version is not None and version.any_version
    (snapshot,) = plan.step("snapshot-controller").skip_when
    assert (snapshot.expect_output, snapshot.reports, snapshot.installed_version) == (True, "pod", None)
