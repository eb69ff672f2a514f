"""Why a database did not come up, read from what the orchestrator collected after the failure: the pods
(`kubectl get pods -o json`), their containers' logs and the namespace's events (`kubectl get events`).

Engine-free: `Evidence` gathers the outputs as the diagnostics are collected, `explain` turns them into
`Finding`s, most telling first: the failing container's waiting or terminated reason and message (the image of a
failed pull, the exit code of a crash, OOMKilled), its last log lines, and the event that explains it
(FailedScheduling, a failed pull, a failed probe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbstack.masking import mask
from dbstack.plan.model import Diagnostic
from dbstack.run.kube import get_in, items_of, mappings, parse_json
from dbstack.run.results import Finding
from dbstack.run.runner import CommandResult

MAX_FINDINGS = 5
LOG_LINES = 5
MAX_TEXT = 400
"""Characters of one message, event or log line (a stack trace on one line stays readable)."""
STARTING = ("ContainerCreating", "PodInitializing")
"""Waiting reasons that only say a container has not started yet."""
CRASH_REASONS = ("CrashLoopBackOff", "Error", "OOMKilled", "ContainerCannotRun", "StartError")
PULL_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
# The event reasons that explain a finding of each kind, best first; any other Warning about the pod comes last.
_EXPLAINING_EVENTS: dict[str, tuple[str, ...]] = {
    "FailedScheduling": ("FailedScheduling",),
    **dict.fromkeys(PULL_REASONS, ("Failed", "BackOff")),
    **dict.fromkeys(CRASH_REASONS, ("Unhealthy", "Failed", "BackOff")),
    "Unhealthy": ("Unhealthy",),
}


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    subject: str
    """`pod/<name>`, `cluster/<name>`, ... as `kubectl get events` prints the object."""
    message: str


@dataclass
class Evidence:
    """What the diagnostics of one cluster step collected, kept in memory for `explain`."""

    namespace: str
    pods_json: str = ""
    events: str = ""
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    previous_logs: dict[tuple[str, str], str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """Role (`logs`, `previous_logs`, `events`, `describe`) -> the diagnostics file it went into."""

    def record(self, diagnostic: Diagnostic, done: CommandResult, path: str) -> None:
        """One diagnostic's output, recognised by the command that produced it."""
        if not done.ok:
            return
        if diagnostic.pod_logs is not None:
            self.files["previous_logs" if diagnostic.pod_logs.previous else "logs"] = path
            if not diagnostic.pod_logs.previous:
                self.pods_json = done.stdout
            return
        argv = diagnostic.command.argv
        if argv[:1] == ("kubectl",) and _namespace(argv) == self.namespace:
            if "get" in argv and ("events" in argv or "event" in argv):
                self.events, self.files["events"] = done.stdout, path
            elif "describe" in argv and ("pods" in argv or "pod" in argv):
                self.files["describe"] = path

    def record_log(self, pod: str, container: str, done: CommandResult, *, previous: bool) -> None:
        if done.ok:
            (self.previous_logs if previous else self.logs)[(pod, container)] = done.stdout


def explain(evidence: Evidence, masker: Callable[[str], str] = mask) -> list[Finding]:
    """The concrete reasons the pods and events give, most telling first, at most `MAX_FINDINGS`, masked."""
    events = parse_events(evidence.events)
    findings = [f for pod in items_of(parse_json(evidence.pods_json)) for f in _pod_findings(pod, events, evidence)]
    findings.sort(key=_rank)
    if any(f.reason != "NotReady" for f in findings):  # "running but not ready" is a symptom beside a cause
        findings = [f for f in findings if f.reason != "NotReady"]
    if not findings:
        findings = _object_findings(events, evidence)
    return [_masked(f, masker) for f in findings[:MAX_FINDINGS]]


def parse_events(text: str) -> list[Event]:
    """Rows of `kubectl get events` (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE): every column but the message is
    one word, so a row splits on whitespace whether kubectl padded it with spaces or the text has tabs."""
    found = []
    for line in text.splitlines():
        parts = line.split(None, 4)
        if len(parts) < 4 or line.startswith("LAST SEEN") or parts[1] not in ("Normal", "Warning"):
            continue
        found.append(Event(parts[1], parts[2], parts[3], parts[4].strip() if len(parts) > 4 else ""))
    return found


# --- pods ----------------------------------------------------------------------------------------------------------


def _pod_findings(pod: Mapping[str, Any], events: list[Event], evidence: Evidence) -> Iterator[Finding]:
    name = str(get_in(pod, "metadata", "name") or "pod")
    own_events = [e for e in events if e.subject == f"pod/{name}"]
    used: set[Event] = set()
    unschedulable = _unschedulable(pod)
    if unschedulable is not None:
        scheduling = Finding(f"pod/{name}", "FailedScheduling", unschedulable, sources=_files(evidence, "describe"))
        scheduling, by_event = _with_event(scheduling, own_events, used)
        scheduling.sources += _files(evidence, "events") if by_event else []
        yield scheduling
        return
    images = {str(c.get("name")): str(c.get("image") or "") for c in _spec_containers(pod)}
    for status in _container_statuses(pod):
        container = str(status.get("name") or "?")
        finding = _container_finding(name, container, status, images.get(container) or str(status.get("image") or ""))
        if finding is None:
            continue
        finding.sources = _files(evidence, "describe")
        finding, by_event = _with_event(finding, own_events, used)
        logs_role = "previous_logs" if finding.reason in CRASH_REASONS and int(_restarts(status)) > 0 else "logs"
        source = evidence.previous_logs if logs_role == "previous_logs" else evidence.logs
        lines = _last_lines(source.get((name, container), ""))
        if not lines and logs_role == "previous_logs":
            logs_role, lines = "logs", _last_lines(evidence.logs.get((name, container), ""))
        if lines:
            finding.logs = lines
            finding.sources += _files(evidence, logs_role)
        if by_event:
            finding.sources += _files(evidence, "events")
        yield finding


def _container_finding(pod: str, container: str, status: Mapping[str, Any], image: str) -> Finding | None:
    subject = f"pod/{pod} container {container}"
    restarts = _restarts(status)
    last = get_in(status, "lastState", "terminated")
    waiting = get_in(status, "state", "waiting")
    terminated = get_in(status, "state", "terminated")
    if isinstance(waiting, Mapping) and waiting.get("reason") and waiting["reason"] not in STARTING:
        reason, message = str(waiting["reason"]), _one_line(waiting.get("message"))
        if reason in PULL_REASONS and image and image not in message:
            message = f"{message} (image {image})" if message else f"image {image}"
        if isinstance(last, Mapping) and last.get("reason") == "OOMKilled":
            return Finding(subject, "OOMKilled", _oom(last, restarts, reason))
        if isinstance(last, Mapping) and reason == "CrashLoopBackOff":
            message = _joined(message, _exit(last, restarts))
        return Finding(subject, reason, message)
    if isinstance(terminated, Mapping) and terminated.get("reason") not in (None, "Completed"):
        reason = str(terminated["reason"])
        if reason == "OOMKilled":
            return Finding(subject, reason, _oom(terminated, restarts, None))
        return Finding(subject, reason, _joined(_one_line(terminated.get("message")), _exit(terminated, restarts)))
    if isinstance(last, Mapping) and last.get("reason") == "OOMKilled":
        return Finding(subject, "OOMKilled", _oom(last, restarts, None))
    if status.get("ready") is False and isinstance(get_in(status, "state", "running"), Mapping):
        return Finding(subject, "NotReady", "running but not ready")
    return None


def _oom(terminated: Mapping[str, Any], restarts: int, now: str | None) -> str:
    code = terminated.get("exitCode", 137)
    text = f"killed for using more memory than its limit (exit code {code}); restarted {restarts} times"
    return f"{text}; now {now}" if now else text


def _exit(terminated: Mapping[str, Any], restarts: int) -> str:
    reason = terminated.get("reason")
    reason_text = f" ({reason})" if reason and reason != "Error" else ""
    return f"last exit code {terminated.get('exitCode')}{reason_text}, restarted {restarts} times"


def _with_event(finding: Finding, events: list[Event], used: set[Event]) -> tuple[Finding, bool]:
    """Attach the pod's event that explains the finding (a failed probe becomes the finding itself); say whether
    an event was used."""
    wanted = _EXPLAINING_EVENTS.get(finding.reason, ())
    candidates = [e for e in events if e.type == "Warning" and e not in used]
    # kubelet follows "Failed to pull image ...: not found" with a bare "Error: ErrImagePull": prefer the words.
    ranked = sorted(
        candidates,
        key=lambda e: (wanted.index(e.reason) if e.reason in wanted else len(wanted), e.message.startswith("Error: ")),
    )
    if finding.reason == "NotReady":
        probe = next((e for e in ranked if e.reason == "Unhealthy"), None)
        if probe is None:
            return finding, False
        used.add(probe)
        return Finding(finding.subject, "Unhealthy", _one_line(probe.message), sources=finding.sources), True
    if not ranked:
        return finding, False
    best = ranked[0]
    used.add(best)
    said = _one_line(best.message)
    if said in finding.message or finding.message in said:
        return finding, True  # the event says what the status says: the status is enough
    finding.event = f"{best.reason}: {said}"
    return finding, True


def _object_findings(events: list[Event], evidence: Evidence) -> list[Finding]:
    """No pod says why (none exist yet): the latest Warning events of the other objects, newest first."""
    warnings = [e for e in events if e.type == "Warning" and not e.subject.startswith("pod/")]
    return [
        Finding(e.subject, e.reason, _one_line(e.message), sources=_files(evidence, "events"))
        for e in reversed(warnings)
    ]


def _rank(finding: Finding) -> int:
    """Causes before symptoms: a pod that cannot start explains more than one merely not ready."""
    order = ("FailedScheduling", *PULL_REASONS, "OOMKilled", *CRASH_REASONS, "Unhealthy")
    return order.index(finding.reason) if finding.reason in order else len(order)


# --- small readers -------------------------------------------------------------------------------------------------


def _namespace(argv: tuple[str, ...]) -> str | None:
    for flag in ("-n", "--namespace"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            return argv[argv.index(flag) + 1]
    return None


def _spec_containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = pod.get("spec")
    return [*mappings(get_in(spec, "initContainers")), *mappings(get_in(spec, "containers"))]


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status")
    return [*mappings(get_in(status, "initContainerStatuses")), *mappings(get_in(status, "containerStatuses"))]


def _restarts(status: Mapping[str, Any]) -> int:
    count = status.get("restartCount")
    return count if isinstance(count, int) else 0


def _unschedulable(pod: Mapping[str, Any]) -> str | None:
    for condition in mappings(get_in(pod, "status", "conditions")):
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            # The scheduler appends a preemption note after the reason: keep the reason.
            return _one_line(condition.get("message") or "Unschedulable").split(" preemption:")[0].rstrip(". ")
    return None


def _last_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return [_one_line(line) for line in lines[-LOG_LINES:]]


def _one_line(value: Any) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _joined(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _files(evidence: Evidence, role: str) -> list[str]:
    path = evidence.files.get(role)
    return [path] if path else []


def _masked(finding: Finding, masker: Callable[[str], str]) -> Finding:
    return Finding(
        subject=masker(finding.subject),
        reason=masker(finding.reason),
        message=masker(finding.message),
        event=masker(finding.event) if finding.event is not None else None,
        logs=[masker(line) for line in finding.logs],
        sources=list(dict.fromkeys(finding.sources)),
    )
