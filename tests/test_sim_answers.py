"""What the simulated cluster answers, word for word: the texts, exit codes and phases the orchestrator reads."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
import pytest
from dbstack.plan.model import Command, Step, StepKind
from dbstack.run.runner import CommandResult
from dbstack.sim.backups import BackupScenario
from dbstack.sim.cluster import Failure, Outage, Scenario, SimCluster, Stuck, UnknownCommand, in_virtual_time

HOSTPATH = (
    "https://raw.githubusercontent.com/kubernetes-csi/csi-driver-host-path/v1.17.1/deploy/kubernetes-1.30/hostpath"
)
BACKUPS = "backups.dataprotection.kubeblocks.io"
PG_INSTALL = Command(
    ("helm", "upgrade", "--install", "pg", "postgresql-cluster", "--repo", "r", "--version", "1.0.1", "-n", "default"),
    stdin="replicas: 1\n",
)
A_BACKUP = (
    "apiVersion: dataprotection.kubeblocks.io/v1alpha1\nkind: Backup\nmetadata:\n  name: b1\n"
    "spec:\n  backupPolicyName: nopol\n  backupMethod: volume-snapshot\n"
)


def ask(sim: SimCluster, *argv: str, stdin: str | None = None) -> CommandResult:
    return in_virtual_time(lambda: sim.run(Command(argv, stdin=stdin), timeout_s=600))


def session(sim: SimCluster, *steps: Command | tuple[str, ...] | float) -> list[CommandResult]:
    """Commands one after another on one virtual clock; a number sleeps that many seconds."""
    results: list[CommandResult] = []

    async def main() -> None:
        for step in steps:
            if isinstance(step, float | int):
                await anyio.sleep(step)
            else:
                command = step if isinstance(step, Command) else Command(step)
                results.append(await sim.run(command, timeout_s=600))

    in_virtual_time(main)
    return results


def unknown(call: Callable[[], object]) -> str:
    with pytest.raises(UnknownCommand) as caught:
        call()
    return str(caught.value)


def preinstalled_redis() -> SimCluster:
    return SimCluster(
        Scenario(preinstalled=True, preinstalled_addons=frozenset({"redis"}), addon_versions={"redis": "1.0.2"})
    )


# --- kubectl and helm on a preinstalled KubeBlocks ------------------------------------------------------------


def test_preinstalled_releases_show_their_charts_and_versions_in_helms_compact_json() -> None:
    sim = preinstalled_redis()
    addon = ask(sim, "helm", "history", "kb-addon-redis", "-n", "kb-system", "-o", "json")
    kubeblocks = ask(sim, "helm", "history", "kubeblocks", "-n", "kb-system", "-o", "json")
    assert addon.stdout == (
        '[{"revision":1,"updated":"1969-12-31T23:00:00.000000000Z","status":"deployed","chart":"redis-1.0.2",'
        '"app_version":"1.0.2","description":"Install complete"}]\n'
    )
    assert kubeblocks.stdout == (
        '[{"revision":1,"updated":"1969-12-31T23:00:00.000000000Z","status":"deployed","chart":"kubeblocks-1.0.1",'
        '"app_version":"1.0.1","description":"Install complete"}]\n'
    )


def test_the_long_flag_names_mean_the_short_ones() -> None:
    result = ask(
        preinstalled_redis(),
        "kubectl",
        "get",
        "pods",
        "--namespace",
        "kb-system",
        "--selector",
        "app.kubernetes.io/instance=kubeblocks",
        "--output",
        "wide",
    )
    assert result == CommandResult(
        0,
        "NAMESPACE\tNAME\tSTATUS\nkb-system\tkubeblocks-6d4f8b7c9-x0\tRunning\n"
        "kb-system\tkubeblocks-dataprotection-6d4f8b7c9-x0\tRunning\n",
        "",
    )


def test_a_deployments_pod_is_scheduled_on_the_k3s_node() -> None:
    result = ask(
        preinstalled_redis(),
        "kubectl",
        "get",
        "pods",
        "-n",
        "kb-system",
        "-l",
        "app.kubernetes.io/instance=kubeblocks",
        "-o",
        "json",
    )
    specs = [pod["spec"] for pod in json.loads(result.stdout)["items"]]
    assert specs == [
        {"containers": [{"name": "kubeblocks"}], "nodeName": "k3s-server"},
        {"containers": [{"name": "kubeblocks-dataprotection"}], "nodeName": "k3s-server"},
    ]


def test_unknown_flags_verbs_and_kinds_are_refused_by_name_and_recorded() -> None:
    sim = preinstalled_redis()
    assert unknown(lambda: ask(sim, "kubectl", "get", "pods", "--frobnicate")) == (
        "flag --frobnicate in ('get', 'pods', '--frobnicate')"
    )
    assert unknown(lambda: ask(sim, "kubectl", "frobnicate", "pods")) == "kubectl frobnicate pods"
    assert unknown(lambda: ask(sim, "kubectl", "describe", "crd", "x")) == "kubectl describe crd x"
    assert unknown(lambda: ask(sim, "kubectl", "get", "pods", "-l", "a=b")) == "kubectl get pods -o "
    assert sim.unknown == [
        "kubectl get pods --frobnicate: flag --frobnicate in ('get', 'pods', '--frobnicate')",
        "kubectl frobnicate pods: kubectl frobnicate pods",
        "kubectl describe crd x: kubectl describe crd x",
        "kubectl get pods -l a=b: kubectl get pods -o ",
    ]


def test_describe_node_reports_the_k3s_nodes_allocation() -> None:
    assert ask(preinstalled_redis(), "kubectl", "describe", "nodes").stdout == (
        "Name:               k3s-server\nAllocatable:\n  cpu:                4\n  memory:             16Gi\n"
        "Allocated resources:\n  Resource           Requests      Limits\n  cpu                3950m (98%)   "
        "5 (125%)\n  memory             6Gi (37%)     8Gi (50%)\n"
    )


def test_addon_deployment_and_logs_read_like_kubectl() -> None:
    sim = preinstalled_redis()
    addon = ask(sim, "kubectl", "get", "addons.extensions.kubeblocks.io", "redis", "-o", "yaml")
    assert addon.stdout == (
        "apiVersion: extensions.kubeblocks.io/v1alpha1\nkind: Addon\nmetadata:\n  name: redis\nspec:\n  install:\n"
        "    enabled: false\nstatus:\n  phase: Enabled\n"
    )
    deployment = json.loads(
        ask(sim, "kubectl", "get", "deployment", "kubeblocks", "-n", "kb-system", "-o", "json").stdout
    )
    assert deployment["spec"] == {"replicas": 1}
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.1"
    assert ask(sim, "kubectl", "logs", "deploy/kubeblocks", "-n", "kb-system") == CommandResult(
        0, "kubeblocks INFO reconcile done\n", ""
    )


def test_get_of_several_present_crds_prints_one_row_each() -> None:
    result = ask(
        preinstalled_redis(),
        "kubectl",
        "get",
        "crd",
        "clusters.apps.kubeblocks.io",
        "componentversions.apps.kubeblocks.io",
    )
    assert result == CommandResult(
        0,
        "NAME\tCREATED AT\nclusters.apps.kubeblocks.io\t2026-01-01T00:00:00Z\n"
        "componentversions.apps.kubeblocks.io\t2026-01-01T00:00:00Z\n",
        "",
    )


def test_rollback_and_a_waited_uninstall_answer_like_helm() -> None:
    sim = preinstalled_redis()
    assert ask(sim, "helm", "rollback", "kb-addon-redis", "1", "-n", "kb-system") == CommandResult(
        0, "Rollback was a success! Happy Helming!\n", ""
    )
    assert ask(sim, "helm", "uninstall", "kb-addon-redis", "-n", "kb-system", "--wait") == CommandResult(
        0, 'release "kb-addon-redis" uninstalled\n', ""
    )


def test_a_minute_timeout_is_sixty_seconds() -> None:
    sim = preinstalled_redis()
    wait = ("kubectl", "wait", "deployment/kubeblocks", "-n", "kb-system", "--for=delete", "--timeout=1m")
    (result,) = session(sim, wait)
    assert result.exit_code == 1
    assert sim.calls[0].ended == pytest.approx(60.2)


def test_deleting_the_snapshot_controller_and_the_kubeblocks_crds_by_their_manifests() -> None:
    sim = preinstalled_redis()
    controller = session(
        sim,
        (
            "kubectl",
            "delete",
            "-f",
            "https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/v8.2.0/deploy/kubernetes/"
            "snapshot-controller/setup-snapshot-controller.yaml",
        ),
        ("kubectl", "get", "deployment", "snapshot-controller", "-n", "kube-system", "-o", "name"),
        10.0,
        ("kubectl", "get", "deployment", "snapshot-controller", "-n", "kube-system", "-o", "name"),
    )
    assert [(r.exit_code, r.stdout) for r in controller] == [
        (0, 'deployment.apps "snapshot-controller" deleted\n'),
        (0, "deployment.apps/snapshot-controller\n"),
        (1, ""),
    ]
    crds = ask(
        sim,
        "kubectl",
        "delete",
        "-f",
        "https://github.com/apecloud/kubeblocks/releases/download/v1.0.1/kubeblocks_crds.yaml",
    )
    assert crds.stdout.splitlines()[0] == (
        'customresourcedefinition.apiextensions.k8s.io "clusters.apps.kubeblocks.io" deleted'
    )


def test_installs_before_their_crds_fail_with_helms_no_matches_error() -> None:
    sim = SimCluster()
    kubeblocks = ask(
        sim,
        "helm",
        "upgrade",
        "--install",
        "kubeblocks",
        "kubeblocks",
        "-n",
        "kb-system",
        "--repo",
        "r",
        "--version",
        "1.0.1",
    )
    assert kubeblocks == CommandResult(
        1,
        "",
        'Error: unable to build kubernetes objects from release manifest: resource mapping not found for name: "pvc" '
        'namespace: "" from "": no matches for kind "StorageProvider" in version '
        '"dataprotection.kubeblocks.io/v1alpha1"\nensure CRDs are installed first',
    )
    cluster = ask(sim, *PG_INSTALL.argv, stdin=PG_INSTALL.stdin)
    assert cluster.stderr == (
        'Error: unable to build kubernetes objects from release manifest: resource mapping not found for name: "pg" '
        'namespace: "default" from "": no matches for kind "Cluster" in version "apps.kubeblocks.io/v1"'
        "\nensure CRDs are installed first"
    )


@pytest.mark.parametrize(
    ("outage", "helm", "kubectl"),
    [
        (
            Outage.TIMEOUT,
            "Error: query: failed to query with labels: the server was unable to return a response in the time "
            "allotted, but may still be processing the request (get secrets)",
            "Error from server (Timeout): the server was unable to return a response in the time allotted, but may "
            "still be processing the request (get deployments.apps kubeblocks)",
        ),
        (
            Outage.UNAVAILABLE,
            "Error: Kubernetes cluster unreachable: the server is currently unable to handle the request",
            "Error from server (ServiceUnavailable): the server is currently unable to handle the request "
            "(get deployments.apps kubeblocks)",
        ),
    ],
)
def test_an_api_outage_answers_helm_and_kubectl_in_their_words(outage: Outage, helm: str, kubectl: str) -> None:
    sim = SimCluster(Scenario(preinstalled=True, api_outage=(0, 100), outage=outage))
    assert ask(sim, "helm", "list", "-n", "kb-system") == CommandResult(1, "", helm)
    assert ask(sim, "kubectl", "get", "deployment", "kubeblocks", "-n", "kb-system") == CommandResult(1, "", kubectl)


def test_a_command_past_its_timeout_ends_with_the_runners_timeout_exit() -> None:
    sim = preinstalled_redis()
    wait = Command(("kubectl", "wait", "deployment/nosuch", "-n", "kb-system", "--for=create", "--timeout=60s"))
    result = in_virtual_time(lambda: sim.run(wait, timeout_s=5))
    assert result == CommandResult(124, "", "simulated runner timeout after 5 s", True)


def test_call_times_count_from_the_first_command() -> None:
    sim = preinstalled_redis()
    session(sim, 50.0, ("kubectl", "get", "deployment", "kubeblocks", "-n", "kb-system", "-o", "name"))
    assert sim.calls[0].started == 0.0
    assert sim.calls[0].ended == pytest.approx(0.2)


# --- a Cluster and its pods ------------------------------------------------------------------------------------


def test_a_crashlooping_cluster_shows_its_pods_events_and_backup_policy() -> None:
    sim = SimCluster(
        Scenario(
            preinstalled=True,
            preinstalled_addons=frozenset({"postgresql"}),
            failures={"postgresql": Failure.CRASHLOOP},
        )
    )
    pods = ("kubectl", "get", "pods", "-l", "app.kubernetes.io/instance=pg")
    policy = (
        "kubectl",
        "get",
        "backuppolicies.dataprotection.kubeblocks.io",
        "pg-postgresql-backup-policy",
        "-n",
        "default",
        "-o",
        "json",
    )
    results = session(
        sim,
        PG_INSTALL,
        600.0,
        (*pods, "-o", "json"),
        (*pods, "-o", "wide"),
        ("kubectl", "get", "events", "-n", "default"),
        policy,
        ("kubectl", "delete", "clusters.apps.kubeblocks.io", "pg", "-n", "default"),
    )
    listed, wide, events, backup_policy, deleted = results[1:]
    assert [p["metadata"]["namespace"] for p in json.loads(listed.stdout)["items"]] == ["default", "default"]
    assert (
        wide.stdout == "NAMESPACE\tNAME\tSTATUS\ndefault\tpg-postgresql-0\tRunning\ndefault\tpg-postgresql-1\tRunning\n"
    )
    assert events.stdout == (
        "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE\n"
        "5s\tWarning\tBackOff\tpod/pg-postgresql-0\tback-off 10s restarting failed container=postgresql "
        "pod=pg-postgresql-0\n"
        "5s\tWarning\tBackOff\tpod/pg-postgresql-1\tback-off 10s restarting failed container=postgresql "
        "pod=pg-postgresql-1\n"
    )
    assert json.loads(backup_policy.stdout) == {
        "apiVersion": "dataprotection.kubeblocks.io/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": {"name": "pg-postgresql-backup-policy", "namespace": "default"},
        "spec": {"target": {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "pg"}}}},
        "status": {"phase": "Available"},
    }
    assert deleted == CommandResult(0, 'cluster.apps.kubeblocks.io "pg" deleted\n', "")


def test_a_healthy_pods_kbagent_sidecar_is_running() -> None:
    sim = SimCluster(Scenario(preinstalled=True, preinstalled_addons=frozenset({"postgresql"})))
    pods = ("kubectl", "get", "pods", "-l", "app.kubernetes.io/instance=pg", "-o", "json")
    listed = session(sim, PG_INSTALL, 600.0, pods)[1]
    statuses = json.loads(listed.stdout)["items"][0]["status"]["containerStatuses"]
    assert statuses[1] == {"name": "kbagent", "ready": True, "restartCount": 0, "state": {"running": {}}}


def test_an_uninstalled_addon_leaves_no_definition_or_componentversion_behind() -> None:
    sim = SimCluster(Scenario(preinstalled=True, preinstalled_addons=frozenset({"postgresql"})))
    table = ("kubectl", "get", "clusterdefinition,componentdefinition,componentversion")
    results = session(
        sim,
        (
            "helm",
            "upgrade",
            "--install",
            "kb-addon-redis",
            "redis",
            "--repo",
            "r",
            "--version",
            "1.0.1",
            "-n",
            "kb-system",
        ),
        table,
        ("helm", "uninstall", "kb-addon-redis", "-n", "kb-system", "--wait"),
        table,
    )
    assert results[1].stdout == (
        "NAME\tSTATUS\nclusterdefinition/postgresql\tAvailable\nclusterdefinition/redis\tUnavailable\n"
        "componentdefinition/postgresql\tAvailable\ncomponentdefinition/redis\tUnavailable\n"
        "componentversion/postgresql\tAvailable\ncomponentversion/redis\tUnavailable\n"
    )
    assert results[3].stdout == (
        "NAME\tSTATUS\nclusterdefinition/postgresql\tAvailable\ncomponentdefinition/postgresql\tAvailable\n"
        "componentversion/postgresql\tAvailable\n"
    )


def test_an_install_over_objects_another_release_owns_names_the_namespaced_cluster() -> None:
    sim = SimCluster(
        Scenario(preinstalled=True, preinstalled_addons=frozenset({"postgresql"}), owned_by={"pg": "other"})
    )
    assert ask(sim, *PG_INSTALL.argv, stdin=PG_INSTALL.stdin).stderr == (
        'Error: Unable to continue with install: Cluster "pg" in namespace "default" exists and cannot be imported '
        "into the current release: invalid ownership metadata; annotation validation error: key "
        '"meta.helm.sh/release-name" must equal "pg": current value is "other"'
    )


def test_reinstalling_the_installed_kubeblocks_version_leaves_it_rolled_out() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    install = (
        "helm",
        "upgrade",
        "--install",
        "kubeblocks",
        "kubeblocks",
        "-n",
        "kb-system",
        "--repo",
        "r",
        "--version",
        "1.0.1",
    )
    rollout = ("kubectl", "rollout", "status", "deployment/kubeblocks", "-n", "kb-system", "--timeout=300s")
    results = session(sim, install, rollout)
    assert results[1] == CommandResult(0, 'deployment "kubeblocks" successfully rolled out\n', "")
    assert sim.calls[1].ended == pytest.approx(3.2)


def test_a_stuck_kubeblocks_release_left_the_1_0_1_deployments() -> None:
    sim = SimCluster(Scenario(stuck={"kubeblocks": Stuck("kb-system", "kubeblocks")}))
    deployment = json.loads(
        ask(sim, "kubectl", "get", "deployment", "kubeblocks", "-n", "kb-system", "-o", "json").stdout
    )
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.1"
    assert deployment["metadata"]["labels"]["helm.sh/chart"] == "kubeblocks-1.0.1"


def test_a_stuck_cluster_release_left_the_pods_its_render_names() -> None:
    sim = SimCluster(Scenario(stuck={"pg": Stuck("default", "postgresql-cluster")}))
    assert ask(sim, "kubectl", "get", "pods", "-l", "app.kubernetes.io/instance=pg", "-o", "wide").stdout == (
        "NAMESPACE\tNAME\tSTATUS\ndefault\tpg-postgresql-0\tRunning\ndefault\tpg-postgresql-1\tRunning\n"
    )


# --- the backup stage's objects --------------------------------------------------------------------------------


def test_the_snapshot_class_before_its_crd_fails_like_kubectl_apply() -> None:
    assert ask(SimCluster(), "kubectl", "apply", "-f", f"{HOSTPATH}/csi-hostpath-snapshotclass.yaml") == CommandResult(
        1,
        "",
        'error: resource mapping not found for name: "csi-hostpath-snapclass" namespace: "" from "STDIN": no matches '
        'for kind "VolumeSnapshotClass" in version "snapshot.storage.k8s.io/v1"\nensure CRDs are installed first',
    )


def test_the_hostpath_plugin_rolls_out_and_runs_on_the_node() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    rollout = ("kubectl", "rollout", "status", "statefulset/csi-hostpathplugin", "-n", "default")
    missing = ask(sim, *rollout)
    assert missing == CommandResult(
        1, "", 'Error from server (NotFound): statefulsets.apps "csi-hostpathplugin" not found'
    )
    pods = (
        "kubectl",
        "get",
        "pods",
        "-n",
        "default",
        "-l",
        "app.kubernetes.io/instance=hostpath.csi.k8s.io",
        "-o",
        "json",
    )
    results = session(sim, ("kubectl", "apply", "-f", f"{HOSTPATH}/csi-hostpath-plugin.yaml"), rollout, pods)
    assert results[1] == CommandResult(
        0,
        "Waiting for 1 pods to be ready...\n"
        "statefulset rolling update complete 1 pods at revision csi-hostpathplugin-6b7f8d9c4d...\n",
        "",
    )
    assert json.loads(results[2].stdout)["items"][0]["spec"] == {
        "containers": [{"name": "hostpath"}],
        "nodeName": "k3s-server",
    }


def test_a_backup_of_a_missing_policy_reads_back_in_the_default_namespace() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    assert ask(sim, "kubectl", "create", "-f", "-", stdin=A_BACKUP) == CommandResult(
        0, "backup.dataprotection.kubeblocks.io/b1 created\n", ""
    )
    assert json.loads(ask(sim, "kubectl", "get", BACKUPS, "b1", "-o", "json").stdout) == {
        "apiVersion": "dataprotection.kubeblocks.io/v1alpha1",
        "kind": "Backup",
        "metadata": {"name": "b1", "namespace": "default"},
        "spec": {"backupPolicyName": "nopol", "backupMethod": "volume-snapshot", "deletionPolicy": "Delete"},
        "status": {"phase": "Running", "backupMethod": {"name": "volume-snapshot"}},
    }
    assert ask(sim, "kubectl", "get", "jobs,pods", "-n", "default", "-o", "wide").stdout == (
        "NAME\tDETAIL\njob/dp-backup-0-b1\npod/dp-backup-0-b1\n"
    )
    assert ask(sim, "kubectl", "describe", f"{BACKUPS}/b1").stdout == "Name:         b1\nNamespace:    default\n"
    assert ask(sim, "kubectl", "describe", BACKUPS, "b1", "-n", "ns1").stdout == "Name:         b1\nNamespace:    ns1\n"
    assert ask(sim, "kubectl", "get", BACKUPS, "b2", "-n", "default", "-o", "json") == CommandResult(
        1, "", 'Error from server (NotFound): backups.dataprotection.kubeblocks.io "b2" not found'
    )
    assert ask(sim, "kubectl", "delete", BACKUPS, "b1", "-n", "default") == CommandResult(
        0, 'backup.dataprotection.kubeblocks.io "b1" deleted\n', ""
    )


def test_a_backup_whose_policy_is_missing_fails_one_api_round_trip_after_its_creation() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    phase = Command(("kubectl", "get", f"{BACKUPS}/b1", "-n", "default", "-o", "jsonpath={.status.phase}"))
    seen: list[str] = []

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: sim.run(Command(("kubectl", "create", "-f", "-"), stdin=A_BACKUP), timeout_s=60))
            await anyio.sleep(0.1)  # created at 0.2; the read below is answered at 0.3
            seen.append((await sim.run(phase, timeout_s=60)).stdout)
        await anyio.sleep(1)
        seen.append((await sim.run(phase, timeout_s=60)).stdout)

    in_virtual_time(main)
    assert seen == ["Running", "Failed"]


def test_a_wait_for_a_backups_creation_ends_the_moment_it_is_created() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    wait = Command(("kubectl", "wait", f"{BACKUPS}/b1", "-n", "default", "--for=create", "--timeout=30s"))

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: sim.run(wait, timeout_s=60))
            await anyio.sleep(0.1)
            await sim.run(Command(("kubectl", "create", "-f", "-"), stdin=A_BACKUP), timeout_s=60)

    in_virtual_time(main)
    assert [(c.argv[1], c.exit_code) for c in sim.calls] == [("create", 0), ("wait", 0)]
    assert [c.ended for c in sim.calls] == pytest.approx([0.3, 0.3])


def test_backup_listings_and_classes_read_like_kubectl() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    restores = ask(
        sim, "kubectl", "get", "restores.dataprotection.kubeblocks.io", "-n", "default", "-l", "a=b", "-o", "json"
    )
    assert restores.stdout == '{"apiVersion": "v1", "kind": "List", "items": []}'
    snapshots = ask(sim, "kubectl", "get", "volumesnapshots", "-n", "default", "-o", "yaml")
    assert snapshots.stdout == "apiVersion: v1\nitems: []\nkind: List\n"
    assert ask(sim, "kubectl", "get", "storageclass", "-o", "wide").stdout == (
        "NAME\tDETAIL\nstorageclass.storage.k8s.io/local-path\trancher.io/local-path\n"
    )
    assert json.loads(ask(sim, "kubectl", "get", "storageclass", "local-path", "-o", "json").stdout) == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "local-path"},
        "provisioner": "rancher.io/local-path",
        "reclaimPolicy": "Delete",
    }


def test_backup_commands_it_does_not_model_are_refused_by_name() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    ask(sim, "kubectl", "create", "-f", "-", stdin=A_BACKUP)
    assert unknown(lambda: ask(sim, "kubectl", "delete", "backuprepos.dataprotection.kubeblocks.io", "r1")) == (
        "kubectl delete backuprepo"
    )
    assert unknown(lambda: ask(sim, "kubectl", "wait", f"{BACKUPS}/b1")) == "wait condition  on backup"
    assert unknown(lambda: ask(sim, "kubectl", "get", "restores.dataprotection.kubeblocks.io", "-o", "yaml")) == (
        "kubectl get restores.dataprotection.kubeblocks.io -o yaml (backups)"
    )


# --- how long the plan's steps take on the simulator (benchmarks/orchestration.py's critical path) --------------


def a_step(kind: StepKind, commands: int, database: str | None = None) -> Step:
    return Step(
        id=f"{kind}-{database}",
        title="a step",
        kind=kind,
        needs=(),
        commands=tuple(Command(("kubectl", "apply", "-f", f"m{i}.yaml")) for i in range(commands)),
        done_when=(),
        timeout_s=600,
        database=database,
    )


def test_backup_stage_steps_take_their_commands_plus_what_they_wait_for() -> None:
    scenario = Scenario()
    assert scenario.step_latency_s(a_step(StepKind.CSI_DRIVER, 9)) == pytest.approx(9 * 0.2 + 30.0)
    assert scenario.step_latency_s(a_step(StepKind.SNAPSHOT_SUPPORT, 1)) == pytest.approx(0.6)
    assert scenario.step_latency_s(a_step(StepKind.BACKUP_REPO, 1)) == pytest.approx(10.2)


def test_an_upgrade_takes_an_addon_steps_fresh_install_time_and_a_clusters_rolling_restart() -> None:
    scenario = Scenario()
    assert scenario.upgrade_latency_s(a_step(StepKind.ADDON, 1, "redis")) == pytest.approx(3.0 + 60.0)
    assert scenario.upgrade_latency_s(a_step(StepKind.CLUSTER, 1, "redis")) == pytest.approx(3.0 + 1.0 + 10.0 + 60.0)
    assert scenario.upgrade_latency_s(a_step(StepKind.CLUSTER, 0, "redis")) == 0.0


def test_a_restore_from_a_missing_backup_is_refused_naming_that_backup() -> None:
    restored = (
        "apiVersion: apps.kubeblocks.io/v1\nkind: Cluster\nmetadata:\n  name: pg-restored\n  namespace: default\n"
        "  annotations:\n    kubeblocks.io/restore-from-backup: "
        '\'{"postgresql": {"name": "nob", "namespace": "default"}}\'\nspec: {}\n'
    )
    result = ask(SimCluster(Scenario(preinstalled=True)), "kubectl", "create", "-f", "-", stdin=restored)
    assert result == CommandResult(1, "", 'Error from server: backups.dataprotection.kubeblocks.io "nob" not found')


def test_a_backup_read_it_does_not_model_is_refused_with_the_whole_command() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    assert unknown(lambda: ask(sim, "kubectl", "get", "storageclass", "local-path", "-o", "custom")) == (
        "kubectl get storageclass local-path -o custom (backups)"
    )


def test_a_snapshot_backup_restores_into_a_cluster_whose_pods_come_after_its_creation() -> None:
    sim = SimCluster(
        Scenario(
            preinstalled=True,
            preinstalled_addons=frozenset({"postgresql"}),
            backup=BackupScenario(hostpath_installed=True),
        )
    )
    restored = (
        "apiVersion: apps.kubeblocks.io/v1\nkind: Cluster\nmetadata:\n  name: pgr\n  namespace: default\n"
        "  annotations:\n    kubeblocks.io/restore-from-backup: "
        '\'{"postgresql": {"name": "b1", "namespace": "default"}}\'\nspec: {}\n'
    )
    pods = ("kubectl", "get", "pods", "-l", "app.kubernetes.io/instance=pgr", "-o", "wide")
    results = session(
        sim,
        Command(PG_INSTALL.argv, stdin="replicas: 2\nstorageClassName: csi-hostpath-sc\n"),
        600.0,
        Command(("kubectl", "create", "-f", "-"), stdin=A_BACKUP.replace("nopol", "pg-postgresql-backup-policy")),
        100.0,
        ("kubectl", "get", "volumesnapshots", "-n", "default", "-o", "yaml"),
        Command(("kubectl", "create", "-f", "-"), stdin=restored),
        pods,
        6.0,
        pods,
        ("kubectl", "get", "components.apps.kubeblocks.io", "pgr-postgresql", "-n", "default", "-o", "json"),
        ("kubectl", "get", "clusters.apps.kubeblocks.io", "pgr", "-n", "default", "-o", "json"),
    )
    snapshots, created, before, after, component, cluster = results[2:]
    assert json.loads(cluster.stdout)["spec"] == {
        "terminationPolicy": "Delete",
        "componentSpecs": [{"name": "postgresql", "replicas": 2}],
    }
    assert snapshots.stdout == (
        "apiVersion: v1\nitems:\n- apiVersion: snapshot.storage.k8s.io/v1\n  kind: VolumeSnapshot\n  metadata:\n"
        "    name: b1-0\n    namespace: default\n  status:\n    readyToUse: true\nkind: List\n"
    )
    assert created == CommandResult(0, "cluster.apps.kubeblocks.io/pgr created\n", "")
    assert before.stdout == "NAMESPACE\tNAME\tSTATUS\n"
    assert (
        after.stdout
        == "NAMESPACE\tNAME\tSTATUS\ndefault\tpgr-postgresql-0\tRunning\ndefault\tpgr-postgresql-1\tRunning\n"
    )
    assert json.loads(component.stdout) == {
        "apiVersion": "apps.kubeblocks.io/v1",
        "kind": "Component",
        "metadata": {"name": "pgr-postgresql", "namespace": "default", "annotations": {}},
    }


def test_helm_4_names_each_addon_object_left_terminating_by_its_kind() -> None:
    # Helm 4 pkg/kube/statuswait.go waitForDelete prints the object's Kind as the API spells it.
    sim = SimCluster(
        Scenario(
            preinstalled=True,
            preinstalled_addons=frozenset({"redis"}),
            helm_version="4.0.0",
            stuck_deletion=frozenset({"kb-addon-redis"}),
        )
    )
    assert ask(sim, "helm", "uninstall", "kb-addon-redis", "-n", "kb-system", "--wait", "--timeout=10s") == (
        CommandResult(
            1,
            "",
            "Error: uninstallation completed with 1 error(s): "
            "resource still exists, name: redis, kind: ClusterDefinition, status: Terminating\n"
            "resource still exists, name: redis, kind: ComponentVersion, status: Terminating\n"
            "resource still exists, name: redis, kind: ComponentDefinition, status: Terminating\n"
            "context deadline exceeded",
        )
    )
