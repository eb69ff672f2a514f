"""Mutation score of the test suite, per package: how many one-token breakages (mutants) of the code fail a test.

Uses mutmut (pinned below; installed into the running interpreter's environment when missing). Each package is
measured in its own staging copy of the work tree, `.mutation/<package>/` (git-ignored), so the work tree itself
is never modified. mutmut mutates a copy of `ci/dbstack` and `ci/pipeline.py` laid out as `src/` there, and the
tests import that copy (in-process and in the subprocesses they start, through PYTHONPATH).

Not part of CI or pytest: a full run of a large package takes hours on two cores. `--sample N --seed S` runs a
uniformly random sample of N mutants instead and reports the kill ratio with a 95% Wilson interval.

Counting: killed, timed-out and crashed mutants are detected (a hang or a crash fails a CI run too); survivors and
mutants no test executes are undetected; skipped and suspicious ones are reported but left out of the ratio.

Progress goes to stderr; the last line of stdout is one JSON object with the results per package. Survivors
(name and diff) are written to `.mutation/survivors-<package>.txt`.

Usage: python benchmarks/mutation.py [--package NAME]... [--sample N] [--seed S] [--max-children K]
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MUTMUT_VERSION = "3.8.1"
REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".mutation"
TIMEOUT_MULTIPLIER = 3.0
"""mutmut declares a timeout after (estimated test time + 1 s) x this x 2 CPU seconds. Its default, 15, lets one
hanging mutant of a package whose every test loads the config hold a core for a quarter of an hour; 3 still allows
six times the clean run's CPU time, and a timeout counts as detected either way."""
STAGED_SOURCE = "src"  # mutmut strips a leading "src." from module names, so `src/dbstack/x.py` is `dbstack.x`

# Package name -> files and folders under ci/ whose mutants count for it.
PACKAGES: dict[str, tuple[str, ...]] = {
    "shared": ("dbstack/text.py", "dbstack/masking.py"),
    "config": ("dbstack/config/",),
    "plan": ("dbstack/plan/",),
    "run": ("dbstack/run/",),
    "report": ("dbstack/report/",),
    "sim": ("dbstack/sim/",),
    "github": ("dbstack/github/",),
    "cli": ("dbstack/cli/",),
    "pipeline": ("pipeline.py",),
}

DETECTED = ("killed", "timeout", "segfault", "caught by type check")
UNDETECTED = ("survived", "no tests")

# Run inside the staging folder: lists the mutants mutmut will generate for the given files, as `mutmut run` names.
LIST_MUTANTS = """
import json, sys
from pathlib import Path
from mutmut.mutation.file_mutation import mutate_file_contents
from mutmut.utils.format_utils import get_mutant_name
names = []
for path in sys.argv[1:]:
    mutated = mutate_file_contents(path, Path(path).read_text(encoding="utf-8"))
    names += [get_mutant_name(Path(path), name) for name in mutated.mutant_names]
print(json.dumps(names))
"""

# Run inside the staging folder: the diff of each mutant named on stdin ({name: file}), as `mutmut show` prints it.
SHOW_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
where = json.load(sys.stdin)
print(json.dumps({name: get_diff_for_mutant(name, path=file) for name, file in where.items()}))
"""

# Imported at start-up by the Python subprocesses the tests start. mutmut records coverage ("stats") in its own
# process only; a subprocess asked to record would look for mutmut's config in the test's folder and fail.
SUBPROCESS_SITE = """
import os
if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    os.environ["MUTANT_UNDER_TEST"] = ""
"""


class MutmutFailed(RuntimeError):
    """`mutmut run` exited non-zero: the suite failed unmutated, or the run was stopped."""


@dataclass
class Outcome:
    package: str
    total: int
    statuses: dict[str, str]  # mutant name -> mutmut's status, for the mutants run
    sampled: bool
    wall_seconds: float
    survivors_file: Path

    def counts(self) -> Counter[str]:
        return Counter(self.statuses.values())

    def as_json(self, seed: int | None) -> dict[str, object]:
        counts = self.counts()
        detected = sum(counts[s] for s in DETECTED)
        undetected = sum(counts[s] for s in UNDETECTED)
        low, high = wilson(detected, detected + undetected)
        ratio = detected / (detected + undetected) if detected + undetected else None
        return {
            "mutants_total": self.total,
            "mutants_run": len(self.statuses),
            "sampled": self.sampled,
            "seed": seed if self.sampled else None,
            "killed": counts["killed"],
            "timeout": counts["timeout"],
            "crashed": counts["segfault"],
            "survived": counts["survived"],
            "no_tests": counts["no tests"],
            "suspicious": counts["suspicious"],
            "skipped": counts["skipped"],
            "not_checked": counts["not checked"] + counts["check was interrupted by user"],
            "kill_ratio_timeouts_as_killed": round(ratio, 4) if ratio is not None else None,
            "ci95_low": round(low, 4) if self.sampled else None,
            "ci95_high": round(high, 4) if self.sampled else None,
            "wall_seconds": round(self.wall_seconds),
            "survivors_file": str(self.survivors_file.relative_to(REPO)),
        }


def log(message: str) -> None:
    print(f"[mutation {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (no finite-population correction: slightly conservative)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def ensure_mutmut() -> Path:
    """The mutmut command of this interpreter's environment, installing the pinned version when it is not there."""
    try:
        installed = importlib.metadata.version("mutmut")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != MUTMUT_VERSION:
        log(f"installing mutmut=={MUTMUT_VERSION} (found {installed})")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"mutmut=={MUTMUT_VERSION}"], check=True)
    command = Path(sys.executable).parent / "mutmut"
    if not command.exists():
        raise SystemExit(f"mutmut installed but {command} is missing")
    return command


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


def stage(package: str) -> Path:
    """A fresh copy of the work tree's files (tracked and untracked, not ignored) plus `src/`, mutmut's config."""
    staging = WORK / package
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0"):
        source = REPO / name
        if name and source.is_file():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    shutil.copytree(staging / "ci" / "dbstack", staging / STAGED_SOURCE / "dbstack")
    shutil.copy2(staging / "ci" / "pipeline.py", staging / STAGED_SOURCE / "pipeline.py")
    top_level = sorted(p.name for p in staging.iterdir() if p.name not in (STAGED_SOURCE, "tests", "pyproject.toml"))
    only = [f"{STAGED_SOURCE}/{entry}{'*' if entry.endswith('/') else ''}" for entry in PACKAGES[package]]
    settings = {
        "source_paths": [STAGED_SOURCE],
        "only_mutate": only,
        "also_copy": top_level,
        "pytest_add_cli_args_test_selection": ["tests"],
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
        "timeout_multiplier": TIMEOUT_MULTIPLIER,
    }
    config = "\n[tool.mutmut]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    with (staging / "pyproject.toml").open("a", encoding="utf-8") as out:
        out.write(config)
    # Made before mutmut starts, so the import path below names a folder that exists from the first import on.
    (staging / "mutants" / STAGED_SOURCE).mkdir(parents=True)
    (staging / "subprocess-site").mkdir()
    (staging / "subprocess-site" / "sitecustomize.py").write_text(SUBPROCESS_SITE, encoding="utf-8")
    return staging


def package_files(staging: Path, package: str) -> list[str]:
    files: list[str] = []
    for entry in PACKAGES[package]:
        target = staging / STAGED_SOURCE / entry
        found = sorted(target.rglob("*.py")) if entry.endswith("/") else [target]
        files += [str(path.relative_to(staging)) for path in found]
    return files


def list_mutants(staging: Path, files: list[str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LIST_MUTANTS, *files], cwd=staging, capture_output=True, text=True, check=True
    )
    names: list[str] = json.loads(done.stdout)
    return names


def environment(staging: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Subprocesses the tests start (python -m dbstack) import the mutated copy too and switch on the mutant named
    # in MUTANT_UNDER_TEST, which mutmut sets in the environment. They are not counted as covering code, though:
    # a test that reaches a function only through a subprocess is not selected to run against its mutants.
    env["PYTHONPATH"] = os.pathsep.join([str(staging / "mutants" / STAGED_SOURCE), str(staging / "subprocess-site")])
    upstream = REPO.parent / "shared" / "upstream"
    if "DBSTACK_UPSTREAM" not in env and upstream.is_dir():
        env["DBSTACK_UPSTREAM"] = str(upstream)
    env.pop("MUTANT_UNDER_TEST", None)
    return env


def statuses(staging: Path, files: list[str], names: set[str] | None) -> dict[str, str]:
    """mutmut's verdict per mutant of the package (only `names` when given), read from its result files."""
    status_by_exit_code = importlib.import_module("mutmut.stats").status_by_exit_code
    found: dict[str, str] = {}
    for file in files:
        meta = staging / "mutants" / f"{file}.meta"
        if not meta.exists():
            continue
        exit_codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        for name, code in exit_codes.items():
            if names is None or name in names:
                found[name] = str(status_by_exit_code[code])
    return found


def run_mutmut(mutmut: Path, staging: Path, names: list[str] | None, max_children: int, files: list[str]) -> None:
    """`mutmut run` in the staging folder, its output in `.mutation/<package>.log`, a progress line every minute."""
    log_path = staging.parent / f"{staging.name}.log"
    wanted = set(names) if names is not None else None
    expected = len(names) if names is not None else None
    argv = [str(mutmut), "run", "--max-children", str(max_children), *(names or [])]
    with log_path.open("w", encoding="utf-8") as out:
        child = subprocess.Popen(argv, cwd=staging, env=environment(staging), stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                child.wait(timeout=60)
                break
            except subprocess.TimeoutExpired:
                try:
                    counts = Counter(statuses(staging, files, wanted).values())
                except json.JSONDecodeError:  # a .meta file mutmut is writing right now: report next minute
                    continue
                checked = sum(n for status, n in counts.items() if status != "not checked")
                of = expected if expected is not None else sum(counts.values())
                summary = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()) if s != "not checked")
                log(f"{staging.name}: {checked}/{of} checked ({summary or 'stats and clean run first'})")
    if child.returncode != 0:
        raise MutmutFailed(f"mutmut run failed (exit {child.returncode}); see {log_path.relative_to(REPO)}")


def write_survivors(staging: Path, package: str, files: list[str], found: dict[str, str]) -> Path:
    """Each undetected mutant's name, verdict and diff (what `mutmut show NAME` prints), in one file."""
    path = WORK / f"survivors-{package}.txt"
    undetected = sorted(name for name, status in found.items() if status in UNDETECTED)
    where = {name: file for file in files for name in statuses(staging, [file], set(undetected))}
    done = subprocess.run(
        [sys.executable, "-c", SHOW_DIFFS],
        input=json.dumps(where),
        cwd=staging,
        capture_output=True,
        text=True,
        check=True,
    )
    diffs: dict[str, str] = json.loads(done.stdout)
    path.write_text("".join(f"# {name}: {found[name]}\n{diffs[name]}\n\n" for name in undetected), encoding="utf-8")
    return path


def measure(mutmut: Path, package: str, sample: int | None, seed: int, max_children: int) -> Outcome:
    started = time.monotonic()
    staging = stage(package)
    files = package_files(staging, package)
    every = list_mutants(staging, files)
    names: list[str] | None = None
    if sample is not None and sample < len(every):
        names = sorted(random.Random(seed).sample(sorted(every), sample))
    log(f"{package}: {len(every)} mutants in {len(files)} files; running {len(names) if names else 'all'}")
    run_mutmut(mutmut, staging, names, max_children, files)
    found = statuses(staging, files, set(names) if names is not None else None)
    survivors = write_survivors(staging, package, files, found)
    outcome = Outcome(package, len(every), found, names is not None, time.monotonic() - started, survivors)
    log(f"{package}: {json.dumps(outcome.as_json(seed))}")
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--package", action="append", choices=sorted(PACKAGES), help="repeatable; default: all")
    parser.add_argument("--sample", type=int, help="run a random sample of this many mutants per package")
    parser.add_argument("--seed", type=int, default=19, help="seed of the sample (default 19)")
    parser.add_argument("--max-children", type=int, default=1, help="mutmut's parallel test processes (default 1)")
    args = parser.parse_args(argv)
    # Started in the background by a shell, this process ignores SIGINT and so would every Python it starts: the
    # tests that interrupt a deploy with SIGINT need it handled. (exec resets a handled signal, not an ignored one.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mutmut = ensure_mutmut()
    commit = git("rev-parse", "HEAD").strip()
    dirty = bool(git("status", "--porcelain").strip())  # the staging copies take uncommitted files too
    results: dict[str, dict[str, object]] = {}
    for package in args.package or list(PACKAGES):
        try:
            results[package] = measure(mutmut, package, args.sample, args.seed, args.max_children).as_json(args.seed)
        except MutmutFailed as exc:
            log(f"{package}: {exc}")
            results[package] = {"error": str(exc)}
    print(
        json.dumps(
            {
                "tool": f"mutmut {MUTMUT_VERSION}",
                "date": datetime.date.today().isoformat(),
                "commit": commit,
                "work_tree_modified": dirty,
                "timeouts_count_as_killed": True,
                "timeout_multiplier": TIMEOUT_MULTIPLIER,
                "packages": results,
            }
        )
    )
    return 1 if any("error" in result for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
