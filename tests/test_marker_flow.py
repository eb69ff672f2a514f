"""The Dagger layer's MarkerRunner, offline, through the engine stand-ins (tests/engine_standins.py): a MARKERS step
reaches its one database the way the smoke suite does (its own forward, built from the toolbox, and its own
account), runs only that database's marker check with the run's marker id in the smoke container, stops the
forward (a restored cluster is deleted next), and returns the check; a database it cannot reach fails that check.
Nothing of the module itself is replaced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import anyio
import dagger
import pipeline
import pytest
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Command, Endpoint, Markers
from dbstack.run.results import CheckResult, Outcome
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import in_virtual_time
from engine_standins import Done, Engine, Exec, Secret, Service, Suite
from fake_toolbox import query_error
from test_dagger_flow import account_reads, forwards, read_script, smoke_execs
from test_dagger_flow import smoke_suite as suite_folder

VALUES = Path(__file__).resolve().parents[1] / "values"
RUN_ID = "0123456789ab"
TOOLBOX = "alpine/k8s:1.31.4"
RESTORED = "pg-cluster-r-postgresql-postgresql"
ACCOUNT = "pg-cluster-r-postgresql-account-postgres"
MARKER_SCRIPT = (
    "mkdir -p /reports; started=$(date +%s); timeout -s INT -k 30 600 python -m pytest ci/smoke -p no:cacheprovider "
    "--junitxml=/reports/smoke-junit.xml -o junit_family=xunit2 -m postgresql; code=$?; "
    'echo "$code $(($(date +%s) - started))" > /reports/smoke-exit'
)
NOT_READ_BACK = "postgresql markers m0123456789ab do not read back as written: table public.x is missing"


def no_toolbox_command(command: Command, timeout_s: float) -> CommandResult:
    raise AssertionError(f"the marker step ran a toolbox command: {command.argv}")


def marker_suite(failure: str = "") -> Suite:
    """Every database in SMOKE_REQUIRE answers its marker check of the phase in SMOKE_MARKERS; `failure` is the
    JUnit failure element each check carries (none: it passes)."""

    def suite(engine: Engine, run: Exec) -> Done:
        phase = run.env["SMOKE_MARKERS"]
        cases = "".join(
            f'<testcase classname="ci.smoke.test_{db}" name="test_markers[{phase}]" time="0.3">{failure}</testcase>'
            for db in run.env["SMOKE_REQUIRE"].split(",")
        )
        junit = f"<testsuites><testsuite>{cases}</testsuite></testsuites>"
        return Done(0, "1 passed\n", "", {pipeline.SMOKE_STATUS: "0 3\n", pipeline.SMOKE_JUNIT: junit})

    return suite


@dataclass
class Phase:
    check: CheckResult
    engine: Engine
    run: pipeline._Run

    @property
    def forward(self) -> Service:
        (forward,) = forwards(self.engine).values()
        return forward


def run_phase(engine_here: Callable[[Engine], None], markers: Markers, suite: Suite, **switches: Any) -> Phase:
    engine = Engine(no_toolbox_command, accounts={ACCOUNT: ("postgres", "Rs7restoredPw")}, suite=suite, **switches)
    engine_here(engine)
    config = load_config(VALUES, "ci")
    run = pipeline._Run(config, build_plan(config), suite_folder())
    run.run_id = RUN_ID
    toolbox = pipeline._toolbox_for_kubeconfig(config.images["toolbox"], cast(dagger.Secret, Secret("kc", "")))
    runner = pipeline._marker_runner(run, toolbox)

    async def main() -> CheckResult:
        return await runner(markers, 900)

    return Phase(in_virtual_time(main), engine, run)


def restored_postgresql() -> Endpoint:
    plan = build_plan(load_config(VALUES, "ci"))
    deployed = next(e for e in plan.endpoints if e.database == "postgresql")
    return replace(deployed, release="pg-cluster-r", service=RESTORED, secret=ACCOUNT)


def test_a_verify_reaches_the_restored_cluster_s_own_service_and_secret_and_runs_only_its_check(
    engine_here: Callable[[Engine], None],
) -> None:
    phase = run_phase(engine_here, Markers("verify", restored_postgresql(), "restored pg-cluster-r"), marker_suite())

    assert (phase.check.database, phase.check.name, phase.check.outcome, phase.check.message) == (
        "postgresql",
        "test_markers[verify] (restored pg-cluster-r)",
        Outcome.PASSED,
        None,
    )
    assert (phase.forward.image, phase.forward.ports, phase.forward.forwards) == (TOOLBOX, (5432,), RESTORED)
    assert (phase.forward.starts, phase.forward.stops) == (1, 1), "the forward to a cluster about to go is stopped"
    assert phase.engine.events == [f"start {RESTORED}", f"stop {RESTORED}"]
    assert account_reads(phase.engine) == [["timeout", "60", "sh", "-c", read_script("default", ACCOUNT)]]
    (smoke,) = smoke_execs(phase.engine)
    assert smoke.argv == ["sh", "-c", MARKER_SCRIPT]
    assert list(smoke.bindings) == [RESTORED] and smoke.bindings[RESTORED] is phase.forward
    assert {k: v for k, v in smoke.env.items() if k != "DBSTACK_EXEC_NONCE" and not k.startswith("(")} == {
        "POSTGRES_HOST": RESTORED,
        "POSTGRES_PORT": "5432",
        "POSTGRES_DB": "postgres",
        "POSTGRES_USER": "postgres",
        "SMOKE_REQUIRE": "postgresql",
        "SMOKE_REQUIRE_IK": "1",
        "SMOKE_MARKERS": "verify",
        "SMOKE_MARKER_ID": "m0123456789ab",
    }
    assert {k: (s.name, s.plaintext) for k, s in smoke.secrets.items()} == {
        "POSTGRES_PASSWORD": ("dbstack-0123456789ab-postgresql-password", "Rs7restoredPw")
    }
    assert phase.run.secrets == ["Rs7restoredPw"]
    log = phase.run.out_dir / "smoke" / "markers-verify-pg-cluster-r" / "pytest.log"
    assert log.read_text(encoding="utf-8") == "1 passed\n"


def test_a_failed_read_back_returns_the_suite_s_cause(engine_here: Callable[[Engine], None]) -> None:
    failure = f'<failure message="{NOT_READ_BACK}"/>'
    phase = run_phase(engine_here, Markers("verify", restored_postgresql()), marker_suite(failure))

    assert (phase.check.name, phase.check.outcome, phase.check.message) == (
        "test_markers[verify]",
        Outcome.FAILED,
        NOT_READ_BACK,
    )
    assert (phase.forward.starts, phase.forward.stops) == (1, 1)


def test_a_restored_cluster_that_cannot_be_reached_fails_its_check_and_runs_no_suite(
    engine_here: Callable[[Engine], None],
) -> None:
    pending = CommandResult(1, "", "error: unable to forward port because pod is not running. Current status=Pending")
    phase = run_phase(
        engine_here, Markers("verify", restored_postgresql()), marker_suite(), start_exits={RESTORED: pending}
    )

    assert phase.engine.execs == [], "no account read, no install, no suite"
    assert (phase.check.name, phase.check.outcome, phase.check.message) == (
        "test_markers[verify]",
        Outcome.FAILED,
        "not reached: the port-forward to svc/pg-cluster-r-postgresql-postgresql:5432 did not come up: error: "
        "unable to forward port because pod is not running. Current status=Pending (exit code 1)",
    )


def test_a_marker_phase_whose_container_is_killed_fails_its_check_and_still_stops_the_forward(
    engine_here: Callable[[Engine], None],
) -> None:
    def killed(engine: Engine, run: Exec) -> Done:
        return Done(137, "collected 1 item\n", "", {})

    phase = run_phase(engine_here, Markers("write", restored_postgresql()), killed)

    assert (phase.check.name, phase.check.outcome, phase.check.message) == (
        "test_markers[write]",
        Outcome.FAILED,
        "the smoke container was killed by SIGKILL (exit code 137): out of memory, or stopped from outside; its "
        "last output is in smoke/pytest.log, no JUnit file could be read",
    )
    assert (phase.forward.starts, phase.forward.stops) == (1, 1)
    log = phase.run.out_dir / "smoke" / "markers-write-pg-cluster-r" / "pytest.log"
    assert log.read_text(encoding="utf-8") == "collected 1 item"


@pytest.mark.parametrize(
    "switch",
    [{"stop_errors": {RESTORED: query_error("service not found", {})}}, {"stop_hangs": {RESTORED}}],
    ids=["stop-fails", "stop-hangs"],
)
def test_a_forward_whose_stop_fails_or_never_answers_does_not_fail_the_check(
    engine_here: Callable[[Engine], None], switch: dict[str, Any]
) -> None:
    engine = Engine(
        no_toolbox_command, accounts={ACCOUNT: ("postgres", "Rs7restoredPw")}, suite=marker_suite(), **switch
    )
    engine_here(engine)
    config = load_config(VALUES, "ci")
    run = pipeline._Run(config, build_plan(config), suite_folder())
    toolbox = pipeline._toolbox_for_kubeconfig(config.images["toolbox"], cast(dagger.Secret, Secret("kc", "")))
    runner = pipeline._marker_runner(run, toolbox)
    found: list[CheckResult] = []

    async def main() -> float:
        started = anyio.current_time()
        with anyio.move_on_after(3600):
            found.append(await runner(Markers("verify", restored_postgresql()), 900))
        return anyio.current_time() - started

    seconds = in_virtual_time(main)
    (check,) = found
    assert (check.name, check.outcome, check.message) == ("test_markers[verify]", Outcome.PASSED, None)
    assert seconds == (60 if "stop_hangs" in switch else 0), "a stop that never answers is given up on after 60 s"
    assert engine.events == [f"start {RESTORED}", f"stop {RESTORED}"]


def test_a_short_step_gives_pytest_what_is_left_after_reaching_the_database(
    engine_here: Callable[[Engine], None],
) -> None:
    engine = Engine(no_toolbox_command, accounts={ACCOUNT: ("postgres", "Rs7restoredPw")}, suite=marker_suite())
    engine_here(engine)
    config = load_config(VALUES, "ci")
    run = pipeline._Run(config, build_plan(config), suite_folder())
    toolbox = pipeline._toolbox_for_kubeconfig(config.images["toolbox"], cast(dagger.Secret, Secret("kc", "")))
    runner = pipeline._marker_runner(run, toolbox)

    async def main() -> list[CheckResult]:
        return [await runner(Markers("write", restored_postgresql()), seconds) for seconds in (500, 250)]

    assert [c.outcome for c in in_virtual_time(main)] == [Outcome.PASSED, Outcome.PASSED]
    limits = [e.argv[2].split(" python -m pytest")[0].rsplit(" ", 1)[1] for e in smoke_execs(engine)]
    assert limits == ["260", "30"], "500 s less 240 s to reach the database; never under 30 s"


def test_a_failed_marker_check_is_its_database_s_and_named_with_its_context(
    engine_here: Callable[[Engine], None],
) -> None:
    pending = CommandResult(1, "", "error: unable to forward port because pod is not running. Current status=Pending")
    step = Markers("verify", restored_postgresql(), "restored pg-cluster-r")
    unreached = run_phase(engine_here, step, marker_suite(), start_exits={RESTORED: pending})
    killed = run_phase(engine_here, step, lambda engine, run: Done(137, "", "", {}))
    assert [(p.check.database, p.check.name, p.check.outcome) for p in (unreached, killed)] == [
        ("postgresql", "test_markers[verify] (restored pg-cluster-r)", Outcome.FAILED),
        ("postgresql", "test_markers[verify] (restored pg-cluster-r)", Outcome.FAILED),
    ]


def test_a_marker_check_pytest_ended_without_running_fails_with_pytest_s_exit_code(
    engine_here: Callable[[Engine], None],
) -> None:
    def usage_error(engine: Engine, run: Exec) -> Done:
        return Done(0, "ERROR: usage\n", "", {pipeline.SMOKE_STATUS: "4 1\n"})

    phase = run_phase(engine_here, Markers("write", restored_postgresql()), usage_error)
    assert (phase.check.database, phase.check.name, phase.check.outcome) == (
        "postgresql",
        "test_markers[write]",
        Outcome.FAILED,
    )
    message = phase.check.message or ""
    assert message.startswith("pytest exited with 4 and left no usable JUnit file: cannot read smoke JUnit file ")
    assert message.endswith("/smoke/markers-write-pg-cluster-r/junit.xml: No such file or directory")
