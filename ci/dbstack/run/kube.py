"""Reading what kubectl and helm say: a Cluster's and its pods' state in plain words, and which errors are
transient (the API server briefly unreachable) rather than an answer."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dbstack.plan.model import Command, Watch

TRANSIENT_ERRORS = (
    # apimachinery pkg/api/errors/errors.go: 503 ServiceUnavailable, 504 Timeout, 429 TooManyRequests.
    "the server is currently unable to handle the request",
    "the server was unable to return a response in the time allotted",
    "too many requests",  # "the server has received too many requests and has asked us to try again later"
    # kubectl pkg/cmd/util/helpers.go StandardErrorMessage: "The connection to the server <host> was refused -
    # did you specify the right host or port?" and "Unable to connect to the server: <transport error>".
    "connection refused",
    "the connection to the server",
    "unable to connect to the server: eof",
    "connection reset by peer",
    "i/o timeout",
    "tls handshake timeout",
    "etcdserver: request timed out",
    "etcdserver: leader changed",
    "http2: client connection lost",
    "the object has been modified",
    # Helm pkg/kube/client.go IsReachable: "Kubernetes cluster unreachable: <error>".
    "kubernetes cluster unreachable",
    "unexpected eof",
)
"""stderr fragments (lower case) of errors that say nothing about the request itself: the same idempotent
command is worth repeating after a pause."""

TIMED_OUT = "timed out waiting for the condition"
"""apimachinery's wait.ErrWaitTimeout text: kubectl wait ("... on clusters/pg-cluster"; bare for --for=create) and
kubectl rollout status print it after "error: " when their --timeout runs out."""
DEADLINE_EXCEEDED = "context deadline exceeded"
"""Go's context.DeadlineExceeded: Helm's own --timeout running out (uninstall --wait, hooks)."""
HELM_TIMEOUTS = (DEADLINE_EXCEEDED, TIMED_OUT)
NO_SUCH_TYPE = "the server doesn't have a resource type"
PROGRESS_DEADLINE = "exceeded its progress deadline"
"""kubectl polymorphichelpers/rollout_status.go: a Deployment whose Progressing condition says
ProgressDeadlineExceeded; rollout status exits 1 at once instead of waiting out its --timeout."""


def is_transient(stderr: str) -> bool:
    text = stderr.lower()
    return any(fragment in text for fragment in TRANSIENT_ERRORS)


def helm_timed_out(command: Command, stderr: str) -> bool:
    """Helm's own --timeout ran out: `helm uninstall --wait` ends "uninstallation completed with 1 error(s): context
    deadline exceeded" (3.x; Helm 4 lists what still exists first), a hook "timed out waiting for the condition"."""
    return command.argv[0] == "helm" and not is_transient(stderr) and any(t in stderr for t in HELM_TIMEOUTS)


@dataclass(frozen=True)
class ClusterState:
    """What one look at a Cluster and its pods showed."""

    summary: str
    """What the wait is on, e.g. "Cluster Creating; pods 1/2 ready"."""
    fatal: str | None = None
    """Why waiting longer is pointless, most useful line first; None while the cluster may still come up."""
    stuck: tuple[str, ...] = ()
    """Pods that are not (yet) fine, one line each, for a timeout's cause."""
    signs: frozenset[str] = frozenset()
    """What made `fatal` ("phase Abnormal", "<pod> CrashLoopBackOff"), to tell a lasting state from a blip."""
    certain: bool = False
    """`fatal` needs no second look (a container has crash-looped `Watch.crashloop_restarts` times already)."""


class FatalStreaks:
    """Counts on how many consecutive looks each fatal sign has shown, and says when one has lasted long enough."""

    def __init__(self, watch: Watch) -> None:
        self._confirm = max(1, watch.confirm_looks)
        self._streaks: dict[str, int] = {}

    def judge(self, state: ClusterState) -> str | None:
        """The cause to fail with after this look, or None while nothing fatal has persisted."""
        self._streaks = {sign: self._streaks.get(sign, 0) + 1 for sign in state.signs}
        if state.fatal is None:
            return None
        if state.certain or any(streak >= self._confirm for streak in self._streaks.values()):
            return state.fatal
        return None


def parse_json(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None


def cluster_state(watch: Watch, cluster_json: str, pods_json: str) -> ClusterState:
    """Judge a Cluster (`kubectl get clusters.apps.kubeblocks.io <c> -o json --ignore-not-found`) and its pods
    (`kubectl get pods -l <selector> -o json`)."""
    cluster = parse_json(cluster_json)
    pods = items_of(parse_json(pods_json))
    phase = get_in(cluster, "status", "phase") if cluster else None
    lines = [line for pod in pods if (line := _pod_problem(pod, watch))]
    fatal_signs = [sign for pod in pods if (sign := _pod_fatal(pod, watch))]
    fatal_lines = [sign.line for sign in fatal_signs]
    signs = frozenset(sign.key for sign in fatal_signs)
    certain = any(sign.certain for sign in fatal_signs)
    ready = sum(1 for pod in pods if _pod_ready(pod))
    if cluster is None:
        summary = f"Cluster {watch.cluster} not created yet"
    else:
        summary = f"Cluster {phase or 'without a phase yet'}; pods {ready}/{len(pods)} ready"
    if isinstance(phase, str) and phase in watch.fail_phases:
        detail = _cluster_detail(cluster)
        head = f"Cluster {watch.cluster} is {phase}" + (f": {detail}" if detail else "")
        return ClusterState(summary, "\n".join([head, *lines]), tuple(lines), signs | {f"phase {phase}"}, certain)
    if fatal_lines:
        others = [line for line in lines if line not in fatal_lines]
        return ClusterState(summary, "\n".join([*fatal_lines, *others]), tuple(lines), signs, certain)
    return ClusterState(summary, None, tuple(lines))


def current_spec_conditions(cluster_json: str) -> list[tuple[str, str]]:
    """For each component and sharding a Cluster's spec names (`kubectl get clusters.apps.kubeblocks.io -o json`):
    what it is and the jsonpath of its `upToDate` status. KubeBlocks 1.0.1 (controllers/apps/cluster/
    transformer_cluster_component_status.go) sets it once the Component has observed the spec of the Cluster's
    current generation; `status.observedGeneration` advances before that, while the phases still describe the old
    spec."""
    cluster = parse_json(cluster_json)
    found = []
    for spec_key, status_key, kind in (
        ("componentSpecs", "components", "component"),
        ("shardings", "shardings", "sharding"),
    ):
        for item in mappings(get_in(cluster, "spec", spec_key)):
            name = item.get("name")
            if isinstance(name, str) and name:
                found.append((f"{kind} {name}", f"{{.status.{status_key}.{name}.upToDate}}"))
    return found


def cluster_generation(cluster_json: str) -> int | None:
    """`metadata.generation` of a Cluster (`kubectl get -o json`): the spec Helm last wrote. KubeBlocks 1.0.1 sets
    `status.observedGeneration` to it in the same status update that recomputes every component's `upToDate`
    (controllers/apps/cluster/transformer_cluster_status.go), so until it does, an `upToDate` may be the previous
    spec's."""
    generation = get_in(parse_json(cluster_json), "metadata", "generation")
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else None


@dataclass(frozen=True)
class PodContainer:
    pod: str
    container: str
    restarts: int


def pod_containers(pods_json: str) -> list[PodContainer] | None:
    """Every (init) container of the pods in `kubectl get pods -o json`, with its restart count; None when the
    text is not such a list."""
    data = parse_json(pods_json)
    if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
        return None
    found = []
    for pod in items_of(data):
        restarts = {str(c.get("name")): c.get("restartCount") for c in _containers(pod)}
        spec = pod.get("spec")
        for container in [*mappings(get_in(spec, "initContainers")), *mappings(get_in(spec, "containers"))]:
            name = str(container.get("name") or "?")
            count = restarts.get(name)
            found.append(PodContainer(_name(pod), name, count if isinstance(count, int) else 0))
    return found


def items_of(data: Any) -> list[Mapping[str, Any]]:
    """The objects of a `kubectl get -o json` List ([] for anything else)."""
    if isinstance(data, Mapping) and isinstance(data.get("items"), list):
        return [item for item in data["items"] if isinstance(item, Mapping)]
    return []


def get_in(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]..., or None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def mappings(data: Any) -> list[Mapping[str, Any]]:
    """The mappings of a JSON list ([] for anything else)."""
    return [x for x in data if isinstance(x, Mapping)] if isinstance(data, list) else []


def _name(pod: Mapping[str, Any]) -> str:
    return str(get_in(pod, "metadata", "name") or "pod")


def _containers(pod: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    status = pod.get("status")
    yield from mappings(get_in(status, "initContainerStatuses"))
    yield from mappings(get_in(status, "containerStatuses"))


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in mappings(get_in(pod, "status", "conditions"))
    )


def _unschedulable(pod: Mapping[str, Any]) -> str | None:
    for condition in mappings(get_in(pod, "status", "conditions")):
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            return str(condition.get("message") or "Unschedulable").strip()
    return None


def _waiting(container: Mapping[str, Any]) -> tuple[str, str] | None:
    waiting = get_in(container, "state", "waiting")
    if not isinstance(waiting, Mapping) or not waiting.get("reason"):
        return None
    return str(waiting["reason"]), str(waiting.get("message") or "").strip()


def _container_line(pod: Mapping[str, Any], container: Mapping[str, Any], reason: str, message: str) -> str:
    line = f"{_name(pod)} container {container.get('name', '?')} {reason}"
    restarts = container.get("restartCount")
    if reason == "CrashLoopBackOff":
        exit_code = get_in(container, "lastState", "terminated", "exitCode")
        known = [f"restarted {restarts} times"] if isinstance(restarts, int) else []
        known += [f"last exit code {exit_code}"] if exit_code is not None else []
        line += f" ({', '.join(known)})" if known else ""
    return f"{line}: {message}" if message else line


@dataclass(frozen=True)
class _FatalSign:
    line: str
    key: str
    certain: bool = False


def _pod_fatal(pod: Mapping[str, Any], watch: Watch) -> _FatalSign | None:
    message = _unschedulable(pod)
    if message and any(fragment in message for fragment in watch.unschedulable_messages):
        return _FatalSign(f"{_name(pod)} Pending: {_first_sentence(message)}", f"{_name(pod)} Unschedulable")
    for container in _containers(pod):
        waiting = _waiting(container)
        if waiting and waiting[0] in watch.stuck_reasons:
            restarts = container.get("restartCount")
            certain = (
                waiting[0] == "CrashLoopBackOff" and isinstance(restarts, int) and restarts >= watch.crashloop_restarts
            )
            key = f"{_name(pod)} {container.get('name', '?')} {waiting[0]}"
            return _FatalSign(_container_line(pod, container, *waiting), key, certain)
    return None


def _pod_problem(pod: Mapping[str, Any], watch: Watch) -> str | None:
    fatal = _pod_fatal(pod, watch)
    if fatal:
        return fatal.line
    message = _unschedulable(pod)
    if message:
        return f"{_name(pod)} Pending: {_first_sentence(message)}"
    for container in _containers(pod):
        waiting = _waiting(container)
        if waiting and waiting[0] not in ("PodInitializing", "ContainerCreating"):
            return _container_line(pod, container, *waiting)
    if not _pod_ready(pod):
        return f"{_name(pod)} {get_in(pod, 'status', 'phase') or 'Pending'}, not ready"
    return None


def _first_sentence(message: str) -> str:
    """The scheduler appends a preemption note after the reason: keep the reason."""
    return message.split(" preemption:")[0].rstrip(". ")


def _cluster_detail(cluster: Any) -> str:
    """The first message a Cluster's status gives: a component's, else a False condition's."""
    components = get_in(cluster, "status", "components")
    if isinstance(components, Mapping):
        for name, component in components.items():
            message = get_in(component, "message")
            phase = get_in(component, "phase")
            if isinstance(message, Mapping) and message:
                return f"component {name} {phase}: " + "; ".join(f"{k}: {v}" for k, v in message.items())
            if message:
                return f"component {name} {phase}: {message}"
            if phase and phase != "Running":
                return f"component {name} {phase}"
    for condition in mappings(get_in(cluster, "status", "conditions")):
        if condition.get("status") == "False" and condition.get("message"):
            return f"{condition.get('type')}: {condition['message']}"
    return ""


def with_restores(state: ClusterState, restores: Any) -> ClusterState:
    """A restored Cluster's state with its Restore objects': their phases in the summary, a Failed one fatal at once
    (KubeBlocks does not retry it)."""
    summary = f"{state.summary}; {restores.summary}" if restores.summary else state.summary
    if restores.failed is None:
        return ClusterState(summary, state.fatal, state.stuck, state.signs, state.certain)
    fatal = "\n".join(filter(None, [restores.failed, state.fatal]))
    return ClusterState(summary, fatal, state.stuck, state.signs | {"restore failed"}, True)
