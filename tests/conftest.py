from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"


@pytest.fixture
def values_dir(tmp_path: Path) -> Path:
    """A private copy of the repository's values/, safe to break."""
    target = tmp_path / "values"
    shutil.copytree(VALUES, target)
    return target
