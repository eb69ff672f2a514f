"""How fast, and in how little memory, `dbstack` refuses hostile input, each case as a fresh command.

    .venv/bin/python benchmarks/hostile_input.py [--runs 5] [--target 1.0]

Cases (inputs that once hung the CLI or exhausted its memory, plus their neighbours): a FIFO as a values file, a
link to /dev/zero, an alias bomb, a 50 MiB file, a 1 MiB file of 500,000 values, 990 levels of nesting, `plan`
into a closed pipe, `deploy --out` an existing file, `deploy --kubeconfig` a missing file. For each: best and
median wall time of N runs (interpreter start and imports included), the exit code, and the peak memory of the
largest child. Prints one JSON line; exits 1 when a case's median misses the target or a run takes more than
256 MiB. A script, not a test: timings depend on the machine (tests/test_hostile_input.py holds the behaviour).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 1.0
MEMORY_LIMIT_MIB = 256


def alias_bomb() -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def prepare(root: Path) -> dict[str, tuple[list[str], Path]]:
    """Each case's arguments and the values folder it runs against."""
    cases: dict[str, tuple[list[str], Path]] = {}

    def values(name: str) -> Path:
        folder = root / name / "values"
        shutil.copytree(REPO / "values", folder)
        return folder

    v = values("fifo")
    (v / "redis.yaml").unlink()
    os.mkfifo(v / "redis.yaml")
    cases["fifo"] = (["validate", "--values", str(v)], v)
    v = values("dev-zero")
    (v / "redis.yaml").unlink()
    (v / "redis.yaml").symlink_to("/dev/zero")
    cases["link to /dev/zero"] = (["validate", "--values", str(v)], v)
    v = values("bomb")
    (v / "qdrant.yaml").write_text(alias_bomb(), encoding="utf-8")
    cases["alias bomb"] = (["validate", "--values", str(v)], v)
    v = values("big")
    with (v / "redis.yaml").open("wb") as big:
        big.write(b"a" * (50 * 1024 * 1024))
    cases["50 MiB file"] = (["validate", "--values", str(v)], v)
    v = values("many")
    (v / "redis.yaml").write_text("extra: [" + ",".join(["1"] * 500_000) + "]\n", encoding="utf-8")
    cases["500,000 values in 1 MiB"] = (["validate", "--values", str(v)], v)
    v = values("deep")
    (v / "qdrant.yaml").write_text("extra: " + "[" * 990 + "]" * 990 + "\n", encoding="utf-8")
    cases["990 levels deep"] = (["validate", "--values", str(v)], v)
    v = values("plain")
    cases["plan into a closed pipe"] = (["plan", "--json", "--values", str(v)], v)
    taken = root / "taken"
    taken.write_text("a file\n")
    cases["deploy --out a file"] = (["deploy", "--values", str(v), "--out", str(taken)], v)
    cases["deploy --kubeconfig missing"] = (["deploy", "--values", str(v), "--kubeconfig", str(root / "typo")], v)
    return cases


def run_once(argv: list[str], closed_stdout: bool) -> tuple[float, int]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PATH"] = "/nonexistent"  # no kubectl or helm: nothing past the input checks can run
    read_end, write_end = os.pipe()
    if closed_stdout:
        os.close(read_end)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dbstack", *argv],
            stdout=write_end if closed_stdout else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
        if not closed_stdout:
            os.close(read_end)
    return time.perf_counter() - started, done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each case")
    parser.add_argument("--target", type=float, default=TARGET_SECONDS, help="seconds allowed per case (median)")
    args = parser.parse_args(argv)

    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        cases = prepare(Path(scratch))
        for name, (case_argv, _values) in cases.items():
            runs = [run_once(case_argv, closed_stdout=name.startswith("plan into")) for _ in range(args.runs)]
            seconds = [s for s, _ in runs]
            results[name] = {
                "exit_code": runs[-1][1],
                "best_s": round(min(seconds), 4),
                "median_s": round(statistics.median(seconds), 4),
            }
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kilobytes on Linux
    slow = [name for name, r in results.items() if r["median_s"] > args.target]
    summary = {
        "benchmark": "dbstack on hostile input",
        "runs": args.runs,
        "cases": results,
        "largest_child_peak_rss_mib": round(peak_mib, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_s": args.target,
        "memory_limit_mib": MEMORY_LIMIT_MIB,
        "meets_target": not slow and peak_mib <= MEMORY_LIMIT_MIB,
        "python": platform.python_version(),
    }
    print(json.dumps(summary))
    return 0 if summary["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
