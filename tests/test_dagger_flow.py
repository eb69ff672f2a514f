"""The module's functions end to end, offline: `dag` and the engine objects are stand-ins (tests/engine_standins.py)
answered by the simulated cluster, and nothing of the module itself is replaced. So k3s starts and stops as a
service, the smoke suite's container really runs with the accounts' passwords as secret variables, and the reports
are what the function returns."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import anyio
import dagger
import pipeline
import pytest
from dagger.mod._exceptions import FunctionError
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import Failure, Scenario, SimCluster, in_virtual_time
from engine_standins import CacheVolume, ClusterAnswer, Directory, Engine, Exec, File, Secret, Service, standin_suite
from fake_toolbox import exec_error, query_error

REPO = Path(__file__).resolve().parents[1]
ACCOUNTS = {
    "pg-cluster-postgresql-account-postgres": ("postgres", "Zq9pgPlain7Hx"),
    "redis-cluster-redis-account-default": ("default", "Rd4vPlain2Kq"),
    "es-cluster-mdit-account-elastic": ("elastic", "Es8wPlain5Tn"),
}
PASSWORDS = [password for _, password in ACCOUNTS.values()]
K3S = "rancher/k3s:v1.31.5-k3s1"
TOOLBOX = "alpine/k8s:1.31.4"
SMOKE_SCRIPT = (
    "mkdir -p /reports; started=$(date +%s); timeout -s INT -k 30 600 python -m pytest ci/smoke -p no:cacheprovider "
    "--junitxml=/reports/smoke-junit.xml -o junit_family=xunit2; code=$?; "
    'echo "$code $(($(date +%s) - started))" > /reports/smoke-exit'
)
FORWARDS = {
    "pg-cluster-postgresql-postgresql": 5432,
    "redis-cluster-redis-redis": 6379,
    "qdrant-cluster-qdrant-qdrant": 6333,
    "es-cluster-mdit-http": 9200,
}
ENGINE_DOWN = "failed to start: connection reset by peer"


def read_script(namespace: str, secret: str) -> str:
    get = f"kubectl --request-timeout=20s -n {namespace} get secret {secret}"
    return (
        f"{get} -o name > /dev/null && mkdir -p /run/dbstack-credentials && "
        f"{get} -o 'jsonpath={{.data.username}}' | base64 -d > /run/dbstack-credentials/username && "
        f"{get} -o 'jsonpath={{.data.password}}' | base64 -d > /run/dbstack-credentials/password"
    )


def world(scenario: Scenario | None = None, **switches: Any) -> tuple[Engine, ClusterAnswer]:
    cluster = ClusterAnswer(SimCluster(scenario))
    switches.setdefault("accounts", dict(ACCOUNTS))
    switches.setdefault("suite", standin_suite())
    return Engine(cluster, **switches), cluster


def values() -> dagger.Directory:
    return cast(dagger.Directory, Directory(REPO / "values"))


def smoke_suite() -> dagger.Directory:
    return cast(dagger.Directory, Directory(REPO / "ci" / "smoke"))


def deploy_and_test(**options: Any) -> Directory:
    async def main() -> dagger.Directory:
        return await pipeline.Dbstack().deploy_and_test(values(), smoke_suite(), **options)

    reports = in_virtual_time(main)
    assert isinstance(reports, Directory)
    return reports


def summary(reports: Directory) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(reports.files["summary.json"])
    return data


def database(reports: Directory, key: str) -> dict[str, Any]:
    return next(d for d in summary(reports)["databases"] if d["key"] == key)


def smoke_execs(engine: Engine) -> list[Exec]:
    return [e for e in engine.execs if e.argv[:2] == ["sh", "-c"] and "/reports/smoke-exit" in e.argv[2]]


def account_reads(engine: Engine) -> list[list[str]]:
    return [e.argv for e in engine.execs if e.argv[0] == "timeout" and "base64 -d" in e.argv[-1]]


def k3s_services(engine: Engine) -> list[Service]:
    return [s for s in engine.services if s.image == K3S]


def forwards(engine: Engine) -> dict[str, Service]:
    return {s.forwards: s for s in engine.services if s.forwards is not None}


# --- deploy-and-test on k3s ----------------------------------------------------------------------------------------


def test_a_healthy_run_starts_k3s_reads_each_account_smoke_tests_every_database_and_stops_k3s(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world()
    engine_here(engine)
    reports = deploy_and_test()

    (k3s,) = k3s_services(engine)
    holder = k3s.env["DBSTACK_K3S_HOLDER"]
    assert re.fullmatch(r"deploy-and-test run [0-9a-f]{12}", holder)
    assert k3s.args == [
        "k3s",
        "server",
        "--disable=traefik",
        "--disable=metrics-server",
        "--egress-selector-mode=disabled",
        "--tls-san=kubernetes",
        f"--write-kubeconfig=/etc/rancher/k3s/k3s-{holder.split()[-1]}.yaml",
        "--write-kubeconfig-mode=0600",
    ]
    assert k3s.options == {"use_entrypoint": True, "insecure_root_capabilities": True}
    assert (k3s.starts, k3s.stops) == (1, 1)
    assert account_reads(engine) == [
        ["timeout", "60", "sh", "-c", read_script("default", "pg-cluster-postgresql-account-postgres")],
        ["timeout", "60", "sh", "-c", read_script("default", "redis-cluster-redis-account-default")],
        ["timeout", "60", "sh", "-c", read_script("default", "es-cluster-mdit-account-elastic")],
    ]
    assert {name: (s.ports, s.starts) for name, s in forwards(engine).items()} == {
        name: ((port,), 1) for name, port in FORWARDS.items()
    }
    (smoke,) = smoke_execs(engine)
    assert smoke.image == "python:3.12.8-slim-bookworm"
    assert smoke.argv == ["sh", "-c", SMOKE_SCRIPT]
    assert {k: v for k, v in smoke.env.items() if k != "DBSTACK_EXEC_NONCE" and not k.startswith("(")} == {
        "POSTGRES_HOST": "pg-cluster-postgresql-postgresql",
        "POSTGRES_PORT": "5432",
        "POSTGRES_DB": "postgres",
        "POSTGRES_USER": "postgres",
        "REDIS_HOST": "redis-cluster-redis-redis",
        "REDIS_PORT": "6379",
        "REDIS_USER": "default",
        "VECTOR_DB_CONTEXT": '{"url": "http://qdrant-cluster-qdrant-qdrant", "port": 6333, "distance": "Cosine", '
        '"timeout": 30}',
        "QDRANT_URL": "http://qdrant-cluster-qdrant-qdrant:6333",
        "ES_HOST_NAME": "es-cluster-mdit-http",
        "ES_PORT": "9200",
        "ES_PROTOCOL": "http",
        "ES_USER": "elastic",
        "SMOKE_REQUIRE": "postgresql,redis,qdrant,elasticsearch",
        "SMOKE_REQUIRE_IK": "1",
    }
    assert {k: s.plaintext for k, s in smoke.secrets.items()} == {
        "POSTGRES_PASSWORD": "Zq9pgPlain7Hx",
        "REDIS_PASSWORD": "Rd4vPlain2Kq",
        "ES_PASSWORD": "Es8wPlain5Tn",
    }
    assert sorted(smoke.bindings) == sorted(FORWARDS)

    assert reports.files["exit-code"] == "0\n"
    report = summary(reports)
    assert (report["passed"], report["smoke"]["outcome"], report["smoke"]["cause"]) == (True, "passed", None)
    assert report["totals"]["checks"] == {"total": 4, "passed": 4, "failed": 0, "skipped": 0}
    assert [s["outcome"] for s in report["steps"]].count("passed") == len(report["steps"])


def test_a_password_the_suite_prints_is_masked_in_its_log_and_in_no_report_file(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world()
    engine_here(engine)
    reports = deploy_and_test()
    assert reports.files["smoke/pytest.log"].splitlines() == [
        "postgresql: logging in to pg-cluster-postgresql-postgresql with ***",
        "redis: logging in to redis-cluster-redis-redis with ***",
        "elasticsearch: logging in to es-cluster-mdit-http with ***",
    ]
    leaks = {name for name, text in reports.files.items() for password in PASSWORDS if password in text}
    assert leaks == set()


def test_a_database_that_never_reached_running_is_neither_forwarded_nor_read_nor_smoke_tested(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world(Scenario(failures={"elasticsearch": Failure.PENDING_CPU}))
    engine_here(engine)
    reports = deploy_and_test()
    assert sorted(forwards(engine)) == [
        "pg-cluster-postgresql-postgresql",
        "qdrant-cluster-qdrant-qdrant",
        "redis-cluster-redis-redis",
    ]
    assert [argv[-1].split()[6] for argv in account_reads(engine)] == [
        "pg-cluster-postgresql-account-postgres",
        "redis-cluster-redis-account-default",
    ]
    (smoke,) = smoke_execs(engine)
    assert smoke.env["SMOKE_REQUIRE"] == "postgresql,redis,qdrant"
    assert "ES_HOST_NAME" not in smoke.env and "ES_PASSWORD" not in smoke.secrets
    elasticsearch = database(reports, "elasticsearch")
    assert (elasticsearch["outcome"], elasticsearch["ready"]) == ("failed", False)
    assert elasticsearch["cause"] == "es-cluster-mdit-0 Pending: 0/1 nodes are available: 1 Insufficient cpu"
    assert elasticsearch["checks"] == {"total": 0, "passed": 0, "failed": 0, "skipped": 0, "failures": []}
    report = summary(reports)
    assert report["totals"]["checks"] == {"total": 3, "passed": 3, "failed": 0, "skipped": 0}
    assert report["totals"]["steps"]["failed"] == 1
    assert reports.files["exit-code"] == "1\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_when_no_database_reached_running_the_suite_never_runs_and_the_smoke_outcome_says_why(
    engine_here: Callable[[Engine], None],
) -> None:
    failures = dict.fromkeys(("postgresql", "redis", "qdrant", "elasticsearch"), Failure.IMAGE_PULL)
    engine, _ = world(Scenario(failures=failures))
    engine_here(engine)
    reports = deploy_and_test()
    assert (forwards(engine), account_reads(engine), smoke_execs(engine)) == ({}, [], [])
    assert not any(e.argv[0] == "pip" for e in engine.execs)
    assert summary(reports)["smoke"] | {"startSeconds": None, "durationSeconds": None} == {
        "outcome": "not_run",
        "cause": "no database reached Running, so the smoke suite did not run",
        "startSeconds": None,
        "durationSeconds": None,
    }
    assert reports.files["exit-code"] == "1\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


# --- failures of each stage land in the reports, and k3s is stopped after every one --------------------------------


def test_when_k3s_fails_to_start_nothing_is_deployed_the_reports_say_why_and_k3s_is_stopped(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world(start_errors={K3S: query_error(ENGINE_DOWN, {})})
    engine_here(engine)
    reports = deploy_and_test()
    report = summary(reports)
    cluster, *rest = report["steps"]
    assert (cluster["id"], cluster["outcome"], cluster["cause"]) == (
        "cluster",
        "failed",
        "the cluster did not start: failed to start: connection reset by peer",
    )
    assert {s["outcome"] for s in rest} == {"not_run"}
    assert (report["passed"], report["smoke"]["outcome"]) == (False, "not_run")
    assert reports.files["exit-code"] == "1\n"
    assert engine.toolbox_commands() == []
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


@pytest.mark.parametrize(
    ("hangs", "cause"),
    [
        (K3S, "k3s got no answer from the engine within 300 s starting"),
        ("wrote no kubeconfig", "k3s got no answer from the engine within 240 s reading its kubeconfig"),
    ],
)
def test_a_k3s_start_or_kubeconfig_read_that_never_answers_is_cut_reported_and_k3s_stopped(
    engine_here: Callable[[Engine], None], hangs: str, cause: str
) -> None:
    engine, _ = world(hangs={hangs})
    engine_here(engine)
    reports = deploy_and_test()
    cluster = summary(reports)["steps"][0]
    assert (cluster["outcome"], cluster["cause"]) == ("failed", f"the cluster did not start: {cause}")
    assert reports.files["exit-code"] == "1\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_a_k3s_that_writes_no_kubeconfig_is_a_failed_cluster_step_carrying_the_reader_s_own_error(
    engine_here: Callable[[Engine], None],
) -> None:
    unwritten = exec_error(["sh"], CommandResult(1, "", "k3s wrote no kubeconfig within 180s"))
    engine, _ = world(exec_errors={"wrote no kubeconfig": unwritten})
    engine_here(engine)
    reports = deploy_and_test()
    cluster = summary(reports)["steps"][0]
    assert (cluster["outcome"], cluster["cause"], cluster["diagnostics"]) == (
        "failed",
        "the cluster did not start: k3s wrote no kubeconfig within 180s (exit code 1)",
        [],
    )
    assert reports.files["exit-code"] == "1\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_a_smoke_suite_that_cannot_install_fails_the_smoke_stage_with_the_installer_s_error(
    engine_here: Callable[[Engine], None],
) -> None:
    refused = exec_error(["pip"], CommandResult(1, "", "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES"))
    engine, _ = world(exec_errors={"pip install": refused})
    engine_here(engine)
    reports = deploy_and_test()
    report = summary(reports)
    assert (report["smoke"]["outcome"], report["smoke"]["cause"]) == (
        "failed",
        "the smoke suite's dependencies did not install: ERROR: THESE PACKAGES DO NOT MATCH THE HASHES (exit code 1)",
    )
    assert smoke_execs(engine) == []
    assert (report["passed"], reports.files["exit-code"]) == (False, "1\n")
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_a_failed_smoke_check_is_a_failure_in_every_report_and_its_message_is_masked(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world(suite=standin_suite(failing=frozenset({"redis"})))
    engine_here(engine)
    reports = deploy_and_test()
    report = summary(reports)
    assert report["smoke"]["outcome"] == "failed"
    assert report["totals"]["checks"] == {"total": 4, "passed": 3, "failed": 1, "skipped": 0}
    assert database(reports, "redis")["checks"]["failures"] == [
        {"name": "test_roundtrip", "outcome": "failed", "message": "authentication failed using ***"}
    ]
    assert reports.files["exit-code"] == "1\n"
    junit = reports.files["junit.xml"]
    assert junit.count("<failure") == 2
    assert re.search(
        r'<testcase classname="pipeline.smoke" name="Run the smoke tests" time="[0-9.]+">\n'
        r'      <failure message="failed" type="failed">failed</failure>',
        junit,
    )
    assert (
        '<testcase classname="smoke.redis" name="test_roundtrip" time="1.000">\n'
        '      <failure message="authentication failed using ***" type="failed">authentication failed using ***'
        "</failure>"
    ) in junit
    assert "Rd4vPlain2Kq" not in junit


def test_a_smoke_container_killed_by_the_engine_fails_the_smoke_stage_saying_so(
    engine_here: Callable[[Engine], None],
) -> None:
    killed = exec_error(["sh"], CommandResult(137, "collected 4 items", ""))
    engine, _ = world(exec_errors={"/reports/smoke-exit": killed})
    engine_here(engine)
    reports = deploy_and_test()
    report = summary(reports)
    assert (report["smoke"]["outcome"], report["smoke"]["cause"]) == (
        "failed",
        "the smoke container was killed by SIGKILL (exit code 137): out of memory, or stopped from outside; its last "
        "output is in smoke/pytest.log, no JUnit file could be read",
    )
    assert reports.files["smoke/pytest.log"] == "collected 4 items"
    assert reports.files["exit-code"] == "1\n"
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


# --- account Secrets -------------------------------------------------------------------------------------------------

PG_READ = "get secret pg-cluster-postgresql-account-postgres -o name"
PG_UNREADABLE = (
    "reading its account Secret pg-cluster-postgresql-account-postgres failed: rpc error: code = Unavailable"
)


def test_an_account_secret_the_engine_cannot_read_fails_the_smoke_stage_naming_it(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world(exec_errors={PG_READ: query_error("rpc error: code = Unavailable", {})})
    engine_here(engine)
    reports = deploy_and_test()
    report = summary(reports)
    assert (report["smoke"]["outcome"], report["smoke"]["cause"]) == (
        "failed",
        f"not reached, so not tested: postgresql: {PG_UNREADABLE} (the other databases were tested)",
    )
    assert database(reports, "postgresql")["checks"]["failures"] == [
        {"name": "reach pg-cluster-postgresql-postgresql:5432", "outcome": "failed", "message": PG_UNREADABLE}
    ]
    (smoke,) = smoke_execs(engine)
    assert smoke.env["SMOKE_REQUIRE"] == "redis,qdrant,elasticsearch"
    assert "POSTGRES_PASSWORD" not in smoke.secrets
    assert reports.files["exit-code"] == "1\n"


def test_when_the_only_database_s_account_cannot_be_read_the_smoke_stage_fails_rather_than_not_running(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world(exec_errors={PG_READ: query_error("rpc error: code = Unavailable", {})})
    engine_here(engine)
    reports = deploy_and_test(disable=["redis", "qdrant", "elasticsearch"])
    report = summary(reports)
    assert (report["smoke"]["outcome"], report["smoke"]["cause"]) == (
        "failed",
        f"no database could be reached, so the smoke suite did not run: postgresql: {PG_UNREADABLE}",
    )
    assert smoke_execs(engine) == []
    assert (report["passed"], reports.files["exit-code"]) == (False, "1\n")
    assert [(s.starts, s.stops) for s in k3s_services(engine)] == [(1, 1)]


def test_a_missing_account_secret_leaves_the_suite_without_a_password_and_its_login_fails(
    engine_here: Callable[[Engine], None],
) -> None:
    accounts = {k: v for k, v in ACCOUNTS.items() if not k.startswith("pg-")}
    engine, _ = world(accounts=accounts)
    engine_here(engine)
    reports = deploy_and_test()
    (smoke,) = smoke_execs(engine)
    assert "POSTGRES_PASSWORD" not in smoke.secrets and "POSTGRES_USER" not in smoke.env
    assert summary(reports)["smoke"]["outcome"] == "failed"
    assert database(reports, "postgresql")["checks"]["failures"] == [
        {"name": "test_roundtrip", "outcome": "failed", "message": "authentication failed using"}
    ]


# --- previews: preview, sweep, teardown on a shared cluster ----------------------------------------------------------

PLATFORM = Scenario(
    preinstalled=True, preinstalled_addons=frozenset({"postgresql", "redis", "qdrant", "elasticsearch"})
)
KUBECONFIG = Secret("preview-kubeconfig", "apiVersion: v1\nusers:\n- name: preview\n  user:\n    token: kcT0ken9\n")
SHA = "0123456789abcdef0123456789abcdef01234567"
PINS = ("--version", "1.0.1", "-n", "pr-7", "--timeout=600s", "-f", "-")


def test_a_preview_deploys_into_its_labelled_namespace_then_sweep_and_teardown_remove_previews(
    engine_here: Callable[[Engine], None], span_names: list[str]
) -> None:
    engine, cluster = world(PLATFORM)
    closed = {"dbstack.io/pr": "3", "dbstack.io/head-sha": "abcdef1", "dbstack.io/deployed-at": "1000"}
    cluster.namespaces["pr-3"] = closed | {"app.kubernetes.io/managed-by": "dbstack"}
    engine_here(engine)
    kubeconfig = cast(dagger.Secret, KUBECONFIG)
    done: dict[str, Any] = {}

    async def main() -> None:
        module = pipeline.Dbstack()
        done["preview"] = await module.preview(values(), smoke_suite(), kubeconfig, 7, SHA)
        done["sweep"] = await module.sweep(values(), kubeconfig, "7,9")
        done["sweep-commands"] = len(engine.toolbox_commands())
        done["teardown"] = await module.teardown(values(), kubeconfig, 7)

    before = int(time.time())
    in_virtual_time(main)
    after = int(time.time())
    commands = engine.toolbox_commands()

    # The preview: no k3s, the given kubeconfig, and namespace pr-7 labelled before anything is deployed into it.
    assert k3s_services(engine) == []
    toolbox = next(e for e in engine.execs if e.argv[0] == "timeout")
    assert (toolbox.image, toolbox.mounts["/root/.kube/config"], toolbox.env["KUBECONFIG"]) == (
        TOOLBOX,
        KUBECONFIG,
        "/root/.kube/config",
    )
    namespace = next(m for m in cluster.applied if m["kind"] == "Namespace")
    labels = namespace["metadata"]["labels"]
    deployed_at = labels.pop("dbstack.io/deployed-at")
    assert before <= int(deployed_at) <= after
    assert namespace["metadata"]["name"] == "pr-7"
    assert labels == {"app.kubernetes.io/managed-by": "dbstack", "dbstack.io/head-sha": SHA, "dbstack.io/pr": "7"}
    labelled = commands.index(("kubectl", "apply", "-f", "-"))
    assert commands[labelled - 2 : labelled] == [
        ("kubectl", "get", "namespace", "pr-7", "-o", "json", "--ignore-not-found"),
        ("kubectl", "get", "namespaces", "-l", "dbstack.io/pr", "-o", "json"),
    ]
    helm = [c for c in commands if c[0] == "helm" and c[1] == "upgrade"]
    assert sorted(helm) == [
        ("helm", "upgrade", "--install", release, chart, "--repo", "https://apecloud.github.io/helm-charts", *PINS)
        for release, chart in [
            ("es-cluster", "elasticsearch-cluster"),
            ("pg-cluster", "postgresql-cluster"),
            ("qdrant-cluster", "qdrant-cluster"),
            ("redis-cluster", "redis-cluster"),
        ]
    ]
    assert min(commands.index(c) for c in helm) > labelled
    assert [m["kind"] for m in cluster.applied] == ["Namespace", "RoleBinding", "List"]

    # Its marker steps and its smoke suite ran through the smoke container, against pr-7's Services.
    smoke = smoke_execs(engine)
    assert [e.env.get("SMOKE_MARKERS") for e in smoke] == ["write"] * 4 + [None]
    assert sorted(e.env["SMOKE_REQUIRE"] for e in smoke[:4]) == ["elasticsearch", "postgresql", "qdrant", "redis"]
    assert smoke[-1].env["POSTGRES_HOST"] == "pg-cluster-postgresql-postgresql"
    assert sorted(argv[-1] for argv in account_reads(engine)) == sorted(
        read_script("pr-7", secret) for secret in ACCOUNTS for _ in ("markers", "suite")
    )
    reports = done["preview"]
    assert isinstance(reports, Directory)
    assert reports.files["exit-code"] == "0\n"
    assert summary(reports)["smoke"]["outcome"] == "passed"
    assert (
        "kubectl",
        "label",
        "namespace",
        "pr-7",
        f"dbstack.io/markers=mpr7t{deployed_at}",
        "dbstack.io/markers-in=elasticsearch.postgresql.qdrant.redis",
        "--overwrite",
    ) in commands
    assert not any(password in text for text in reports.files.values() for password in PASSWORDS)

    # The sweep removed the closed pull request's preview and kept the open one.
    sweep = done["sweep"]
    assert isinstance(sweep, Directory)
    assert json.loads(sweep.files["sweep.json"]) == {
        "ok": True,
        "expired": [],
        "closed": [3],
        "removed": ["pr-3"],
        "kept": ["pr-7: open, last deploy 0.0 h ago"],
        "unreadable": {},
        "failed": {},
    }
    assert sweep.files["exit-code"] == "0\n"

    # The teardown removed pr-7: condemned, its releases uninstalled, the namespace deleted.
    assert done["teardown"] == ("pr-7: removed es-cluster, pg-cluster, qdrant-cluster, redis-cluster and the namespace")
    teardown = commands[done["sweep-commands"] :]
    assert [c[:4] for c in teardown if c[:2] != ("kubectl", "config")] == [
        ("kubectl", "get", "namespace", "pr-7"),
        ("helm", "list", "-n", "pr-7"),
        ("kubectl", "label", "namespace", "pr-7"),
        ("helm", "uninstall", "es-cluster", "-n"),
        ("helm", "uninstall", "pg-cluster", "-n"),
        ("helm", "uninstall", "qdrant-cluster", "-n"),
        ("helm", "uninstall", "redis-cluster", "-n"),
        ("kubectl", "delete", "namespace", "pr-7"),
    ]
    assert cluster.namespaces == {}

    # What Dagger's progress view shows of the three calls.
    spans = [
        "Check the platform (snapshot support, KubeBlocks, addons) against values/",
        "Read which databases hold marker data from earlier deploys",
        "Prepare namespace pr-7 (labels, role binding, quota, limits)",
        "Deploy KubeBlocks and the databases",
        "Smoke tests",
        "Record which databases hold marker data",
        "Write the reports",
        "Sweep previews",
        "Tear down the preview of pull request 7",
    ]
    assert [name for name in span_names if name in spans] == spans
    assert f"Write markers mpr7t{deployed_at} in PostgreSQL (pg-cluster)" in span_names


# --- how k3s and the toolbox that talks to it are built ---------------------------------------------------------------

K3S_STATE = "/var/lib/rancher"
KUBECONFIG_DIR = "/etc/rancher/k3s"
ENTRYPOINT = "/usr/local/bin/dbstack-k3s-entrypoint"


def kubeconfig_read_script(run_id: str) -> str:
    source = f"/etc/rancher/k3s/k3s-{run_id}.yaml"
    return (
        f"umask 077; i=0; until [ -s {source} ]; do i=$((i+1)); "
        'if [ "$i" -gt 180 ]; then echo "k3s wrote no kubeconfig within 180s" >&2; exit 1; fi; sleep 1; done; '
        f"sed -E 's#server: https://[^[:space:]]+#server: https://kubernetes:6443#' {source} > /tmp/kubeconfig; "
        "chmod 600 /tmp/kubeconfig"
    )


def test_k3s_runs_from_its_entrypoint_on_its_cache_volumes_and_the_toolbox_reaches_it_with_its_kubeconfig(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world()
    engine_here(engine)
    deploy_and_test(disable=["redis", "qdrant", "elasticsearch"])

    (k3s,) = k3s_services(engine)
    run_id = k3s.env["DBSTACK_K3S_HOLDER"].split()[-1]
    entrypoint = k3s.mounts[ENTRYPOINT]
    assert isinstance(entrypoint, File) and entrypoint.text is not None
    assert (entrypoint.text.splitlines()[0], entrypoint.permissions) == ("#!/bin/sh", 0o755)
    assert {path: mount for path, mount in k3s.mounts.items() if path != ENTRYPOINT} == {
        KUBECONFIG_DIR: CacheVolume("dbstack-k3s-kubeconfig"),
        K3S_STATE: CacheVolume("dbstack-k3s-slots", dagger.CacheSharingMode.SHARED),
        "/var/lib/kubelet": "tmpfs",
        "/var/log": "tmpfs",
    }
    assert (k3s.image, k3s.ports, k3s.env["(entrypoint)"]) == (K3S, (6443,), ENTRYPOINT)

    (reader,) = [e for e in engine.execs if e.argv[:2] == ["sh", "-c"] and "wrote no kubeconfig" in e.argv[2]]
    assert (reader.image, reader.argv[2]) == (TOOLBOX, kubeconfig_read_script(run_id))
    assert reader.mounts == {KUBECONFIG_DIR: CacheVolume("dbstack-k3s-kubeconfig")}
    assert re.fullmatch(r"[0-9a-f]{32}", reader.env["DBSTACK_EXEC_NONCE"]), "read fresh, never from the layer cache"

    toolbox = next(e for e in engine.execs if e.argv[0] == "timeout")
    assert toolbox.image == TOOLBOX
    assert toolbox.bindings == {"kubernetes": k3s}
    assert toolbox.env["KUBECONFIG"] == "/root/.kube/config"
    (kubeconfig,) = toolbox.mounts.values()
    assert isinstance(kubeconfig, File) and kubeconfig.container is not None
    assert (list(toolbox.mounts), kubeconfig.path, kubeconfig.permissions) == (
        ["/root/.kube/config"],
        "/tmp/kubeconfig",
        0o600,
    )
    assert kubeconfig.container.image == TOOLBOX


def test_cluster_and_kubeconfig_give_the_named_k3s_service_and_its_kubeconfig_pointed_at_the_given_server(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world()
    engine_here(engine)

    async def main() -> tuple[object, object, object]:
        module = pipeline.Dbstack()
        service = await module.cluster(values(), name="dev")
        served = await module.kubeconfig(values(), name="dev", server="https://localhost:6443")
        plain = await module.kubeconfig(values(), profile="")
        return service, served, plain

    service, served, plain = in_virtual_time(main)
    (k3s,) = k3s_services(engine)
    assert service is k3s
    assert (k3s.env["DBSTACK_K3S_HOLDER"], k3s.args[-2]) == (
        "cluster dev",
        "--write-kubeconfig=/etc/rancher/k3s/k3s-dev.yaml",
    )
    assert k3s.starts == 0, "`dagger call cluster up` starts it"
    first, second = [e for e in engine.execs if e.argv[:2] == ["sh", "-c"]]
    assert first.argv[2] == (
        kubeconfig_read_script("dev")
        + " && sed -i 's#server: https://kubernetes:6443#server: https://localhost:6443#' /tmp/kubeconfig"
    )
    assert second.argv[2] == kubeconfig_read_script("dbstack")
    assert (first.image, second.image) == (TOOLBOX, TOOLBOX)
    assert [(f.path, f.text) for f in (served, plain) if isinstance(f, File)] == [
        ("/tmp/kubeconfig", None),
        ("/tmp/kubeconfig", None),
    ]


def test_a_preview_whose_platform_is_missing_fails_its_cluster_step_with_the_preview_s_own_diagnostics(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, cluster = world()  # nothing installed: no snapshot support, no KubeBlocks, no addons
    engine_here(engine)

    async def main() -> dagger.Directory:
        return await pipeline.Dbstack().preview(values(), smoke_suite(), cast(dagger.Secret, KUBECONFIG), 7, SHA)

    reports = in_virtual_time(main)
    assert isinstance(reports, Directory)
    step = summary(reports)["steps"][0]
    assert (step["id"], step["outcome"]) == ("cluster", "failed")
    assert step["cause"] == (
        "could not read the platform: `kubectl -n kb-system get deployment kubeblocks -o json --ignore-not-found` "
        'failed: Error from server (NotFound): deployments.apps "kubeblocks" not found'
    )
    assert step["diagnostics"] == [
        "diagnostics/cluster/namespace.txt",
        "diagnostics/cluster/pods.txt",
        "diagnostics/cluster/events.txt",
        "diagnostics/cluster/kb-system-pods.txt",
    ]
    assert engine.toolbox_commands()[-4:] == [
        ("kubectl", "get", "namespace", "pr-7", "-o", "yaml", "--ignore-not-found"),
        ("kubectl", "-n", "pr-7", "get", "pods", "-o", "wide"),
        ("kubectl", "-n", "pr-7", "get", "events", "--sort-by=.lastTimestamp"),
        ("kubectl", "-n", "kb-system", "get", "pods", "-o", "wide"),
    ]
    assert [e.argv[1] for e in engine.execs[-4:]] == ["30"] * 4
    assert reports.files["exit-code"] == "1\n"
    assert "pr-7" not in cluster.namespaces, "nothing is deployed on a platform that does not match"


UNREADABLE = CommandResult(1, "", 'error: error loading config file "/root/.kube/config": yaml: line 2\nmore\n')
EXEC_PLUGIN = json.dumps({"users": [{"name": "eks", "user": {"exec": {"command": "aws"}}}]})


@pytest.mark.parametrize(
    ("view", "message"),
    [
        (
            UNREADABLE,
            'kubectl cannot read the kubeconfig: error: error loading config file "/root/.kube/config": yaml: line 2',
        ),
        (
            CommandResult(0, EXEC_PLUGIN, ""),
            "the kubeconfig gets its credentials from the exec plugin 'aws', which the toolbox does not have; use a "
            "static-token kubeconfig (`dbstack preview-kubeconfig`, docs/workflows.md)",
        ),
    ],
    ids=["unreadable", "exec-plugin"],
)
def test_a_kubeconfig_the_toolbox_cannot_use_is_refused_before_any_cluster_call(
    engine_here: Callable[[Engine], None], view: CommandResult, message: str
) -> None:
    async def answer(command: Any, timeout_s: float) -> CommandResult:
        return view

    engine = Engine(answer)
    engine_here(engine)

    async def main() -> str:
        return await pipeline.Dbstack().teardown(values(), cast(dagger.Secret, KUBECONFIG), 7)

    with pytest.raises(FunctionError) as caught:
        in_virtual_time(main)
    assert str(caught.value) == message
    assert [e.argv for e in engine.execs] == [["timeout", "60", "kubectl", "config", "view", "--minify", "-o", "json"]]


def test_the_k3s_image_a_profile_pins_is_the_one_cluster_serves(
    engine_here: Callable[[Engine], None], values_dir: Path
) -> None:
    engine, _ = world()
    engine_here(engine)
    with (values_dir / "profiles" / "ci" / "pipeline.yaml").open("a", encoding="utf-8") as out:
        out.write("images:\n  k3s: rancher/k3s:v1.32.1-k3s1\n")

    async def main() -> None:
        await pipeline.Dbstack().cluster(cast(dagger.Directory, Directory(values_dir)))
        await pipeline.Dbstack().cluster(cast(dagger.Directory, Directory(values_dir)), profile="")

    in_virtual_time(main)
    assert [s.image for s in engine.services] == ["rancher/k3s:v1.32.1-k3s1", K3S]


@pytest.mark.parametrize(
    ("switch", "seconds"),
    [({"stop_errors": {K3S: query_error("service not found", {})}}, 0), ({"stop_hangs": {K3S}}, 60)],
    ids=["stop-fails", "stop-hangs"],
)
def test_a_k3s_whose_stop_fails_or_never_answers_still_gives_the_reports(
    engine_here: Callable[[Engine], None], switch: dict[str, Any], seconds: float
) -> None:
    engine, _ = world(start_errors={K3S: query_error(ENGINE_DOWN, {})}, **switch)
    engine_here(engine)
    found: list[dagger.Directory] = []

    async def main() -> float:
        started = anyio.current_time()
        with anyio.move_on_after(3600):
            found.append(await pipeline.Dbstack().deploy_and_test(values(), smoke_suite()))
        return anyio.current_time() - started

    assert in_virtual_time(main) == seconds, "a stop that never answers is given up on after 60 s"
    (reports,) = found
    assert isinstance(reports, Directory)
    assert summary(reports)["steps"][0]["cause"] == f"the cluster did not start: {ENGINE_DOWN}"
    assert reports.files["exit-code"] == "1\n"
    assert engine.events == [f"start {K3S}", f"stop {K3S}"]


def test_an_account_read_the_shell_dies_in_fails_its_database_with_the_reader_s_words(
    engine_here: Callable[[Engine], None],
) -> None:
    aborted = exec_error(["sh"], CommandResult(134, "", "base64: invalid input"))
    engine, _ = world(exec_errors={PG_READ: aborted})
    engine_here(engine)
    reports = deploy_and_test(disable=["elasticsearch"])
    said = (
        "reading its account Secret pg-cluster-postgresql-account-postgres failed: base64: invalid input "
        "(exit code 134)"
    )
    assert database(reports, "postgresql")["checks"]["failures"] == [
        {"name": "reach pg-cluster-postgresql-postgresql:5432", "outcome": "failed", "message": said}
    ]
    assert summary(reports)["smoke"]["cause"] == (
        f"not reached, so not tested: postgresql: {said} (the other databases were tested)"
    )


def test_every_forward_and_account_read_runs_afresh_never_from_the_layer_cache(
    engine_here: Callable[[Engine], None],
) -> None:
    engine, _ = world()
    engine_here(engine)
    deploy_and_test(disable=["qdrant", "elasticsearch"])
    nonces = [e.env.get("DBSTACK_EXEC_NONCE", "") for e in engine.execs if "base64 -d" in " ".join(e.argv)]
    nonces += [s.env.get("DBSTACK_EXEC_NONCE", "") for s in forwards(engine).values()]
    assert len(nonces) == 4
    assert all(re.fullmatch(r"[0-9a-f]{32}", nonce) for nonce in nonces), nonces
    assert len(set(nonces)) == 4


RUN_SPANS = [
    "Start k3s (rancher/k3s:v1.31.5-k3s1)",
    "Read the k3s kubeconfig",
    "Wait for the k3s API server",
    "Wait for the k3s node to register",
    "Wait for the k3s node to be Ready",
    "Wait for CoreDNS to be created",
    "Wait for CoreDNS to roll out",
    "Deploy KubeBlocks and the databases",
    "Smoke tests",
    "Forward pg-cluster-postgresql-postgresql:5432 out of the cluster",
    "Read the PostgreSQL credentials from Secret pg-cluster-postgresql-account-postgres",
    "Forward redis-cluster-redis-redis:6379 out of the cluster",
    "Read the Redis credentials from Secret redis-cluster-redis-account-default",
    "Write the reports",
]


def test_each_stage_of_a_run_is_a_named_span_in_dagger_s_progress_view(
    engine_here: Callable[[Engine], None], span_names: list[str]
) -> None:
    engine, _ = world()
    engine_here(engine)
    deploy_and_test(disable=["qdrant", "elasticsearch"])
    assert [name for name in span_names if name in RUN_SPANS] == RUN_SPANS
    # Each toolbox command is a span of its own too, inside its step's.
    assert "kubectl wait node --all --for=condition=Ready --timeout=300s (up to 300s)" in span_names
    assert "Deploy PostgreSQL (pg-cluster) and wait until Running" in span_names


def test_on_an_existing_cluster_no_k3s_starts_the_toolbox_uses_its_kubeconfig_and_the_run_says_existing(
    engine_here: Callable[[Engine], None], capsys: pytest.CaptureFixture[str]
) -> None:
    engine, _ = world()
    engine_here(engine)
    reports = deploy_and_test(disable=["qdrant", "elasticsearch"], kubeconfig=KUBECONFIG)

    assert k3s_services(engine) == []
    first = engine.execs[0]
    assert (first.image, first.mounts, first.env["KUBECONFIG"]) == (
        TOOLBOX,
        {"/root/.kube/config": KUBECONFIG},
        "/root/.kube/config",
    )
    assert engine.toolbox_commands()[:1] == [("kubectl", "version", "--request-timeout=60s")]
    report = summary(reports)
    assert report["run"]["clusterKind"] == "existing"
    cluster = report["steps"][0]
    assert (cluster["title"], cluster["outcome"]) == ("Reach the existing cluster", "passed")
    assert isinstance(cluster["durationSeconds"], float) and isinstance(report["run"]["durationSeconds"], float)
    assert reports.files["exit-code"] == "0\n"
    # Each step's progress is on stderr as it happens.
    progress = [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines()]
    mine = [line.split(" after ")[0] for line in progress if line.startswith("cluster:postgresql ")]
    assert (mine[0], mine[-1]) == (
        "cluster:postgresql started: Deploy PostgreSQL (pg-cluster) and wait until Running",
        "cluster:postgresql passed",
    )


def test_a_k3s_run_says_k3s_and_times_its_cluster_step(engine_here: Callable[[Engine], None]) -> None:
    engine, _ = world()
    engine_here(engine)
    report = summary(deploy_and_test(disable=["redis", "qdrant", "elasticsearch"]))
    assert report["run"]["clusterKind"] == "k3s"
    cluster = report["steps"][0]
    assert (cluster["title"], cluster["outcome"]) == ("Start k3s and wait for its API, node and CoreDNS", "passed")
    assert isinstance(cluster["durationSeconds"], float) and isinstance(cluster["startSeconds"], float)
    smoke = report["smoke"]
    assert isinstance(smoke["startSeconds"], float) and isinstance(smoke["durationSeconds"], float)


def test_platform_installs_what_previews_share_and_runs_no_smoke_suite(engine_here: Callable[[Engine], None]) -> None:
    engine, _ = world()
    engine_here(engine)

    async def main() -> dagger.Directory:
        return await pipeline.Dbstack().platform(values(), cast(dagger.Secret, KUBECONFIG))

    reports = in_virtual_time(main)
    assert isinstance(reports, Directory)
    report = summary(reports)
    assert report["smoke"] | {"startSeconds": None, "durationSeconds": None} == {
        "outcome": "skipped",
        "cause": "this run deploys no databases",
        "startSeconds": None,
        "durationSeconds": None,
    }
    assert (report["run"]["clusterKind"], report["passed"]) == ("existing", True)
    assert (smoke_execs(engine), forwards(engine), k3s_services(engine)) == ([], {}, [])
    assert reports.files["exit-code"] == "0\n"


def test_in_dagger_s_runtime_the_reports_are_written_to_the_scratch_workdir_and_read_back_from_it(
    engine_here: Callable[[Engine], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"  # where Dagger's runtime gives the module a working directory (/scratch)
    scratch.mkdir()
    monkeypatch.setattr(pipeline, "SCRATCH", str(scratch))
    engine, _ = world(workdir=scratch)
    engine_here(engine)
    reports = deploy_and_test(disable=["redis", "qdrant", "elasticsearch"])
    (folder,) = scratch.iterdir()
    assert re.fullmatch(r"dbstack-reports-[0-9a-f]{12}", folder.name)
    assert (reports.root, reports.files) == (folder, {})
    assert reports.file("exit-code").text == "0\n"


def test_outside_dagger_s_runtime_the_reports_are_written_under_the_working_directory(
    engine_here: Callable[[Engine], None], tmp_path: Path
) -> None:
    engine, _ = world()
    engine_here(engine)  # the module's cwd is tmp_path
    reports = deploy_and_test(disable=["redis", "qdrant", "elasticsearch"])
    (folder,) = tmp_path.glob("dbstack-reports-*")
    assert reports.files["exit-code"] == (folder / "exit-code").read_text(encoding="utf-8") == "0\n"
    assert sorted(reports.files) == sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
