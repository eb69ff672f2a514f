"""How long the smoke suite takes against local PostgreSQL + Redis once the servers are up.

    .venv/bin/python benchmarks/smoke.py [--runs 5] [--budget 5.0] [--with-qdrant]

Starts the same servers as tests/smoke, runs the suite as the pipeline does (a fresh `python -m pytest`
process, so interpreter start and imports count), and prints server start-up time and per-run wall time.
Exits 1 when the median run exceeds the budget. A script, not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file is itself named smoke.py: take its folder off the path so that `smoke` means tests/smoke.
sys.path[:] = [str(REPO / "tests"), *(p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent)]

from smoke.local_servers import LocalPostgres, LocalRedis  # noqa: E402
from smoke.test_smoke_suite import generated_password, suite_command, suite_environment  # noqa: E402

# A throwaway password for throwaway local servers, as KubeBlocks generates them (letters and digits).
PASSWORD = generated_password()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", type=float, default=5.0, help="seconds allowed for the median run")
    parser.add_argument("--with-qdrant", action="store_true", help="also run Qdrant's in-process client checks")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with LocalPostgres() as postgres, LocalRedis() as redis_server:
        postgres.create_login("aperag", PASSWORD, "aperag")
        redis_server.create_acl_user("aperag", PASSWORD)
        startup = time.perf_counter() - started
        contract = {
            "POSTGRES_HOST": postgres.host,
            "POSTGRES_PORT": str(postgres.port),
            "POSTGRES_DB": "aperag",
            "POSTGRES_USER": "aperag",
            "POSTGRES_PASSWORD": PASSWORD,
            "REDIS_HOST": redis_server.host,
            "REDIS_PORT": str(redis_server.port),
            "REDIS_USER": "aperag",
            "REDIS_PASSWORD": PASSWORD,
            "SMOKE_REQUIRE": "postgresql,redis",
        }
        if args.with_qdrant:
            contract |= {"VECTOR_DB_CONTEXT": '{"url": ":memory:"}', "SMOKE_REQUIRE": "postgresql,redis,qdrant"}
        print(f"servers up in {startup:.2f}s (PostgreSQL {postgres.port}, Redis {redis_server.port})")
        durations = []
        with tempfile.TemporaryDirectory() as scratch:
            for n in range(args.runs):
                command = suite_command(Path(scratch) / f"junit-{n}.xml", "-q")
                t0 = time.perf_counter()
                result = subprocess.run(
                    command, env=suite_environment(contract), capture_output=True, text=True, check=False
                )
                durations.append(time.perf_counter() - t0)
                summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
                print(f"run {n + 1}: {durations[-1]:.2f}s  exit {result.returncode}  {summary}")
                if result.returncode != 0:
                    print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
                    return 2
    median = statistics.median(durations)
    print(f"suite wall time: min {min(durations):.2f}s  median {median:.2f}s  max {max(durations):.2f}s")
    if median > args.budget:
        print(f"over budget: median {median:.2f}s > {args.budget:.2f}s")
        return 1
    print(f"within budget ({args.budget:.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
