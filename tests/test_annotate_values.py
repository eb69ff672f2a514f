"""`python -m dbstack.github.annotate` value by value: the failed cases it reads, the exact workflow commands it
prints, where the cap falls, and what it says for a bad file or bad arguments."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dbstack.github.annotate import FailedCase, annotation, failed_cases, main

JUNIT = """<testsuites>
  <testsuite name="dbstack pipeline">
    <testcase classname="pipeline.cluster" name="Deploy PG"><failure message="Pending">details</failure></testcase>
    <testcase classname="pipeline.addon" name="Install addon"><failure>  spaced text  </failure></testcase>
    <testcase name="bare"><error/></testcase>
    <testcase classname="pipeline.ok" name="fine"/>
  </testsuite>
  <testsuite><testcase classname="c" name="n"><error message="boom"/><failure message="also"/></testcase></testsuite>
</testsuites>
"""


def test_failed_cases_carry_their_suite_class_name_kind_and_message() -> None:
    assert failed_cases(JUNIT) == (
        5,
        [
            FailedCase("dbstack pipeline", "pipeline.cluster", "Deploy PG", "failure", "Pending"),
            FailedCase("dbstack pipeline", "pipeline.addon", "Install addon", "failure", "spaced text"),
            FailedCase("dbstack pipeline", "", "bare", "error", "error"),
            FailedCase("", "c", "n", "failure", "also"),
        ],
    )


def test_a_lone_testsuite_is_read_as_its_own_suite() -> None:
    xml = '<testsuite name="solo"><testcase name="t"><failure message="m"/></testcase></testsuite>'
    assert failed_cases(xml) == (1, [FailedCase("solo", "", "t", "failure", "m")])


def test_what_is_not_junit_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"^not XML \(syntax error: line 1, column 0\)$"):
        failed_cases("plain text")
    with pytest.raises(ValueError) as caught:
        failed_cases("<html/>")
    assert str(caught.value) == "root element is <html>, not <testsuites> or <testsuite>"


def test_an_annotation_is_titled_by_class_and_name_or_by_name_alone() -> None:
    with_class = FailedCase("s", "pipeline.cluster", "Deploy", "failure", "Pending")
    assert annotation(with_class) == "::error title=pipeline.cluster / Deploy::Pending"
    assert annotation(FailedCase("s", "", "bare", "error", "x")) == "::error title=bare::x"


def test_a_long_message_is_cut_to_500_characters_with_an_ellipsis() -> None:
    case = FailedCase("s", "", "t", "failure", "a" * 600)
    assert annotation(case) == "::error title=t::" + "a" * 499 + "…"
    exact = FailedCase("s", "", "t", "failure", "b" * 500)
    assert annotation(exact) == "::error title=t::" + "b" * 500


def junit_with(failures: int) -> str:
    cases = "".join(f'<testcase name="t{i}"><failure message="m{i}"/></testcase>' for i in range(failures))
    return f'<testsuites><testsuite name="s">{cases}<testcase name="ok"/></testsuite></testsuites>'


def test_ten_failures_are_all_annotated_without_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junit.xml").write_text(junit_with(10), encoding="utf-8")
    assert main([str(tmp_path / "junit.xml")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        *(f"::error title=t{i}::m{i}" for i in range(10)),
        "::notice title=Test cases::1 of 11 passed or skipped, 10 failed",
    ]


def test_past_ten_failures_the_rest_are_counted_in_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junit.xml").write_text(junit_with(12), encoding="utf-8")
    assert main([str(tmp_path / "junit.xml")]) == 0
    assert capsys.readouterr().out.splitlines()[10:] == [
        "::warning::2 more failed test cases; see junit.xml in the reports",
        "::notice title=Test cases::1 of 13 passed or skipped, 12 failed",
    ]


def test_main_reads_its_file_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junit.xml").write_text(junit_with(1), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["annotate", str(tmp_path / "junit.xml")])
    assert main() == 0
    assert capsys.readouterr().out.splitlines()[0] == "::error title=t0::m0"


@pytest.mark.parametrize("argv", [[], ["a.xml", "b.xml"]])
def test_main_wants_exactly_one_file(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "usage: python -m dbstack.github.annotate JUNIT_XML\n")


def test_main_names_the_file_and_the_reason_when_it_cannot_read_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text("<html/>", encoding="utf-8")
    assert main([str(junit)]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"{junit}: root element is <html>, not <testsuites> or <testsuite>\n")
