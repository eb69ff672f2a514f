"""A kubeconfig named on the command line, checked before any tool reads it.

kubectl treats a KUBECONFIG that names a missing file as no kubeconfig at all and then blames `localhost:8080`;
a kubeconfig without a usable current context ends the same way. So the file is read here first (with the limits
every input file gets), and what it must hold for kubectl to find a cluster is checked, naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dbstack.config.problems import Problem
from dbstack.config.yamlfile import load_yaml

_SECRET_KEY_PARTS = ("token", "password", "secret", "key-data")
"""Keys under `users[].user` whose values are credentials (token, password, client-key-data, auth-provider's
id-token / refresh-token / client-secret)."""


class KubeconfigError(Exception):
    """The kubeconfig cannot be used; the message says why, without the file's name (the caller adds it)."""


def read_kubeconfig(path: Path) -> tuple[str, ...]:
    """Check that `path` is a kubeconfig kubectl can use; return the credential values it holds (for masking)."""
    problems: list[Problem] = []
    doc = load_yaml(path, problems)
    if doc is None:
        problem = problems[0] if problems else None
        where = f"line {problem.line}: " if problem and problem.line > 1 else ""
        raise KubeconfigError(f"{where}{problem.message}" if problem else "cannot be read")
    data: Mapping[str, Any] = doc.data
    for key in ("clusters", "contexts"):
        entries = data.get(key)
        if not isinstance(entries, list) or not entries:
            raise KubeconfigError(f"is not a kubeconfig: it has no {key} (expected a list under {key!r})")
    names = [str(c.get("name")) for c in data["contexts"] if isinstance(c, Mapping) and c.get("name") is not None]
    current = data.get("current-context")
    if not current:
        raise KubeconfigError(
            "has no current-context, so kubectl would try localhost:8080; set one with "
            f"`kubectl config use-context` (contexts: {', '.join(names) or 'none named'})"
        )
    if str(current) not in names:
        raise KubeconfigError(f"current-context {current!r} is not one of its contexts ({', '.join(names)})")
    return tuple(dict.fromkeys(_credentials(data.get("users"))))


def _credentials(users: Any) -> Iterator[str]:
    if not isinstance(users, list):
        return
    for entry in users:
        user = entry.get("user") if isinstance(entry, Mapping) else None
        yield from _secret_strings(user, secret=False)


def _secret_strings(value: Any, *, secret: bool) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _secret_strings(inner, secret=secret or any(p in str(key).lower() for p in _SECRET_KEY_PARTS))
    elif isinstance(value, list):
        for inner in value:
            yield from _secret_strings(inner, secret=secret)
    elif secret and isinstance(value, str) and value.strip():
        yield value
