"""The module's functions that need no engine, called directly with a local folder standing in for the uploaded
values: they give the core's answers, and bad input fails with the problems before any cluster is started."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import anyio
import dagger
import pytest
from dagger.mod._exceptions import FunctionError
from dbstack.cli import main as cli
from pipeline import Dbstack


@dataclass
class LocalFile:
    path: Path

    async def contents(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass
class LocalDirectory:
    """What the functions use of an uploaded dagger.Directory, over a local folder."""

    root: Path

    async def glob(self, pattern: str) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern) if p.is_file())

    def file(self, path: str) -> LocalFile:
        return LocalFile(self.root / path)


def uploaded(root: Path) -> dagger.Directory:
    return cast(dagger.Directory, LocalDirectory(root))


def core_output(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(list(argv)) == cli.EXIT_OK
    return out.getvalue()


def test_plan_prints_what_the_core_plan_command_prints(values_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def plan() -> str:
        return await Dbstack().plan(uploaded(values_dir), enable=["neo4j"], settings=["timeouts.cluster=900"])

    monkeypatch.chdir(values_dir.parent)  # the module names the uploaded folder `values`, as the caller knows it
    expected = core_output(
        "plan",
        "--values=values",
        "--profile=ci",
        "--set=databases.neo4j.enabled=true",
        "--set=timeouts.cluster=900",
    )
    assert anyio.run(plan) == expected


def test_validate_summarises_the_values(values_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def validate() -> str:
        return await Dbstack().validate(uploaded(values_dir), profile="")

    monkeypatch.chdir(values_dir.parent)
    summary = anyio.run(validate)
    assert summary == core_output("validate", "--values=values")
    assert summary.startswith("values OK: values (6 files), ")


def test_bad_values_fail_with_every_problem_named_by_its_values_path(values_dir: Path) -> None:
    (values_dir / "redis.yaml").write_text("replicas: many\ncpuu: 1\n", encoding="utf-8")

    async def validate() -> str:
        return await Dbstack().validate(uploaded(values_dir))

    with pytest.raises(FunctionError) as caught:
        anyio.run(validate)
    message = str(caught.value)
    assert "values/redis.yaml:1: replicas" in message
    assert "values/redis.yaml:2: cpuu" in message
    assert message.endswith("2 problems found; nothing was deployed.")
    assert str(values_dir) not in message


def test_deploy_and_test_refuses_bad_options_before_any_cluster_exists(values_dir: Path) -> None:
    # The suite folder is never touched: a real call would need an engine for it.
    untouched = cast(dagger.Directory, object())

    async def deploy() -> dagger.Directory:
        return await Dbstack().deploy_and_test(uploaded(values_dir), untouched, enable=["mongodb"], disable=["redis"])

    with pytest.raises(FunctionError) as caught:
        anyio.run(deploy)
    assert "databases.mongodb" in str(caught.value)
    assert "nothing was deployed" in str(caught.value)


def test_a_database_both_enabled_and_disabled_is_refused_at_once(values_dir: Path) -> None:
    async def deploy() -> dagger.Directory:
        return await Dbstack().deploy_and_test(
            uploaded(values_dir), cast(dagger.Directory, object()), enable=["redis"], disable=["redis"]
        )

    with pytest.raises(FunctionError, match="both enabled and disabled"):
        anyio.run(deploy)


def test_plan_format_json_prints_the_core_json_form(values_dir: Path) -> None:
    async def plan() -> str:
        return await Dbstack().plan(uploaded(values_dir), profile="", plan_format="json")

    assert anyio.run(plan) == core_output("plan", "--json", f"--values={values_dir}")


def test_an_unknown_plan_format_is_refused_naming_the_allowed_ones(values_dir: Path) -> None:
    async def plan() -> str:
        return await Dbstack().plan(uploaded(values_dir), plan_format="yaml")

    with pytest.raises(FunctionError, match=r"--format 'yaml' is not a plan format \(allowed: text, json\)"):
        anyio.run(plan)
