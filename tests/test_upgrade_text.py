"""`dbstack plan --base-values` as a person reads it: each release with what happens to it, the diff under it, the
numbered steps with the markers around the upgrade, and the closing smoke step, written out literally."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dbstack.cli.main import main


def replace_once(path: Path, old: str, new: str, *, after: str = "") -> None:
    text = path.read_text()
    start = text.index(after) if after else 0
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old) :])


def test_the_upgrade_plan_line_by_line(values_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = values_dir.parent / "base"
    shutil.copytree(values_dir, base)
    replace_once(values_dir / "profiles/ci/redis.yaml", "cpu: 0.1", "cpu: 0.2")
    replace_once(values_dir / "pipeline.yaml", "enabled: true", "enabled: false", after="  qdrant:")
    assert main(["plan", "--values", str(values_dir), "--base-values", str(base), "--profile", "ci"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:17] == [
        f"Upgrade plan for namespace default (profile ci): the base from {base}, then the change",
        "Releases (the values Helm receives, after profiles and --set):",
        "  VolumeSnapshot CRDs     unchanged (v8.2.0)",
        "  snapshot controller     unchanged (v8.2.0)",
        "  KubeBlocks CRDs         unchanged (v1.0.1)",
        "  kubeblocks              unchanged (1.0.1)",
        "  kb-addon-postgresql     unchanged (1.0.1)",
        "  kb-addon-redis          unchanged (1.0.1)",
        "  kb-addon-elasticsearch  unchanged (1.0.1)",
        "  pg-cluster              unchanged (chart 1.0.1, PostgreSQL 16.4.0)",
        "  redis-cluster           upgrade: chart 1.0.1, Redis 7.2.7 -> chart 1.0.1, Redis 7.2.7",
        "                            ~ requests.cpu: 0.1 -> 0.2",
        "  es-cluster              unchanged (chart 1.0.1, Elasticsearch 8.8.2)",
        "  kb-addon-qdrant         left as it is: 1.0.1 (disabled by the change; an upgrade deletes nothing)",
        "  qdrant-cluster          left as it is: chart 1.0.1, Qdrant 1.10.0 (disabled by the change; an upgrade "
        "deletes nothing)",
        "Steps:",
        " 1. Deploy the base: the 12 steps `dbstack plan --values BASE` prints",
    ]
    assert [line for line in lines[17:] if not line.startswith("      ")] == [
        " 2. Write marker data into PostgreSQL (pg-cluster)",
        " 3. Write marker data into Redis (redis-cluster)",
        " 4. Write marker data into Elasticsearch (es-cluster)",
        " 5. Upgrade Redis (redis-cluster) and wait until Running with the new spec (after "
        "upgrade:markers-write:postgresql, upgrade:markers-write:redis, upgrade:markers-write:elasticsearch)",
        " 6. Read the marker data back from PostgreSQL (pg-cluster) (after upgrade:markers-write:postgresql)",
        " 7. Read the marker data back from Redis (redis-cluster) (after upgrade:cluster:redis)",
        " 8. Read the marker data back from Elasticsearch (es-cluster) (after upgrade:markers-write:elasticsearch)",
        " 9. Run the whole smoke suite (dagger call upgrade-test; the host CLI runs none)",
    ]
    assert lines[18] == "      runs:      the smoke suite's marker check, SMOKE_MARKERS=write"
    assert "      runs:      the smoke suite's marker check, SMOKE_MARKERS=verify" in lines
    assert (
        "      fails on:  Cluster Failed, Abnormal; pods ImagePullBackOff, CrashLoopBackOff, "
        "CreateContainerConfigError, InvalidImageName; first waits for the new generation to be observed, "
        "then for every component's upToDate"
    ) in lines


def test_an_upgrade_plan_without_changes_says_there_is_nothing_to_upgrade(
    values_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = values_dir.parent / "base"
    shutil.copytree(values_dir, base)
    assert main(["plan", "--values", str(values_dir), "--base-values", str(base)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Upgrade plan for namespace default (profile none): the base from {base}, then the change"
    assert lines[-2:] == [
        "    (nothing to upgrade: every release is unchanged)",
        " 2. Run the whole smoke suite (dagger call upgrade-test; the host CLI runs none)",
    ]
