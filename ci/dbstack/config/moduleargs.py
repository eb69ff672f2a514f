"""What the Dagger functions' options mean for the core: `--set` overrides for load_config, and values files
received as text. No engine client here, so it is tested like the rest of the core."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from dbstack.config.catalog import DATABASES
from dbstack.config.problems import InvalidInput, Problem

VALUES_SUFFIX = ".yaml"


def settings_overrides(
    *,
    enable: Sequence[str] = (),
    disable: Sequence[str] = (),
    namespace: str = "",
    kubeblocks_version: str = "",
    chart_version: str = "",
    extra: Sequence[str] = (),
) -> list[str]:
    """The options as `key.path=value` overrides, applied in this order (later wins): chart version for every
    database, KubeBlocks version, namespace, enable, disable, then the caller's own `--set` lines."""
    both = sorted(set(enable) & set(disable))
    if both:
        origin = Path("--enable/--disable")
        raise InvalidInput([Problem(origin, 1, key, "both enabled and disabled; choose one") for key in both])
    overrides: list[str] = []
    if chart_version:
        overrides += [f"databases.{key}.chartVersion={chart_version}" for key in DATABASES]
    if kubeblocks_version:
        overrides.append(f"kubeblocks.version={kubeblocks_version}")
    if namespace:
        overrides.append(f"namespace={namespace}")
    overrides += [f"databases.{key}.enabled=true" for key in _keys(enable)]
    overrides += [f"databases.{key}.enabled=false" for key in _keys(disable)]
    overrides += list(extra)
    return overrides


def _keys(names: Iterable[str]) -> list[str]:
    return [name.strip().lower() for name in names if name.strip()]


def write_values(files: Mapping[str, str], root: Path) -> Path:
    """Write values files received as {relative path: text} under `root`; refuse paths that leave it."""
    problems = []
    for name, text in sorted(files.items()):
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or relative.suffix != VALUES_SUFFIX:
            problems.append(Problem(Path(name), 1, "-", "not a values file under the values folder"))
            continue
        target = root.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if problems:
        raise InvalidInput(problems)
    return root
