from __future__ import annotations

import base64
import json
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import pytest
from dbstack.masking import MASK, Masker, mask_patterns
from dbstack.report import masked, write_reports
from dbstack.run.results import CheckResult, Outcome, RunResults
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from report_samples import failed_run, written_files

PASSWORD = "Tr0ub4dor&3-horse"
"""Known to the caller (read from the database's Secret for the smoke tests)."""
UNKNOWN_PASSWORD = "n0t-Kn0wn-to-anyone"
"""Never passed in: only the generic credential patterns can catch it."""


def _leaky_results() -> RunResults:
    """A failed run with the known password pushed through every free-text field a report renders."""
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.TIMED_OUT)
    step.cause = f"{step.cause}\nhelm: values had password {PASSWORD} in them"
    results.steps[0].title = f"Install CRDs ({PASSWORD})"
    results.steps[0].diagnostics = [f"diagnostics/{PASSWORD}.txt"]
    results.run_id = f"run-{PASSWORD}"
    results.versions["leak"] = PASSWORD
    results.versions[PASSWORD] = "1.0"
    results.smoke_cause = f"psql: FATAL password authentication failed for {PASSWORD}"
    database = results.databases[2]
    database.mode = PASSWORD
    database.checks.append(
        CheckResult(database.key, "test_auth", Outcome.FAILED, 0.1, f"AuthError: {quote(PASSWORD, safe='')} rejected")
    )
    return results


def _write_diagnostics(out_dir: Path) -> None:
    folder = out_dir / "diagnostics" / "postgresql"
    folder.mkdir(parents=True)
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    (folder / "secret.yaml").write_text(f"data:\n  password: {encoded}\n  username: cG9zdGdyZXM=\n")
    (folder / "logs.txt").write_text(f"connecting with {PASSWORD}\nPOSTGRES_PASSWORD={UNKNOWN_PASSWORD}\n")


def test_known_password_appears_in_no_written_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    out_dir = tmp_path / "reports"
    _write_diagnostics(out_dir)
    write_reports(_leaky_results(), out_dir, secrets=[PASSWORD])
    files = written_files(out_dir)
    assert {"junit.xml", "summary.json", "summary.md", "results.json"} <= set(files)
    forms = [PASSWORD, quote(PASSWORD, safe=""), base64.b64encode(PASSWORD.encode()).decode(), UNKNOWN_PASSWORD]
    for name, content in {**files, "$GITHUB_STEP_SUMMARY": step_summary.read_bytes()}.items():
        for form in forms:
            assert form.encode() not in content, f"{name} leaks {form!r}"


def test_masking_keeps_the_rest_of_the_report_useful(tmp_path: Path) -> None:
    _write_diagnostics(tmp_path)
    write_reports(_leaky_results(), tmp_path, secrets=[PASSWORD])
    summary = json.loads((tmp_path / "summary.json").read_text())
    postgresql = summary["databases"][0]
    assert postgresql["secretName"] == "pg-cluster-postgresql-account-postgres"
    assert postgresql["cause"].startswith("pg-cluster-postgresql-1 Pending")
    assert summary["run"]["id"] == f"run-{MASK}"
    logs = (tmp_path / "diagnostics" / "postgresql" / "logs.txt").read_text()
    assert logs == f"connecting with {MASK}\nPOSTGRES_PASSWORD={MASK}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2x", f"password={MASK}"),
        ("POSTGRES_PASSWORD: hunter2x", f"POSTGRES_PASSWORD: {MASK}"),
        ('{"password": "two words"}', f'{{"password": "{MASK}"}}'),
        ("redis://default:hunter2x@redis:6379/0", f"redis://default:{MASK}@redis:6379/0"),
        (
            "postgresql+asyncpg://postgres:p%40ss@pg:5432/postgres",
            f"postgresql+asyncpg://postgres:{MASK}@pg:5432/postgres",
        ),
        ("Authorization: Bearer abc.def.ghi", f"Authorization: Bearer {MASK}"),
        ("api_key='k-123'", f"api_key='{MASK}'"),
    ],
)
def test_credential_shaped_text_is_masked_without_knowing_the_value(text: str, expected: str) -> None:
    assert mask_patterns(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "pg-cluster-postgresql-1 Pending: 0/1 nodes are available: 1 Insufficient cpu",
        "Secret: pg-cluster-postgresql-account-postgres",
        "assert password_length == 12",
        "http://es-cluster-mdit-http:9200/_cat/plugins",
        "secretKeyRef:\n  name: pg-cluster-postgresql-account-postgres",
    ],
)
def test_ordinary_text_and_secret_names_are_left_alone(text: str) -> None:
    assert mask_patterns(text) == text


def test_masking_twice_changes_nothing_more() -> None:
    masker = Masker([PASSWORD])
    once = masker(f"password={PASSWORD} url=redis://u:{PASSWORD}@h {PASSWORD}")
    assert masker(once) == once
    assert PASSWORD not in once


def test_masked_copy_leaves_the_original_and_the_outcomes_untouched() -> None:
    results = _leaky_results()
    safe = masked(results, [PASSWORD])
    assert PASSWORD in results.run_id
    assert PASSWORD not in json.dumps(safe.to_json())
    assert [s.outcome for s in safe.steps] == [s.outcome for s in results.steps]
    assert safe.passed == results.passed


def test_a_link_in_diagnostics_is_not_followed_when_masking(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(f"password={PASSWORD}\n")
    folder = tmp_path / "reports" / "diagnostics"
    folder.mkdir(parents=True)
    (folder / "link.txt").symlink_to(outside)
    write_reports(failed_run(), tmp_path / "reports", secrets=[PASSWORD])
    assert outside.read_text() == f"password={PASSWORD}\n"


def test_smoke_suite_files_are_masked_and_its_junit_stays_well_formed(tmp_path: Path) -> None:
    smoke = tmp_path / "smoke"
    smoke.mkdir()
    (smoke / "pytest.log").write_text(f"E   redis.AuthenticationError for {PASSWORD}\n")
    escaped = PASSWORD.replace("&", "&amp;")
    (smoke / "junit.xml").write_text(
        f'<testsuites><testsuite name="pytest"><testcase classname="test_redis" name="t">'
        f'<failure message="auth failed: {escaped}">password={escaped}</failure></testcase></testsuite></testsuites>'
    )
    write_reports(failed_run(), tmp_path, secrets=[PASSWORD])
    assert (smoke / "pytest.log").read_text() == f"E   redis.AuthenticationError for {MASK}\n"
    junit = (smoke / "junit.xml").read_text()
    assert PASSWORD not in junit and escaped not in junit
    failure = ET.fromstring(junit).find(".//failure")  # noqa: S314 (written by this test)
    assert failure is not None and failure.get("message") == f"auth failed: {MASK}"


def test_files_outside_the_collected_folders_are_never_rewritten(tmp_path: Path) -> None:
    own_file = tmp_path / "notes.txt"
    own_file.write_text(f"password={PASSWORD}\n")
    write_reports(failed_run(), tmp_path, secrets=[PASSWORD])
    assert own_file.read_text() == f"password={PASSWORD}\n"


def _render(results: RunResults, secrets: list[str]) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        write_reports(results, Path(folder), secrets=secrets)
        return written_files(Path(folder))


SECRETS = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=6, max_size=24)


@settings(max_examples=60, deadline=None)
@given(secret=SECRETS)
@example(secret="pg p@ss:/%#?& w0rd")  # the smoke suite's own test password: URL and XML specials
def test_no_known_secret_survives_in_any_file(secret: str) -> None:
    baseline = b"\n".join(_render(failed_run(), []).values())
    # Text the reports contain anyway (a tag, a version) is no leak.
    assume(secret.encode() not in baseline and quote(secret, safe="").encode() not in baseline)
    results = failed_run()
    step = next(s for s in results.steps if s.outcome is Outcome.TIMED_OUT)
    step.cause = f"connecting as postgres with {secret}\n{step.cause}"
    results.smoke_cause = f"{secret}: rejected"
    results.versions["image.toolbox"] = f"alpine/k8s:{secret}"
    results.databases[2].checks[1].message = f"AssertionError: {quote(secret, safe='')} != ***"
    for name, content in _render(results, [secret]).items():
        assert secret.encode() not in content, f"{name} leaks the secret"
        assert quote(secret, safe="").encode() not in content, f"{name} leaks the URL-encoded secret"
