"""Kubernetes and KubeBlocks name rules, and names derived from pull requests and branches."""

from __future__ import annotations

import re

RELEASE_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
RELEASE_MAX = 16
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE_MAX = 63


def release_problem(name: str) -> str | None:
    """Why `name` cannot be a KubeBlocks Cluster (Helm release) name, or None when it can."""
    if not name:
        return "is empty"
    if len(name) > RELEASE_MAX:
        return f"is {len(name)} characters long, KubeBlocks allows at most {RELEASE_MAX}"
    if not RELEASE_PATTERN.fullmatch(name):
        return "must start with a lowercase letter and hold only lowercase letters, digits and '-', not ending in '-'"
    return None


def namespace_problem(name: str) -> str | None:
    """Why `name` cannot be a Kubernetes namespace (an RFC 1123 label), or None when it can."""
    if not name:
        return "is empty"
    if len(name) > NAMESPACE_MAX:
        return f"is {len(name)} characters long, Kubernetes allows at most {NAMESPACE_MAX}"
    if not NAMESPACE_PATTERN.fullmatch(name):
        return "must hold only lowercase letters, digits and '-', starting and ending with a letter or digit"
    return None


def preview_namespace(pr_number: int) -> str:
    """The namespace of a pull request's preview environment: `pr-<number>`."""
    if pr_number < 1:
        raise ValueError(f"pull request number must be positive, got {pr_number}")
    return f"pr-{pr_number}"


def slug(text: str, max_length: int, *, must_start_with_letter: bool) -> str:
    """A name made from any text (a branch, say) that satisfies the rules above, stable for the same text.

    Lowercases, turns every run of other characters into '-', and when it must shorten or had to change the text
    beyond case, appends a short hash of the original so two branches never map to the same name. Never empty.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    rule = RELEASE_PATTERN if must_start_with_letter else NAMESPACE_PATTERN
    if rule.fullmatch(text) and len(text) <= max_length:
        return text  # already a valid name, kept as it is (even with a run of '-')
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if must_start_with_letter:
        cleaned = re.sub(r"^[^a-z]+", "", cleaned)
    import hashlib  # here, not at the top: `dbstack validate` imports this module and never needs it

    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    head = cleaned[: max(0, max_length - 7)].rstrip("-")
    if head:
        return f"{head}-{digest[:6]}"
    return (("x" if must_start_with_letter else "") + digest)[:max_length]
