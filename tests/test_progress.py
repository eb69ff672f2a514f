"""Progress displays: plain timestamped lines for CI, a redrawn table per database on a terminal."""

from __future__ import annotations

import io
from pathlib import Path

from dbstack.config.validate import validate
from dbstack.plan.build import build_plan
from dbstack.plan.model import Plan
from dbstack.run.progress import PlainProgress, TtyProgress, make_progress
from dbstack.run.results import Outcome, StepResult

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _plan(values_dir: Path) -> Plan:
    return build_plan(validate(values_dir).config)


def _result(step_id: str, outcome: Outcome, started: float, ended: float, cause: str | None = None) -> StepResult:
    return StepResult(step_id, "t", "cluster", "redis", outcome, started, ended, cause)


def test_plain_progress_prints_one_timestamped_line_per_event(values_dir: Path) -> None:
    step = _plan(values_dir).step("cluster:redis")
    out = io.StringIO()
    progress = PlainProgress(out)
    progress.step_started(step, T0)
    progress.waiting(step, "Cluster Creating; pods 0/1 ready", T0 + 5)
    progress.waiting(step, "Cluster Creating; pods 0/1 ready", T0 + 10)
    cause = "redis-cluster-redis-0 Pending: 0/1 nodes are available: 1 Insufficient cpu\nmore detail"
    progress.step_finished(step, _result(step.id, Outcome.FAILED, T0, T0 + 25, cause), T0 + 25)
    assert out.getvalue().splitlines() == [
        f"2026-01-01T00:00:00Z cluster:redis started: {step.title}",
        "2026-01-01T00:00:05Z cluster:redis waiting: Cluster Creating; pods 0/1 ready",
        "2026-01-01T00:00:25Z cluster:redis failed after 25 s: redis-cluster-redis-0 Pending: 0/1 nodes are "
        "available: 1 Insufficient cpu",
    ]


def test_tty_progress_redraws_one_row_per_database_in_place(values_dir: Path) -> None:
    plan = _plan(values_dir)
    out = io.StringIO()
    progress = TtyProgress(out)
    progress.step_started(plan.step("addon:redis"), T0)
    progress.step_started(plan.step("addon:qdrant"), T0)
    progress.waiting(plan.step("addon:redis"), "waiting for componentversion/redis phase Available", T0 + 12)
    frames = out.getvalue().split("\x1b[")
    last = out.getvalue().rsplit("\x1b[J", 1)[1].splitlines()
    assert len(last) == 2
    assert last[0].split()[:3] == ["redis", "addon", "12"]
    assert last[0].endswith("waiting for componentversion/redis phase Available")
    assert last[1].split()[:2] == ["qdrant", "addon"]
    assert "2F" in frames[-2]  # moved up over the two rows drawn before


def test_auto_progress_is_plain_in_ci_and_off_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(make_progress("auto", Terminal(), env={"CI": "true"}), PlainProgress)
    assert isinstance(make_progress("auto", io.StringIO(), env={}), PlainProgress)
    assert isinstance(make_progress("auto", Terminal(), env={}), TtyProgress)
    assert isinstance(make_progress("tty", io.StringIO(), env={"CI": "true"}), TtyProgress)


def test_what_a_tool_said_is_masked_and_stripped_of_terminal_codes_on_screen(values_dir: Path) -> None:
    step = _plan(values_dir).step("cluster:redis")
    said = "API error, retrying in 1 s: Get https://u:hunter2@10.0.0.1/api: \x1b]0;pwned\x07\x1b[2Jrefused"
    for display in (PlainProgress(plain := io.StringIO()), TtyProgress(tty := io.StringIO())):
        display.step_started(step, T0)
        display.waiting(step, said, T0 + 1)
    assert "hunter2" not in plain.getvalue() + tty.getvalue()
    assert "https://u:***@10.0.0.1/api: refused" in plain.getvalue()
    assert "https://u:***@10.0.0.1/api: refused" in tty.getvalue()
    assert "pwned" not in plain.getvalue() + tty.getvalue()


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_output_stops_the_display_not_the_run(values_dir: Path) -> None:
    step = _plan(values_dir).step("cluster:redis")
    for display in (PlainProgress(ClosedPipe()), TtyProgress(ClosedPipe())):
        display.step_started(step, T0)
        display.waiting(step, "Cluster Creating", T0 + 1)
        display.step_finished(step, _result(step.id, Outcome.PASSED, T0, T0 + 2), T0 + 2)


def test_a_rows_clock_stops_when_its_database_or_infrastructure_step_is_done(values_dir: Path) -> None:
    plan = _plan(values_dir)
    out = io.StringIO()
    progress = TtyProgress(out)
    kubeblocks, addon, cluster = plan.step("kubeblocks"), plan.step("addon:redis"), plan.step("cluster:redis")
    progress.step_started(kubeblocks, T0)
    progress.step_finished(kubeblocks, StepResult("kubeblocks", "t", "kubeblocks", None, Outcome.PASSED), T0 + 5)
    progress.step_started(addon, T0 + 5)
    progress.step_finished(addon, _result(addon.id, Outcome.PASSED, T0 + 5, T0 + 15), T0 + 15)
    progress.tick(T0 + 35)
    rows = out.getvalue().rsplit("\x1b[J", 1)[1].splitlines()
    assert [row.split()[:4] for row in rows] == [
        ["kubeblocks", "kubeblocks", "passed", "5.0"],
        ["redis", "addon", "passed", "30"],
    ]
    progress.step_started(cluster, T0 + 35)
    progress.step_finished(cluster, _result(cluster.id, Outcome.PASSED, T0 + 35, T0 + 45), T0 + 45)
    progress.tick(T0 + 100)
    rows = out.getvalue().rsplit("\x1b[J", 1)[1].splitlines()
    assert [row.split()[:4] for row in rows] == [
        ["kubeblocks", "kubeblocks", "passed", "5.0"],
        ["redis", "cluster", "passed", "40"],
    ]


def test_the_first_frame_is_drawn_where_the_cursor_is(values_dir: Path) -> None:
    out = io.StringIO()
    progress = TtyProgress(out)
    progress.step_started(_plan(values_dir).step("addon:redis"), T0)
    assert out.getvalue().startswith("redis ")
    assert "\x1b[" not in out.getvalue()
