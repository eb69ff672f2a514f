"""Reading the smoke suite's JUnit file (pytest --junitxml, either junit_family) into CheckResults.

The database of a test case comes from its module: `test_<database>.py` makes a classname whose dotted parts
include `test_<database>` (`test_redis`, `smoke.test_redis`, `ci.smoke.test_redis.TestPool`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from dbstack.config.catalog import DATABASES
from dbstack.run.results import CheckResult, Outcome, RunResults
from dbstack.text import first_line

MAX_JUNIT_BYTES = 20 * 1024 * 1024
MAX_DETAIL_CHARS = 4000
UNKNOWN_DATABASE = "unknown"
WARNING_SUFFIX = "_warning"


class SmokeJunitError(ValueError):
    """The smoke suite's JUnit file is missing, too large or not JUnit XML."""


def parse_smoke_junit(path: Path) -> list[CheckResult]:
    """One CheckResult per test case, in file order."""
    root = _read(path)
    if root.tag not in ("testsuites", "testsuite"):
        raise SmokeJunitError(f"{path}: root element is <{root.tag}>, not <testsuites> or <testsuite>")
    return [_check(case) for case in root.iter("testcase")]


def _read(path: Path) -> ET.Element:
    try:
        size = path.stat().st_size
        if size > MAX_JUNIT_BYTES:
            raise SmokeJunitError(f"{path}: {size} bytes is more than a smoke JUnit file can be")
        # ElementTree resolves no external entities, and expat caps entity expansion.
        return ET.parse(path).getroot()  # noqa: S314
    except OSError as exc:
        raise SmokeJunitError(f"cannot read smoke JUnit file {path}: {exc.strerror or exc}") from None
    except ET.ParseError as exc:
        raise SmokeJunitError(f"{path} is not well-formed XML: {exc}") from None


def _module_index(parts: list[str]) -> int | None:
    """Where the test module sits in a dotted classname: a `test_<known database>` part, else the last `test_` one."""
    candidates = [i for i, part in enumerate(parts) if part.startswith("test_") and len(part) > len("test_")]
    known = [i for i in candidates if parts[i][len("test_") :] in DATABASES]
    if known:
        return known[0]
    return candidates[-1] if candidates else None


def database_of(classname: str, file: str = "") -> str:
    """`ci.smoke.test_postgresql` -> postgresql; falls back to xunit1's file attribute, then `unknown`."""
    parts = classname.split(".")
    index = _module_index(parts)
    if index is not None:
        return parts[index][len("test_") :]
    stem = Path(file).stem
    if stem.startswith("test_") and len(stem) > len("test_"):
        return stem[len("test_") :]
    return UNKNOWN_DATABASE


def _check_name(case: ET.Element) -> str:
    """The test's name, prefixed with its class when it has one (`TestPool::test_x`)."""
    parts = case.get("classname", "").split(".")
    index = _module_index(parts)
    classes = parts[index + 1 :] if index is not None else []
    return "::".join([*classes, case.get("name", "") or "(unnamed)"])


def _check(case: ET.Element) -> CheckResult:
    outcome, message = _outcome(case)
    return CheckResult(
        database=database_of(case.get("classname", ""), case.get("file", "")),
        name=_check_name(case),
        outcome=outcome,
        duration_s=_seconds(case.get("time")),
        message=message,
    )


def _outcome(case: ET.Element) -> tuple[Outcome, str | None]:
    problems = [child for child in case if child.tag in ("failure", "error")]
    if problems:
        return Outcome.FAILED, "\n".join(_describe(child) for child in problems)
    skipped = case.find("skipped")
    if skipped is not None:
        return Outcome.SKIPPED, _describe(skipped) or None
    return Outcome.PASSED, None


def _describe(element: ET.Element) -> str:
    """The message attribute (first line), then the tail of the body where the cause is."""
    body = (element.text or "").strip()
    message = element.get("message", "").strip() or first_line(body)
    if element.tag == "error" and message:
        message = f"error: {message}"
    if body and body != message:
        tail = body[-MAX_DETAIL_CHARS:]
        return f"{message}\n{tail}" if message else tail
    return message


def _seconds(value: str | None) -> float:
    try:
        seconds = float((value or "0").replace(",", ""))
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0


def parse_smoke_warnings(path: Path) -> dict[str, list[str]]:
    """The suite's `<database>_warning` properties (pytest writes them on the test suite), per database."""
    found: dict[str, list[str]] = {}
    for prop in _read(path).iter("property"):
        name, value = prop.get("name", ""), prop.get("value", "")
        database = name.removesuffix(WARNING_SUFFIX)
        if name.endswith(WARNING_SUFFIX) and database in DATABASES and value:
            found.setdefault(database, []).append(value)
    return found


def attach_checks(results: RunResults, checks: Iterable[CheckResult]) -> list[CheckResult]:
    """Add each database's checks after any it has (the marker checks of a backup stage that ran first); return the
    checks no database of the run owns."""
    by_database: dict[str, list[CheckResult]] = {}
    for check in checks:
        by_database.setdefault(check.database, []).append(check)
    for database in results.databases:
        database.checks = [*database.checks, *by_database.pop(database.key, [])]
    return [check for leftover in by_database.values() for check in leftover]


def smoke_outcome(checks: Iterable[CheckResult]) -> Outcome:
    """FAILED when any check failed, PASSED when any passed, else SKIPPED (nothing ran)."""
    outcomes = {c.outcome for c in checks}
    if any(not o.ok for o in outcomes):
        return Outcome.FAILED
    return Outcome.PASSED if Outcome.PASSED in outcomes else Outcome.SKIPPED
