"""results.json read back: a file that does not fit is refused with the first field that does not, by its path."""

from __future__ import annotations

from typing import Any

import pytest
from dbstack.run.results import Outcome, ResultsFormatError, RunResults, StepResult


def saved(**changes: Any) -> dict[str, Any]:
    results = RunResults("run-1", 100.0, 200.0, "k3s", None, "default", {"kubeblocks": "1.0.1"})
    results.steps = [StepResult("kubeblocks", "KubeBlocks", "kubeblocks", None, Outcome.PASSED, 100.0, 150.0)]
    data: dict[str, Any] = results.to_json()
    data.update(changes)
    return data


def refusal(data: Any) -> str:
    with pytest.raises(ResultsFormatError) as raised:
        RunResults.from_json(data)
    return str(raised.value)


def test_a_fitting_file_reads_back() -> None:
    results = RunResults.from_json(saved())
    assert (results.run_id, results.started_at, results.versions) == ("run-1", 100.0, {"kubeblocks": "1.0.1"})
    assert [(s.id, s.outcome, s.cause) for s in results.steps] == [("kubeblocks", Outcome.PASSED, None)]


def test_a_missing_field_is_named() -> None:
    data = saved()
    del data["run_id"]
    assert refusal(data) == "results: missing field 'run_id'"


def test_a_wrong_type_is_named_by_its_path_also_in_an_optional_field() -> None:
    assert refusal(saved(started_at="yesterday")) == "results.started_at: expected float, got str"
    step = saved()["steps"][0]
    assert refusal(saved(steps=[step, {**step, "cause": 5}])) == "results.steps[1].cause: expected str, got int"
    assert refusal(saved(steps={"a": step})) == "results.steps: expected a list, got dict"


def test_a_long_value_is_cut_short_in_the_message() -> None:
    assert refusal(saved(smoke_outcome="g" * 100)) == (
        f"results.smoke_outcome: '{'g' * 56}... is not one of passed, failed, timed_out, skipped, not_run, cancelled"
    )


def test_an_unknown_field_is_named() -> None:
    assert refusal(saved(colour="red")) == "results: unknown field 'colour'"


def test_another_schema_version_is_named() -> None:
    assert refusal(saved(schema_version=99)) == "results schema_version 99 is not 1"
