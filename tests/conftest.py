from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import SpanProcessor

if TYPE_CHECKING:
    from engine_standins import Engine

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"


@pytest.fixture(autouse=True)
def outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests render reports as on a laptop even when CI runs them: no run links, no step summary appended."""
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _no_scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("module-runtime") / "scratch"


@pytest.fixture(autouse=True)
def no_module_scratch(monkeypatch: pytest.MonkeyPatch, _no_scratch: Path) -> None:
    """Outside Dagger's runtime there is no /scratch: the module's reports go to its cwd. Pointed at a folder that
    does not exist, so nothing a test runs (a broken copy of the module too) can write to the machine's /scratch."""
    module = sys.modules.get("pipeline")
    if module is not None:
        monkeypatch.setattr(module, "SCRATCH", str(_no_scratch))


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


class _SpanNames(SpanProcessor):
    """Keeps the names of the spans started while a test records them."""

    def __init__(self) -> None:
        self.names: list[str] | None = None
        self.installed = False

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.names is not None:
            self.names.append(span.name)


_SPAN_NAMES = _SpanNames()


@pytest.fixture
def span_names() -> Iterator[list[str]]:
    """The names of the spans started during the test, in order: the steps Dagger's progress view shows. Installs
    an SDK tracer provider (once per process: OpenTelemetry allows one) when none is set, as Dagger's runtime does."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    if not _SPAN_NAMES.installed:
        provider.add_span_processor(_SPAN_NAMES)
        _SPAN_NAMES.installed = True
    _SPAN_NAMES.names = []
    try:
        yield _SPAN_NAMES.names
    finally:
        _SPAN_NAMES.names = None
