"""What `dbstack` prints when it refuses its input: one problem is one line, several are counted, a missing values
folder and an unusable report folder are one line each with the command named."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbstack.cli.main import EXIT_INVALID, main

UNKNOWN_KEY = (
    "--set databases.redis.nope=1:1: databases.redis.nope: unknown key (the pipeline would never read it) "
    "(allowed: chartVersion, enabled, release)"
)


def test_one_problem_is_one_line_without_a_count(values_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--values", str(values_dir), "--set", "databases.redis.nope=1"]) == EXIT_INVALID
    assert capsys.readouterr().err.splitlines() == [UNKNOWN_KEY]


def test_several_problems_are_counted(values_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "validate",
        "--values",
        str(values_dir),
        "--set",
        "databases.redis.nope=1",
        "--set",
        "databases.qdrant.nope=2",
    ]
    assert main(argv) == EXIT_INVALID
    assert capsys.readouterr().err.splitlines() == [
        "--set databases.qdrant.nope=2:1: databases.qdrant.nope: unknown key (the pipeline would never read it) "
        "(allowed: chartVersion, enabled, release)",
        UNKNOWN_KEY,
        "2 problems found; nothing was deployed.",
    ]


def test_without_a_values_folder_the_command_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == EXIT_INVALID
    assert (
        capsys.readouterr().err == "dbstack validate: no values folder: there is no ./values here; pass --values DIR\n"
    )


def test_a_report_folder_that_is_a_file_is_refused(
    values_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main(["deploy", "--values", str(values_dir), "--out", str(a_file)]) == EXIT_INVALID
    assert capsys.readouterr().err == f"dbstack deploy: --out {a_file}: exists and is not a folder\n"
