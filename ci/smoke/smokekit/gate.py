"""Whether a database's checks run, skip or fail, from the environment contract."""

from __future__ import annotations

from typing import NoReturn, TypeVar

import pytest

from .errors import SmokeError, scrub_exception
from .settings import PRIMARY_VARIABLE, SmokeSettings, mask

T = TypeVar("T")

SETTINGS_KEY = pytest.StashKey[SmokeSettings]()


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
            reason = f"{key} not configured: {PRIMARY_VARIABLE[key]} is not set"
            if key in self.settings.required:
                pytest.fail(f"{reason}, but SMOKE_REQUIRE lists {key}", pytrace=False)
            pytest.skip(reason)
        assert isinstance(value, kind)
        return value

    def unreachable(self, key: str, exc: BaseException) -> NoReturn:
        secrets = self.settings.secrets()
        detail = mask(str(exc), secrets) if isinstance(exc, SmokeError) else scrub_exception(exc, secrets)
        message = f"cannot use {key}: {detail}"
        if key in self.settings.required:
            pytest.fail(message, pytrace=False)
        pytest.skip(f"{message}; not in SMOKE_REQUIRE")
