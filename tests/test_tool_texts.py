"""Reading what kubectl and helm really print: causes skip warnings and klog lines, transient errors are known by
their real wording, Helm's ownership refusals name the owner, and a stuck release's history says what frees it.

Every sample is worded as the named upstream source prints it (see docs/orchestrator.md, "What the tools print")."""

from __future__ import annotations

import json

import pytest
from dbstack.plan.build import HELM_RACES
from dbstack.plan.model import Command
from dbstack.run.helmstate import helm_target, ownership_conflict, parse_history, stuck_release
from dbstack.run.kube import current_spec_conditions, is_transient
from dbstack.text import first_line

GROUP_READABLE = (
    "WARNING: Kubernetes configuration file is group-readable. This is insecure. Location: /root/.kube/config"
)
KLOG_1_31 = (
    'E0923 14:13:20.123456   48213 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group '
    'list: Get \\"https://127.0.0.1:6443/api?timeout=32s\\": dial tcp 127.0.0.1:6443: connect: connection refused" '
    'logger="UnhandledError"'
)
KLOG_1_29 = (
    "E0923 14:13:20.123456   48213 memcache.go:265] couldn't get current server API group list: Get "
    '"https://127.0.0.1:6443/api?timeout=32s": dial tcp 127.0.0.1:6443: connect: connection refused'
)
REFUSED = "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"


@pytest.mark.parametrize(
    ("output", "cause"),
    [
        # cmd/helm/helm.go warning() + root_unix.go checkPerms (Helm 3.13-3.16), then the error.
        (
            f"{GROUP_READABLE}\nError: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n",
            "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
        ),
        # Helm 4's slog text handler (internal/logging/logging.go) before the error.
        (
            'level=WARN msg="this chart is deprecated"\nError: cannot reuse a name that is still in use\n',
            "Error: cannot reuse a name that is still in use",
        ),
        # kubectl 1.31 and 1.29: client-go's discovery klog lines, then kubectl's verdict.
        (f"{KLOG_1_31}\n{KLOG_1_31}\n{REFUSED}\n", REFUSED),
        (f"{KLOG_1_29}\n{REFUSED}\n", REFUSED),
        # Nothing but noise: the first line is still better than nothing.
        (f"{GROUP_READABLE}\n", GROUP_READABLE),
        ("\n\n", ""),
    ],
)
def test_the_cause_is_the_first_line_that_is_not_a_warning_or_a_klog_line(output: str, cause: str) -> None:
    assert first_line(output) == cause


@pytest.mark.parametrize(
    "stderr",
    [
        "Unable to connect to the server: EOF",
        "Error from server (Timeout): the server was unable to return a response in the time allotted, but may still "
        "be processing the request (get clusters.apps.kubeblocks.io pg-cluster)",
        "Error from server (ServiceUnavailable): the server is currently unable to handle the request",
        "Error from server (TooManyRequests): the server has received too many requests and has asked us to try "
        "again later",
        f"{KLOG_1_31}\n{REFUSED}",
        'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": EOF',
    ],
)
def test_transient_api_errors_in_kubectls_and_helms_words(stderr: str) -> None:
    assert is_transient(stderr)


@pytest.mark.parametrize(
    "stderr",
    [
        'Error from server (NotFound): deployments.apps "kubeblocks" not found',
        "Error: cannot re-use a name that is still in use",
        'Error: Unable to continue with install: ClusterDefinition "redis" in namespace "" exists and cannot be '
        "imported into the current release: invalid ownership metadata",
        "Unable to connect to the server: x509: certificate signed by unknown authority",
    ],
)
def test_answers_are_not_transient(stderr: str) -> None:
    assert not is_transient(stderr)


@pytest.mark.parametrize(
    "refusal",
    [
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",  # pkg/action/action.go
        "Error: cannot re-use a name that is still in use",  # Helm 3 pkg/action/install.go
        "Error: cannot reuse a name that is still in use",  # Helm 4 pkg/action/install.go
        "Error: release: already exists",  # pkg/storage/driver/driver.go ErrReleaseExists
        "Error: UPGRADE FAILED: release: already exists",
    ],
)
def test_every_spelling_of_helms_install_race_is_waited_out(refusal: str) -> None:
    assert any(fragment in refusal for fragment in HELM_RACES)


def test_an_ownership_refusal_names_the_release_and_namespace_that_own_the_object() -> None:
    # Helm 3.16 validate.go: the namespace annotation differs too.
    stderr = (
        f'{GROUP_READABLE}\nError: Unable to continue with install: ComponentDefinition "redis-7-1.0.1" in namespace '
        '"" exists and cannot be imported into the current release: invalid ownership metadata; annotation validation '
        'error: key "meta.helm.sh/release-name" must equal "kb-addon-redis": current value is "redis"; annotation '
        'validation error: key "meta.helm.sh/release-namespace" must equal "kb-system": current value is "default"'
    )
    assert ownership_conflict(stderr, "kb-addon-redis", "kb-system") == (
        'ComponentDefinition "redis-7-1.0.1" already exists and belongs to Helm release redis in namespace default, '
        "not to release kb-addon-redis in namespace kb-system: remove that release (or the object), or let this "
        "release adopt it (helm --take-ownership, Helm 3.17+)"
    )


def test_an_ownership_refusal_of_an_object_no_release_manages_says_so() -> None:
    # Helm 4 validate.go (lower-case "unable to continue", errors joined by "; ").
    stderr = (
        'Error: unable to continue with install: Cluster "pg-cluster" in namespace "default" exists and cannot be '
        "imported into the current release: invalid ownership metadata; label validation error: missing key "
        '"app.kubernetes.io/managed-by": must be set to "Helm"; annotation validation error: missing key '
        '"meta.helm.sh/release-name": must be set to "pg-cluster"'
    )
    explained = ownership_conflict(stderr, "pg-cluster", "default") or ""
    assert explained.startswith(
        'Cluster "pg-cluster" in namespace default already exists and belongs to no Helm release (it was created by '
        "hand or by another tool)"
    )
    assert ownership_conflict("Error: cannot re-use a name that is still in use", "pg-cluster", "default") is None


def history(*rows: tuple[int, str]) -> str:
    """`helm history -o json` (cmd/helm/history.go): oldest first, Go's RFC 3339 times with nanoseconds."""
    return json.dumps(
        [
            {
                "revision": number,
                "updated": f"2026-03-01T10:0{number}:00.123456789Z",
                "status": status,
                "chart": "redis-1.0.1",
                "app_version": "7.2.7",
                "description": "x",
            }
            for number, status in rows
        ]
    )


def test_a_pending_upgrade_is_rolled_back_to_the_last_deployed_revision() -> None:
    stuck = stuck_release(
        "kb-addon-redis",
        "kb-system",
        history((1, "superseded"), (2, "deployed"), (3, "failed"), (4, "pending-upgrade")),
    )
    assert stuck is not None
    assert (stuck.status, stuck.revision, stuck.restore) == ("pending-upgrade", 4, 2)
    assert stuck.since == pytest.approx(1772359440.123456)  # 2026-03-01T10:04:00.123456Z
    assert stuck.recovery(120).argv == ("helm", "rollback", "kb-addon-redis", "2", "-n", "kb-system", "--timeout=120s")


def test_a_release_that_never_deployed_is_uninstalled_and_waited_for() -> None:
    stuck = stuck_release("pg-cluster", "pr-7", history((1, "pending-install")))
    assert stuck is not None and stuck.restore is None
    assert stuck.recovery(60).argv == (
        "helm",
        "uninstall",
        "pg-cluster",
        "-n",
        "pr-7",
        "--timeout=60s",
        "--ignore-not-found",
        "--wait",
    )


def test_a_release_that_is_not_pending_or_unreadable_history_is_not_stuck() -> None:
    assert stuck_release("r", "ns", history((1, "deployed"))) is None
    assert stuck_release("r", "ns", "Error: release: not found") is None
    assert parse_history('{"revision": 1}') is None


def test_the_release_and_namespace_of_an_upgrade_install_command() -> None:
    install = Command(("helm", "upgrade", "--install", "pg", "postgresql-cluster", "--repo", "r", "-n", "pr-7"))
    assert helm_target(install) == ("pg", "pr-7")
    assert helm_target(Command(("helm", "uninstall", "pg", "-n", "pr-7"))) is None


def test_every_component_and_sharding_of_the_spec_gets_an_up_to_date_condition() -> None:
    cluster = {
        "spec": {
            "componentSpecs": [{"name": "redis"}, {"name": "redis-sentinel"}],
            "shardings": [{"name": "shard"}],
        }
    }
    assert current_spec_conditions(json.dumps(cluster)) == [
        ("component redis", "{.status.components.redis.upToDate}"),
        ("component redis-sentinel", "{.status.components.redis-sentinel.upToDate}"),
        ("sharding shard", "{.status.shardings.shard.upToDate}"),
    ]
    assert current_spec_conditions("") == []
