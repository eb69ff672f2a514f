"""Small text helpers shared by the orchestrator, the reports and the Dagger layer."""

from __future__ import annotations


def first_line(text: str | None) -> str:
    """The most useful line of an error output or a cause: its first non-blank line, stripped ("" if none)."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""
