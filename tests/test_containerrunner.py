"""The Dagger container runner, over a fake container that records each exec and answers from the simulated
cluster: the real orchestrator must send exactly the plan's commands, in the plan's order, each uncached."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagger
import pytest
import trio
import trio.testing
from dagger import ReturnType
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Command, Plan, helm, kubectl
from dbstack.run.containerrunner import ENGINE_FAILURE_EXIT, NONCE_VARIABLE, ContainerRunner, timed_argv
from dbstack.run.orchestrator import run_plan
from dbstack.run.results import Outcome, RunResults
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import SimCluster, in_virtual_time
from fake_toolbox import Answer, Exec, FakeToolbox, query_error, scripted, simulated


def deploy_over_fake(
    plan: Plan, out_dir: Path, spans: list[str] | None = None
) -> tuple[FakeToolbox, SimCluster, RunResults]:
    sim = SimCluster()
    toolbox = FakeToolbox(simulated(sim))

    @contextmanager
    def span(name: str) -> Iterator[None]:
        if spans is not None:
            spans.append(name)
        yield

    runner = ContainerRunner(toolbox, span=span, clock=trio.current_time)

    async def main() -> RunResults:
        return await run_plan(plan, runner, out_dir, cluster_kind="k3s", clock=trio.current_time)

    return toolbox, sim, in_virtual_time(main)


VALUES = Path(__file__).resolve().parents[1] / "values"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(VALUES))


@pytest.fixture(scope="module")
def deployed(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeToolbox, SimCluster, RunResults]:
    """One simulated deploy through the container runner, shared by the tests that read what it sent."""
    return deploy_over_fake(plan, tmp_path_factory.mktemp("reports"))


def test_the_orchestrator_over_the_container_runner_deploys_the_simulated_cluster(
    plan: Plan, deployed: tuple[FakeToolbox, SimCluster, RunResults]
) -> None:
    _, _, results = deployed
    assert [(s.id, s.outcome) for s in results.steps] == [(s.id, Outcome.PASSED) for s in plan.steps]
    assert {d.key: d.outcome for d in results.databases} == {e.database: Outcome.PASSED for e in plan.endpoints}


def test_each_command_is_one_exec_under_timeout_with_its_stdin_a_fresh_nonce_and_any_exit() -> None:
    toolbox = FakeToolbox(scripted(CommandResult(0, "", "")))
    runner = ContainerRunner(toolbox, clock=trio.current_time, nonce=iter(["n1", "n2"]).__next__)
    values = Command(("helm", "upgrade", "--install", "r", "c", "-f", "-"), stdin="replicas: 1\n")

    async def main() -> None:
        await runner.run(helm("list", "-A"), timeout_s=30)
        await runner.run(values, timeout_s=0.2)

    in_virtual_time(main)
    assert toolbox.log == [
        Exec(["timeout", "30", "helm", "list", "-A"], "", ReturnType.ANY, {NONCE_VARIABLE: "n1"}),
        Exec(
            ["timeout", "1", "helm", "upgrade", "--install", "r", "c", "-f", "-"],
            "replicas: 1\n",
            ReturnType.ANY,
            {NONCE_VARIABLE: "n2"},
        ),
    ]


def test_a_deploy_sends_the_plans_commands_as_these_execs(deployed: tuple[FakeToolbox, SimCluster, RunResults]) -> None:
    toolbox, _, _ = deployed

    def sent(*start: str) -> list[tuple[list[str], str | None]]:
        return [(e.argv, e.stdin) for e in toolbox.log if e.argv[2 : 2 + len(start)] == list(start)]

    # The step's budget plus the orchestrator's 15 s grace, as the outer limit; the command's own --timeout inside.
    snapshotter = "https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/v8.2.0"
    crds = ["timeout", "195", "kubectl", "apply", "--server-side", "--force-conflicts", "-f"]
    controller = ["timeout", "135", "kubectl", "apply", "-f"]
    # Steps run concurrently, so the order between them is the scheduler's: compare sorted.
    assert sorted(sent("kubectl", "apply")) == [
        ([*controller, f"{snapshotter}/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml"], ""),
        ([*controller, f"{snapshotter}/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml"], ""),
        ([*crds, "https://github.com/apecloud/kubeblocks/releases/download/v1.0.1/kubeblocks_crds.yaml"], ""),
        ([*crds, f"{snapshotter}/client/config/crd/snapshot.storage.k8s.io_volumesnapshotclasses.yaml"], ""),
        ([*crds, f"{snapshotter}/client/config/crd/snapshot.storage.k8s.io_volumesnapshotcontents.yaml"], ""),
        ([*crds, f"{snapshotter}/client/config/crd/snapshot.storage.k8s.io_volumesnapshots.yaml"], ""),
    ]
    assert sent("helm", "upgrade", "--install", "kubeblocks") == [
        (
            [
                "timeout",
                "615",
                "helm",
                "upgrade",
                "--install",
                "kubeblocks",
                "kubeblocks",
                "--repo",
                "https://apecloud.github.io/helm-charts",
                "--version",
                "1.0.1",
                "-n",
                "kb-system",
                "--create-namespace",
                "--set",
                "image.registry=docker.io",
                "--set",
                "dataProtection.image.registry=docker.io",
                "--set",
                "addonChartsImage.registry=docker.io",
                "--set",
                "registryConfig.defaultRegistry=docker.io",
                "--set",
                "registryConfig.defaultNamespace=apecloud",
                "--set",
                "autoInstalledAddons={}",
                "--timeout=600s",
            ],
            "",
        )
    ]
    assert sent("helm", "upgrade", "--install", "redis-cluster") == [
        (
            [
                "timeout",
                "615",
                "helm",
                "upgrade",
                "--install",
                "redis-cluster",
                "redis-cluster",
                "--repo",
                "https://apecloud.github.io/helm-charts",
                "--version",
                "1.0.1",
                "-n",
                "default",
                "--create-namespace",
                "--timeout=600s",
                "-f",
                "-",
            ],
            "version: 7.2.7\nmode: standalone\nreplicas: 1\ncpu: 0.5\nmemory: 0.5\nstorage: 20\n"
            "extra:\n  disableExporter: true\n",
        )
    ]


def without_timeout(argv: tuple[str, ...]) -> tuple[str, ...]:
    """A wait's (and helm's) --timeout is what remains of the step's budget, so it differs from the plan's full
    budget."""
    return tuple(a for a in argv if not a.startswith("--timeout="))


def test_each_step_runs_its_commands_in_plan_order_after_the_steps_it_needs(
    plan: Plan, deployed: tuple[FakeToolbox, SimCluster, RunResults]
) -> None:
    toolbox, _, _ = deployed
    sent = [without_timeout(tuple(e.argv[2:])) for e in toolbox.log]
    first_sent: dict[str, int] = {}
    last_done: dict[str, int] = {}
    for step in plan.steps:
        positions = [sent.index(without_timeout(c.argv)) for c in step.commands]
        assert positions == sorted(positions), f"{step.id} sent its commands out of order"
        waits = [without_timeout(w.command(step.timeout_s).argv) for w in step.done_when]
        first_sent[step.id] = min(positions)
        last_done[step.id] = max(len(sent) - 1 - sent[::-1].index(w) for w in waits)
    for step in plan.steps:
        for need in step.needs:
            assert first_sent[step.id] > last_done[need], f"{step.id} started before {need} was done"


def is_watch_read(argv: list[str]) -> bool:
    """`kubectl -n <ns> get pods -l <selector> -o json` or `... get clusters.apps.kubeblocks.io <c> -o json
    --ignore-not-found`: the failure watch's looks."""
    looks_at = argv[3:5]
    return (
        argv[:1] == ["kubectl"]
        and looks_at[:1] == ["get"]
        and (
            (looks_at == ["get", "pods"] and argv[-2:] == ["-o", "json"])
            or argv[-3:] == ["-o", "json", "--ignore-not-found"]
        )
    )


def test_the_plans_commands_get_spans_and_the_failure_watchs_reads_do_not(plan: Plan, tmp_path: Path) -> None:
    spans: list[str] = []
    toolbox, _, _ = deploy_over_fake(plan, tmp_path, spans)
    watch_reads = [e for e in toolbox.log if is_watch_read(e.argv[2:])]
    assert len(watch_reads) > 2 * len(plan.endpoints)  # the watch did look, repeatedly
    assert len(spans) == len(toolbox.log) - len(watch_reads)
    assert not [name for name in spans if is_watch_read(name.split(" (up to")[0].split())]
    for step in plan.steps:
        assert all(any(name.startswith(str(c)) for name in spans) for c in step.commands), step.id


def test_every_exec_has_its_own_nonce_and_returns_failures_instead_of_raising(
    plan: Plan, deployed: tuple[FakeToolbox, SimCluster, RunResults]
) -> None:
    toolbox, _, _ = deployed
    nonces = [e.env[NONCE_VARIABLE] for e in toolbox.log]
    assert len(set(nonces)) == len(nonces)
    assert {e.expect for e in toolbox.log} == {ReturnType.ANY}


def test_cluster_values_travel_as_stdin_to_helm(
    plan: Plan, deployed: tuple[FakeToolbox, SimCluster, RunResults]
) -> None:
    toolbox, _, _ = deployed
    with_values = {tuple(e.argv[2:]): e.stdin for e in toolbox.log if e.stdin}
    expected = {c.argv: c.stdin for s in plan.steps for c in s.commands if c.stdin is not None}
    assert with_values == expected
    assert expected, "the plan has cluster values to send"


@pytest.mark.parametrize(("timeout_s", "seconds"), [(600, "600"), (0.2, "1"), (10.5, "11")])
def test_the_timeout_is_whole_seconds_rounded_up(timeout_s: float, seconds: str) -> None:
    assert timed_argv(kubectl("get", "nodes"), timeout_s) == ["timeout", seconds, "kubectl", "get", "nodes"]


def run_once(answer: Answer, timeout_s: float = 30.0, engine_delay_s: float = 0.0) -> CommandResult:
    runner = ContainerRunner(FakeToolbox(answer, engine_delay_s=engine_delay_s), clock=trio.current_time)

    async def main() -> CommandResult:
        return await runner.run(helm("list", "-A"), timeout_s=timeout_s)

    return in_virtual_time(main)


@pytest.mark.parametrize("exit_code", [0, 1, 124, 127, 128, 137, 143, 191, 192, 255])
def test_the_stand_in_raises_like_the_engine_for_exit_codes_128_to_191_only(exit_code: int) -> None:
    toolbox = FakeToolbox(scripted(CommandResult(exit_code, "out", "err"))).with_exec(
        ["timeout", "5", "true"], expect=ReturnType.ANY
    )

    async def main() -> int:
        return await (await toolbox.sync()).exit_code()

    if 128 <= exit_code <= 191:
        with pytest.raises(dagger.ExecError) as caught:
            in_virtual_time(main)
        assert (caught.value.exit_code, caught.value.stdout, caught.value.stderr) == (exit_code, "out", "err")
    else:
        assert in_virtual_time(main) == exit_code


def test_the_stand_in_s_timeout_is_busybox_s_sigterm_not_124() -> None:
    toolbox = FakeToolbox(scripted(CommandResult(0, "", ""), delay_s=math.inf)).with_exec(
        ["timeout", "5", "sleep", "100"], expect=ReturnType.ANY
    )

    async def main() -> None:
        await toolbox.sync()

    with pytest.raises(dagger.ExecError) as caught:
        in_virtual_time(main)
    assert caught.value.exit_code == 143


def test_exit_124_from_timeout_is_a_timeout() -> None:
    done = run_once(scripted(CommandResult(124, "", "")))
    assert done.timed_out and not done.ok


def test_a_command_cut_by_busybox_timeout_at_its_limit_is_timed_out() -> None:
    done = run_once(scripted(CommandResult(0, "", ""), delay_s=math.inf), timeout_s=30.0)
    assert done.timed_out and not done.ok
    assert done.exit_code == 143


def test_a_command_killed_before_its_limit_is_a_failure_that_keeps_its_output() -> None:
    done = run_once(scripted(CommandResult(137, "partial listing", "helm: reading charts"), delay_s=4.0))
    assert not done.timed_out and not done.ok
    assert (done.exit_code, done.stdout) == (137, "partial listing")
    assert done.stderr.splitlines() == [
        "killed by SIGKILL (exit code 137) after 4 s, before its 30 s limit: out of memory, or stopped from outside",
        "helm: reading charts",
    ]


def test_a_non_zero_exit_keeps_its_code_and_output() -> None:
    done = run_once(scripted(CommandResult(1, "partial", "Error from server (NotFound)")))
    assert done == CommandResult(1, "partial", "Error from server (NotFound)")


def test_an_engine_call_that_never_answers_ends_as_a_timeout() -> None:
    done = run_once(scripted(CommandResult(0, "", "")), timeout_s=5.0, engine_delay_s=math.inf)
    assert done.timed_out and done.exit_code == ENGINE_FAILURE_EXIT


def raising(error: Exception) -> Answer:
    async def answer(command: Command, timeout_s: float) -> CommandResult:
        raise error

    return answer


def test_an_exec_error_becomes_a_result_with_its_exit_code_and_output() -> None:
    error = query_error(
        "process did not complete successfully",
        {"_type": "EXEC_ERROR", "cmd": ["helm"], "exitCode": 2, "stdout": "out", "stderr": "bad chart"},
    )
    assert isinstance(error, dagger.ExecError)
    assert run_once(raising(error)) == CommandResult(2, "out", "bad chart")


def test_any_other_engine_error_becomes_a_failed_result_with_its_first_line() -> None:
    done = run_once(raising(query_error("service kubernetes failed to start\ndetails", {})))
    assert done.exit_code == ENGINE_FAILURE_EXIT
    assert done.stderr == "dagger engine error: service kubernetes failed to start"


def deploy_with(plan: Plan, out_dir: Path, special: Command, answer: Answer) -> RunResults:
    """A simulated deploy in which one command is answered by `answer` instead of the simulated cluster."""
    sim = SimCluster()
    others = simulated(sim)

    async def mixed(command: Command, timeout_s: float) -> CommandResult:
        return await (answer if command == special else others)(command, timeout_s)

    runner = ContainerRunner(FakeToolbox(mixed), clock=trio.current_time)

    async def main() -> RunResults:
        return await run_plan(plan, runner, out_dir, cluster_kind="k3s", clock=trio.current_time)

    return in_virtual_time(main)


def kubeblocks_install(plan: Plan) -> Command:
    (step,) = [s for s in plan.steps if s.id == "kubeblocks"]
    (install,) = step.commands
    return install


def test_a_command_killed_before_its_limit_fails_its_step_saying_so(plan: Plan, tmp_path: Path) -> None:
    oom = scripted(CommandResult(137, "", 'Release "kubeblocks" does not exist. Installing it now.'), delay_s=3.0)
    results = deploy_with(plan, tmp_path, kubeblocks_install(plan), oom)
    kubeblocks = next(s for s in results.steps if s.id == "kubeblocks")
    assert kubeblocks.outcome is Outcome.FAILED
    assert kubeblocks.cause is not None
    assert kubeblocks.cause.startswith("killed by SIGKILL (exit code 137) after 3 s, before its ")
