"""How fast `dbstack validate` answers on the repository's values, in-process and as a fresh command.

    .venv/bin/python benchmarks/validate.py [--runs 20] [--profile ci] [--target 0.5]

In-process: best and median of N calls of `validate()` (YAML parsing, rules, capacity; imports already done).
Fresh process: best and median of N runs of `python -m dbstack validate`, so interpreter start and every import
count, as they do for a user or a CI step; its CPU time too, which a busy machine inflates far less than wall
time. Prints one JSON line; exits 1 when the fresh-process median misses the target. A script, not a test:
timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"
TARGET_SECONDS = 0.5


def timed(action: Callable[[], object], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return seconds


def in_process(profile: str | None, runs: int) -> list[float]:
    from dbstack.config.validate import validate

    validate(VALUES, profile)  # warm the imports once; they are counted in the fresh-process numbers
    return timed(lambda: validate(VALUES, profile), runs)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fresh_process(profile: str | None, runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of each run; CPU time hardly depends on how busy the machine is."""
    command = [sys.executable, "-m", "dbstack", "validate", "--values", str(VALUES)]
    if profile:
        command += ["--profile", profile]
    # Any value of PYTHONDONTWRITEBYTECODE (even "0") stops bytecode caching, which would make every run compile.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}

    cpu: list[float] = []

    def run() -> None:
        before = children_cpu_seconds()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        cpu.append(children_cpu_seconds() - before)

    run()  # the first run may write bytecode caches; a user's second run would not pay that again
    cpu.clear()
    return timed(run, runs), cpu


def summary(seconds: list[float]) -> dict[str, float]:
    return {"best": round(min(seconds), 4), "median": round(statistics.median(seconds), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each kind")
    parser.add_argument("--profile", default=None, help="profile to layer, e.g. ci (default: none)")
    parser.add_argument("--target", type=float, default=TARGET_SECONDS, help="seconds allowed for a fresh run")
    args = parser.parse_args(argv)

    inside = summary(in_process(args.profile, args.runs))
    wall, cpu = fresh_process(args.profile, args.runs)
    outside = summary(wall)
    result = {
        "benchmark": "dbstack validate",
        "profile": args.profile,
        "runs": args.runs,
        "in_process_s": inside,
        "fresh_process_s": outside,
        "fresh_process_cpu_s": summary(cpu),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_s": args.target,
        "meets_target": outside["median"] < args.target,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
