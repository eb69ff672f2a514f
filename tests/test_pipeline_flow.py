"""deploy-and-test's cluster stage, offline: the toolbox is a recording fake answered by the simulated cluster, so
the readiness checks, the real orchestrator and the report writing run as they would in Dagger. A cluster that
never becomes ready is a failed first step with its cause and diagnostics. The whole functions, smoke stage, marker
phases and k3s service included, run through engine stand-ins in test_dagger_flow.py, test_upgrade_flow.py and
test_backup_flow.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import cast

import anyio
import dagger
import pipeline
import pytest
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Command
from dbstack.run import k3s
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import SimCluster, in_virtual_time
from fake_toolbox import Answer, FakeToolbox, scripted, simulated

VALUES = Path(__file__).resolve().parents[1] / "values"
READY = {check.command for check in k3s.ready_checks(pipeline.K3S_READY_TIMEOUT_S)}
"""What the fake answers as ready (not an expectation: the tests' expected values are written out)."""
API_CHECK = Command(("sh", "-c", "until kubectl get --raw=/readyz >/dev/null; do sleep 2; done"))


class OfflineRun(pipeline._Run):
    """A run whose toolbox is the fake: nothing reaches an engine."""

    def __init__(self, toolbox: FakeToolbox, out_dir: Path) -> None:
        config = load_config(VALUES, "ci")
        super().__init__(config, build_plan(config), cast(dagger.Directory, object()))
        self.fake = toolbox
        self.out_dir = out_dir

    async def toolbox(self, kubeconfig: dagger.Secret | None) -> dagger.Container:
        return cast(dagger.Container, self.fake)


REFUSED = "The connection to the server kubernetes:6443 was refused - did you specify the right host or port?"


def k3s_then(sim: SimCluster, broken: Command | None = None, hangs: Command | None = None) -> Answer:
    """The k3s readiness checks pass (or `broken` fails, or `hangs` retries until its limit cuts it); everything
    else goes to the simulated cluster."""
    plan_answer = simulated(sim)

    async def answer(command: Command, timeout_s: float) -> CommandResult:
        if command == broken:
            return CommandResult(1, "", REFUSED)
        if command == hangs:  # an `until` loop: the same error every 2 s, then the last one differs
            return CommandResult(
                0, "", "\n".join([REFUSED] * 3 + ["Error from server: etcdserver: leader changed"]), True
            )
        if command in READY:
            return CommandResult(0, "", "")
        if command.argv[0] == "kubectl" and command in {c for _, c in k3s.CLUSTER_DIAGNOSTICS}:
            return CommandResult(1, "", REFUSED)
        return await plan_answer(command, timeout_s)

    return answer


def deploy(answer: Answer, out_dir: Path) -> tuple[FakeToolbox, dict[str, object]]:
    toolbox = FakeToolbox(answer)
    run = OfflineRun(toolbox, out_dir)

    async def main() -> dagger.Directory:
        return await pipeline._deploy_and_test(run, None)

    assert isinstance(in_virtual_time(main), dagger.Directory)
    summary: dict[str, object] = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    return toolbox, summary


def test_when_k3s_never_answers_nothing_is_deployed_and_the_reports_say_why(tmp_path: Path) -> None:
    toolbox, results = deploy(k3s_then(SimCluster(), broken=API_CHECK), tmp_path)
    steps = cast(list[dict[str, object]], results["steps"])
    cluster = steps[0]
    assert (cluster["id"], cluster["outcome"]) == ("cluster", "failed")
    assert str(cluster["cause"]).startswith("Wait for the k3s API server: The connection to the server")
    assert {s["outcome"] for s in steps[1:]} == {"not_run"}
    assert [e.argv for e in toolbox.log] == [
        ["timeout", "300", "sh", "-c", "until kubectl get --raw=/readyz >/dev/null; do sleep 2; done"],
        ["timeout", "30", "kubectl", "describe", "nodes"],
        ["timeout", "30", "kubectl", "get", "pods", "-A", "-o", "wide"],
        ["timeout", "30", "kubectl", "get", "events", "-A", "--sort-by=.lastTimestamp"],
    ]
    assert (tmp_path / "exit-code").read_text(encoding="utf-8") == "1\n"
    assert sorted(p.name for p in (tmp_path / "diagnostics" / "cluster").iterdir()) == [
        "events.txt",
        "nodes.txt",
        "pods.txt",
    ]


@pytest.mark.parametrize(
    ("answer", "engine_delay_s", "seconds"),
    [
        pytest.param(scripted(CommandResult(0, "", "")), math.inf, 120, id="engine-hangs"),
        pytest.param(scripted(CommandResult(124, "", "")), 0.0, 0, id="coreutils-timeout"),
        pytest.param(scripted(CommandResult(0, "", ""), delay_s=math.inf), 0.0, 60, id="busybox-timeout-raises-143"),
    ],
)
def test_an_account_secret_read_that_gets_no_answer_makes_its_database_unreachable(
    answer: Answer, engine_delay_s: float, seconds: float
) -> None:
    config = load_config(VALUES, "ci")
    postgresql = next(e for e in build_plan(config).endpoints if e.database == "postgresql")
    toolbox = FakeToolbox(answer, engine_delay_s=engine_delay_s)
    run = OfflineRun(toolbox, Path("unused"))

    waited: list[float] = []

    async def main() -> None:
        started = anyio.current_time()
        try:
            await pipeline._read_account(run, cast(dagger.Container, toolbox), postgresql)
        finally:
            waited.append(anyio.current_time() - started)

    with pytest.raises(pipeline._Unreachable) as caught:
        in_virtual_time(main)
    assert waited == [seconds], "the engine is given the read's own 60 s and a 60 s grace, no more"
    assert str(caught.value) == (
        "reading postgresql's account Secret pg-cluster-postgresql-account-postgres "
        "got no answer within 60 s (is the API server answering?)"
    )
    (sent,) = toolbox.log
    assert sent.argv[:2] == ["timeout", "60"]
    assert sent.argv[-1].count("kubectl --request-timeout=") == sent.argv[-1].count("kubectl ")


def test_a_readiness_loop_cut_by_its_limit_says_timed_out_with_its_last_answer(tmp_path: Path) -> None:
    _, results = deploy(k3s_then(SimCluster(), hangs=API_CHECK), tmp_path)
    cluster = cast(list[dict[str, object]], results["steps"])[0]
    assert (cluster["id"], cluster["outcome"]) == ("cluster", "failed")
    assert cluster["cause"] == (
        "Wait for the k3s API server: timed out after 300 s "
        "(last answer: Error from server: etcdserver: leader changed)"
    )
