"""`benchmarks/orchestration.py --out DIR` writes a failure run whose summary.md says why on its first screen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_SCREEN = 15


def test_the_failure_runs_summary_names_the_container_level_reason_in_its_first_15_lines(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "orchestration.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    first_screen = (tmp_path / "failure" / "summary.md").read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN]
    reasons = [line for line in first_screen if line.startswith("- `pod/")]
    assert reasons, "\n".join(first_screen)
    assert reasons[0].startswith("- `pod/pg-cluster-postgresql-1 container postgresql`: **Unhealthy**: ")
    assert "Readiness probe failed: dial tcp" in reasons[0]
    assert first_screen[0].startswith("## ❌ dbstack: 1 of 4 databases failed (postgresql)")
