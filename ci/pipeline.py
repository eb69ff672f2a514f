"""dbstack: ApeRAG's KubeBlocks databases on a disposable k3s (or your cluster), smoke-tested, with reports."""

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import dagger
from dagger import DefaultPath, Doc, Ignore, Name, dag, function, object_type

if TYPE_CHECKING:  # Only for annotations: the core is imported inside the functions that use it (import cost).
    from collections.abc import Sequence
    from pathlib import Path

    from dbstack.config import Config
    from dbstack.containerrunner import ContainerRunner
    from dbstack.k3s import ReadyCheck
    from dbstack.plan import Endpoint, Plan
    from dbstack.results import RunResults

VALUES_IGNORE: Final = ["*", "!**/*.yaml"]
"""Only YAML is uploaded from values/: editing anything else there never invalidates a cached call."""
SMOKE_IGNORE: Final = ["**/__pycache__", "**/.pytest_cache", "**/*.pyc"]
TOOLBOX_KUBECONFIG: Final = "/root/.kube/config"
SMOKE_WORKDIR: Final = "/src"
SMOKE_JUNIT: Final = "/reports/smoke-junit.xml"
PIP_CACHE: Final = "/root/.cache/pip"
K3S_READY_TIMEOUT_S: Final = 300
KUBECONFIG_WAIT_S: Final = 180
REPORTS_PREFIX: Final = "dbstack-reports-"
EXIT_CODE_FILE: Final = "exit-code"
DEFAULT_PROFILE: Final = "ci"
DEFAULT_CLUSTER_NAME: Final = "dbstack"

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
ClusterName = Annotated[str, Doc("names the k3s cluster: the same name gives the same service within a session")]


_F = TypeVar("_F", bound=Callable[..., Any])


def never_cached(func: _F) -> _F:
    """`@function(cache="never")`: for everything that talks to a live cluster (results are cached 7 days by
    default). dagger-io 0.21.11's typed overloads omit `cache`, which the SDK accepts and registers."""
    decorate: Callable[[_F], _F] = function(cache="never")  # type: ignore[call-overload]
    return decorate(func)


def _fail(message: str) -> Exception:
    # FunctionError is the SDK's documented-in-code escape hatch for "show this message, not a traceback".
    from dagger.mod._exceptions import FunctionError

    return FunctionError(message)


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]


async def _values_files(values: dagger.Directory) -> dict[str, str]:
    names = await values.glob("**/*.yaml")
    return {name: await values.file(name).contents() for name in names}


async def _load_config(values: dagger.Directory, profile: str, overrides: list[str]) -> "Config":
    """The values as the core reads them (validation, capacity check included), before any cluster exists."""
    import tempfile
    from pathlib import Path

    from dbstack.moduleargs import write_values
    from dbstack.problems import InvalidInput
    from dbstack.validate import validate

    files = await _values_files(values)
    root = Path(tempfile.mkdtemp(prefix="dbstack-values-"))
    try:
        return validate(write_values(files, root), profile or None, overrides).config
    except InvalidInput as exc:
        raise _fail(_problems_message(exc.problems, root)) from None


def _problems_message(problems: "Sequence[object]", root: "Path") -> str:
    lines = [str(p).replace(f"{root}/", "values/") for p in problems]
    noun = "problem" if len(lines) == 1 else "problems"
    return "\n".join([*lines, f"{len(lines)} {noun} found in values; nothing was deployed."])


def _overrides(
    enable: list[str] | None,
    disable: list[str] | None,
    namespace: str,
    kubeblocks_version: str,
    chart_version: str,
    settings: list[str] | None,
) -> list[str]:
    from dbstack.moduleargs import settings_overrides
    from dbstack.problems import InvalidInput

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


async def _core_cli(command: str, values: dagger.Directory, profile: str, overrides: list[str]) -> str:
    """Run one of the core's commands (`dbstack validate`, `dbstack plan`) on the uploaded values."""
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    from dbstack import cli
    from dbstack.moduleargs import write_values
    from dbstack.problems import InvalidInput

    root = Path(tempfile.mkdtemp(prefix="dbstack-values-"))
    try:
        write_values(await _values_files(values), root)
    except InvalidInput as exc:
        raise _fail(_problems_message(exc.problems, root)) from None
    argv = [*command.split(), "--values", str(root)]
    argv += ["--profile", profile] if profile else []
    for override in overrides:
        argv += ["--set", override]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    if code != cli.EXIT_OK:
        raise _fail(err.getvalue().replace(f"{root}/", "values/").strip())
    return out.getvalue()


def _span(name: str) -> AbstractContextManager[Any]:
    from dagger.telemetry import get_tracer

    return get_tracer().start_as_current_span(name)


def _k3s_service(image: str, run_id: str) -> dagger.Service:
    """k3s as a Dagger service: a fresh cluster state each run, the image store kept in a cache volume."""
    from dbstack import k3s

    return (
        dag.container()
        .from_(image)
        .with_new_file(k3s.ENTRYPOINT_PATH, k3s.ENTRYPOINT_SCRIPT, permissions=0o755)
        .with_entrypoint([k3s.ENTRYPOINT_PATH])
        .with_mounted_cache(k3s.KUBECONFIG_DIR, dag.cache_volume("dbstack-k3s-kubeconfig"))
        # Not overlay: the nested containerd needs a real filesystem. PRIVATE: concurrent runs get their own copy.
        .with_mounted_cache(
            k3s.STATE_DIR, dag.cache_volume("dbstack-k3s-state"), sharing=dagger.CacheSharingMode.PRIVATE
        )
        .with_mounted_temp("/var/lib/kubelet")
        .with_mounted_temp("/var/log")
        .with_exposed_port(k3s.API_PORT)
        .as_service(args=k3s.server_args(run_id), use_entrypoint=True, insecure_root_capabilities=True)
    )


def _kubeconfig_file(toolbox_image: str, run_id: str, server: str) -> dagger.File:
    """Read the kubeconfig k3s wrote to the shared cache volume (never from the layer cache: a nonce per run)."""
    from dbstack import k3s

    out = "/tmp/kubeconfig"  # noqa: S108 - a path inside a throwaway container
    script = k3s.read_kubeconfig_script(run_id, out, KUBECONFIG_WAIT_S)
    if server:
        script += f" && sed -i 's#server: https://{k3s.API_ALIAS}:{k3s.API_PORT}#server: {server}#' {out}"
    return (
        dag.container()
        .from_(toolbox_image)
        .with_mounted_cache(k3s.KUBECONFIG_DIR, dag.cache_volume("dbstack-k3s-kubeconfig"))
        .with_env_variable("DBSTACK_RUN", run_id)
        .with_exec(["sh", "-c", script])
        .file(out)
    )


class _Run:
    """One deploy-and-test: the plan, the cluster access, and the report folder in the module's workdir."""

    def __init__(self, config: "Config", plan: "Plan", smoke_suite: dagger.Directory, run_id: str) -> None:
        from pathlib import Path

        self.config = config
        self.plan = plan
        self.smoke_suite = smoke_suite
        self.run_id = run_id
        self.out_name = f"{REPORTS_PREFIX}{run_id}"
        self.out_dir = Path.cwd() / self.out_name
        self.secrets: list[str] = []
        self.service: dagger.Service | None = None

    @property
    def toolbox_image(self) -> str:
        return self.config.images["toolbox"]

    async def toolbox(self, kubeconfig: dagger.Secret | None) -> dagger.Container:
        base = dag.container().from_(self.toolbox_image)
        if kubeconfig is not None:
            return base.with_mounted_secret(TOOLBOX_KUBECONFIG, kubeconfig).with_env_variable(
                "KUBECONFIG", TOOLBOX_KUBECONFIG
            )
        from dbstack import k3s

        with _span(f"Start k3s ({self.config.images['k3s']})"):
            self.service = _k3s_service(self.config.images["k3s"], self.run_id)
            self.service = await self.service.start()
        with _span("Read the k3s kubeconfig"):
            config_file = await _kubeconfig_file(self.toolbox_image, self.run_id, "").sync()
        return (
            base.with_service_binding(k3s.API_ALIAS, self.service)
            .with_file(TOOLBOX_KUBECONFIG, config_file)
            .with_env_variable("KUBECONFIG", TOOLBOX_KUBECONFIG)
        )

    async def stop(self) -> None:
        if self.service is not None:
            import contextlib

            with contextlib.suppress(dagger.QueryError):
                await self.service.stop()


async def _deploy_and_test(run: _Run, kubeconfig: dagger.Secret | None) -> "RunResults":
    import sys
    import time

    from dagger.telemetry import get_tracer
    from dbstack import k3s
    from dbstack.containerrunner import ContainerRunner
    from dbstack.orchestrator import new_results, run_plan
    from dbstack.progress import PlainProgress
    from dbstack.spanprogress import SpanProgress

    kind = "existing" if kubeconfig is not None else "k3s"
    started = time.time()
    runner: ContainerRunner | None = None
    try:
        toolbox = await run.toolbox(kubeconfig)
        runner = ContainerRunner(toolbox, span=_span)
        checks = k3s.reach_checks(60) if kubeconfig is not None else k3s.ready_checks(K3S_READY_TIMEOUT_S)
        cause = await _first_failure(runner, checks)
    except dagger.QueryError as exc:
        cause = f"the cluster did not start: {_first_line(str(exc))}"
    cluster = k3s.cluster_step(kind, started, time.time(), cause)
    if cause is not None or runner is None:
        results = new_results(run.plan, kind, started)
        if runner is not None:
            cluster.diagnostics = await _cluster_diagnostics(run, runner)
        results.ended_at = time.time()
    else:
        progress = SpanProgress(get_tracer().start_span, also=PlainProgress(sys.stderr))
        with _span("Deploy KubeBlocks and the databases"):
            results = await run_plan(run.plan, runner, run.out_dir, cluster_kind=kind, progress=progress)
        with _span("Smoke tests"):
            await _smoke(run, toolbox, results)
        results.ended_at = time.time()
    results.started_at = started
    results.steps.insert(0, cluster)
    return results


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


async def _first_failure(runner: "ContainerRunner", checks: "Sequence[ReadyCheck]") -> str | None:
    """Run the readiness checks in order; the first that fails is the cause (None when all pass)."""
    for check in checks:
        with _span(check.title):
            done = await runner.run(check.command, timeout_s=check.timeout_s)
        if not done.ok:
            reason = _first_line(done.stderr) or _first_line(done.stdout) or f"exit code {done.exit_code}"
            return f"{check.title}: {'timed out' if done.timed_out else reason}"
    return None


async def _cluster_diagnostics(run: _Run, runner: "ContainerRunner") -> list[str]:
    """What the cluster looked like when it failed to come up, as files under diagnostics/cluster/."""
    from dbstack import k3s

    folder = run.out_dir / "diagnostics" / k3s.CLUSTER_STEP_ID
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, command in k3s.CLUSTER_DIAGNOSTICS:
        done = await runner.run(command, timeout_s=30)
        (folder / name).write_text(done.stdout + done.stderr, encoding="utf-8")
        written.append(f"diagnostics/{k3s.CLUSTER_STEP_ID}/{name}")
    return written


async def _read_credentials(run: _Run, toolbox: dagger.Container, endpoint: "Endpoint") -> dict[str, object]:
    """The endpoint's account Secret as {variable: value}: username plain, password as a Dagger secret."""
    from dbstack import smokeenv

    contract = smokeenv.contract(endpoint)
    if endpoint.secret is None or contract.password is None:
        return {}
    folder = "/tmp/credentials"  # noqa: S108 - a path inside a throwaway container
    get = f"kubectl -n {endpoint.namespace} get secret {endpoint.secret}"
    script = (
        f"mkdir -p {folder} && "
        f"{get} -o jsonpath='{{.data.{smokeenv.USERNAME_KEY}}}' | base64 -d > {folder}/username && "
        f"{get} -o jsonpath='{{.data.{smokeenv.PASSWORD_KEY}}}' | base64 -d > {folder}/password"
    )
    with _span(f"Read the {endpoint.title} credentials from Secret {endpoint.secret}"):
        reader = await (
            toolbox.with_env_variable("DBSTACK_EXEC_NONCE", uuid.uuid4().hex)
            .with_exec(["sh", "-c", script], expect=dagger.ReturnType.ANY)
            .sync()
        )
        if await reader.exit_code() != 0:
            return {}
        password = await reader.file(f"{folder}/password").contents()
        secret = dag.set_secret(f"dbstack-{run.run_id}-{endpoint.database}-password", password)
        run.secrets.append(password)
        username = (await reader.file(f"{folder}/username").contents()).strip()
    found: dict[str, object] = {contract.password: secret}
    if contract.username:
        found[contract.username] = username
    return found


def _port_forward(toolbox: dagger.Container, endpoint: "Endpoint") -> dagger.Service:
    """The database's Service, forwarded from the cluster and reachable by the same short name ApeRAG uses."""
    return (
        toolbox.with_env_variable("DBSTACK_EXEC_NONCE", uuid.uuid4().hex)
        .with_exposed_port(endpoint.port)
        .as_service(
            args=[
                "kubectl",
                "port-forward",
                "--address=0.0.0.0",
                "-n",
                endpoint.namespace,
                f"svc/{endpoint.service}",
                f"{endpoint.port}:{endpoint.port}",
            ]
        )
    )


async def _smoke(run: _Run, toolbox: dagger.Container, results: "RunResults") -> None:
    import time

    from dbstack import smokeenv
    from dbstack.report import SmokeJunitError, attach_checks, parse_smoke_junit, smoke_outcome
    from dbstack.results import Outcome

    deployed_keys = {d.key for d in results.databases if d.outcome is Outcome.PASSED}
    endpoints = [e for e in run.plan.endpoints if e.database in deployed_keys]
    if not endpoints:
        results.smoke_cause = "no database was deployed, so the smoke suite did not run"
        return
    smoke = await _smoke_container(run)
    for endpoint in endpoints:
        smoke = smoke.with_service_binding(endpoint.service, _port_forward(toolbox, endpoint))
        for name, value in smokeenv.plain_variables(endpoint).items():
            smoke = smoke.with_env_variable(name, value)
        for name, credential in (await _read_credentials(run, toolbox, endpoint)).items():
            if isinstance(credential, dagger.Secret):
                smoke = smoke.with_secret_variable(name, credential)
            else:
                smoke = smoke.with_env_variable(name, str(credential))
    timeout_s = run.config.timeouts.smoke
    results.smoke_started_at = time.time()
    try:
        done = await (
            smoke.with_env_variable(smokeenv.SMOKE_REQUIRE, smokeenv.require_variable(endpoints))
            .with_env_variable("DBSTACK_EXEC_NONCE", uuid.uuid4().hex)
            .with_exec(
                [
                    "timeout",
                    str(timeout_s),
                    "python",
                    "-m",
                    "pytest",
                    "ci/smoke",
                    "-p",
                    "no:cacheprovider",
                    f"--junitxml={SMOKE_JUNIT}",
                    "-o",
                    "junit_family=xunit2",
                ],
                expect=dagger.ReturnType.ANY,
            )
            .sync()
        )
        exit_code = await done.exit_code()
        log = (await done.stdout()) + (await done.stderr())
        junit = await done.file(SMOKE_JUNIT).contents()
    except dagger.QueryError as exc:
        results.smoke_outcome = Outcome.FAILED
        results.smoke_cause = f"the smoke suite did not run: {_first_line(str(exc))}"
        results.smoke_ended_at = time.time()
        return
    results.smoke_ended_at = time.time()
    smoke_dir = run.out_dir / "smoke"
    smoke_dir.mkdir(parents=True, exist_ok=True)
    (smoke_dir / "pytest.log").write_text(log, encoding="utf-8")
    (smoke_dir / "junit.xml").write_text(junit, encoding="utf-8")
    try:
        checks = parse_smoke_junit(smoke_dir / "junit.xml")
    except SmokeJunitError as exc:
        results.smoke_outcome = Outcome.FAILED
        results.smoke_cause = str(exc)
        return
    leftover = attach_checks(results, checks)
    results.smoke_outcome = smoke_outcome(checks)
    if exit_code != 0 and results.smoke_outcome is not Outcome.FAILED:
        results.smoke_outcome = Outcome.FAILED
        results.smoke_cause = f"pytest exited with {exit_code}; see smoke/pytest.log"
    elif leftover:
        results.smoke_cause = f"{len(leftover)} checks belong to no deployed database"


async def _smoke_container(run: _Run) -> dagger.Container:
    """Pinned Python with the suite's locked dependencies; the install layer changes only with the lock file."""
    suite = run.smoke_suite
    return (
        dag.container()
        .from_(run.config.images["python"])
        .with_mounted_cache(PIP_CACHE, dag.cache_volume("dbstack-smoke-pip"))
        .with_workdir(SMOKE_WORKDIR)
        .with_file(f"{SMOKE_WORKDIR}/requirements.txt", suite.file("requirements.txt"))
        .with_exec(["pip", "install", "--disable-pip-version-check", "-r", "requirements.txt"])
        .with_directory(f"{SMOKE_WORKDIR}/ci/smoke", suite)
    )


@object_type
class Dbstack:
    """Stand up ApeRAG's databases with KubeBlocks on k3s in Dagger (or on your cluster) and prove they work."""

    @function
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
        return await _core_cli("validate", values, profile, overrides)

    @function
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
        json_output: Annotated[bool, Doc("print the documented JSON form instead of text"), Name("json")] = False,
    ) -> str:
        """Print the deployment plan: every step, command, wait condition and endpoint (a dry run)."""
        overrides = _overrides(enable, disable, namespace, kubeblocks_version, chart_version, settings)
        return await _core_cli("plan --json" if json_output else "plan", values, profile, overrides)

    @never_cached
    async def cluster(
        self,
        values: Values,
        profile: Profile = DEFAULT_PROFILE,
        name: ClusterName = DEFAULT_CLUSTER_NAME,
    ) -> dagger.Service:
        """The k3s service (API on 6443); `dagger call cluster up --ports 6443:6443` keeps one running."""
        config = await _load_config(values, profile, [])
        return _k3s_service(config.images["k3s"], name)

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
        """A kubeconfig for the k3s cluster of the same name (starts it when it is not running)."""
        config = await _load_config(values, profile, [])
        service = _k3s_service(config.images["k3s"], name)
        await service.start()
        return await _kubeconfig_file(config.images["toolbox"], name, server).sync()

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
        kubeconfig: Annotated[
            dagger.Secret | None,
            Doc("kubeconfig of an existing cluster to deploy to instead of k3s, e.g. file:$HOME/.kube/config"),
        ] = None,
    ) -> dagger.Directory:
        """Deploy and smoke-test everything; returns the reports (exit-code holds 0 or 1), also on failure."""
        from dbstack.plan import build_plan
        from dbstack.report import write_reports

        overrides = _overrides(enable, disable, namespace, kubeblocks_version, chart_version, settings)
        config = await _load_config(values, profile, overrides)
        run = _Run(config, build_plan(config), smoke_suite, _new_run_id())
        try:
            results = await _deploy_and_test(run, kubeconfig)
        finally:
            await run.stop()
        with _span("Write the reports"):
            write_reports(results, run.out_dir, run.secrets)
            (run.out_dir / EXIT_CODE_FILE).write_text("0\n" if results.passed else "1\n", encoding="utf-8")
        return dag.current_module().workdir(run.out_name)
