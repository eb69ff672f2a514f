"""`dbstack --help` and every subcommand's `--help`, compared with the texts stored in tests/golden/help/.

The texts are what a user reads to learn what each command and flag does, so a changed word shows up here. After a
deliberate change, regenerate them with `DBSTACK_UPDATE_GOLDEN=1 pytest tests/test_cli_help.py`, read the diff
and commit it. argparse lays the text out to the terminal's width (COLUMNS), so the test fixes it; the layout is
Python 3.11's, the version the project pins.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dbstack.cli.main import main

GOLDEN = Path(__file__).resolve().parent / "golden" / "help"
UPDATE_ENV = "DBSTACK_UPDATE_GOLDEN"
WIDTH = "100"
COMMANDS = (
    "validate",
    "plan",
    "deploy",
    "upgrade-test",
    "teardown",
    "report",
    "preview-comment",
    "preview-kubeconfig",
)


def help_text(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setenv("COLUMNS", WIDTH)
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    return printed.out


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_matches_the_stored_text(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text([command] if command else [], monkeypatch, capsys)
    golden = GOLDEN / f"{command or 'dbstack'}.txt"
    if os.environ.get(UPDATE_ENV) == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_every_subcommand_has_a_stored_help_text() -> None:
    stored = sorted(p.stem for p in GOLDEN.glob("*.txt"))
    assert stored == sorted(["dbstack", *COMMANDS])
