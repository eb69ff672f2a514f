"""The smoke suite as the pipeline runs it: its environment contract, its command, and its outcome in Results.

The contract is one table: what each endpoint becomes in the smoke container's environment, and which keys of
its KubeBlocks account Secret it needs. The names are the ones ApeRAG's pods receive (see
ci/smoke/smokekit/settings.py). Values are templates over the endpoint: {service} (the short Service name the
smoke container reaches it by), {port}, {namespace}.
"""

# ruff: noqa: S105, S106 - the "passwords" here are the names of environment variables and Secret keys.

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dbstack.config.load import Config
from dbstack.plan.model import Endpoint
from dbstack.run.results import CheckResult, Outcome, RunResults
from dbstack.run.smoke_junit import (
    SmokeJunitError,
    attach_checks,
    parse_smoke_junit,
    parse_smoke_warnings,
    smoke_outcome,
)

SMOKE_REQUIRE = "SMOKE_REQUIRE"
SMOKE_REQUIRE_IK = "SMOKE_REQUIRE_IK"
SMOKE_MARKERS = "SMOKE_MARKERS"
SMOKE_MARKER_ID = "SMOKE_MARKER_ID"
MARKER_PHASES = ("write", "verify", "clean")
"""What the suite's marker check does (ci/smoke/smokekit/markers.py): write the markers, read them back and compare,
or remove them."""
MARKER_CHECK = "test_markers"
MARKER_ID = re.compile(r"^[a-z0-9]{1,20}$")
"""The suite's rule (smokekit.markers.MARKER_ID): short enough for every database's names."""
TIMEOUT_EXIT = 124
KILLED_EXITS = (137, 143)
"""busybox `timeout` ends the command with SIGTERM/SIGKILL instead of exiting 124."""
SMOKE_INTERRUPT_GRACE_S = 30
"""Seconds pytest gets after SIGINT at its limit before `timeout` kills it."""
ACCOUNT_READ_TIMEOUT_S = 60
"""The limit for reading one account Secret: a wedged API server must not hang the run until the CI job's limit."""
KUBECTL_REQUEST_TIMEOUT = "--request-timeout=20s"
USERNAME_KEY = "username"
PASSWORD_KEY = "password"


@dataclass(frozen=True)
class SmokeContract:
    plain: Mapping[str, str]
    """Variable -> template over the endpoint."""
    username: str | None = None
    """Variable that receives the Secret's `username` (not secret: a plain variable, so Dagger does not scrub
    every occurrence of words like "postgres" from the logs)."""
    password: str | None = None
    """Variable that receives the Secret's `password`, passed only as a Dagger secret."""


CONTRACTS: dict[str, SmokeContract] = {
    "postgresql": SmokeContract(
        {"POSTGRES_HOST": "{service}", "POSTGRES_PORT": "{port}", "POSTGRES_DB": "postgres"},
        username="POSTGRES_USER",
        password="POSTGRES_PASSWORD",
    ),
    "redis": SmokeContract(
        {"REDIS_HOST": "{service}", "REDIS_PORT": "{port}"}, username="REDIS_USER", password="REDIS_PASSWORD"
    ),
    # ApeRAG reads VECTOR_DB_CONTEXT (its deploy values: url, port, distance, timeout); QDRANT_URL is the suite's
    # fallback. The timeout is the smoke run's, not ApeRAG's 1000 s: a hung server must fail within the run.
    "qdrant": SmokeContract(
        {
            "VECTOR_DB_CONTEXT": '{{"url": "http://{service}", "port": {port}, "distance": "Cosine", "timeout": 30}}',
            "QDRANT_URL": "http://{service}:{port}",
        }
    ),
    "elasticsearch": SmokeContract(
        {"ES_HOST_NAME": "{service}", "ES_PORT": "{port}", "ES_PROTOCOL": "http"},
        username="ES_USER",
        password="ES_PASSWORD",
    ),
    "neo4j": SmokeContract(
        {"NEO4J_URI": "bolt://{service}:{port}"}, username="NEO4J_USERNAME", password="NEO4J_PASSWORD"
    ),
}


def contract(endpoint: Endpoint) -> SmokeContract:
    try:
        return CONTRACTS[endpoint.database]
    except KeyError:
        raise KeyError(f"no smoke environment contract for database {endpoint.database!r}") from None


def plain_variables(endpoint: Endpoint) -> dict[str, str]:
    fields = {"service": endpoint.service, "port": str(endpoint.port), "namespace": endpoint.namespace}
    return {name: template.format(**fields) for name, template in contract(endpoint).plain.items()}


def require_variable(endpoints: Sequence[Endpoint]) -> str:
    """SMOKE_REQUIRE: every deployed database must pass; none may be skipped for want of settings."""
    return ",".join(e.database for e in endpoints)


def suite_variables(endpoints: Sequence[Endpoint], config: Config) -> dict[str, str]:
    """What the whole suite is told: which databases must pass, and whether a missing IK plugin fails the
    Elasticsearch checks (`smoke.requireIkPlugin`) instead of skipping them."""
    return {
        SMOKE_REQUIRE: require_variable(endpoints),
        SMOKE_REQUIRE_IK: "1" if config.smoke_require_ik else "0",
    }


def read_account_script(endpoint: Endpoint, folder: str) -> str:
    """Decode the account Secret's username and password into files under `folder`, printing nothing.

    Exits non-zero when the Secret is missing (checked first: without pipefail a failed `kubectl get` would
    decode to an empty password)."""
    if endpoint.secret is None:
        raise ValueError(f"{endpoint.database} has no account Secret")
    get = ["kubectl", KUBECTL_REQUEST_TIMEOUT, "-n", endpoint.namespace, "get", "secret", endpoint.secret]
    steps = [shlex.join([*get, "-o", "name"]) + " > /dev/null", shlex.join(["mkdir", "-p", folder])]
    for key in (USERNAME_KEY, PASSWORD_KEY):
        jsonpath = f"jsonpath={{.data.{key}}}"
        target = shlex.quote(f"{folder}/{key}")
        steps.append(f"{shlex.join([*get, '-o', jsonpath])} | base64 -d > {target}")
    return " && ".join(steps)


def read_account_argv(endpoint: Endpoint, folder: str) -> list[str]:
    """`read_account_script` under `timeout`: the exec ends after ACCOUNT_READ_TIMEOUT_S whatever kubectl does."""
    return ["timeout", str(ACCOUNT_READ_TIMEOUT_S), "sh", "-c", read_account_script(endpoint, folder)]


def account_read_timed_out(exit_code: int) -> bool:
    return exit_code == TIMEOUT_EXIT or exit_code in KILLED_EXITS


def account_timeout_cause(endpoint: Endpoint) -> str:
    """Why a database was not smoke-tested when its account Secret could not be read in time."""
    return (
        f"reading {endpoint.database}'s account Secret {endpoint.secret} got no answer "
        f"within {ACCOUNT_READ_TIMEOUT_S} s (is the API server answering?)"
    )


def smoke_command(junit_path: str, timeout_s: int) -> list[str]:
    """pytest over the suite, its JUnit file where the pipeline reads it, stopped by `timeout` at the limit with
    SIGINT, on which pytest still writes the JUnit file of the checks that finished (SIGKILL follows after
    SMOKE_INTERRUPT_GRACE_S)."""
    return [
        "timeout",
        "-s",
        "INT",
        "-k",
        str(SMOKE_INTERRUPT_GRACE_S),
        str(timeout_s),
        "python",
        "-m",
        "pytest",
        "ci/smoke",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit_path}",
        "-o",
        "junit_family=xunit2",
    ]


def deployed_endpoints(endpoints: Sequence[Endpoint], results: RunResults) -> list[Endpoint]:
    """Only databases that reached Running are smoke-tested; the others already failed in their own step."""
    running = {d.key for d in results.databases if d.outcome is Outcome.PASSED}
    return [e for e in endpoints if e.database in running]


def record_smoke(results: RunResults, exit_code: int, junit: Path) -> None:
    """Put the suite's checks on their databases and its outcome on the run.

    Failed when any check failed, when pytest exited non-zero without a failed check (a collection error, the
    time limit), or when the JUnit file is unreadable."""
    try:
        checks = parse_smoke_junit(junit)
    except SmokeJunitError as exc:
        results.smoke_outcome = Outcome.FAILED
        results.smoke_cause = f"pytest exited with {exit_code} and left no usable JUnit file: {exc}"
        return
    leftover = attach_checks(results, checks)
    warnings = parse_smoke_warnings(junit)
    for database in results.databases:
        database.warnings = warnings.get(database.key, [])
    results.smoke_outcome = smoke_outcome(checks)
    if exit_code != 0 and results.smoke_outcome is not Outcome.FAILED:
        results.smoke_outcome = Outcome.FAILED
        limit = " (the time limit)" if exit_code == TIMEOUT_EXIT else ""
        results.smoke_cause = f"pytest exited with {exit_code}{limit}; see smoke/pytest.log"
    elif leftover:
        names = ", ".join(sorted({c.database for c in leftover}))
        results.smoke_cause = f"{len(leftover)} checks belong to no deployed database ({names})"


# --- marker phases: the suite's marker check alone, per database ------------------------------------------------


def marker_id(token: str) -> str:
    """A marker id from a run's id: `m` and its first 19 lowercase letters and digits."""
    return "m" + re.sub(r"[^a-z0-9]", "", token.lower())[:19]


def marker_variables(phase: str, marker: str) -> dict[str, str]:
    """SMOKE_MARKERS and SMOKE_MARKER_ID: the suite then runs only each database's marker check."""
    if phase not in MARKER_PHASES:
        raise ValueError(f"{phase!r} is not a marker phase ({', '.join(MARKER_PHASES)})")
    if not MARKER_ID.fullmatch(marker):
        raise ValueError(f"marker id {marker!r} must be 1-20 lowercase letters or digits")
    return {SMOKE_MARKERS: phase, SMOKE_MARKER_ID: marker}


def marker_environment(endpoints: Sequence[Endpoint], config: Config, phase: str, marker: str) -> dict[str, str]:
    """Everything a marker phase is told beyond each endpoint's contract: every database given must answer
    (SMOKE_REQUIRE), and which phase of which markers to run."""
    return suite_variables(endpoints, config) | marker_variables(phase, marker)


def marker_command(junit_path: str, timeout_s: int, databases: Sequence[str]) -> list[str]:
    """`smoke_command` limited to the given databases' checks (`-m postgresql or redis`); with SMOKE_MARKERS set, the
    suite collects only their marker checks."""
    if not databases:
        raise ValueError("a marker phase needs at least one database")
    return [*smoke_command(junit_path, timeout_s), "-m", " or ".join(databases)]


def marker_check_name(phase: str, context: str | None = None) -> str:
    """`test_markers[verify]`, and what it ran against when that is not the deployed cluster: `... (restored x)`."""
    name = f"{MARKER_CHECK}[{phase}]"
    return f"{name} ({context})" if context else name


def read_markers(
    phase: str, databases: Sequence[str], exit_code: int, junit: Path, context: str | None = None
) -> dict[str, CheckResult]:
    """Each database's marker check from the phase's JUnit file, by database, named `marker_check_name`. A database
    whose check is not in the file (pytest stopped first, or left no file) gets a failed check saying so."""
    name = marker_check_name(phase, context)
    try:
        checks = parse_smoke_junit(junit)
        missing = f"pytest exited with {exit_code} before the check ran"
    except SmokeJunitError as exc:
        checks = []
        missing = f"pytest exited with {exit_code} and left no usable JUnit file: {exc}"
    if exit_code == TIMEOUT_EXIT:
        missing = f"{missing} (the time limit)"
    found: dict[str, CheckResult] = {}
    for check in checks:
        if check.database in databases and check.name.startswith(f"{MARKER_CHECK}["):
            found[check.database] = CheckResult(check.database, name, check.outcome, check.duration_s, check.message)
    for database in databases:
        found.setdefault(database, CheckResult(database, name, Outcome.FAILED, message=missing))
    return found


def record_markers(
    results: RunResults,
    phase: str,
    databases: Sequence[str],
    exit_code: int,
    junit: Path,
    context: str | None = None,
) -> dict[str, CheckResult]:
    """`read_markers`, with each check added to its database's checks in `results` (beside the smoke suite's)."""
    found = read_markers(phase, databases, exit_code, junit, context)
    for database in results.databases:
        if database.key in found:
            database.checks.append(found[database.key])
    return found
