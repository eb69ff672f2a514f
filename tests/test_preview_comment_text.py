"""The preview comment, whole: every line of it for a run with a ready database, a failed one, marker steps and a
failed smoke check, and for a run whose smoke suite failed without a check result. Written out literally, so a
changed word, status, host or connect line fails here."""

from __future__ import annotations

from dbstack.github.comment import render_comment
from dbstack.run.results import CheckResult, DatabaseResult, Outcome, RunResults, StepResult, UpgradeResults

SHA = "0123456789abcdef0123456789abcdef01234567"


def database(key: str, title: str, outcome: Outcome, **changes: object) -> DatabaseResult:
    fields: dict[str, object] = {
        "key": key,
        "title": title,
        "release": f"{key}-cluster",
        "namespace": "pr-7",
        "chart_version": "1.0.1",
        "version": "16.4",
        "mode": None,
        "replicas": 1,
        "service": f"{key}-cluster-{key}",
        "port": 5432,
        "secret": f"{key}-cluster-account",
        "outcome": outcome,
    }
    fields.update(changes)
    return DatabaseResult(**fields)  # type: ignore[arg-type]


def results(**changes: object) -> RunResults:
    run = RunResults(
        run_id="r1",
        started_at=0.0,
        ended_at=1.0,
        cluster_kind="existing",
        profile="ci",
        namespace="pr-7",
        versions={},
        databases=[
            database(
                "pg",
                "PostgreSQL",
                Outcome.PASSED,
                checks=[
                    CheckResult("pg", "test_connect", Outcome.PASSED),
                    CheckResult("pg", "test_vector", Outcome.FAILED, message="extension | vector\nmissing <b>"),
                    CheckResult("pg", "test_tls", Outcome.SKIPPED),
                ],
            ),
            database("redis", "Redis", Outcome.TIMED_OUT, version="", secret=None, port=6379),
        ],
        steps=[
            StepResult("cluster:pg", "Deploy PostgreSQL", "cluster", "pg", Outcome.PASSED),
            StepResult(
                "cluster:redis", "Deploy Redis", "cluster", "redis", Outcome.TIMED_OUT, cause="timed out: Pending"
            ),
            StepResult("markers:verify:pg", "Read markers", "markers", "pg", Outcome.PASSED),
            StepResult("markers:write:pg", "Write markers", "markers", "pg", Outcome.PASSED),
            StepResult("markers:verify:redis", "Read markers", "markers", "redis", Outcome.FAILED, cause="gone"),
            StepResult("markers:write:redis", "Write markers", "markers", "redis", Outcome.NOT_RUN),
        ],
        smoke_outcome=Outcome.FAILED,
        smoke_cause="1 check failed",
    )
    for key, value in changes.items():
        setattr(run, key, value)
    return run


FOOTER = (
    "The preview is removed when this pull request closes, and after 24 h without a push while it stays open "
    "(a redeploy brings it back)."
)


def test_the_comment_of_a_failed_preview_line_by_line() -> None:
    text = render_comment(
        results(upgrade=UpgradeResults(base_values="main@abc")),
        pr=7,
        head_sha=SHA,
        run_url="https://github.com/o/r/actions/runs/1",
        trace_url="https://dagger.cloud/org/traces/abc123",
        idle_hours=24.0,
    )
    assert text.splitlines() == [
        "<!-- dbstack-preview -->",
        "### dbstack preview for #7: ❌ failed",
        "",
        "namespace `pr-7` · commit `0123456789ab` · [run log and reports](https://github.com/o/r/actions/runs/1)"
        " · [Dagger trace](https://dagger.cloud/org/traces/abc123)",
        "",
        "| Database | Status | Service | Credentials (Secret name) |",
        "| --- | --- | --- | --- |",
        "| PostgreSQL 16.4 | ❌ failed (1/3 checks passed) | `pg-cluster-pg.pr-7.svc.cluster.local:5432` "
        "| `pg-cluster-account` |",
        "| Redis | ⏱️ timed out | `redis-cluster-redis.pr-7.svc.cluster.local:6379` | no auth |",
        "",
        "**What went wrong**",
        "",
        "- Deploy Redis: ⏱️ timed out: Pending",
        "- Read markers: ❌ failed: gone",
        "- Write markers: ⚪ not run",
        "",
        "**Data across pushes** (each push upgrades this preview in place: this one upgraded main@abc)",
        "",
        "- ✅ PostgreSQL: the marker data written earlier survived this push",
        "- 📝 PostgreSQL: marker data written; the next push reads it back",
        "- ❌ Redis: the marker data written earlier did not read back: gone",
        "- ⚠️ Redis: marker data could not be written",
        "",
        "**Failed smoke checks**",
        "",
        "- PostgreSQL `test_vector`: extension \\| vector missing &lt;b&gt;",
        "",
        "<details><summary>How to connect</summary>",
        "",
        "With a kubeconfig for the preview cluster (values are read on your machine, never shown here):",
        "",
        "```sh",
        "# PostgreSQL",
        "kubectl -n pr-7 get secret pg-cluster-account -o jsonpath='{.data.username}' | base64 -d; echo",
        "kubectl -n pr-7 get secret pg-cluster-account -o jsonpath='{.data.password}' | base64 -d; echo",
        "kubectl -n pr-7 port-forward svc/pg-cluster-pg 5432:5432",
        "# Redis",
        "kubectl -n pr-7 port-forward svc/redis-cluster-redis 6379:6379",
        "```",
        "",
        "</details>",
        "",
        FOOTER,
    ]


def test_a_smoke_suite_that_failed_without_check_results_is_said_once() -> None:
    run = results(
        databases=[database("pg", "PostgreSQL", Outcome.PASSED)],
        steps=[StepResult("cluster:pg", "Deploy PostgreSQL", "cluster", "pg", Outcome.PASSED)],
        smoke_outcome=Outcome.FAILED,
        smoke_cause="the smoke container | exited 2",
    )
    lines = render_comment(run, pr=7, idle_hours=24).splitlines()
    assert lines[3:10] == [
        "namespace `pr-7`",
        "",
        "| Database | Status | Service | Credentials (Secret name) |",
        "| --- | --- | --- | --- |",
        "| PostgreSQL 16.4 | ✅ passed | `pg-cluster-pg.pr-7.svc.cluster.local:5432` | `pg-cluster-account` |",
        "",
        "**Smoke suite**: the smoke container \\| exited 2",
    ]


def test_a_passed_preview_without_databases_says_none_and_gives_no_connect_hints() -> None:
    run = results(databases=[], steps=[], smoke_outcome=Outcome.SKIPPED, smoke_cause="no databases")
    assert render_comment(run, pr=7, idle_hours=24.5).splitlines() == [
        "<!-- dbstack-preview -->",
        "### dbstack preview for #7: ✅ ready",
        "",
        "namespace `pr-7`",
        "",
        "| Database | Status | Service | Credentials (Secret name) |",
        "| --- | --- | --- | --- |",
        "| (none) | | | |",
        "",
        FOOTER.replace("24 h", "24.5 h"),
    ]


def test_names_that_are_not_kubernetes_names_are_replaced_before_they_reach_a_shell_line() -> None:
    run = results(
        databases=[database("pg", "PostgreSQL", Outcome.PASSED, service="x; rm -rf /", secret="$(id)")],
        steps=[],
        smoke_outcome=Outcome.PASSED,
    )
    lines = render_comment(run, pr=7).splitlines()
    assert "| PostgreSQL 16.4 | ✅ passed | `<invalid-name>.pr-7.svc.cluster.local:5432` | `<invalid-name>` |" in lines
    assert "kubectl -n pr-7 port-forward svc/<invalid-name> 5432:5432" in lines
