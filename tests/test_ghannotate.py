"""Failed JUnit cases become GitHub annotations that cannot inject workflow commands or show secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbstack.github.annotate import MAX_ANNOTATIONS, FailedCase, annotation, failed_cases, main

JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="dbstack" tests="4">
  <testsuite name="dbstack pipeline">
    <testcase classname="pipeline.kubeblocks" name="Install KubeBlocks" time="1"><skipped message="already"/></testcase>
    <testcase classname="pipeline.cluster.postgresql" name="Deploy PostgreSQL" time="600">
      <failure message="pg-cluster-postgresql-1 Pending: Insufficient cpu">details</failure>
    </testcase>
  </testsuite>
  <testsuite name="smoke redis">
    <testcase classname="smoke.redis" name="test_acl_user" time="0.1"/>
    <testcase classname="smoke.redis" name="test_pubsub" time="0.1"><error>connection reset</error></testcase>
  </testsuite>
</testsuites>
"""


def test_only_failed_and_errored_cases_are_reported_with_their_message() -> None:
    total, failed = failed_cases(JUNIT)
    assert total == 4
    assert [(f.name, f.kind, f.message) for f in failed] == [
        ("Deploy PostgreSQL", "failure", "pg-cluster-postgresql-1 Pending: Insufficient cpu"),
        ("test_pubsub", "error", "connection reset"),
    ]


def test_a_lone_testsuite_root_is_read_too() -> None:
    total, failed = failed_cases('<testsuite name="s"><testcase name="a"><failure message="x"/></testcase></testsuite>')
    assert (total, [f.name for f in failed]) == (1, ["a"])


def test_a_message_with_newlines_stays_one_workflow_command() -> None:
    case = FailedCase("s", "smoke.redis", "t", "failure", "boom\n::set-env name=X::y\r\n100%")
    line = annotation(case)
    assert "\n" not in line and "\r" not in line
    assert line.startswith("::error title=smoke.redis / t::")
    assert line.endswith("boom%0A::set-env name=X::y%0D%0A100%25")


def test_commas_and_colons_in_the_title_are_escaped() -> None:
    line = annotation(FailedCase("s", "a,b", "c:d", "failure", "m"))
    assert line.startswith("::error title=a%2Cb / c%3Ad::")


def test_a_password_in_a_failure_message_is_masked() -> None:
    line = annotation(FailedCase("s", "c", "n", "failure", "AUTH failed: password=hunter2secret"))
    assert "hunter2secret" not in line


def test_main_prints_one_annotation_per_failure_and_a_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT, encoding="utf-8")
    assert main([str(junit)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["::error", "::error", "::notice"]
    assert lines[-1].endswith("2 of 4 passed or skipped, 2 failed")


def test_main_caps_the_number_of_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = "".join(f'<testcase name="t{i}"><failure message="x"/></testcase>' for i in range(MAX_ANNOTATIONS + 5))
    junit = tmp_path / "junit.xml"
    junit.write_text(f'<testsuites><testsuite name="s">{cases}</testsuite></testsuites>', encoding="utf-8")
    assert main([str(junit)]) == 0
    out = capsys.readouterr().out
    assert out.count("::error") == MAX_ANNOTATIONS
    assert "5 more failed test cases" in out


@pytest.mark.parametrize("content", ["not xml", "<html/>"])
def test_main_rejects_a_file_that_is_not_junit_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(content, encoding="utf-8")
    assert main([str(junit)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_main_rejects_a_missing_file(tmp_path: Path) -> None:
    assert main([str(tmp_path / "absent.xml")]) == 2


def test_no_more_annotations_than_github_keeps_per_step() -> None:
    # actions/toolkit docs/problem-matchers.md: 10 error, 10 warning and 10 notice annotations per step.
    assert MAX_ANNOTATIONS == 10
