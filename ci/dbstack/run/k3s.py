"""k3s inside a Dagger service: the scripts, flags and readiness checks, as data the Dagger layer wires together.

Kept free of the engine client so the choices (and their reasons) are testable and readable in one place.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from dbstack.plan.model import Command, kubectl
from dbstack.run.results import Outcome, StepResult
from dbstack.run.runner import CommandResult
from dbstack.text import first_line, last_line

API_PORT = 6443
API_ALIAS = "kubernetes"
"""The name the toolbox reaches the API server by; k3s puts `kubernetes` in its serving certificate."""
KUBECONFIG_DIR = "/etc/rancher/k3s"
STATE_DIR = "/var/lib/rancher"
IMAGE_STORE_IN_STATE = "agent/containerd"
"""containerd's image store, relative to k3s's data directory: kept from one cluster to the next."""
ENTRYPOINT_PATH = "/usr/local/bin/dbstack-k3s-entrypoint"
KUBECONFIG_MODE = 0o600
"""Owner-only, wherever the pipeline writes a kubeconfig: it is a credential, and Helm up to 3.16 prints "WARNING:
Kubernetes configuration file is group-readable" before every answer when it is not (cmd/helm/root_unix.go)."""

STATE_SLOTS = 4
"""How many k3s clusters one engine can run at once, each in its own slot of the state volume."""
HOLDER_VARIABLE = "DBSTACK_K3S_HOLDER"
"""What the entrypoint writes into its slot's `holder` file, so a refusal can name who holds every slot."""

ENTRYPOINT_SCRIPT = f"""#!/bin/sh
set -eu
# The two roots are variables only so tests can run this script against scratch folders.
cgroup=${{DBSTACK_CGROUP_ROOT:-/sys/fs/cgroup}}
state=${{DBSTACK_STATE_DIR:-{STATE_DIR}}}
# k3s leaves the root cgroup only when it runs as PID 1; under Dagger's init it is not, and on cgroup v2 a root
# cgroup that still holds processes cannot hand controllers to the pods' cgroups. Move everything into a child
# group and enable every controller for the subtree.
if [ -e "$cgroup/cgroup.controllers" ]; then
  mkdir -p "$cgroup/dbstack-init"
  while read -r pid; do
    echo "$pid" > "$cgroup/dbstack-init/cgroup.procs" 2>/dev/null || true
  done < "$cgroup/cgroup.procs"
  for controller in $(cat "$cgroup/cgroup.controllers"); do
    echo "+$controller" > "$cgroup/cgroup.subtree_control" 2>/dev/null || true
  done
fi
# Every k3s on this engine mounts the same state volume: each takes the first free slot, under a lock on fd 9
# that k3s inherits, so the kernel releases it when k3s ends, however it ends.
slot=""
i=0
while [ "$i" -lt {STATE_SLOTS} ]; do
  mkdir -p "$state/slots/$i"
  exec 9>"$state/slots/$i/lock"
  if flock -n 9; then
    slot="$state/slots/$i"
    break
  fi
  exec 9>&-
  i=$((i + 1))
done
if [ -z "$slot" ]; then
  holders=""
  for held in "$state"/slots/*/holder; do
    if [ -e "$held" ]; then
      holders="$holders${{holders:+; }}slot $(basename "$(dirname "$held")"): $(cat "$held")"
    fi
  done
  echo "all {STATE_SLOTS} k3s state slots of this Dagger engine are in use ($holders); stop one of them first" >&2
  exit 1
fi
echo "${{{HOLDER_VARIABLE}:-unnamed k3s}} since $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$slot/holder"
# A fresh cluster every run, but keep containerd's image store (in the slot) so a warm run does not pull the
# database images again.
data="$slot/k3s"
if [ -d "$data" ]; then
  for entry in "$data"/* "$data"/agent/*; do
    case "$entry" in
      "$data/agent"|"$data/{IMAGE_STORE_IN_STATE}") ;;
      *) rm -rf "$entry" ;;
    esac
  done
fi
# A kubeconfig left from an earlier cluster of the same name must not be read before this one writes its own.
for arg in "$@"; do
  case "$arg" in --write-kubeconfig=*) rm -f "${{arg#--write-kubeconfig=}}" ;; esac
done
# The API server binds to this container's address, which Dagger assigns at start.
address=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p')
[ -n "$address" ] || address=$(hostname -i 2>/dev/null | cut -d' ' -f1)
exec "$@" --bind-address="${{address:-0.0.0.0}}" --data-dir="$data"
"""


def kubeconfig_name(run_id: str) -> str:
    """Unique per run: two runs never read each other's kubeconfig from the shared cache volume, and the
    service's arguments differ so Dagger never hands one run another run's cluster."""
    return f"k3s-{run_id}.yaml"


def server_args(run_id: str) -> list[str]:
    return [
        "k3s",
        "server",
        "--disable=traefik",
        "--disable=metrics-server",
        "--egress-selector-mode=disabled",
        f"--tls-san={API_ALIAS}",
        f"--write-kubeconfig={KUBECONFIG_DIR}/{kubeconfig_name(run_id)}",
        f"--write-kubeconfig-mode={KUBECONFIG_MODE:04o}",
    ]


def read_kubeconfig_script(run_id: str, out_path: str, wait_s: int) -> str:
    """Wait for k3s to write its kubeconfig, then copy it (owner-only) pointing at the service alias instead of its
    own IP."""
    source = shlex.quote(f"{KUBECONFIG_DIR}/{kubeconfig_name(run_id)}")
    out = shlex.quote(out_path)
    return (
        "umask 077; "
        f"i=0; until [ -s {source} ]; do i=$((i+1)); "
        f'if [ "$i" -gt {wait_s} ]; then echo "k3s wrote no kubeconfig within {wait_s}s" >&2; exit 1; fi; '
        "sleep 1; done; "
        f"sed -E 's#server: https://[^[:space:]]+#server: https://{API_ALIAS}:{API_PORT}#' {source} > {out}; "
        f"chmod {KUBECONFIG_MODE:o} {out}"
    )


@dataclass(frozen=True)
class ReadyCheck:
    title: str
    command: Command
    timeout_s: int


def _until(probe: str) -> Command:
    return Command(("sh", "-c", f"until {probe}; do sleep 2; done"))


def ready_checks(timeout_s: int) -> tuple[ReadyCheck, ...]:
    """What must hold before the plan starts: the port opens before the API answers, and pods need DNS."""
    return (
        ReadyCheck("Wait for the k3s API server", _until("kubectl get --raw=/readyz >/dev/null"), timeout_s),
        ReadyCheck("Wait for the k3s node to register", _until("kubectl get nodes -o name | grep -q ."), timeout_s),
        ReadyCheck(
            "Wait for the k3s node to be Ready",
            kubectl("wait", "node", "--all", "--for=condition=Ready", f"--timeout={timeout_s}s"),
            timeout_s,
        ),
        ReadyCheck(
            "Wait for CoreDNS to be created",
            kubectl("-n", "kube-system", "wait", "deployment/coredns", "--for=create", f"--timeout={timeout_s}s"),
            timeout_s,
        ),
        ReadyCheck(
            "Wait for CoreDNS to roll out",
            kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", f"--timeout={timeout_s}s"),
            timeout_s,
        ),
    )


def check_failure(check: ReadyCheck, done: CommandResult) -> str:
    """Why a readiness check did not pass. An `until` loop that ran out of time says so, with the last answer it
    got (the loop retries, so its first error is the oldest)."""
    if done.timed_out:
        last = last_line(done.stderr) or last_line(done.stdout)
        return f"{check.title}: timed out after {check.timeout_s} s" + (f" (last answer: {last})" if last else "")
    return f"{check.title}: {first_line(done.stderr) or first_line(done.stdout) or f'exit code {done.exit_code}'}"


def reach_checks(timeout_s: int) -> tuple[ReadyCheck, ...]:
    """An existing cluster is assumed healthy; it only has to answer with the given kubeconfig."""
    return (ReadyCheck("Reach the cluster", kubectl("version", f"--request-timeout={timeout_s}s"), timeout_s),)


CLUSTER_STEP_ID = "cluster"


def cluster_step(kind: str, started_at: float, ended_at: float, cause: str | None) -> StepResult:
    """The cluster's start and readiness as the run's first step, so reports show its time and any failure."""
    title = "Start k3s and wait for its API, node and CoreDNS" if kind == "k3s" else "Reach the existing cluster"
    return StepResult(
        id=CLUSTER_STEP_ID,
        title=title,
        kind=CLUSTER_STEP_ID,
        database=None,
        outcome=Outcome.PASSED if cause is None else Outcome.FAILED,
        started_at=started_at,
        ended_at=ended_at,
        cause=cause,
        attempts=1,
    )


CLUSTER_DIAGNOSTICS: tuple[tuple[str, Command], ...] = (
    ("nodes.txt", kubectl("describe", "nodes")),
    ("pods.txt", kubectl("get", "pods", "-A", "-o", "wide")),
    ("events.txt", kubectl("get", "events", "-A", "--sort-by=.lastTimestamp")),
)
