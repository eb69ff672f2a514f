"""The Dagger functions' options become the core's `--set` overrides, and uploaded values become a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbstack.config.catalog import DATABASES
from dbstack.config.load import load_config
from dbstack.config.moduleargs import settings_overrides, write_values
from dbstack.config.problems import InvalidInput


def test_no_options_means_no_overrides() -> None:
    assert settings_overrides() == []


def test_enable_and_disable_switch_databases_on_and_off(values_dir: Path) -> None:
    overrides = settings_overrides(enable=["neo4j"], disable=["elasticsearch", " Qdrant "])
    enabled = {d.key for d in load_config(values_dir, None, overrides).enabled}
    assert "neo4j" in enabled
    assert not enabled & {"elasticsearch", "qdrant"}


def test_a_chart_version_applies_to_every_database_and_its_own_setting_wins_after_it(values_dir: Path) -> None:
    overrides = settings_overrides(chart_version="1.0.2", extra=["databases.redis.chartVersion=1.0.0"])
    config = load_config(values_dir, None, overrides)
    versions = {d.key: d.chart_version for d in config.databases}
    assert versions == {key: "1.0.0" if key == "redis" else "1.0.2" for key in DATABASES}


def test_namespace_and_kubeblocks_version_reach_the_config(values_dir: Path) -> None:
    config = load_config(values_dir, None, settings_overrides(namespace="ci-42", kubeblocks_version="1.0.2"))
    assert (config.namespace, config.kubeblocks_version) == ("ci-42", "1.0.2")


def test_a_database_both_enabled_and_disabled_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        settings_overrides(enable=["redis", "neo4j"], disable=["neo4j"])
    assert [p.key for p in caught.value.problems] == ["neo4j"]
    assert "both enabled and disabled" in str(caught.value)


def test_an_unknown_database_is_reported_by_the_config_with_a_suggestion(values_dir: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_config(values_dir, None, settings_overrides(enable=["postgres"]))
    assert "did you mean 'postgresql'" in str(caught.value)


def test_uploaded_values_are_written_under_the_root_with_their_folders(tmp_path: Path) -> None:
    root = write_values({"pipeline.yaml": "a: 1\n", "profiles/ci/redis.yaml": "b: 2\n"}, tmp_path)
    assert (root / "pipeline.yaml").read_text(encoding="utf-8") == "a: 1\n"
    assert (root / "profiles" / "ci" / "redis.yaml").read_text(encoding="utf-8") == "b: 2\n"


@pytest.mark.parametrize("name", ["../escape.yaml", "/etc/x.yaml", "profiles/../../x.yaml", "notes.txt"])
def test_a_path_outside_the_values_folder_or_not_yaml_is_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "values"
    with pytest.raises(InvalidInput):
        write_values({name: "x: 1\n"}, root)
    assert not (tmp_path / "escape.yaml").exists()
