"""Small text helpers shared by the orchestrator, the reports and the Dagger layer."""

from __future__ import annotations

import re

_NOISE = re.compile(
    r"""^(?:
        WARNING:\s  # Helm 3 warning() (cmd/helm/helm.go): a group-readable kubeconfig up to 3.16, a deprecated chart
        | level=(?:DEBUG|INFO|WARN)\s  # Helm 4's slog text handler (internal/logging/logging.go)
        | [IWE]\d{4}\s\d\d:\d\d:\d\d\.\d{6}\s+\d+\s[^\]\s]+\]  # klog: Lmmdd hh:mm:ss.uuuuuu threadid file:line]
    )""",
    re.VERBOSE,
)
"""Lines kubectl and helm print beside their error that are not the error: Helm's warnings and kubectl's klog
lines (client-go's discovery cache logs every failed attempt before kubectl prints its own verdict)."""


def is_noise(line: str) -> bool:
    """A Helm warning or a klog line: never the cause of a failure."""
    return bool(_NOISE.match(line.strip()))


_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def first_line(text: str | None) -> str:
    """The most useful line of an error output or a cause: its first non-blank line that is not a Helm warning or
    a klog line, stripped; the first non-blank line when there is nothing else; "" if none."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return next((line for line in lines if not is_noise(line)), lines[0] if lines else "")


def last_line(text: str | None) -> str:
    """The latest answer of a command that kept retrying: its last non-blank line, stripped ("" if none)."""
    return first_line("\n".join(reversed((text or "").splitlines())))


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters: a tool's output printed on the user's
    terminal must not move the cursor, retitle the window or hide what comes after it."""
    return _CONTROL.sub("", _TERMINAL_ESCAPE.sub("", text.replace("\r\n", "\n")))
