"""The one line `dbstack` prints for an error it did not expect: an OSError as the system words it, anything else
with its type, squeezed to one line, cut at 300 characters and masked."""

from __future__ import annotations

from dbstack.cli.main import _unexpected


def test_an_os_error_is_said_as_the_system_says_it_with_the_file() -> None:
    assert _unexpected(PermissionError(13, "Permission denied", "/tmp/x")) == "Permission denied: /tmp/x"
    assert _unexpected(OSError(28, "No space left on device")) == "No space left on device"


def test_an_os_error_without_words_is_reported_like_any_other_error() -> None:
    assert _unexpected(OSError("bare")) == ("unexpected error: OSError: bare (set DBSTACK_DEBUG=1 for the traceback)")


def test_any_other_error_is_one_masked_line_of_at_most_300_characters() -> None:
    text = _unexpected(ValueError("password=hunter2\n  went\twrong " + "x" * 400))
    assert text == (
        "unexpected error: ValueError: password=*** went wrong "
        + "x" * (300 - len("password=hunter2 went wrong "))
        + " (set DBSTACK_DEBUG=1 for the traceback)"
    )
