"""Stand-ins for the Dagger engine objects ci/pipeline.py builds on (`dag`, Container, Service, Secret, Directory,
File), so the module's functions run end to end offline: every exec and service start is recorded with what the
container held (image, environment, secret variables, bound services), and answered by a small simulated world.

The world: toolbox commands (`timeout N ...`) go to an Answer (the simulated cluster, with namespaces and the k3s
readiness on top, see `ClusterAnswer`); an account-Secret read writes the account's files from `accounts`; the smoke
suite's exec is answered by `standin_suite`, which logs in with the password it was handed and prints it bare (so
only the pipeline's masking of the passwords it read can hide it). Its marker phases write, read back and remove
marker ids in the simulated cluster's own store (the one its Backups copy and its restored Clusters get), found
through the forward the exec was bound to. Engine failures are switches on `Engine`.

Like the Dagger 0.21 engine: execs are lazy until `sync` (or a file read), an exit code the exec's `expect` does not
accept raises dagger.ExecError, and 128-191 raise whatever `expect` says (fake_toolbox.accepted_exits).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dagger
import trio
import yaml
from dbstack.plan.model import Command
from dbstack.run.runner import CommandResult
from dbstack.sim.cluster import SimCluster
from fake_toolbox import BUSYBOX_TIMEOUT_EXIT, accepted_exits, exec_error

CREDENTIALS = "/run/dbstack-credentials"
STATUS = "/reports/smoke-exit"
JUNIT = "/reports/smoke-junit.xml"
KUBECONFIG_OUT = "/tmp/kubeconfig"


@dataclass(frozen=True)
class Secret:
    name: str
    plaintext: str


@dataclass
class CacheVolume:
    name: str
    sharing: object = None
    """How a container mounts it (None: the engine's default)."""


@dataclass
class Directory:
    """An uploaded folder (`root`) or one the module builds file by file (`files`)."""

    root: Path | None = None
    files: dict[str, str] = field(default_factory=dict)

    async def glob(self, pattern: str) -> list[str]:
        assert self.root is not None
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern) if p.is_file())

    def file(self, path: str) -> File:
        if self.root is not None:
            return File(text=(self.root / path).read_text(encoding="utf-8"))
        return File(text=self.files[path])

    def with_new_file(self, path: str, contents: str) -> Directory:
        return Directory(self.root, {**self.files, path: contents})


@dataclass
class File:
    """A file's text, or a file an exec leaves in `container` (read once its execs have run)."""

    text: str | None = None
    container: Container | None = None
    path: str = ""
    permissions: int | None = None
    """As a container holds it (None: the engine's default)."""

    async def sync(self) -> File:
        await self.contents()
        return self

    async def contents(self) -> str:
        if self.text is not None:
            return self.text
        assert self.container is not None
        done = await self.container.sync()
        if self.path not in done.outputs:
            raise _query_error(f"lstat {self.path}: no such file or directory")
        return done.outputs[self.path]


@dataclass
class Exec:
    """One exec as the engine ran it, with everything its container held."""

    image: str
    argv: list[str]
    stdin: str | None
    env: dict[str, str]
    secrets: dict[str, Secret]
    bindings: dict[str, Service]
    mounts: dict[str, object]


@dataclass
class Service:
    engine: Engine
    image: str
    args: list[str]
    ports: tuple[int, ...]
    env: dict[str, str]
    options: dict[str, object]
    mounts: dict[str, object]
    starts: int = 0
    stops: int = 0

    @property
    def forwards(self) -> str | None:
        """The Kubernetes Service a port-forward service forwards to (None for k3s)."""
        found = re.search(r"svc/([a-z0-9-]+) ", " ".join(self.args))
        return found.group(1) if found else None

    @property
    def namespace(self) -> str | None:
        """The namespace of the Service a port-forward service forwards to (None for k3s)."""
        found = re.search(r" -n ([a-z0-9-]+) svc/", " ".join(self.args))
        return found.group(1) if found else None

    async def start(self) -> Service:
        self.starts += 1
        self.engine.events.append(f"start {self.forwards or self.image}")
        error = self.engine.start_errors.get(self.forwards or self.image)
        if error is not None:
            raise error
        exited = self.engine.start_exits.get(self.forwards or self.image)
        if exited is not None:  # its process ended before its port answered: an ExecError for its own command
            raise exec_error(self.args, exited)
        if (self.forwards or self.image) in self.engine.hangs:
            await trio.sleep_forever()
        return self

    async def stop(self) -> Service:
        self.stops += 1
        self.engine.events.append(f"stop {self.forwards or self.image}")
        error = self.engine.stop_errors.get(self.forwards or self.image)
        if error is not None:
            raise error
        if (self.forwards or self.image) in self.engine.stop_hangs:
            await trio.sleep_forever()
        return self


@dataclass(frozen=True)
class Done:
    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]


@dataclass(frozen=True)
class Container:
    engine: Engine
    image: str = ""
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, Secret], ...] = ()
    bindings: tuple[tuple[str, Service], ...] = ()
    mounts: tuple[tuple[str, object], ...] = ()
    ports: tuple[int, ...] = ()
    pending: tuple[tuple[list[str], str | None, Any], ...] = ()
    done: Done | None = None

    def _add(self, name: str, key: str, value: object) -> Container:
        kept = tuple((k, v) for k, v in getattr(self, name) if k != key)
        changes: dict[str, Any] = {name: (*kept, (key, value))}
        return replace(self, **changes)

    def from_(self, address: str) -> Container:
        return replace(self, image=address)

    def with_env_variable(self, name: str, value: str) -> Container:
        return self._add("env", name, value)

    def with_secret_variable(self, name: str, secret: Secret) -> Container:
        return self._add("secrets", name, secret)

    def with_service_binding(self, alias: str, service: Service) -> Container:
        return self._add("bindings", alias, service)

    def with_new_file(self, path: str, contents: str, permissions: int | None = None) -> Container:
        return self._add("mounts", path, File(text=contents, permissions=permissions))

    def with_file(self, path: str, source: File, permissions: int | None = None) -> Container:
        return self._add("mounts", path, replace(source, permissions=permissions))

    def with_mounted_secret(self, path: str, source: Secret) -> Container:
        return self._add("mounts", path, source)

    def with_mounted_cache(self, path: str, cache: CacheVolume, sharing: object = None) -> Container:
        return self._add("mounts", path, replace(cache, sharing=sharing))

    def with_mounted_temp(self, path: str) -> Container:
        return self._add("mounts", path, "tmpfs")

    def with_directory(self, path: str, directory: Directory) -> Container:
        return self._add("mounts", path, directory)

    def with_workdir(self, path: str) -> Container:
        return self._add("env", "(workdir)", path)

    def with_entrypoint(self, args: list[str]) -> Container:
        return self._add("env", "(entrypoint)", " ".join(args))

    def with_exposed_port(self, port: int) -> Container:
        return replace(self, ports=(*self.ports, port))

    def as_service(self, *, args: list[str] | None = None, **options: object) -> Service:
        service = Service(
            self.engine, self.image, list(args or []), self.ports, dict(self.env), options, dict(self.mounts)
        )
        self.engine.services.append(service)
        return service

    def with_exec(self, args: list[str], *, stdin: str | None = "", expect: Any = None) -> Container:
        return replace(self, pending=(*self.pending, (list(args), stdin, expect)), done=None)

    async def sync(self) -> Container:
        container = self
        for argv, stdin, expect in self.pending:
            run = Exec(
                container.image,
                argv,
                stdin or None,
                dict(container.env),
                dict(container.secrets),
                dict(container.bindings),
                dict(container.mounts),
            )
            self.engine.execs.append(run)
            done = await self.engine.run(run)
            if done.exit_code not in accepted_exits(expect):
                raise exec_error(argv, CommandResult(done.exit_code, done.stdout, done.stderr))
            container = replace(container, done=done)
        return replace(container, pending=())

    def _result(self) -> Done:
        assert self.done is not None and not self.pending, "output read before sync"
        return self.done

    @property
    def outputs(self) -> dict[str, str]:
        return self._result().outputs

    async def exit_code(self) -> int:
        return self._result().exit_code

    async def stdout(self) -> str:
        return self._result().stdout

    async def stderr(self) -> str:
        return self._result().stderr

    def file(self, path: str) -> File:
        return File(container=self, path=path)


@dataclass
class Dag:
    """The module's `dag`: everything it asks the engine for goes to `engine`."""

    engine: Engine

    def container(self) -> Container:
        return Container(self.engine)

    def cache_volume(self, key: str) -> CacheVolume:
        return CacheVolume(key)

    def set_secret(self, name: str, plaintext: str) -> Secret:
        secret = Secret(name, plaintext)
        self.engine.set_secrets.append(secret)
        return secret

    def directory(self) -> Directory:
        return Directory()

    def current_module(self) -> CurrentModule:
        return CurrentModule(self.engine)


@dataclass
class CurrentModule:
    """`dag.current_module()`: its `workdir` reads the module's scratch working directory."""

    engine: Engine

    def workdir(self, path: str) -> Directory:
        assert self.engine.workdir is not None, "this engine gives the module no scratch working directory"
        return Directory(self.engine.workdir / path)


Answer = Callable[[Command, float], Any]
Suite = Callable[["Engine", Exec], Done]


@dataclass
class Engine:
    answer: Answer
    """What toolbox commands (`timeout N argv`) get."""
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Account Secret name -> (username, password) in the cluster."""
    suite: Suite | None = None
    start_errors: dict[str, dagger.QueryError] = field(default_factory=dict)
    """Service (k3s image, or the Kubernetes Service a forward reaches) -> the engine's error starting it."""
    exec_errors: dict[str, dagger.DaggerError] = field(default_factory=dict)
    """A fragment of an exec's command line -> the engine's error for that exec (a lost connection too)."""
    start_exits: dict[str, CommandResult] = field(default_factory=dict)
    """Services (as in `start_errors`) whose process ends with this result before their port answers."""
    hangs: set[str] = field(default_factory=set)
    """Services (as in `start_errors`) and fragments of exec command lines the engine never answers."""
    drops: set[str] = field(default_factory=set)
    """Services (as in `start_errors`) that exit while an exec bound to them runs, which fails that exec."""
    stop_errors: dict[str, dagger.DaggerError] = field(default_factory=dict)
    """Services (as in `start_errors`) -> the engine's error stopping them."""
    stop_hangs: set[str] = field(default_factory=set)
    """Services (as in `start_errors`) whose stop the engine never answers."""
    workdir: Path | None = None
    """The module's scratch working directory, as Dagger's runtime gives it (None: there is none)."""
    execs: list[Exec] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    set_secrets: list[Secret] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def toolbox_commands(self) -> list[tuple[str, ...]]:
        """Every command the toolbox ran through ContainerRunner, without its `timeout N`."""
        return [tuple(e.argv[2:]) for e in self.execs if e.argv[0] == "timeout" and "base64 -d" not in e.argv[-1]]

    async def run(self, run: Exec) -> Done:
        line = shlex.join(run.argv)
        for fragment, error in self.exec_errors.items():
            if fragment in line:
                raise error
        if any(fragment in line for fragment in self.hangs):
            await trio.sleep_forever()
        for alias, service in run.bindings.items():
            if (service.forwards or service.image) in self.drops:
                raise _query_error(f"bound service {alias} exited: exit code 1")
        if run.argv[0] == "timeout" and "base64 -d" in line:
            return self._read_account(run.argv[-1])
        if run.argv[0] == "timeout":
            return await self._toolbox(run)
        if run.argv[:2] == ["sh", "-c"] and "wrote no kubeconfig" in run.argv[2]:
            return Done(0, "", "", {KUBECONFIG_OUT: "apiVersion: v1\nkind: Config\n"})
        if run.argv[0] == "pip":
            return Done(0, "Successfully installed pytest\n", "", {})
        if run.argv[:2] == ["sh", "-c"] and STATUS in run.argv[2]:
            assert self.suite is not None, "no smoke suite stand-in"
            return self.suite(self, run)
        raise AssertionError(f"no stand-in for exec {line}")

    def _read_account(self, script: str) -> Done:
        found = re.search(r"get secret (\S+) -o name", script)
        assert found is not None, script
        account = self.accounts.get(found.group(1))
        if account is None:
            return Done(1, "", f'Error from server (NotFound): secrets "{found.group(1)}" not found', {})
        user, password = account
        return Done(0, "", "", {f"{CREDENTIALS}/username": user, f"{CREDENTIALS}/password": password})

    async def _toolbox(self, run: Exec) -> Done:
        limit = float(run.argv[1])
        command = Command(tuple(run.argv[2:]), run.stdin)
        with trio.move_on_after(limit) as cut:
            result: CommandResult = await self.answer(command, limit)
        if cut.cancelled_caught or result.timed_out:
            return Done(BUSYBOX_TIMEOUT_EXIT, result.stdout if not cut.cancelled_caught else "", "", {})
        return Done(result.exit_code, result.stdout, result.stderr, {})


def _query_error(message: str) -> dagger.QueryError:
    from fake_toolbox import query_error

    return query_error(message, {})


# --- the smoke suite --------------------------------------------------------------------------------------------

LOGIN = {
    "postgresql": ("POSTGRES_HOST", "POSTGRES_PASSWORD"),
    "redis": ("REDIS_HOST", "REDIS_PASSWORD"),
    "qdrant": ("QDRANT_URL", None),
    "elasticsearch": ("ES_HOST_NAME", "ES_PASSWORD"),
}
"""What the stand-in suite reads to reach each database: the host variable, the password variable."""


MISSING = {
    "postgresql": "table public.dbstack_marker_{id} is missing",
    "redis": "DB 0 key dbstack-marker:{id}:queue is missing; DB 1 key dbstack-marker:{id}:string is missing",
    "qdrant": "collection dbstack_marker_{id} is missing",
    "elasticsearch": "index dbstack-marker-{id} is missing",
}
"""What the suite's marker check says (smokekit.markers) when a database holds none of the markers."""


def standin_suite(failing: frozenset[str] = frozenset()) -> Suite:
    """A suite that, for every database in SMOKE_REQUIRE, finds its host bound to a started forward and logs in
    with the password it was handed (the account's, from `engine.accounts`); it prints that password bare, as a
    careless driver would. With SMOKE_MARKERS it runs each database's marker check instead, on the markers the
    simulated cluster holds behind that forward (`ClusterAnswer.markers_behind`). `failing`: databases whose check
    fails anyway."""

    def suite(engine: Engine, run: Exec) -> Done:
        phase = run.env.get("SMOKE_MARKERS")
        passwords = {password for _, password in engine.accounts.values()}
        cases, log = [], []
        for database in filter(None, run.env["SMOKE_REQUIRE"].split(",")):
            host_variable, password_variable = LOGIN[database]
            host = re.sub(r"^https?://|:\d+$", "", run.env.get(host_variable, ""))
            forward = run.bindings.get(host)
            problem = None
            if forward is None or forward.starts == 0 or forward.forwards != host:
                problem = f"cannot resolve {host!r}"
            elif password_variable is not None:
                secret = run.secrets.get(password_variable)
                said = secret.plaintext if secret else ""
                log.append(f"{database}: logging in to {host} with {said}")
                if said not in passwords or database in failing:
                    problem = f"authentication failed using {said}"
            if problem is None and forward is not None and phase is not None:
                problem = _marker_phase(engine, forward, database, phase, run.env["SMOKE_MARKER_ID"])
            name = f"test_markers[{phase}]" if phase else "test_roundtrip"
            failure = f'<failure message="{problem}">{problem}</failure>' if problem else ""
            cases.append(
                f'<testcase classname="ci.smoke.test_{database}" name="{name}" time="1.0">{failure}</testcase>'
            )
        junit = f'<testsuites><testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>'
        code = 1 if any("<failure" in c for c in cases) else 0
        return Done(0, "\n".join(log) + "\n", "", {STATUS: f"{code} 12\n", JUNIT: junit})

    return suite


def _marker_phase(engine: Engine, forward: Service, database: str, phase: str, marker: str) -> str | None:
    """One database's marker check, as the suite does it; the problem it reports, if any."""
    assert isinstance(engine.answer, ClusterAnswer), "marker phases need the simulated cluster"
    held = engine.answer.markers_behind(forward)
    if held is None:
        return f"cannot reach svc/{forward.forwards}: its pod is not running"
    if phase == "write":
        held.add(marker)
    elif phase == "clean":
        held.discard(marker)
    elif marker not in held:
        return f"{database} markers {marker} do not read back as written: {MISSING[database].format(id=marker)}"
    return None


# --- the cluster the toolbox talks to ----------------------------------------------------------------------------

PREVIEW_KINDS = {"Namespace", "RoleBinding", "List"}
"""What previews apply that the simulator does not model (it applies the backup stage's objects itself)."""
KUBECONFIG_VIEW = json.dumps({"users": [{"name": "preview", "user": {"token": "REDACTED"}}]})


@dataclass
class ClusterAnswer:
    """The simulated cluster, with what it does not model on top: k3s's readiness (it is up at once), the kubeconfig
    view, and namespaces with their labels (for previews)."""

    sim: SimCluster
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    """Namespace -> labels."""
    applied: list[dict[str, Any]] = field(default_factory=list)
    wiped_by_upgrade: set[str] = field(default_factory=set)
    """Releases whose in-place upgrade loses the data their Cluster held (the markers with it)."""

    def markers_behind(self, forward: Service) -> set[str] | None:
        """The markers the Cluster behind a port-forward holds (KubeBlocks names its Services `<cluster>-...`);
        None when it cannot be reached (no such Cluster, or not Running)."""
        service, namespace = forward.forwards or "", forward.namespace or ""
        owners = [name for name in self.sim.live("cluster") if service.startswith(f"{name}-")]
        return self.sim.backups.markers_of(namespace, max(owners, key=len)) if owners else None

    async def __call__(self, command: Command, timeout_s: float) -> CommandResult:
        argv = list(command.argv)
        match argv:
            case ["helm", "upgrade", "--install", release, *rest] if (
                release in self.wiped_by_upgrade and release in self.sim.live("cluster")
            ):
                self.sim.backups.markers.pop((rest[rest.index("-n") + 1], release), None)
            case ["sh", "-c", script] if script.startswith("until kubectl get"):
                return CommandResult(0, "", "")
            case ["kubectl", "wait", "node", "--all", "--for=condition=Ready", _]:
                return CommandResult(0, "node/k3s condition met\n", "")
            case ["kubectl", "-n", "kube-system", ("wait" | "rollout"), *_]:
                return CommandResult(0, "", "")
            case ["kubectl", "get", ("crd" | "clusterdefinition.apps.kubeblocks.io") as kind, *names, "-o", "json", _]:
                # The simulator prints these reads as tables: the platform check's JSON is made from what it holds.
                await self.sim.run(command, timeout_s=timeout_s)
                live = set(self.sim.live("crd" if kind == "crd" else "clusterdefinition"))
                items = [
                    {"metadata": {"name": n, "labels": {"helm.sh/chart": f"{n}-1.0.1"}}} for n in names if n in live
                ]
                if kind == "crd":
                    return CommandResult(0, json.dumps({"kind": "List", "items": items}), "")
                return CommandResult(0, json.dumps(items[0]) if items else "", "")
            case ["kubectl", "-n", _, "get", "deployment", _, "-o", "json", "--ignore-not-found"]:
                found = await self.sim.run(command, timeout_s=timeout_s)  # its Deployments carry no status
                deployment = json.loads(found.stdout or "null")
                if deployment is None:
                    return found
                return CommandResult(0, json.dumps(deployment | {"status": {"availableReplicas": 1}}), "")
            case ["kubectl", "version", _]:
                return CommandResult(0, "Client Version: v1.31.4\nServer Version: v1.31.5+k3s1\n", "")
            case ["kubectl", "config", "view", "--minify", "-o", "json"]:
                return CommandResult(0, KUBECONFIG_VIEW, "")
            case ["kubectl", "get", "namespace", name, "-o", "json", "--ignore-not-found"]:
                return CommandResult(0, json.dumps(self._namespace(name)) if name in self.namespaces else "", "")
            case ["kubectl", "get", "namespace", name, "-o", "yaml", "--ignore-not-found"]:
                return CommandResult(0, yaml.safe_dump(self._namespace(name)) if name in self.namespaces else "", "")
            case ["kubectl", "get", "namespaces", "-l", label, "-o", "json"]:
                items = [self._namespace(n) for n, labels in sorted(self.namespaces.items()) if label in labels]
                return CommandResult(0, json.dumps({"kind": "List", "items": items}), "")
            case ["kubectl", "apply", "-f", "-"] if _kind(command.stdin) in PREVIEW_KINDS:
                manifest = json.loads(command.stdin or "{}")
                self.applied.append(manifest)
                if manifest["kind"] == "Namespace":
                    name = manifest["metadata"]["name"]
                    self.namespaces[name] = {**self.namespaces.get(name, {}), **manifest["metadata"]["labels"]}
                return CommandResult(0, "configured\n", "")
            case ["kubectl", "label", "namespace", name, *labels]:
                for label in (a for a in labels if a != "--overwrite"):
                    key, eq, value = label.partition("=")
                    if eq:
                        self.namespaces[name][key] = value
                    else:
                        self.namespaces[name].pop(key.removesuffix("-"), None)
                return CommandResult(0, f"namespace/{name} labeled\n", "")
            case ["helm", "list", "-n", name, "--all", "-o", "json"]:  # from the simulator's table of every release
                table = await self.sim.run(Command(("helm", "list", "-A")), timeout_s=timeout_s)
                rows = sorted(line.split("\t") for line in table.stdout.splitlines()[1:] if line)  # helm sorts by name
                releases = [{"name": row[0], "namespace": row[1], "status": row[4]} for row in rows if row[1] == name]
                return CommandResult(0, json.dumps(releases), "")
            case ["kubectl", "delete", "namespace", name, "--ignore-not-found", _]:
                self.namespaces.pop(name, None)
                return CommandResult(0, f'namespace "{name}" deleted\n', "")
        return await self.sim.run(command, timeout_s=timeout_s)

    def _namespace(self, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": self.namespaces[name]}, "status": {"phase": "Active"}}


def _kind(manifest: str | None) -> str | None:
    """The kind of a manifest sent on stdin (its first document's)."""
    loaded = next(yaml.safe_load_all(manifest or ""), None)
    return loaded.get("kind") if isinstance(loaded, dict) else None
