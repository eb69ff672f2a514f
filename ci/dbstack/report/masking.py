"""Keeping secret values out of every written report, and text safe for XML, Markdown and JSON.

Two layers: values the caller knows to be secret (raw, URL-encoded and base64 as a Kubernetes Secret holds them),
and patterns that look like a credential whoever wrote them (`password=...`, `://user:pass@`, `PASSWORD: ...`).
The bare word "secret" is deliberately not a pattern: reports name KubeBlocks Secrets on purpose.
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

MASK = "***"
_T = TypeVar("_T")

_CREDENTIAL_NAME = (
    r"[\w.-]*(?:password|passwd|passphrase|pwd|secret[_-]?key|client[_-]?secret|"
    r"api[_-]?key|access[_-]?key|auth[_-]?token|token)[\w.-]*"
)
# key, optional closing quote of a JSON/YAML key, separator, then a quoted or bare value. A bare value stops at
# quotes, '&', '<' and '>' so masking a line of XML or JSON never breaks its structure.
_KEY_VALUE = re.compile(
    rf"(?i)(\b{_CREDENTIAL_NAME}[\"']?[ \t]*[:=][ \t]*)(?:\"([^\"\n]*)\"|'([^'\n]*)'|([^\s\"',;&=:<>][^\s\"',;&<>]*))"
)
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")
_AUTH_HEADER = re.compile(r"(?i)(\bauthorization[\"']?[ \t]*[:=][ \t]*(?:(?:basic|bearer|token)[ \t]+)?)([^\s\"',;]+)")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _mask_key_value(match: re.Match[str]) -> str:
    prefix, double_quoted, single_quoted, bare = match.groups()
    if double_quoted is not None:
        return f'{prefix}"{MASK if double_quoted else ""}"'
    if single_quoted is not None:
        return f"{prefix}'{MASK if single_quoted else ''}'"
    return f"{prefix}{MASK if bare else ''}"


def mask_patterns(text: str) -> str:
    """Mask anything shaped like a credential, whether or not its value is known."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _KEY_VALUE.sub(_mask_key_value, text)


def secret_variants(secret: str) -> set[str]:
    """The forms a secret value takes in logs, URLs and Kubernetes Secret manifests."""
    if not secret.strip():
        return set()
    encoded = base64.b64encode(secret.encode()).decode()
    forms = {secret, secret.strip(), quote(secret, safe=""), quote_plus(secret), encoded, encoded.rstrip("=")}
    forms.add(html.escape(secret))  # as it stands in an XML or HTML file (the smoke suite's junit.xml)
    return {form for form in forms if form}


class Masker:
    """Masks known secret values and credential-shaped text; applying it twice changes nothing more."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            variants |= secret_variants(secret)
        self._variants = sorted(variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for variant in self._variants:
            text = text.replace(variant, MASK)
        return mask_patterns(text)


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
