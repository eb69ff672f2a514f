"""The simulated cluster answers like a real one and refuses what it does not model."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from dbstack.plan.model import Command
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import Latencies, Scenario, SimCluster, Stuck, UnknownCommand, in_virtual_time


def ask(sim: SimCluster, *argv: str, timeout_s: float = 600) -> CommandResult:
    return in_virtual_time(lambda: sim.run(Command(argv), timeout_s=timeout_s))


def test_unknown_commands_fail_loudly() -> None:
    with pytest.raises(UnknownCommand):
        ask(SimCluster(), "kubectl", "frobnicate", "pods")
    with pytest.raises(UnknownCommand):
        ask(SimCluster(), "kubectl", "get", "pods", "--watch")
    with pytest.raises(UnknownCommand):
        ask(SimCluster(), "sh", "-c", "kubectl get pods")


def test_kubectl_wait_on_a_missing_object_fails_at_once_like_kubectl() -> None:
    wait = (
        "kubectl",
        "wait",
        "clusters.apps.kubeblocks.io/pg",
        "-n",
        "default",
        "--for=jsonpath={.status.phase}=Running",
    )
    result = ask(SimCluster(Scenario(preinstalled=True)), *wait, "--timeout=60s")
    assert result.exit_code == 1
    assert result.stderr == 'Error from server (NotFound): clusters.apps.kubeblocks.io "pg" not found'


def test_kubectl_wait_on_a_kind_whose_crd_is_missing_fails_like_kubectl() -> None:
    result = ask(SimCluster(), "kubectl", "wait", "clusters.apps.kubeblocks.io/pg", "-n", "default", "--for=delete")
    assert (result.exit_code, result.stderr) == (1, 'error: the server doesn\'t have a resource type "clusters"')


def test_kubectl_wait_for_create_times_out_with_kubectls_bare_message() -> None:
    # kubectl pkg/cmd/wait/wait.go RunWait: the --for=create poll's timeout names no object.
    sim = SimCluster()
    result = ask(sim, "kubectl", "wait", "crd/clusters.apps.kubeblocks.io", "--for=create", "--timeout=30s")
    assert (result.exit_code, result.stderr) == (1, "error: timed out waiting for the condition")
    assert sim.calls[0].ended - sim.calls[0].started == pytest.approx(30 + Scenario().latencies.api_s)


def test_a_condition_wait_that_runs_out_names_the_resource_without_its_group() -> None:
    # kubectl pkg/cmd/wait/condition.go extendErrWaitTimeout: "on <mapping.Resource.Resource>/<name>".
    sim = SimCluster(Scenario(preinstalled=True, preinstalled_addons=frozenset({"redis"})))
    wait = ("kubectl", "wait", "deployment/kubeblocks", "-n", "kb-system", "--for=delete", "--timeout=5s")
    result = ask(sim, *wait)
    assert (result.exit_code, result.stderr) == (
        1,
        "error: timed out waiting for the condition on deployments/kubeblocks",
    )


def test_get_of_several_crds_with_some_missing_still_prints_the_found_ones() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    result = ask(sim, "kubectl", "get", "crd", "clusters.apps.kubeblocks.io", "nosuch.example.com")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1].startswith("clusters.apps.kubeblocks.io")
    assert result.stderr == (
        'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "nosuch.example.com" not found\n'
    )


def test_rollout_status_of_a_deployment_past_its_progress_deadline_fails_at_once() -> None:
    sim = SimCluster(Scenario(preinstalled=True, kubeblocks_unhealthy=True))
    result = ask(sim, "kubectl", "rollout", "status", "deployment/kubeblocks", "-n", "kb-system", "--timeout=300s")
    assert (result.exit_code, result.stderr) == (1, 'error: deployment "kubeblocks" exceeded its progress deadline')
    assert result.stdout.startswith('Waiting for deployment "kubeblocks" rollout to finish')
    assert sim.calls[0].ended - sim.calls[0].started == pytest.approx(Scenario().latencies.api_s)


def test_rollout_status_that_runs_out_of_time_says_so_without_a_name() -> None:
    sim = SimCluster(Scenario(preinstalled=True, kubeblocks_unhealthy=True, preinstalled_age_s=0))
    result = ask(sim, "kubectl", "rollout", "status", "deployment/kubeblocks", "-n", "kb-system", "--timeout=30s")
    assert (result.exit_code, result.stderr) == (1, "error: timed out waiting for the condition")


def test_a_redeployed_cluster_keeps_its_old_running_phase_until_its_components_are_up_to_date() -> None:
    lat = Latencies()
    sim = SimCluster(Scenario(preinstalled=True, preinstalled_addons=frozenset({"redis"})))
    seen: dict[str, Any] = {}
    install = Command(
        ("helm", "upgrade", "--install", "redis-cluster", "redis-cluster", "--repo", "r", "--version", "1.0.1"),
        stdin="replicas: 1\n",
    )
    read = Command(("kubectl", "get", "clusters.apps.kubeblocks.io", "redis-cluster", "-o", "json"))

    async def look(label: str) -> None:
        seen[label] = json.loads((await sim.run(read, timeout_s=10)).stdout)

    async def main() -> None:
        await sim.run(install, timeout_s=10)
        await anyio.sleep(lat.cluster_s["redis"] + 1)
        await look("running")
        await sim.run(install, timeout_s=10)
        await anyio.sleep(lat.observe_s)
        await look("observed")
        await anyio.sleep(lat.stale_phase_s)
        await look("up to date")
        await anyio.sleep(lat.cluster_s["redis"])
        await look("running again")

    in_virtual_time(main)
    summary = {
        label: (
            c["metadata"]["generation"],
            c["status"]["observedGeneration"],
            c["status"]["phase"],
            c["status"]["components"]["redis"].get("upToDate"),
        )
        for label, c in seen.items()
    }
    assert summary == {
        "running": (1, 1, "Running", True),
        "observed": (2, 2, "Running", None),  # observedGeneration advanced, the phase is still the old spec's
        "up to date": (2, 2, "Updating", True),
        "running again": (2, 2, "Running", True),
    }


def test_pods_carry_kubeblocks_init_containers_and_the_kbagent_sidecar() -> None:
    sim = SimCluster(Scenario(preinstalled=True, preinstalled_addons=frozenset({"redis"})))
    found: list[dict[str, Any]] = []

    async def main() -> None:
        install = ("helm", "upgrade", "--install", "redis-cluster", "redis-cluster", "--repo", "r", "--version", "1")
        await sim.run(Command(install, stdin="replicas: 1\n"), timeout_s=10)
        await anyio.sleep(Latencies().cluster_s["redis"])
        pods = Command(("kubectl", "get", "pods", "-l", "app.kubernetes.io/instance=redis-cluster", "-o", "json"))
        found.extend(json.loads((await sim.run(pods, timeout_s=10)).stdout)["items"])

    in_virtual_time(main)
    pod = found[0]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["init-kbagent", "kbagent-worker"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["redis", "kbagent"]
    assert {c["state"]["terminated"]["reason"] for c in pod["status"]["initContainerStatuses"]} == {"Completed"}


@pytest.mark.parametrize(
    ("version", "warns"), [("3.13.3", True), ("3.16.4", True), ("3.19.5", False), ("4.0.5", False)]
)
def test_helm_warns_about_a_group_readable_kubeconfig_only_before_3_17(version: str, warns: bool) -> None:
    sim = SimCluster(Scenario(helm_version=version, kubeconfig_mode=0o640))
    result = ask(sim, "helm", "status", "nosuch", "-n", "kb-system")
    warning = (
        "WARNING: Kubernetes configuration file is group-readable. This is insecure. Location: /root/.kube/config\n"
    )
    assert result.stderr == (warning if warns else "") + "Error: release: not found"


def test_uninstall_of_a_missing_release_with_ignore_not_found_still_says_uninstalled() -> None:
    # cmd/helm/uninstall.go prints the line whatever the action found.
    result = ask(SimCluster(), "helm", "uninstall", "nosuch", "-n", "default", "--ignore-not-found")
    assert (result.exit_code, result.stdout) == (0, 'release "nosuch" uninstalled\n')


def test_helm_history_lists_revisions_oldest_first_with_their_start_times() -> None:
    stuck = {"kb-addon-redis": Stuck("kb-system", "redis", "pending-upgrade", age_s=600)}
    sim = SimCluster(Scenario(stuck=stuck), epoch=1_800_000_000)
    result = ask(sim, "helm", "history", "kb-addon-redis", "-n", "kb-system", "-o", "json")
    history = json.loads(result.stdout)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "deployed"), (2, "pending-upgrade")]
    assert history[1]["updated"] == "2027-01-15T07:50:00.000000000Z"  # 1_800_000_000 - 600 s, in UTC


def test_a_runner_timeout_shorter_than_the_wait_is_reported_as_timed_out() -> None:
    result = ask(SimCluster(), "kubectl", "wait", "crd/x", "--for=create", "--timeout=300s", timeout_s=10)
    assert result.timed_out


def test_an_addon_goes_from_enabling_to_enabled_once_its_definitions_are_available() -> None:
    sim = SimCluster(Scenario(preinstalled=True))
    phases: list[str] = []

    async def main() -> None:
        install = Command(("helm", "upgrade", "--install", "kb-addon-redis", "redis", "--repo", "r", "--version", "1"))
        addon = Command(("kubectl", "get", "addons.extensions.kubeblocks.io", "redis", "-o", "yaml"))
        phases.append((await sim.run(addon, timeout_s=10)).stdout)
        await sim.run(install, timeout_s=10)
        phases.append((await sim.run(addon, timeout_s=10)).stdout)
        await anyio.sleep(Scenario().latencies.addon_s["redis"])
        phases.append((await sim.run(addon, timeout_s=10)).stdout)

    in_virtual_time(main)
    assert [next(line for line in p.splitlines() if "phase:" in line).strip() for p in phases] == [
        "phase: Disabled",
        "phase: Enabling",
        "phase: Enabled",
    ]


def test_kubeblocks_installed_without_default_addons_registers_no_addon() -> None:
    """`--set autoInstalledAddons={}` renders no Addon objects (tests/test_upstream_render.py shows it)."""
    sim = SimCluster(Scenario())
    answers: list[CommandResult] = []

    async def main() -> None:
        crds = Command(("kubectl", "apply", "--server-side", "-f", "https://x/kubeblocks_crds.yaml"))
        await sim.run(crds, timeout_s=10)
        await anyio.sleep(60)
        install = ("helm", "upgrade", "--install", "kubeblocks", "kubeblocks", "--repo", "r", "--version", "1.0.1")
        await sim.run(Command((*install, "-n", "kb-system")), timeout_s=10)
        addon = Command(("kubectl", "get", "addons.extensions.kubeblocks.io", "redis", "-o", "yaml"))
        answers.append(await sim.run(addon, timeout_s=10))
        deploy = Command(("kubectl", "-n", "kb-system", "get", "deploy", "kubeblocks", "-o", "json"))
        answers.append(await sim.run(deploy, timeout_s=10))

    in_virtual_time(main)
    assert answers[0].stderr == 'Error from server (NotFound): addons.extensions.kubeblocks.io "redis" not found'
    assert json.loads(answers[1].stdout)["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.1"


def test_pods_are_selected_by_their_labels_across_namespaces() -> None:
    sim = SimCluster(Scenario(preinstalled=True, snapshot_controller_namespace="storage"))
    selector = "app.kubernetes.io/name=snapshot-controller"
    jsonpath = 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\\n"}{end}'
    found = ask(sim, "kubectl", "get", "pods", "-A", "-l", selector, "-o", jsonpath)
    assert found.stdout.splitlines() == [
        "storage/snapshot-controller-6d4f8b7c9-x0",
        "storage/snapshot-controller-6d4f8b7c9-x1",
    ]
    deployments = ask(
        SimCluster(Scenario(preinstalled=True)), "kubectl", "get", "deploy", "-A", "-l", selector, "-o", "name"
    )
    assert deployments.stdout == ""  # the upstream Deployment itself carries no labels
    nothing = ask(
        SimCluster(), "kubectl", "wait", "pods", "-A", "-l", selector, "--for=condition=Ready", "--timeout=5s"
    )
    assert (nothing.exit_code, nothing.stderr) == (1, "error: no matching resources found")
