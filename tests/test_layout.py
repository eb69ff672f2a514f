"""The package layout follows the flow of data: each package imports only the packages before it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "ci" / "dbstack"

# Rank of each package in the flow; a package may import packages of lower rank, and its own.
RANKS = {"shared": 0, "config": 1, "plan": 2, "run": 3, "report": 4, "sim": 5, "github": 5, "cli": 6, "main": 7}
SHARED_MODULES = {"text", "masking"}


def package_of(module: str) -> str:
    """`dbstack.run.kube` -> "run"; the shared helpers -> "shared"; `dbstack.__main__` -> "main"."""
    parts = module.split(".")
    assert parts[0] == "dbstack", module
    if len(parts) == 1:
        return "shared"
    head = parts[1]
    if head in SHARED_MODULES:
        return "shared"
    if head == "__main__":
        return "main"
    if head not in RANKS:
        raise AssertionError(f"{module}: {head!r} is not a package of the layout ({', '.join(sorted(RANKS))})")
    return head


def module_name(path: Path, core: Path = CORE) -> str:
    parts = list(path.relative_to(core.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


LAZY_LOADERS = {"_lazy", "import_module", "find_spec"}


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, top level or inside functions, and every "dbstack.x" string it loads lazily."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "dbstack":
                found.extend((node.lineno, f"dbstack.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call) and _called_name(node) in LAZY_LOADERS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def violations(path: Path, core: Path = CORE) -> list[str]:
    source = package_of(module_name(path, core))
    problems = []
    for line, target in imported_modules(path):
        where = f"{path.relative_to(core.parent)}:{line}"
        if target == "pipeline" or target.startswith("pipeline."):
            problems.append(f"{where}: imports the Dagger layer")
            continue
        if target != "dbstack" and not target.startswith("dbstack."):
            continue
        wanted = package_of(target)
        if wanted == source:
            continue
        if RANKS[wanted] >= RANKS[source]:
            problems.append(f"{where}: {source} may not import {wanted} ({target})")
    return problems


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_every_core_module_lives_in_a_package_of_the_layout() -> None:
    for path in core_files():
        package_of(module_name(path))


def test_imports_only_run_down_the_flow() -> None:
    problems = [line for path in core_files() for line in violations(path)]
    assert problems == []


@pytest.mark.parametrize("package", sorted(set(RANKS) - {"shared", "main"}))
def test_each_package_says_what_it_owns_and_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((CORE / package / "__init__.py").read_text(encoding="utf-8")))
    assert doc, f"{package}/__init__.py has no docstring"
    assert "import" in doc, f"{package}/__init__.py does not say what it may import"


def test_the_checker_catches_imports_up_the_flow_and_across(tmp_path: Path) -> None:
    fake_core = tmp_path / "dbstack"
    for package in ("config", "github"):
        (fake_core / package).mkdir(parents=True)
    bad = fake_core / "config" / "bad.py"
    bad.write_text(
        "from dbstack.run.results import Outcome\n"
        "def later() -> None:\n"
        "    import pipeline\n"
        "HANDLER = _lazy('dbstack.report.folder', 'write')\n"
        "from dbstack.config.catalog import DATABASES\n"
        "from dbstack.text import first_line\n"
    )
    across = fake_core / "github" / "across.py"
    across.write_text("from dbstack.sim import cluster\nfrom dbstack.report import write_reports\n")
    assert violations(bad, fake_core) == [
        "dbstack/config/bad.py:1: config may not import run (dbstack.run.results)",
        "dbstack/config/bad.py:3: imports the Dagger layer",
        "dbstack/config/bad.py:4: config may not import report (dbstack.report.folder)",
    ]
    assert violations(across, fake_core) == ["dbstack/github/across.py:1: github may not import sim (dbstack.sim)"]
