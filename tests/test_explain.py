"""Why a database did not come up, read from pods, events and logs shaped as kubectl prints them."""

from __future__ import annotations

import json
from typing import Any

from dbstack.plan.model import Diagnostic, PodLogs, kubectl
from dbstack.run.explain import Event, Evidence, explain, parse_events
from dbstack.run.runner import CommandResult

POD = "pg-cluster-postgresql-0"
IMAGE = "docker.io/apecloud/postgresql:16.4.0-missing"
EVENTS_HEADER = "LAST SEEN   TYPE      REASON             OBJECT                        MESSAGE"


def events(*rows: tuple[str, str, str, str]) -> str:
    """`kubectl get events` as kubectl pads it: columns separated by runs of spaces."""
    lines = [EVENTS_HEADER]
    lines += [f"{'45s':<11} {kind:<9} {reason:<18} {obj:<29} {message}" for kind, reason, obj, message in rows]
    return "\n".join(lines) + "\n"


def pod(name: str = POD, *, statuses: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "postgresql", "image": IMAGE}]},
        "status": {"phase": "Running", "containerStatuses": statuses or [], **status},
    }


def container(state: dict[str, Any], *, ready: bool = False, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": "postgresql", "ready": ready, "restartCount": restarts, "state": state, "image": IMAGE, **extra}


def evidence(pods: list[dict[str, Any]], event_text: str = "", **logs: str) -> Evidence:
    """What the orchestrator records while it collects a cluster step's diagnostics."""
    found = Evidence("default")
    listing = kubectl("-n", "default", "get", "pods", "-l", "x", "-o", "json")
    pod_list = json.dumps({"kind": "List", "items": pods})
    found.record(Diagnostic("logs.txt", listing, PodLogs("default", 1000)), ok(pod_list), "diagnostics/pg/logs.txt")
    found.record(
        Diagnostic("events.txt", kubectl("-n", "default", "get", "events", "--sort-by=.lastTimestamp")),
        ok(event_text),
        "diagnostics/pg/events.txt",
    )
    found.record(
        Diagnostic("pods.txt", kubectl("-n", "default", "describe", "pods", "-l", "x")),
        ok(""),
        "diagnostics/pg/pods.txt",
    )
    for key, text in logs.items():
        found.record_log(POD, "postgresql", ok(text), previous=key == "previous")
    return found


def ok(stdout: str) -> CommandResult:
    return CommandResult(0, stdout, "")


def test_an_image_pull_names_the_image_and_the_registrys_answer() -> None:
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{IMAGE}"'}}
    said = events(
        ("Normal", "Scheduled", f"pod/{POD}", f"Successfully assigned default/{POD} to k3s-server"),
        ("Warning", "Failed", f"pod/{POD}", "Error: ErrImagePull"),
        (
            "Warning",
            "Failed",
            f"pod/{POD}",
            f'Failed to pull image "{IMAGE}": rpc error: code = NotFound desc = not found',
        ),
        ("Normal", "BackOff", f"pod/{POD}", f'Back-off pulling image "{IMAGE}"'),
    )
    (finding,) = explain(evidence([pod(statuses=[container(waiting)])], said))
    assert finding.subject == f"pod/{POD} container postgresql"
    assert (finding.reason, finding.message) == ("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')
    assert finding.event == f'Failed: Failed to pull image "{IMAGE}": rpc error: code = NotFound desc = not found'
    assert finding.sources == ["diagnostics/pg/pods.txt", "diagnostics/pg/events.txt"]


def test_a_pull_error_without_the_image_in_its_message_gets_it() -> None:
    waiting = {"waiting": {"reason": "ErrImagePull", "message": "rpc error: code = Unknown desc = unauthorized"}}
    (finding,) = explain(evidence([pod(statuses=[container(waiting)])]))
    assert finding.message == f"rpc error: code = Unknown desc = unauthorized (image {IMAGE})"


def test_an_oom_kill_is_the_reason_not_the_crash_loop_it_causes_and_the_last_run_speaks() -> None:
    status = container(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        restarts=4,
        lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    )
    previous = "\n".join(f"LOG: line {n}" for n in range(1, 9)) + "\n"
    (finding,) = explain(evidence([pod(statuses=[status])], previous=previous, current="waiting\n"))
    assert finding.reason == "OOMKilled"
    assert finding.message == (
        "killed for using more memory than its limit (exit code 137); restarted 4 times; now CrashLoopBackOff"
    )
    assert finding.logs == [f"LOG: line {n}" for n in range(4, 9)]
    assert "diagnostics/pg/pods.txt" in finding.sources


def test_a_crash_loop_says_the_exit_code_and_shows_the_last_log_lines() -> None:
    status = container(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}},
        restarts=3,
        lastState={"terminated": {"reason": "Error", "exitCode": 1}},
    )
    (finding,) = explain(evidence([pod(statuses=[status])], previous='FATAL:  role "postgres" does not exist\n'))
    assert finding.reason == "CrashLoopBackOff"
    assert finding.message == "back-off 10s restarting failed container; last exit code 1, restarted 3 times"
    assert finding.logs == ['FATAL: role "postgres" does not exist']


def test_a_failed_readiness_probe_is_the_reason_for_a_running_pod_that_is_not_ready() -> None:
    probe = "Readiness probe failed: dial tcp 10.42.0.17:5432: connect: connection refused"
    said = events(("Warning", "Unhealthy", f"pod/{POD}", probe))
    ready = pod("pg-cluster-postgresql-1", statuses=[container({"running": {}}, ready=True)])
    (finding,) = explain(evidence([ready, pod(statuses=[container({"running": {}})])], said, current="booting\n"))
    assert (finding.reason, finding.message) == ("Unhealthy", probe)
    assert finding.logs == ["booting"]


def test_an_unschedulable_pod_is_a_failed_scheduling_without_the_preemption_note() -> None:
    message = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No victims."
    unscheduled = pod(
        phase="Pending",
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}],
    )
    said = events(("Warning", "FailedScheduling", f"pod/{POD}", message))
    (finding,) = explain(evidence([unscheduled], said))
    assert (finding.subject, finding.reason) == (f"pod/{POD}", "FailedScheduling")
    assert finding.message == "0/1 nodes are available: 1 Insufficient cpu"
    assert finding.event is None  # the event says the same


def test_causes_come_before_symptoms_and_symptoms_go_when_there_is_a_cause() -> None:
    pulling = pod("p-1", statuses=[container({"waiting": {"reason": "ImagePullBackOff", "message": "m"}})])
    unready = pod("p-0", statuses=[container({"running": {}})])
    findings = explain(evidence([unready, pulling]))
    assert [(f.subject, f.reason) for f in findings] == [("pod/p-1 container postgresql", "ImagePullBackOff")]


def test_without_pods_the_clusters_own_warnings_speak() -> None:
    said = events(
        ("Warning", "ApplyResourcesFailed", "cluster/pg-cluster", "componentdefinition postgresql-16 not found"),
    )
    (finding,) = explain(evidence([], said))
    assert (finding.subject, finding.reason) == ("cluster/pg-cluster", "ApplyResourcesFailed")
    assert finding.message == "componentdefinition postgresql-16 not found"


def test_findings_are_masked() -> None:
    status = container(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "x"}},
        restarts=1,
        lastState={"terminated": {"reason": "Error", "exitCode": 2}},
    )
    (finding,) = explain(evidence([pod(statuses=[status])], previous="connecting to postgres://app:hunter2@db/x\n"))
    assert finding.logs == ["connecting to postgres://app:***@db/x"]


def test_event_rows_split_whether_padded_with_spaces_or_tabs() -> None:
    padded = events(("Warning", "BackOff", "pod/a", "Back-off restarting failed container"))
    tabbed = (
        "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE\n5s\tWarning\tBackOff\tpod/a\tBack-off restarting failed container\n"
    )
    assert parse_events(padded) == parse_events(tabbed)
    assert parse_events("No resources found in default namespace.\n") == []


def with_previous_logs_file(found: Evidence) -> Evidence:
    """The orchestrator also collects the previous run's logs of restarted containers into their own file."""
    listing = kubectl("-n", "default", "get", "pods", "-l", "x", "-o", "json")
    previous = Diagnostic("previous-logs.txt", listing, PodLogs("default", 1000, previous=True))
    found.record(previous, ok(found.pods_json), "diagnostics/pg/previous-logs.txt")
    return found


def test_a_terminated_container_says_its_message_exit_code_and_reason() -> None:
    terminated = {
        "terminated": {
            "reason": "StartError",
            "message": 'failed to create containerd task: exec: "/scripts/setup.sh": not found',
            "exitCode": 128,
        }
    }
    (finding,) = explain(evidence([pod(statuses=[container(terminated, restarts=2)])]))
    assert (finding.subject, finding.reason) == (f"pod/{POD} container postgresql", "StartError")
    assert finding.message == (
        'failed to create containerd task: exec: "/scripts/setup.sh": not found; '
        "last exit code 128 (StartError), restarted 2 times"
    )
    assert finding.sources == ["diagnostics/pg/pods.txt"]


def test_a_completed_container_is_no_finding() -> None:
    done = container({"terminated": {"reason": "Completed", "exitCode": 0}}, ready=False)
    assert explain(evidence([pod(statuses=[done])])) == []


def test_a_running_container_that_was_oom_killed_before_says_so() -> None:
    status = container(
        {"running": {}}, ready=True, restarts=2, lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    )
    (finding,) = explain(evidence([pod(statuses=[status])]))
    assert (finding.subject, finding.reason) == (f"pod/{POD} container postgresql", "OOMKilled")
    assert finding.message == "killed for using more memory than its limit (exit code 137); restarted 2 times"


def test_an_oom_kill_names_its_container() -> None:
    status = container(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
        restarts=1,
        lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    )
    (finding,) = explain(evidence([pod(statuses=[status])]))
    assert finding.subject == f"pod/{POD} container postgresql"


def test_a_running_container_not_ready_without_a_probe_event_is_not_ready() -> None:
    (finding,) = explain(evidence([pod(statuses=[container({"running": {}})])]))
    assert (finding.subject, finding.reason, finding.message) == (
        f"pod/{POD} container postgresql",
        "NotReady",
        "running but not ready",
    )
    assert finding.event is None


def test_a_crash_without_previous_logs_shows_the_current_ones() -> None:
    status = container(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
        restarts=2,
        lastState={"terminated": {"reason": "Error", "exitCode": 1}},
    )
    found = with_previous_logs_file(evidence([pod(statuses=[status])], current="starting\n"))
    (finding,) = explain(found)
    assert finding.logs == ["starting"]
    assert finding.sources == ["diagnostics/pg/pods.txt", "diagnostics/pg/logs.txt"]


def test_a_crash_shows_the_previous_runs_logs_from_their_file() -> None:
    status = container(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
        restarts=2,
        lastState={"terminated": {"reason": "Error", "exitCode": 1}},
    )
    found = with_previous_logs_file(evidence([pod(statuses=[status])], previous="FATAL: out\n", current="up\n"))
    (finding,) = explain(found)
    assert finding.logs == ["FATAL: out"]
    assert finding.sources == ["diagnostics/pg/pods.txt", "diagnostics/pg/previous-logs.txt"]


def test_a_container_that_never_crashed_shows_its_current_logs_not_an_older_run() -> None:
    probe = "Readiness probe failed: connection refused"
    said = events(("Warning", "Unhealthy", f"pod/{POD}", probe))
    found = with_previous_logs_file(
        evidence([pod(statuses=[container({"running": {}})])], said, previous="old run\n", current="booting\n")
    )
    (finding,) = explain(found)
    assert finding.logs == ["booting"]
    assert finding.sources == ["diagnostics/pg/pods.txt", "diagnostics/pg/logs.txt", "diagnostics/pg/events.txt"]


def test_a_failing_init_container_is_found_and_its_image_named_from_the_spec() -> None:
    init_image = "docker.io/apecloud/kubeblocks-tools:1.0.1-missing"
    status = {"name": "init-tools", "ready": False, "restartCount": 0}
    status["state"] = {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}
    failing = pod(statuses=[container({"running": {}}, ready=True)], initContainerStatuses=[status])
    failing["spec"]["initContainers"] = [{"name": "init-tools", "image": init_image}]
    (finding,) = explain(evidence([failing]))
    assert (finding.subject, finding.reason) == (f"pod/{POD} container init-tools", "ErrImagePull")
    assert finding.message == f"manifest unknown (image {init_image})"


def test_every_container_of_a_pod_is_looked_at() -> None:
    sidecar = {"name": "exporter", "ready": False, "restartCount": 0, "image": "exporter:1"}
    sidecar["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "x" not found'}}
    both = pod(statuses=[container({"running": {}}, ready=True), sidecar])
    (finding,) = explain(evidence([both]))
    assert (finding.subject, finding.reason) == (f"pod/{POD} container exporter", "CreateContainerConfigError")
    assert finding.message == 'secret "x" not found'


def test_a_warning_about_the_pod_explains_a_reason_without_a_preferred_event() -> None:
    sidecar = container({"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "pg-x" not found'}})
    said = events(("Warning", "FailedMount", f"pod/{POD}", 'MountVolume.SetUp failed for volume "data"'))
    (finding,) = explain(evidence([pod(statuses=[sidecar])], said))
    assert finding.event == 'FailedMount: MountVolume.SetUp failed for volume "data"'
    assert finding.sources == ["diagnostics/pg/pods.txt", "diagnostics/pg/events.txt"]


def test_an_unschedulable_pod_comes_first_and_names_its_sources() -> None:
    pulling = pod("p-0", statuses=[container({"waiting": {"reason": "ImagePullBackOff", "message": "m"}})])
    pending = pod("p-1", phase="Pending", conditions=[{"type": "PodScheduled", "reason": "Unschedulable"}])
    said = events(("Warning", "FailedScheduling", "pod/p-1", "0/1 nodes are available: 1 Insufficient memory."))
    findings = explain(evidence([pulling, pending], said))
    assert [(f.subject, f.reason) for f in findings] == [
        ("pod/p-1", "FailedScheduling"),
        ("pod/p-0 container postgresql", "ImagePullBackOff"),
    ]
    assert findings[0].message == "Unschedulable"
    assert findings[0].event == "FailedScheduling: 0/1 nodes are available: 1 Insufficient memory."
    assert findings[0].sources == ["diagnostics/pg/pods.txt", "diagnostics/pg/events.txt"]


def test_a_long_message_is_cut_to_four_hundred_characters() -> None:
    waiting = {"waiting": {"reason": "CreateContainerError", "message": "x" * 450}}
    (finding,) = explain(evidence([pod(statuses=[container(waiting)])]))
    assert finding.message == "x" * 399 + "…"


def test_rows_too_short_to_be_events_are_skipped() -> None:
    assert parse_events("5s Warning BackOff\n") == []
    assert parse_events("5s Warning BackOff pod/a\n") == [Event("Warning", "BackOff", "pod/a", "")]


def test_only_a_crash_loop_says_the_last_exit() -> None:
    status = container(
        {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "x" not found'}},
        restarts=1,
        lastState={"terminated": {"reason": "Error", "exitCode": 1}},
    )
    (finding,) = explain(evidence([pod(statuses=[status])]))
    assert finding.message == 'secret "x" not found'


def test_an_oom_kill_comes_before_a_crash_loop_and_a_failed_probe_before_other_reasons() -> None:
    looping = container(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
        restarts=1,
        lastState={"terminated": {"reason": "Error", "exitCode": 1}},
    )
    killed = container({"running": {}}, restarts=1, lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}})
    findings = explain(evidence([pod("p-0", statuses=[looping]), pod("p-1", statuses=[killed])]))
    assert [(f.subject, f.reason) for f in findings] == [
        ("pod/p-1 container postgresql", "OOMKilled"),
        ("pod/p-0 container postgresql", "CrashLoopBackOff"),
    ]
    config = container({"waiting": {"reason": "CreateContainerConfigError", "message": "m"}})
    said = events(("Warning", "Unhealthy", "pod/p-1", "Readiness probe failed: connection refused"))
    findings = explain(
        evidence([pod("p-0", statuses=[config]), pod("p-1", statuses=[container({"running": {}})])], said)
    )
    assert [(f.subject, f.reason) for f in findings] == [
        ("pod/p-1 container postgresql", "Unhealthy"),
        ("pod/p-0 container postgresql", "CreateContainerConfigError"),
    ]


def test_a_pull_error_takes_the_image_from_the_pod_spec_when_the_status_has_none() -> None:
    status = container({"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}})
    del status["image"]
    (finding,) = explain(evidence([pod(statuses=[status])]))
    assert finding.message == f"manifest unknown (image {IMAGE})"


def test_only_the_events_of_the_clusters_namespace_are_read_however_it_is_named() -> None:
    found = Evidence("default")
    said = events(("Warning", "ApplyResourcesFailed", "cluster/pg-cluster", "componentdefinition not found"))
    other = events(("Warning", "BackOff", "pod/kubeblocks-0", "Back-off restarting failed container"))
    other_namespace = kubectl("-n", "kb-system", "get", "events", "--sort-by=.lastTimestamp")
    found.record(Diagnostic("events.txt", kubectl("--namespace", "default", "get", "events")), ok(said), "ev.txt")
    found.record(Diagnostic("kb-events.txt", other_namespace), ok(other), "kb-events.txt")
    (finding,) = explain(found)
    assert (finding.subject, finding.reason, finding.sources) == (
        "cluster/pg-cluster",
        "ApplyResourcesFailed",
        ["ev.txt"],
    )
