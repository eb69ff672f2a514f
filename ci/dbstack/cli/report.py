"""`dbstack report --results FILE --out DIR`: render a saved results.json again."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from dbstack.cli.main import EXIT_INVALID, EXIT_OK, CliError, prepare_out
from dbstack.config.inputfile import InputFileError, read_input_file
from dbstack.report.folder import copy_diagnostics, links_from_env, masked, write_reports
from dbstack.report.verdict import headline
from dbstack.run.results import ResultsFormatError, RunResults

MAX_RESULTS_BYTES = 64 * 1024 * 1024
"""A results.json holds causes and findings, never logs or diagnostics files: a few hundred KiB at most."""


class ResultsFileError(Exception):
    """A results file that cannot be read back; the message is one line naming the file."""


def load_results(path: Path) -> RunResults:
    try:
        raw = read_input_file(path, limit=MAX_RESULTS_BYTES).decode("utf-8")
    except InputFileError as exc:
        raise ResultsFileError(f"--results {path}: {exc}") from None
    except UnicodeDecodeError:
        raise ResultsFileError(f"{path} is not UTF-8 text, so not a results.json") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ResultsFileError(f"{path} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ResultsFileError(f"{path} is nested too deeply to be a results.json") from None
    try:
        return RunResults.from_json(data)
    except ResultsFormatError as exc:
        raise ResultsFileError(f"{path} is not a dbstack results file: {exc}") from None


def cli_report(args: argparse.Namespace) -> int:
    results_path: Path = args.results
    out_dir: Path = args.out
    try:
        results = load_results(results_path)
    except ResultsFileError as exc:
        print(f"dbstack report: {exc}", file=sys.stderr)
        return EXIT_INVALID
    prepare_out(out_dir)
    links, warnings = links_from_env(os.environ, args.run_url, args.artifact_url)
    for warning in warnings:
        print(f"dbstack report: warning: {warning}", file=sys.stderr)
    try:
        copy_diagnostics(results_path.parent, out_dir)
        write_reports(results, out_dir, links=links)
    except OSError as exc:
        raise CliError(f"--out {out_dir}: cannot write the reports: {exc.strerror or exc}") from None
    print(headline(masked(results)))
    print(f"Reports written to {out_dir}: junit.xml, summary.json, summary.md, results.json")
    return EXIT_OK
