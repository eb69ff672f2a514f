"""Report-only text helpers: text safe for XML, Markdown and JSON, masking a Results tree and collected files.

The masking itself (known secrets in all their forms, credential-shaped text) is dbstack.masking's one engine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from dbstack.masking import Masker

_T = TypeVar("_T")

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Drop terminal colour codes, control characters XML 1.0 forbids, and unpaired surrogates."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _ANSI_ESCAPE.sub("", text).replace("\r\n", "\n")
    return _CONTROL.sub("", text)


def map_strings(value: _T, transform: Callable[[str], str]) -> _T:
    """A copy of a Results tree (dataclasses, lists, dicts) with every string, key or value, transformed."""
    result: _T = _map(value, transform)
    return result


def _map(value: Any, transform: Callable[[str], str]) -> Any:
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        return transform(value)
    if isinstance(value, list):
        return [_map(v, transform) for v in value]
    if isinstance(value, dict):
        return {_map(k, transform): _map(v, transform) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _map(getattr(value, f.name), transform) for f in fields(value)})
    return value


def mask_files(folder: Path, masker: Masker) -> None:
    """Mask every regular file under `folder` in place; bytes that are not UTF-8 pass through unchanged.

    Symbolic links are left alone so a link planted in diagnostics/ cannot make this rewrite a file elsewhere.
    """
    if not folder.is_dir() or folder.is_symlink():
        return
    for root, _dirs, names in os.walk(folder):  # os.walk does not descend into linked directories
        for name in sorted(names):
            _mask_file(Path(root, name), masker)


def _mask_file(path: Path, masker: Masker) -> None:
    if path.is_symlink() or not path.is_file():
        return
    original = path.read_bytes().decode("utf-8", "surrogateescape")
    masked = masker(original)
    if masked != original:
        path.write_bytes(masked.encode("utf-8", "surrogateescape"))
