"""One folder per run: junit.xml, summary.json, summary.md, results.json and diagnostics/, all masked."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from dbstack.masking import Masker
from dbstack.report.junit import render_junit
from dbstack.report.markdown import Links, render_markdown
from dbstack.report.masking import clean_text, map_strings, mask_files
from dbstack.report.summary_json import render_summary
from dbstack.run.results import RunResults

JUNIT_FILE = "junit.xml"
SUMMARY_JSON_FILE = "summary.json"
SUMMARY_MD_FILE = "summary.md"
RESULTS_FILE = "results.json"
DIAGNOSTICS_DIR = "diagnostics"
COLLECTED_DIRS = (DIAGNOSTICS_DIR, "smoke")
"""Folders others write into the report folder (diagnostics, the smoke suite's log and JUnit), masked in place.
Only these: `--out .` must never rewrite a user's own files."""
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def masked(results: RunResults, secrets: Iterable[str] = ()) -> RunResults:
    """A copy of `results` safe to print: known secrets and credential-shaped text masked, control codes gone."""
    masker = Masker(secrets)
    return map_strings(results, lambda value: masker(clean_text(value)))


def write_reports(results: RunResults, out_dir: Path, secrets: Iterable[str] = (), links: Links | None = None) -> None:
    """Write every report of the run into `out_dir` and append summary.md to $GITHUB_STEP_SUMMARY when set.

    `secrets` are values known to be secret (passwords read for the smoke tests); they are masked in every file,
    including the files others already wrote to out_dir/diagnostics/ and out_dir/smoke/. `links`: where the
    folder can be reached on the web, so summary.md's links work in a step summary (see `links_from_env`).
    """
    secrets = tuple(secrets)
    safe = masked(results, secrets)
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in COLLECTED_DIRS:
        mask_files(out_dir / folder, Masker(secrets))
    markdown = render_markdown(safe, links)
    _write(out_dir / RESULTS_FILE, _json(safe.to_json()))
    _write(out_dir / JUNIT_FILE, render_junit(safe))
    _write(out_dir / SUMMARY_JSON_FILE, _json(render_summary(safe)))
    _write(out_dir / SUMMARY_MD_FILE, markdown)
    append_step_summary(markdown)


def links_from_env(
    env: Mapping[str, str], run_url: str | None = None, artifact_url: str | None = None
) -> tuple[Links, list[str]]:
    """The report's web links: the given URLs, else the run GitHub Actions describes in `env`; plus a warning for
    each URL dropped because it is not https://."""
    warnings = []
    given = {"--run-url": run_url, "--artifact-url": artifact_url}
    for flag, url in given.items():
        if url is not None and not url.startswith("https://"):
            warnings.append(f"{flag} {url!r} is not an https:// URL; summary.md links to the files instead")
            given[flag] = None
    run = given["--run-url"]
    server, repository, run_id = (env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if run is None and server and repository and run_id and server.startswith("https://"):
        run = f"{server}/{repository}/actions/runs/{run_id}"
    return Links(run_url=run, artifact_url=given["--artifact-url"]), warnings


def copy_diagnostics(from_dir: Path, out_dir: Path) -> None:
    """Bring a run's diagnostics/ along when its reports are rendered into another folder.

    Links are copied as links, never followed, so nothing outside the run's folder is read.
    """
    source = from_dir / DIAGNOSTICS_DIR
    target = out_dir / DIAGNOSTICS_DIR
    if not source.is_dir() or source.is_symlink():
        return
    if target.exists() and source.resolve() == target.resolve():
        return
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)


def append_step_summary(markdown: str) -> None:
    """GitHub shows $GITHUB_STEP_SUMMARY on the run's page; a failure to write it must not fail the run."""
    path = os.environ.get(STEP_SUMMARY_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(markdown + "\n")
    except OSError as exc:
        print(f"dbstack: could not append to ${STEP_SUMMARY_ENV} ({exc.strerror or exc})", file=sys.stderr)


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _write(path: Path, content: str) -> None:
    """Write through a temporary file so an interrupted run never leaves half a report."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(content, encoding="utf-8")
    partial.replace(path)
