"""Everything a run would trip over, found before any cluster exists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dbstack.config.capacity import Capacity, capacity
from dbstack.config.load import Config, load_config, profile_names
from dbstack.config.problems import InvalidInput, Problem


@dataclass(frozen=True)
class Validated:
    config: Config
    capacity: Capacity

    def summary(self) -> str:
        c = self.capacity
        enabled = ", ".join(f"{d.key} ({d.release})" for d in self.config.enabled) or "none"
        profile = self.config.profile or "none"
        overrides = len(self.config.overrides)
        read = f"{len(self.config.files)} files" + (f" + {overrides} --set" if overrides else "")
        return (
            f"values OK: {self.config.values_dir} ({read}), profile {profile}, namespace {self.config.namespace}\n"
            f"enabled: {enabled}\n"
            f"requests: {c.cpu:.2f} of {c.node_cpu:g} cpu, {c.memory_gi:.2f} of {c.node_memory_gi:g} Gi memory"
        )


def validate(
    values_dir: Path,
    profile: str | None = None,
    overrides: Sequence[str] = (),
    *,
    settings_fallback: Path | None = None,
) -> Validated:
    """Load and check the values; raise InvalidInput listing every problem, capacity included."""
    config = load_config(values_dir, profile, overrides, settings_fallback=settings_fallback)
    used = capacity(config)
    problems = _capacity_problems(config, used)
    if problems:
        raise InvalidInput(problems)
    return Validated(config, used)


def _capacity_problems(config: Config, used: Capacity) -> list[Problem]:
    problems = []
    for resource, need, have, unit, key in (
        ("cpu", used.cpu, used.node_cpu, "cores", "node.cpu"),
        ("memory", used.memory_gi, used.node_memory_gi, "Gi", "node.memoryGi"),
    ):
        if need > have + 1e-9:
            top = ", ".join(c.describe(resource) for c in used.largest(resource))
            where = config.where(key)
            problems.append(
                Problem(
                    where.file,
                    where.line,
                    key,
                    f"enabled databases and the control plane request {need:.2f} {unit}, the node has {have:g}; "
                    f"largest: {top}",
                    "lower requests in a profile, disable a database, or a larger node",
                )
            )
    return problems


__all__ = ["Validated", "profile_names", "validate"]
