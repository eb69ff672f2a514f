"""Pull-request previews, engine-free: one labelled namespace per PR on a shared cluster whose platform (snapshot
support, KubeBlocks, addons) the Platform workflow installs; its teardown; the sweep; what a preview may deploy.

The Dagger functions `preview`, `teardown` and `sweep` (ci/pipeline.py) wrap this module. Everything here talks to
the cluster through a `Runner`, so it runs the same against a Dagger toolbox container, the host's kubectl, or a fake.

API:
- `PreviewTarget.create(pr, head_sha, now)`: the namespace `pr-<n>` and its labels (PR, head commit, deploy time).
- `preview_plan(plan)`: the deployment plan cut to what a preview does with namespaced rights: the cluster steps
  only (the platform is checked, never installed), no `--create-namespace`, diagnostics of its own namespace and
  `kb-system` only.
- `await prepare_namespace(runner, target, settings)`: create or relabel the namespace (never `--create-namespace`),
  finishing an interrupted teardown first, within the concurrency cap; bind the preview role in it and apply its
  ResourceQuota and LimitRange.
- `await teardown(runner, pr, adopt_unlabelled=False)`: mark the namespace condemned, uninstall its Helm releases,
  delete it. Never touches KubeBlocks, addons or any namespace that is not `pr-<n>`.
- `sweep_decision(namespace, now, open_prs, settings)` and `await sweep(...)`: closed pull requests' previews go
  after `closedIdleHours`, open ones after the longer `openIdleHours` (reported as expired, so their comment is
  rewritten); the labels are read again just before anything is deleted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import anyio

from dbstack.config.capacity import database_pods
from dbstack.config.load import Config, PreviewSettings
from dbstack.config.naming import NameRule, preview_namespace
from dbstack.masking import mask
from dbstack.plan.model import Command, Diagnostic, Markers, Plan, Step, StepKind, helm, kubectl
from dbstack.run.kube import helm_timed_out
from dbstack.run.results import Outcome, RunResults, Survival, UpgradeResults
from dbstack.run.runner import Runner
from dbstack.text import first_line as text_first_line

LABEL_PR = "dbstack.io/pr"
LABEL_HEAD_SHA = "dbstack.io/head-sha"
LABEL_DEPLOYED_AT = "dbstack.io/deployed-at"
"""Unix seconds of the last deploy: label values cannot hold ':' or '+', so no ISO timestamps."""
LABEL_TEARDOWN = "dbstack.io/teardown-started-at"
"""Set before a teardown removes anything: the namespace is condemned, and an interrupted teardown is finished by
the next deploy or sweep instead of being taken for a live preview."""
LABEL_MARKERS = "dbstack.io/markers"
"""The id of the marker data the preview holds: written when it was created, read back by every later deploy, each
of which is an upgrade of the one before."""
LABEL_MARKED = "dbstack.io/markers-in"
"""The databases holding that marker data, joined by '.' (a label value: letters, digits, '-', '_', '.')."""
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "dbstack"
HOURS = 3600
LABEL_VALUE_RULE = NameRule(
    63,
    re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"),
    "Kubernetes",
    "must start and end with a letter or digit and hold only letters, digits, '-', '_' and '.'",
)
HEAD_SHA_PATTERN = re.compile(r"[0-9a-f]{7,64}")
PREVIEW_NAMESPACE_PATTERN = re.compile(r"pr-[1-9][0-9]*")
PR_LABEL_PATTERN = re.compile(r"[1-9][0-9]*")
UNIX_TIME_PATTERN = re.compile(r"[0-9]{1,12}")
PROTECTED_RELEASES = re.compile(r"(kubeblocks|kb-addon-.*)")
"""Shared by every preview; a namespace holding one of these is never torn down."""
PREVIEW_ROLE = "dbstack-preview-namespace"
"""The ClusterRole (platform/preview-rbac.yaml) the preview identity binds to itself inside its own namespace."""
PREVIEW_IDENTITY_NAMESPACE = "dbstack-system"
PREVIEW_SERVICE_ACCOUNT = "dbstack-preview"
QUOTA_NAME = "dbstack-preview"
QUERY_TIMEOUT_S = 60
DEFAULT_TIMEOUT_S = 600
RBAC_SETTLE_TRIES = 5
RBAC_SETTLE_PAUSE_S = 2.0
"""A new RoleBinding reaches the API server's authorizer within moments; a Forbidden right after it is retried."""


class PreviewError(Exception):
    """A preview operation that could not be done; the message is one line naming the cause."""


def label_value_problem(value: str) -> str | None:
    """Why `value` cannot be a Kubernetes label value, or None when it can."""
    return LABEL_VALUE_RULE.problem(value)


def is_preview_namespace(name: str) -> bool:
    return PREVIEW_NAMESPACE_PATTERN.fullmatch(name) is not None


def first_line(text: str) -> str:
    """A command's first line of output for a comment or a log: masked, cut short, never empty."""
    return mask(text_first_line(text))[:300] or "no output"


@dataclass(frozen=True)
class PreviewTarget:
    """One pull request's preview: where it lives and what its namespace is labelled with."""

    pr: int
    head_sha: str
    deployed_at: int

    @classmethod
    def create(cls, pr: int, head_sha: str, now: float) -> PreviewTarget:
        """Validated: raises ValueError naming the bad argument."""
        if pr < 1:
            raise ValueError(f"pull request number must be positive, got {pr}")
        sha = head_sha.strip().lower()
        if not HEAD_SHA_PATTERN.fullmatch(sha):
            raise ValueError(f"head commit must be 7 to 64 hexadecimal digits, got {head_sha!r}")
        # A SHA-256 commit id (64) exceeds a label value (63); 40 digits still name one commit.
        return cls(pr=pr, head_sha=sha[:40], deployed_at=int(now))

    @property
    def namespace(self) -> str:
        return preview_namespace(self.pr)

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_PR: str(self.pr),
            LABEL_HEAD_SHA: self.head_sha,
            LABEL_DEPLOYED_AT: str(self.deployed_at),
            LABEL_MANAGED_BY: MANAGED_BY,
        }

    def apply_command(self) -> Command:
        """Create the namespace or update its labels: `kubectl apply` is idempotent, the manifest goes on stdin."""
        return _apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace, "labels": self.labels}}
        )


def _apply(manifest: Mapping[str, Any]) -> Command:
    return Command(("kubectl", "apply", "-f", "-"), stdin=json.dumps(manifest, sort_keys=True))


# --- what a preview deploys ----------------------------------------------------------------------------------


def preview_plan(plan: Plan, kubeblocks_namespace: str) -> Plan:
    """The plan's cluster steps, as a preview runs them: no platform steps (the Platform workflow owns snapshot
    support, KubeBlocks and the addons; `check_platform` verifies them), no `--create-namespace` (a namespace Helm
    creates carries no labels, and no teardown or sweep would ever remove it), and only diagnostics that read the
    preview's own namespace or `kb-system` (a public repository's artifacts are readable by anyone)."""
    steps = tuple(
        replace(
            step,
            needs=(),
            commands=tuple(_without_create_namespace(c) for c in step.commands),
            diagnostics=scoped_diagnostics(step.diagnostics, (plan.namespace, kubeblocks_namespace)),
        )
        for step in plan.steps
        if step.kind is StepKind.CLUSTER
    )
    return replace(plan, steps=steps)


def _without_create_namespace(command: Command) -> Command:
    return replace(command, argv=tuple(a for a in command.argv if a != "--create-namespace"))


def scoped_diagnostics(diagnostics: Sequence[Diagnostic], namespaces: Sequence[str]) -> tuple[Diagnostic, ...]:
    """Only reads confined to `namespaces`: no `-A`, no cluster-wide objects (nodes list every pod on them), and no
    controller logs, which name other namespaces' clusters."""
    return tuple(d for d in diagnostics if _reads_only(d.command, namespaces))


def _reads_only(command: Command, namespaces: Sequence[str]) -> bool:
    argv = command.argv
    if "-A" in argv or "--all-namespaces" in argv:
        return False
    namespace = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-n", "--namespace")), None)
    if namespace not in namespaces:
        return False
    return not ("logs" in argv and any(a.startswith("deploy/") for a in argv))


def preview_cluster_diagnostics(namespace: str, kubeblocks_namespace: str) -> tuple[tuple[str, Command], ...]:
    """What to collect when the cluster could not be prepared for a preview: its own namespace and kb-system."""
    return (
        ("namespace.txt", kubectl("get", "namespace", namespace, "-o", "yaml", "--ignore-not-found")),
        ("pods.txt", kubectl("-n", namespace, "get", "pods", "-o", "wide")),
        ("events.txt", kubectl("-n", namespace, "get", "events", "--sort-by=.lastTimestamp")),
        ("kb-system-pods.txt", kubectl("-n", kubeblocks_namespace, "get", "pods", "-o", "wide")),
    )


def quota_problems(config: Config) -> list[str]:
    """Why the enabled databases would not fit the preview namespace's ResourceQuota, or the values ask for what a
    preview does not run (before any cluster is used)."""
    pods = [pod for d in config.enabled for pod in database_pods(d)]
    quota = config.preview.quota
    problems = []
    if config.backup.enabled:
        where = config.where("backup.enabled")
        problems.append(
            f"{where.file}:{where.line}: backup.enabled: previews run no backup stage (its classes and BackupRepo are "
            "cluster-wide, a preview's rights namespaced) (allowed: false; `dagger call deploy-and-test --profile "
            "full` runs it)"
        )
    for resource, need, have, unit, key in (
        ("cpu", sum(p.cpu for p in pods), quota.cpu, "cores", "cpu"),
        ("memory", sum(p.memory_gi for p in pods), quota.memory_gi, "Gi", "memoryGi"),
    ):
        if need > have + 1e-9:
            where = config.where(f"preview.quota.{key}")
            problems.append(
                f"{where.file}:{where.line}: preview.quota.{key}: the enabled databases request {need:.2f} {unit} "
                f"of {resource}, the preview quota allows {have:g} (allowed: raise it, or lower requests in a profile)"
            )
    return problems


def namespace_policy(target: PreviewTarget, settings: PreviewSettings) -> tuple[Command, Command]:
    """The RoleBinding that gives the preview identity its namespaced rights here, then the ResourceQuota and
    LimitRange from values (applied after the binding, which grants the right to create them)."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": PREVIEW_SERVICE_ACCOUNT,
            "namespace": target.namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": PREVIEW_ROLE},
        "subjects": [
            {"kind": "ServiceAccount", "name": PREVIEW_SERVICE_ACCOUNT, "namespace": PREVIEW_IDENTITY_NAMESPACE}
        ],
    }
    quota, defaults = settings.quota, settings.container_defaults
    limits = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": QUOTA_NAME, "namespace": target.namespace},
                "spec": {
                    "hard": {
                        "requests.cpu": _cpu(quota.cpu),
                        "requests.memory": _memory(quota.memory_gi),
                        "requests.storage": f"{quota.storage_gi:g}Gi",
                        "pods": str(quota.pods),
                    }
                },
            },
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": QUOTA_NAME, "namespace": target.namespace},
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "defaultRequest": {
                                "cpu": _cpu(defaults.request_cpu),
                                "memory": _memory(defaults.request_memory_gi),
                            },
                            "default": {"cpu": _cpu(defaults.limit_cpu), "memory": _memory(defaults.limit_memory_gi)},
                        }
                    ]
                },
            },
        ],
    }
    return _apply(binding), _apply(limits)


def _cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def _memory(gi: float) -> str:
    return f"{round(gi * 1024)}Mi"


# --- reading namespaces --------------------------------------------------------------------------------------


def get_namespace_command(namespace: str) -> Command:
    return kubectl("get", "namespace", namespace, "-o", "json", "--ignore-not-found")


def list_previews_command() -> Command:
    return kubectl("get", "namespaces", "-l", LABEL_PR, "-o", "json")


def list_releases_command(namespace: str) -> Command:
    return helm("list", "-n", namespace, "--all", "-o", "json")


def release_names(helm_list_json: str) -> list[str]:
    """Release names from `helm list -o json`; raises PreviewError when the output is not that list."""
    try:
        data = json.loads(helm_list_json or "[]")
    except json.JSONDecodeError as exc:
        raise PreviewError(f"helm list printed something that is not JSON ({exc.msg})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in data):
        raise PreviewError("helm list printed JSON that is not a list of releases")
    return [str(r["name"]) for r in data]


@dataclass(frozen=True)
class PreviewNamespace:
    """A namespace as read back from the cluster."""

    name: str
    labels: Mapping[str, str]
    phase: str | None = None

    @property
    def pr(self) -> int | None:
        value = self.labels.get(LABEL_PR, "")
        return int(value) if PR_LABEL_PATTERN.fullmatch(value) else None

    @property
    def deployed_at(self) -> int | None:
        return _unix(self.labels.get(LABEL_DEPLOYED_AT))

    @property
    def condemned(self) -> bool:
        """A teardown started on it (and may have been interrupted): it is removed, never deployed into."""
        return LABEL_TEARDOWN in self.labels or self.phase == "Terminating"

    @property
    def unlabelled(self) -> bool:
        return not any(key.startswith("dbstack.io/") for key in self.labels)

    def problem(self) -> str | None:
        """Why the sweep must leave this namespace alone, or None when it may judge it."""
        if self.pr is None:
            return f"label {LABEL_PR}={self.labels.get(LABEL_PR)!r} is not a pull request number"
        if self.name != preview_namespace(self.pr):
            return f"label {LABEL_PR}={self.pr} does not match the namespace name"
        if self.deployed_at is None and not self.condemned:
            return f"label {LABEL_DEPLOYED_AT}={self.labels.get(LABEL_DEPLOYED_AT)!r} is not a Unix time"
        return None


def _unix(value: str | None) -> int | None:
    return int(value) if value is not None and UNIX_TIME_PATTERN.fullmatch(value) else None


def parse_namespace_list(kubectl_json: str) -> list[PreviewNamespace]:
    """Namespaces from `kubectl get namespaces -o json` (a List) or one namespace (`kubectl get namespace X`)."""
    try:
        data = json.loads(kubectl_json)
    except json.JSONDecodeError as exc:
        raise PreviewError(f"kubectl printed something that is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise PreviewError("kubectl printed JSON that is not an object")
    items = data["items"] if isinstance(data.get("items"), list) else [data]
    return [ns for ns in (_namespace(item) for item in items) if ns is not None]


def _namespace(item: Any) -> PreviewNamespace | None:
    if not isinstance(item, dict):
        return None
    metadata = item.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return None
    raw_labels = metadata.get("labels") or {}
    labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
    status = item.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    return PreviewNamespace(metadata["name"], labels, phase if isinstance(phase, str) else None)


async def _run(runner: Runner, command: Command, timeout_s: float) -> str:
    """Run `command`; its stdout, or PreviewError naming the command and the first line of its error."""
    result = await runner.run(command, timeout_s=timeout_s)
    if result.timed_out:
        raise PreviewError(f"`{command}` did not finish within {timeout_s:.0f}s")
    if result.exit_code != 0 and helm_timed_out(command, result.stderr):  # Helm's own --timeout ran out
        raise PreviewError(f"`{command}` did not finish within its --timeout: {first_line(result.stderr)}")
    if result.exit_code != 0:
        raise PreviewError(f"`{command}` failed: {first_line(result.stderr or result.stdout)}")
    return result.stdout


async def _run_once_authorized(runner: Runner, command: Command, timeout_s: float) -> str:
    """`_run`, retried a few times while the API server still answers Forbidden for a RoleBinding just made."""
    for attempt in range(RBAC_SETTLE_TRIES):
        try:
            return await _run(runner, command, timeout_s)
        except PreviewError as exc:
            if "forbidden" not in str(exc).lower() or attempt == RBAC_SETTLE_TRIES - 1:
                raise
            await anyio.sleep(RBAC_SETTLE_PAUSE_S)
    raise AssertionError("unreachable")


async def existing_namespace(runner: Runner, namespace: str) -> PreviewNamespace | None:
    out = await _run(runner, get_namespace_command(namespace), QUERY_TIMEOUT_S)
    if not out.strip():
        return None
    found = parse_namespace_list(out)
    return found[0] if found else None


async def list_previews(runner: Runner) -> list[PreviewNamespace]:
    return parse_namespace_list(await _run(runner, list_previews_command(), QUERY_TIMEOUT_S))


# --- deploy --------------------------------------------------------------------------------------------------


async def prepare_namespace(
    runner: Runner, target: PreviewTarget, settings: PreviewSettings, *, timeout_s: int = DEFAULT_TIMEOUT_S
) -> list[str]:
    """Make `pr-<n>` ready for the plan: finish a teardown left condemned (a reopen right after a close), refuse a
    namespace dbstack did not label, keep within `maxConcurrent`, label it (a redeploy relabels in place), then bind
    the preview role in it and apply its quota and limits. Returns notes for the run's log."""
    notes: list[str] = []
    existing = await existing_namespace(runner, target.namespace)
    if existing is not None and existing.unlabelled:
        raise PreviewError(
            f"namespace {target.namespace} exists without dbstack labels (made by something else, or by an older "
            "preview's helm --create-namespace); refusing to deploy into it. Remove it, or run the teardown with "
            "adopt-unlabelled (docs/workflows.md)"
        )
    if existing is not None and existing.labels.get(LABEL_PR) != str(target.pr):
        raise PreviewError(
            f"namespace {target.namespace} is labelled {LABEL_PR}={existing.labels.get(LABEL_PR)!r}, not "
            f"{target.pr}; refusing to deploy a preview into a namespace dbstack did not create for this pull request"
        )
    if existing is not None and existing.condemned:
        notes.append(f"{target.namespace} was being torn down (closed, then reopened): finished that teardown first")
        await teardown(runner, target.pr, timeout_s=timeout_s)
        existing = None
    if existing is None:
        others = sorted(
            (ns for ns in await list_previews(runner) if ns.name != target.namespace and not ns.condemned),
            key=lambda ns: ns.pr or 0,
        )
        if len(others) >= settings.max_concurrent:
            names = ", ".join(ns.name for ns in others[:10]) + (", ..." if len(others) > 10 else "")
            raise PreviewError(
                f"{len(others)} previews already run ({names}), the most preview.maxConcurrent allows "
                f"({settings.max_concurrent}); close a pull request, wait for the sweep, or raise the cap"
            )
    await _run(runner, target.apply_command(), QUERY_TIMEOUT_S)
    binding, limits = namespace_policy(target, settings)
    await _run(runner, binding, QUERY_TIMEOUT_S)
    await _run_once_authorized(runner, limits, QUERY_TIMEOUT_S)
    return notes


# --- marker data: each deploy after the first is an upgrade --------------------------------------------------

MARKER_STAGE = "preview"
MARKER_SETUP_S = 240
"""A marker step's time beyond the suite's own limit: reaching the database and installing the suite (as
plan/upgrade.py MARKER_SETUP_S)."""


@dataclass(frozen=True)
class PreviewMarkers:
    """What this deploy does with marker data: read back what earlier deploys wrote (`verify`), and write it into
    the databases that hold none yet (`write`: every database on the first deploy)."""

    id: str
    verify: tuple[str, ...]
    write: tuple[str, ...]
    previous_head: str | None = None
    """The commit of the deploy this one upgrades."""


def preview_markers(existing: PreviewNamespace | None, target: PreviewTarget, enabled: Sequence[str]) -> PreviewMarkers:
    """From the namespace as it is before this deploy (None: there is none, or it is torn down first)."""
    from dbstack.run.smokeenv import MARKER_ID, marker_id

    if existing is not None and not existing.condemned:
        held = existing.labels.get(LABEL_MARKERS, "")
        marked = [d for d in existing.labels.get(LABEL_MARKED, "").split(".") if d]
        if MARKER_ID.fullmatch(held) and marked:
            verify = tuple(d for d in enabled if d in marked)
            write = tuple(d for d in enabled if d not in marked)
            return PreviewMarkers(held, verify, write, existing.labels.get(LABEL_HEAD_SHA))
    return PreviewMarkers(marker_id(f"pr{target.pr}t{target.deployed_at}"), (), tuple(enabled))


def marker_step_id(phase: str, database: str) -> str:
    return f"markers:{phase}:{database}"


def with_marker_steps(plan: Plan, markers: PreviewMarkers, smoke_timeout_s: int) -> Plan:
    """The preview plan with, after each database's cluster step, its markers read back or written (the smoke
    suite's marker check, through the database's own Service and Secret)."""
    endpoints = {e.database: e for e in plan.endpoints}
    added = []
    for phase, databases, verb in (
        ("verify", markers.verify, "Read the marker data back from"),
        ("write", markers.write, "Write marker data into"),
    ):
        for key in databases:
            endpoint = endpoints[key]
            added.append(
                Step(
                    id=marker_step_id(phase, key),
                    title=f"{verb} {endpoint.title} ({endpoint.release})",
                    kind=StepKind.MARKERS,
                    database=key,
                    needs=(f"cluster:{key}",),
                    commands=(),
                    done_when=(),
                    timeout_s=smoke_timeout_s + MARKER_SETUP_S,
                    markers=Markers(phase, endpoint),
                    stage=MARKER_STAGE,
                )
            )
    return replace(plan, steps=(*plan.steps, *added))


def markers_label_command(namespace: str, markers: PreviewMarkers, results: RunResults) -> Command:
    """Record on the namespace which databases hold the markers now: those read back and those written, each only
    when its step passed (a database whose markers were lost gets new ones on the next deploy)."""
    passed = {s.id for s in results.steps if s.outcome is Outcome.PASSED}
    held = [
        key
        for phase, databases in (("verify", markers.verify), ("write", markers.write))
        for key in databases
        if marker_step_id(phase, key) in passed
    ]
    if not held:
        return kubectl("label", "namespace", namespace, f"{LABEL_MARKERS}-", f"{LABEL_MARKED}-")
    labels = (f"{LABEL_MARKERS}={markers.id}", f"{LABEL_MARKED}={'.'.join(sorted(held))}")
    return kubectl("label", "namespace", namespace, *labels, "--overwrite")


def record_survival(results: RunResults, markers: PreviewMarkers) -> None:
    """On a deploy that upgraded an earlier one: whether each database's markers survived it (results.upgrade)."""
    if not markers.verify:
        return
    steps = {s.id: s for s in results.steps}
    survival = []
    for database in results.databases:
        step = steps.get(marker_step_id("verify", database.key))
        if step is None:
            why = "it held no marker data before this deploy: written now"
            survival.append(Survival(database.key, Outcome.SKIPPED, why))
        elif step.outcome is Outcome.PASSED:
            survival.append(Survival(database.key, Outcome.PASSED))
        else:
            cause = text_first_line(step.cause) or step.outcome.value
            survival.append(Survival(database.key, Outcome.FAILED, mask(cause)))
    head = f" (commit {markers.previous_head[:12]})" if markers.previous_head else ""
    results.upgrade = UpgradeResults(base_values=f"the preview's previous deploy{head}", survival=survival)


async def read_markers(
    runner: Runner, target: PreviewTarget, plan: Plan, config: Config
) -> tuple[Plan, PreviewMarkers]:
    """Which marker data the preview holds before this deploy, and its plan with the marker steps that follow."""
    existing = await existing_namespace(runner, target.namespace)
    markers = preview_markers(existing, target, [d.key for d in config.enabled])
    return with_marker_steps(plan, markers, config.timeouts.smoke), markers


async def keep_markers(runner: Runner, target: PreviewTarget, markers: PreviewMarkers, results: RunResults) -> str:
    """After the deploy: whether the markers survived it (into the results), and which databases hold markers now
    (onto the namespace). Returns a note for the run's log; a label that cannot be written only means the next
    deploy writes the markers again."""
    record_survival(results, markers)
    command = markers_label_command(target.namespace, markers, results)
    try:
        await _run(runner, command, QUERY_TIMEOUT_S)
    except PreviewError as exc:
        return f"could not record the marker data on {target.namespace}, the next deploy writes it again: {exc}"
    held = next((a.split("=", 1)[1] for a in command.argv if a.startswith(f"{LABEL_MARKED}=")), "")
    return f"marker data {markers.id} held by: {held.replace('.', ', ') or 'none'}"


# --- teardown ------------------------------------------------------------------------------------------------


def teardown_commands(namespace: str, releases: Sequence[str], timeout_s: int = DEFAULT_TIMEOUT_S) -> list[Command]:
    """Uninstall `releases`, then delete the namespace. Raises PreviewError rather than touch anything shared."""
    if not is_preview_namespace(namespace):
        raise PreviewError(f"refusing to tear down {namespace!r}: only pr-<number> preview namespaces are removed")
    shared = [r for r in releases if PROTECTED_RELEASES.match(r)]
    if shared:
        raise PreviewError(
            f"refusing to tear down {namespace}: it holds {', '.join(shared)}, which every preview shares"
        )
    # Uninstalling first lets each release's hooks and the KubeBlocks controller clean up in order, instead of
    # racing the namespace's deletion.
    commands = [
        helm("uninstall", release, "-n", namespace, "--wait", f"--timeout={timeout_s}s") for release in releases
    ]
    commands.append(kubectl("delete", "namespace", namespace, "--ignore-not-found", f"--timeout={timeout_s}s"))
    return commands


def condemn_command(namespace: str, now: float) -> Command:
    return kubectl("label", "namespace", namespace, f"{LABEL_TEARDOWN}={int(now)}", "--overwrite")


@dataclass(frozen=True)
class TeardownReport:
    namespace: str
    existed: bool
    releases: tuple[str, ...] = ()
    adopted: bool = False

    def summary(self) -> str:
        if not self.existed:
            return f"{self.namespace}: not found, nothing to remove"
        removed = ", ".join(self.releases) or "no releases"
        adopted = " (adopted: it had no dbstack labels)" if self.adopted else ""
        return f"{self.namespace}: removed {removed} and the namespace{adopted}"


async def teardown(
    runner: Runner,
    pr: int,
    *,
    adopt_unlabelled: bool = False,
    now: float = 0.0,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> TeardownReport:
    """Remove pull request `pr`'s preview; succeeds when there is none (idempotent, and safe to run again after an
    interruption: the condemned label stays until the namespace is gone). A `pr-<n>` namespace without any dbstack
    label is removed only with `adopt_unlabelled`; one labelled for another pull request never."""
    namespace = preview_namespace(pr)
    existing = await existing_namespace(runner, namespace)
    if existing is None:
        return TeardownReport(namespace, existed=False)
    adopted = existing.unlabelled
    if adopted and not adopt_unlabelled:
        raise PreviewError(
            f"refusing to tear down {namespace}: it has no dbstack labels (an older preview's helm "
            "--create-namespace, or not a preview at all); ask for adopt-unlabelled if it is this pull request's"
        )
    if not adopted and existing.labels.get(LABEL_PR) != str(pr):
        raise PreviewError(f"refusing to tear down {namespace}: it is not labelled {LABEL_PR}={pr}")
    if existing.phase == "Terminating":
        # Already being deleted (a teardown that got that far): only wait for it to be gone.
        wait = kubectl("wait", f"namespace/{namespace}", "--for=delete", f"--timeout={timeout_s}s")
        await _run(runner, wait, timeout_s + QUERY_TIMEOUT_S)
        return TeardownReport(namespace, existed=True, adopted=adopted)
    releases = release_names(await _run(runner, list_releases_command(namespace), QUERY_TIMEOUT_S))
    commands = teardown_commands(namespace, releases, timeout_s)  # refuses shared releases before any change
    if LABEL_TEARDOWN not in existing.labels:
        await _run(runner, condemn_command(namespace, now), QUERY_TIMEOUT_S)
    for command in commands:
        await _run(runner, command, timeout_s + QUERY_TIMEOUT_S)
    return TeardownReport(namespace, existed=True, releases=tuple(releases), adopted=adopted)


# --- the sweep -----------------------------------------------------------------------------------------------


def parse_open_prs(text: str) -> frozenset[int]:
    """The open pull requests the workflow read from GitHub: `12,15`, or `none`. Anything else is refused: judging
    previews against a list that failed to load would remove every preview of an open pull request."""
    value = text.strip()
    if value == "none":
        return frozenset()
    parts = value.split(",")
    if not value or not all(PR_LABEL_PATTERN.fullmatch(p) for p in parts):
        raise PreviewError(f"open pull requests must be numbers separated by commas, or 'none', got {text[:80]!r}")
    return frozenset(int(p) for p in parts)


class Action(StrEnum):
    KEEP = "keep"
    REMOVE = "remove"
    """A closed or merged pull request's preview, or a condemned namespace."""
    EXPIRE = "expire"
    """An open pull request's preview idle past `openIdleHours`: removed, and its comment says so."""
    IGNORE = "ignore"
    """Labels that cannot be trusted: reported, left alone."""


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def sweep_decision(ns: PreviewNamespace, now: float, open_prs: frozenset[int], settings: PreviewSettings) -> Decision:
    problem = ns.problem()
    if problem is not None:
        return Decision(Action.IGNORE, problem)
    assert ns.pr is not None
    if ns.condemned:
        return Decision(Action.REMOVE, "its teardown started and did not finish")
    assert ns.deployed_at is not None
    idle_h = max(0.0, now - ns.deployed_at) / HOURS
    if ns.pr not in open_prs:
        if idle_h >= settings.closed_idle_hours:
            return Decision(Action.REMOVE, f"pull request #{ns.pr} is closed")
        return Decision(Action.KEEP, f"closed, removed {settings.closed_idle_hours:g} h after its last deploy")
    if idle_h >= settings.open_idle_hours:
        return Decision(Action.EXPIRE, f"no deploy for {idle_h:.0f} h (openIdleHours {settings.open_idle_hours:g})")
    return Decision(Action.KEEP, f"open, last deploy {idle_h:.1f} h ago")


@dataclass
class SweepReport:
    removed: list[TeardownReport] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    """Open pull requests whose previews were removed for idleness: their comments are rewritten."""
    closed: list[int] = field(default_factory=list)
    """Closed pull requests whose previews were removed: their deployments are made inactive."""
    kept: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    """Namespace -> why its labels cannot be trusted; left alone."""
    failed: dict[str, str] = field(default_factory=dict)
    """Namespace -> why its teardown failed."""

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"swept {len(self.removed)} preview(s); {len(self.kept)} kept"]
        lines += [f"removed {r.summary()}" for r in self.removed]
        lines += [f"kept {name}" for name in self.kept]
        lines += [f"ignored {name}: {why}" for name, why in sorted(self.unreadable.items())]
        lines += [f"FAILED {name}: {why}" for name, why in sorted(self.failed.items())]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "expired": sorted(self.expired),
            "closed": sorted(self.closed),
            "removed": [r.namespace for r in self.removed],
            "kept": sorted(self.kept),
            "unreadable": dict(sorted(self.unreadable.items())),
            "failed": dict(sorted(self.failed.items())),
        }


async def sweep(
    runner: Runner,
    now: float,
    open_prs: frozenset[int],
    settings: PreviewSettings,
    *,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> SweepReport:
    """Judge every labelled preview; before removing one, read its labels again and judge afresh (a push may have
    redeployed it since the list was read). One failure does not stop the others."""
    report = SweepReport()
    for listed in await list_previews(runner):
        decision = sweep_decision(listed, now, open_prs, settings)
        if decision.action is Action.IGNORE:
            report.unreadable[listed.name] = decision.reason
            continue
        if decision.action is Action.KEEP:
            report.kept.append(f"{listed.name}: {decision.reason}")
            continue
        try:
            fresh = await existing_namespace(runner, listed.name)
            if fresh is None:
                continue
            decision = sweep_decision(fresh, now, open_prs, settings)
            if decision.action in (Action.KEEP, Action.IGNORE):
                report.kept.append(f"{listed.name}: redeployed while the sweep ran ({decision.reason})")
                continue
            assert fresh.pr is not None
            report.removed.append(await teardown(runner, fresh.pr, now=now, timeout_s=timeout_s))
            (report.expired if decision.action is Action.EXPIRE else report.closed).append(fresh.pr)
        except PreviewError as exc:
            report.failed[listed.name] = str(exc)
    return report
