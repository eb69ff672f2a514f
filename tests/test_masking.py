"""Secret values never leave the cluster in diagnostics: what `mask` hides and what it keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbstack.masking import Masker, mask
from dbstack.report.masking import mask_files


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POSTGRES_PASSWORD=hunter2", "POSTGRES_PASSWORD=***"),
        ("      REDIS_PASSWORD:  hunter2", "      REDIS_PASSWORD:  ***"),
        ('{"password": "hunter2", "user": "x"}', '{"password": "***", "user": "x"}'),
        ("dsn postgresql://postgres:hunter2@pg:5432/postgres", "dsn postgresql://postgres:***@pg:5432/postgres"),
        ("redis://default:hunter2@redis:6379/0", "redis://default:***@redis:6379/0"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
        ("helm install --password hunter2 x", "helm install --password *** x"),
        ("api_key=abc123&x=1", "api_key=***&x=1"),
    ],
)
def test_mask_hides_credential_values(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_mask_hides_every_value_under_a_secret_data_block() -> None:
    text = "kind: Secret\ndata:\n  username: cG9zdGdyZXM=\n  anything: aHVudGVyMg==\nmetadata:\n  name: pg\n"
    assert mask(text) == "kind: Secret\ndata:\n  username: ***\n  anything: ***\nmetadata:\n  name: pg\n"


@pytest.mark.parametrize(
    "text",
    [
        'FATAL:  password authentication failed for user "postgres"',
        "      POSTGRES_PASSWORD:  <set to the key 'password' in secret 'pg-cluster-postgresql-account-postgres'>",
        "    SecretName:  pg-cluster-postgresql-account-postgres",
        "0/1 nodes are available: 1 Insufficient cpu",
    ],
)
def test_mask_keeps_text_that_names_but_does_not_hold_a_secret(text: str) -> None:
    assert mask(text) == text


def test_mask_hides_known_values_anywhere() -> None:
    assert mask("login ok for s3cr3t-value today", known=["s3cr3t-value", ""]) == "login ok for *** today"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<p>password=abc</p>", "<p>password=***</p>"),
        ("<h>Authorization: Bearer abc</h>", "<h>Authorization: Bearer ***</h>"),
        ("{password: abc}", "{password: ***}"),
        ("stringData:\n  password: two words</system-out>", "stringData:\n  password: ***</system-out>"),
    ],
)
def test_mask_keeps_the_structure_around_a_masked_value(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_mask_hides_a_quoted_flag_value_whole() -> None:
    assert mask('helm install --password "two words" x') == 'helm install --password "***" x'


def test_mask_hides_known_values_in_their_encoded_forms() -> None:
    text = "url=redis://u:p%40ss%26w0rd@h b64=cEBzcyZ3MHJk xml=p@ss&amp;w0rd"
    assert mask(text, known=["p@ss&w0rd"]) == "url=redis://u:***@h b64=*** xml=***"


def test_mask_hides_a_known_value_as_a_form_body_or_query_string_encodes_it() -> None:
    secret = "p ss&w0rd/x"
    text = "form=p+ss%26w0rd%2Fx path=p%20ss%26w0rd%2Fx raw=p ss&w0rd/x"
    assert mask(text, known=[secret]) == "form=*** path=*** raw=***"


def test_collected_files_are_masked_in_place_and_links_are_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "diagnostics"
    (folder / "postgresql").mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("p ss&w0rd/x\n", encoding="utf-8")
    (folder / "postgresql" / "logs.txt").write_bytes(b"GET /login?pw=p+ss%26w0rd%2Fx \xff\nok\n")
    (folder / "events.txt").write_text("nothing secret\n", encoding="utf-8")
    (folder / "link.txt").symlink_to(outside)
    mask_files(folder, Masker(["p ss&w0rd/x"]))
    assert (folder / "postgresql" / "logs.txt").read_bytes() == b"GET /login?pw=*** \xff\nok\n"
    assert (folder / "events.txt").read_text(encoding="utf-8") == "nothing secret\n"
    assert outside.read_text(encoding="utf-8") == "p ss&w0rd/x\n"
