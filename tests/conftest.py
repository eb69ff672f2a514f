from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
