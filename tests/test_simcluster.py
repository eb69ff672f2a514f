"""The simulated cluster answers like a real one and refuses what it does not model."""

from __future__ import annotations

import anyio
import pytest
from dbstack.plan.model import Command
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import Scenario, SimCluster, UnknownCommand, in_virtual_time


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


def test_kubectl_wait_for_create_times_out_with_kubectls_message() -> None:
    sim = SimCluster()
    result = ask(sim, "kubectl", "wait", "crd/clusters.apps.kubeblocks.io", "--for=create", "--timeout=30s")
    assert result.stderr.startswith("error: timed out waiting for the condition on")
    assert sim.calls[0].ended - sim.calls[0].started == pytest.approx(30 + Scenario().latencies.api_s)


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
