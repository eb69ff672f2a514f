"""Turning client errors into messages that are safe to print."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .settings import mask


class SmokeError(Exception):
    """A client error re-raised with credentials masked and the client's own frames dropped."""


def scrub_exception(exc: BaseException, secrets: Sequence[str]) -> str:
    return mask(f"{type(exc).__name__}: {exc}", secrets)


@contextmanager
def scrubbed(action: str, secrets: Sequence[str]) -> Iterator[None]:
    """Re-raise any client error as SmokeError with a masked message.

    `from None` matters: the original traceback's frames show call arguments (pytest's long style prints
    them), and a client's connect() receives the password as one.
    """
    try:
        yield
    except Exception as exc:  # pytest's skip/fail outcomes are BaseException and pass through
        raise SmokeError(f"{action}: {scrub_exception(exc, secrets)}") from None
