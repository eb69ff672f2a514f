"""`dagger call <function> --<argument>` must parse: no argument's CLI name may be a flag `dagger call` already
gives every function command. The names come from the module's real registration (tests/dagger_registration.py
runs the SDK's own registration offline), converted the way the engine and the CLI convert them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_module_registration import Func, registered_functions, run_harness

ROOT = Path(__file__).resolve().parents[1]

RESERVED_CALL_FLAGS: dict[str, dict[str, str | None]] = {
    # Dagger 0.21 CLI (github.com/dagger/dagger, branch backport-0.21, same at tags v0.21.0 and v0.21.8):
    # cmd/dagger/main.go installGlobalFlags() and the root's persistent `help`; cmd/dagger/module.go
    # moduleAddFlags() on `call`'s persistent flags; cmd/dagger/functions.go FuncCommand.Command() adds `output`
    # and `json` to every function command. All are inherited by the function commands, and
    # cmd/dagger/flags.go modFunctionArg.AddFlag() refuses an argument whose flag name exists
    # ("flag already exists: <name>"), which aborts the whole command (so `plan --profile ci` fails too).
    "v0.21": {
        "output": "o",
        "json": "j",
        "mod": "m",
        "no-mod": "M",
        "allow-llm": None,
        "eager-runtime": None,
        "workdir": None,
        "verbose": "v",
        "quiet": "q",
        "silent": "s",
        "debug": "d",
        "progress": None,
        "lock": None,
        "interactive": "i",
        "interactive-command": None,
        "web": "w",
        "no-exit": "E",
        "auto-apply": "y",
        "x-release": None,
        "dot-output": None,
        "dot-focus-field": None,
        "dot-show-internal": None,
        "cloud": None,
        "scale-out": None,
        "help": "h",
    },
}
"""Engine minor version -> flag name -> shorthand, for the function commands of `dagger call`."""


@pytest.fixture(scope="module")
def functions() -> dict[str, Func]:
    done = run_harness()
    assert done.returncode == 0, done.stderr
    return registered_functions(json.loads(done.stdout), "Dbstack")


WORDS = re.compile(r"[a-z]+(_[a-z]+)*")


def api_name(registered: str) -> str:
    """The engine's API name for an argument: core/typedef.go NewFunctionArg (strcase.ToLowerCamel)."""
    first, *rest = registered.split("_")
    return first + "".join(word.capitalize() for word in rest)


def cli_name(api: str) -> str:
    """The CLI's flag name: cmd/dagger/module_inspect.go cliName (strcase.ToKebab of the API name)."""
    return re.sub(r"(?<=[a-z])([A-Z])", r"-\1", api).lower()


def reserved_flags() -> dict[str, str | None]:
    engine = json.loads((ROOT / "dagger.json").read_text(encoding="utf-8"))["engineVersion"]
    minor = ".".join(engine.split(".")[:2])
    if minor not in RESERVED_CALL_FLAGS:
        pytest.fail(
            f"dagger.json pins {engine}, and there is no reserved-flag table for {minor}: read that CLI's "
            "cmd/dagger/main.go, module.go and functions.go and add one"
        )
    return RESERVED_CALL_FLAGS[minor]


def test_the_engine_names_convert_as_the_cli_converts_them() -> None:
    # The CLI's own example (cmd/dagger/functions.go): an argument `dockerConfig` is the flag --docker-config.
    assert cli_name("dockerConfig") == "docker-config"
    assert (api_name("kubeblocks_version"), cli_name(api_name("kubeblocks_version"))) == (
        "kubeblocksVersion",
        "kubeblocks-version",
    )
    assert cli_name(api_name("json")) == "json"


def test_no_argument_of_any_function_is_a_flag_dagger_call_already_has(functions: dict[str, Func]) -> None:
    reserved = reserved_flags()
    collisions = []
    for function, func in sorted(functions.items()):
        for argument in func.args:
            # Digits and capitals would need strcase's finer rules; the module uses neither.
            assert WORDS.fullmatch(argument), f"{function}({argument}): extend api_name/cli_name first"
            flag = cli_name(api_name(argument))
            if flag in reserved:
                collisions.append(f"dagger call {cli_name(api_name(function))} --{flag}")
    assert collisions == [], "these arguments abort `dagger call` with 'flag already exists'"


def test_the_check_catches_a_colliding_argument() -> None:
    # The argument `plan` had before: Name("json") on a bool.
    assert cli_name(api_name("json")) in reserved_flags()
    assert cli_name(api_name("output")) in reserved_flags()


def test_plan_takes_format_instead_of_json(functions: dict[str, Func]) -> None:
    plan = functions["plan"]
    assert "json" not in plan.args
    assert (plan.args["format"].type, plan.args["format"].default_value) == ("String", json.dumps("text"))
