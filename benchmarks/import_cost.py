"""Import cost of the Dagger module: `import pipeline` against a bare `import dagger`, each in a fresh interpreter.

Every `dagger call` starts a new interpreter and imports the module, so whatever pipeline.py imports at top level
is paid on every call. Target: at most 1.3x a bare `import dagger`. Prints both medians and the ratio; exits 1
when the ratio is above the target.

Usage: python benchmarks/import_cost.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

TARGET_RATIO = 1.3
MODULE_SOURCE = Path(__file__).resolve().parents[1] / "ci"
TIMED_IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    """Seconds one fresh interpreter spends on `import <module>` (interpreter start-up excluded)."""
    done = subprocess.run(
        [sys.executable, "-c", TIMED_IMPORT.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        cwd=MODULE_SOURCE,
    )
    return float(done.stdout.strip())


def medians(modules: tuple[str, str], runs: int) -> tuple[float, float]:
    """Interleaved runs, so a slow moment of the machine weighs on both alike."""
    first: list[float] = []
    second: list[float] = []
    for _ in range(runs):
        first.append(import_seconds(modules[0]))
        second.append(import_seconds(modules[1]))
    return statistics.median(first), statistics.median(second)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per import (default 15)")
    args = parser.parse_args()
    import_seconds("pipeline")  # warm the file system cache for both
    bare, module = medians(("dagger", "pipeline"), args.runs)
    ratio = module / bare
    print(f"import dagger:   {bare * 1000:8.1f} ms (median of {args.runs})")
    print(f"import pipeline: {module * 1000:8.1f} ms (median of {args.runs})")
    verdict = "ok" if ratio <= TARGET_RATIO else "too slow"
    print(f"ratio:           {ratio:8.2f} (target <= {TARGET_RATIO}) {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
