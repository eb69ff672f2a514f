"""deploy-and-test's smoke stage, offline, through the engine stand-ins (tests/engine_standins.py): the module builds
each database's forward from the toolbox and starts it, reads the accounts, builds the smoke container and runs the
suite in it; the engine starts, hangs or fails a forward, and kills the suite's container by the exit code its
exec ends with (128-191 raise ExecError, whose files are then lost). One forward that cannot come up fails that
database's checks while the others are still tested; whatever ends pytest, its output is kept. Nothing of the
module itself is replaced."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import dagger
import pipeline
import pytest
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Command
from dbstack.run.orchestrator import new_results
from dbstack.run.results import Outcome, RunResults
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import in_virtual_time
from engine_standins import CacheVolume, Directory, Done, Engine, Exec, File, Secret, Suite, standin_suite
from fake_toolbox import query_error
from test_dagger_flow import ACCOUNTS, FORWARDS, SMOKE_SCRIPT, account_reads, forwards, read_script, smoke_execs
from test_dagger_flow import smoke_suite as suite_folder

VALUES = Path(__file__).resolve().parents[1] / "values"
REPO_SMOKE = Path(__file__).resolve().parents[1] / "ci" / "smoke"
RUN_ID = "0123456789ab"
TOOLBOX = "alpine/k8s:1.31.4"
PYTHON = "python:3.12.8-slim-bookworm"
KUBECONFIG = Secret("kubeconfig", "apiVersion: v1\nkind: Config\n")
PIP = ["pip", "install", "--disable-pip-version-check", "--require-hashes", "-r", "requirements.txt"]
REDIS_PENDING = "error: unable to forward port because pod is not running. Current status=Pending"
LOGINS = [
    "postgresql: logging in to pg-cluster-postgresql-postgresql with Zq9pgPlain7Hx",
    "redis: logging in to redis-cluster-redis-redis with Rd4vPlain2Kq",
    "elasticsearch: logging in to es-cluster-mdit-http with Es8wPlain5Tn",
]


def no_toolbox_command(command: Command, timeout_s: float) -> CommandResult:
    raise AssertionError(f"the smoke stage ran a toolbox command: {command.argv}")


BACKSTOP_S = 3600
"""Virtual seconds after which a stage that never ends is cut (a time limit the module ignored)."""


@dataclass
class Stage:
    engine: Engine
    run: pipeline._Run
    results: RunResults
    seconds: float
    """Virtual time the stage took: the stand-ins answer at once, so only the module's own limits take time."""

    @property
    def smoke_dir(self) -> Path:
        return self.run.out_dir / "smoke"

    def checks(self) -> dict[str, list[tuple[str, Outcome, str | None]]]:
        return {d.key: [(c.name, c.outcome, c.message) for c in d.checks] for d in self.results.databases}


def run_smoke(engine_here: Callable[[Engine], None], engine: Engine) -> Stage:
    """The smoke stage of a run whose every database reached Running, on a toolbox the module built."""
    engine_here(engine)
    config = load_config(VALUES, "ci")
    plan = build_plan(config)
    run = pipeline._Run(config, plan, suite_folder())
    run.run_id = RUN_ID
    results = new_results(plan, "k3s", time.time())
    for database in results.databases:
        database.outcome = Outcome.PASSED
    toolbox = pipeline._toolbox_for_kubeconfig(config.images["toolbox"], cast(dagger.Secret, KUBECONFIG))

    async def main() -> float:
        started = anyio.current_time()
        with anyio.move_on_after(BACKSTOP_S):
            await pipeline._smoke(run, toolbox, results)
        return anyio.current_time() - started

    return Stage(engine, run, results, in_virtual_time(main))


def world(suite: Suite | None = None, **switches: Any) -> Engine:
    return Engine(no_toolbox_command, accounts=dict(ACCOUNTS), suite=suite or standin_suite(), **switches)


def test_every_database_is_forwarded_from_the_toolbox_on_its_own_then_tested_together(
    engine_here: Callable[[Engine], None],
) -> None:
    stage = run_smoke(engine_here, world())
    engine = stage.engine

    assert {name: (s.image, s.ports, s.starts, s.stops) for name, s in forwards(engine).items()} == {
        name: (TOOLBOX, (port,), 1, 0) for name, port in FORWARDS.items()
    }
    for name, port in FORWARDS.items():
        forward = forwards(engine)[name]
        assert forward.args[:2] == ["sh", "-c"]
        assert f"kubectl port-forward --address=0.0.0.0 -n default svc/{name} {port}:{port} |" in forward.args[2]
        assert forward.mounts == {"/root/.kube/config": KUBECONFIG}, "a forward runs kubectl with the kubeconfig"
        assert forward.env["KUBECONFIG"] == "/root/.kube/config"
    assert account_reads(engine) == [
        ["timeout", "60", "sh", "-c", read_script("default", "pg-cluster-postgresql-account-postgres")],
        ["timeout", "60", "sh", "-c", read_script("default", "redis-cluster-redis-account-default")],
        ["timeout", "60", "sh", "-c", read_script("default", "es-cluster-mdit-account-elastic")],
    ]
    install, smoke = [e for e in engine.execs if e.image == PYTHON]
    assert (install.argv, install.env["(workdir)"]) == (PIP, "/src")
    assert smoke.argv == ["sh", "-c", SMOKE_SCRIPT]
    assert sorted(smoke.mounts) == ["/root/.cache/pip", "/src/ci/smoke", "/src/requirements.txt"]
    assert all(smoke.bindings[name] is forwards(engine)[name] for name in FORWARDS)
    assert sorted(smoke.bindings) == sorted(FORWARDS)
    assert smoke.env["SMOKE_REQUIRE"] == "postgresql,redis,qdrant,elasticsearch"
    assert {k: (s.name, s.plaintext) for k, s in smoke.secrets.items()} == {
        "POSTGRES_PASSWORD": ("dbstack-0123456789ab-postgresql-password", "Zq9pgPlain7Hx"),
        "REDIS_PASSWORD": ("dbstack-0123456789ab-redis-password", "Rd4vPlain2Kq"),
        "ES_PASSWORD": ("dbstack-0123456789ab-elasticsearch-password", "Es8wPlain5Tn"),
    }
    assert stage.run.secrets == ["Zq9pgPlain7Hx", "Rd4vPlain2Kq", "Es8wPlain5Tn"], "handed to report masking"

    assert (stage.results.smoke_outcome, stage.results.smoke_cause) == (Outcome.PASSED, None)
    assert stage.checks() == {
        "postgresql": [("test_roundtrip", Outcome.PASSED, None)],
        "redis": [("test_roundtrip", Outcome.PASSED, None)],
        "qdrant": [("test_roundtrip", Outcome.PASSED, None)],
        "elasticsearch": [("test_roundtrip", Outcome.PASSED, None)],
    }
    assert (stage.smoke_dir / "pytest.log").read_text(encoding="utf-8").splitlines() == LOGINS
    assert (stage.smoke_dir / "junit.xml").read_text(encoding="utf-8").count("<testcase ") == 4


@pytest.mark.parametrize(
    ("switch", "cause", "seconds"),
    [
        ({"hangs": {"redis-cluster-redis-redis"}}, "did not come up within 90 s", 90),
        (
            {"start_exits": {"redis-cluster-redis-redis": CommandResult(1, "", REDIS_PENDING)}},
            f"did not come up: {REDIS_PENDING} (exit code 1)",
            0,
        ),
    ],
    ids=["hangs", "exits"],
)
def test_a_forward_that_cannot_come_up_fails_only_its_database_and_the_others_are_tested(
    engine_here: Callable[[Engine], None], switch: dict[str, Any], cause: str, seconds: float
) -> None:
    stage = run_smoke(engine_here, world(**switch))
    engine = stage.engine

    assert stage.seconds == seconds, "a forward that hangs is given up on at its limit, and only then"

    assert {name: s.starts for name, s in forwards(engine).items()} == dict.fromkeys(FORWARDS, 1)
    assert [argv[-1].split()[6] for argv in account_reads(engine)] == [
        "pg-cluster-postgresql-account-postgres",
        "es-cluster-mdit-account-elastic",
    ]
    (smoke,) = smoke_execs(engine)
    assert sorted(smoke.bindings) == [
        "es-cluster-mdit-http",
        "pg-cluster-postgresql-postgresql",
        "qdrant-cluster-qdrant-qdrant",
    ]
    assert smoke.env["SMOKE_REQUIRE"] == "postgresql,qdrant,elasticsearch"
    assert "REDIS_HOST" not in smoke.env
    assert sorted(smoke.secrets) == ["ES_PASSWORD", "POSTGRES_PASSWORD"]
    message = f"the port-forward to svc/redis-cluster-redis-redis:6379 {cause}"
    assert stage.checks() == {
        "postgresql": [("test_roundtrip", Outcome.PASSED, None)],
        "redis": [("reach redis-cluster-redis-redis:6379", Outcome.FAILED, message)],
        "qdrant": [("test_roundtrip", Outcome.PASSED, None)],
        "elasticsearch": [("test_roundtrip", Outcome.PASSED, None)],
    }
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert (
        stage.results.smoke_cause == f"not reached, so not tested: redis: {message} (the other databases were tested)"
    )


def test_when_no_forward_comes_up_the_suite_does_not_run(engine_here: Callable[[Engine], None]) -> None:
    refused = CommandResult(1, "", REDIS_PENDING)
    stage = run_smoke(engine_here, world(start_exits=dict.fromkeys(FORWARDS, refused)))

    assert stage.engine.execs == [], "no account read, no install, no suite"
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert stage.results.smoke_cause == (
        "no database could be reached, so the smoke suite did not run: "
        f"postgresql: the port-forward to svc/pg-cluster-postgresql-postgresql:5432 did not come up: {REDIS_PENDING} "
        "(exit code 1); "
        f"redis: the port-forward to svc/redis-cluster-redis-redis:6379 did not come up: {REDIS_PENDING} "
        "(exit code 1); "
        f"qdrant: the port-forward to svc/qdrant-cluster-qdrant-qdrant:6333 did not come up: {REDIS_PENDING} "
        "(exit code 1); "
        f"elasticsearch: the port-forward to svc/es-cluster-mdit-http:9200 did not come up: {REDIS_PENDING} "
        "(exit code 1)"
    )
    assert [(d.key, len(d.checks), d.checks[0].outcome) for d in stage.results.databases] == [
        ("postgresql", 1, Outcome.FAILED),
        ("redis", 1, Outcome.FAILED),
        ("qdrant", 1, Outcome.FAILED),
        ("elasticsearch", 1, Outcome.FAILED),
    ]


JUNIT_POSTGRESQL = (
    '<testsuites><testsuite name="pytest"><testcase classname="ci.smoke.test_postgresql" name="test_roundtrip" '
    'time="1.0"></testcase></testsuite></testsuites>'
)


def test_a_suite_stopped_at_its_limit_keeps_its_log_and_the_checks_that_finished(
    engine_here: Callable[[Engine], None],
) -> None:
    def interrupted(engine: Engine, run: Exec) -> Done:
        files = {pipeline.SMOKE_STATUS: "124 600\n", pipeline.SMOKE_JUNIT: JUNIT_POSTGRESQL}
        return Done(0, "KeyboardInterrupt\n1 passed", "", files)

    stage = run_smoke(engine_here, world(interrupted))
    assert stage.results.smoke_outcome is Outcome.TIMED_OUT
    assert stage.results.smoke_cause == (
        "pytest was stopped at its 600 s limit (the checks that finished are in junit.xml); see smoke/pytest.log"
    )
    assert (stage.smoke_dir / "pytest.log").read_text(encoding="utf-8") == "KeyboardInterrupt\n1 passed"
    assert (stage.smoke_dir / "junit.xml").read_text(encoding="utf-8") == JUNIT_POSTGRESQL
    assert stage.checks()["postgresql"] == [("test_roundtrip", Outcome.PASSED, None)]


@pytest.mark.parametrize(("code", "signal"), [(137, "SIGKILL"), (143, "SIGTERM")])
def test_a_smoke_container_killed_by_a_signal_keeps_the_output_the_engine_returned(
    engine_here: Callable[[Engine], None], code: int, signal: str
) -> None:
    def killed(engine: Engine, run: Exec) -> Done:
        files = {pipeline.SMOKE_STATUS: "0 12\n", pipeline.SMOKE_JUNIT: JUNIT_POSTGRESQL}  # lost with the container
        return Done(code, "collected 9 items\ntest_postgresql.py ..\n", "", files)

    stage = run_smoke(engine_here, world(killed))
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert stage.results.smoke_cause == (
        f"the smoke container was killed by {signal} (exit code {code}): out of memory, or stopped from outside; "
        "its last output is in smoke/pytest.log, no JUnit file could be read"
    )
    assert (stage.smoke_dir / "pytest.log").read_text(encoding="utf-8") == "collected 9 items\ntest_postgresql.py .."
    assert not (stage.smoke_dir / "junit.xml").exists()
    assert all(d.checks == [] for d in stage.results.databases)


def test_a_bound_forward_that_exits_mid_run_is_the_suite_s_cause(engine_here: Callable[[Engine], None]) -> None:
    stage = run_smoke(engine_here, world(drops={"pg-cluster-postgresql-postgresql"}))

    (smoke,) = smoke_execs(stage.engine)
    assert smoke.bindings["pg-cluster-postgresql-postgresql"].starts == 1
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert stage.results.smoke_cause == (
        "the smoke suite did not run to its end: bound service pg-cluster-postgresql-postgresql exited: exit code 1"
    )


def test_the_suite_installs_its_locked_requirements_in_pinned_python_with_a_pip_cache(
    engine_here: Callable[[Engine], None],
) -> None:
    stage = run_smoke(engine_here, world())
    install, smoke = [e for e in stage.engine.execs if e.image == PYTHON]
    requirements = (REPO_SMOKE / "requirements.txt").read_text(encoding="utf-8")
    assert install.mounts == {
        "/root/.cache/pip": CacheVolume("dbstack-smoke-pip"),
        "/src/requirements.txt": File(text=requirements),
        "/src/ci/smoke": Directory(REPO_SMOKE),
    }
    assert smoke.mounts == install.mounts
    assert re.fullmatch(r"[0-9a-f]{32}", smoke.env["DBSTACK_EXEC_NONCE"]), "run every time, never from the cache"


@pytest.mark.parametrize(
    ("hangs", "cause", "seconds"),
    [
        ("pip install", "the smoke suite's dependencies did not install within 900 s", 900),
        ("/reports/smoke-exit", "the smoke suite got no answer from the engine within 690.0 s", 690),
    ],
    ids=["install", "suite"],
)
def test_an_install_or_a_suite_the_engine_never_answers_is_cut_at_its_limit(
    engine_here: Callable[[Engine], None], hangs: str, cause: str, seconds: float
) -> None:
    stage = run_smoke(engine_here, world(hangs={hangs}))
    assert (stage.results.smoke_outcome, stage.results.smoke_cause) == (Outcome.FAILED, cause)
    assert stage.seconds == seconds


def test_a_suite_shell_that_ends_without_its_exit_record_says_so(engine_here: Callable[[Engine], None]) -> None:
    def unrecorded(engine: Engine, run: Exec) -> Done:  # the shell's last echo failed: no record, no JUnit
        return Done(1, "collected 4 items\n", "sh: write error: No space left on device\n", {})

    stage = run_smoke(engine_here, world(unrecorded))
    assert (stage.results.smoke_outcome, stage.results.smoke_cause) == (
        Outcome.FAILED,
        "the smoke suite did not run to its end: lstat /reports/smoke-exit: no such file or directory",
    )


def test_an_unreadable_exit_record_fails_the_suite_naming_the_record(engine_here: Callable[[Engine], None]) -> None:
    def garbled(engine: Engine, run: Exec) -> Done:
        return Done(0, "4 passed\n", "", {pipeline.SMOKE_STATUS: "done\n", pipeline.SMOKE_JUNIT: JUNIT_POSTGRESQL})

    stage = run_smoke(engine_here, world(garbled))
    assert (stage.results.smoke_outcome, stage.results.smoke_cause) == (
        Outcome.FAILED,
        "the smoke suite's exit record /reports/smoke-exit is unreadable: not '<exit code> <seconds>': 'done'",
    )
    assert (stage.smoke_dir / "pytest.log").read_text(encoding="utf-8") == "4 passed\n"


def test_a_pytest_that_died_before_writing_junit_leaves_no_junit_file_and_its_log(
    engine_here: Callable[[Engine], None],
) -> None:
    def crashed(engine: Engine, run: Exec) -> Done:
        return Done(0, "ImportError while loading conftest\n", "", {pipeline.SMOKE_STATUS: "4 1\n"})

    stage = run_smoke(engine_here, world(crashed))
    cause = stage.results.smoke_cause or ""
    assert stage.results.smoke_outcome is Outcome.FAILED
    assert cause.startswith("pytest exited with 4 and left no usable JUnit file: cannot read smoke JUnit file ")
    assert cause.endswith("/smoke/junit.xml: No such file or directory")
    assert (stage.smoke_dir / "pytest.log").read_text(encoding="utf-8") == "ImportError while loading conftest\n"
    assert sorted(p.name for p in stage.smoke_dir.iterdir()) == ["pytest.log"]


@pytest.mark.parametrize(
    ("switch", "said"),
    [
        (
            {"start_exits": {"redis-cluster-redis-redis": CommandResult(1, "Forwarding stopped\n", "")}},
            "Forwarding stopped (exit code 1)",
        ),
        ({"start_errors": {"redis-cluster-redis-redis": query_error("", {})}}, "QueryError"),
    ],
    ids=["only-stdout", "no-words"],
)
def test_an_engine_error_is_told_by_its_output_else_by_its_kind(
    engine_here: Callable[[Engine], None], switch: dict[str, Any], said: str
) -> None:
    stage = run_smoke(engine_here, world(**switch))
    assert stage.checks()["redis"] == [
        (
            "reach redis-cluster-redis-redis:6379",
            Outcome.FAILED,
            f"the port-forward to svc/redis-cluster-redis-redis:6379 did not come up: {said}",
        )
    ]
