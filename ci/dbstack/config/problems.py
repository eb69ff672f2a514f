"""A problem found in the inputs, printed as `<file>:<line>: <key>: <what is wrong> (allowed: ...)`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    file: Path
    line: int
    key: str
    message: str
    allowed: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.key}: {self.message}"
        text = f"{text} (allowed: {self.allowed})" if self.allowed else text
        # One problem, one line: a key or value read from YAML may hold line breaks.
        return text.replace("\r", "\\r").replace("\n", "\\n")


class InvalidInput(Exception):
    """Raised with every problem at once, never with a partial list."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line, p.key))
        super().__init__("\n".join(str(p) for p in self.problems))
