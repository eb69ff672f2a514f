"""Masking secret values in text that leaves the cluster (diagnostics files, causes), line by line."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_SENSITIVE_NAME = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|credential|private[_-]?key)[A-Za-z0-9_.-]*"
)
# key: value, key=value, "key": "value", --key value (env listings, YAML, JSON, flags, describe output).
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?{_SENSITIVE_NAME}["']?)(?P<sep>\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;}}&]+)"""
    rf"""|(?P<flag>--{_SENSITIVE_NAME})(?P<flagsep>\s+)(?P<flagvalue>[^\s-]\S*)""",
    re.IGNORECASE,
)
_NAME_KEYS = ("name", "ref", "namespace", "names")
"""secretName: x, secretKeyRef: y name Secrets, they hold no secret."""
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/?#@\s]*):(?P<password>[^@/\s]+)@")
_AUTH_HEADER = re.compile(r"(?P<key>authorization\s*:\s*(?:bearer|basic)\s+)\S+", re.IGNORECASE)
_DATA_BLOCK = re.compile(r"^(?P<indent>\s*)(?:data|stringData):\s*$")
_REFERENCE = re.compile(r"^<set to the key .* in secret .*>$|^<[^>]*>$")
"""`kubectl describe` shows secretKeyRef env as `<set to the key 'password' in secret 'x'>`: a name, not a value."""


def mask(text: str, known: Iterable[str] = ()) -> str:
    """Replace secret values with ***: values of password/token-like keys, URL passwords, Authorization headers,
    every value under a YAML `data:`/`stringData:` block, and any of the `known` values wherever they appear."""
    lines = []
    block_indent: int | None = None
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and line.strip() and indent <= block_indent:
            block_indent = None
        if block_indent is not None and ":" in line:
            key = line.split(":", 1)[0]
            lines.append(f"{key}: {MASK}")
            continue
        match = _DATA_BLOCK.match(line)
        if match:
            block_indent = len(match.group("indent"))
        lines.append(_mask_line(line))
    masked = "\n".join(lines)
    for value in known:
        if value:
            masked = masked.replace(value, MASK)
    return masked


def _mask_line(line: str) -> str:
    line = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", line)
    line = _AUTH_HEADER.sub(lambda m: f"{m.group('key')}{MASK}", line)
    return _KEY_VALUE.sub(_mask_value, line)


def _mask_value(match: re.Match[str]) -> str:
    if match.group("flag"):
        return f"{match.group('flag')}{match.group('flagsep')}{MASK}"
    key, value = match.group("key"), match.group("value")
    if key.strip("\"'").lower().endswith(_NAME_KEYS):
        return match.group(0)
    if _REFERENCE.match(value) or value == MASK or value.startswith(("<", "${", "$(")):
        return match.group(0)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{key}{match.group('sep')}{quote}{MASK}{quote}"
