"""How problems are listed: by file, then line (as a number), then key; problems of the same key on the same line
in the order they were found (what is wrong with a value before what it collides with)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import VALUES
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
