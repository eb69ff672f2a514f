"""A preview's teardown command by command: what it runs, in which order, with which time limits, what it reports
and the exact words of its refusals."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from dbstack.github.preview import LABEL_TEARDOWN, PreviewError, TeardownReport, teardown
from dbstack.plan.model import Command
from dbstack.run.runner import CommandResult
from test_preview import NOW, FakeCluster, _labels, run

GET_PR_9 = ("kubectl", "get", "namespace", "pr-9", "-o", "json", "--ignore-not-found")
LIST_PR_9 = ("helm", "list", "-n", "pr-9", "--all", "-o", "json")


@dataclass
class TimedCluster(FakeCluster):
    """The in-memory cluster, also noting the time limit each command was given."""

    limits: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    async def run(self, command: Command, *, timeout_s: float) -> CommandResult:
        self.limits.append((command.argv, timeout_s))
        return await super().run(command, timeout_s=timeout_s)


def test_teardown_condemns_uninstalls_each_release_and_deletes_the_namespace_within_its_limits() -> None:
    cluster = TimedCluster()
    cluster.add_namespace("pr-9", _labels(9, NOW), "Active", "pg-cluster", "redis-cluster")
    report = run(lambda: teardown(cluster, 9, now=NOW, timeout_s=300))
    assert cluster.limits == [
        (GET_PR_9, 60),
        (LIST_PR_9, 60),
        (("kubectl", "label", "namespace", "pr-9", "dbstack.io/teardown-started-at=1800000000", "--overwrite"), 60),
        (("helm", "uninstall", "pg-cluster", "-n", "pr-9", "--wait", "--timeout=300s"), 360),
        (("helm", "uninstall", "redis-cluster", "-n", "pr-9", "--wait", "--timeout=300s"), 360),
        (("kubectl", "delete", "namespace", "pr-9", "--ignore-not-found", "--timeout=300s"), 360),
    ]
    assert report == TeardownReport("pr-9", existed=True, releases=("pg-cluster", "redis-cluster"), adopted=False)
    assert report.summary() == "pr-9: removed pg-cluster, redis-cluster and the namespace"


def test_teardown_by_default_waits_ten_minutes_per_command_and_stamps_time_zero() -> None:
    cluster = TimedCluster()
    cluster.add_namespace("pr-9", _labels(9, NOW))
    report = run(lambda: teardown(cluster, 9))
    assert cluster.limits[2:] == [
        (("kubectl", "label", "namespace", "pr-9", "dbstack.io/teardown-started-at=0", "--overwrite"), 60),
        (("kubectl", "delete", "namespace", "pr-9", "--ignore-not-found", "--timeout=600s"), 660),
    ]
    assert report.summary() == "pr-9: removed no releases and the namespace"


def test_a_teardown_already_started_is_not_stamped_again() -> None:
    cluster = TimedCluster()
    cluster.add_namespace("pr-9", {**_labels(9, NOW), LABEL_TEARDOWN: str(NOW)}, "Active", "pg-cluster")
    run(lambda: teardown(cluster, 9, now=NOW + 5))
    assert [argv[:2] for argv, _ in cluster.limits] == [
        ("kubectl", "get"),
        ("helm", "list"),
        ("helm", "uninstall"),
        ("kubectl", "delete"),
    ]


def test_a_namespace_already_terminating_is_only_waited_for() -> None:
    cluster = TimedCluster()
    cluster.add_namespace("pr-9", _labels(9, NOW), "Terminating", "pg-cluster")
    report = run(lambda: teardown(cluster, 9, now=NOW, timeout_s=120))
    assert cluster.limits == [
        (GET_PR_9, 60),
        (("kubectl", "wait", "namespace/pr-9", "--for=delete", "--timeout=120s"), 180),
    ]
    assert report == TeardownReport("pr-9", existed=True, releases=(), adopted=False)
    assert report.summary() == "pr-9: removed no releases and the namespace"


def test_an_unlabelled_namespace_already_terminating_is_reported_adopted() -> None:
    cluster = TimedCluster()
    cluster.add_namespace("pr-9", {}, "Terminating")
    report = run(lambda: teardown(cluster, 9, adopt_unlabelled=True))
    assert report == TeardownReport("pr-9", existed=True, releases=(), adopted=True)
    assert report.summary() == "pr-9: removed no releases and the namespace (adopted: it had no dbstack labels)"


def test_a_missing_preview_is_reported_as_nothing_to_remove() -> None:
    cluster = TimedCluster()
    report = run(lambda: teardown(cluster, 9))
    assert cluster.limits == [(GET_PR_9, 60)]
    assert report == TeardownReport("pr-9", existed=False, releases=(), adopted=False)
    assert report.summary() == "pr-9: not found, nothing to remove"


def test_an_adopted_namespace_is_removed_and_said_to_be_adopted() -> None:
    cluster = TimedCluster()
    cluster.add_namespace("pr-7", {"kubernetes.io/metadata.name": "pr-7"}, "Active", "pg-cluster")
    report = run(lambda: teardown(cluster, 7, adopt_unlabelled=True, now=NOW))
    assert report == TeardownReport("pr-7", existed=True, releases=("pg-cluster",), adopted=True)
    assert report.summary() == "pr-7: removed pg-cluster and the namespace (adopted: it had no dbstack labels)"


def test_the_refusals_say_why_in_full() -> None:
    cluster = TimedCluster()
    cluster.add_namespace("pr-7", {"kubernetes.io/metadata.name": "pr-7"})
    cluster.add_namespace("pr-8", _labels(9, NOW))
    with pytest.raises(PreviewError) as unlabelled:
        run(lambda: teardown(cluster, 7))
    assert str(unlabelled.value) == (
        "refusing to tear down pr-7: it has no dbstack labels (an older preview's helm --create-namespace, or not a "
        "preview at all); ask for adopt-unlabelled if it is this pull request's"
    )
    with pytest.raises(PreviewError) as other:
        run(lambda: teardown(cluster, 8, adopt_unlabelled=True))
    assert str(other.value) == "refusing to tear down pr-8: it is not labelled dbstack.io/pr=8"
    assert [argv[1] for argv, _ in cluster.limits] == ["get", "get"]
