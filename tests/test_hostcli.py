"""`dbstack deploy` and `dbstack teardown` end to end, on the simulated cluster in (shortened) real time."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dbstack.cli import host as hostcli
from dbstack.cli.main import EXIT_INTERRUPTED, EXIT_UNREACHABLE, build_parser, main
from dbstack.run import orchestrator
from dbstack.sim.cluster import Failure, Latencies, Scenario, SimCluster

TINY = 0.001


def quick(**failures: Failure) -> SimCluster:
    return SimCluster(Scenario(latencies=Latencies.uniform(TINY), failures=failures))


def deploy_args(values_dir: Path, out: Path) -> argparse.Namespace:
    return build_parser().parse_args(["deploy", "--values", str(values_dir), "--out", str(out), "--progress", "plain"])


def test_deploy_writes_reports_and_names_every_ready_endpoint(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(
        ["deploy", "--values", str(values_dir), "--out", str(tmp_path), "--progress", "plain"]
    )
    assert hostcli.deploy(args, runner=quick()) == 0
    out = capsys.readouterr().out
    assert "pg-cluster-postgresql-postgresql.default.svc.cluster.local:5432" in out
    assert "(Secret pg-cluster-postgresql-account-postgres)" in out
    assert out.rstrip().endswith(f"deploy passed; reports in {tmp_path}")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["smoke_outcome"] == "skipped"
    assert saved["smoke_cause"] == hostcli.SMOKE_NOT_RUN
    assert (tmp_path / "junit.xml").is_file()


def test_deploy_exits_1_with_the_cause_when_a_database_fails(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orchestrator, "WATCH_INTERVAL_S", 0.01)
    args = build_parser().parse_args(
        ["deploy", "--values", str(values_dir), "--out", str(tmp_path), "--progress", "plain"]
    )
    assert hostcli.deploy(args, runner=quick(redis=Failure.CRASHLOOP)) == 1
    err = capsys.readouterr().err
    assert "cluster:redis: failed: redis-cluster-redis-0 container redis CrashLoopBackOff" in err
    assert (tmp_path / "diagnostics" / "redis" / "pods.txt").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["smoke_outcome"] == "not_run"


def test_deploy_without_kubectl_on_path_is_a_one_line_error(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["deploy", "--values", str(values_dir), "--out", str(tmp_path / "out")]) == EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "dbstack deploy: kubectl and helm not found on PATH; install them or run the pipeline through the Dagger module"
    ]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    preflight, *planned = saved["steps"]
    assert (preflight["id"], preflight["outcome"]) == ("preflight", "failed")
    assert preflight["cause"].startswith("kubectl and helm not found on PATH")
    assert {s["outcome"] for s in planned} == {"not_run"}
    assert not saved["passed"]
    assert "preflight" in (tmp_path / "out" / "junit.xml").read_text()


def test_teardown_that_cannot_start_still_records_why(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "reports" / "teardown"
    assert main(["teardown", "--values", str(values_dir)]) == EXIT_UNREACHABLE
    steps = json.loads((out / "results.json").read_text())["steps"]
    assert (steps[0]["id"], steps[0]["outcome"]) == ("preflight", "failed")


def test_teardown_all_after_deploy_passes(values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim = quick()
    deploy = build_parser().parse_args(["deploy", "--values", str(values_dir), "--out", str(tmp_path / "d")])
    assert hostcli.deploy(deploy, runner=sim) == 0
    teardown = build_parser().parse_args(["teardown", "--values", str(values_dir), "--all"])
    teardown.out = tmp_path / "t"
    assert hostcli.teardown(teardown, runner=sim) == 0
    assert sim.unknown == []
    assert "teardown done" in capsys.readouterr().out


CTRL_C_SCRIPT = """
import sys
from dbstack.cli import host as hostcli
from dbstack.cli.main import build_parser
from dbstack.sim.cluster import Latencies, Scenario, SimCluster
quick = Latencies(api_s=0.01, helm_s=0.01, snapshot_crds_s=0.01, kubeblocks_crds_s=0.01, kubeblocks_s=600)
args = build_parser().parse_args(["deploy", "--values", sys.argv[1], "--out", sys.argv[2], "--progress", "plain"])
sys.exit(hostcli.deploy(args, runner=SimCluster(Scenario(latencies=quick))))
"""


def test_ctrl_c_during_deploy_still_writes_results_reports_and_diagnostics(values_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(values_dir), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        if "kubeblocks waiting:" in line:
            break
    child.send_signal(signal.SIGINT)
    rest, err = child.communicate(timeout=120)
    assert child.returncode == EXIT_INTERRUPTED, err
    assert f"deploy interrupted; reports in {out}" in rest
    steps = {s["id"]: s for s in json.loads((out / "results.json").read_text())["steps"]}
    assert steps["kubeblocks"]["outcome"] == "cancelled"
    assert steps["addon:redis"]["outcome"] == "not_run"
    assert (out / "diagnostics" / "kubeblocks" / "kubeblocks.log").is_file()
    assert (out / "summary.md").is_file()
