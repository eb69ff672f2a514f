"""dbstack: ApeRAG's KubeBlocks databases on a disposable k3s (or your cluster), smoke-tested, with reports.

The Dagger layer only: it turns arguments into the core's overrides, builds containers, and hands a runner to the
engine-free core (ci/dbstack). The core is imported inside the functions that use it, so loading the module for
any `dagger call` costs little more than importing dagger (benchmarks/import_cost.py).
"""

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar, cast

import dagger
from dagger import DefaultPath, Doc, Ignore, Name, dag, function, object_type

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from dbstack.config.load import Config
    from dbstack.plan.model import Command, Endpoint, Markers, Plan
    from dbstack.plan.upgrade import UpgradePlan
    from dbstack.run.containerrunner import ContainerRunner
    from dbstack.run.k3s import ReadyCheck
    from dbstack.run.orchestrator import MarkerRunner
    from dbstack.run.results import RunResults
    from dbstack.run.smokerun import SuiteExit

VALUES_IGNORE: Final = ["*", "!**/*.yaml"]
"""Only YAML is uploaded from values/: editing anything else there never invalidates a cached call."""
SMOKE_IGNORE: Final = ["**/__pycache__", "**/.pytest_cache", "**/.mypy_cache", "**/*.pyc"]
TOOLBOX_KUBECONFIG: Final = "/root/.kube/config"
SMOKE_WORKDIR: Final = "/src"
SMOKE_JUNIT: Final = "/reports/smoke-junit.xml"
SMOKE_STATUS: Final = "/reports/smoke-exit"
SMOKE_INSTALL_TIMEOUT_S: Final = 900
FORWARD_START_TIMEOUT_S: Final = 90
MARKER_MARGIN_S: Final = 240
"""Of a MARKERS step's time, what reaching the database (its forward, its account) and the install may take before
pytest starts; pytest gets the rest, at most `timeouts.smoke`."""
MARKER_MIN_LIMIT_S: Final = 30
PIP_CACHE: Final = "/root/.cache/pip"
CREDENTIALS_DIR: Final = "/run/dbstack-credentials"
NONCE: Final = "DBSTACK_EXEC_NONCE"
K3S_READY_TIMEOUT_S: Final = 300
K3S_START_TIMEOUT_S: Final = 300
"""Pulling the k3s image, starting it and Dagger's health check on its API port."""
SERVICE_STOP_TIMEOUT_S: Final = 60
EXISTING_CLUSTER_TIMEOUT_S: Final = 60
KUBECONFIG_WAIT_S: Final = 180
DIAGNOSTIC_TIMEOUT_S: Final = 30
REPORTS_PREFIX: Final = "dbstack-reports-"
SCRATCH: Final = "/scratch"
EXIT_CODE_FILE: Final = "exit-code"
DEFAULT_PROFILE: Final = "ci"
DEFAULT_CLUSTER_NAME: Final = "dbstack"
HOURS: Final = 3600
PLAN_FORMATS: Final = ("text", "json")
BASE_LABEL: Final = "base-values"
"""How messages and reports name the --base-values folder (Dagger does not say where it came from)."""

Values = Annotated[
    dagger.Directory,
    Doc("values folder: pipeline.yaml, one <database>.yaml per database, profiles/<name>/ (default: ./values)"),
    DefaultPath("/values"),
    Ignore(VALUES_IGNORE),
]
SmokeSuite = Annotated[
    dagger.Directory,
    Doc("the smoke test suite, with its lock file requirements.txt (default: ./ci/smoke)"),
    DefaultPath("/ci/smoke"),
    Ignore(SMOKE_IGNORE),
]
Profile = Annotated[str, Doc("profile under values/profiles/ layered on top of values/; empty for none")]
Enable = Annotated[list[str] | None, Doc("databases to enable on top of values/, e.g. neo4j (repeatable)")]
Disable = Annotated[list[str] | None, Doc("databases to leave out, e.g. elasticsearch (repeatable)")]
Namespace = Annotated[str, Doc("namespace for the database clusters (default: the values' namespace)")]
KubeblocksVersion = Annotated[str, Doc("KubeBlocks chart version to install instead of the pinned one, e.g. 1.0.1")]
ChartVersion = Annotated[str, Doc("addon and cluster chart version for every database instead of the pinned ones")]
Settings = Annotated[
    list[str] | None,
    Doc("any pipeline setting as key.path=value, e.g. timeouts.cluster=900 (repeatable)"),
    Name("set"),
]
BaseValues = Annotated[
    dagger.Directory,
    Doc("values to deploy first and upgrade from, usually the target branch's values/ (e.g. base/values)"),
    Ignore(VALUES_IGNORE),
]
ClusterName = Annotated[str, Doc("names the k3s cluster: the same name gives the same service within a session")]
Kubeconfig = Annotated[dagger.Secret, Doc("kubeconfig of the cluster, e.g. env://PREVIEW_KUBECONFIG")]
ExistingCluster = Annotated[
    dagger.Secret | None,
    Doc("kubeconfig of an existing cluster to deploy to instead of k3s, e.g. file:$HOME/.kube/config"),
]
PullRequest = Annotated[int, Doc("pull request number; the preview lives in namespace pr-<number>")]

_F = TypeVar("_F", bound=Callable[..., Any])


def cached(func: _F) -> _F:
    """`@function` with the default cache policy, for functions whose answer depends only on their inputs. The
    signature is kept for type checkers: mypy reads the SDK's own overload as erasing the return type."""
    return cast(_F, function(func))  # the SDK marks and returns the same function


def never_cached(func: _F) -> _F:
    """`@function(cache="never")`: for everything that talks to a live cluster (results are cached 7 days by
    default). dagger-io 0.21.11's typed overloads omit `cache`, which the SDK accepts and registers."""
    decorate: Callable[[_F], _F] = function(cache="never")  # type: ignore[call-overload]
    return decorate(func)


def _fail(message: str) -> Exception:
    """The SDK's error for "show this message, not a traceback" (bad input is not a crash)."""
    from dagger.mod._exceptions import FunctionError

    return FunctionError(message)


def _span(name: str) -> AbstractContextManager[Any]:
    """A named step in Dagger's progress view and traces."""
    from dagger.telemetry import get_tracer

    return get_tracer().start_as_current_span(name)


def _nonce() -> str:
    return uuid.uuid4().hex


def _engine_error(exc: dagger.QueryError) -> str:
    """One line: a failed exec's own error output (not the engine's generic message), else the engine's."""
    from dbstack.text import first_line

    if isinstance(exc, dagger.ExecError):
        said = first_line(exc.stderr) or first_line(exc.stdout)
        if said:
            return f"{said} (exit code {exc.exit_code})"
    return first_line(str(exc)) or type(exc).__name__


# --- values ------------------------------------------------------------------------------------------------------


async def _values_folder(values: dagger.Directory, label: str = "values/") -> "Path":
    """The uploaded values as a local folder the core reads (YAML only; nothing else was uploaded); `label` names
    the folder in messages."""
    import tempfile
    from pathlib import Path

    from dbstack.config.moduleargs import write_values
    from dbstack.config.problems import InvalidInput

    names = await values.glob("**/*.yaml")
    files = {name: await values.file(name).contents() for name in names}
    root = Path(tempfile.mkdtemp(prefix="dbstack-values-"))
    try:
        return write_values(files, root)
    except InvalidInput as exc:
        raise _fail(_problems(exc.problems, root, label)) from None


def _problems(problems: "Sequence[object]", root: "Path", label: str = "values/") -> str:
    lines = [str(p).replace(f"{root}/", label) for p in problems]
    noun = "problem" if len(lines) == 1 else "problems"
    return "\n".join([*lines, f"{len(lines)} {noun} found; nothing was deployed."])


async def _load_config(values: dagger.Directory, profile: str, overrides: list[str]) -> "Config":
    """The values as the core reads them (validation and capacity check included), before any cluster exists."""
    from dbstack.config.problems import InvalidInput
    from dbstack.config.validate import validate

    root = await _values_folder(values)
    try:
        return validate(root, profile or None, overrides).config
    except InvalidInput as exc:
        raise _fail(_problems(exc.problems, root)) from None


async def _images(values: dagger.Directory, profile: str) -> "Mapping[str, str]":
    """The pinned images only: functions that deploy nothing need no capacity check."""
    from dbstack.config.load import load_config
    from dbstack.config.problems import InvalidInput

    root = await _values_folder(values)
    try:
        return load_config(root, profile or None).images
    except InvalidInput as exc:
        raise _fail(_problems(exc.problems, root)) from None


def _overrides(
    enable: list[str] | None,
    disable: list[str] | None,
    namespace: str,
    kubeblocks_version: str,
    chart_version: str,
    settings: list[str] | None,
) -> list[str]:
    from dbstack.config.moduleargs import settings_overrides
    from dbstack.config.problems import InvalidInput

    try:
        return settings_overrides(
            enable=enable or [],
            disable=disable or [],
            namespace=namespace,
            kubeblocks_version=kubeblocks_version,
            chart_version=chart_version,
            extra=settings or [],
        )
    except InvalidInput as exc:
        raise _fail("\n".join(str(p) for p in exc.problems)) from None


async def _core_cli(
    command: list[str],
    values: dagger.Directory,
    profile: str,
    overrides: list[str],
    base_values: dagger.Directory | None = None,
) -> str:
    """Run one of the core's commands (`dbstack validate`, `dbstack plan`) on the uploaded values."""
    import contextlib
    import io

    from dbstack.cli import main as cli

    roots = {await _values_folder(values): "values"}
    # `--opt=value`: a value that starts with "-" stays a value.
    argv = [*command, f"--values={next(iter(roots))}", *([f"--profile={profile}"] if profile else [])]
    argv += [f"--set={override}" for override in overrides]
    if base_values is not None:
        base = await _values_folder(base_values, f"{BASE_LABEL}/")
        roots[base] = BASE_LABEL
        argv.append(f"--base-values={base}")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    said, message = out.getvalue(), err.getvalue()
    for root, label in roots.items():
        said, message = said.replace(str(root), label), message.replace(str(root), label)
    if code != cli.EXIT_OK:
        raise _fail(message.strip())
    return said


# --- the cluster -------------------------------------------------------------------------------------------------


def _k3s_service(image: str, name: str, holder: str) -> dagger.Service:
    """k3s as a Dagger service: a fresh cluster state each start, the image store kept in a cache volume."""
    from dbstack.run import k3s

    return (
        dag.container()
        .from_(image)
        .with_new_file(k3s.ENTRYPOINT_PATH, k3s.ENTRYPOINT_SCRIPT, permissions=0o755)
        .with_entrypoint([k3s.ENTRYPOINT_PATH])
        .with_env_variable(k3s.HOLDER_VARIABLE, holder)
        .with_mounted_cache(k3s.KUBECONFIG_DIR, dag.cache_volume("dbstack-k3s-kubeconfig"))
        # Not overlay: the nested containerd needs a real filesystem. SHARED, not PRIVATE: in Dagger 0.21 PRIVATE
        # is LOCKED, held by a service for its whole life, so a second k3s would wait forever in start(); the
        # entrypoint gives each k3s its own slot of the volume instead.
        .with_mounted_cache(
            k3s.STATE_DIR, dag.cache_volume("dbstack-k3s-slots"), sharing=dagger.CacheSharingMode.SHARED
        )
        .with_mounted_temp("/var/lib/kubelet")
        .with_mounted_temp("/var/log")
        .with_exposed_port(k3s.API_PORT)
        .as_service(args=k3s.server_args(name), use_entrypoint=True, insecure_root_capabilities=True)
    )


def _kubeconfig_file(toolbox_image: str, name: str, server: str = "") -> dagger.File:
    """The kubeconfig k3s wrote to the shared cache volume, read fresh every time (never from the layer cache)."""
    from dbstack.run import k3s

    out = "/tmp/kubeconfig"  # noqa: S108 - a path inside a throwaway container
    script = k3s.read_kubeconfig_script(name, out, KUBECONFIG_WAIT_S)
    if server:
        script += f" && sed -i 's#server: https://{k3s.API_ALIAS}:{k3s.API_PORT}#server: {server}#' {out}"
    return (
        dag.container()
        .from_(toolbox_image)
        .with_mounted_cache(k3s.KUBECONFIG_DIR, dag.cache_volume("dbstack-k3s-kubeconfig"))
        .with_env_variable(NONCE, _nonce())
        .with_exec(["sh", "-c", script])
        .file(out)
    )


class _ClusterUnavailable(Exception):
    """k3s did not start, or did not hand over its kubeconfig, within its time limit; the message is the cause."""


@contextmanager
def _bounded(limit_s: float, doing: str) -> "Iterator[None]":
    """A time limit on an engine call that could otherwise wait forever (a service start, a bind)."""
    import anyio

    try:
        with anyio.fail_after(limit_s):
            yield
    except TimeoutError:
        raise _ClusterUnavailable(f"k3s got no answer from the engine within {limit_s:g} s {doing}") from None


def _toolbox_for_kubeconfig(image: str, kubeconfig: dagger.Secret) -> dagger.Container:
    return (
        dag.container()
        .from_(image)
        .with_mounted_secret(TOOLBOX_KUBECONFIG, kubeconfig)
        .with_env_variable("KUBECONFIG", TOOLBOX_KUBECONFIG)
    )


async def _toolbox_for_k3s(image: str, service: dagger.Service, name: str) -> dagger.Container:
    from dbstack.run import k3s
    from dbstack.run.containerrunner import ENGINE_GRACE_S

    with _span("Read the k3s kubeconfig"), _bounded(KUBECONFIG_WAIT_S + ENGINE_GRACE_S, "reading its kubeconfig"):
        config_file = await _kubeconfig_file(image, name).sync()
    return (
        dag.container()
        .from_(image)
        .with_service_binding(k3s.API_ALIAS, service)
        .with_file(TOOLBOX_KUBECONFIG, config_file, permissions=k3s.KUBECONFIG_MODE)
        .with_env_variable("KUBECONFIG", TOOLBOX_KUBECONFIG)
    )


async def _check_kubeconfig(toolbox_image: str, kubeconfig: dagger.Secret) -> None:
    """Refuse a kubeconfig the toolbox cannot use (an EKS/GKE/AKS exec plugin) before any cluster call, with the
    fix in the message; `kubectl config view` without --raw prints no credential."""
    from dbstack.github.platform import KUBECONFIG_VIEW, kubeconfig_problem
    from dbstack.text import first_line

    done = await _runner(_toolbox_for_kubeconfig(toolbox_image, kubeconfig)).run(KUBECONFIG_VIEW, timeout_s=60)
    unreadable = f"kubectl cannot read the kubeconfig: {first_line(done.stderr)}"
    problem = kubeconfig_problem(done.stdout) if done.ok else unreadable
    if problem:
        raise _fail(problem.strip())


def _runner(toolbox: dagger.Container) -> "ContainerRunner":
    from dbstack.run.containerrunner import ContainerRunner

    return ContainerRunner(toolbox, span=_span)


async def _first_failure(runner: "ContainerRunner", checks: "Sequence[ReadyCheck]") -> str | None:
    """Run the readiness checks in order; the first that fails is the cause (None when all pass)."""
    from dbstack.run import k3s

    for check in checks:
        with _span(check.title):
            done = await runner.run(check.command, timeout_s=check.timeout_s)
        if not done.ok:
            return k3s.check_failure(check, done)
    return None


# --- one run -----------------------------------------------------------------------------------------------------

Prepare = Callable[["ContainerRunner"], Awaitable[None]]
"""Work on the cluster between its readiness and the plan (a preview's namespace); raises to stop the run."""


def _reports_root() -> "Path":
    """The module's scratch working directory, which `CurrentModule.workdir` reads back, else the cwd."""
    from pathlib import Path

    scratch = Path(SCRATCH)
    return scratch if scratch.is_dir() else Path.cwd()


def _as_directory(folder: "Path") -> dagger.Directory:
    """The report folder as a Directory: read back from the scratch workdir, or copied file by file."""
    from pathlib import Path

    if folder.parent == Path(SCRATCH):
        return dag.current_module().workdir(folder.name)
    directory = dag.directory()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = str(path.relative_to(folder))
        directory = directory.with_new_file(relative, path.read_text(encoding="utf-8", errors="replace"))
    return directory


class _Run:
    """One deploy-and-test: the plan, the cluster access, and the report folder in the module's workdir."""

    def __init__(
        self,
        config: "Config",
        plan: "Plan",
        smoke_suite: dagger.Directory | None,
        cluster_diagnostics: "Sequence[tuple[str, Command]] | None" = None,
        upgrade: "UpgradePlan | None" = None,
    ) -> None:
        self.config = config
        self.plan = plan
        self.upgrade = upgrade
        """Set: an upgrade test, whose `plan` is the base's deployment and which runs the upgrade stage after it."""
        self.marker: str | None = None
        """The id of the marker data the run's marker steps use; None: one made from the run's id."""
        self.smoke_suite = smoke_suite
        """None: the plan deploys no databases (the platform), so there is no smoke suite to run."""
        self.cluster_diagnostics = cluster_diagnostics
        """What to collect when the cluster cannot be used; None: k3s.CLUSTER_DIAGNOSTICS (the whole cluster)."""
        self.run_id = _nonce()[:12]
        self.out_dir = _reports_root() / f"{REPORTS_PREFIX}{self.run_id}"
        self.secrets: list[str] = []
        """Passwords read for the smoke suite: masked in every report file."""
        self.service: dagger.Service | None = None

    @property
    def toolbox_image(self) -> str:
        return self.config.images["toolbox"]

    def unstarted(self, cluster_kind: str, started: float) -> "RunResults":
        """Results of a run whose cluster never came up: every step not run."""
        from dbstack.run.orchestrator import new_results
        from dbstack.run.upgraderun import unstarted

        if self.upgrade is not None:
            return unstarted(self.upgrade, cluster_kind, started, "the cluster never came up")
        return new_results(self.plan, cluster_kind, started)

    async def toolbox(self, kubeconfig: dagger.Secret | None) -> dagger.Container:
        if kubeconfig is not None:
            return _toolbox_for_kubeconfig(self.toolbox_image, kubeconfig)
        k3s_image = self.config.images["k3s"]
        service = _k3s_service(k3s_image, self.run_id, f"deploy-and-test run {self.run_id}")
        self.service = service  # stopped at the end even when its start ran out of time
        with _span(f"Start k3s ({k3s_image})"), _bounded(K3S_START_TIMEOUT_S, "starting"):
            await service.start()
        return await _toolbox_for_k3s(self.toolbox_image, service, self.run_id)

    async def stop(self) -> None:
        if self.service is not None:
            import contextlib

            import anyio

            with contextlib.suppress(dagger.QueryError, TimeoutError), anyio.fail_after(SERVICE_STOP_TIMEOUT_S):
                await self.service.stop()

    async def reports(self, results: "RunResults") -> dagger.Directory:
        """results.json, junit.xml, summary.*, diagnostics/, smoke/ and exit-code, secrets masked."""
        from dbstack.report import write_reports

        with _span("Write the reports"):
            write_reports(results, self.out_dir, self.secrets)
            (self.out_dir / EXIT_CODE_FILE).write_text("0\n" if results.passed else "1\n", encoding="utf-8")
        return _as_directory(self.out_dir)


Finish = Callable[["ContainerRunner", "RunResults"], Awaitable[None]]
"""Work on the cluster after the plan and the smoke suite (a preview records which databases hold marker data)."""


async def _deploy_and_test(
    run: _Run, kubeconfig: dagger.Secret | None, prepare: Prepare | None = None, finish: Finish | None = None
) -> dagger.Directory:
    try:
        results = await _run_everything(run, kubeconfig, prepare, finish)
    finally:
        await run.stop()
    return await run.reports(results)


async def _run_everything(
    run: _Run, kubeconfig: dagger.Secret | None, prepare: Prepare | None, finish: Finish | None = None
) -> "RunResults":
    import sys
    import time

    from dagger.telemetry import get_tracer
    from dbstack.github.preview import PreviewError
    from dbstack.run import k3s
    from dbstack.run.orchestrator import run_plan
    from dbstack.run.progress import PlainProgress
    from dbstack.run.results import Outcome
    from dbstack.run.spanprogress import SpanProgress

    kind = "existing" if kubeconfig is not None else "k3s"
    started = time.time()
    runner: ContainerRunner | None = None
    try:
        toolbox = await run.toolbox(kubeconfig)
        runner = _runner(toolbox)
        checks = (
            k3s.reach_checks(EXISTING_CLUSTER_TIMEOUT_S)
            if kubeconfig is not None
            else k3s.ready_checks(K3S_READY_TIMEOUT_S)
        )
        cause = await _first_failure(runner, checks)
        if cause is None and prepare is not None:
            await prepare(runner)
    except dagger.QueryError as exc:
        cause = f"the cluster did not start: {_engine_error(exc)}"
    except _ClusterUnavailable as exc:
        cause = f"the cluster did not start: {exc}"
    except PreviewError as exc:
        cause = str(exc)
    cluster = k3s.cluster_step(kind, started, time.time(), cause)
    if cause is not None or runner is None:
        results = run.unstarted(kind, started)
        if runner is not None:
            cluster.diagnostics = await _cluster_diagnostics(run, runner)
    elif run.upgrade is not None:
        results = await _upgrade(run, run.upgrade, runner, toolbox, kind)
    else:
        progress = SpanProgress(get_tracer().start_span, also=PlainProgress(sys.stderr))
        markers = _marker_runner(run, toolbox) if run.smoke_suite is not None else None
        with _span("Deploy KubeBlocks and the databases"):
            results = await run_plan(
                run.plan, runner, run.out_dir, cluster_kind=kind, progress=progress, markers=markers
            )
        if run.smoke_suite is None:
            results.smoke_outcome = Outcome.SKIPPED
            results.smoke_cause = "this run deploys no databases"
        else:
            with _span("Smoke tests"):
                await _smoke(run, toolbox, results)
        if finish is not None:
            await finish(runner, results)
    results.started_at = started
    results.ended_at = time.time()
    results.steps.insert(0, cluster)
    return results


async def _upgrade(
    run: _Run, upgrade: "UpgradePlan", runner: "ContainerRunner", toolbox: dagger.Container, kind: str
) -> "RunResults":
    """The base deployed, the upgrade stage (its marker steps through the smoke suite), then the whole suite."""
    import sys

    from dagger.telemetry import get_tracer
    from dbstack.run.progress import PlainProgress
    from dbstack.run.spanprogress import SpanProgress
    from dbstack.run.upgraderun import run_upgrade

    async def whole_suite(results: "RunResults") -> None:
        with _span("Smoke tests"):
            await _smoke(run, toolbox, results)

    progress = SpanProgress(get_tracer().start_span, also=PlainProgress(sys.stderr))
    with _span("Deploy the base values, then upgrade them in place to the values"):
        return await run_upgrade(
            upgrade,
            runner,
            run.out_dir,
            cluster_kind=kind,
            progress=progress,
            markers=_marker_runner(run, toolbox),
            after_upgrade=whole_suite,
        )


async def _load_upgrade(
    values: dagger.Directory, base_values: dagger.Directory, profile: str, overrides: list[str], *, on_k3s: bool
) -> "UpgradePlan":
    """Both sides as the core reads them, and the upgrade between them, refused before any cluster exists when it
    cannot be done in place. On k3s volumes cannot grow (local-path), and the cluster goes away with its markers;
    elsewhere the markers are removed once read back."""
    from dbstack.config.problems import InvalidInput
    from dbstack.plan.upgrade import MarkerOptions, load_upgrade_plan

    root = await _values_folder(values)
    base = await _values_folder(base_values, f"{BASE_LABEL}/")
    try:
        return load_upgrade_plan(
            base,
            root,
            profile or None,
            overrides,
            volume_expansion=False if on_k3s else None,
            base_label=f"--{BASE_LABEL}",
            markers=MarkerOptions(clean=not on_k3s),
        )
    except InvalidInput as exc:
        # Both folders are temporary with random names: order by side (base first), not by those names.
        by_side = sorted(exc.problems, key=lambda p: not str(p.file).startswith(f"{base}/"))
        text = _problems(by_side, root).replace(f"{base}/", f"{BASE_LABEL}/")
        raise _fail(text) from None


async def _cluster_diagnostics(run: _Run, runner: "ContainerRunner") -> list[str]:
    """What the cluster looked like when it failed to come up, as files under diagnostics/cluster/."""
    from dbstack.run import k3s

    folder = run.out_dir / "diagnostics" / k3s.CLUSTER_STEP_ID
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, command in k3s.CLUSTER_DIAGNOSTICS if run.cluster_diagnostics is None else run.cluster_diagnostics:
        done = await runner.run(command, timeout_s=DIAGNOSTIC_TIMEOUT_S)
        (folder / name).write_text(done.stdout + done.stderr, encoding="utf-8")
        written.append(f"diagnostics/{k3s.CLUSTER_STEP_ID}/{name}")
    return written


# --- the smoke suite ---------------------------------------------------------------------------------------------


class _Unreachable(Exception):
    """A database the suite cannot be pointed at; the message says why, and only its checks fail."""


@dataclass
class _Reached:
    """A database ready for the suite: its forward running (started and health-checked), its account read."""

    endpoint: "Endpoint"
    forward: dagger.Service
    username: str | None = None
    password: dagger.Secret | None = None


async def _smoke(run: _Run, toolbox: dagger.Container, results: "RunResults") -> None:
    """Reach each database on its own (a forward that cannot come up fails only that database), then run the
    suite against the ones reached."""
    import time

    from dbstack.run import smokeenv, smokerun

    endpoints = smokeenv.deployed_endpoints(run.plan.endpoints, results)
    if not endpoints:
        results.smoke_cause = "no database reached Running, so the smoke suite did not run"
        return
    results.smoke_started_at = time.time()
    reached: list[_Reached] = []
    unreachable: list[smokerun.Unreachable] = []
    try:
        for endpoint in endpoints:
            try:
                reached.append(await _reach(run, toolbox, endpoint))
            except _Unreachable as exc:
                unreachable.append(smokerun.Unreachable(endpoint, str(exc)))
        if reached:
            await _run_suite(run, reached, results)
        smokerun.record_unreachable(results, unreachable, suite_ran=bool(reached))
    finally:
        results.smoke_ended_at = time.time()


async def _reach(run: _Run, toolbox: dagger.Container, endpoint: "Endpoint") -> _Reached:
    """Start the database's forward and wait for Dagger's health check on its port, within a time limit; then
    read its account. Raises _Unreachable with the cause."""
    import anyio
    from dbstack.run import smokeenv

    with _span(f"Forward {endpoint.service}:{endpoint.port} out of the cluster"):
        try:
            with anyio.fail_after(FORWARD_START_TIMEOUT_S):
                forward = await _port_forward(toolbox, endpoint).start()
        except TimeoutError:
            raise _Unreachable(
                f"the port-forward to svc/{endpoint.service}:{endpoint.port} did not come up within "
                f"{FORWARD_START_TIMEOUT_S} s"
            ) from None
        except dagger.QueryError as exc:
            raise _Unreachable(
                f"the port-forward to svc/{endpoint.service}:{endpoint.port} did not come up: {_engine_error(exc)}"
            ) from None
    reached = _Reached(endpoint, forward)
    if endpoint.secret is not None and smokeenv.contract(endpoint).password is not None:
        with _span(f"Read the {endpoint.title} credentials from Secret {endpoint.secret}"):
            reached.username, reached.password = await _read_account(run, toolbox, endpoint)
    return reached


class _SuiteFailed(Exception):
    """The suite's container did not run it to an exit record; the message says why."""


@dataclass(frozen=True)
class _Ended:
    """How a run of the suite in its container ended; its pytest.log and JUnit file are written under `folder`."""

    folder: "Path"
    exit: "SuiteExit"

    @property
    def junit(self) -> "Path":
        return self.folder / "junit.xml"


async def _pytest(
    run: _Run,
    reached: "Sequence[_Reached]",
    variables: "Mapping[str, str]",
    argv: list[str],
    folder: "Path",
    limit: int,
) -> _Ended:
    """pytest in the smoke container against the reached databases. Its command always exits 0 and records how
    pytest ended, so its output and JUnit can be read back whatever stopped it; only a kill of the container itself
    loses them (raises _SuiteFailed, as does a failed install or an engine that does not answer)."""
    import contextlib

    import anyio
    from dbstack.run import smokeenv, smokerun
    from dbstack.run.containerrunner import ENGINE_GRACE_S

    folder.mkdir(parents=True, exist_ok=True)
    try:
        with anyio.fail_after(SMOKE_INSTALL_TIMEOUT_S):
            smoke = await _smoke_container(run).sync()
    except TimeoutError:
        raise _SuiteFailed(
            f"the smoke suite's dependencies did not install within {SMOKE_INSTALL_TIMEOUT_S} s"
        ) from None
    except dagger.QueryError as exc:
        raise _SuiteFailed(f"the smoke suite's dependencies did not install: {_engine_error(exc)}") from None
    for one in reached:
        smoke = _with_endpoint(smoke, one)
    for name, value in variables.items():
        smoke = smoke.with_env_variable(name, value)
    command = smokerun.recorded_command(argv, SMOKE_STATUS)
    engine_limit = limit + smokeenv.SMOKE_INTERRUPT_GRACE_S + ENGINE_GRACE_S
    junit = ""
    try:
        with anyio.fail_after(engine_limit):
            done = (
                await smoke.with_env_variable(NONCE, _nonce()).with_exec(command, expect=dagger.ReturnType.ANY).sync()
            )
            log = await done.stdout() + await done.stderr()
            status = await done.file(SMOKE_STATUS).contents()
            with contextlib.suppress(dagger.QueryError):  # none when pytest died before writing it
                junit = await done.file(SMOKE_JUNIT).contents()
    except dagger.ExecError as exc:  # the shell itself ended by a signal: the engine raised, its files are lost
        (folder / "pytest.log").write_text(exc.stdout + exc.stderr, encoding="utf-8")
        raise _SuiteFailed(smokerun.container_killed_cause(exc.exit_code)) from None
    except TimeoutError:
        raise _SuiteFailed(f"the smoke suite got no answer from the engine within {engine_limit} s") from None
    except dagger.QueryError as exc:
        raise _SuiteFailed(f"the smoke suite did not run to its end: {_engine_error(exc)}") from None
    (folder / "pytest.log").write_text(log, encoding="utf-8")
    if junit:
        (folder / "junit.xml").write_text(junit, encoding="utf-8")
    try:
        return _Ended(folder, smokerun.SuiteExit.parse(status))
    except ValueError as exc:
        raise _SuiteFailed(f"the smoke suite's exit record {SMOKE_STATUS} is unreadable: {exc}") from None


async def _run_suite(run: _Run, reached: list[_Reached], results: "RunResults") -> None:
    """The whole suite against the reached databases; its checks and outcome go into the results."""
    from dbstack.run import smokeenv, smokerun

    limit = run.config.timeouts.smoke
    variables = smokeenv.suite_variables([one.endpoint for one in reached], run.config)
    try:
        ended = await _pytest(
            run, reached, variables, smokeenv.smoke_command(SMOKE_JUNIT, limit), run.out_dir / "smoke", limit
        )
    except _SuiteFailed as exc:
        return _smoke_failed(results, str(exc))
    smokerun.record_suite(results, ended.exit, ended.junit, limit)


def _marker_runner(run: _Run, toolbox: dagger.Container) -> "MarkerRunner":
    """What runs the plan's MARKERS steps: the smoke suite's marker check against one database at a time, reached
    the way the suite reaches it (its own forward, its own account), with this run's marker id."""
    from dbstack.run import smokeenv
    from dbstack.run.results import CheckResult, Outcome

    marker = run.marker or smokeenv.marker_id(run.run_id)

    async def markers(step: "Markers", seconds: float) -> CheckResult:
        endpoint = step.endpoint
        name = smokeenv.marker_check_name(step.phase, step.context)
        with _span(f"{step.phase.capitalize()} markers {marker} in {endpoint.title} ({endpoint.release})"):
            try:
                reached = await _reach(run, toolbox, endpoint)
            except _Unreachable as exc:
                return CheckResult(endpoint.database, name, Outcome.FAILED, message=f"not reached: {exc}")
            try:
                limit = max(MARKER_MIN_LIMIT_S, min(run.config.timeouts.smoke, int(seconds) - MARKER_MARGIN_S))
                folder = run.out_dir / "smoke" / f"markers-{step.phase}-{endpoint.release}"  # masked as smoke/ is
                variables = smokeenv.marker_environment([endpoint], run.config, step.phase, marker)
                argv = smokeenv.marker_command(SMOKE_JUNIT, limit, [endpoint.database])
                ended = await _pytest(run, [reached], variables, argv, folder, limit)
            except _SuiteFailed as exc:
                return CheckResult(endpoint.database, name, Outcome.FAILED, message=str(exc))
            finally:
                await _stop(reached.forward)
        found = smokeenv.read_markers(step.phase, [endpoint.database], ended.exit.exit_code, ended.junit, step.context)
        return found[endpoint.database]

    return markers


async def _stop(service: dagger.Service) -> None:
    """Stop a forward whose database may go away next (a restored cluster is deleted after its read-back)."""
    import contextlib

    import anyio

    with contextlib.suppress(dagger.QueryError, TimeoutError), anyio.fail_after(SERVICE_STOP_TIMEOUT_S):
        await service.stop()


def _smoke_failed(results: "RunResults", cause: str) -> None:
    from dbstack.run.results import Outcome

    results.smoke_outcome = Outcome.FAILED
    results.smoke_cause = cause


def _smoke_container(run: _Run) -> dagger.Container:
    """Pinned Python with the suite's locked dependencies; the install layer changes only with the lock file."""
    suite = run.smoke_suite
    assert suite is not None
    return (
        dag.container()
        .from_(run.config.images["python"])
        .with_mounted_cache(PIP_CACHE, dag.cache_volume("dbstack-smoke-pip"))
        .with_workdir(SMOKE_WORKDIR)
        .with_file(f"{SMOKE_WORKDIR}/requirements.txt", suite.file("requirements.txt"))
        .with_exec(["pip", "install", "--disable-pip-version-check", "--require-hashes", "-r", "requirements.txt"])
        .with_directory(f"{SMOKE_WORKDIR}/ci/smoke", suite)
    )


def _with_endpoint(smoke: dagger.Container, reached: _Reached) -> dagger.Container:
    """Bind the database's running forward under its Service name and set the variables ApeRAG's pods would get."""
    from dbstack.run import smokeenv

    endpoint = reached.endpoint
    smoke = smoke.with_service_binding(endpoint.service, reached.forward)
    for name, value in smokeenv.plain_variables(endpoint).items():
        smoke = smoke.with_env_variable(name, value)
    contract = smokeenv.contract(endpoint)
    if reached.password is not None and contract.password is not None:
        smoke = smoke.with_secret_variable(contract.password, reached.password)
    if reached.username is not None and contract.username is not None:
        smoke = smoke.with_env_variable(contract.username, reached.username)
    return smoke


async def _read_account(
    run: _Run, toolbox: dagger.Container, endpoint: "Endpoint"
) -> tuple[str | None, dagger.Secret | None]:
    """The account Secret's username, and its password as a Dagger secret; never printed by any exec.

    Bounded twice, like every ContainerRunner exec: `timeout` inside the container, a cancel scope around the
    engine calls. Running out of time raises _Unreachable."""
    import anyio
    from dbstack.run import smokeenv
    from dbstack.run.containerrunner import ENGINE_GRACE_S

    try:
        with anyio.fail_after(smokeenv.ACCOUNT_READ_TIMEOUT_S + ENGINE_GRACE_S):
            reader = await (
                toolbox.with_env_variable(NONCE, _nonce())
                .with_exec(smokeenv.read_account_argv(endpoint, CREDENTIALS_DIR), expect=dagger.ReturnType.ANY)
                .sync()
            )
            exit_code = await reader.exit_code()
            if exit_code != 0:
                if smokeenv.account_read_timed_out(exit_code):
                    raise _Unreachable(smokeenv.account_timeout_cause(endpoint))
                return None, None  # the smoke suite then fails to log in, and says so
            plaintext = await reader.file(f"{CREDENTIALS_DIR}/{smokeenv.PASSWORD_KEY}").contents()
            username = (await reader.file(f"{CREDENTIALS_DIR}/{smokeenv.USERNAME_KEY}").contents()).strip()
    except TimeoutError:
        raise _Unreachable(smokeenv.account_timeout_cause(endpoint)) from None
    except dagger.ExecError as exc:  # 128-191 raise even with expect=ANY: busybox `timeout` ends the read with 143
        if smokeenv.account_read_timed_out(exc.exit_code):
            raise _Unreachable(smokeenv.account_timeout_cause(endpoint)) from None
        raise _Unreachable(f"reading its account Secret {endpoint.secret} failed: {_engine_error(exc)}") from None
    except dagger.QueryError as exc:
        raise _Unreachable(f"reading its account Secret {endpoint.secret} failed: {_engine_error(exc)}") from None
    password = dag.set_secret(f"dbstack-{run.run_id}-{endpoint.database}-password", plaintext)
    run.secrets.append(plaintext)
    return username, password


def _port_forward(toolbox: dagger.Container, endpoint: "Endpoint") -> dagger.Service:
    """The database's Service, forwarded out of the cluster by a forward that restarts when it drops."""
    from dbstack.run import smokerun

    return (
        toolbox.with_env_variable(NONCE, _nonce())
        .with_exposed_port(endpoint.port)
        .as_service(args=["sh", "-c", smokerun.forward_script(endpoint)])
    )


# --- the module --------------------------------------------------------------------------------------------------


@object_type
class Dbstack:
    """Stand up ApeRAG's databases with KubeBlocks on k3s in Dagger (or on your cluster) and prove they work."""

    @cached
    async def validate(
        self,
        values: Values,
        profile: Profile = DEFAULT_PROFILE,
        enable: Enable = None,
        disable: Disable = None,
        namespace: Namespace = "",
        kubeblocks_version: KubeblocksVersion = "",
        chart_version: ChartVersion = "",
        settings: Settings = None,
    ) -> str:
        """Check the values (schemas, names, capacity) before any cluster exists; fails listing every problem."""
        overrides = _overrides(enable, disable, namespace, kubeblocks_version, chart_version, settings)
        return await _core_cli(["validate"], values, profile, overrides)

    @cached
    async def plan(
        self,
        values: Values,
        profile: Profile = DEFAULT_PROFILE,
        enable: Enable = None,
        disable: Disable = None,
        namespace: Namespace = "",
        kubeblocks_version: KubeblocksVersion = "",
        chart_version: ChartVersion = "",
        settings: Settings = None,
        plan_format: Annotated[str, Doc("text, or json for the documented JSON form"), Name("format")] = "text",
        base_values: Annotated[
            dagger.Directory | None,
            Doc("values deployed before the change (e.g. base/values): print the upgrade plan from them instead"),
            Ignore(VALUES_IGNORE),
        ] = None,
    ) -> str:
        """Print the deployment plan: every step, command, wait condition and endpoint (a dry run)."""
        if plan_format not in PLAN_FORMATS:
            raise _fail(f"--format {plan_format!r} is not a plan format (allowed: {', '.join(PLAN_FORMATS)})")
        overrides = _overrides(enable, disable, namespace, kubeblocks_version, chart_version, settings)
        command = ["plan", *(["--json"] if plan_format == "json" else [])]
        return await _core_cli(command, values, profile, overrides, base_values)

    @never_cached
    async def cluster(
        self,
        values: Values,
        profile: Profile = DEFAULT_PROFILE,
        name: ClusterName = DEFAULT_CLUSTER_NAME,
    ) -> dagger.Service:
        """The k3s service (API on 6443); `dagger call cluster up --ports 6443:6443` keeps one running."""
        return _k3s_service((await _images(values, profile))["k3s"], name, f"cluster {name}")

    @never_cached
    async def kubeconfig(
        self,
        values: Values,
        profile: Profile = DEFAULT_PROFILE,
        name: ClusterName = DEFAULT_CLUSTER_NAME,
        server: Annotated[
            str, Doc("API address written into the file, e.g. https://localhost:6443 next to `cluster up`")
        ] = "",
    ) -> dagger.File:
        """The kubeconfig of the running k3s cluster of that name (waits up to 3 minutes for it to be written)."""
        return await _kubeconfig_file((await _images(values, profile))["toolbox"], name, server).sync()

    @never_cached
    async def deploy_and_test(
        self,
        values: Values,
        smoke_suite: SmokeSuite,
        profile: Profile = DEFAULT_PROFILE,
        enable: Enable = None,
        disable: Disable = None,
        namespace: Namespace = "",
        kubeblocks_version: KubeblocksVersion = "",
        chart_version: ChartVersion = "",
        settings: Settings = None,
        kubeconfig: ExistingCluster = None,
    ) -> dagger.Directory:
        """Deploy and smoke-test everything; returns the reports (exit-code holds 0 or 1), also on failure."""
        from dbstack.plan.backup import ON_EXISTING, ON_K3S
        from dbstack.plan.build import build_plan

        overrides = _overrides(enable, disable, namespace, kubeblocks_version, chart_version, settings)
        config = await _load_config(values, profile, overrides)
        plan = build_plan(config, ON_K3S if kubeconfig is None else ON_EXISTING)
        return await _deploy_and_test(_Run(config, plan, smoke_suite), kubeconfig)

    @never_cached
    async def upgrade_test(
        self,
        values: Values,
        smoke_suite: SmokeSuite,
        base_values: BaseValues,
        profile: Profile = DEFAULT_PROFILE,
        enable: Enable = None,
        disable: Disable = None,
        namespace: Namespace = "",
        kubeblocks_version: KubeblocksVersion = "",
        chart_version: ChartVersion = "",
        settings: Settings = None,
        kubeconfig: ExistingCluster = None,
    ) -> dagger.Directory:
        """Deploy --base-values, write markers, upgrade in place to the values, read them back, smoke-test; reports."""
        overrides = _overrides(enable, disable, namespace, kubeblocks_version, chart_version, settings)
        upgrade = await _load_upgrade(values, base_values, profile, overrides, on_k3s=kubeconfig is None)
        run = _Run(upgrade.config, upgrade.base, smoke_suite, upgrade=upgrade)
        return await _deploy_and_test(run, kubeconfig)

    @never_cached
    async def platform(
        self,
        values: Values,
        kubeconfig: Annotated[
            dagger.Secret, Doc("an admin kubeconfig of the shared cluster, e.g. env://PLATFORM_KUBECONFIG")
        ],
        profile: Profile = DEFAULT_PROFILE,
        enable: Enable = None,
        disable: Disable = None,
        settings: Settings = None,
    ) -> dagger.Directory:
        """Install or upgrade what previews share: snapshot support, KubeBlocks, the enabled addons; returns reports."""
        from dbstack.github.platform import platform_plan
        from dbstack.plan.backup import ON_EXISTING
        from dbstack.plan.build import build_plan

        config = await _load_config(values, profile, _overrides(enable, disable, "", "", "", settings))
        await _check_kubeconfig(config.images["toolbox"], kubeconfig)
        plan = platform_plan(build_plan(config, ON_EXISTING))
        return await _deploy_and_test(_Run(config, plan, None), kubeconfig)

    @never_cached
    async def preview(
        self,
        values: Values,
        smoke_suite: SmokeSuite,
        kubeconfig: Kubeconfig,
        pr: PullRequest,
        head_sha: Annotated[str, Doc("the commit checked out and deployed, recorded on the namespace")],
        profile: Profile = DEFAULT_PROFILE,
        enable: Enable = None,
        disable: Disable = None,
        settings: Settings = None,
    ) -> dagger.Directory:
        """Deploy a pull request's preview into namespace pr-<n> of a cluster `platform` prepared; returns reports."""
        # Needs only the preview identity's rights (platform/preview-rbac.yaml): the platform is checked, never
        # installed, and the namespace is made labelled (no --create-namespace).
        import time

        from dbstack.github.platform import PlatformPins, check_platform
        from dbstack.github.preview import (
            PreviewMarkers,
            PreviewTarget,
            keep_markers,
            prepare_namespace,
            preview_cluster_diagnostics,
            preview_plan,
            quota_problems,
            read_markers,
        )
        from dbstack.plan.backup import ON_EXISTING
        from dbstack.plan.build import build_plan

        try:
            target = PreviewTarget.create(pr, head_sha, time.time())
        except ValueError as exc:
            raise _fail(str(exc)) from None
        overrides = _overrides(enable, disable, target.namespace, "", "", settings)
        config = await _load_config(values, profile, overrides)
        problems = quota_problems(config)
        if problems:
            raise _fail("\n".join([*problems, "nothing was deployed."]))
        await _check_kubeconfig(config.images["toolbox"], kubeconfig)

        markers: list[PreviewMarkers] = []

        async def platform_then_namespace(runner: "ContainerRunner") -> None:
            with _span("Check the platform (snapshot support, KubeBlocks, addons) against values/"):
                await check_platform(runner, PlatformPins.from_config(config))
            with _span("Read which databases hold marker data from earlier deploys"):
                run.plan, found = await read_markers(runner, target, run.plan, config)
                markers.append(found)
                run.marker = found.id
            with _span(f"Prepare namespace {target.namespace} (labels, role binding, quota, limits)"):
                for note in await prepare_namespace(runner, target, config.preview):
                    print(note)

        async def keep(runner: "ContainerRunner", results: "RunResults") -> None:
            with _span("Record which databases hold marker data"):
                print(await keep_markers(runner, target, markers[0], results))

        kb_ns = config.kubeblocks_namespace
        run = _Run(
            config,
            preview_plan(build_plan(config, ON_EXISTING), kb_ns),
            smoke_suite,
            cluster_diagnostics=preview_cluster_diagnostics(target.namespace, kb_ns),
        )
        return await _deploy_and_test(run, kubeconfig, prepare=platform_then_namespace, finish=keep)

    @never_cached
    async def teardown(
        self,
        values: Values,
        kubeconfig: Kubeconfig,
        pr: PullRequest,
        adopt_unlabelled: Annotated[
            bool, Doc("also remove pr-<n> when it has no dbstack labels (made by an older preview's Helm)")
        ] = False,
    ) -> str:
        """Remove a pull request's preview (its releases, then namespace pr-<n>); nothing when there is none."""
        import time

        from dbstack.github.preview import PreviewError, teardown

        image = (await _images(values, ""))["toolbox"]
        await _check_kubeconfig(image, kubeconfig)
        runner = _runner(_toolbox_for_kubeconfig(image, kubeconfig))
        try:
            with _span(f"Tear down the preview of pull request {pr}"):
                report = await teardown(runner, pr, adopt_unlabelled=adopt_unlabelled, now=time.time())
        except (PreviewError, ValueError) as exc:
            raise _fail(str(exc)) from None
        return report.summary()

    @never_cached
    async def sweep(
        self,
        values: Values,
        kubeconfig: Kubeconfig,
        open_prs: Annotated[
            str, Doc("the pull requests open now, as GitHub lists them: 12,15 or none (a failed lookup is refused)")
        ],
    ) -> dagger.Directory:
        """Remove closed pull requests' previews and idle open ones; returns sweep.json, summary.txt, exit-code."""
        import json
        import time

        from dbstack.config.load import load_config
        from dbstack.config.problems import InvalidInput
        from dbstack.github.preview import PreviewError, parse_open_prs, sweep

        root = await _values_folder(values)
        try:
            config = load_config(root)
            open_now = parse_open_prs(open_prs)
        except InvalidInput as exc:
            raise _fail(_problems(exc.problems, root)) from None
        except PreviewError as exc:
            raise _fail(str(exc)) from None
        await _check_kubeconfig(config.images["toolbox"], kubeconfig)
        runner = _runner(_toolbox_for_kubeconfig(config.images["toolbox"], kubeconfig))
        try:
            with _span("Sweep previews"):
                report = await sweep(runner, time.time(), open_now, config.preview)
        except PreviewError as exc:
            raise _fail(str(exc)) from None
        return (
            dag.directory()
            .with_new_file("sweep.json", json.dumps(report.to_json(), indent=2) + "\n")
            .with_new_file("summary.txt", report.summary() + "\n")
            .with_new_file(EXIT_CODE_FILE, "0\n" if report.ok else "1\n")
        )
