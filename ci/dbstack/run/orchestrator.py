"""Executes a Plan against one cluster through a Runner and returns Results, whatever happens.

Every step starts the moment the steps it needs have succeeded (the plan is a DAG), so addons install in
parallel and each cluster installs as soon as its own addon is Available. Readiness is event-driven: a blocking
`kubectl wait` / `kubectl rollout status` whose return is the notice. Beside each cluster's wait runs a watch
that looks at the Cluster and its pods every `WATCH_INTERVAL_S` seconds and ends the wait at once with the cause
when the Cluster turns Failed/Abnormal or a pod is stuck (Insufficient cpu, ImagePullBackOff, CrashLoopBackOff)
on consecutive looks (a bootstrap blip is not a failure): polling only for the failure path, at a modest
interval. On failure, timeout or cancellation the step's diagnostics are collected into files (secret values
masked) and results.json is still written.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio

from dbstack.masking import mask
from dbstack.plan.backup import restored_cluster
from dbstack.plan.model import (
    Command,
    Diagnostic,
    Markers,
    Plan,
    PodLogs,
    RestoreCluster,
    SnapshotSupport,
    Step,
    Wait,
    Watch,
    kubectl,
)
from dbstack.run import backupchecks
from dbstack.run.backupresults import backup_results
from dbstack.run.explain import Evidence, explain
from dbstack.run.helmstate import helm_target, history_command, ownership_conflict, stuck_release
from dbstack.run.kube import (
    NO_SUCH_TYPE,
    PROGRESS_DEADLINE,
    TIMED_OUT,
    ClusterState,
    FatalStreaks,
    cluster_generation,
    cluster_state,
    current_spec_conditions,
    helm_timed_out,
    is_transient,
    parse_json,
    pod_containers,
    with_restores,
)
from dbstack.run.progress import Progress
from dbstack.run.results import CheckResult, DatabaseResult, Outcome, RunResults, StepResult
from dbstack.run.runner import CommandResult, Runner
from dbstack.text import first_line

MarkerRunner = Callable[[Markers, float], Awaitable[CheckResult]]
"""Runs the smoke suite's marker check of a MARKERS step within the seconds given, and returns that check. The
Dagger layer provides one (the suite runs in a container); without one, MARKERS steps fail saying so."""
NO_MARKER_RUNNER = (
    "this run has no smoke suite to write or read back markers with (`dbstack deploy` runs none); "
    "run it with `dagger call deploy-and-test`"
)

WATCH_INTERVAL_S = 5.0
"""How often a cluster's failure watch looks at the Cluster and its pods (readiness itself is not polled)."""
RACE_RETRY_PAUSE_S = 5.0
"""Pause before the single retry after an `retry_on` error (Helm's "already exists" race)."""
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
TRANSIENT_RETRIES = 6
"""Retries after transient API errors (1, 2, 4, 8, 16, 30 s apart): every command in a plan is idempotent."""
COMMAND_GRACE_S = 15.0
"""How long past its own --timeout a command may run before the runner kills it."""
ABANDONED_AFTER_MARGIN_S = 60.0
"""A Helm revision pending for longer than its step's timeout plus this was left by a killed helm: the runner stops a
live one within COMMAND_GRACE_S and its SIGTERM grace; the rest allows for the two machines' clocks."""
WATCH_COMMAND_TIMEOUT_S = 30.0
DIAGNOSTIC_TIMEOUT_S = 60.0
DIAGNOSTICS_PARALLEL = 4
CANCELLED_DIAGNOSTICS_BUDGET_S = 120.0
"""After a cancellation, diagnostics are collected (shielded) for at most this long."""
RESULTS_FILE = "results.json"
CLUSTER_RESOURCE = "clusters.apps.kubeblocks.io"


class StepError(Exception):
    """Ends a step with `outcome` (failed or timed_out) and a cause in plain words."""

    def __init__(self, outcome: Outcome, cause: str) -> None:
        super().__init__(cause)
        self.outcome = outcome
        self.cause = cause


@dataclass
class _Run:
    plan: Plan
    runner: Runner
    out_dir: Path
    progress: Progress
    clock: Callable[[], float]
    results: RunResults
    steps: dict[str, StepResult]
    finished: dict[str, anyio.Event] = field(default_factory=dict)
    doing: dict[str, list[str]] = field(default_factory=dict)
    """What each running step is doing now (its commands in flight), for a timeout's or cancellation's cause."""
    last_state: dict[str, ClusterState] = field(default_factory=dict)
    found: dict[str, list[str]] = field(default_factory=dict)
    """What each skipped step's probes found already installed, in words (for its cause)."""
    markers: MarkerRunner | None = None

    # --- scheduling ------------------------------------------------------------------------------------------

    async def run_all(self) -> None:
        self.finished = {step.id: anyio.Event() for step in self.plan.steps}
        async with anyio.create_task_group() as outer:
            if self.progress.ticks:
                outer.start_soon(self._tick)
            async with anyio.create_task_group() as steps:
                for step in self.plan.steps:
                    steps.start_soon(self._step_task, step)
            outer.cancel_scope.cancel()

    async def _tick(self) -> None:
        while True:
            await anyio.sleep(1)
            self.progress.tick(self.clock())

    async def _step_task(self, step: Step) -> None:
        result = self.steps[step.id]
        try:
            for need in step.needs:
                await self.finished[need].wait()
            unmet = [need for need in step.needs if not self.steps[need].outcome.ok]
            # A cleanup step removes what its needs made: it runs once one of them ran, whatever it ended in.
            ran = any(self.steps[need].started_at is not None for need in step.needs)
            if unmet and not (step.cleanup and ran):
                result.cause = f"not run: {', '.join(unmet)} did not succeed"
                self.progress.step_finished(step, result, self.clock())
                return
            await self._execute(step, result)
        finally:
            self.finished[step.id].set()

    async def _execute(self, step: Step, result: StepResult) -> None:
        result.started_at = self.clock()
        self.progress.step_started(step, result.started_at)
        deadline = anyio.current_time() + step.timeout_s
        try:
            with anyio.move_on_after(step.timeout_s + COMMAND_GRACE_S) as safety_net:
                try:
                    result.outcome = await self._attempt(step, result, deadline)
                    if result.outcome is Outcome.SKIPPED:
                        found = self.found.get(step.id)
                        result.cause = f"already present{': ' + ', '.join(found) if found else ''}; verified healthy"
                except StepError as error:
                    result.outcome, result.cause = error.outcome, mask(error.cause)
                except Exception as error:  # A runner that raises (a bug, a lost engine) fails this step only.
                    result.outcome, result.cause = Outcome.FAILED, mask(f"runner error: {_exception_text(error)}")
            if safety_net.cancelled_caught:
                result.outcome = Outcome.TIMED_OUT
                result.cause = f"timed out after {step.timeout_s} s {self._doing(step)}"
        except anyio.get_cancelled_exc_class():
            result.outcome = Outcome.CANCELLED
            result.cause = f"run cancelled while {self._doing(step)}"
            result.ended_at = self.clock()
            self.progress.step_finished(step, result, result.ended_at)
            with anyio.CancelScope(shield=True), anyio.move_on_after(CANCELLED_DIAGNOSTICS_BUDGET_S):
                await self._collect_diagnostics(step, result)
            raise
        result.ended_at = self.clock()
        self.progress.step_finished(step, result, result.ended_at)
        if not result.outcome.ok:
            await self._collect_diagnostics(step, result)

    async def _attempt(self, step: Step, result: StepResult, deadline: float) -> Outcome:
        if step.markers is not None:
            await self._run_markers(step, step.markers, deadline)
            return Outcome.PASSED
        if step.snapshot_support is not None:
            await self._check_snapshot_support(step, step.snapshot_support, deadline)
            return Outcome.PASSED
        outcome = Outcome.PASSED
        if step.skip_when and await self._probes_pass(step, deadline):
            outcome = Outcome.SKIPPED
        else:
            outcome = await self._install(step, result, deadline)
        if step.restore is not None:
            await self._create_restored(step, step.restore, deadline)
        if step.watch is not None:
            await self._wait_for_cluster(step, deadline)
        else:
            waits = step.done_when
            if outcome is Outcome.SKIPPED and step.done_when_skipped is not None:
                waits = step.done_when_skipped
            await _first_error([partial(self._wait, step, w, deadline) for w in waits])
        for fact in step.facts:
            done = await self._call(step, fact.command, deadline, f"reading its {fact.name}")
            if done.ok and done.stdout.strip():
                result.facts[fact.name] = done.stdout.strip()
        return outcome

    async def _check_snapshot_support(self, step: Step, support: SnapshotSupport, deadline: float) -> None:
        """The StorageClass exists, a CSI driver provisions it, and the VolumeSnapshotClass is that driver's."""
        what = f"reading StorageClass {support.storage_class}"
        storage = await self._call(step, backupchecks.storage_class_command(support), deadline, what)
        self._check_read(storage, what)
        problem, provisioner = backupchecks.storage_class_problem(support, storage.ok, storage.stdout)
        if problem is not None or provisioner is None:
            raise StepError(Outcome.FAILED, problem or "no provisioner")
        what = f"reading VolumeSnapshotClass {support.snapshot_class}"
        snapshot = await self._call(step, backupchecks.snapshot_class_command(support), deadline, what)
        self._check_read(snapshot, what)
        problem = backupchecks.snapshot_class_problem(support, snapshot.ok, snapshot.stdout, provisioner)
        if problem is not None:
            raise StepError(Outcome.FAILED, problem)
        what = f"reading CSIDriver {provisioner}"
        driver = await self._call(step, backupchecks.csi_driver_command(provisioner), deadline, what)
        self._check_read(driver, what)
        problem = backupchecks.csi_driver_problem(support, driver.ok and bool(driver.stdout.strip()), provisioner)
        if problem is not None:
            raise StepError(Outcome.FAILED, problem)

    def _check_read(self, done: CommandResult, what: str) -> None:
        """A read that failed for another reason than the object's absence is the cause itself."""
        if done.ok or "(NotFound)" in done.stderr:
            return
        raise StepError(
            Outcome.TIMED_OUT if done.timed_out else Outcome.FAILED,
            f"{first_line(done.stderr) or f'exit code {done.exit_code}'} ({what})",
        )

    async def _create_restored(self, step: Step, restore: RestoreCluster, deadline: float) -> None:
        """A Cluster of the source's spec, annotated to restore from the Backup (plan/backup.py restored_cluster)."""
        get = kubectl("-n", restore.namespace, "get", CLUSTER_RESOURCE, restore.source, "-o", "json")
        what = f"reading Cluster {restore.source}"
        source = await self._call(step, get, deadline, what)
        self._check_wait(step, source, what)
        data = parse_json(source.stdout)
        if not isinstance(data, dict):
            raise StepError(Outcome.FAILED, f"Cluster {restore.source} could not be read as JSON ({what})")
        manifest = json.dumps(restored_cluster(data, restore))
        create = Command(("kubectl", "create", "-f", "-"), stdin=manifest)
        what = f"creating Cluster {restore.target} from Backup {restore.backup}"
        done = await self._call(step, create, deadline, what)
        if not done.ok:
            raise StepError(Outcome.TIMED_OUT if done.timed_out else Outcome.FAILED, _command_failure(create, done))

    async def _run_markers(self, step: Step, markers: Markers, deadline: float) -> None:
        """The smoke suite's marker check does the step's work; the check goes onto its database like any other."""
        if self.markers is None:
            raise StepError(Outcome.FAILED, NO_MARKER_RUNNER)
        endpoint = markers.endpoint
        doing = f"running the smoke suite's {markers.phase} marker check against {endpoint.service}"
        self.progress.waiting(step, doing, self.clock())
        in_flight = self.doing.setdefault(step.id, [])
        in_flight.append(doing)
        check = await self.markers(markers, max(1.0, deadline - anyio.current_time()))
        in_flight.remove(doing)
        for database in self.results.databases:
            if database.key == endpoint.database:
                database.checks.append(check)
        if check.outcome is not Outcome.PASSED:
            said = first_line(check.message or "") or f"the marker check {check.outcome.value}"
            raise StepError(Outcome.TIMED_OUT if check.outcome is Outcome.TIMED_OUT else Outcome.FAILED, said)

    async def _install(self, step: Step, result: StepResult, deadline: float) -> Outcome:
        """Run the step's commands. While another client holds a lock on what they change (`retry_while`), pause,
        look again whether that client installed it (then the step is skipped), and retry. A Helm release whose
        pending operation is older than any live client's could be was left by a killed helm: free it, then retry."""
        while True:
            result.attempts += 1
            locked = await self._run_commands(step, result, deadline)
            if locked is None:
                return Outcome.PASSED
            command, done = locked
            refused = _command_failure(command, done)
            if anyio.current_time() >= deadline:
                raise StepError(Outcome.FAILED, refused)
            holder = await self._free_stuck_release(step, result, command, deadline)
            if holder is None:
                continue  # It was stuck and is free now.
            cause = "\n".join(filter(None, [refused, holder]))
            if anyio.current_time() + RACE_RETRY_PAUSE_S >= deadline:
                raise StepError(Outcome.FAILED, cause)
            self.progress.waiting(step, f"waiting for another client: {first_line(done.stderr)}", self.clock())
            await anyio.sleep(RACE_RETRY_PAUSE_S)
            if step.skip_when and await self._probes_pass(step, deadline):
                return Outcome.SKIPPED
            if anyio.current_time() >= deadline:
                raise StepError(Outcome.FAILED, cause)

    async def _run_commands(
        self, step: Step, result: StepResult, deadline: float
    ) -> tuple[Command, CommandResult] | None:
        """Run the commands in order; return the one another client's lock refused, or None when all passed."""
        for command in step.commands:
            timed = partial(_with_time_left, command) if _time_flag(command) is not None else command
            done = await self._call(step, timed, deadline, f"running {command.argv[0]}", step.retry_on, result)
            if done.timed_out:
                raise StepError(Outcome.TIMED_OUT, f"timed out after {step.timeout_s} s running {command}")
            if not done.ok and helm_timed_out(command, done.stderr):
                raise StepError(
                    Outcome.TIMED_OUT,
                    f"timed out after {step.timeout_s} s running {command}\nhelm: {first_line(done.stderr)}",
                )
            if not done.ok and any(fragment in done.stderr for fragment in step.retry_while):
                return command, done
            if not done.ok:
                target = helm_target(command)
                owner = ownership_conflict(done.stderr, *target) if target else None
                raise StepError(Outcome.FAILED, "\n".join(filter(None, [owner, _command_failure(command, done)])))
        return None

    async def _free_stuck_release(
        self, step: Step, result: StepResult, command: Command, deadline: float
    ) -> str | None:
        """After Helm refused `command` because its release is busy: when the release's pending revision is older
        than this step's whole time limit (plus a margin), no live helm of a run like this one holds it (the runner
        stops helm by then): a killed helm left it. Roll it back (or uninstall it if it never deployed), note it in
        the results and return None. Otherwise return who holds it, for the cause ("" when Helm does not say)."""
        target = helm_target(command)
        if target is None:
            return ""
        what = "reading the release's Helm history"
        history = await self._call(step, history_command(*target), deadline, what)
        stuck = stuck_release(*target, history.stdout) if history.ok else None
        if stuck is None:
            return ""
        age = stuck.age_s(self.clock())
        stale_after = step.timeout_s + ABANDONED_AFTER_MARGIN_S
        if age is None or age < stale_after:
            known = f" for {age:.0f} s" if age is not None else ""
            return (
                f"Helm release {stuck.release} is {stuck.status}{known} (revision {stuck.revision}): another helm is "
                f"working on it; it is taken for abandoned once older than {stale_after:.0f} s"
            )
        note = stuck.note(self.clock())
        self.progress.waiting(step, note, self.clock())
        what = f"freeing Helm release {stuck.release} ({stuck.status})"
        freed = await self._call(step, stuck.recovery, deadline, what)
        if not freed.ok:
            recovery = stuck.recovery(max(1, math.ceil(deadline - anyio.current_time())))
            raise StepError(
                Outcome.TIMED_OUT if freed.timed_out else Outcome.FAILED,
                f"{note}, but that failed: {first_line(freed.stderr) or f'exit code {freed.exit_code}'}\n"
                f"command: {recovery}",
            )
        result.notes.append(note)
        return None

    # --- commands with retries -------------------------------------------------------------------------------

    async def _call(
        self,
        step: Step,
        command: Command | Callable[[int], Command],
        deadline: float,
        doing: str,
        retry_on: tuple[str, ...] = (),
        result: StepResult | None = None,
    ) -> CommandResult:
        """Run a command, repeating it after transient API errors (with backoff) and once after a `retry_on`
        error. A callable command is rebuilt for each try with the seconds left (for kubectl's --timeout)."""
        in_flight = self.doing.setdefault(step.id, [])
        in_flight.append(doing)
        done = await self._call_with_retries(step, command, deadline, doing, retry_on, result)
        in_flight.remove(doing)  # Left in place on cancellation: the cause then says what was in flight.
        return done

    def _doing(self, step: Step) -> str:
        return "; ".join(sorted(self.doing.get(step.id, []))) or "starting"

    async def _call_with_retries(
        self,
        step: Step,
        command: Command | Callable[[int], Command],
        deadline: float,
        doing: str,
        retry_on: tuple[str, ...],
        result: StepResult | None,
    ) -> CommandResult:
        backoff = BACKOFF_FIRST_S
        transient_retries = 0
        race_retried = False
        while True:
            left = deadline - anyio.current_time()
            if left <= 0:
                raise StepError(Outcome.TIMED_OUT, f"timed out after {step.timeout_s} s {doing}")
            built = command(max(1, math.ceil(left))) if callable(command) else command
            done = await self.runner.run(built, timeout_s=left + COMMAND_GRACE_S)
            if done.ok or done.timed_out:
                return done
            if is_transient(done.stderr) and transient_retries < TRANSIENT_RETRIES:
                if anyio.current_time() + backoff >= deadline:
                    return done
                self.progress.waiting(
                    step, f"API error, retrying in {backoff:g} s: {first_line(done.stderr)}", self.clock()
                )
                if result is not None:
                    result.attempts += 1
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                transient_retries += 1
                continue
            if not race_retried and any(fragment in done.stderr for fragment in retry_on):
                race_retried = True
                if result is not None:
                    result.attempts += 1
                self.progress.waiting(step, f"retrying once after: {first_line(done.stderr)}", self.clock())
                await anyio.sleep(RACE_RETRY_PAUSE_S)
                continue
            return done

    async def _probes_pass(self, step: Step, deadline: float) -> bool:
        """Whether the step's work is already there. What is there at another version than pinned is not reused:
        the step fails with both versions (unless the plan reuses any version)."""
        found: list[str] = []
        for probe in step.skip_when:
            done = await self._call(step, probe.command, deadline, "checking whether it is already present")
            if not probe.passed(done.exit_code, done.stdout):
                return False
            found.extend(probe.found(done.stdout))
            wanted = probe.installed_version
            if wanted is not None:
                version = wanted.read(done.stdout)
                self.results.installed_versions[wanted.key] = version or "unknown"
                refusal = wanted.refusal(version, _where(probe.command))
                if refusal is not None:
                    raise StepError(Outcome.FAILED, refusal)
                found.append(f"{wanted.subject} {version or 'of unknown version'}")
        self.found[step.id] = found
        return True

    async def _wait_unless_failed(self, step: Step, wait: Wait, deadline: float, what: str) -> CommandResult:
        """The wait raced against a wait for its failure condition: whichever the object reaches first ends both,
        each a blocking `kubectl wait`. A failure raises with the object's own reason."""
        ended: dict[str, CommandResult] = {}
        watching = f"watching {wait.resource} for {wait.fails_on}"
        async with anyio.create_task_group() as race:

            async def success() -> None:
                ended["done"] = await self._call(step, wait.command, deadline, what)
                race.cancel_scope.cancel()

            async def failure() -> None:
                done = await self._call(step, wait.failure_command, deadline, watching)
                if done.ok:
                    ended["failed"] = done
                    race.cancel_scope.cancel()

            race.start_soon(success)
            race.start_soon(failure)
        in_flight = self.doing.get(step.id, [])
        for left in (what, watching):
            if left in in_flight:
                in_flight.remove(left)
        if "failed" in ended:
            reason = await self._call(step, wait.reason_command(), deadline, f"reading why {wait.resource} failed")
            said = first_line(reason.stdout) if reason.ok else ""
            state = (wait.fails_on or "").rsplit("=", 1)[-1]
            raise StepError(Outcome.FAILED, f"{wait.resource} is {state}: {said or 'it gives no reason'}")
        return ended["done"]

    async def _wait(self, step: Step, wait: Wait, deadline: float) -> None:
        if wait.must_exist_first:
            what = f"waiting for {wait.resource} to exist"
            self.progress.waiting(step, what, self.clock())
            done = await self._call(step, wait.exists_command, deadline, what)
            self._check_wait(step, done, what)
        if step.watch is not None and wait.resource == f"{CLUSTER_RESOURCE}/{step.watch.cluster}":
            await self._wait_for_current_spec(step, step.watch, deadline)
        what = f"waiting for {_describe(wait)}"
        self.progress.waiting(step, what, self.clock())
        if wait.fails_on is not None:
            done = await self._wait_unless_failed(step, wait, deadline, what)
        else:
            done = await self._call(step, wait.command, deadline, what)
        if wait.condition == "delete" and NO_SUCH_TYPE in done.stderr:
            return  # Its CRD is gone too (or never came): nothing of that kind is left to wait for.
        self._check_wait(step, done, what)

    async def _wait_for_current_spec(self, step: Step, watch: Watch, deadline: float) -> None:
        """After `helm upgrade` of an existing Cluster its phase is still that of the previous spec, and KubeBlocks
        1.0.1 advances `status.observedGeneration` as soon as it has written the new spec into the Components, before
        they act on it. A component's (or sharding's) `upToDate` turns true once it has observed the spec of the
        Cluster's current generation: wait for that on every one, so `Running` then means running this spec."""
        ns = ("-n", watch.namespace)
        get = kubectl(*ns, "get", CLUSTER_RESOURCE, watch.cluster, "-o", "json")
        done = await self._call(step, get, deadline, "reading the Cluster's components")
        if not done.ok:
            return  # The phase wait still applies; the watch reports what is wrong.
        generation = cluster_generation(done.stdout)
        if generation is not None:
            # An upToDate read before KubeBlocks has seen this generation may still be the previous spec's.
            what = f"waiting for KubeBlocks to observe generation {generation} of {watch.cluster}"
            self.progress.waiting(step, what, self.clock())

            def observed(timeout_s: int) -> Command:
                condition = f"--for=jsonpath={{.status.observedGeneration}}={generation}"
                return kubectl("wait", f"{CLUSTER_RESOURCE}/{watch.cluster}", *ns, condition, f"--timeout={timeout_s}s")

            self._check_wait(step, await self._call(step, observed, deadline, what), what)
        for name, path in current_spec_conditions(done.stdout):
            what = f"waiting for {name} of {watch.cluster} to take up the current spec"
            self.progress.waiting(step, what, self.clock())

            def up_to_date(timeout_s: int, path: str = path) -> Command:
                condition = f"--for=jsonpath={path}=true"
                return kubectl("wait", f"{CLUSTER_RESOURCE}/{watch.cluster}", *ns, condition, f"--timeout={timeout_s}s")

            self._check_wait(step, await self._call(step, up_to_date, deadline, what), what)

    def _check_wait(self, step: Step, done: CommandResult, what: str) -> None:
        if done.ok:
            return
        if done.timed_out or TIMED_OUT in done.stderr:
            raise StepError(Outcome.TIMED_OUT, f"timed out after {step.timeout_s} s {what}")
        if PROGRESS_DEADLINE in done.stderr:
            # The Deployment's own verdict (progressDeadlineSeconds without progress), not our budget running out.
            said = first_line(done.stderr).removeprefix("error: ")
            cause = f"{said} ({what}): Kubernetes gave up on the rollout after its progressDeadlineSeconds"
            raise StepError(Outcome.FAILED, cause)
        raise StepError(Outcome.FAILED, f"{first_line(done.stderr) or f'exit code {done.exit_code}'} ({what})")

    # --- clusters: event-driven readiness raced against a failure watch --------------------------------------

    async def _wait_for_cluster(self, step: Step, deadline: float) -> None:
        ended: list[StepError | None] = []
        async with anyio.create_task_group() as race:

            async def ready() -> None:
                try:
                    await _first_error([partial(self._wait, step, w, deadline) for w in step.done_when])
                    ended.append(None)
                except StepError as error:
                    ended.append(error)
                race.cancel_scope.cancel()

            async def watch() -> None:
                ended.append(StepError(Outcome.FAILED, await self._watch(step)))
                race.cancel_scope.cancel()

            race.start_soon(ready)
            race.start_soon(watch)
        error = ended[0] if ended else None
        if error is None:
            return
        state = self.last_state.get(step.id)
        if error.outcome is Outcome.TIMED_OUT and state is not None:
            raise StepError(error.outcome, "\n".join([f"{error.cause}; last seen: {state.summary}", *state.stuck]))
        raise error

    async def _watch(self, step: Step) -> str:
        """Look at the Cluster and its pods until something makes waiting pointless; return why."""
        watch = step.watch
        assert watch is not None
        ns = ("-n", watch.namespace)
        get_cluster = Command(
            ("kubectl", *ns, "get", CLUSTER_RESOURCE, watch.cluster, "-o", "json", "--ignore-not-found"), routine=True
        )
        get_pods = Command(("kubectl", *ns, "get", "pods", "-l", watch.pod_selector, "-o", "json"), routine=True)
        get_restores = backupchecks.restores_command(watch.namespace, watch.pod_selector)
        streaks = FatalStreaks(watch)
        while True:
            await anyio.sleep(WATCH_INTERVAL_S)
            cluster = await self.runner.run(get_cluster, timeout_s=WATCH_COMMAND_TIMEOUT_S)
            pods = await self.runner.run(get_pods, timeout_s=WATCH_COMMAND_TIMEOUT_S)
            if not (cluster.ok and pods.ok):
                continue  # The wait beside this watch decides on API errors.
            state = cluster_state(watch, cluster.stdout, pods.stdout)
            if watch.restores:
                restores = await self.runner.run(get_restores, timeout_s=WATCH_COMMAND_TIMEOUT_S)
                if restores.ok:
                    state = with_restores(state, backupchecks.restore_state(restores.stdout))
            self.last_state[step.id] = state
            self.progress.waiting(step, state.summary, self.clock())
            fatal = streaks.judge(state)
            if fatal:
                return fatal

    # --- diagnostics -----------------------------------------------------------------------------------------

    async def _collect_diagnostics(self, step: Step, result: StepResult) -> None:
        if not step.diagnostics:
            return
        folder = Path("diagnostics") / _folder_name(step)
        (self.out_dir / folder).mkdir(parents=True, exist_ok=True)
        limiter = anyio.CapacityLimiter(DIAGNOSTICS_PARALLEL)
        written: dict[str, str] = {}
        evidence = Evidence(step.watch.namespace) if step.watch is not None else None

        async def collect(diagnostic: Diagnostic) -> None:
            path = (folder / diagnostic.name).as_posix()
            async with limiter:
                listing = await self._diagnostic_output(diagnostic.command)
                text = _section(diagnostic.command, listing)
                if diagnostic.pod_logs is not None and listing.ok:
                    text = await self._pod_logs(diagnostic.command, listing, diagnostic.pod_logs, evidence)
            if evidence is not None:
                evidence.record(diagnostic, listing, path)
            (self.out_dir / folder / diagnostic.name).write_text(mask(text), encoding="utf-8")
            written[diagnostic.name] = path

        if step.images:
            listing = "".join(
                f"{i.component}\t{i.container}\t{i.image}\t(ComponentVersion: {i.source})\n" for i in step.images
            )
            (self.out_dir / folder / "images.txt").write_text(
                "The images this step's pods pull (component, container, image):\n" + listing, encoding="utf-8"
            )
            result.diagnostics.append((folder / "images.txt").as_posix())
        state = self.last_state.get(step.id)
        if state is not None:
            (self.out_dir / folder / "watch.txt").write_text(
                mask("\n".join([state.summary, *state.stuck]) + "\n"), encoding="utf-8"
            )
            result.diagnostics.append((folder / "watch.txt").as_posix())
        async with anyio.create_task_group() as group:
            for diagnostic in step.diagnostics:
                group.start_soon(collect, diagnostic)
        result.diagnostics.extend(written[d.name] for d in step.diagnostics if d.name in written)
        if evidence is not None:
            result.findings = explain(evidence)

    async def _diagnostic_output(self, command: Command) -> CommandResult:
        try:
            return await self.runner.run(command, timeout_s=DIAGNOSTIC_TIMEOUT_S)
        except Exception as error:  # One diagnostic that cannot be collected must not cost the others.
            return CommandResult(-1, "", f"could not collect: {_exception_text(error)}")

    async def _pod_logs(
        self, listing_command: Command, listing: CommandResult, logs: PodLogs, evidence: Evidence | None = None
    ) -> str:
        """One section per container of the listed pods; kubectl's error in the section of one it cannot read."""
        containers = pod_containers(listing.stdout)
        if containers is None:
            return _section(listing_command, listing) + "\n[not a pod list: no logs collected]\n"
        if logs.previous:
            containers = [c for c in containers if c.restarts > 0]
        if not containers:
            what = "no container has restarted" if logs.previous else "no pods"
            return f"$ {listing_command}\n[{what}]\n"
        sections = []
        for c in containers:
            command = logs.command(c.pod, c.container)
            restarted = f", restarted {c.restarts} times" if c.restarts else ""
            header = f"==> pod/{c.pod} container/{c.container}{' (previous)' if logs.previous else ''}{restarted} <=="
            output = await self._diagnostic_output(command)
            if evidence is not None:
                evidence.record_log(c.pod, c.container, output, previous=logs.previous)
            sections.append(f"{header}\n{_section(command, output)}")
        return "\n".join(sections)

    # --- results ---------------------------------------------------------------------------------------------

    def finish(self, cancelled: bool) -> RunResults:
        for step in self.plan.steps:
            result = self.steps[step.id]
            if result.outcome is Outcome.NOT_RUN and result.cause is None:
                result.cause = "not run: the run was cancelled first" if cancelled else "not run"
        self.results.databases = [self._database(d.key) for d in self.results.databases]
        self.results.backups = backup_results(self.plan, self.steps)
        self.results.ended_at = self.clock()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / RESULTS_FILE).write_text(json.dumps(self.results.to_json(), indent=2), encoding="utf-8")
        return self.results

    def _database(self, key: str) -> DatabaseResult:
        database = next(d for d in self.results.databases if d.key == key)
        # A stage on the deployed database (backup) reports on itself; the database's outcome is its deployment's.
        own = [self.steps[s.id] for s in self.plan.steps if s.database == key and s.stage is None]
        failed = next((s for s in own if not s.outcome.ok), None)
        database.outcome = failed.outcome if failed else Outcome.PASSED
        cluster = next((s for s in own if s.kind == "cluster"), None)
        if database.outcome is Outcome.PASSED and cluster is not None:
            database.ready_after_s = cluster.duration_s
        return database


async def _first_error(waits: list[Callable[[], Awaitable[None]]]) -> None:
    """Run `waits` concurrently; the first StepError cancels the rest and is raised."""
    errors: list[StepError] = []
    async with anyio.create_task_group() as group:

        async def one(wait: Callable[[], Awaitable[None]]) -> None:
            try:
                await wait()
            except StepError as error:
                errors.append(error)
                group.cancel_scope.cancel()

        for wait in waits:
            group.start_soon(one, wait)
    if errors:
        raise errors[0]


def _describe(wait: Wait) -> str:
    if wait.condition == "rollout":
        return f"{wait.resource} to roll out"
    if wait.condition == "delete":
        return f"{wait.resource} to be deleted"
    if wait.condition.startswith("condition="):
        return f"{wait.resource} to be {wait.condition.removeprefix('condition=')}"
    if wait.condition.startswith("jsonpath=") and "=" in wait.condition.removeprefix("jsonpath="):
        path, value = wait.condition.removeprefix("jsonpath=").rsplit("=", 1)
        return f"{wait.resource} {path.strip('{}.').replace('status.', '')} {value}"
    return f"{wait.resource} {wait.condition}"


def _where(command: Command) -> str:
    """Where a probe looked, for a message: its namespace, else `all namespaces`."""
    argv = command.argv
    return f"namespace {argv[argv.index('-n') + 1]}" if "-n" in argv else "all namespaces"


def _exception_text(error: BaseException) -> str:
    """The first real error inside (possibly nested) exception groups, as `Type: message`."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


def _time_flag(command: Command) -> int | None:
    """Where `command` carries helm's own `--timeout=` (the step's limit in the plan), if it does."""
    return next((i for i, arg in enumerate(command.argv) if arg.startswith("--timeout=")), None)


def _with_time_left(command: Command, seconds: int) -> Command:
    """`command` with its `--timeout=` set to the seconds the step has left: Helm then stops on its own (and records
    the release failed) before the runner's limit, which is `COMMAND_GRACE_S` later."""
    index = _time_flag(command)
    if index is None:
        return command
    argv = (*command.argv[:index], f"--timeout={seconds}s", *command.argv[index + 1 :])
    return Command(argv, command.stdin, command.routine)


def _command_failure(command: Command, done: CommandResult) -> str:
    reason = first_line(done.stderr) or first_line(done.stdout) or f"exit code {done.exit_code}"
    return f"{reason}\ncommand: {command}"


def _section(command: Command, done: CommandResult) -> str:
    """A diagnostic command and what it printed, or its exit code and error when it failed."""
    text = f"$ {command}\n{done.stdout}"
    if not done.ok:
        text += f"\n[exit code {done.exit_code}{', timed out' if done.timed_out else ''}]\n{done.stderr}"
    return text


def _folder_name(step: Step) -> str:
    if step.stage is not None:  # beside its database's deployment diagnostics, never over them
        return step.id.replace(":", "-")
    return step.database or step.id.replace(":", "-")


def new_results(plan: Plan, cluster_kind: str, started_at: float) -> RunResults:
    """Results with every step not run yet and every database from the plan's endpoints."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_at))
    return RunResults(
        run_id=f"{stamp}-{uuid.uuid4().hex[:6]}",
        started_at=started_at,
        ended_at=None,
        cluster_kind=cluster_kind,
        profile=plan.profile,
        namespace=plan.namespace,
        versions=dict(plan.versions),
        steps=[
            StepResult(
                id=s.id, title=s.title, kind=s.kind.value, database=s.database, outcome=Outcome.NOT_RUN, stage=s.stage
            )
            for s in plan.steps
        ],
        databases=[
            DatabaseResult(
                key=e.database,
                title=e.title,
                release=e.release,
                namespace=e.namespace,
                chart_version=e.chart_version,
                version=e.version,
                mode=e.mode,
                replicas=e.replicas,
                service=e.service,
                port=e.port,
                secret=e.secret,
            )
            for e in plan.endpoints
        ],
    )


async def run_plan(
    plan: Plan,
    runner: Runner,
    out_dir: Path,
    *,
    cluster_kind: str,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    markers: MarkerRunner | None = None,
) -> RunResults:
    """Execute `plan` (a deploy plan or one from `build_teardown_plan`) and return one StepResult per step and one
    DatabaseResult per endpoint. MARKERS steps run the smoke suite's marker check through `markers`.

    Diagnostics of every failed, timed-out or cancelled step go to `out_dir/diagnostics/<database or step>/`;
    `out_dir/results.json` is written on every exit. On cancellation (including KeyboardInterrupt) the results
    are written with cancelled / not-run steps and the cancellation propagates: read them back from results.json.
    """
    results = new_results(plan, cluster_kind, clock())
    run = _Run(
        plan=plan,
        runner=runner,
        out_dir=out_dir,
        progress=progress or Progress(),
        clock=clock,
        results=results,
        steps={s.id: s for s in results.steps},
        markers=markers,
    )
    cancelled = True
    try:
        await run.run_all()
        cancelled = False
    finally:
        run.finish(cancelled)
        run.progress.close()
    return results
