"""Kubernetes and KubeBlocks name rules, and names derived from pull requests and branches."""

from __future__ import annotations

import re
from dataclasses import dataclass

RELEASE_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
RELEASE_MAX = 16
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE_MAX = 63


@dataclass(frozen=True)
class NameRule:
    """At most `maximum` characters matching `pattern`, as `authority` demands; `shape` puts the pattern in words."""

    maximum: int
    pattern: re.Pattern[str]
    authority: str
    shape: str

    def problem(self, value: str) -> str | None:
        """Why `value` breaks the rule, or None when it keeps it."""
        if len(value) > self.maximum:
            return f"is {len(value)} characters long, {self.authority} allows at most {self.maximum}"
        if not self.pattern.fullmatch(value):
            return self.shape
        return None


RELEASE_RULE = NameRule(
    RELEASE_MAX,
    RELEASE_PATTERN,
    "KubeBlocks",
    "must start with a lowercase letter and hold only lowercase letters, digits and '-', not ending in '-'",
)
NAMESPACE_RULE = NameRule(
    NAMESPACE_MAX,
    NAMESPACE_PATTERN,
    "Kubernetes",
    "must hold only lowercase letters, digits and '-', starting and ending with a letter or digit",
)


OBJECT_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
OBJECT_NAME_MAX = 253
OBJECT_NAME_RULE = NameRule(
    OBJECT_NAME_MAX,
    OBJECT_NAME_PATTERN,
    "Kubernetes",
    "must hold only lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
)


def object_name_problem(name: str) -> str | None:
    """Why `name` cannot name a Kubernetes object such as a StorageClass (an RFC 1123 subdomain), or None."""
    return OBJECT_NAME_RULE.problem(name) if name else "is empty"


def release_problem(name: str) -> str | None:
    """Why `name` cannot be a KubeBlocks Cluster (Helm release) name, or None when it can."""
    return RELEASE_RULE.problem(name) if name else "is empty"


def namespace_problem(name: str) -> str | None:
    """Why `name` cannot be a Kubernetes namespace (an RFC 1123 label), or None when it can."""
    return NAMESPACE_RULE.problem(name) if name else "is empty"


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
