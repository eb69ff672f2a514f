"""The smoke run's pieces that need no engine, run for real: the port-forward loop in `sh` with a fake kubectl, the
suite's command with a real pytest under coreutils `timeout` (the Python image's), and what their ends mean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dbstack.config.load import load_config
from dbstack.plan.build import build_plan
from dbstack.plan.model import Endpoint, Plan
from dbstack.run import smokeenv, smokerun
from dbstack.run.orchestrator import new_results
from dbstack.run.results import CheckResult, Outcome, RunResults

VALUES = Path(__file__).resolve().parents[1] / "values"
SH = shutil.which("sh") or "/bin/sh"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(VALUES))


def endpoint(plan: Plan, key: str) -> Endpoint:
    return next(e for e in plan.endpoints if e.database == key)


def fake_kubectl(tmp_path: Path, body: str) -> dict[str, str]:
    """PATH with a `kubectl` that appends its arguments to calls.txt, then runs `body`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls.txt\n{body}\n', encoding="utf-8")
    kubectl.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def run_forward(tmp_path: Path, e: Endpoint, kubectl_body: str, limit_s: float) -> subprocess.CompletedProcess[str]:
    script = smokerun.forward_script(e, pause_s=0.05).replace("/tmp/dbstack-forward-listened", f"{tmp_path}/up")
    return subprocess.run(
        ["timeout", str(limit_s), SH, "-c", script],
        capture_output=True,
        text=True,
        env=fake_kubectl(tmp_path, kubectl_body),
        check=False,
        timeout=30,
    )


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls.txt").read_text(encoding="utf-8").splitlines()


def test_a_forward_that_never_listens_gives_up_with_kubectl_s_own_error(plan: Plan, tmp_path: Path) -> None:
    pending = "error: unable to forward port because pod is not running. Current status=Pending"
    done = run_forward(tmp_path, endpoint(plan, "postgresql"), f"echo '{pending}' >&2; exit 1", limit_s=10)
    assert done.returncode == 1  # the service exits, so Dagger's start fails instead of waiting
    assert done.stderr.splitlines()[0] == pending
    assert "kubectl port-forward to svc/pg-cluster-postgresql-postgresql never listened in 5 tries" in done.stderr
    assert len(calls(tmp_path)) == smokerun.FORWARD_TRIES


def test_a_forward_that_drops_after_listening_is_started_again_and_never_ends(plan: Plan, tmp_path: Path) -> None:
    dropping = "echo 'Forwarding from 0.0.0.0:5432 -> 5432'; echo 'E0101 lost connection to pod' >&2; exit 1"
    done = run_forward(tmp_path, endpoint(plan, "postgresql"), dropping, limit_s=0.8)
    assert done.returncode == 124  # still running when the test's own limit stopped it
    assert len(calls(tmp_path)) > smokerun.FORWARD_TRIES
    started = len(calls(tmp_path))
    # Every start printed its line, except perhaps the last one, which the limit may cut before it prints.
    assert done.stdout.count("Forwarding from 0.0.0.0:5432 -> 5432") in (started - 1, started)
    assert "ended; starting it again" in done.stderr


def test_the_forward_targets_the_service_on_every_address_in_its_namespace(plan: Plan, tmp_path: Path) -> None:
    e = endpoint(plan, "redis")
    run_forward(tmp_path, e, "exit 1", limit_s=10)
    assert set(calls(tmp_path)) == {
        f"port-forward --address=0.0.0.0 -n {e.namespace} svc/{e.service} {e.port}:{e.port}"
    }


QUICK_THEN_STUCK = {
    "test_postgresql.py": "def test_quick():\n    assert True\n",
    "test_redis.py": "import time\n\n\ndef test_stuck():\n    time.sleep(60)\n",
}


def run_suite(tmp_path: Path, files: dict[str, str], limit_s: int) -> tuple[str, Path, smokerun.SuiteExit]:
    """The pipeline's recorded smoke command, run here: `python -m pytest ci/smoke` from the work folder."""
    work = tmp_path / "src"
    (work / "ci" / "smoke").mkdir(parents=True)
    for name, text in files.items():
        (work / "ci" / "smoke" / name).write_text(text, encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    junit, status = tmp_path / "junit.xml", tmp_path / "exit"
    command = smokerun.recorded_command(smokeenv.smoke_command(str(junit), limit_s), str(status))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, env=env, check=False, timeout=60)
    assert done.returncode == 0, done.stderr  # whatever ended pytest: the engine would not raise
    return done.stdout + done.stderr, junit, smokerun.SuiteExit.parse(status.read_text(encoding="utf-8"))


def results_for(plan: Plan) -> RunResults:
    results = new_results(plan, "k3s", time.time())
    for database in results.databases:
        database.outcome = Outcome.PASSED
    return results


def test_a_suite_stopped_at_its_limit_keeps_its_output_and_the_junit_of_the_checks_that_finished(
    plan: Plan, tmp_path: Path
) -> None:
    log, junit, ended = run_suite(tmp_path, QUICK_THEN_STUCK, limit_s=2)
    assert ended.exit_code == 124 and ended.timed_out(2)
    assert "KeyboardInterrupt" in log
    assert "test_quick" in junit.read_text(encoding="utf-8")
    results = results_for(plan)
    smokerun.record_suite(results, ended, junit, 2)
    assert results.smoke_outcome is Outcome.TIMED_OUT
    assert results.smoke_cause == (
        "pytest was stopped at its 2 s limit (the checks that finished are in junit.xml); see smoke/pytest.log"
    )
    postgresql = next(d for d in results.databases if d.key == "postgresql")
    assert [(c.name, c.outcome) for c in postgresql.checks] == [("test_quick", Outcome.PASSED)]


def test_a_suite_killed_before_its_limit_is_a_failure_that_keeps_its_output(plan: Plan, tmp_path: Path) -> None:
    oom = "import os\nimport signal\n\n\ndef test_oom():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    log, junit, ended = run_suite(tmp_path, {"test_redis.py": oom}, limit_s=60)
    assert ended.exit_code == 137 and not ended.timed_out(60)
    assert "collected 1 item" in log
    assert not junit.exists()
    results = results_for(plan)
    smokerun.record_suite(results, ended, junit, 60)
    assert results.smoke_outcome is Outcome.FAILED
    assert results.smoke_cause == (
        f"pytest was killed by SIGKILL (exit code 137) after {ended.seconds} s, before its 60 s limit: out of "
        "memory, or stopped from outside (it left no JUnit file); see smoke/pytest.log"
    )


@pytest.mark.parametrize(
    ("text", "code", "seconds", "timed_out"),
    [("124 600\n", 124, 600, True), ("137 601", 137, 601, True), ("137 12", 137, 12, False), ("1 3", 1, 3, False)],
)
def test_the_suite_s_exit_record_reads_back(text: str, code: int, seconds: int, timed_out: bool) -> None:
    ended = smokerun.SuiteExit.parse(text)
    assert (ended.exit_code, ended.seconds, ended.timed_out(600)) == (code, seconds, timed_out)


@pytest.mark.parametrize("text", ["", "143", "abc 3", "1 2 3"])
def test_an_unreadable_exit_record_is_refused_saying_what_it_held(text: str) -> None:
    with pytest.raises(ValueError, match="not '<exit code> <seconds>'"):
        smokerun.SuiteExit.parse(text)


def test_an_unreachable_database_fails_only_its_own_checks_and_the_suite_says_which(plan: Plan) -> None:
    results = results_for(plan)
    redis = next(d for d in results.databases if d.key == "redis")
    redis.checks = [CheckResult("redis", "test_ping", Outcome.PASSED)]
    results.smoke_outcome = Outcome.PASSED
    e = endpoint(plan, "postgresql")
    smokerun.record_unreachable(results, [smokerun.Unreachable(e, "the forward did not come up")], suite_ran=True)
    postgresql = next(d for d in results.databases if d.key == "postgresql")
    assert [(c.name, c.outcome, c.message) for c in postgresql.checks] == [
        (f"reach {e.service}:{e.port}", Outcome.FAILED, "the forward did not come up")
    ]
    assert [c.outcome for c in redis.checks] == [Outcome.PASSED]
    assert results.smoke_outcome is Outcome.FAILED
    assert results.smoke_cause == (
        "not reached, so not tested: postgresql: the forward did not come up (the other databases were tested)"
    )


def test_when_no_database_can_be_reached_the_suite_does_not_run_and_says_why(plan: Plan) -> None:
    results = results_for(plan)
    misses = [smokerun.Unreachable(e, "no answer") for e in plan.endpoints]
    smokerun.record_unreachable(results, misses, suite_ran=False)
    assert results.smoke_outcome is Outcome.FAILED
    assert results.smoke_cause is not None
    assert results.smoke_cause.startswith("no database could be reached, so the smoke suite did not run: postgresql")
    assert not results.passed


def test_nothing_unreachable_changes_nothing(plan: Plan) -> None:
    results = results_for(plan)
    results.smoke_outcome = Outcome.PASSED
    smokerun.record_unreachable(results, [], suite_ran=True)
    assert (results.smoke_outcome, results.smoke_cause) == (Outcome.PASSED, None)


def test_the_recorded_command_creates_its_status_folder_and_quotes_what_it_runs(tmp_path: Path) -> None:
    status = tmp_path / "not yet" / "exit code"
    command = smokerun.recorded_command(["sh", "-c", "echo 'a b'; exit 3"], str(status))
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    assert (done.returncode, done.stdout) == (0, "a b\n")
    assert smokerun.SuiteExit.parse(status.read_text(encoding="utf-8")).exit_code == 3
