"""What teardown and sweep say when they are done, the JSON the workflow reads from a sweep, and the release names
read from `helm list`: literal text."""

from __future__ import annotations

import pytest
from dbstack.github.preview import PreviewError, SweepReport, TeardownReport, release_names


def test_a_teardown_summary_names_the_releases_and_an_adoption() -> None:
    assert TeardownReport("pr-7", existed=False).summary() == "pr-7: not found, nothing to remove"
    assert TeardownReport("pr-7", existed=True).summary() == "pr-7: removed no releases and the namespace"
    assert (
        TeardownReport("pr-7", existed=True, releases=("pg-cluster", "redis-cluster"), adopted=True).summary()
        == "pr-7: removed pg-cluster, redis-cluster and the namespace (adopted: it had no dbstack labels)"
    )


def sweep_report() -> SweepReport:
    return SweepReport(
        removed=[TeardownReport("pr-3", existed=True, releases=("pg-cluster",)), TeardownReport("pr-9", existed=False)],
        expired=[9, 3],
        closed=[5, 2],
        kept=["pr-8", "pr-4"],
        unreadable={"pr-x": "label pr is not a number", "pr-a": "no head sha"},
        failed={"pr-6": "helm uninstall timed out", "pr-1": "namespace stuck terminating"},
    )


def test_a_sweep_summary_lists_every_namespace_by_what_happened_to_it() -> None:
    assert sweep_report().summary().split("\n") == [
        "swept 2 preview(s); 2 kept",
        "removed pr-3: removed pg-cluster and the namespace",
        "removed pr-9: not found, nothing to remove",
        "kept pr-8",
        "kept pr-4",
        "ignored pr-a: no head sha",
        "ignored pr-x: label pr is not a number",
        "FAILED pr-1: namespace stuck terminating",
        "FAILED pr-6: helm uninstall timed out",
    ]


def test_the_sweeps_json_is_sorted_and_not_ok_when_a_teardown_failed() -> None:
    assert sweep_report().to_json() == {
        "ok": False,
        "expired": [3, 9],
        "closed": [2, 5],
        "removed": ["pr-3", "pr-9"],
        "kept": ["pr-4", "pr-8"],
        "unreadable": {"pr-a": "no head sha", "pr-x": "label pr is not a number"},
        "failed": {"pr-1": "namespace stuck terminating", "pr-6": "helm uninstall timed out"},
    }
    assert list(sweep_report().to_json()["unreadable"]) == ["pr-a", "pr-x"]
    assert list(sweep_report().to_json()["failed"]) == ["pr-1", "pr-6"]
    assert SweepReport().to_json() == {
        "ok": True,
        "expired": [],
        "closed": [],
        "removed": [],
        "kept": [],
        "unreadable": {},
        "failed": {},
    }


@pytest.mark.parametrize(
    ("output", "names"),
    [
        ("", []),
        ("[]", []),
        ('[{"name": "pg-cluster", "status": "deployed"}, {"name": "redis-cluster"}]', ["pg-cluster", "redis-cluster"]),
    ],
)
def test_release_names_from_helm_list(output: str, names: list[str]) -> None:
    assert release_names(output) == names


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            "{not json",
            "helm list printed something that is not JSON (Expecting property name enclosed in double quotes)",
        ),
        ('{"name": "x"}', "helm list printed JSON that is not a list of releases"),
        ('[{"name": "x"}, "y"]', "helm list printed JSON that is not a list of releases"),
        ('[{"name": 3}]', "helm list printed JSON that is not a list of releases"),
    ],
)
def test_release_names_refuse_what_helm_list_does_not_print(output: str, message: str) -> None:
    with pytest.raises(PreviewError) as caught:
        release_names(output)
    assert str(caught.value) == message
