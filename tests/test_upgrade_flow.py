"""upgrade-test end to end, offline, through the engine stand-ins (tests/engine_standins.py): k3s starts and stops as
a service, the base is deployed on the simulated cluster, the marker phases and the whole smoke suite run in the
smoke container, and the markers are written to, and read back from, the simulated cluster's own store. Nothing of
the module itself is replaced."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import dagger
import pipeline
import pytest
from dagger.mod._exceptions import FunctionError
from dbstack.sim.cluster import in_virtual_time
from engine_standins import Directory, Engine, Exec, Secret
from fake_toolbox import query_error
from test_dagger_flow import ENGINE_DOWN, K3S, k3s_services, smoke_execs, smoke_suite, summary, values, world

CLUSTERS = ("pg-cluster", "redis-cluster", "qdrant-cluster", "es-cluster")
ALL = "postgresql,redis,qdrant,elasticsearch"
REPO = Path(__file__).resolve().parents[1]
KUBECONFIG = cast(dagger.Secret, Secret("kubeconfig", "apiVersion: v1\nkind: Config\n"))


def new_values(values_dir: Path) -> dagger.Directory:
    """The change under test: PostgreSQL 16.4.0 -> 16.9.0, nothing else."""
    text = (values_dir / "postgresql.yaml").read_text(encoding="utf-8")
    assert "version: 16.4.0" in text
    (values_dir / "postgresql.yaml").write_text(text.replace("16.4.0", "16.9.0"), encoding="utf-8")
    return cast(dagger.Directory, Directory(values_dir))


def upgrade_test(new: dagger.Directory) -> Directory:
    async def main() -> dagger.Directory:
        return await pipeline.Dbstack().upgrade_test(new, smoke_suite(), values())

    reports = in_virtual_time(main)
    assert isinstance(reports, Directory)
    return reports


def timeline(engine: Engine) -> list[str]:
    """What the smoke container ran (`<phase> <databases>`, `suite <databases>`) and PostgreSQL's Helm release
    (`helm pg-cluster <first values line>`), in the order the engine ran them."""
    smoke = {id(e) for e in smoke_execs(engine)}
    events = []
    for run in engine.execs:
        if id(run) in smoke:
            events.append(f"{run.env.get('SMOKE_MARKERS', 'suite')} {run.env['SMOKE_REQUIRE']}")
        elif run.argv[2:6] == ["helm", "upgrade", "--install", "pg-cluster"]:
            events.append(f"helm pg-cluster {(run.stdin or '').splitlines()[0]}")
    return events


def marker_execs(engine: Engine) -> list[Exec]:
    return [e for e in smoke_execs(engine) if "SMOKE_MARKERS" in e.env]


def upgrade_steps(report: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(s["id"], s["outcome"], s["cause"]) for s in report["steps"] if s["id"].startswith("upgrade:")]


def test_markers_are_written_before_the_upgrade_read_back_after_it_then_the_whole_suite_runs(
    engine_here: Callable[[Engine], None], values_dir: Path, capsys: pytest.CaptureFixture[str], span_names: list[str]
) -> None:
    engine, cluster = world()
    engine_here(engine)
    reports = upgrade_test(new_values(values_dir))

    # Each step's progress is on stderr as it happens, the upgrade stage's too.
    progress = [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines() if " passed after " in line]
    assert sorted(line.split(" passed after ")[0] for line in progress if line.startswith("upgrade:")) == [
        "upgrade:cluster:postgresql",
        "upgrade:markers-verify:elasticsearch",
        "upgrade:markers-verify:postgresql",
        "upgrade:markers-verify:qdrant",
        "upgrade:markers-verify:redis",
        "upgrade:markers-write:elasticsearch",
        "upgrade:markers-write:postgresql",
        "upgrade:markers-write:qdrant",
        "upgrade:markers-write:redis",
    ]

    events = timeline(engine)
    assert [e for e in events if "postgresql" in e or "pg-cluster" in e] == [
        "helm pg-cluster version: 16.4.0",
        "write postgresql",
        "helm pg-cluster version: 16.9.0",
        "verify postgresql",
        f"suite {ALL}",
    ]
    upgraded = events.index("helm pg-cluster version: 16.9.0")
    assert sorted(e for e in events[:upgraded] if e.startswith("write")) == [
        "write elasticsearch",
        "write postgresql",
        "write qdrant",
        "write redis",
    ]
    assert sorted(e for e in events if e.startswith("verify")) == [
        "verify elasticsearch",
        "verify postgresql",
        "verify qdrant",
        "verify redis",
    ]
    assert events[-1] == f"suite {ALL}"

    # One marker id for the whole run, and the simulated databases hold it (on k3s the markers are not cleaned).
    (marker,) = {e.env["SMOKE_MARKER_ID"] for e in marker_execs(engine)}
    assert re.fullmatch(r"m[0-9a-f]{12}", marker)
    assert cluster.sim.backups.markers == {("default", name): {marker} for name in CLUSTERS}
    pg_verify = next(e for e in marker_execs(engine) if e.env["SMOKE_MARKERS"] == "verify" and "POSTGRES_HOST" in e.env)
    assert pg_verify.argv[2].endswith(
        '-o junit_family=xunit2 -m postgresql; code=$?; echo "$code $(($(date +%s) - started))" > /reports/smoke-exit'
    )
    assert sorted(pg_verify.bindings) == ["pg-cluster-postgresql-postgresql"]
    assert {k: s.plaintext for k, s in pg_verify.secrets.items()} == {"POSTGRES_PASSWORD": "Zq9pgPlain7Hx"}

    report = summary(reports)
    assert upgrade_steps(report) == [
        ("upgrade:markers-write:postgresql", "passed", None),
        ("upgrade:markers-write:redis", "passed", None),
        ("upgrade:markers-write:qdrant", "passed", None),
        ("upgrade:markers-write:elasticsearch", "passed", None),
        ("upgrade:cluster:postgresql", "passed", None),
        ("upgrade:markers-verify:postgresql", "passed", None),
        ("upgrade:markers-verify:redis", "passed", None),
        ("upgrade:markers-verify:qdrant", "passed", None),
        ("upgrade:markers-verify:elasticsearch", "passed", None),
    ]
    assert report["upgrade"]["survival"] == [
        {"database": key, "outcome": "passed", "message": None}
        for key in ("postgresql", "redis", "qdrant", "elasticsearch")
    ]
    assert (report["upgrade"]["baseValues"], report["run"]["profile"]) == ("--base-values", "ci")
    assert (report["passed"], report["smoke"]["outcome"], report["smoke"]["cause"]) == (True, "passed", None)
    assert report["totals"]["checks"] == {"total": 12, "passed": 12, "failed": 0, "skipped": 0}
    assert report["totals"]["steps"] == {
        "passed": 22,
        "failed": 0,
        "timed_out": 0,
        "skipped": 0,
        "not_run": 0,
        "cancelled": 0,
    }
    assert 'name="PostgreSQL survived the upgrade"' in reports.files["junit.xml"]
    spans = ["Deploy the base values, then upgrade them in place to the values", "Smoke tests", "Write the reports"]
    assert [name for name in span_names if name in spans] == spans
    assert f"Verify markers {marker} in PostgreSQL (pg-cluster)" in span_names
    assert reports.files["exit-code"] == "0\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_markers_an_upgrade_lost_fail_their_read_back_the_survival_and_the_run_and_k3s_is_stopped(
    engine_here: Callable[[Engine], None], values_dir: Path
) -> None:
    engine, cluster = world()
    cluster.wiped_by_upgrade.add("pg-cluster")
    engine_here(engine)
    reports = upgrade_test(new_values(values_dir))

    (marker,) = {e.env["SMOKE_MARKER_ID"] for e in marker_execs(engine)}
    lost = f"postgresql markers {marker} do not read back as written: table public.dbstack_marker_{marker} is missing"
    report = summary(reports)
    assert upgrade_steps(report) == [
        ("upgrade:markers-write:postgresql", "passed", None),
        ("upgrade:markers-write:redis", "passed", None),
        ("upgrade:markers-write:qdrant", "passed", None),
        ("upgrade:markers-write:elasticsearch", "passed", None),
        ("upgrade:cluster:postgresql", "passed", None),
        ("upgrade:markers-verify:postgresql", "failed", lost),
        ("upgrade:markers-verify:redis", "passed", None),
        ("upgrade:markers-verify:qdrant", "passed", None),
        ("upgrade:markers-verify:elasticsearch", "passed", None),
    ]
    assert report["upgrade"]["survival"] == [
        {"database": "postgresql", "outcome": "failed", "message": lost},
        {"database": "redis", "outcome": "passed", "message": None},
        {"database": "qdrant", "outcome": "passed", "message": None},
        {"database": "elasticsearch", "outcome": "passed", "message": None},
    ]
    assert report["totals"]["steps"]["failed"] == 1
    assert report["passed"] is False
    assert reports.files["exit-code"] == "1\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_when_the_engine_connection_drops_during_the_suite_the_error_reaches_the_caller_and_k3s_is_stopped(
    engine_here: Callable[[Engine], None], values_dir: Path
) -> None:
    # Only the whole suite's command line ends its pytest options here (the marker phases add `-m <database>`).
    engine, _ = world(exec_errors={"junit_family=xunit2; code=$?": dagger.TransportError("connection lost")})
    engine_here(engine)
    with pytest.raises(dagger.TransportError, match="connection lost"):
        upgrade_test(new_values(values_dir))
    assert timeline(engine)[-1] == f"suite {ALL}"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_when_k3s_fails_to_start_neither_phase_runs_no_marker_is_written_and_the_reports_say_why(
    engine_here: Callable[[Engine], None], values_dir: Path
) -> None:
    engine, cluster = world(start_errors={K3S: query_error(ENGINE_DOWN, {})})
    engine_here(engine)
    reports = upgrade_test(new_values(values_dir))

    assert (smoke_execs(engine), engine.toolbox_commands(), cluster.sim.backups.markers) == ([], [], {})
    report = summary(reports)
    cluster_step, *rest = report["steps"]
    assert (cluster_step["id"], cluster_step["outcome"], cluster_step["cause"]) == (
        "cluster",
        "failed",
        "the cluster did not start: failed to start: connection reset by peer",
    )
    assert {s["outcome"] for s in rest} == {"not_run"}
    assert {s["cause"] for s in rest if s["id"].startswith("upgrade:")} == {
        "not run: the base deployment did not succeed"
    }
    assert report["upgrade"]["survival"] == [
        {
            "database": key,
            "outcome": "failed",
            "message": "its markers were not read back: not run: the base deployment did not succeed",
        }
        for key in ("postgresql", "redis", "qdrant", "elasticsearch")
    ]
    assert reports.files["exit-code"] == "1\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_on_an_existing_cluster_the_markers_are_removed_once_read_back_and_no_k3s_starts(
    engine_here: Callable[[Engine], None], values_dir: Path
) -> None:
    engine, cluster = world()
    engine_here(engine)
    new = new_values(values_dir)

    async def main() -> dagger.Directory:
        return await pipeline.Dbstack().upgrade_test(new, smoke_suite(), values(), kubeconfig=KUBECONFIG)

    reports = in_virtual_time(main)
    assert isinstance(reports, Directory)
    assert k3s_services(engine) == []
    phases = [e.env["SMOKE_MARKERS"] for e in marker_execs(engine)]
    assert (phases.count("write"), phases.count("verify"), phases.count("clean")) == (4, 4, 4)
    assert len({e.env["SMOKE_MARKER_ID"] for e in marker_execs(engine)}) == 1
    assert cluster.sim.backups.markers == {("default", name): set() for name in CLUSTERS}
    assert [s for s in upgrade_steps(summary(reports)) if s[0].startswith("upgrade:markers-clean:")] == [
        ("upgrade:markers-clean:postgresql", "passed", None),
        ("upgrade:markers-clean:redis", "passed", None),
        ("upgrade:markers-clean:qdrant", "passed", None),
        ("upgrade:markers-clean:elasticsearch", "passed", None),
    ]
    assert reports.files["exit-code"] == "0\n"


GROWN = (
    "values/postgresql.yaml:7: storage: 5 -> 6 Gi: k3s's local-path StorageClass has no allowVolumeExpansion "
    "(k3s manifests/local-storage.yaml), so the API server refuses to grow the volumes (allowed: 5 on k3s)\n"
    "1 problem found; nothing was deployed."
)


def test_a_volume_that_grows_is_refused_on_k3s_before_any_cluster_exists(
    engine_here: Callable[[Engine], None], values_dir: Path
) -> None:
    engine, _ = world()
    engine_here(engine)
    text = (values_dir / "postgresql.yaml").read_text(encoding="utf-8")
    (values_dir / "postgresql.yaml").write_text(text.replace("storage: 5", "storage: 6"), encoding="utf-8")

    async def main() -> dagger.Directory:
        return await pipeline.Dbstack().upgrade_test(
            cast(dagger.Directory, Directory(values_dir)), smoke_suite(), values()
        )

    with pytest.raises(FunctionError) as caught:
        in_virtual_time(main)
    assert str(caught.value) == GROWN
    assert (engine.execs, engine.services) == ([], [])


BASE_PROBLEM = (
    "base-values/redis.yaml:1: replicas: must be a whole number, got string 'many' (allowed: a whole number 1 to 5)"
)
NEW_PROBLEM = (
    "values/qdrant.yaml:1: cpuu: unknown key; did you mean 'cpu'? (Helm would silently ignore it) (allowed: cpu, "
    "extra, memory, replicas, requests, storage, storageClassName, version)"
)


def test_problems_of_both_sides_are_named_by_their_folder_before_any_cluster_exists(
    engine_here: Callable[[Engine], None], tmp_path: Path
) -> None:
    engine, _ = world()
    engine_here(engine)
    base, new = tmp_path / "base", tmp_path / "new"
    shutil.copytree(REPO / "values", base)
    shutil.copytree(REPO / "values", new)
    (base / "redis.yaml").write_text("replicas: many\n", encoding="utf-8")
    (new / "qdrant.yaml").write_text("cpuu: 1\n", encoding="utf-8")

    async def main() -> dagger.Directory:
        return await pipeline.Dbstack().upgrade_test(
            cast(dagger.Directory, Directory(new)), smoke_suite(), cast(dagger.Directory, Directory(base))
        )

    with pytest.raises(FunctionError) as caught:
        in_virtual_time(main)
    *problems, count = str(caught.value).split("\n")
    assert (problems, count) == ([BASE_PROBLEM, NEW_PROBLEM], "2 problems found; nothing was deployed.")
    assert (engine.execs, engine.services) == ([], [])
