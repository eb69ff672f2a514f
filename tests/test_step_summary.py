"""scripts/step-summary, which the workflows run: the step summary links to the uploaded artifact."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from report_samples import failed_run

REPO = Path(__file__).resolve().parents[1]
ARTIFACT = "https://github.com/o/r/actions/runs/7/artifacts/9"
TRACE = "https://dagger.cloud/o/traces/abc"


def step_summary(reports: Path, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    out = tmp_path / "step-summary.md"
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "step-summary"), str(reports)],
        env={"PATH": os.environ["PATH"], "GITHUB_STEP_SUMMARY": str(out), "RUNNER_TEMP": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, out.read_text(encoding="utf-8")


def test_a_failed_run_links_its_diagnostics_to_the_uploaded_artifact(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "results.json").write_text(json.dumps(failed_run().to_json()), encoding="utf-8")
    (reports / "summary.md").write_text("relative links only\n", encoding="utf-8")
    done, text = step_summary(reports, tmp_path, ARTIFACT_URL=ARTIFACT, TRACE_URL=TRACE)
    assert done.returncode == 0, done.stderr
    assert text.startswith("## ❌")
    assert f"[reports artifact]({ARTIFACT})" in text
    assert "relative links only" not in text
    assert text.rstrip().endswith(f"Dagger trace: {TRACE}")


def test_without_results_it_shows_what_there_is_and_never_fails_the_step(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "summary.md").write_text("the summary as written\n", encoding="utf-8")
    done, text = step_summary(reports, tmp_path, TRACE_URL="http://elsewhere/trace")
    assert (done.returncode, text) == (0, "the summary as written\n")
    elsewhere = tmp_path / "second"
    elsewhere.mkdir()
    done, text = step_summary(tmp_path / "missing", elsewhere)
    assert done.returncode == 0
    assert (
        text
        == f"The run ended before it wrote {tmp_path / 'missing'}/summary.md; the log of the Dagger step says why.\n"
    )
