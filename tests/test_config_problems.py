"""How problems are listed: by file, then line (as a number), then key; problems of the same key on the same line
in the order they were found (what is wrong with a value before what it collides with)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import VALUES
from dbstack.config.load import ContainerDefaults, load_config, parse_override
from dbstack.config.problems import InvalidInput, Problem
from dbstack.config.validate import validate


def test_a_release_both_malformed_and_taken_says_so_in_that_order(tmp_path: Path) -> None:
    values = tmp_path / "values"
    shutil.copytree(VALUES, values)
    pipeline = values / "pipeline.yaml"
    text = pipeline.read_text(encoding="utf-8")
    text = text.replace("release: pg-cluster", "release: bad_").replace("release: redis-cluster", "release: bad_")
    pipeline.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as raised:
        validate(values)
    shape = (
        "'bad_' must start with a lowercase letter and hold only lowercase letters, digits and '-', not ending in '-' "
        "(allowed: ^[a-z]([-a-z0-9]*[a-z0-9])?$, 1-16)"
    )
    assert str(raised.value).splitlines() == [
        f"{pipeline}:11: databases.postgresql.release: {shape}",
        f"{pipeline}:15: databases.redis.release: {shape}",
        f"{pipeline}:15: databases.redis.release: 'bad_' is already the release of postgresql",
    ]


def test_problems_sort_by_file_name_then_line_number_then_key() -> None:
    found = [
        Problem(Path("values/redis.yaml"), 10, "b", "z"),
        Problem(Path("values/redis.yaml"), 9, "c", "y"),
        Problem(Path("values/redis.yaml"), 10, "a", "x"),
        Problem(Path("values/redis.yaml"), 10, "a", "w", "w only"),
        Problem(Path("values-old/redis.yaml"), 20, "d", "v"),
        Problem(Path("--set x=1"), 1, "x", "u"),
    ]
    assert [str(p) for p in InvalidInput(found).problems] == [
        "--set x=1:1: x: u",
        "values-old/redis.yaml:20: d: v",
        "values/redis.yaml:9: c: y",
        "values/redis.yaml:10: a: x",
        "values/redis.yaml:10: a: w (allowed: w only)",
        "values/redis.yaml:10: b: z",
    ]


def test_a_problem_is_always_one_line() -> None:
    problem = Problem(Path("v.yaml"), 2, "a\nb", "got 'x\r\ny'", "one\ntwo")
    assert str(problem) == "v.yaml:2: a\\nb: got 'x\\r\\ny' (allowed: one\\ntwo)"
    assert str(InvalidInput([problem, Problem(Path("v.yaml"), 1, "k", "m")])) == (
        "v.yaml:1: k: m\nv.yaml:2: a\\nb: got 'x\\r\\ny' (allowed: one\\ntwo)"
    )


def problems_of(values: Path, *overrides: str) -> list[str]:
    with pytest.raises(InvalidInput) as raised:
        load_config(values, None, overrides)
    return [str(p).replace(str(values), "V") for p in raised.value.problems]


def test_a_preview_containers_default_request_may_not_exceed_its_limit(values_dir: Path) -> None:
    assert problems_of(
        values_dir,
        "preview.containerDefaults.requestCpu=2",
        "preview.containerDefaults.requestMemoryGi=1.5",
        "preview.containerDefaults.limitMemoryGi=1.25",
    ) == [
        "--set preview.containerDefaults.requestCpu=2:1: preview.containerDefaults.requestCpu: 2 cores is above "
        "limitCpu 1 (allowed: at most 1)",
        "--set preview.containerDefaults.requestMemoryGi=1.5:1: preview.containerDefaults.requestMemoryGi: 1.5 Gi "
        "is above limitMemoryGi 1.25 (allowed: at most 1.25)",
    ]
    assert load_config(values_dir, None, ["preview.containerDefaults.requestCpu=1"]).preview.container_defaults == (
        ContainerDefaults(request_cpu=1, request_memory_gi=0.0625, limit_cpu=1, limit_memory_gi=1)
    )


def test_the_backup_repos_own_storage_class_must_be_a_kubernetes_name(values_dir: Path) -> None:
    assert problems_of(values_dir, "backup.repo.storageClass=Bad_Class") == [
        "--set backup.repo.storageClass=Bad_Class:1: backup.repo.storageClass: 'Bad_Class' must hold only lowercase "
        "letters, digits, '-' and '.', starting and ending with a letter or digit"
    ]


def test_a_boolean_is_no_string_number_or_count(values_dir: Path) -> None:
    redis = values_dir / "redis.yaml"
    redis.write_text(redis.read_text(encoding="utf-8").replace("replicas: 1\n", "replicas: true\n"), encoding="utf-8")
    assert problems_of(values_dir, "namespace=true", "node.cpu=yes", "node.memoryGi=0.5") == [
        "--set namespace=true:1: namespace: must be a string, got boolean True; quote it (allowed: a string)",
        "--set node.cpu=yes:1: node.cpu: must be a number, got boolean True (allowed: a number 1 to 1024)",
        "--set node.memoryGi=0.5:1: node.memoryGi: 0.5 is below the minimum (allowed: a number at least 1)",
        "V/redis.yaml:4: replicas: must be a whole number, got boolean True (allowed: a whole number 1 to 5)",
    ]


def test_a_name_written_unquoted_that_yaml_cannot_read_is_refused(values_dir: Path) -> None:
    redis = values_dir / "redis.yaml"
    redis.write_text(redis.read_text(encoding="utf-8") + "customSecretName: '[x'\n", encoding="utf-8")
    assert problems_of(values_dir) == [
        "V/redis.yaml:10: customSecretName: '[x' would reach the cluster as text YAML cannot read: the chart writes "
        "it unquoted (allowed: a string that YAML 1.1 does not read as a boolean, number or null)"
    ]


def test_a_database_the_config_does_not_hold_is_a_key_error(values_dir: Path) -> None:
    config = load_config(values_dir)
    assert config.database("redis").release == "redis-cluster"
    with pytest.raises(KeyError):
        config.database("mysql")


@pytest.mark.parametrize(
    ("text", "key"),
    [("namespace", "namespace"), ("=ci", "-"), (" =x", "-"), ("databases..enabled=true", "databases..enabled")],
)
def test_a_set_without_key_path_and_value_is_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_override(text)
    assert raised.value.problems == [
        Problem(Path(f"--set {text}"), 1, key, "expected key.path=value", "e.g. namespace=ci")
    ]


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("namespace=", {"namespace": ""}),
        ("namespace=  ", {"namespace": ""}),
        (" k =v", {"k": "v"}),
        ("x= 5 ", {"x": 5}),
        ("e=a=b", {"e": "a=b"}),
        ("a.b.c=[1, 2]", {"a": {"b": {"c": [1, 2]}}}),
        ("x={a", {"x": "{a"}),
        ("f=!!python/none x", {"f": "!!python/none x"}),
        ("d={1: {2: 3}}", {"d": {"1": {"2": 3}}}),
        ("d=[{1: 2}]", {"d": [{"1": 2}]}),
    ],
)
def test_a_set_value_is_read_as_yaml_with_string_keys_or_kept_as_text(text: str, data: dict[str, object]) -> None:
    document = parse_override(text)
    assert (document.path, document.data, document.lines) == (Path(f"--set {text}"), data, {})


def test_a_request_above_the_charts_default_limit_is_refused(values_dir: Path) -> None:
    qdrant = values_dir / "qdrant.yaml"
    lines = [line for line in qdrant.read_text(encoding="utf-8").splitlines() if not line.startswith("memory:")]
    qdrant.write_text("\n".join([*lines, "requests:", "  memory: 3"]) + "\n", encoding="utf-8")
    assert problems_of(values_dir) == [
        f"V/qdrant.yaml:{len(lines) + 2}: requests.memory: 3 is above memory 2; the chart ignores a request above the "
        "limit (allowed: at most 2)"
    ]


def test_only_yaml_files_the_loader_would_not_read_are_reported(values_dir: Path) -> None:
    (values_dir / "redis.yml").write_text("a: 1\n", encoding="utf-8")
    (values_dir / "README.md").write_text("notes\n", encoding="utf-8")
    assert problems_of(values_dir) == [
        "V/redis.yml:1: -: unknown values file, never read; did you mean 'redis.yaml'? (allowed: pipeline.yaml, "
        "postgresql.yaml, redis.yaml, qdrant.yaml, elasticsearch.yaml, neo4j.yaml)"
    ]
