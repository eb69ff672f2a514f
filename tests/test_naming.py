"""Name rules (KubeBlocks release names, Kubernetes namespaces) and derived names, checked against the regexes."""

from __future__ import annotations

import re

import pytest
from dbstack.config import naming
from hypothesis import assume, example, given
from hypothesis import strategies as st

# The rules as the issue and Kubernetes state them, written out here rather than imported, so the tests would
# catch a change to the module's own patterns.
RELEASE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

name_like = st.text(alphabet="abcxyz019-_.A", max_size=70)
anything = st.text(max_size=80)


# fullmatch, not match: `$` also matches before a final newline, and "a\n" is no name.
def is_release(name: str) -> bool:
    return bool(RELEASE.fullmatch(name)) and len(name) <= 16


def is_namespace(name: str) -> bool:
    return bool(NAMESPACE.fullmatch(name)) and len(name) <= 63


@given(st.one_of(name_like, anything))
@example("a" * 16)
@example("a" * 17)
@example("")
@example("a-")
@example("1a")
@example("a\n")
def test_release_problem_agrees_with_the_kubeblocks_rule(name: str) -> None:
    problem = naming.release_problem(name)
    assert (problem is None) == is_release(name)
    if problem is not None:
        assert "\n" not in problem


@given(st.one_of(name_like, anything))
@example("a" * 63)
@example("a" * 64)
@example("")
@example("1")
@example("-a")
@example("a\n")
def test_namespace_problem_agrees_with_the_kubernetes_rule(name: str) -> None:
    problem = naming.namespace_problem(name)
    assert (problem is None) == is_namespace(name)


@given(st.from_regex(RELEASE, fullmatch=True).filter(lambda s: len(s) <= 16))
def test_every_name_matching_the_release_rule_is_accepted(name: str) -> None:
    assert naming.release_problem(name) is None
    assert naming.namespace_problem(name) is None  # a valid release name is a valid namespace too


@given(st.text(alphabet="abc-019", min_size=17, max_size=40))
def test_names_longer_than_16_are_rejected_with_their_length(name: str) -> None:
    assert naming.release_problem(name) == f"is {len(name)} characters long, KubeBlocks allows at most 16"


@given(anything, st.integers(min_value=1, max_value=63))
@example("Feature/ABC", 16)
@example("123", 16)
@example("\ud800", 16)
@example("---", 1)
@example("", 5)
def test_slug_is_a_valid_release_name_within_its_length(text: str, max_length: int) -> None:
    result = naming.slug(text, min(max_length, 16), must_start_with_letter=True)
    assert is_release(result), result
    assert len(result) <= min(max_length, 16)


@given(anything, st.integers(min_value=1, max_value=63))
@example("Feature/ABC", 63)
@example("---", 1)
@example("", 1)
def test_slug_is_a_valid_namespace_within_its_length(text: str, max_length: int) -> None:
    result = naming.slug(text, max_length, must_start_with_letter=False)
    assert is_namespace(result), result
    assert len(result) <= max_length


@pytest.mark.parametrize(
    ("text", "max_length", "release", "expected"),
    [
        # The suffix is the start of the text's SHA-256 (`printf %s TEXT | sha256sum`): the same on every machine
        # and in every run, so a branch keeps its names from one push to the next.
        ("Feature/Add-Neo4j", 40, True, "feature-add-neo4j-23c71a"),
        ("Feature/Add-Neo4j", 16, True, "feature-a-23c71a"),
        ("feature/a", 16, False, "feature-a-951d42"),
        ("123-fix", 16, True, "fix-6af841"),
        ("Émile/ß", 63, False, "mile-721f5f"),
        ("---", 10, False, "cb3f91d54e"),
        ("", 8, True, "xe3b0c44"),
        ("main", 16, True, "main"),
    ],
)
def test_slug_is_stable(text: str, max_length: int, release: bool, expected: str) -> None:
    assert naming.slug(text, max_length, must_start_with_letter=release) == expected


@given(st.from_regex(RELEASE, fullmatch=True).filter(lambda s: len(s) <= 16))
@example("a--0")
def test_slug_keeps_a_name_that_is_already_valid(name: str) -> None:
    assert naming.slug(name, 16, must_start_with_letter=True) == name


@given(anything, anything, st.sampled_from([16, 40, 63]))
@example("feature/a", "feature-a", 16)
@example("Feature-A", "feature-a", 63)
@example("a" * 30 + "x", "a" * 30 + "y", 16)
def test_distinct_texts_get_distinct_slugs(first: str, second: str, max_length: int) -> None:
    assume(first != second)
    assert naming.slug(first, max_length, must_start_with_letter=False) != naming.slug(
        second, max_length, must_start_with_letter=False
    )


def test_slug_of_a_changed_text_keeps_a_readable_head() -> None:
    result = naming.slug("Feature/Add-Neo4j", 40, must_start_with_letter=True)
    assert re.fullmatch(r"feature-add-neo4j-[0-9a-f]{6}", result)


@given(st.integers(min_value=1, max_value=10**12))
def test_preview_namespace_is_a_valid_namespace_per_pull_request(number: int) -> None:
    namespace = naming.preview_namespace(number)
    assert namespace == f"pr-{number}"
    assert is_namespace(namespace)
    assert is_release(namespace) == (len(namespace) <= 16)


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=10**6))
def test_preview_namespaces_of_different_pull_requests_differ(first: int, second: int) -> None:
    assume(first != second)
    assert naming.preview_namespace(first) != naming.preview_namespace(second)


@pytest.mark.parametrize("number", [0, -1])
def test_preview_namespace_needs_a_positive_number(number: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        naming.preview_namespace(number)


@pytest.mark.parametrize("must_start_with_letter", [True, False])
def test_slug_needs_room_for_one_character(must_start_with_letter: bool) -> None:
    with pytest.raises(ValueError, match="max_length must be positive"):
        naming.slug("main", 0, must_start_with_letter=must_start_with_letter)
