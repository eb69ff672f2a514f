"""GitHub Actions annotations for the failed test cases of a junit.xml: `python -m dbstack.github.annotate junit.xml`.

Failures then show on the workflow run's page without a JUnit reporter action, which would need `checks: write`,
a permission workflows on fork pull requests never get. Stdlib only, so a bare runner Python can run it.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dbstack.masking import mask

MAX_ANNOTATIONS = 10
"""GitHub keeps 10 error, 10 warning and 10 notice annotations per step (actions/toolkit, docs/problem-matchers.md,
"Limitations"); more would be dropped silently, so the rest are counted in one warning instead."""
MESSAGE_MAX = 500


@dataclass(frozen=True)
class FailedCase:
    suite: str
    classname: str
    name: str
    kind: str
    """failure or error."""
    message: str


def failed_cases(junit_xml: str) -> tuple[int, list[FailedCase]]:
    """The number of test cases and those that failed or errored; raises ValueError for text that is not JUnit."""
    try:
        root = ET.fromstring(junit_xml)  # noqa: S314 - our own report, not input from the network
    except ET.ParseError as exc:
        raise ValueError(f"not XML ({exc})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ValueError(f"root element is <{root.tag}>, not <testsuites> or <testsuite>")
    total = 0
    failed: list[FailedCase] = []
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    for suite in suites:
        for case in suite.iter("testcase"):
            total += 1
            for kind in ("failure", "error"):
                problem = case.find(kind)
                if problem is not None:
                    text = problem.get("message") or (problem.text or "").strip() or kind
                    failed.append(
                        FailedCase(suite.get("name", ""), case.get("classname", ""), case.get("name", ""), kind, text)
                    )
                    break
    return total, failed


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(case: FailedCase) -> str:
    """One `::error` workflow command; newlines are escaped, so the message cannot start a command of its own."""
    title = f"{case.classname} / {case.name}" if case.classname else case.name
    message = mask(case.message)
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    return f"::error title={_escape_property(title)}::{_escape_data(message)}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m dbstack.github.annotate JUNIT_XML", file=sys.stderr)
        return 2
    path = Path(args[0])
    try:
        total, failed = failed_cases(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    for case in failed[:MAX_ANNOTATIONS]:
        print(annotation(case))
    if len(failed) > MAX_ANNOTATIONS:
        print(f"::warning::{len(failed) - MAX_ANNOTATIONS} more failed test cases; see junit.xml in the reports")
    print(f"::notice title=Test cases::{total - len(failed)} of {total} passed or skipped, {len(failed)} failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
