"""What the enabled databases ask of the node, summed literally for the repository's values: each consumer, the
totals, the summary `dbstack validate` prints, and the problem when it does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import VALUES
from dbstack.config.capacity import Consumer, capacity
from dbstack.config.load import load_config
from dbstack.config.problems import InvalidInput
from dbstack.config.validate import validate

CONTROL_PLANE = [
    Consumer("kubeblocks", 0.5, 1.0),
    Consumer("kubeblocks-dataprotection", 0.5, 1.0),
    Consumer("coredns (k3s)", 0.1, 0.07),
]
DATABASES = [
    Consumer("pg-cluster-postgresql", 1.0, 1.0, 2),
    Consumer("redis-cluster-redis", 0.5, 0.5, 1),
    Consumer("qdrant-cluster-qdrant", 0.5, 0.5, 1),
    Consumer("es-cluster-mdit", 0.5, 1.0, 1),
    Consumer("es-cluster-kibana", 0.5, 1.0, 1),
]


def test_the_default_values_ask_this_of_the_node() -> None:
    validated = validate(VALUES)
    used = validated.capacity
    assert list(used.consumers) == CONTROL_PLANE + DATABASES
    assert (round(used.cpu, 6), round(used.memory_gi, 6), used.node_cpu, used.node_memory_gi) == (4.1, 6.07, 8, 16)
    assert used.fits
    assert validated.summary() == (
        f"values OK: {VALUES} (6 files), profile none, namespace default\n"
        "enabled: postgresql (pg-cluster), redis (redis-cluster), qdrant (qdrant-cluster), elasticsearch (es-cluster)\n"
        "requests: 4.10 of 8 cpu, 6.07 of 16 Gi memory"
    )


def test_the_backup_stage_counts_a_restored_cluster_beside_each_backed_up_database() -> None:
    config = load_config(VALUES, None, ["backup.enabled=true", "backup.methods.elasticsearch=none", "node.cpu=16"])
    assert list(capacity(config).consumers) == [
        *CONTROL_PLANE,
        *DATABASES,
        Consumer("pg-cluster-r-postgresql", 1.0, 1.0, 2),
        Consumer("redis-cluster-r-redis", 0.5, 0.5, 1),
        Consumer("qdrant-cluster-r-qdrant", 0.5, 0.5, 1),
    ]
    off = load_config(VALUES, None, ["backup.methods.elasticsearch=none"])
    assert list(capacity(off).consumers) == CONTROL_PLANE + DATABASES


def test_a_node_exactly_as_large_as_the_requests_holds_them() -> None:
    assert validate(VALUES, None, ["node.cpu=4.1", "node.memoryGi=6.07"]).capacity.fits
    # The ci profile's requests add up to 1.9500000000000002 in floating point: still 1.95 cores.
    assert validate(VALUES, "ci", ["node.cpu=1.95"]).capacity.fits


def test_a_node_too_small_names_the_three_largest_consumers_of_what_it_lacks() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate(VALUES, None, ["node.cpu=4", "node.memoryGi=2"])
    allowed = "(allowed: lower requests in a profile, disable a database, or a larger node)"
    assert str(raised.value).splitlines() == [
        "--set node.cpu=4:1: node.cpu: enabled databases and the control plane request 4.10 cores, the node has 4; "
        f"largest: pg-cluster-postgresql (2 x 0.5 cpu) 1.00, kubeblocks 0.50, kubeblocks-dataprotection 0.50 {allowed}",
        "--set node.memoryGi=2:1: node.memoryGi: enabled databases and the control plane request 6.07 Gi, the node "
        "has 2; largest: kubeblocks 1.00, kubeblocks-dataprotection 1.00, pg-cluster-postgresql (2 x 0.5 Gi) 1.00 "
        f"{allowed}",
    ]


def test_a_node_too_small_set_in_a_file_is_blamed_on_its_line(values_dir: Path) -> None:
    pipeline = values_dir / "pipeline.yaml"
    lines = pipeline.read_text(encoding="utf-8").splitlines()
    line = lines.index("  cpu: 8", lines.index("node:")) + 1
    lines[line - 1] = "  cpu: 2"
    pipeline.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as raised:
        validate(values_dir)
    (problem,) = raised.value.problems
    assert (problem.file, problem.line, problem.key) == (pipeline, line, "node.cpu")
    assert problem.message.startswith("enabled databases and the control plane request 4.10 cores, the node has 2; ")
