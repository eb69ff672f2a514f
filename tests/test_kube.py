"""Judging a Cluster and its pods from `kubectl get -o json`: what ends a wait early and what does not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dbstack.plan.model import Watch
from dbstack.run.backupchecks import RestoreState
from dbstack.run.kube import (
    FatalStreaks,
    PodContainer,
    cluster_generation,
    cluster_state,
    is_transient,
    pod_containers,
    with_restores,
)

WATCH = Watch(cluster="pg-cluster", namespace="default", pod_selector="app.kubernetes.io/instance=pg-cluster")


def cluster(phase: str, **status: Any) -> str:
    return json.dumps({"metadata": {"name": "pg-cluster"}, "status": {"phase": phase, **status}})


def pods(*items: dict[str, Any]) -> str:
    return json.dumps({"kind": "List", "items": list(items)})


def pod(name: str, *, ready: bool = False, scheduled: str | None = None, waiting: str | None = None) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": scheduled})
    containers = []
    if waiting:
        containers.append({"name": "postgresql", "state": {"waiting": {"reason": waiting, "message": "m"}}})
    return {
        "metadata": {"name": name},
        "status": {"phase": "Pending", "conditions": conditions, "containerStatuses": containers},
    }


def test_insufficient_cpu_is_fatal_and_the_preemption_note_is_dropped() -> None:
    message = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No victims."
    state = cluster_state(WATCH, cluster("Creating"), pods(pod("pg-cluster-postgresql-1", scheduled=message)))
    assert state.fatal == "pg-cluster-postgresql-1 Pending: 0/1 nodes are available: 1 Insufficient cpu"


def test_an_unbound_volume_claim_is_not_fatal_it_resolves_by_itself() -> None:
    message = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    state = cluster_state(WATCH, cluster("Creating"), pods(pod("pg-cluster-postgresql-0", scheduled=message)))
    assert state.fatal is None
    assert state.stuck == (
        "pg-cluster-postgresql-0 Pending: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims",
    )


def test_a_first_failed_pull_is_not_fatal_but_the_backoff_is() -> None:
    first = cluster_state(WATCH, cluster("Creating"), pods(pod("p-0", waiting="ErrImagePull")))
    backoff = cluster_state(WATCH, cluster("Creating"), pods(pod("p-0", waiting="ImagePullBackOff")))
    assert first.fatal is None
    assert backoff.fatal == "p-0 container postgresql ImagePullBackOff: m"


def test_an_abnormal_cluster_is_fatal_with_the_component_message_first() -> None:
    status = {"components": {"postgresql": {"phase": "Failed", "message": {"InstanceSet/x": "pod x-1 not ready"}}}}
    state = cluster_state(WATCH, cluster("Abnormal", **status), pods(pod("x-0", ready=True), pod("x-1")))
    assert (state.fatal or "").split("\n") == [
        "Cluster pg-cluster is Abnormal: component postgresql Failed: InstanceSet/x: pod x-1 not ready",
        "x-1 Pending, not ready",
    ]
    assert state.summary == "Cluster Abnormal; pods 1/2 ready"


def test_every_message_of_a_failed_component_is_said() -> None:
    message = {"InstanceSet/x": "pod x-1 not ready", "Pod/x-1": "Back-off restarting failed container"}
    status = {"components": {"postgresql": {"phase": "Failed", "message": message}}}
    state = cluster_state(WATCH, cluster("Failed", **status), pods(pod("x-0", ready=True)))
    assert state.fatal == (
        "Cluster pg-cluster is Failed: component postgresql Failed: InstanceSet/x: pod x-1 not ready; "
        "Pod/x-1: Back-off restarting failed container"
    )


def test_a_cluster_not_created_yet_is_only_waited_on() -> None:
    state = cluster_state(WATCH, "", pods())
    assert (state.summary, state.fatal) == ("Cluster pg-cluster not created yet", None)


def test_transient_api_errors_are_recognised_and_answers_are_not() -> None:
    assert is_transient("Error from server (ServiceUnavailable): the server is currently unable to handle the request")
    assert is_transient(
        "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"
    )
    assert not is_transient('Error from server (NotFound): deployments.apps "kubeblocks" not found')
    assert not is_transient("Error: cannot re-use a name that is still in use")


def test_insufficient_memory_is_as_fatal_as_insufficient_cpu() -> None:
    message = "0/1 nodes are available: 1 Insufficient memory."
    state = cluster_state(WATCH, cluster("Creating"), pods(pod("pg-cluster-postgresql-0", scheduled=message)))
    assert state.fatal == "pg-cluster-postgresql-0 Pending: 0/1 nodes are available: 1 Insufficient memory"


def test_a_failed_cluster_is_fatal_with_its_false_condition_when_components_say_nothing() -> None:
    conditions = [{"type": "Ready", "status": "False", "message": "pods are not ready in components: [postgresql]"}]
    state = cluster_state(WATCH, cluster("Failed", conditions=conditions), pods())
    assert state.fatal == "Cluster pg-cluster is Failed: Ready: pods are not ready in components: [postgresql]"


def test_a_running_cluster_with_ready_pods_is_neither_fatal_nor_stuck() -> None:
    state = cluster_state(WATCH, cluster("Running"), pods(pod("x-0", ready=True), pod("x-1", ready=True)))
    assert (state.fatal, state.stuck, state.summary) == (None, (), "Cluster Running; pods 2/2 ready")


def crashing(restarts: int) -> str:
    container = {
        "name": "postgresql",
        "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
    }
    item = {"metadata": {"name": "p-1"}, "status": {"phase": "Running", "containerStatuses": [container]}}
    return pods(item)


def test_one_restart_in_crash_loop_fails_only_when_the_next_look_still_shows_it() -> None:
    streaks = FatalStreaks(WATCH)
    once = cluster_state(WATCH, cluster("Creating"), crashing(1))
    assert once.fatal is not None
    assert streaks.judge(once) is None
    again = cluster_state(WATCH, cluster("Creating"), crashing(2))
    assert streaks.judge(again) == again.fatal


def test_a_blip_between_looks_starts_the_count_again() -> None:
    streaks = FatalStreaks(WATCH)
    abnormal = cluster_state(WATCH, cluster("Abnormal"), pods())
    assert streaks.judge(abnormal) is None
    assert streaks.judge(cluster_state(WATCH, cluster("Creating"), pods())) is None
    assert streaks.judge(abnormal) is None
    assert streaks.judge(abnormal) == abnormal.fatal


def test_a_crash_loop_that_restarted_often_enough_fails_on_first_sight() -> None:
    state = cluster_state(WATCH, cluster("Creating"), crashing(WATCH.crashloop_restarts))
    assert FatalStreaks(WATCH).judge(state) == state.fatal


def test_a_crash_loop_line_names_its_restarts_and_last_exit_code_and_only_what_the_pod_reports() -> None:
    container = {
        "name": "postgresql",
        "restartCount": 3,
        "lastState": {"terminated": {"exitCode": 1}},
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
    }
    full = {"metadata": {"name": "p-1"}, "status": {"phase": "Running", "containerStatuses": [container]}}
    bare = {"name": "postgresql", "state": container["state"]}
    silent = {"metadata": {"name": "p-1"}, "status": {"phase": "Running", "containerStatuses": [bare]}}
    assert cluster_state(WATCH, cluster("Creating"), pods(full)).fatal == (
        "p-1 container postgresql CrashLoopBackOff (restarted 3 times, last exit code 1): back-off"
    )
    assert cluster_state(WATCH, cluster("Creating"), pods(silent)).fatal == (
        "p-1 container postgresql CrashLoopBackOff: back-off"
    )


# CrashLoopBackOff, the fourth, names its restarts: the tests above.
@pytest.mark.parametrize("reason", ["ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName"])
def test_a_container_waiting_for_a_change_to_the_deployment_fails_the_wait_on_the_second_look(reason: str) -> None:
    streaks = FatalStreaks(WATCH)
    look = cluster_state(WATCH, cluster("Creating"), pods(pod("p-0", waiting=reason)))
    assert look.fatal == f"p-0 container postgresql {reason}: m"
    assert [streaks.judge(look), streaks.judge(look)] == [None, f"p-0 container postgresql {reason}: m"]


@pytest.mark.parametrize("reason", ["ErrImagePull", "ContainerCreating", "PodInitializing"])
def test_a_container_still_starting_never_fails_the_wait(reason: str) -> None:
    streaks = FatalStreaks(WATCH)
    look = cluster_state(WATCH, cluster("Creating"), pods(pod("p-0", waiting=reason)))
    assert look.fatal is None
    assert [streaks.judge(look) for _ in range(3)] == [None, None, None]


def test_restores_add_their_phases_and_a_failed_one_fails_the_wait_at_once() -> None:
    creating = cluster_state(WATCH, cluster("Creating"), pods(pod("p-0", ready=True)))
    none_yet = with_restores(creating, RestoreState("", None))
    assert (none_yet.summary, none_yet.fatal) == ("Cluster Creating; pods 1/1 ready", None)
    running = with_restores(creating, RestoreState("restores: r-preparedata Running", None))
    assert (running.summary, running.fatal) == (
        "Cluster Creating; pods 1/1 ready; restores: r-preparedata Running",
        None,
    )
    assert FatalStreaks(WATCH).judge(running) is None
    failed = with_restores(
        creating, RestoreState("restores: r-preparedata Failed", "Restore r-preparedata Failed: backup not found")
    )
    assert failed.summary == "Cluster Creating; pods 1/1 ready; restores: r-preparedata Failed"
    assert FatalStreaks(WATCH).judge(failed) == "Restore r-preparedata Failed: backup not found"


def test_a_failed_restore_comes_before_what_the_cluster_says() -> None:
    abnormal = cluster_state(WATCH, cluster("Abnormal"), pods(pod("p-0", ready=True)))
    failed = with_restores(abnormal, RestoreState("restores: r Failed", "Restore r Failed: no message"))
    assert FatalStreaks(WATCH).judge(failed) == "Restore r Failed: no message\nCluster pg-cluster is Abnormal"


@pytest.mark.parametrize(
    ("reason", "stuck"),
    [
        ("ErrImagePull", "p-0 container postgresql ErrImagePull: m"),
        ("ContainerCreating", "p-0 Pending, not ready"),
        ("PodInitializing", "p-0 Pending, not ready"),
    ],
)
def test_what_keeps_a_pod_from_ready_is_said_for_the_timeout_without_the_mere_start(reason: str, stuck: str) -> None:
    look = cluster_state(WATCH, cluster("Creating"), pods(pod("p-0", waiting=reason)))
    assert look.stuck == (stuck,)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [({"generation": 3}, 3), ({"generation": True}, None), ({"generation": "3"}, None), ({}, None)],
)
def test_the_generation_is_a_whole_number_or_unknown(metadata: dict[str, Any], expected: int | None) -> None:
    assert cluster_generation(json.dumps({"metadata": metadata})) == expected


def test_pod_containers_lists_init_containers_first_with_their_restarts() -> None:
    listed = {
        "metadata": {"name": "pg-0"},
        "spec": {"initContainers": [{"name": "init-syncer"}], "containers": [{"name": "postgresql"}, {}]},
        "status": {
            "initContainerStatuses": [{"name": "init-syncer", "restartCount": 2}],
            "containerStatuses": [{"name": "postgresql", "restartCount": 0}],
        },
    }
    assert pod_containers(pods(listed)) == [
        PodContainer("pg-0", "init-syncer", 2),
        PodContainer("pg-0", "postgresql", 0),
        PodContainer("pg-0", "?", 0),
    ]
    assert pod_containers('{"kind": "Pod"}') is None


def test_restores_still_going_keep_what_the_cluster_says() -> None:
    abnormal = cluster_state(WATCH, cluster("Abnormal"), pods(pod("p-0", ready=True)))
    going = with_restores(abnormal, RestoreState("restores: r Running", None))
    assert going.fatal == "Cluster pg-cluster is Abnormal"
