"""The edges of masking and of `printable`: empty and one-character values, references, overlapping known secrets,
the exact encoded forms of a secret, and what `printable` leaves of line endings and control characters."""

from __future__ import annotations

import pytest
from dbstack.masking import Masker, mask, secret_variants
from dbstack.text import printable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('password=""', 'password=""'),
        ("password=''", "password=''"),
        ('password="x"', 'password="***"'),
        ("token='y'", "token='***'"),
        ("password=${DB_PASSWORD}", "password=${DB_PASSWORD}"),
        ("password=$(cat /run/pw)", "password=$(cat /run/pw)"),
        ("password=x", "password=***"),
    ],
)
def test_mask_keeps_empty_values_and_references_and_hides_one_character(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_a_known_secret_inside_a_longer_one_does_not_leave_the_rest_showing() -> None:
    masker = Masker(["s3cret", "my-s3cret"])
    assert masker("login my-s3cret then s3cret") == "login *** then ***"


def test_secret_variants_are_exactly_the_forms_a_secret_takes() -> None:
    assert secret_variants(" a/b c= ") == {
        " a/b c= ",
        "a/b c=",
        "%20a%2Fb%20c%3D%20",
        "+a%2Fb+c%3D+",
        "IGEvYiBjPSA=",
        "IGEvYiBjPSA",
    }
    assert secret_variants("abcd") == {"abcd", "YWJjZA==", "YWJjZA"}
    assert secret_variants("tokenW") == {"tokenW", "dG9rZW5X"}
    assert secret_variants("<&>") == {"<&>", "%3C%26%3E", "PCY+", "&lt;&amp;&gt;"}
    assert secret_variants("  ") == set()


def test_the_unpadded_base64_form_of_a_known_secret_is_masked() -> None:
    assert mask("jwt part YWJjZA.rest", known=["abcd"]) == "jwt part ***.rest"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nb", "a\nb"),
        ("bell\x07 and nul\x00 and del\x7f", "bell and nul and del"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b]0;title\x07after", "after"),
    ],
)
def test_printable_keeps_text_and_drops_escapes_and_control_characters(text: str, expected: str) -> None:
    assert printable(text) == expected
