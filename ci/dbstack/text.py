"""Small text helpers shared by the orchestrator, the reports and the Dagger layer."""

from __future__ import annotations


def first_line(text: str | None) -> str:
    """The most useful line of an error output or a cause: its first non-blank line, stripped ("" if none)."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def last_line(text: str | None) -> str:
    """The latest answer of a command that kept retrying: its last non-blank line, stripped ("" if none)."""
    return first_line("\n".join(reversed((text or "").splitlines())))
