"""The Dagger layer's MarkerRunner, offline: a MARKERS step reaches its one database the way the smoke suite does
(its own forward and account), runs only that database's marker check with the run's marker id, stops the forward
(a restored cluster is deleted next), and returns the check; a database it cannot reach fails that check."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import dagger
import pipeline
import pytest
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Endpoint, Markers
from dbstack.run import smokeenv
from dbstack.run.results import CheckResult, Outcome
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import in_virtual_time
from fake_toolbox import FakeToolbox, scripted
from test_smoke_flow import FakeService, FakeSmoke, Suite

VALUES = Path(__file__).resolve().parents[1] / "values"


@dataclass
class StoppableService(FakeService):
    stopped: bool = False

    async def stop(self) -> StoppableService:
        self.stopped = True
        return self


def marker_suite(outcome: str) -> Suite:
    def suite(smoke: FakeSmoke) -> dict[str, str]:
        phase = smoke.env[smokeenv.SMOKE_MARKERS]
        cases = "".join(
            f'<testcase classname="test_{db}" name="test_markers[{phase}]" time="0.3">{outcome}</testcase>'
            for db in smoke.env[smokeenv.SMOKE_REQUIRE].split(",")
        )
        return {
            pipeline.SMOKE_STATUS: "0 3\n",
            pipeline.SMOKE_JUNIT: f"<testsuites><testsuite>{cases}</testsuite></testsuites>",
            "stdout": "1 passed\n",
        }

    return suite


@dataclass
class Phase:
    check: CheckResult
    service: StoppableService | None
    smoke: list[FakeSmoke]
    run: pipeline._Run


def run_phase(
    monkeypatch: pytest.MonkeyPatch, out: Path, markers: Markers, suite: Suite, behaviour: str = "up"
) -> Phase:
    config = load_config(VALUES, "ci")
    run = pipeline._Run(config, build_plan(config), cast(dagger.Directory, object()))
    run.out_dir = out
    services: list[StoppableService] = []
    ran: list[FakeSmoke] = []

    def forward(toolbox: dagger.Container, endpoint: Endpoint) -> dagger.Service:
        services.append(StoppableService(endpoint, behaviour))
        return cast(dagger.Service, services[-1])

    def container(run: pipeline._Run) -> dagger.Container:
        def recording(smoke: FakeSmoke) -> dict[str, str]:
            ran.append(smoke)
            return suite(smoke)

        return cast(dagger.Container, FakeSmoke(recording))

    monkeypatch.setattr(pipeline, "_port_forward", forward)
    monkeypatch.setattr(pipeline, "_smoke_container", container)
    credentials = {
        f"{pipeline.CREDENTIALS_DIR}/{smokeenv.USERNAME_KEY}": "postgres\n",
        f"{pipeline.CREDENTIALS_DIR}/{smokeenv.PASSWORD_KEY}": "s3cr3t-Pw",
    }
    toolbox = FakeToolbox(scripted(CommandResult(0, "", "")), files=credentials)
    runner = pipeline._marker_runner(run, cast(dagger.Container, toolbox))

    async def main() -> CheckResult:
        return await runner(markers, 900)

    check = in_virtual_time(main)
    return Phase(check, services[0] if services else None, ran, run)


def restored_postgresql() -> Endpoint:
    plan = build_plan(load_config(VALUES, "ci"))
    deployed = next(e for e in plan.endpoints if e.database == "postgresql")
    return replace(
        deployed,
        release="pg-cluster-r",
        service="pg-cluster-r-postgresql-postgresql",
        secret="pg-cluster-r-postgresql-account-postgres",
    )


def test_a_verify_reaches_the_restored_cluster_s_own_service_and_secret_and_runs_only_its_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    endpoint = restored_postgresql()
    phase = run_phase(monkeypatch, tmp_path, Markers("verify", endpoint, "restored pg-cluster-r"), marker_suite(""))

    assert (phase.check.name, phase.check.outcome) == ("test_markers[verify] (restored pg-cluster-r)", Outcome.PASSED)
    ((smoke,),) = [phase.smoke]
    assert set(smoke.bindings) == {"pg-cluster-r-postgresql-postgresql"}
    assert smoke.env[smokeenv.SMOKE_MARKERS] == "verify"
    assert smoke.env[smokeenv.SMOKE_MARKER_ID] == smokeenv.marker_id(phase.run.run_id)
    assert smoke.env[smokeenv.SMOKE_REQUIRE] == "postgresql"
    assert smoke.env["POSTGRES_HOST"] == "pg-cluster-r-postgresql-postgresql"
    assert "POSTGRES_PASSWORD" in smoke.secrets and "POSTGRES_PASSWORD" not in smoke.env
    assert smoke.argv is not None and " -m postgresql;" in smoke.argv[-1]
    assert phase.service is not None and phase.service.stopped, "the forward to a cluster about to go stays up"
    assert (tmp_path / "smoke" / "markers-verify-pg-cluster-r" / "pytest.log").read_text(
        encoding="utf-8"
    ) == "1 passed\n"


def test_a_failed_read_back_returns_the_suite_s_cause(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    failure = '<failure message="postgresql markers m1 do not read back as written: table public.x is missing"/>'
    phase = run_phase(monkeypatch, tmp_path, Markers("verify", restored_postgresql()), marker_suite(failure))

    assert phase.check.outcome is Outcome.FAILED
    assert str(phase.check.message).startswith("postgresql markers m1 do not read back as written")


def test_a_restored_cluster_that_cannot_be_reached_fails_its_check_and_runs_no_suite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    phase = run_phase(monkeypatch, tmp_path, Markers("verify", restored_postgresql()), marker_suite(""), "fails")

    assert phase.smoke == []
    assert phase.check.outcome is Outcome.FAILED
    assert str(phase.check.message).startswith(
        "not reached: the port-forward to svc/pg-cluster-r-postgresql-postgresql:5432 did not come up: error: "
    )
