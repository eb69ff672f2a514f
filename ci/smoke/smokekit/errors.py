"""Turning client errors into messages that are safe to print, and cleanups that never hide the real failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from .settings import mask


class SmokeError(Exception):
    """A client error re-raised with credentials masked and the client's own frames dropped."""


def scrub_exception(exc: BaseException, secrets: Sequence[str]) -> str:
    return mask(f"{type(exc).__name__}: {exc}", secrets)


@contextmanager
def scrubbed(action: str, secrets: Sequence[str]) -> Iterator[None]:
    """Re-raise any client error as SmokeError whose message starts with `action`, masked.

    `from None` matters: the original traceback's frames show call arguments (pytest's long style prints
    them), and a client's connect() receives the password as one.
    """
    try:
        yield
    except SmokeError:
        raise
    except Exception as exc:  # pytest's skip/fail outcomes are BaseException and pass through
        raise SmokeError(f"{action}: {scrub_exception(exc, secrets)}") from None


@contextmanager
def cleanup(action: str, undo: Callable[[], object], secrets: Sequence[str]) -> Iterator[None]:
    """Run `undo` when the block ends. If the block failed, its error stays the one reported: an `undo` that
    fails too is only noted on it. If the block succeeded, a failing `undo` is the error, named by `action`."""
    try:
        yield
    except BaseException as failure:
        try:
            undo()
        except Exception as exc:
            failure.add_note(f"cleanup also failed: {action}: {scrub_exception(exc, secrets)}")
        raise
    with scrubbed(action, secrets):
        undo()
