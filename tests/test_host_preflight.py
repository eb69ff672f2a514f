"""The host's preflight against stand-in kubectl and helm scripts on PATH: which versions pass, and the exact reason
it gives when a tool is too old, unreadable, or the cluster does not answer."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from dbstack.cli.host import PreflightFailed, preflight
from dbstack.run.hostrunner import HostRunner

SERVER = {"clientVersion": {"major": "1", "minor": "31"}, "serverVersion": {"major": "1", "minor": "31"}}
CHECK = "(check --kubeconfig and the current context)"


def tools(tmp_path: Path, *, kubectl: str, helm: str) -> HostRunner:
    """kubectl and helm as shell scripts with the given bodies, and nothing else on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("kubectl", kubectl), ("helm", helm)):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return HostRunner(env={"PATH": f"{bin_dir}:/usr/bin:/bin"})


def prints(data: object) -> str:
    return f"echo '{json.dumps(data)}'"


def reason(runner: HostRunner) -> str | None:
    try:
        anyio.run(preflight, runner)
    except PreflightFailed as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("helm_version", ["v3.13.0", "v3.20.1+g1234", "3.14.2", "v4.0.0"])
def test_current_tools_and_an_answering_cluster_pass(tmp_path: Path, helm_version: str) -> None:
    assert reason(tools(tmp_path, kubectl=prints(SERVER), helm=f"echo {helm_version}")) is None


@pytest.mark.parametrize(
    ("helm", "expected"),
    [
        ("echo v3.12.9", "helm 3.12 is too old: 3.13+ is needed (helm uninstall --ignore-not-found)"),
        ("echo v2.17.0", "helm 2.17 is too old: 3.13+ is needed (helm uninstall --ignore-not-found)"),
        (
            "echo 'Error: unknown flag' >&2; exit 1",
            "could not read helm's version (Error: unknown flag); helm 3.13+ is needed",
        ),
        ("echo v3.14.0; exit 1", "could not read helm's version (v3.14.0); helm 3.13+ is needed"),
        ("echo garbage", "could not read helm's version (garbage); helm 3.13+ is needed"),
        ("exit 0", "could not read helm's version (no output); helm 3.13+ is needed"),
    ],
)
def test_helm_that_is_too_old_or_unreadable_is_named(tmp_path: Path, helm: str, expected: str) -> None:
    assert reason(tools(tmp_path, kubectl=prints(SERVER), helm=helm)) == expected


def test_helm_is_asked_for_its_version_only(tmp_path: Path) -> None:
    helm = '[ "$*" = "version --template={{.Version}}" ] && echo v3.14.0 || echo "unexpected: $*"'
    assert reason(tools(tmp_path, kubectl=prints(SERVER), helm=helm)) is None


@pytest.mark.parametrize(
    ("kubectl", "expected"),
    [
        (
            prints({**SERVER, "clientVersion": {"major": "1", "minor": "30+"}}),
            "kubectl 1.30 is too old: 1.31+ is needed (kubectl wait --for=create)",
        ),
        (prints({**SERVER, "clientVersion": {"major": "1", "minor": "31+"}}), None),
        (prints({**SERVER, "clientVersion": {"major": "1"}}), None),
        (
            "echo 'The connection to the server localhost:8080 was refused' >&2; exit 1",
            f"the cluster does not answer: The connection to the server localhost:8080 was refused {CHECK}",
        ),
        (
            prints({"clientVersion": {"major": "1", "minor": "31"}}) + "; exit 1",
            f"the cluster does not answer: kubectl version printed no server version {CHECK}",
        ),
        (
            prints({"clientVersion": {"minor": "32"}}),
            f"the cluster does not answer: kubectl version printed no server version {CHECK}",
        ),
        ("exit 1", f"the cluster does not answer: kubectl version printed nothing {CHECK}"),
        (
            prints(SERVER) + "; echo 'error: stale token' >&2; exit 1",
            f"the cluster does not answer: error: stale token {CHECK}",
        ),
    ],
)
def test_kubectl_too_old_or_a_cluster_that_does_not_answer_is_named(
    tmp_path: Path, kubectl: str, expected: str | None
) -> None:
    assert reason(tools(tmp_path, kubectl=kubectl, helm="echo v3.14.0")) == expected
