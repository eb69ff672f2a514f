"""What Helm says about a release, read as Helm 3.13+ and Helm 4 print it: which release owns an object an install
cannot take over, and a release that a killed helm left in `pending-*` (with the command that frees it).

Sources (github.com/helm/helm, tags v3.13.3, v3.16.4, v3.19.5, v4.0.5):
- pkg/action/validate.go existingResourceConflict/checkOwnership: `<Kind> "<name>" in namespace "<ns>" exists and
  cannot be imported into the current release: invalid ownership metadata; label validation error: ...;
  annotation validation error: key "meta.helm.sh/release-name" must equal "<ours>": current value is "<theirs>"`,
  after "Unable to continue with install: " (Helm 3) or "unable to continue with install: " (Helm 4).
- pkg/action/upgrade.go prepareUpgrade: a release whose last revision is pending refuses with errPending; helm
  marks a revision failed when it is interrupted (SIGTERM, cmd/helm/install.go and upgrade.go) but not when it is
  killed (SIGKILL), so a killed helm leaves `pending-install`/`pending-upgrade`/`pending-rollback` for good.
- pkg/action/rollback.go does not check for a pending revision, and uninstall deletes whatever the release holds:
  they are what frees such a release. cmd/helm/history.go: `helm history -o json` lists revision, updated (RFC 3339,
  when that operation started), status, chart, app_version, description.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import datetime

from dbstack.plan.model import Command, helm

PENDING_STATUSES = ("pending-install", "pending-upgrade", "pending-rollback")
OWNERSHIP_CONFLICT = "invalid ownership metadata"

_OBJECT = re.compile(r'(\w+) "([^"]*)" in namespace "([^"]*)" exists and cannot be imported into the current release')
_CURRENT = re.compile(r'key "meta\.helm\.sh/release-(name|namespace)" must equal "[^"]*": current value is "([^"]*)"')
_MISSING = re.compile(r'missing key "meta\.helm\.sh/release-name"')


def ownership_conflict(stderr: str, release: str, namespace: str) -> str | None:
    """Helm's refusal to install over an object another owner holds, in plain words naming that owner; None when
    `stderr` is not that refusal."""
    if OWNERSHIP_CONFLICT not in stderr:
        return None
    found = _OBJECT.search(stderr)
    what = "an object"
    if found:
        what = f'{found[1]} "{found[2]}"' + (f" in namespace {found[3]}" if found[3] else "")
    current = dict(_CURRENT.findall(stderr))
    if "name" in current:
        owner_namespace = current.get("namespace", namespace)
        owner = f"Helm release {current['name']} in namespace {owner_namespace}"
    elif "namespace" in current:
        owner = f"Helm release {release} of namespace {current['namespace']}"
    elif _MISSING.search(stderr):
        owner = "no Helm release (it was created by hand or by another tool)"
    else:
        owner = "another owner"
    return (
        f"{what} already exists and belongs to {owner}, not to release {release} in namespace {namespace}: "
        "remove that release (or the object), or let this release adopt it (helm --take-ownership, Helm 3.17+)"
    )


@dataclass(frozen=True)
class Revision:
    number: int
    status: str
    updated: float | None
    """Unix seconds: when the operation that wrote this revision started."""


def history_command(release: str, namespace: str) -> Command:
    return helm("history", release, "-n", namespace, "-o", "json")


def parse_history(text: str) -> list[Revision] | None:
    """The revisions `helm history -o json` lists, oldest first; None when the text is not that list."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    revisions = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("revision"), int):
            return None
        revisions.append(Revision(item["revision"], str(item.get("status", "")), _unix(item.get("updated"))))
    return sorted(revisions, key=lambda r: r.number)


def _unix(value: object) -> float | None:
    """Go's RFC 3339 with nanoseconds ("2026-01-02T03:04:05.123456789Z") as Unix seconds."""
    if not isinstance(value, str):
        return None
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(trimmed).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class StuckRelease:
    """A release whose last revision is pending: another helm is working on it, or one was killed mid-way."""

    release: str
    namespace: str
    status: str
    revision: int
    since: float | None
    restore: int | None
    """The latest revision that was deployed (roll back to it); None: the release never deployed (uninstall it)."""

    def age_s(self, now: float) -> float | None:
        return None if self.since is None else max(0.0, now - self.since)

    def recovery(self, timeout_s: int) -> Command:
        """What frees it: a rollback to the last deployed revision, or an uninstall when there is none (waiting for
        its objects to go, so the install that follows does not meet them still terminating)."""
        ns = ("-n", self.namespace, f"--timeout={timeout_s}s")
        if self.restore is not None:
            return helm("rollback", self.release, str(self.restore), *ns)
        return helm("uninstall", self.release, *ns, "--ignore-not-found", "--wait")

    def note(self, now: float) -> str:
        age = self.age_s(now)
        since = f" for {_duration(age)}" if age is not None else ""
        action = (
            f"rolled back to revision {self.restore}"
            if self.restore is not None
            else "uninstalled (it never deployed) before installing it again"
        )
        return (
            f"Helm release {self.release} (namespace {self.namespace}) was {self.status} at revision {self.revision}"
            f"{since}, left by a helm that was killed: {action}"
        )


def stuck_release(release: str, namespace: str, history_json: str) -> StuckRelease | None:
    """The release as stuck, when `helm history -o json` shows its last revision pending; else None."""
    revisions = parse_history(history_json)
    if not revisions or revisions[-1].status not in PENDING_STATUSES:
        return None
    last = revisions[-1]
    earlier = revisions[:-1]
    restore = next((r.number for r in reversed(earlier) if r.status == "deployed"), None)
    if restore is None:
        restore = next((r.number for r in reversed(earlier) if r.status == "superseded"), None)
    return StuckRelease(release, namespace, last.status, last.number, last.updated, restore)


def helm_target(command: Command) -> tuple[str, str] | None:
    """(release, namespace) of a `helm upgrade --install` command; None for any other command."""
    argv = command.argv
    if argv[:3] != ("helm", "upgrade", "--install") or len(argv) < 4:
        return None
    namespace = "default"
    for flag, value in itertools.pairwise(argv):
        if flag in ("-n", "--namespace"):
            namespace = value
    return argv[3], namespace


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
