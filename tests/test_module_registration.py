"""The Dagger module as the engine would see it: the SDK's own registration, run offline by
tests/dagger_registration.py."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
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
    assert set(functions) >= LIVE_CLUSTER_FUNCTIONS | OFFLINE_FUNCTIONS


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


def test_registration_fails_on_an_argument_type_the_api_cannot_represent(tmp_path: Path) -> None:
    (tmp_path / "badmodule.py").write_text(
        textwrap.dedent(
            '''
            from dagger import function, object_type

            @object_type
            class Bad:
                """A module with a mapping argument."""

                @function
                def echo(self, labels: dict[str, str]) -> str:
                    """Echo."""
                    return str(labels)
            '''
        ),
        encoding="utf-8",
    )
    done = run_harness("badmodule:Bad", pythonpath=tmp_path)
    assert done.returncode != 0
    assert "unsupported" in done.stderr


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
    assert entry.value.split(":")[1] == "dbstack".title()
