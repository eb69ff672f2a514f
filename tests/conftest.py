from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from engine_standins import Engine

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"


@pytest.fixture(autouse=True)
def outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests render reports as on a laptop even when CI runs them: no run links, no step summary appended."""
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def values_dir(tmp_path: Path) -> Path:
    """A private copy of the repository's values/, safe to break."""
    target = tmp_path / "values"
    shutil.copytree(VALUES, target)
    return target


@pytest.fixture
def engine_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Engine], None]:
    """Point the module's `dag` at a stand-in engine (engine_standins.py); the report folder goes under tmp_path
    (the module's cwd)."""
    import pipeline
    from engine_standins import Dag

    def use(engine: Engine) -> None:
        monkeypatch.setattr(pipeline, "dag", Dag(engine))
        monkeypatch.chdir(tmp_path)

    return use
