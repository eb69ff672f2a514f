"""The one credential-masking engine for text that leaves the cluster: diagnostics, causes, annotations, reports.

Two layers. Values the caller knows to be secret are masked in every form they take (raw, URL-encoded, base64 as a
Kubernetes Secret holds them, HTML-escaped as in junit.xml). Text shaped like a credential is masked whoever wrote
it: `password=...`, `"token": "..."`, `--password x`, `://user:pass@`, `Authorization: Bearer ...`, and every value
under a YAML `data:`/`stringData:` block.

Left alone on purpose: the bare key `Secret` (reports and `kubectl describe` name KubeBlocks Secrets), keys that name
a Secret rather than hold one (`secretName`, `secretKeyRef`), and references (`<set to the key 'password' in secret
'x'>`, `${VAR}`). A masked value never takes quotes, '&', '<', '>' or '}' with it, so a masked line of XML, JSON or
a YAML flow mapping keeps its structure.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"

_CREDENTIAL_NAME = (
    r"[\w.-]*(?:password|passwd|passphrase|pwd|token|credential|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|[\w.-]secret|secret[\w.-])[\w.-]*"
)
_NAME_KEYS = ("name", "names", "namespace", "ref")
_QUOTED = r"\"[^\"\n]*\"|'[^'\n]*'"
_BARE = r"[^\s\"',;&=:<>}][^\s\"',;&<>}]*"
# password=x, "password": "x", PASSWORD: x (env listings, YAML, JSON, describe output), or a --password x flag.
_CREDENTIAL = re.compile(
    rf"(?i)(?P<key>\b{_CREDENTIAL_NAME})(?P<sep>[\"']?[ \t]*[:=][ \t]*)(?P<value>{_QUOTED}|{_BARE})"
    rf"|(?P<flag>--{_CREDENTIAL_NAME})(?P<flagsep>[ \t]+)(?P<flagvalue>{_QUOTED}|(?!-){_BARE})"
)
_REFERENCE_PREFIXES = ("${", "$(")
_URL_PASSWORD = re.compile(r"(?i)(?P<prefix>\b[a-z][a-z0-9+.-]*://[^/?#\s:@]*:)[^@\s/]+(?=@)")
_AUTH_HEADER = re.compile(
    r"(?i)(?P<prefix>\bauthorization[\"']?[ \t]*[:=][ \t]*(?:(?:basic|bearer|token)[ \t]+)?)[^\s\"',;&<>]+"
)
_DATA_BLOCK = re.compile(r"^(?P<indent>[ \t]*)(?:data|stringData):[ \t]*$")
_DATA_ENTRY = re.compile(r"^(?P<key>[^:]*:[ \t]*)[^<\s][^<]*")
"""A value under `data:` is the rest of its line (up to a closing tag when the YAML sits inside XML)."""


def mask(text: str, known: Iterable[str] = ()) -> str:
    """Mask the `known` secret values (in all their forms) and anything shaped like a credential."""
    return Masker(known)(text)


class Masker:
    """Masks known secret values and credential-shaped text; applying it twice changes nothing more."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            variants |= secret_variants(secret)
        self._variants = sorted(variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        # Known values first: a pattern masking part of one (up to its '&', say) would hide the rest from replace.
        for variant in self._variants:
            text = text.replace(variant, MASK)
        return mask_patterns(text)


def secret_variants(secret: str) -> set[str]:
    """The forms a secret value takes in logs, URLs, Kubernetes Secret manifests and XML."""
    if not secret.strip():
        return set()
    encoded = base64.b64encode(secret.encode()).decode()
    forms = {secret, secret.strip(), quote(secret, safe=""), quote_plus(secret), encoded, encoded.rstrip("=")}
    forms.add(html.escape(secret))
    return {form for form in forms if form}


def mask_patterns(text: str) -> str:
    """Mask anything shaped like a credential, whether or not its value is known, line by line."""
    lines = []
    block_indent: int | None = None
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and line.strip() and indent <= block_indent:
            block_indent = None
        if block_indent is not None and ":" in line:
            lines.append(_DATA_ENTRY.sub(lambda m: f"{m.group('key')}{MASK}", line))
            continue
        block = _DATA_BLOCK.match(line)
        if block:
            block_indent = len(block.group("indent"))
        lines.append(_mask_line(line))
    return "\n".join(lines)


def _mask_line(line: str) -> str:
    line = _URL_PASSWORD.sub(lambda m: f"{m.group('prefix')}{MASK}", line)
    line = _AUTH_HEADER.sub(lambda m: f"{m.group('prefix')}{MASK}", line)
    return _CREDENTIAL.sub(_mask_credential, line)


def _mask_credential(match: re.Match[str]) -> str:
    is_flag = match.group("flag") is not None
    key = match.group("flag" if is_flag else "key")
    if key.lower().endswith(_NAME_KEYS):
        return match.group(0)
    separator = match.group("flagsep" if is_flag else "sep")
    return f"{key}{separator}{_masked_value(match.group('flagvalue' if is_flag else 'value'))}"


def _masked_value(value: str) -> str:
    if value.startswith(('"', "'")):
        quote_mark, inner = value[0], value[1:-1]
        return f"{quote_mark}{MASK if inner else ''}{quote_mark}"
    return value if value.startswith(_REFERENCE_PREFIXES) else MASK
