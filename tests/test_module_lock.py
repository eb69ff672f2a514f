"""ci/uv.lock: with it, the Dagger Python runtime installs the module's locked set (`uv lock`, which keeps every pin
that still fits, then `uv sync --no-dev`) instead of whatever PyPI serves that day (`uv pip install`); see
sdk/python/runtime/main.go WithUpdates/WithInstall in the engine's source.

The check is uv's own (`uv lock --check --offline`, the runtime's uv version) on a copy of ci/ next to a stand-in
for the `sdk/` folder the engine generates there. The stand-in's `[project]` comes from the installed dagger-io
(the same release line as the engine dagger.json pins): its requirements are checked, not copied from the lock.
Only its development group, which is never installed (`--no-dev`), is taken from the lock itself."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

CI = Path(__file__).resolve().parents[1] / "ci"
LOCK = CI / "uv.lock"


def locked() -> dict[str, Any]:
    with LOCK.open("rb") as f:
        return tomllib.load(f)


def package(lock: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in lock["package"] if p["name"] == name]
    assert len(found) == 1, name
    return found[0]


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def stand_in_sdk(root: Path, lock: dict[str, Any]) -> None:
    """The `sdk/` folder the engine vendors next to pyproject.toml: dagger-io 0.0.0 with the SDK's requirements,
    and the `codegen` workspace member its development group names."""
    dist = importlib.metadata.distribution("dagger-io")
    requires = dist.requires or []
    dev = package(lock, "dagger-io")["metadata"]["requires-dev"]["dev"]
    dev_group = [d["name"] + d.get("specifier", "") for d in dev]
    (root / "sdk" / "codegen").mkdir(parents=True)
    (root / "sdk" / "pyproject.toml").write_text(
        f"""[project]
name = "dagger-io"
version = "0.0.0"
requires-python = "{dist.metadata["Requires-Python"]}"
dependencies = {toml_list(requires)}

[dependency-groups]
dev = {toml_list(dev_group)}

[tool.uv.sources]
codegen = {{ workspace = true }}

[tool.uv.workspace]
members = ["codegen"]
""",
        encoding="utf-8",
    )
    (root / "sdk" / "codegen" / "pyproject.toml").write_text(
        '[project]\nname = "codegen"\nversion = "0.0.0"\n', encoding="utf-8"
    )


def uv_check(root: Path) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is missing: run scripts/setup (requirements-dev.txt installs the runtime's uv)"
    return subprocess.run(
        [uv, "lock", "--check", "--offline", "--no-python-downloads", "--python", sys.executable],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"UV_CACHE_DIR": str(root / ".uv-cache"), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def module_copy(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock", ".python-version"):
        shutil.copy(CI / name, tmp_path / name)
    stand_in_sdk(tmp_path, locked())
    return tmp_path


def test_the_lock_is_current_for_the_module_s_pyproject(module_copy: Path) -> None:
    done = uv_check(module_copy)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [('    "pyyaml>=6.0",\n', ""), ('"pyyaml>=6.0"', '"pyyaml>=6.0", "httpx>=0.27"'), ('"anyio>=4.4"', '"anyio>=99"')],
    ids=["dropped", "added", "raised"],
)
def test_the_check_fails_when_the_pyproject_changed_without_locking(module_copy: Path, old: str, new: str) -> None:
    pyproject = module_copy / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert old in text
    pyproject.write_text(text.replace(old, new), encoding="utf-8")
    done = uv_check(module_copy)
    assert done.returncode != 0
    # Offline, uv cannot re-resolve: the lock no longer answers the pyproject.
    assert "needs to be updated" in done.stderr or "No solution found" in done.stderr


def test_the_sdk_is_the_editable_folder_the_runtime_generates_and_every_package_is_hashed() -> None:
    lock = locked()
    with (CI / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    assert pyproject["tool"]["uv"]["sources"]["dagger-io"] == {"path": "sdk", "editable": True}
    assert package(lock, "dagger-io")["source"] == {"editable": "sdk"}
    assert package(lock, "dbstack")["source"] == {"editable": "."}
    assert lock["requires-python"] == pyproject["project"]["requires-python"]
    registry = [p for p in lock["package"] if "registry" in p["source"]]
    assert registry, "the lock pins the module's dependencies from the registry"
    for p in registry:
        files = [*p.get("wheels", []), *([p["sdist"]] if "sdist" in p else [])]
        assert files and all(f["hash"].startswith("sha256:") for f in files), p["name"]
    names = {p["name"] for p in lock["package"]}
    for p in lock["package"]:
        assert {d["name"] for d in p.get("dependencies", [])} <= names, p["name"]
