"""The Dagger module as the engine would see it: the SDK's own registration, run offline by
tests/dagger_registration.py."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HARNESS = Path(__file__).with_name("dagger_registration.py")
LIVE_CLUSTER_FUNCTIONS = {"cluster", "kubeconfig", "deploy_and_test", "preview", "teardown", "sweep"}
OFFLINE_FUNCTIONS = {"validate", "plan"}
OPTIONS = {"profile", "enable", "disable", "namespace", "kubeblocks_version", "chart_version", "set"}


@dataclass
class Arg:
    type: str
    description: str | None
    default_value: str | None
    default_path: str | None
    ignore: list[str] | None


@dataclass
class Func:
    returns: str
    description: str | None = None
    cache_policy: str | None = None
    args: dict[str, Arg] = field(default_factory=dict)


def _type(selections: list[dict[str, Any]]) -> str:
    """A TypeDef chain as text: String, [String], Directory, Secret?, ..."""
    optional = any(s["field"] == "withOptional" and s["args"].get("optional") for s in selections)
    for s in selections:
        if s["field"] == "withKind":
            name = str(s["args"]["kind"]).removesuffix("_KIND").capitalize()
        elif s["field"] == "withObject":
            name = s["args"]["name"]
        elif s["field"] == "withListOf":
            name = f"[{_type(s['args']['elementType'])}]"
        else:
            continue
        return name + ("?" if optional else "")
    raise AssertionError(f"no type in {selections}")


def _function(selections: list[dict[str, Any]]) -> tuple[str, Func]:
    head = selections[0]
    assert (head["type"], head["field"]) == ("Query", "function")
    func = Func(returns=_type(head["args"]["returnType"]))
    for s in selections[1:]:
        args = s["args"]
        if s["field"] == "withDescription":
            func.description = args["description"]
        elif s["field"] == "withCachePolicy":
            func.cache_policy = args["policy"]
        elif s["field"] == "withArg":
            func.args[args["name"]] = Arg(
                _type(args["typeDef"]),
                args.get("description"),
                args.get("defaultValue"),
                args.get("defaultPath"),
                args.get("ignore"),
            )
    return head["args"]["name"], func


def registered_functions(executed: list[list[dict[str, Any]]], object_name: str) -> dict[str, Func]:
    (module_query,) = executed
    for s in module_query:
        if s["field"] != "withObject":
            continue
        typedef = s["args"]["object"]
        names = [t["args"]["name"] for t in typedef if t["field"] == "withObject"]
        if names == [object_name]:
            return dict(_function(t["args"]["function"]) for t in typedef if t["field"] == "withFunction")
    raise AssertionError(f"object {object_name} was not registered")


def run_harness(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, str(HARNESS), *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )


@pytest.fixture(scope="module")
def functions() -> dict[str, Func]:
    done = run_harness()
    assert done.returncode == 0, done.stderr
    return registered_functions(json.loads(done.stdout), "Dbstack")


def test_the_module_registers_its_functions_from_the_entry_point(functions: dict[str, Func]) -> None:
    assert sorted(functions) == [
        "cluster",
        "deploy_and_test",
        "kubeconfig",
        "plan",
        "platform",
        "preview",
        "sweep",
        "teardown",
        "upgrade_test",
        "validate",
    ]


# What `dagger functions` and `dagger call <f> --help` show, as (type, default value as JSON, default path, ignore
# patterns, doc).
VALUES_ARG = (
    "Directory",
    None,
    "/values",
    ["*", "!**/*.yaml"],
    "values folder: pipeline.yaml, one <database>.yaml per database, profiles/<name>/ (default: ./values)",
)
SMOKE_ARG = (
    "Directory",
    None,
    "/ci/smoke",
    ["**/__pycache__", "**/.pytest_cache", "**/.mypy_cache", "**/*.pyc"],
    "the smoke test suite, with its lock file requirements.txt (default: ./ci/smoke)",
)
PROFILE_ARG = ("String", '"ci"', None, None, "profile under values/profiles/ layered on top of values/; empty for none")
ENABLE_ARG = ("[String]?", "null", None, None, "databases to enable on top of values/, e.g. neo4j (repeatable)")
DISABLE_ARG = ("[String]?", "null", None, None, "databases to leave out, e.g. elasticsearch (repeatable)")
NAMESPACE_ARG = ("String", '""', None, None, "namespace for the database clusters (default: the values' namespace)")
KUBEBLOCKS_ARG = (
    "String",
    '""',
    None,
    None,
    "KubeBlocks chart version to install instead of the pinned one, e.g. 1.0.1",
)
CHART_ARG = (
    "String",
    '""',
    None,
    None,
    "addon and cluster chart version for every database instead of the pinned ones",
)
SET_ARG = (
    "[String]?",
    "null",
    None,
    None,
    "any pipeline setting as key.path=value, e.g. timeouts.cluster=900 (repeatable)",
)
EXISTING_ARG = (
    "Secret?",
    "null",
    None,
    None,
    "kubeconfig of an existing cluster to deploy to instead of k3s, e.g. file:$HOME/.kube/config",
)
PREVIEW_KUBECONFIG_ARG = ("Secret", None, None, None, "kubeconfig of the cluster, e.g. env://PREVIEW_KUBECONFIG")
PR_ARG = ("Integer", None, None, None, "pull request number; the preview lives in namespace pr-<number>")
NAME_ARG = (
    "String",
    '"dbstack"',
    None,
    None,
    "names the k3s cluster: the same name gives the same service within a session",
)
OPTION_ARGS = {
    "profile": PROFILE_ARG,
    "enable": ENABLE_ARG,
    "disable": DISABLE_ARG,
    "namespace": NAMESPACE_ARG,
    "kubeblocks_version": KUBEBLOCKS_ARG,
    "chart_version": CHART_ARG,
    "set": SET_ARG,
}

REGISTERED: dict[
    str, tuple[str, str | None, str, dict[str, tuple[str, str | None, str | None, list[str] | None, str]]]
] = {
    "cluster": (
        "Service",
        "Never",
        "The k3s service (API on 6443); `dagger call cluster up --ports 6443:6443` keeps one running.",
        {"values": VALUES_ARG, "profile": PROFILE_ARG, "name": NAME_ARG},
    ),
    "deploy_and_test": (
        "Directory",
        "Never",
        "Deploy and smoke-test everything; returns the reports (exit-code holds 0 or 1), also on failure.",
        {"values": VALUES_ARG, "smoke_suite": SMOKE_ARG, **OPTION_ARGS, "kubeconfig": EXISTING_ARG},
    ),
    "kubeconfig": (
        "File",
        "Never",
        "The kubeconfig of the running k3s cluster of that name (waits up to 3 minutes for it to be written).",
        {
            "values": VALUES_ARG,
            "profile": PROFILE_ARG,
            "name": NAME_ARG,
            "server": (
                "String",
                '""',
                None,
                None,
                "API address written into the file, e.g. https://localhost:6443 next to `cluster up`",
            ),
        },
    ),
    "plan": (
        "String",
        None,
        "Print the deployment plan: every step, command, wait condition and endpoint (a dry run).",
        {
            "values": VALUES_ARG,
            **OPTION_ARGS,
            "format": ("String", '"text"', None, None, "text, or json for the documented JSON form"),
            "base_values": (
                "Directory?",
                "null",
                None,
                ["*", "!**/*.yaml"],
                "values deployed before the change (e.g. base/values): print the upgrade plan from them instead",
            ),
        },
    ),
    "platform": (
        "Directory",
        "Never",
        "Install or upgrade what previews share: snapshot support, KubeBlocks, the enabled addons; returns reports.",
        {
            "values": VALUES_ARG,
            "kubeconfig": (
                "Secret",
                None,
                None,
                None,
                "an admin kubeconfig of the shared cluster, e.g. env://PLATFORM_KUBECONFIG",
            ),
            "profile": PROFILE_ARG,
            "enable": ENABLE_ARG,
            "disable": DISABLE_ARG,
            "set": SET_ARG,
        },
    ),
    "preview": (
        "Directory",
        "Never",
        "Deploy a pull request's preview into namespace pr-<n> of a cluster `platform` prepared; returns reports.",
        {
            "values": VALUES_ARG,
            "smoke_suite": SMOKE_ARG,
            "kubeconfig": PREVIEW_KUBECONFIG_ARG,
            "pr": PR_ARG,
            "head_sha": ("String", None, None, None, "the commit checked out and deployed, recorded on the namespace"),
            "profile": PROFILE_ARG,
            "enable": ENABLE_ARG,
            "disable": DISABLE_ARG,
            "set": SET_ARG,
        },
    ),
    "sweep": (
        "Directory",
        "Never",
        "Remove closed pull requests' previews and idle open ones; returns sweep.json, summary.txt, exit-code.",
        {
            "values": VALUES_ARG,
            "kubeconfig": PREVIEW_KUBECONFIG_ARG,
            "open_prs": (
                "String",
                None,
                None,
                None,
                "the pull requests open now, as GitHub lists them: 12,15 or none (a failed lookup is refused)",
            ),
        },
    ),
    "teardown": (
        "String",
        "Never",
        "Remove a pull request's preview (its releases, then namespace pr-<n>); nothing when there is none.",
        {
            "values": VALUES_ARG,
            "kubeconfig": PREVIEW_KUBECONFIG_ARG,
            "pr": PR_ARG,
            "adopt_unlabelled": (
                "Boolean",
                "false",
                None,
                None,
                "also remove pr-<n> when it has no dbstack labels (made by an older preview's Helm)",
            ),
        },
    ),
    "upgrade_test": (
        "Directory",
        "Never",
        "Deploy --base-values, write markers, upgrade in place to the values, read them back, smoke-test; reports.",
        {
            "values": VALUES_ARG,
            "smoke_suite": SMOKE_ARG,
            "base_values": (
                "Directory",
                None,
                None,
                ["*", "!**/*.yaml"],
                "values to deploy first and upgrade from, usually the target branch's values/ (e.g. base/values)",
            ),
            **OPTION_ARGS,
            "kubeconfig": EXISTING_ARG,
        },
    ),
    "validate": (
        "String",
        None,
        "Check the values (schemas, names, capacity) before any cluster exists; fails listing every problem.",
        {"values": VALUES_ARG, **OPTION_ARGS},
    ),
}


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_each_function_registers_its_doc_return_type_and_arguments_in_order(
    functions: dict[str, Func], name: str
) -> None:
    func = functions[name]
    returns, cache_policy, doc, args = REGISTERED[name]
    assert (func.returns, func.cache_policy, func.description) == (returns, cache_policy, doc)
    assert list(func.args) == list(args)
    found = {arg: (a.type, a.default_value, a.default_path, a.ignore, a.description) for arg, a in func.args.items()}
    assert found == args


def test_function_names_convert_cleanly_to_kebab_case_and_camel_case(functions: dict[str, Func]) -> None:
    # The engine turns deploy_and_test into deployAndTest (API) and deploy-and-test (CLI).
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in functions)


def test_every_function_has_a_one_line_doc_and_every_argument_a_doc(functions: dict[str, Func]) -> None:
    for name, func in functions.items():
        assert func.description and "\n" not in func.description.strip(), name
        for arg_name, arg in func.args.items():
            assert arg.description, f"{name}({arg_name}) has no doc"


def test_functions_that_touch_a_live_cluster_are_never_cached(functions: dict[str, Func]) -> None:
    assert {name: functions[name].cache_policy for name in LIVE_CLUSTER_FUNCTIONS} == dict.fromkeys(
        LIVE_CLUSTER_FUNCTIONS, "Never"
    )
    assert {name: functions[name].cache_policy for name in OFFLINE_FUNCTIONS} == dict.fromkeys(OFFLINE_FUNCTIONS)


def test_values_default_to_the_module_values_folder_uploading_only_yaml(functions: dict[str, Func]) -> None:
    for name in (*OFFLINE_FUNCTIONS, *LIVE_CLUSTER_FUNCTIONS):
        values = functions[name].args["values"]
        assert (values.type, values.default_path, values.ignore) == ("Directory", "/values", ["*", "!**/*.yaml"])


def test_deploy_and_test_returns_reports_and_takes_every_option(functions: dict[str, Func]) -> None:
    deploy = functions["deploy_and_test"]
    assert deploy.returns == "Directory"
    assert OPTIONS | {"values", "smoke_suite", "kubeconfig"} == set(deploy.args)
    assert deploy.args["kubeconfig"].type == "Secret?"
    assert deploy.args["smoke_suite"].default_path == "/ci/smoke"
    assert (deploy.args["enable"].type, deploy.args["set"].type) == ("[String]?", "[String]?")
    assert deploy.args["profile"].default_value == json.dumps("ci")


def test_validate_and_plan_take_the_same_options(functions: dict[str, Func]) -> None:
    assert set(functions["validate"].args) >= OPTIONS
    assert OPTIONS | {"format"} <= set(functions["plan"].args)


def test_cluster_is_a_service_and_kubeconfig_a_file(functions: dict[str, Func]) -> None:
    assert (functions["cluster"].returns, functions["kubeconfig"].returns) == ("Service", "File")


def test_preview_functions_take_what_the_preview_workflow_passes(functions: dict[str, Func]) -> None:
    # .github/workflows/preview.yml: preview --kubeconfig --pr --head-sha; teardown --kubeconfig --pr
    # [--adopt-unlabelled]; sweep --kubeconfig --open-prs; platform.yml: platform --kubeconfig
    preview = functions["preview"]
    assert preview.returns == "Directory"
    assert {"kubeconfig", "pr", "head_sha"} <= set(preview.args)
    assert (preview.args["kubeconfig"].type, preview.args["pr"].type) == ("Secret", "Integer")
    assert {"kubeconfig", "pr", "adopt_unlabelled"} <= set(functions["teardown"].args)
    assert functions["teardown"].args["adopt_unlabelled"].type == "Boolean"
    assert {"kubeconfig", "open_prs"} <= set(functions["sweep"].args)
    assert functions["sweep"].returns == "Directory"
    assert functions["platform"].returns == "Directory" and "kubeconfig" in functions["platform"].args


def test_dagger_json_pins_the_engine_of_the_sdk_line_the_module_is_checked_against() -> None:
    root = HARNESS.parents[1]
    config = json.loads((root / "dagger.json").read_text(encoding="utf-8"))
    installed = importlib.metadata.version("dagger-io")
    assert config["engineVersion"] == f"v{installed}"
    assert installed.startswith("0.21.") and installed != "0.21.0"
    assert (config["name"], config["source"], config["sdk"]["source"]) == ("dbstack", "ci", "python")


def test_the_entry_point_names_the_main_object_after_the_module() -> None:
    (entry,) = importlib.metadata.entry_points(group="dagger.mod", name="main_object")
    assert entry.value == "pipeline:Dbstack"


def test_the_module_s_decorators_register_a_function_cached_by_default_or_never_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In this process (the registration test above runs a fresh interpreter): what `cached` and `never_cached` hand
    # the SDK, registered on a throwaway object. Only the SDK's query execution is intercepted.
    import anyio
    import pipeline
    from dagger.client import _core
    from dagger.mod._module import Module
    from dagger_registration import _selections

    executed: list[Any] = []

    async def record(self: Any, return_type: Any = None) -> str:
        executed.append(_selections(self))
        return "module-id"

    monkeypatch.setattr(_core.Context, "execute", record)

    class Probe:
        @pipeline.cached
        async def offline(self) -> str:
            """Answers from its inputs."""
            return "offline"

        @pipeline.never_cached
        async def live(self) -> str:
            """Talks to a cluster."""
            return "live"

    module = Module("Probe")
    module.object_type(Probe)
    anyio.run(module._typedefs)
    found = registered_functions(executed, "Probe")
    assert {name: (f.returns, f.cache_policy, f.description) for name, f in found.items()} == {
        "offline": ("String", None, "Answers from its inputs."),
        "live": ("String", "Never", "Talks to a cluster."),
    }
    assert anyio.run(Probe().offline) == "offline" and anyio.run(Probe().live) == "live"
