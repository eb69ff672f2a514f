"""The reports' exact words and numbers for small hand-built runs: every expected value is written out here, worked
out from how the run is built, so a report that counts, names or times something wrong fails."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from dbstack.report.folder import copy_diagnostics, links_from_env, masked, write_reports
from dbstack.report.junit import render_junit
from dbstack.report.markdown import Links, _truncated, code, duration, fenced, render_markdown, text
from dbstack.report.masking import clean_text
from dbstack.report.summary_json import render_summary
from dbstack.report.timeline import mermaid_gantt, mermaid_name, timeline_tasks
from dbstack.report.verdict import headline
from dbstack.run.results import (
    BackupResult,
    CheckResult,
    DatabaseResult,
    Finding,
    Outcome,
    ReleaseChangeResult,
    RunResults,
    StepResult,
    Survival,
    UpgradeResults,
)
from report_samples import RUN_START

GITHUB = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7"}


def _database(key: str, title: str, outcome: Outcome = Outcome.PASSED, checks: int = 0) -> DatabaseResult:
    return DatabaseResult(
        key=key,
        title=title,
        release=f"{key}-cluster",
        namespace="default",
        chart_version="1.0.1",
        version="7.2.7",
        mode=None,
        replicas=1,
        service=f"{key}-cluster-{key}",
        port=6379,
        secret=None,
        outcome=outcome,
        ready_after_s=61.0 if outcome is Outcome.PASSED else None,
        checks=[CheckResult(key, f"test_{n}", Outcome.PASSED, 0.25) for n in range(checks)],
    )


def _run(*databases: DatabaseResult) -> RunResults:
    """A passing run of the given databases: KubeBlocks installed in 30 s, the smoke suite passed."""
    return RunResults(
        run_id="run-1",
        started_at=RUN_START,
        ended_at=RUN_START + 100.0,
        cluster_kind="k3s",
        profile="ci",
        namespace="default",
        versions={},
        steps=[
            StepResult(
                "kubeblocks", "Install KubeBlocks 1.0.1", "kubeblocks", None, Outcome.PASSED, RUN_START, RUN_START + 30
            )
        ],
        databases=list(databases),
        smoke_outcome=Outcome.PASSED,
    )


def _suite(results: RunResults, name: str) -> ET.Element:
    root = ET.fromstring(render_junit(results))  # noqa: S314 (our own output)
    suite = root.find(f"testsuite[@name='{name}']")
    assert suite is not None, f"no testsuite {name!r}"
    return suite


def _xml(element: ET.Element) -> str:
    """The element as XML without the indentation ET.indent added."""
    for node in element.iter():
        node.tail = None
        if node.text is not None and not node.text.strip():
            node.text = None
    return ET.tostring(element, encoding="unicode")


# --- links_from_env ------------------------------------------------------------------------------------------------


def test_a_given_https_run_url_is_the_link() -> None:
    assert links_from_env({}, run_url="https://ci.example/runs/5") == (Links("https://ci.example/runs/5", None), [])


def test_a_run_url_that_is_not_https_gives_way_to_the_run_github_describes() -> None:
    links, warnings = links_from_env(GITHUB, run_url="http://ci.example/runs/5")
    assert links == Links("https://github.com/o/r/actions/runs/7", None)
    assert warnings == [
        "--run-url 'http://ci.example/runs/5' is not an https:// URL; summary.md links to the files instead"
    ]


@pytest.mark.parametrize("missing", list(GITHUB))
def test_no_run_link_unless_github_describes_the_whole_run(missing: str) -> None:
    env = {k: v for k, v in GITHUB.items() if k != missing}
    assert links_from_env(env) == (Links(None, None), [])


# --- copy_diagnostics ---------------------------------------------------------------------------------------------


def test_diagnostics_are_added_to_a_folder_that_has_some_and_links_stay_links(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not the run's\n")
    source = tmp_path / "run" / "diagnostics" / "redis"
    source.mkdir(parents=True)
    (source / "pods.txt").write_text("redis pods\n")
    os.symlink(outside, source / "link.txt")
    kept = tmp_path / "out" / "diagnostics" / "postgresql"
    kept.mkdir(parents=True)
    (kept / "pods.txt").write_text("postgresql pods\n")
    copy_diagnostics(tmp_path / "run", tmp_path / "out")
    copied = tmp_path / "out" / "diagnostics"
    assert (copied / "redis" / "pods.txt").read_text() == "redis pods\n"
    assert (copied / "postgresql" / "pods.txt").read_text() == "postgresql pods\n"
    assert os.readlink(copied / "redis" / "link.txt") == str(outside)


# --- junit.xml ----------------------------------------------------------------------------------------------------


def _backups() -> list[BackupResult]:
    """PostgreSQL backed up and restored, Redis's backup failed, Elasticsearch left out of the stage."""
    return [
        BackupResult(
            database="postgresql",
            title="PostgreSQL",
            method="volume-snapshot",
            outcome=Outcome.PASSED,
            backup="pg-backup",
            policy="pg-policy",
            restored="pg-cluster-r",
            backup_s=40.25,
            size="48Mi",
            duration="38s",
            restore_s=150.5,
            markers_written=Outcome.PASSED,
            markers_read_back=Outcome.PASSED,
        ),
        BackupResult(
            database="redis",
            title="Redis",
            method="datafile",
            outcome=Outcome.FAILED,
            cause="backup: failed to create volume snapshot: no space\nfrom the Backup's status",
            backup="redis-backup",
            policy="redis-policy",
            restored="redis-cluster-r",
            backup_s=12.0,
            markers_written=Outcome.PASSED,
        ),
        BackupResult(
            database="elasticsearch",
            title="Elasticsearch",
            method=None,
            outcome=Outcome.SKIPPED,
            cause="backup.methods.elasticsearch is none",
        ),
    ]


def test_the_backup_suite_names_times_and_explains_each_database() -> None:
    results = _run(_database("postgresql", "PostgreSQL"), _database("redis", "Redis"))
    results.backups = _backups()
    suite = _suite(results, "backup and restore")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "3",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
        "time": "202.750",
    }
    assert [_xml(case) for case in suite] == [
        '<testcase classname="backup.postgresql" name="PostgreSQL: volume-snapshot backup, restore, markers read back"'
        ' time="190.750" />',
        '<testcase classname="backup.redis" name="Redis: datafile backup, restore, markers read back" time="12.000">'
        '<failure message="backup: failed to create volume snapshot: no space" type="failed">'
        "backup: failed to create volume snapshot: no space\nfrom the Backup's status\n\n"
        "Backup redis-backup (policy redis-policy): - in -\n"
        "Restored cluster redis-cluster-r; markers written passed, read back not_run"
        "</failure></testcase>",
        '<testcase classname="backup.elasticsearch" name="Elasticsearch" time="0.000">'
        '<skipped message="backup.methods.elasticsearch is none" /></testcase>',
    ]


def test_the_upgrade_suite_names_a_database_the_run_does_not_list_by_its_key() -> None:
    results = _run(_database("postgresql", "PostgreSQL"))
    results.upgrade = UpgradeResults(
        base_values="base/values",
        survival=[Survival("postgresql", Outcome.PASSED), Survival("minio", Outcome.FAILED, "markers lost")],
    )
    suite = _suite(results, "dbstack upgrade")
    assert [_xml(case) for case in suite] == [
        '<testcase classname="upgrade.postgresql" name="PostgreSQL survived the upgrade" time="0.000" />',
        '<testcase classname="upgrade.minio" name="minio survived the upgrade" time="0.000">'
        '<failure message="markers lost" type="failed">markers lost</failure></testcase>',
    ]


# --- the verdict --------------------------------------------------------------------------------------------------


def test_one_ready_database_is_one_database_ready() -> None:
    assert headline(_run(_database("redis", "Redis", checks=2))) == "✅ dbstack: 1 database ready, 2 checks passed"


def test_restored_backups_are_counted_in_a_passing_verdict() -> None:
    results = _run(_database("postgresql", "PostgreSQL", checks=1), _database("redis", "Redis", checks=1))
    results.backups = [
        BackupResult("postgresql", "PostgreSQL", "volume-snapshot", Outcome.PASSED),
        BackupResult("redis", "Redis", "datafile", Outcome.PASSED),
        BackupResult("qdrant", "Qdrant", None, Outcome.SKIPPED),
    ]
    assert headline(results) == "✅ dbstack: all 2 databases ready, 2 checks passed, 2 backups restored and read back"


def test_a_passing_upgrade_with_nothing_checked_says_nothing_of_survival() -> None:
    results = _run(_database("redis", "Redis", checks=1))
    results.upgrade = UpgradeResults(
        base_values="base/values", survival=[Survival("redis", Outcome.SKIPPED, "enabled by the change")]
    )
    assert results.passed
    assert headline(results) == "✅ dbstack: 1 database ready, 1 check passed"


def _uncaused_run() -> RunResults:
    """Every outcome once, none with a cause: the reports fall back on their own words. Never ended."""
    results = _run(_database("redis", "Redis"))
    results.ended_at = None
    results.steps += [
        StepResult(
            "addon:redis",
            "Install addon redis 1.0.1",
            "addon",
            "redis",
            Outcome.TIMED_OUT,
            RUN_START + 30,
            RUN_START + 42.5,
            diagnostics=["diagnostics/redis/pods.txt", "diagnostics/redis/events.txt", "kubectl.txt"],
            attempts=3,
        ),
        StepResult("cluster:redis", "Deploy Redis", "cluster", "redis", Outcome.CANCELLED),
        StepResult("snapshot-crds", "Install CRDs", "snapshot-crds", None, Outcome.SKIPPED, RUN_START, RUN_START + 0.5),
        StepResult("cluster:qdrant", "Deploy Qdrant", "cluster", "qdrant", Outcome.NOT_RUN),
    ]
    results.databases[0].checks = [
        CheckResult("redis", "test_a", Outcome.FAILED, 1.5),
        CheckResult("redis", "test_b", Outcome.SKIPPED, 0.0),
        CheckResult("redis", "test_c", Outcome.NOT_RUN, 0.0),
    ]
    results.smoke_outcome = Outcome.FAILED
    results.smoke_started_at, results.smoke_ended_at = RUN_START + 50, RUN_START + 60
    return results


def test_junit_of_a_run_without_causes_in_full() -> None:
    assert render_junit(_uncaused_run()) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<testsuites name="dbstack" tests="9" failures="3" errors="1" skipped="4" time="60.000">\n'
        '  <testsuite name="dbstack pipeline" tests="6" failures="2" errors="1" skipped="2" time="60.000" '
        'timestamp="2026-09-21T14:13:20">\n'
        '    <testcase classname="pipeline.kubeblocks" name="Install KubeBlocks 1.0.1" time="30.000" />\n'
        '    <testcase classname="pipeline.addon.redis" name="Install addon redis 1.0.1" time="12.500">\n'
        '      <failure message="timed out" type="timed_out">Attempts: 3\n'
        "Diagnostics:\n"
        "  diagnostics/redis/pods.txt\n"
        "  diagnostics/redis/events.txt\n"
        "  kubectl.txt</failure>\n"
        "    </testcase>\n"
        '    <testcase classname="pipeline.cluster.redis" name="Deploy Redis" time="0.000">\n'
        '      <error message="cancelled" type="cancelled">cancelled</error>\n'
        "    </testcase>\n"
        '    <testcase classname="pipeline.snapshot-crds" name="Install CRDs" time="0.500">\n'
        '      <skipped message="already installed" />\n'
        "    </testcase>\n"
        '    <testcase classname="pipeline.cluster.qdrant" name="Deploy Qdrant" time="0.000">\n'
        '      <skipped message="not run: a step it needs did not pass" />\n'
        "    </testcase>\n"
        '    <testcase classname="pipeline.smoke" name="Run the smoke tests" time="10.000">\n'
        '      <failure message="failed" type="failed">failed</failure>\n'
        "    </testcase>\n"
        "  </testsuite>\n"
        '  <testsuite name="smoke redis" tests="3" failures="1" errors="0" skipped="2" time="1.500" '
        'timestamp="2026-09-21T14:14:10">\n'
        '    <testcase classname="smoke.redis" name="test_a" time="1.500">\n'
        '      <failure message="failed" type="failed">failed</failure>\n'
        "    </testcase>\n"
        '    <testcase classname="smoke.redis" name="test_b" time="0.000">\n'
        '      <skipped message="skipped" />\n'
        "    </testcase>\n"
        '    <testcase classname="smoke.redis" name="test_c" time="0.000">\n'
        '      <skipped message="not run: a step it needs did not pass" />\n'
        "    </testcase>\n"
        "  </testsuite>\n"
        "</testsuites>\n"
    )


def _detailed_run() -> RunResults:
    """Redis failed (its cluster Abnormal, its backup and its upgrade too), Qdrant ready with 2 of 4 checks failed."""
    redis = _database("redis", "Redis", Outcome.FAILED)
    qdrant = _database("qdrant", "Qdrant")
    qdrant.warnings = ["client 1.13 is 3 minor versions from server 1.10"]
    qdrant.checks = [
        CheckResult("qdrant", "test_0", Outcome.PASSED, 0.25),
        CheckResult("qdrant", "test_1", Outcome.FAILED, 0.5, "AssertionError: x\nassert 1 == 2"),
        CheckResult("qdrant", "test_2", Outcome.SKIPPED, 0.0, "gRPC not exposed"),
        CheckResult("qdrant", "test_3", Outcome.TIMED_OUT, 30.0),
    ]
    results = _run(redis, qdrant)
    results.versions = {"redis": "7.2.7", "kubeblocks": "1.0.1"}
    results.installed_versions = {"kubeblocks": "1.0.0"}
    results.steps = [
        StepResult(
            "kubeblocks",
            "Install KubeBlocks 1.0.1",
            "kubeblocks",
            None,
            Outcome.PASSED,
            RUN_START,
            RUN_START + 30,
            attempts=1,
            notes=["reused the installed KubeBlocks"],
            facts={"chart": "1.0.1"},
        ),
        StepResult(
            "cluster:redis",
            "Deploy Redis",
            "cluster",
            "redis",
            Outcome.FAILED,
            RUN_START + 30,
            RUN_START + 42.25,
            cause="Cluster redis-cluster is Abnormal\nwaited 12s",
            diagnostics=["diagnostics/redis/pods.txt"],
            attempts=2,
            findings=[
                Finding(
                    "pod/redis-0 container redis",
                    "OOMKilled",
                    "killed for using more memory than its limit",
                    event="BackOff: restarting",
                    logs=["out of memory"],
                    sources=["diagnostics/redis/pods.txt"],
                )
            ],
        ),
        StepResult(
            "backup:redis",
            "Back up Redis",
            "backup",
            "redis",
            Outcome.FAILED,
            RUN_START + 80,
            RUN_START + 92.3456,
            cause="no space\nmore",
            attempts=1,
            stage="backup",
        ),
    ]
    results.smoke_outcome, results.smoke_cause = Outcome.FAILED, "2 checks failed"
    results.smoke_started_at, results.smoke_ended_at = RUN_START + 50, RUN_START + 60.5
    results.upgrade = UpgradeResults(
        base_values="base/values",
        changes=[
            ReleaseChangeResult(
                "cluster:redis",
                "redis-cluster",
                "redis",
                "upgrade",
                "7.2.7",
                "7.2.8",
                ['~ version: "7.2.7" -> "7.2.8"'],
            )
        ],
        cautions=["redis volumes grow 1 -> 2 Gi"],
        started_at=RUN_START + 45,
        survival=[Survival("redis", Outcome.FAILED, "markers lost\nread 0 of 3")],
    )
    results.backups = [
        BackupResult(
            database="redis",
            title="Redis",
            method="datafile",
            outcome=Outcome.FAILED,
            cause="backup: no space\nmore",
            backup="redis-backup",
            policy="redis-policy",
            restored="redis-cluster-r",
            backup_s=12.3456,
            markers_written=Outcome.PASSED,
        )
    ]
    return results


DETAILED_VERDICT = (
    "1 of 2 databases failed (redis); backup and restore failed for 1 of 1 database (redis); "
    "2 of 4 checks failed (qdrant); 1 of 1 database did not survive the upgrade (redis)"
)


def test_summary_json_of_a_detailed_run_in_full() -> None:
    summary = render_summary(_detailed_run())
    assert list(summary["run"]["versions"]) == ["kubeblocks", "redis"]
    assert summary == {
        "schemaVersion": 1,
        "passed": False,
        "verdict": DETAILED_VERDICT,
        "headline": f"❌ dbstack: {DETAILED_VERDICT}",
        "run": {
            "id": "run-1",
            "startedAt": "2026-09-21T14:13:20Z",
            "endedAt": "2026-09-21T14:15:00Z",
            "durationSeconds": 100.0,
            "clusterKind": "k3s",
            "profile": "ci",
            "namespace": "default",
            "versions": {"kubeblocks": "1.0.1", "redis": "7.2.7"},
            "installedVersions": {"kubeblocks": "1.0.0"},
        },
        "totals": {
            "steps": {"passed": 1, "failed": 2, "timed_out": 0, "skipped": 0, "not_run": 0, "cancelled": 0},
            "databases": {"total": 2, "ready": 1, "notReady": 1},
            "checks": {"total": 4, "passed": 1, "failed": 2, "skipped": 1},
        },
        "steps": [
            {
                "id": "kubeblocks",
                "title": "Install KubeBlocks 1.0.1",
                "kind": "kubeblocks",
                "database": None,
                "outcome": "passed",
                "startedAt": "2026-09-21T14:13:20Z",
                "startSeconds": 0.0,
                "durationSeconds": 30.0,
                "attempts": 1,
                "cause": None,
                "causeFirstLine": None,
                "diagnostics": [],
                "notes": ["reused the installed KubeBlocks"],
                "stage": None,
                "facts": {"chart": "1.0.1"},
                "findings": [],
            },
            {
                "id": "cluster:redis",
                "title": "Deploy Redis",
                "kind": "cluster",
                "database": "redis",
                "outcome": "failed",
                "startedAt": "2026-09-21T14:13:50Z",
                "startSeconds": 30.0,
                "durationSeconds": 12.25,
                "attempts": 2,
                "cause": "Cluster redis-cluster is Abnormal\nwaited 12s",
                "causeFirstLine": "Cluster redis-cluster is Abnormal",
                "diagnostics": ["diagnostics/redis/pods.txt"],
                "notes": [],
                "stage": None,
                "facts": {},
                "findings": [
                    {
                        "subject": "pod/redis-0 container redis",
                        "reason": "OOMKilled",
                        "message": "killed for using more memory than its limit",
                        "event": "BackOff: restarting",
                        "logs": ["out of memory"],
                        "sources": ["diagnostics/redis/pods.txt"],
                    }
                ],
            },
            {
                "id": "backup:redis",
                "title": "Back up Redis",
                "kind": "backup",
                "database": "redis",
                "outcome": "failed",
                "startedAt": "2026-09-21T14:14:40Z",
                "startSeconds": 80.0,
                "durationSeconds": 12.346,
                "attempts": 1,
                "cause": "no space\nmore",
                "causeFirstLine": "no space",
                "diagnostics": [],
                "notes": [],
                "stage": "backup",
                "facts": {},
                "findings": [],
            },
        ],
        "smoke": {"outcome": "failed", "cause": "2 checks failed", "startSeconds": 50.0, "durationSeconds": 10.5},
        "databases": [
            {
                "key": "redis",
                "title": "Redis",
                "outcome": "failed",
                "ready": False,
                "readyAfterSeconds": None,
                "release": "redis-cluster",
                "namespace": "default",
                "version": "7.2.7",
                "chartVersion": "1.0.1",
                "mode": None,
                "replicas": 1,
                "service": "redis-cluster-redis",
                "host": "redis-cluster-redis.default.svc.cluster.local",
                "port": 6379,
                "secretName": None,
                "cause": "Cluster redis-cluster is Abnormal",
                "warnings": [],
                "checks": {"total": 0, "passed": 0, "failed": 0, "skipped": 0, "failures": []},
            },
            {
                "key": "qdrant",
                "title": "Qdrant",
                "outcome": "passed",
                "ready": True,
                "readyAfterSeconds": 61.0,
                "release": "qdrant-cluster",
                "namespace": "default",
                "version": "7.2.7",
                "chartVersion": "1.0.1",
                "mode": None,
                "replicas": 1,
                "service": "qdrant-cluster-qdrant",
                "host": "qdrant-cluster-qdrant.default.svc.cluster.local",
                "port": 6379,
                "secretName": None,
                "cause": None,
                "warnings": ["client 1.13 is 3 minor versions from server 1.10"],
                "checks": {
                    "total": 4,
                    "passed": 1,
                    "failed": 2,
                    "skipped": 1,
                    "failures": [
                        {"name": "test_1", "outcome": "failed", "message": "AssertionError: x"},
                        {"name": "test_3", "outcome": "timed_out", "message": None},
                    ],
                },
            },
        ],
        "upgrade": {
            "baseValues": "base/values",
            "startSeconds": 45.0,
            "releases": [
                {
                    "id": "cluster:redis",
                    "name": "redis-cluster",
                    "database": "redis",
                    "action": "upgrade",
                    "before": "7.2.7",
                    "after": "7.2.8",
                    "diff": ['~ version: "7.2.7" -> "7.2.8"'],
                }
            ],
            "cautions": ["redis volumes grow 1 -> 2 Gi"],
            "survival": [{"database": "redis", "outcome": "failed", "message": "markers lost\nread 0 of 3"}],
        },
        "backups": [
            {
                "database": "redis",
                "title": "Redis",
                "method": "datafile",
                "outcome": "failed",
                "cause": "backup: no space",
                "backup": "redis-backup",
                "backupPolicy": "redis-policy",
                "restoredCluster": "redis-cluster-r",
                "backupSeconds": 12.346,
                "size": None,
                "reportedDuration": None,
                "restoreSeconds": None,
                "markersWritten": "passed",
                "markersReadBack": "not_run",
            }
        ],
    }


DETAILED_SUMMARY_MD = [
    "## ❌ dbstack: 1 of 2 databases failed (redis); backup and restore failed for 1 of 1 database (redis)"
    "; 2 of 4 checks failed (qdrant); 1 of 1 database did not survive the upgrade (redis)",
    "",
    "| Database | Status | Version | Mode | Ready after | Checks |",
    "|---|---|---|---|---|---|",
    "| Redis | ❌ failed | 7.2.7 (chart 1.0.1) | default, 1 replica | - | - |",
    "| Qdrant | ❌ ready, checks failed, ⚠️ 1 warning | 7.2.7 (chart 1.0.1) | default, 1 replica | 1m 01s"
    " | 1 passed, 2 failed, 1 skipped |",
    "",
    "### Why it failed",
    "",
    "**Deploy Redis** failed after 12.2s: Cluster redis-cluster is Abnormal",
    "- `pod/redis-0 container redis`: **OOMKilled**: killed for using more memory than its limit",
    "  Event: BackOff: restarting  ",
    "  Last log lines:",
    "  ```text",
    "  out of memory",
    "  ```",
    "  From [pods.txt](diagnostics/redis/pods.txt)",
    "",
    "Attempts: 2  ",
    "Diagnostics in `diagnostics/redis/`: [pods.txt](diagnostics/redis/pods.txt)",
    "",
    "```text",
    "Cluster redis-cluster is Abnormal",
    "waited 12s",
    "```",
    "",
    "**Back up Redis** failed after 12.3s: no space",
    "",
    "```text",
    "no space",
    "more",
    "```",
    "",
    "**Run the smoke tests** failed: 2 checks failed",
    "",
    "**Qdrant check** `test_1` failed: AssertionError: x",
    "",
    "**Qdrant check** `test_3` timed out: no message was recorded",
    "",
    "**Redis did not survive the upgrade**: markers lost",
    "",
    "### Warnings",
    "",
    "- ⚠️ **Qdrant**: client 1.13 is 3 minor versions from server 1.10",
    "",
    "Run `run-1` · cluster `k3s` · profile `ci` · namespace `default` · started 2026-09-21 14:13:20 UTC · took 1m 40s",
    "",
    "### Databases",
    "",
    "| Database | Service | Secret | Release |",
    "|---|---|---|---|",
    "| Redis (`redis`) | `redis-cluster-redis.default.svc.cluster.local:6379` | none (no authentication)"
    " | `redis-cluster` in namespace `default` |",
    "| Qdrant (`qdrant`) | `qdrant-cluster-qdrant.default.svc.cluster.local:6379` | none (no authentication)"
    " | `qdrant-cluster` in namespace `default` |",
    "",
    "<details open><summary>Qdrant: 4 checks: 1 passed, 2 failed, 1 skipped</summary>",
    "",
    "| Check | Result | Time | Message |",
    "|---|---|---|---|",
    "| `test_0` | ✅ passed | 0.25s |  |",
    "| `test_1` | ❌ failed | 0.50s | AssertionError: x |",
    "| `test_2` | ⏭️ skipped | 0.00s | gRPC not exposed |",
    "| `test_3` | ⏱️ timed out | 30.0s |  |",
    "",
    "</details>",
    "",
    "### Upgrade from `base/values`",
    "",
    "| Database | Survived the upgrade | |",
    "|---|---|---|",
    "| Redis | ❌ failed | markers lost |",
    "",
    "| Release | Change | Before | After |",
    "|---|---|---|---|",
    "| `redis-cluster` | upgrade | 7.2.7 | 7.2.8 |",
    "",
    "<details open><summary>What Helm received differently</summary>",
    "",
    "```diff",
    "# redis-cluster",
    '~ version: "7.2.7" -> "7.2.8"',
    "```",
    "",
    "</details>",
    "",
    "Cautions:",
    "- redis volumes grow 1 -\\> 2 Gi",
    "",
    "### Backup and restore",
    "",
    "| Database | Method | Backup | Size | Restore | Markers read back | Result |",
    "|---|---|---|---|---|---|---|",
    "| Redis | `datafile` | 12.3s | - | - into `redis-cluster-r` | ⚪ not run | ❌ failed: backup: no space |",
    "",
    "### Steps",
    "",
    "| Step | Result | Start | Took | Attempts |",
    "|---|---|---|---|---|",
    "| Install KubeBlocks 1.0.1 | ✅ passed | +0.00s | 30.0s | 1 |",
    "| Deploy Redis | ❌ failed | +30.0s | 12.2s | 2 |",
    "| Back up Redis | ❌ failed | +1m 20s | 12.3s | 1 |",
    "| Run the smoke tests | ❌ failed | +50.0s | 10.5s | - |",
    "",
    "Notes:",
    "- Install KubeBlocks 1.0.1: reused the installed KubeBlocks",
    "",
    "### Timeline",
    "",
    "```mermaid",
    "gantt",
    "    title dbstack run run-1 (time from start)",
    "    dateFormat x",
    "    axisFormat %M:%S",
    "    todayMarker off",
    "    section Base · Platform",
    "    Install KubeBlocks 1.0.1 :done, t1, 0, 30000",
    "    section Base · Redis",
    "    Deploy Redis :crit, t2, 30000, 42250",
    "    section Backup and restore",
    "    Back up Redis :crit, t3, 80000, 92346",
    "    section Smoke tests",
    "    Run the smoke tests :crit, t4, 50000, 60500",
    "```",
    "",
    "### Versions",
    "",
    "| Component | Version |",
    "|---|---|",
    "| `kubeblocks` | `1.0.1` |",
    "| `redis` | `7.2.7` |",
    "| `kubeblocks` (installed) | `1.0.0` |",
    "",
]
UNCAUSED_SUMMARY_MD = [
    "## ⏹️ dbstack: run cancelled; 2 of 3 checks failed (redis)",
    "",
    "| Database | Status | Version | Mode | Ready after | Checks |",
    "|---|---|---|---|---|---|",
    "| Redis | ❌ ready, checks failed | 7.2.7 (chart 1.0.1) | default, 1 replica | 1m 01s"
    " | 0 passed, 2 failed, 1 skipped |",
    "",
    "### Why it failed",
    "",
    "**Install addon redis 1.0.1** timed out after 12.5s: no cause was recorded",
    "",
    "Attempts: 3  ",
    "Diagnostics in `diagnostics/redis/`: pods.txt, events.txt"
    " in the [reports artifact](https://github.com/o/r/actions/runs/1/artifacts/2)  ",
    "Diagnostics in `./`: kubectl.txt in the [reports artifact](https://github.com/o/r/actions/runs/1/artifacts/2)",
    "",
    "**Deploy Redis** cancelled: no cause was recorded",
    "",
    "**Run the smoke tests** failed: -",
    "",
    "**Redis check** `test_a` failed: no message was recorded",
    "",
    "**Redis check** `test_c` not run: no message was recorded",
    "",
    "Run `run-1` · cluster `k3s` · profile `ci` · namespace `default` · started 2026-09-21 14:13:20 UTC",
    "",
    "### Databases",
    "",
    "| Database | Service | Secret | Release |",
    "|---|---|---|---|",
    "| Redis (`redis`) | `redis-cluster-redis.default.svc.cluster.local:6379` | none (no authentication)"
    " | `redis-cluster` in namespace `default` |",
    "",
    "<details open><summary>Redis: 3 checks: 0 passed, 2 failed, 1 skipped</summary>",
    "",
    "| Check | Result | Time | Message |",
    "|---|---|---|---|",
    "| `test_a` | ❌ failed | 1.50s |  |",
    "| `test_b` | ⏭️ skipped | 0.00s |  |",
    "| `test_c` | ⚪ not run | 0.00s |  |",
    "",
    "</details>",
    "",
    "### Steps",
    "",
    "| Step | Result | Start | Took | Attempts |",
    "|---|---|---|---|---|",
    "| Install KubeBlocks 1.0.1 | ✅ passed | +0.00s | 30.0s | 0 |",
    "| Install addon redis 1.0.1 | ⏱️ timed out | +30.0s | 12.5s | 3 |",
    "| Deploy Redis | ⏹️ cancelled | - | - | 0 |",
    "| Install CRDs | ⏭️ skipped | +0.00s | 0.50s | 0 |",
    "| Deploy Qdrant | ⚪ not run | - | - | 0 |",
    "| Run the smoke tests | ❌ failed | +50.0s | 10.0s | - |",
    "",
    "### Timeline",
    "",
    "```mermaid",
    "gantt",
    "    title dbstack run run-1 (time from start)",
    "    dateFormat x",
    "    axisFormat %M:%S",
    "    todayMarker off",
    "    section Platform",
    "    Install KubeBlocks 1.0.1 :done, t1, 0, 30000",
    "    Install CRDs :done, t2, 0, 1000",
    "    section Redis",
    "    Install addon redis 1.0.1 :crit, t3, 30000, 42500",
    "    section Smoke tests",
    "    Run the smoke tests :crit, t4, 50000, 60000",
    "```",
    "",
]


def test_summary_md_of_a_detailed_run_in_full() -> None:
    assert render_markdown(_detailed_run()).split("\n") == DETAILED_SUMMARY_MD


def test_summary_md_of_a_run_without_causes_in_full_linking_to_the_artifact() -> None:
    links = Links(artifact_url="https://github.com/o/r/actions/runs/1/artifacts/2")
    assert render_markdown(_uncaused_run(), links).split("\n") == UNCAUSED_SUMMARY_MD


# --- Markdown and Mermaid helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a", "`a`"), ("a`b", "`` a`b ``"), ("`x", "`` `x ``"), ("x``", "``` x`` ```"), ("a\nb", "`a b`")],
)
def test_code_spans_survive_backticks(value: str, expected: str) -> None:
    assert code(value) == expected


def test_text_escapes_what_markdown_would_format_and_keeps_one_line() -> None:
    assert text("a*b_c [d] <e> \\ `f`\nnext") == "a\\*b\\_c \\[d\\] \\<e\\> \\\\ \\`f\\` next"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "-"),
        (0.0, "0.00s"),
        (9.5, "9.50s"),
        (10.0, "10.0s"),
        (59.94, "59.9s"),
        (60.0, "1m 00s"),
        (3599.0, "59m 59s"),
        (3600.0, "1h 00m"),
        (7325.0, "2h 02m"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float | None, expected: str) -> None:
    assert duration(seconds) == expected


def test_a_fence_is_longer_than_any_fence_inside() -> None:
    assert fenced("x") == "```text\nx\n```"
    assert fenced("a\n```\nb", "diff") == "````diff\na\n```\nb\n````"
    assert fenced("``````") == "```````text\n``````\n```````"


def test_a_long_cause_is_cut_at_60_lines_or_6000_characters() -> None:
    sixty = "\n".join(f"line {n}" for n in range(60))
    assert _truncated(f"  {sixty}\n") == sixty
    assert _truncated(f"{sixty}\nline 60") == f"{sixty}\n… (truncated; the full text is in junit.xml)"
    assert _truncated("x" * 6001) == "x" * 6000 + "\n… (truncated; the full text is in junit.xml)"


def test_links_escape_spaces_and_parentheses() -> None:
    paths = ["diagnostics/my db (1)/pods.txt", "diagnostics/x/events.txt"]
    assert Links().files(paths) == (
        "[pods.txt](diagnostics/my%20db%20%281%29/pods.txt), [events.txt](diagnostics/x/events.txt)"
    )
    assert Links(run_url="https://github.com/o/r/actions/runs/1").files(paths) == (
        "`diagnostics/my db (1)/pods.txt`, `diagnostics/x/events.txt` in the reports artifact of "
        "[the run](https://github.com/o/r/actions/runs/1)"
    )
    assert Links(artifact_url="https://x/a b").files(paths, names_only=True) == (
        "pods.txt, events.txt in the [reports artifact](https://x/a%20b)"
    )


def test_mermaid_names_carry_look_alikes_and_are_never_empty() -> None:
    assert mermaid_name("a: b; c #1\n\td") == "a\N{MODIFIER LETTER COLON} b, c \N{FULLWIDTH NUMBER SIGN}1 d"
    assert mermaid_name(" \n") == "-"


def _timed_run(*steps: tuple[str, str | None, Outcome, float, float | None]) -> RunResults:
    """A run of Redis (listed) whose steps are (title, database, outcome, start, end) in seconds from the start."""
    results = _run(_database("redis", "Redis"))
    results.steps = [
        StepResult(
            title,
            title,
            "cluster",
            database,
            outcome,
            RUN_START + start,
            None if end is None else RUN_START + end,
        )
        for title, database, outcome, start, end in steps
    ]
    return results


def test_the_gantt_of_a_long_run_in_full() -> None:
    results = _timed_run(
        ("Deploy MinIO", "minio", Outcome.PASSED, 2.0, 3700.5),
        ("Deploy Redis", "redis", Outcome.TIMED_OUT, 1.0, 601.0),
        ("Install KubeBlocks: 1.0", None, Outcome.SKIPPED, 0.5, 0.6),
        ("Install addon redis", "redis", Outcome.PASSED, 0.25, None),
        ("Never started", "redis", Outcome.NOT_RUN, 0.0, None),
    )
    results.steps[-1].started_at = None
    results.run_id = "run#1"
    results.smoke_outcome = Outcome.CANCELLED
    results.smoke_started_at = RUN_START + 3700.5
    assert mermaid_gantt(results) == "\n".join(
        [
            "gantt",
            "    title dbstack run run\N{FULLWIDTH NUMBER SIGN}1 (time from start)",
            "    dateFormat x",
            "    axisFormat %H:%M:%S",
            "    todayMarker off",
            "    section Platform",
            "    Install KubeBlocks\N{MODIFIER LETTER COLON} 1.0 :done, t1, 500, 1500",
            "    section Redis",
            "    Install addon redis :done, t2, 250, 1250",
            "    Deploy Redis :crit, t3, 1000, 601000",
            "    section minio",
            "    Deploy MinIO :done, t4, 2000, 3700500",
            "    section Smoke tests",
            "    Run the smoke tests :crit, t5, 3700500, 3701500",
        ]
    )


def test_a_step_that_started_before_the_run_is_drawn_from_zero() -> None:
    results = _timed_run(("Deploy Redis", "redis", Outcome.PASSED, -5.0, 10.0))
    assert mermaid_gantt(results) == "\n".join(
        [
            "gantt",
            "    title dbstack run run-1 (time from start)",
            "    dateFormat x",
            "    axisFormat %M:%S",
            "    todayMarker off",
            "    section Redis",
            "    Deploy Redis :done, t1, 0, 10000",
        ]
    )


def test_a_run_where_no_step_started_has_no_gantt() -> None:
    results = _timed_run(("Deploy Redis", "redis", Outcome.NOT_RUN, 0.0, None))
    results.steps[0].started_at = None
    assert mermaid_gantt(results) is None
    assert headline(results) == "❌ dbstack: run did not pass"
    assert render_markdown(results).endswith("\n\n### Timeline\n\nNo step started.\n")


# --- the folder: files, masking, the step summary -----------------------------------------------------------------


def test_the_folder_is_made_with_its_parents_and_holds_the_four_files_as_indented_utf8_json(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    write_reports(_detailed_run(), out)
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "results.json", "summary.json", "summary.md"]
    summary = (out / "summary.json").read_text(encoding="utf-8")
    assert summary.startswith('{\n  "schemaVersion": 1,\n  "passed": false,\n  "verdict": "1 of 2 databases failed')
    assert f'\n  "headline": "❌ dbstack: {DETAILED_VERDICT}",\n' in summary
    assert summary.endswith("\n  ]\n}\n")
    assert (out / "results.json").read_text(encoding="utf-8").startswith('{\n  "run_id": "run-1",\n')
    assert (out / "summary.md").read_text(encoding="utf-8").split("\n") == DETAILED_SUMMARY_MD
    assert (
        (out / "junit.xml")
        .read_text(encoding="utf-8")
        .startswith(
            '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="dbstack" tests="10" failures="7" errors="0" '
            'skipped="1" time="100.000">\n'
        )
    )


def test_a_step_summary_that_cannot_be_written_is_said_on_stderr_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))
    write_reports(_detailed_run(), tmp_path / "out")
    assert capsys.readouterr() == ("", "dbstack: could not append to $GITHUB_STEP_SUMMARY (Is a directory)\n")
    assert (tmp_path / "out" / "summary.md").exists()


def test_collected_files_are_masked_byte_for_byte_around_text_that_is_not_utf8(tmp_path: Path) -> None:
    logs = tmp_path / "smoke" / "pytest.log"
    logs.parent.mkdir()
    logs.write_bytes(b"\xff\xfe connecting with Sekret-Value-9 \x80\n")
    write_reports(_detailed_run(), tmp_path, secrets=["Sekret-Value-9"])
    assert logs.read_bytes() == b"\xff\xfe connecting with *** \x80\n"


def test_text_from_the_cluster_loses_colours_control_codes_and_broken_characters() -> None:
    assert clean_text("\x1b[31mred\x1b[0m\r\nline\x00\x07\x7f end\ttab \ud800x") == "red\nline end\ttab ?x"


def test_masked_masks_every_string_and_keeps_everything_else() -> None:
    results = _detailed_run()
    results.versions = {"Sekret-Value-9": "1.0", "redis": "Sekret-Value-9"}
    results.databases[1].checks[1].message = "\x1b[1mSekret-Value-9\x1b[0m rejected"
    safe = masked(results, ["Sekret-Value-9"])
    assert safe.versions == {"***": "1.0", "redis": "***"}
    assert safe.databases[1].checks[1] == CheckResult("qdrant", "test_1", Outcome.FAILED, 0.5, "*** rejected")
    assert (safe.databases[1].port, safe.databases[1].ready_after_s, safe.steps[1].attempts) == (6379, 61.0, 2)
    assert results.versions == {"Sekret-Value-9": "1.0", "redis": "Sekret-Value-9"}


def test_the_backup_section_gives_each_databases_method_times_size_and_read_back() -> None:
    results = _run(_database("postgresql", "PostgreSQL"), _database("redis", "Redis"))
    results.backups = _backups()
    section = render_markdown(results).split("\n\n### Backup and restore\n\n", 1)[1].split("\n\n", 1)[0]
    assert section.split("\n") == [
        "| Database | Method | Backup | Size | Restore | Markers read back | Result |",
        "|---|---|---|---|---|---|---|",
        "| PostgreSQL | `volume-snapshot` | 40.2s (38s by KubeBlocks) | 48Mi | 2m 30s into `pg-cluster-r` | ✅ passed "
        "| ✅ passed |",
        "| Redis | `datafile` | 12.0s | - | - into `redis-cluster-r` | ⚪ not run "
        "| ❌ failed: backup: failed to create volume snapshot: no space |",
        "| Elasticsearch | - | - | - | - | - | ⏭️ backup.methods.elasticsearch is none |",
    ]


def test_warnings_are_counted_and_passing_checks_stay_folded() -> None:
    redis = _database("redis", "Redis", checks=2)
    redis.warnings = ["maxmemory-policy is volatile-lru", "no persistence"]
    markdown = render_markdown(_run(redis))
    row = "| Redis | ✅ ready, ⚠️ 2 warnings | 7.2.7 (chart 1.0.1) | default, 1 replica | 1m 01s | 2 passed, 0 failed |"
    assert f"\n{row}\n" in markdown
    assert "\n<details><summary>Redis: 2 checks: 2 passed, 0 failed, 0 skipped</summary>\n" in markdown
    assert (
        "\n\n### Warnings\n\n- ⚠️ **Redis**: maxmemory-policy is volatile-lru\n- ⚠️ **Redis**: no persistence\n\n"
        in markdown
    )


@pytest.mark.parametrize(("end", "axis"), [(3599.999, "%M:%S"), (3600.0, "%H:%M:%S")])
def test_the_axis_shows_hours_from_an_hour_on(end: float, axis: str) -> None:
    gantt = mermaid_gantt(_timed_run(("Deploy Redis", "redis", Outcome.PASSED, 0.0, end)))
    assert gantt is not None and f"\n    axisFormat {axis}\n" in gantt


def test_stage_steps_that_start_together_keep_their_order() -> None:
    results = _timed_run(
        ("Back up Redis", "redis", Outcome.PASSED, 5.0, 9.0), ("Back up Qdrant", "qdrant", Outcome.FAILED, 5.0, 7.0)
    )
    for step in results.steps:
        step.stage = "backup"
    assert [(t.section, t.name, t.status, t.start, t.end) for t in timeline_tasks(results)] == [
        ("Backup and restore", "Back up Redis", "done", 5000, 9000),
        ("Backup and restore", "Back up Qdrant", "crit", 5000, 7000),
    ]


def test_a_failed_smoke_suite_without_a_cause_or_checks_is_the_verdict() -> None:
    results = _run(_database("redis", "Redis"))
    results.smoke_outcome = Outcome.FAILED
    assert headline(results) == "❌ dbstack: smoke tests failed"


def test_summary_json_of_a_run_that_never_ended() -> None:
    summary = render_summary(_uncaused_run())
    assert summary["run"] == {
        "id": "run-1",
        "startedAt": "2026-09-21T14:13:20Z",
        "endedAt": None,
        "durationSeconds": None,
        "clusterKind": "k3s",
        "profile": "ci",
        "namespace": "default",
        "versions": {},
        "installedVersions": {},
    }
    assert summary["totals"] == {
        "steps": {"passed": 1, "failed": 0, "timed_out": 1, "skipped": 1, "not_run": 1, "cancelled": 1},
        "databases": {"total": 1, "ready": 1, "notReady": 0},
        "checks": {"total": 3, "passed": 0, "failed": 2, "skipped": 1},
    }


def test_a_database_lost_in_the_upgrade_without_a_message_says_so() -> None:
    results = _run(_database("redis", "Redis", checks=1))
    results.upgrade = UpgradeResults(base_values="base/values", survival=[Survival("redis", Outcome.TIMED_OUT)])
    markdown = render_markdown(results)
    assert "\n\n**Redis did not survive the upgrade**: no cause was recorded\n\n" in markdown
    assert "\n| Redis | ⏱️ timed out |  |\n" in markdown
