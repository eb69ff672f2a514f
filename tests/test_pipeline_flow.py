"""deploy-and-test's flow, offline: the toolbox is a recording fake answered by the simulated cluster, so the
readiness checks, the real orchestrator and the report writing run as they would in Dagger. Reports come back
on success and on failure, with the cluster's start as the first step and `exit-code` saying which."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import dagger
import pipeline
import pytest
import trio
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Command
from dbstack.run import k3s
from dbstack.run.results import Outcome, RunResults
from dbstack.run.runner import CommandResult
from dbstack.run.smokeenv import ACCOUNT_READ_TIMEOUT_S
from dbstack.sim.cluster import SimCluster, in_virtual_time
from fake_toolbox import Answer, FakeToolbox, query_error, scripted, simulated

VALUES = Path(__file__).resolve().parents[1] / "values"
READY = {check.command for check in k3s.ready_checks(pipeline.K3S_READY_TIMEOUT_S)}
API_CHECK = k3s.ready_checks(pipeline.K3S_READY_TIMEOUT_S)[0].command


class OfflineRun(pipeline._Run):
    """A run whose toolbox is the fake: nothing reaches an engine."""

    def __init__(self, toolbox: FakeToolbox, out_dir: Path) -> None:
        config = load_config(VALUES, "ci")
        super().__init__(config, build_plan(config), cast(dagger.Directory, object()))
        self.fake = toolbox
        self.out_dir = out_dir

    async def toolbox(self, kubeconfig: dagger.Secret | None) -> dagger.Container:
        return cast(dagger.Container, self.fake)


class NoKubeconfigRun(OfflineRun):
    """k3s started but never wrote its kubeconfig: reading it failed as an exec."""

    async def toolbox(self, kubeconfig: dagger.Secret | None) -> dagger.Container:
        raise query_error(
            "process did not complete successfully: exit code: 1",
            {
                "_type": "EXEC_ERROR",
                "cmd": ["sh", "-c", "..."],
                "exitCode": 1,
                "stdout": "",
                "stderr": "k3s wrote no kubeconfig within 180s",
            },
        )


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


@pytest.fixture
def smoke_passes(monkeypatch: pytest.MonkeyPatch) -> list[RunResults]:
    """The smoke stage needs an engine; here it records that it was reached and passes."""
    reached: list[RunResults] = []

    async def smoke(run: pipeline._Run, toolbox: dagger.Container, results: RunResults) -> None:
        reached.append(results)
        results.smoke_outcome = Outcome.PASSED

    monkeypatch.setattr(pipeline, "_smoke", smoke)
    return reached


def deploy(answer: Answer, out_dir: Path) -> tuple[FakeToolbox, dict[str, object]]:
    toolbox = FakeToolbox(answer)
    run = OfflineRun(toolbox, out_dir)

    async def main() -> dagger.Directory:
        return await pipeline._deploy_and_test(run, None)

    assert isinstance(in_virtual_time(main), dagger.Directory)
    summary: dict[str, object] = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    return toolbox, summary


def test_a_healthy_run_waits_for_k3s_deploys_smoke_tests_and_reports_success(
    tmp_path: Path, smoke_passes: list[RunResults]
) -> None:
    toolbox, results = deploy(k3s_then(SimCluster()), tmp_path)
    sent = [tuple(e.argv[2:]) for e in toolbox.log]
    assert sent[: len(READY)] == [c.command.argv for c in k3s.ready_checks(pipeline.K3S_READY_TIMEOUT_S)]
    steps = cast(list[dict[str, object]], results["steps"])
    assert (steps[0]["id"], steps[0]["outcome"]) == ("cluster", "passed")
    assert all(s["outcome"] == "passed" for s in steps)
    assert len(smoke_passes) == 1
    assert (tmp_path / "exit-code").read_text(encoding="utf-8") == "0\n"
    assert {"summary.md", "summary.json", "junit.xml", "results.json"} <= {p.name for p in tmp_path.iterdir()}


def test_when_k3s_never_answers_nothing_is_deployed_and_the_reports_say_why(
    tmp_path: Path, smoke_passes: list[RunResults]
) -> None:
    toolbox, results = deploy(k3s_then(SimCluster(), broken=API_CHECK), tmp_path)
    steps = cast(list[dict[str, object]], results["steps"])
    cluster = steps[0]
    assert (cluster["id"], cluster["outcome"]) == ("cluster", "failed")
    assert str(cluster["cause"]).startswith("Wait for the k3s API server: The connection to the server")
    assert {s["outcome"] for s in steps[1:]} == {"not_run"}
    assert not any(e.argv[2] == "helm" for e in toolbox.log)
    assert smoke_passes == []
    assert (tmp_path / "exit-code").read_text(encoding="utf-8") == "1\n"
    assert sorted(p.name for p in (tmp_path / "diagnostics" / "cluster").iterdir()) == sorted(
        name for name, _ in k3s.CLUSTER_DIAGNOSTICS
    )


def test_when_the_cluster_cannot_be_reached_at_all_the_reports_carry_the_command_s_own_error(
    tmp_path: Path, smoke_passes: list[RunResults]
) -> None:
    run = NoKubeconfigRun(FakeToolbox(k3s_then(SimCluster())), tmp_path)

    async def main() -> dagger.Directory:
        return await pipeline._deploy_and_test(run, None)

    in_virtual_time(main)
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert (
        results["steps"][0]["cause"] == "the cluster did not start: k3s wrote no kubeconfig within 180s (exit code 1)"
    )
    assert results["steps"][0]["diagnostics"] == []
    assert (tmp_path / "exit-code").read_text(encoding="utf-8") == "1\n"


@pytest.mark.parametrize(
    ("answer", "engine_delay_s"),
    [
        pytest.param(scripted(CommandResult(0, "", "")), math.inf, id="engine-hangs"),
        pytest.param(scripted(CommandResult(124, "", "")), 0.0, id="coreutils-timeout"),
        pytest.param(scripted(CommandResult(0, "", ""), delay_s=math.inf), 0.0, id="busybox-timeout-raises-143"),
    ],
)
def test_an_account_secret_read_that_gets_no_answer_makes_its_database_unreachable(
    answer: Answer, engine_delay_s: float
) -> None:
    config = load_config(VALUES, "ci")
    postgresql = next(e for e in build_plan(config).endpoints if e.database == "postgresql")
    toolbox = FakeToolbox(answer, engine_delay_s=engine_delay_s)
    run = OfflineRun(toolbox, Path("unused"))

    async def main() -> None:
        await pipeline._read_account(run, cast(dagger.Container, toolbox), postgresql)

    with pytest.raises(pipeline._Unreachable) as caught:
        in_virtual_time(main)
    assert str(caught.value) == (
        "reading postgresql's account Secret pg-cluster-postgresql-account-postgres "
        f"got no answer within {ACCOUNT_READ_TIMEOUT_S} s (is the API server answering?)"
    )
    (sent,) = toolbox.log
    assert sent.argv[:2] == ["timeout", str(ACCOUNT_READ_TIMEOUT_S)]
    assert sent.argv[-1].count("kubectl --request-timeout=") == sent.argv[-1].count("kubectl ")


def test_a_readiness_loop_cut_by_its_limit_says_timed_out_with_its_last_answer(
    tmp_path: Path, smoke_passes: list[RunResults]
) -> None:
    _, results = deploy(k3s_then(SimCluster(), hangs=API_CHECK), tmp_path)
    cluster = cast(list[dict[str, object]], results["steps"])[0]
    assert (cluster["id"], cluster["outcome"]) == ("cluster", "failed")
    assert cluster["cause"] == (
        f"Wait for the k3s API server: timed out after {pipeline.K3S_READY_TIMEOUT_S} s "
        "(last answer: Error from server: etcdserver: leader changed)"
    )
    assert smoke_passes == []


@dataclass
class FakeK3s:
    """The k3s service: `start` returns once Dagger's health check passes, or waits forever (a lock, a pull)."""

    start_hangs: bool = False
    stopped: bool = False

    async def start(self) -> FakeK3s:
        if self.start_hangs:
            await trio.sleep(math.inf)
        return self

    async def stop(self) -> FakeK3s:
        self.stopped = True
        return self


@dataclass
class HangingFile:
    async def sync(self) -> HangingFile:
        await trio.sleep(math.inf)
        return self


def deploy_on_k3s(monkeypatch: pytest.MonkeyPatch, out_dir: Path, k3s_service: FakeK3s) -> dict[str, object]:
    config = load_config(VALUES, "ci")
    run = pipeline._Run(config, build_plan(config), cast(dagger.Directory, object()))
    run.out_dir = out_dir
    monkeypatch.setattr(pipeline, "_k3s_service", lambda image, name, holder: k3s_service)
    monkeypatch.setattr(pipeline, "_kubeconfig_file", lambda image, name: HangingFile())

    async def main() -> dagger.Directory:
        return await pipeline._deploy_and_test(run, None)

    assert isinstance(in_virtual_time(main), dagger.Directory)
    results: dict[str, object] = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    return results


@pytest.mark.parametrize(
    ("start_hangs", "cause"),
    [
        (True, f"k3s got no answer from the engine within {pipeline.K3S_START_TIMEOUT_S} s starting"),
        (False, f"k3s got no answer from the engine within {pipeline.KUBECONFIG_WAIT_S + 60} s reading its kubeconfig"),
    ],
)
def test_a_k3s_start_or_kubeconfig_read_that_never_answers_is_a_failed_cluster_step_with_reports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smoke_passes: list[RunResults], start_hangs: bool, cause: str
) -> None:
    k3s_service = FakeK3s(start_hangs=start_hangs)
    results = deploy_on_k3s(monkeypatch, tmp_path, k3s_service)
    steps = cast(list[dict[str, object]], results["steps"])
    assert (steps[0]["id"], steps[0]["outcome"], steps[0]["cause"]) == (
        "cluster",
        "failed",
        f"the cluster did not start: {cause}",
    )
    assert {s["outcome"] for s in steps[1:]} == {"not_run"}
    assert k3s_service.stopped
    assert smoke_passes == []
    assert (tmp_path / "exit-code").read_text(encoding="utf-8") == "1\n"
    assert {"summary.md", "summary.json", "junit.xml"} <= {p.name for p in tmp_path.iterdir()}


def test_the_full_profile_runs_the_backup_stage_through_the_module_s_marker_runner(
    tmp_path: Path, smoke_passes: list[RunResults], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbstack.plan.backup import ON_K3S
    from dbstack.sim.backups import SimMarkers

    sim = SimCluster()
    runners: list[SimMarkers] = []

    def marker_runner(run: pipeline._Run, toolbox: dagger.Container) -> SimMarkers:
        runners.append(SimMarkers(sim))
        return runners[-1]

    monkeypatch.setattr(pipeline, "_marker_runner", marker_runner)
    toolbox = FakeToolbox(k3s_then(sim))
    run = OfflineRun(toolbox, tmp_path)
    run.config = load_config(VALUES, "full")
    run.plan = build_plan(run.config, ON_K3S)

    async def main() -> dagger.Directory:
        return await pipeline._deploy_and_test(run, None)

    in_virtual_time(main)
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert [s["id"] for s in results["steps"] if s["outcome"] != "passed" and s["outcome"] != "skipped"] == []
    assert [b["outcome"] for b in results["backups"]] == ["passed", "passed", "passed", "skipped"]
    (used,) = runners
    assert [m.phase for m in used.calls].count("verify") == 3
    assert (tmp_path / "exit-code").read_text(encoding="utf-8") == "0\n"
