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

REPO_VALUES = Path(__file__).resolve().parents[1] / "values"


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


REDIS_PROBLEM = (
    "values/redis.yaml:1: replicas: must be a whole number, got string 'many' (allowed: a whole number 1 to 5)"
)


def test_one_problem_is_named_by_its_values_path_and_counted_in_the_singular(values_dir: Path) -> None:
    (values_dir / "redis.yaml").write_text("replicas: many\n", encoding="utf-8")

    async def deploy() -> dagger.Directory:
        return await Dbstack().deploy_and_test(uploaded(values_dir), cast(dagger.Directory, object()))

    async def teardown() -> str:
        return await Dbstack().teardown(uploaded(values_dir), cast(dagger.Secret, object()), 7)

    for call in (deploy, teardown):
        with pytest.raises(FunctionError) as caught:
            anyio.run(call)
        assert str(caught.value) == f"{REDIS_PROBLEM}\n1 problem found; nothing was deployed."


def test_a_cluster_of_an_unknown_profile_is_refused_naming_the_profiles(values_dir: Path) -> None:
    async def cluster() -> dagger.Service:
        return await Dbstack().cluster(uploaded(values_dir), profile="nope")

    with pytest.raises(FunctionError) as caught:
        anyio.run(cluster)
    assert str(caught.value) == (
        "values/profiles/nope:1: profile: no profile named 'nope' (allowed: ci, full)\n"
        "1 problem found; nothing was deployed."
    )


def test_the_version_options_reach_the_plan(values_dir: Path) -> None:
    async def plan() -> str:
        return await Dbstack().plan(uploaded(values_dir), kubeblocks_version="1.0.2", chart_version="1.0.3")

    lines = anyio.run(plan).splitlines()
    assert " 4. Install KubeBlocks 1.0.2 (after snapshot-crds, kubeblocks-crds)" in lines
    assert " 5. Install addon postgresql 1.0.3 (after kubeblocks)" in lines


def test_every_database_both_enabled_and_disabled_is_named_on_its_own_line(values_dir: Path) -> None:
    async def validate() -> str:
        return await Dbstack().validate(uploaded(values_dir), enable=["redis", "qdrant"], disable=["qdrant", "redis"])

    with pytest.raises(FunctionError) as caught:
        anyio.run(validate)
    assert str(caught.value) == (
        "--enable/--disable:1: qdrant: both enabled and disabled; choose one\n"
        "--enable/--disable:1: redis: both enabled and disabled; choose one"
    )


@dataclass
class HostileDirectory(LocalDirectory):
    """An upload that names a file outside the folder, as no engine should."""

    async def glob(self, pattern: str) -> list[str]:
        return [*await super().glob(pattern), "../escape.yaml"]

    def file(self, path: str) -> LocalFile:
        return LocalFile(self.root / "pipeline.yaml") if path == "../escape.yaml" else super().file(path)


def test_an_uploaded_file_outside_the_values_folder_is_refused(values_dir: Path) -> None:
    async def validate() -> str:
        return await Dbstack().validate(cast(dagger.Directory, HostileDirectory(values_dir)))

    with pytest.raises(FunctionError) as caught:
        anyio.run(validate)
    assert str(caught.value) == (
        "../escape.yaml:1: -: not a values file under the values folder\n1 problem found; nothing was deployed."
    )


def test_plan_with_base_values_prints_the_upgrade_from_them_naming_the_folder_base_values(values_dir: Path) -> None:
    text = (values_dir / "postgresql.yaml").read_text(encoding="utf-8")
    (values_dir / "postgresql.yaml").write_text(text.replace("16.4.0", "16.9.0"), encoding="utf-8")

    async def plan() -> str:
        return await Dbstack().plan(uploaded(values_dir), base_values=uploaded(REPO_VALUES))

    lines = anyio.run(plan).splitlines()
    assert lines[0] == "Upgrade plan for namespace default (profile ci): the base from base-values, then the change"
    assert (
        "  pg-cluster              upgrade: chart 1.0.1, PostgreSQL 16.4.0 -> chart 1.0.1, PostgreSQL 16.9.0" in lines
    )
    assert "  redis-cluster           unchanged (chart 1.0.1, Redis 7.2.7)" in lines


def test_problems_in_base_values_are_named_by_the_base_values_folder(values_dir: Path) -> None:
    (values_dir / "redis.yaml").write_text("replicas: many\n", encoding="utf-8")

    async def plan() -> str:
        return await Dbstack().plan(uploaded(REPO_VALUES), base_values=uploaded(values_dir))

    with pytest.raises(FunctionError) as caught:
        anyio.run(plan)
    assert str(caught.value).startswith(
        "base-values/redis.yaml:1: replicas: must be a whole number, got string 'many' (allowed: a whole number 1 to 5)"
    )
    assert str(values_dir) not in str(caught.value)
