"""Whether a database's checks run, skip or fail, from the environment contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import pytest

from .errors import SmokeError, scrub_exception, scrubbed
from .settings import CONFIGURING_VARIABLES, MarkerPhase, SmokeSettings, mask

T = TypeVar("T")

SETTINGS_KEY = pytest.StashKey[SmokeSettings]()
MAX_DIFFERENCES = 10


def fail_plainly(message: str) -> NoReturn:
    # `from None`: called while handling a client error, which must not print as the cause's "context".
    raise pytest.fail.Exception(message, pytrace=False) from None


def _skip(message: str) -> NoReturn:
    raise pytest.skip.Exception(message) from None


def settings_of(config: pytest.Config) -> SmokeSettings:
    """The settings conftest parsed once at configure time."""
    return config.stash[SETTINGS_KEY]


class Gate:
    """Decides whether a database's checks run, skip, or fail, from the environment contract."""

    def __init__(self, settings: SmokeSettings) -> None:
        self.settings = settings

    def configured(self, key: str, kind: type[T]) -> T:
        value = getattr(self.settings, key)
        if value is None:
            variables = " or ".join(CONFIGURING_VARIABLES[key])
            reason = (
                f"{key} not configured: {variables} {'is' if len(CONFIGURING_VARIABLES[key]) == 1 else 'are'} not set"
            )
            if key in self.settings.required:
                fail_plainly(f"{reason}, but SMOKE_REQUIRE lists {key}")
            _skip(reason)
        assert isinstance(value, kind)
        return value

    def usable(self, key: str, kind: type[T]) -> T:
        """The settings, unless ApeRAG could not use them as configured: that fails, required or not."""
        value = self.configured(key, kind)
        problems: tuple[str, ...] = getattr(value, "problems", ())
        if problems:
            self.fail(key, "; ".join(problems))
        return value

    def fail(self, key: str, cause: str) -> NoReturn:
        fail_plainly(f"cannot use {key}: {mask(cause, self.settings.secrets())}")

    def unreachable(self, key: str, exc: BaseException) -> NoReturn:
        secrets = self.settings.secrets()
        detail = mask(str(exc), secrets) if isinstance(exc, SmokeError) else scrub_exception(exc, secrets)
        message = f"cannot use {key}: {detail}"
        if key in self.settings.required:
            fail_plainly(message)
        _skip(f"{message}; not in SMOKE_REQUIRE")

    def setup_failed(self, key: str, exc: BaseException) -> NoReturn:
        """A reachable database refused what ApeRAG needs from it: a failure, required or not."""
        secrets = self.settings.secrets()
        detail = mask(str(exc), secrets) if isinstance(exc, SmokeError) else scrub_exception(exc, secrets)
        notes: list[Any] = getattr(exc, "__notes__", [])
        suffix = "".join(f" ({mask(str(note), secrets)})" for note in notes)
        fail_plainly(f"cannot use {key}: {detail}{suffix}")

    def markers(
        self,
        key: str,
        phase: MarkerPhase,
        write: Callable[[], None],
        verify: Callable[[], list[str]],
        clean: Callable[[], None],
    ) -> None:
        """Run one marker phase against a reached database: a write or clean that fails, and every difference a
        verify finds, fail the check with what it was and what differs (never a credential)."""
        what = f"{phase.phase} {key} markers {phase.marker_id}"
        problems: list[str] = []
        try:
            with scrubbed(what, self.settings.secrets()):
                if phase.phase == "write":
                    write()
                elif phase.phase == "verify":
                    problems = verify()
                else:
                    clean()
        except SmokeError as exc:
            fail_plainly(mask(str(exc), self.settings.secrets()))
        if problems:
            shown = "; ".join(problems[:MAX_DIFFERENCES])
            more = f"; and {len(problems) - MAX_DIFFERENCES} more" if len(problems) > MAX_DIFFERENCES else ""
            fail_plainly(f"{key} markers {phase.marker_id} do not read back as written: {shown}{more}")
