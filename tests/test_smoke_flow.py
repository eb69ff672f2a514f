"""deploy-and-test's smoke stage, offline: each database's forward is a stand-in service that starts, hangs or
fails like a Dagger service, and the smoke container a stand-in that runs the suite the way the engine would
(raising ExecError for an exec killed by a signal, whose files are then lost). One forward that cannot come up
fails that database's checks while the others are still tested; whatever ends pytest, its output is kept."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self, cast

import dagger
import pipeline
import pytest
import trio
from dagger import ReturnType
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Endpoint
from dbstack.run import smokeenv
from dbstack.run.orchestrator import new_results
from dbstack.run.results import Outcome, RunResults
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import in_virtual_time
from fake_toolbox import FakeFile, FakeToolbox, exec_error, query_error, scripted

VALUES = Path(__file__).resolve().parents[1] / "values"


@dataclass
class FakeService:
    """A port-forward service: `start` returns once the health check passes, hangs, or raises like the engine."""

    endpoint: Endpoint
    behaviour: str = "up"
    started: bool = False

    async def start(self) -> Self:
        if self.behaviour == "hangs":
            await trio.sleep(math.inf)
        if self.behaviour == "fails":
            raise exec_error(
                ["sh", "-c", "..."],
                CommandResult(
                    1, "", "error: unable to forward port because pod is not running. Current status=Pending"
                ),
            )
        self.started = True
        return self


Suite = Callable[["FakeSmoke"], dict[str, str]]
"""Runs the suite in the stand-in container; returns the files it left (status, JUnit, stdout) or raises."""


@dataclass
class FakeSmoke:
    """The smoke container: records bindings and variables; `sync` after `with_exec` runs the suite."""

    suite: Suite
    bindings: dict[str, FakeService] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    argv: list[str] | None = None
    files: dict[str, str] = field(default_factory=dict)

    def with_service_binding(self, alias: str, service: FakeService) -> Self:
        assert service.started, "bound before it was started and health-checked"
        return replace(self, bindings={**self.bindings, alias: service})

    def with_env_variable(self, name: str, value: str) -> Self:
        return replace(self, env={**self.env, name: value})

    def with_secret_variable(self, name: str, secret: object) -> Self:
        return replace(self, secrets={*self.secrets, name})

    def with_exec(self, args: list[str], *, expect: ReturnType | None = None) -> Self:
        assert expect is ReturnType.ANY
        return replace(self, argv=list(args))

    async def sync(self) -> Self:
        if self.argv is None:
            return self  # the dependency install
        return replace(self, files=self.suite(self))

    async def stdout(self) -> str:
        return self.files.get("stdout", "")

    async def stderr(self) -> str:
        return ""

    def file(self, path: str) -> FakeFile:
        if path not in self.files:
            raise query_error(f"lstat {path}: no such file or directory", {})
        return FakeFile(self.files[path])


JUNIT_CASE = '<testcase classname="ci.smoke.test_{db}" name="test_connects" time="0.1"/>'


def passing_suite(smoke: FakeSmoke) -> dict[str, str]:
    """Every required database passes one check."""
    cases = "".join(JUNIT_CASE.format(db=db) for db in smoke.env[smokeenv.SMOKE_REQUIRE].split(","))
    return {
        pipeline.SMOKE_STATUS: "0 12\n",
        pipeline.SMOKE_JUNIT: f"<testsuites><testsuite>{cases}</testsuite></testsuites>",
        "stdout": "4 passed in 12.00s\n",
    }


@dataclass
class Stage:
    results: RunResults
    services: dict[str, FakeService]
    smoke: list[FakeSmoke]


def run_smoke(
    monkeypatch: pytest.MonkeyPatch, out_dir: Path, suite: Suite, behaviours: dict[str, str] | None = None
) -> Stage:
    config = load_config(VALUES, "ci")
    plan = build_plan(config)
    run = pipeline._Run(config, plan, cast(dagger.Directory, object()))
    run.out_dir = out_dir
    results = new_results(plan, "k3s", time.time())
    for database in results.databases:
        database.outcome = Outcome.PASSED
    services: dict[str, FakeService] = {}
    ran: list[FakeSmoke] = []

    def forward(toolbox: dagger.Container, endpoint: Endpoint) -> dagger.Service:
        services[endpoint.database] = FakeService(endpoint, (behaviours or {}).get(endpoint.database, "up"))
        return cast(dagger.Service, services[endpoint.database])

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

    async def main() -> None:
        await pipeline._smoke(run, cast(dagger.Container, toolbox), results)

    in_virtual_time(main)
    return Stage(results, services, ran)


def test_every_database_is_forwarded_on_its_own_then_tested_together(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stage = run_smoke(monkeypatch, tmp_path, passing_suite)
    (smoke,) = stage.smoke
    assert set(smoke.bindings) == {s.endpoint.service for s in stage.services.values()}
    assert stage.results.smoke_outcome is Outcome.PASSED
    assert all(d.checks and d.checks[0].outcome is Outcome.PASSED for d in stage.results.databases)
    assert (tmp_path / "smoke" / "pytest.log").read_text(encoding="utf-8") == "4 passed in 12.00s\n"
    assert (tmp_path / "smoke" / "junit.xml").exists()


@pytest.mark.parametrize(
    ("behaviour", "cause"),
    [
        ("hangs", f"did not come up within {pipeline.FORWARD_START_TIMEOUT_S} s"),
        (
            "fails",
            "did not come up: error: unable to forward port because pod is not running. Current status=Pending "
            "(exit code 1)",
        ),
    ],
)
def test_a_forward_that_cannot_come_up_fails_only_its_database_and_the_others_are_tested(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, behaviour: str, cause: str
) -> None:
    stage = run_smoke(monkeypatch, tmp_path, passing_suite, {"redis": behaviour})
    (smoke,) = stage.smoke
    redis = stage.services["redis"].endpoint
    assert redis.service not in smoke.bindings
    assert "redis" not in smoke.env[smokeenv.SMOKE_REQUIRE].split(",")
    assert "REDIS_PASSWORD" not in smoke.secrets
    by_key = {d.key: d for d in stage.results.databases}
    (reach,) = by_key["redis"].checks
    assert (reach.name, reach.outcome) == (f"reach {redis.service}:{redis.port}", Outcome.FAILED)
    assert reach.message == f"the port-forward to svc/{redis.service}:{redis.port} {cause}"
    assert all(c.outcome is Outcome.PASSED for key, d in by_key.items() if key != "redis" for c in d.checks)
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert (
        stage.results.smoke_cause
        == f"not reached, so not tested: redis: {reach.message} (the other databases were tested)"
    )


def test_when_no_forward_comes_up_the_suite_does_not_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stage = run_smoke(monkeypatch, tmp_path, passing_suite, dict.fromkeys(smokeenv.CONTRACTS, "fails"))
    assert stage.smoke == []
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert str(stage.results.smoke_cause).startswith("no database could be reached, so the smoke suite did not run")


def test_a_suite_stopped_at_its_limit_keeps_its_log_and_the_checks_that_finished(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    limit = load_config(VALUES, "ci").timeouts.smoke

    def interrupted(smoke: FakeSmoke) -> dict[str, str]:
        files = passing_suite(smoke)
        return {**files, pipeline.SMOKE_STATUS: f"124 {limit}\n", "stdout": "KeyboardInterrupt\n1 passed"}

    stage = run_smoke(monkeypatch, tmp_path, interrupted)
    assert stage.results.smoke_outcome is Outcome.TIMED_OUT
    assert stage.results.smoke_cause == (
        f"pytest was stopped at its {limit} s limit (the checks that finished are in junit.xml); see smoke/pytest.log"
    )
    assert (tmp_path / "smoke" / "pytest.log").read_text(encoding="utf-8") == "KeyboardInterrupt\n1 passed"


def test_a_smoke_container_killed_by_a_signal_keeps_the_output_the_engine_returned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def killed(smoke: FakeSmoke) -> dict[str, str]:
        assert smoke.argv is not None
        raise exec_error(smoke.argv, CommandResult(137, "collected 9 items\ntest_postgresql.py ..", ""))

    stage = run_smoke(monkeypatch, tmp_path, killed)
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert stage.results.smoke_cause == (
        "the smoke container was killed by SIGKILL (exit code 137): out of memory, or stopped from outside; "
        "its last output is in smoke/pytest.log, no JUnit file could be read"
    )
    assert (tmp_path / "smoke" / "pytest.log").read_text(encoding="utf-8") == (
        "collected 9 items\ntest_postgresql.py .."
    )


def test_a_bound_service_that_exits_mid_run_is_the_suite_s_cause(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def dropped(smoke: FakeSmoke) -> dict[str, str]:
        raise query_error("bound service pg-cluster-postgresql-postgresql (x) exited: exit code 1", {})

    stage = run_smoke(monkeypatch, tmp_path, dropped)
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert stage.results.smoke_cause == (
        "the smoke suite did not run to its end: bound service pg-cluster-postgresql-postgresql (x) exited: exit code 1"
    )
