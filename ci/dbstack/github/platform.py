"""The platform previews stand on, and the identity they use.

The Platform workflow (`dagger call platform`, an admin kubeconfig, the default branch only) installs and upgrades
snapshot support, KubeBlocks and the addons. Previews only check that the platform is there at the versions
values/ pins (`check_platform`), with the preview identity of platform/preview-rbac.yaml, which has namespaced
rights in its own `pr-<n>` namespaces and read access to the shared parts.

Versions are read from the labels the charts put on what they install (`helm.sh/chart: <chart>-<version>` on the
kubeblocks Deployment and on each addon's ClusterDefinition, per the charts' `_helpers.tpl`), not from Helm's
release records, which are Secrets in kb-system the preview identity may not read.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dbstack.config.load import REUSE_ANY, Config
from dbstack.github.preview import PREVIEW_IDENTITY_NAMESPACE, PREVIEW_SERVICE_ACCOUNT, PreviewError, first_line
from dbstack.plan.build import KUBEBLOCKS_CRDS, SNAPSHOT_CRDS
from dbstack.plan.model import Command, Plan, StepKind, kubectl
from dbstack.run.runner import Runner

CHART_LABEL = "helm.sh/chart"
ADDON_DEFINITION = "clusterdefinition.apps.kubeblocks.io"
PREVIEW_TOKEN_SECRET = "dbstack-preview-token"  # noqa: S105 - a Secret's name, not a credential
"""The long-lived ServiceAccount token Secret platform/preview-rbac.yaml asks Kubernetes to fill."""
QUERY_TIMEOUT_S = 60
HOW_TO_FIX = "run the Platform workflow (docs/workflows.md) to install or upgrade it"


def platform_plan(plan: Plan) -> Plan:
    """The plan's platform steps, run by the Platform workflow with an admin kubeconfig: snapshot support, KubeBlocks
    and the addons, each applied or upgraded to the pinned version even when something is installed (no skip
    probes: `kubectl apply --server-side` and `helm upgrade --install` are idempotent). No database clusters."""
    # Nothing of a stage run on deployed databases (backup): previews run none.
    platform = [step for step in plan.steps if step.kind is not StepKind.CLUSTER and step.stage is None]
    steps = tuple(replace(step, skip_when=()) for step in platform)
    return replace(plan, steps=steps, endpoints=())


@dataclass(frozen=True)
class PlatformPins:
    """What the previews expect to find installed. With `kubeblocks.reuseInstalled: any`, as for a deploy, another
    installed version is accepted; with `pinned` (the default) every mismatch stops the preview."""

    kubeblocks_version: str
    kubeblocks_namespace: str
    addons: tuple[tuple[str, str], ...]
    """(addon chart name, chart version) for every enabled database."""
    crds: tuple[str, ...]
    any_version: bool = False

    @classmethod
    def from_config(cls, config: Config) -> PlatformPins:
        return cls(
            kubeblocks_version=config.kubeblocks_version,
            kubeblocks_namespace=config.kubeblocks_namespace,
            addons=tuple((d.db.addon, d.chart_version) for d in config.enabled),
            crds=(*(f"{c}.snapshot.storage.k8s.io" for c in SNAPSHOT_CRDS), *KUBEBLOCKS_CRDS),
            any_version=config.reuse_installed == REUSE_ANY,
        )

    def commands(self) -> tuple[Command, ...]:
        """Read-only: the CRDs, the kubeblocks Deployment, each addon's ClusterDefinition."""
        return (
            kubectl("get", "crd", *self.crds, "-o", "json", "--ignore-not-found"),
            kubectl(
                "-n", self.kubeblocks_namespace, "get", "deployment", "kubeblocks", "-o", "json", "--ignore-not-found"
            ),
            *(kubectl("get", ADDON_DEFINITION, name, "-o", "json", "--ignore-not-found") for name, _ in self.addons),
        )


def _items(text: str) -> list[Mapping[str, Any]]:
    """Objects from `kubectl get -o json` (a List, one object, or nothing with --ignore-not-found)."""
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PreviewError(f"kubectl printed something that is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise PreviewError("kubectl printed JSON that is not an object")
    items = data.get("items") if data.get("kind") == "List" else [data]
    return [item for item in items or [] if isinstance(item, dict)]


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else {}


def _name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def _chart_version(obj: Mapping[str, Any], chart: str) -> str | None:
    label = str(_labels(obj).get(CHART_LABEL, ""))
    return label.removeprefix(f"{chart}-") if label.startswith(f"{chart}-") else None


def platform_problems(pins: PlatformPins, outputs: Sequence[str]) -> list[str]:
    """What is missing or at another version, from the outputs of `pins.commands()` in order."""
    crds, deployment, *addons = outputs
    problems = []
    found = {_name(c) for c in _items(crds)}
    missing = [c for c in pins.crds if c not in found]
    if missing:
        problems.append(f"CRDs missing: {', '.join(missing)}")
    kubeblocks = _items(deployment)
    if not kubeblocks:
        problems.append(f"KubeBlocks is not installed (no deployment kubeblocks in {pins.kubeblocks_namespace})")
    else:
        installed = _chart_version(kubeblocks[0], "kubeblocks")
        if installed != pins.kubeblocks_version and not pins.any_version:
            problems.append(
                f"KubeBlocks {installed or '(version unknown)'} is installed, values/ pins {pins.kubeblocks_version}"
            )
        status = kubeblocks[0].get("status")
        if not (isinstance(status, dict) and int(status.get("availableReplicas") or 0) > 0):
            problems.append("KubeBlocks has no available replica")
    for (name, version), output in zip(pins.addons, addons, strict=True):
        definition = _items(output)
        if not definition:
            problems.append(f"addon {name} is not installed (no ClusterDefinition {name})")
            continue
        installed = _chart_version(definition[0], name)
        if installed != version and not pins.any_version:
            problems.append(f"addon {name} {installed or '(version unknown)'} is installed, values/ pins {version}")
    return problems


async def check_platform(runner: Runner, pins: PlatformPins) -> None:
    """Raise PreviewError naming everything that is missing or at another version."""
    outputs = []
    for command in pins.commands():
        done = await runner.run(command, timeout_s=QUERY_TIMEOUT_S)
        if not done.ok:
            raise PreviewError(f"could not read the platform: `{command}` failed: {first_line(done.stderr)}")
        outputs.append(done.stdout)
    problems = platform_problems(pins, outputs)
    if problems:
        raise PreviewError(
            f"the cluster's platform is not what values/ pins, so no preview was deployed: {'; '.join(problems)}; "
            + HOW_TO_FIX
        )


# --- kubeconfigs ---------------------------------------------------------------------------------------------

KUBECONFIG_VIEW = kubectl("config", "view", "--minify", "-o", "json")
"""Without --raw: certificate data and tokens are redacted, so the answer holds nothing secret."""


def kubeconfig_problem(view_json: str) -> str | None:
    """Why a kubeconfig cannot work in the toolbox, from `kubectl config view --minify -o json`, or None.

    EKS, GKE and AKS kubeconfigs call a credential plugin (`aws`, `gke-gcloud-auth-plugin`, `kubelogin`) on every
    request; the toolbox image has none of them and no cloud login."""
    try:
        data = json.loads(view_json)
    except json.JSONDecodeError:
        return "kubectl could not read the kubeconfig as a kubeconfig"
    users = data.get("users") if isinstance(data, dict) else None
    for entry in users or []:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        if isinstance(user.get("exec"), dict):
            plugin = str(user["exec"].get("command", "a plugin"))
            return (
                f"the kubeconfig gets its credentials from the exec plugin {plugin!r}, which the toolbox does not "
                "have; use a static-token kubeconfig (`dbstack preview-kubeconfig`, docs/workflows.md)"
            )
        if isinstance(user.get("auth-provider"), dict):
            return (
                "the kubeconfig uses an auth-provider, which kubectl no longer supports; use a static-token "
                "kubeconfig (`dbstack preview-kubeconfig`, docs/workflows.md)"
            )
    return None


def preview_kubeconfig(server: str, certificate_authority_data: str, token: str, name: str = "preview") -> str:
    """A kubeconfig for the preview identity: the admin kubeconfig's server and CA, the ServiceAccount's token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": certificate_authority_data}}
        ],
        "users": [{"name": PREVIEW_SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": PREVIEW_SERVICE_ACCOUNT}}],
        "current-context": name,
    }
    return json.dumps(config, indent=2) + "\n"


MINT_COMMANDS = (
    kubectl("config", "view", "--raw", "--minify", "-o", "json"),
    kubectl("-n", PREVIEW_IDENTITY_NAMESPACE, "get", "secret", PREVIEW_TOKEN_SECRET, "-o", "json"),
)


def mint(admin_view_json: str, token_secret_json: str) -> str:
    """The preview kubeconfig from the admin's `config view --raw --minify` and the token Secret; PreviewError
    when either lacks what is needed (the message never holds a credential)."""
    try:
        view, secret = json.loads(admin_view_json), json.loads(token_secret_json)
        cluster = view["clusters"][0]["cluster"]
        server, ca = str(cluster["server"]), str(cluster["certificate-authority-data"])
        token = base64.b64decode(secret["data"]["token"], validate=True).decode("ascii")
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, UnicodeDecodeError):
        raise PreviewError(
            "could not read the server and CA from the admin kubeconfig, or the token from Secret "
            f"{PREVIEW_IDENTITY_NAMESPACE}/{PREVIEW_TOKEN_SECRET} (apply platform/preview-rbac.yaml first; "
            "Kubernetes fills the token within seconds)"
        ) from None
    if not server.startswith("https://") or not token:
        raise PreviewError("the admin kubeconfig's server is not https://, or the token Secret is still empty")
    return preview_kubeconfig(server, ca, token)


def cli_preview_kubeconfig(args: argparse.Namespace) -> int:
    """`dbstack preview-kubeconfig --kubeconfig admin.yaml --out preview.kubeconfig`: kubectl from PATH."""
    import anyio

    from dbstack.config.kubeconfig import KubeconfigError, read_kubeconfig
    from dbstack.run.hostrunner import HostRunner

    # Both paths are checked before kubectl runs: a missing kubeconfig would otherwise be blamed on localhost:8080.
    try:
        if args.kubeconfig is not None:
            read_kubeconfig(args.kubeconfig)
    except KubeconfigError as exc:
        print(f"dbstack preview-kubeconfig: --kubeconfig {args.kubeconfig}: {exc}", file=sys.stderr)
        return 2
    if args.out.is_dir() or not args.out.parent.is_dir():
        why = "is a folder" if args.out.is_dir() else "its folder does not exist"
        print(f"dbstack preview-kubeconfig: --out {args.out}: {why}", file=sys.stderr)
        return 2
    runner = HostRunner(args.kubeconfig)

    async def read() -> list[str]:
        outputs = []
        for command in MINT_COMMANDS:
            done = await runner.run(command, timeout_s=QUERY_TIMEOUT_S)
            if not done.ok:
                raise PreviewError(f"`{command}` failed: {first_line(done.stderr)}")
            outputs.append(done.stdout)
        return outputs

    try:
        view, secret = anyio.run(read)
        text = mint(view, secret)
    except PreviewError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        print(f"dbstack preview-kubeconfig: --out {args.out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 2
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
    print(f"wrote {args.out} (mode 0600) for {PREVIEW_IDENTITY_NAMESPACE}/{PREVIEW_SERVICE_ACCOUNT}")
    return 0
