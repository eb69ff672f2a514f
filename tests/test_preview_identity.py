"""The preview identity's kubeconfig and the platform check's reads, value by value: the exact commands, the exact
kubeconfig `mint` writes, why a kubeconfig is refused, and `dbstack preview-kubeconfig` against a kubectl
stand-in on PATH (a script answering the two reads)."""

from __future__ import annotations

import argparse
import base64
import json
import stat
from pathlib import Path

import pytest
from dbstack.cli.main import main
from dbstack.github.platform import (
    PlatformPins,
    cli_preview_kubeconfig,
    kubeconfig_problem,
    mint,
    platform_problems,
    preview_kubeconfig,
)
from dbstack.github.preview import PreviewError

CA = "Q0EtREFUQQ=="
TOKEN = "tok-123"
ADMIN_VIEW = json.dumps(
    {"clusters": [{"name": "admin", "cluster": {"server": "https://k8s:6443", "certificate-authority-data": CA}}]}
)
TOKEN_SECRET = json.dumps({"data": {"token": base64.b64encode(TOKEN.encode()).decode()}})
EXPECTED_KUBECONFIG = """{
  "apiVersion": "v1",
  "kind": "Config",
  "clusters": [
    {
      "name": "preview",
      "cluster": {
        "server": "https://k8s:6443",
        "certificate-authority-data": "Q0EtREFUQQ=="
      }
    }
  ],
  "users": [
    {
      "name": "dbstack-preview",
      "user": {
        "token": "tok-123"
      }
    }
  ],
  "contexts": [
    {
      "name": "preview",
      "context": {
        "cluster": "preview",
        "user": "dbstack-preview"
      }
    }
  ],
  "current-context": "preview"
}
"""
NOT_READ = (
    "could not read the server and CA from the admin kubeconfig, or the token from Secret "
    "dbstack-system/dbstack-preview-token (apply platform/preview-rbac.yaml first; Kubernetes fills the token "
    "within seconds)"
)
STATIC_TOKEN_FIX = "use a static-token kubeconfig (`dbstack preview-kubeconfig`, docs/workflows.md)"


def test_the_platform_check_runs_exactly_these_reads() -> None:
    pins = PlatformPins("1.0.1", "kb-system", (("redis", "1.0.1"), ("qdrant", "1.0.2")), ("a.io", "b.io"))
    assert [c.argv for c in pins.commands()] == [
        ("kubectl", "get", "crd", "a.io", "b.io", "-o", "json", "--ignore-not-found"),
        ("kubectl", "-n", "kb-system", "get", "deployment", "kubeblocks", "-o", "json", "--ignore-not-found"),
        ("kubectl", "get", "clusterdefinition.apps.kubeblocks.io", "redis", "-o", "json", "--ignore-not-found"),
        ("kubectl", "get", "clusterdefinition.apps.kubeblocks.io", "qdrant", "-o", "json", "--ignore-not-found"),
    ]


def deployment(chart: str | None, replicas: int | None) -> str:
    labels = {"helm.sh/chart": chart} if chart else {}
    status = {"availableReplicas": replicas} if replicas is not None else {}
    return json.dumps({"kind": "Deployment", "metadata": {"name": "kubeblocks", "labels": labels}, "status": status})


def definition(name: str, chart: str) -> str:
    return json.dumps({"metadata": {"name": name, "labels": {"helm.sh/chart": chart}}})


CRDS = json.dumps({"kind": "List", "items": [{"metadata": {"name": "a.io"}}, {"metadata": {"name": "b.io"}}]})


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ([CRDS, deployment("kubeblocks-1.0.1", 1), definition("redis", "redis-1.0.1")], []),
        (
            [
                json.dumps({"kind": "List", "items": [{"metadata": {"name": "b.io"}}]}),
                deployment("kubeblocks-1.0.0", 0),
                definition("redis", "redis-1.0.0"),
            ],
            [
                "CRDs missing: a.io",
                "KubeBlocks 1.0.0 is installed, values/ pins 1.0.1",
                "KubeBlocks has no available replica",
                "addon redis 1.0.0 is installed, values/ pins 1.0.1",
            ],
        ),
        (
            ["", deployment("other-1.0.1", None), definition("redis", "redis")],
            [
                "CRDs missing: a.io, b.io",
                "KubeBlocks (version unknown) is installed, values/ pins 1.0.1",
                "KubeBlocks has no available replica",
                "addon redis (version unknown) is installed, values/ pins 1.0.1",
            ],
        ),
        (
            [CRDS, "", "\n"],
            [
                "KubeBlocks is not installed (no deployment kubeblocks in kb-system)",
                "addon redis is not installed (no ClusterDefinition redis)",
            ],
        ),
    ],
)
def test_platform_problems_name_each_difference(outputs: list[str], expected: list[str]) -> None:
    pins = PlatformPins("1.0.1", "kb-system", (("redis", "1.0.1"),), ("a.io", "b.io"))
    assert platform_problems(pins, outputs) == expected


@pytest.mark.parametrize(
    ("output", "message"),
    [("{nope", "kubectl printed something that is not JSON"), ("[1]", "kubectl printed JSON that is not an object")],
)
def test_platform_problems_refuse_what_is_not_kubectl_json(output: str, message: str) -> None:
    pins = PlatformPins("1.0.1", "kb-system", (), ("a.io",))
    with pytest.raises(PreviewError, match=message):
        platform_problems(pins, [output, deployment("kubeblocks-1.0.1", 1)])


def test_the_preview_kubeconfig_is_exactly_this_document() -> None:
    assert preview_kubeconfig("https://k8s:6443", CA, TOKEN) == EXPECTED_KUBECONFIG
    assert mint(ADMIN_VIEW, TOKEN_SECRET) == EXPECTED_KUBECONFIG


@pytest.mark.parametrize(
    ("view", "secret", "message"),
    [
        ("{", TOKEN_SECRET, NOT_READ),
        (json.dumps({"clusters": []}), TOKEN_SECRET, NOT_READ),
        (ADMIN_VIEW, json.dumps({"data": {"token": "not base64!"}}), NOT_READ),
        (ADMIN_VIEW, json.dumps({"data": {}}), NOT_READ),
        (
            ADMIN_VIEW.replace("https://", "http://"),
            TOKEN_SECRET,
            "the admin kubeconfig's server is not https://, or the token Secret is still empty",
        ),
        (
            ADMIN_VIEW,
            json.dumps({"data": {"token": ""}}),
            "the admin kubeconfig's server is not https://, or the token Secret is still empty",
        ),
    ],
)
def test_mint_says_what_it_could_not_read(view: str, secret: str, message: str) -> None:
    with pytest.raises(PreviewError) as caught:
        mint(view, secret)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("not json", "kubectl could not read the kubeconfig as a kubeconfig"),
        (
            {"users": [{"name": "gke", "user": {"exec": {"command": "gke-gcloud-auth-plugin"}}}]},
            "the kubeconfig gets its credentials from the exec plugin 'gke-gcloud-auth-plugin', which the toolbox "
            f"does not have; {STATIC_TOKEN_FIX}",
        ),
        (
            {"users": [{"name": "x", "user": {"exec": {}}}]},
            f"the kubeconfig gets its credentials from the exec plugin 'a plugin', which the toolbox does not have; "
            f"{STATIC_TOKEN_FIX}",
        ),
        (
            {
                "users": [
                    "odd",
                    {"name": "old", "user": None},
                    {"name": "o", "user": {"auth-provider": {"name": "oidc"}}},
                ]
            },
            f"the kubeconfig uses an auth-provider, which kubectl no longer supports; {STATIC_TOKEN_FIX}",
        ),
        ({"users": [{"name": "ci", "user": {"token": "REDACTED"}}]}, None),
        ({"users": None}, None),
        ([], None),
    ],
)
def test_kubeconfig_problem_names_the_reason(view: object, expected: str | None) -> None:
    text = view if isinstance(view, str) else json.dumps(view)
    assert kubeconfig_problem(text) == expected


ADMIN_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: admin
  cluster: {server: "https://k8s:6443"}
users:
- name: admin
  user: {token: admin-token}
contexts:
- name: admin
  context: {cluster: admin, user: admin}
current-context: admin
"""
KUBECTL = """#!/bin/sh
echo "$KUBECONFIG $*" >> "{log}"
case "$*" in
  "config view --raw --minify -o json") {view} ;;
  "-n dbstack-system get secret dbstack-preview-token -o json") {secret} ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
"""


def kubectl_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, view: str = "", secret: str = "") -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "view.json").write_text(ADMIN_VIEW)
    (tmp_path / "secret.json").write_text(TOKEN_SECRET)
    script = KUBECTL.format(
        log=tmp_path / "calls",
        view=view or f'cat "{tmp_path / "view.json"}"',
        secret=secret or f'cat "{tmp_path / "secret.json"}"',
    )
    (bin_dir / "kubectl").write_text(script)
    (bin_dir / "kubectl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    admin = tmp_path / "admin.yaml"
    admin.write_text(ADMIN_KUBECONFIG)
    return admin


def test_preview_kubeconfig_command_writes_the_kubeconfig_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = kubectl_on_path(tmp_path, monkeypatch)
    out = tmp_path / "preview.kubeconfig"
    out.write_text("old and longer than what replaces it " * 50)
    out.chmod(0o644)
    assert cli_preview_kubeconfig(argparse.Namespace(kubeconfig=admin, out=out)) == 0
    assert out.read_text() == EXPECTED_KUBECONFIG
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert capsys.readouterr().out == f"wrote {out} (mode 0600) for dbstack-system/dbstack-preview\n"
    assert (tmp_path / "calls").read_text().splitlines() == [
        f"{admin} config view --raw --minify -o json",
        f"{admin} -n dbstack-system get secret dbstack-preview-token -o json",
    ]


def test_preview_kubeconfig_command_names_the_read_that_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = kubectl_on_path(tmp_path, monkeypatch, secret='echo "Error from server (NotFound): nope" >&2; exit 1')
    out = tmp_path / "preview.kubeconfig"
    assert cli_preview_kubeconfig(argparse.Namespace(kubeconfig=admin, out=out)) == 2
    assert capsys.readouterr().err == (
        "`kubectl -n dbstack-system get secret dbstack-preview-token -o json` failed: "
        "Error from server (NotFound): nope\n"
    )
    assert not out.exists()


def test_preview_kubeconfig_command_refuses_a_secret_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = kubectl_on_path(tmp_path, monkeypatch, secret="echo '{}'")
    out = tmp_path / "preview.kubeconfig"
    assert cli_preview_kubeconfig(argparse.Namespace(kubeconfig=admin, out=out)) == 2
    assert capsys.readouterr().err == NOT_READ + "\n"
    assert not out.exists()


def test_preview_kubeconfig_command_checks_its_paths_before_kubectl_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = kubectl_on_path(tmp_path, monkeypatch)
    assert cli_preview_kubeconfig(argparse.Namespace(kubeconfig=admin, out=tmp_path)) == 2
    assert capsys.readouterr().err == f"dbstack preview-kubeconfig: --out {tmp_path}: is a folder\n"
    nowhere = tmp_path / "absent" / "k"
    assert cli_preview_kubeconfig(argparse.Namespace(kubeconfig=admin, out=nowhere)) == 2
    assert capsys.readouterr().err == f"dbstack preview-kubeconfig: --out {nowhere}: its folder does not exist\n"
    missing = tmp_path / "missing.yaml"
    assert cli_preview_kubeconfig(argparse.Namespace(kubeconfig=missing, out=tmp_path / "k")) == 2
    assert capsys.readouterr().err.startswith(f"dbstack preview-kubeconfig: --kubeconfig {missing}: ")
    assert not (tmp_path / "calls").exists()


def test_dbstack_preview_kubeconfig_runs_through_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = kubectl_on_path(tmp_path, monkeypatch)
    out = tmp_path / "preview.kubeconfig"
    assert main(["preview-kubeconfig", "--kubeconfig", str(admin), "--out", str(out)]) == 0
    assert out.read_text() == EXPECTED_KUBECONFIG
    assert capsys.readouterr().out == f"wrote {out} (mode 0600) for dbstack-system/dbstack-preview\n"
    with pytest.raises(SystemExit):
        main(["preview-kubeconfig", "--kubeconfig", str(admin)])
    assert "the following arguments are required: --out" in capsys.readouterr().err
