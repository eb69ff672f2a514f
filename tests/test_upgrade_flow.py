"""upgrade-test's flow in the Dagger layer, offline: the toolbox is a recording fake answered by the simulated
cluster, so the readiness checks, the base's deployment, the upgrade stage, the marker steps (through the layer's
MarkerRunner hook) and the report writing run as they would in Dagger."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import cast

import dagger
import pipeline
import pytest
from dbstack.plan.model import Markers
from dbstack.plan.upgrade import UpgradePlan, load_upgrade_plan
from dbstack.run.results import CheckResult, Outcome, RunResults
from dbstack.run.smokeenv import marker_check_name
from dbstack.sim.cluster import SimCluster, in_virtual_time
from fake_toolbox import FakeToolbox
from test_pipeline_flow import API_CHECK, k3s_then

VALUES = Path(__file__).resolve().parents[1] / "values"


def change(tmp_path: Path) -> UpgradePlan:
    base, new = tmp_path / "base", tmp_path / "new"
    shutil.copytree(VALUES, base)
    shutil.copytree(VALUES, new)
    text = (new / "postgresql.yaml").read_text()
    (new / "postgresql.yaml").write_text(text.replace("16.4.0", "16.9.0"))
    return load_upgrade_plan(base, new, "ci", base_label="--base-values")


class OfflineUpgrade(pipeline._Run):
    def __init__(self, toolbox: FakeToolbox, upgrade: UpgradePlan, out_dir: Path) -> None:
        super().__init__(upgrade.config, upgrade.base, cast(dagger.Directory, object()), upgrade=upgrade)
        self.fake = toolbox
        self.out_dir = out_dir

    async def toolbox(self, kubeconfig: dagger.Secret | None) -> dagger.Container:
        return cast(dagger.Container, self.fake)


@pytest.fixture
def suite(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The smoke suite needs an engine: its marker runs and its whole run are recorded here, in order."""
    ran: list[str] = []

    def marker_runner(run: pipeline._Run, toolbox: dagger.Container) -> object:
        async def markers(step: Markers, seconds: float) -> CheckResult:
            ran.append(f"{step.phase} {step.endpoint.database}")
            return CheckResult(step.endpoint.database, marker_check_name(step.phase), Outcome.PASSED)

        return markers

    async def smoke(run: pipeline._Run, toolbox: dagger.Container, results: RunResults) -> None:
        ran.append("suite")
        results.smoke_outcome = Outcome.PASSED

    monkeypatch.setattr(pipeline, "_marker_runner", marker_runner)
    monkeypatch.setattr(pipeline, "_smoke", smoke)
    return ran


def run(upgrade: UpgradePlan, sim: SimCluster, out: Path, broken: object = None) -> dict[str, object]:
    toolbox = FakeToolbox(k3s_then(sim, broken=broken))  # type: ignore[arg-type]

    async def main() -> dagger.Directory:
        return await pipeline._deploy_and_test(OfflineUpgrade(toolbox, upgrade, out), None)

    assert isinstance(in_virtual_time(main), dagger.Directory)
    summary: dict[str, object] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary


def test_an_upgrade_test_deploys_the_base_writes_upgrades_reads_back_then_runs_the_suite(
    tmp_path: Path, suite: list[str]
) -> None:
    upgrade = change(tmp_path)
    summary = run(upgrade, SimCluster(), tmp_path / "out")
    assert summary["passed"] is True, summary["verdict"]
    keys = ("postgresql", "redis", "qdrant", "elasticsearch")
    assert sorted(suite[:4]) == sorted(f"write {k}" for k in keys)
    assert sorted(suite[4:8]) == sorted(f"verify {k}" for k in keys)
    assert suite[8:] == ["suite"]
    steps = cast(list[dict[str, object]], summary["steps"])
    assert steps[0]["id"] == "cluster"
    assert [s["id"] for s in steps[1:]] == [s.id for s in upgrade.base.steps] + [s.id for s in upgrade.stage.steps]
    upgraded = cast(dict[str, object], summary["upgrade"])
    assert upgraded["baseValues"] == "--base-values"
    survival = cast(list[dict[str, object]], upgraded["survival"])
    assert {s["outcome"] for s in survival} == {"passed"}
    assert (tmp_path / "out" / "exit-code").read_text() == "0\n"
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'name="PostgreSQL survived the upgrade"' in junit


def test_when_k3s_never_answers_neither_phase_runs_and_the_reports_say_why(tmp_path: Path, suite: list[str]) -> None:
    upgrade = change(tmp_path)
    summary = run(upgrade, SimCluster(), tmp_path / "out", broken=API_CHECK)
    assert summary["passed"] is False and suite == []
    steps = cast(list[dict[str, object]], summary["steps"])
    assert (steps[0]["id"], steps[0]["outcome"]) == ("cluster", "failed")
    assert {s["outcome"] for s in steps[1:]} == {"not_run"}
    assert any(s["id"] == "upgrade:cluster:postgresql" for s in steps)
    survival = cast(list[dict[str, object]], cast(dict[str, object], summary["upgrade"])["survival"])
    assert {s["outcome"] for s in survival} == {"failed"}
    assert (tmp_path / "out" / "exit-code").read_text() == "1\n"
