"""k3s inside Dagger: the entrypoint and kubeconfig scripts run here in a POSIX shell against scratch folders."""

from __future__ import annotations

import ast
import fcntl
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from dbstack.run import k3s
from dbstack.run.results import Outcome
from dbstack.run.runner import CommandResult

SH = shutil.which("sh") or "/bin/sh"


def run_entrypoint(
    tmp_path: Path, *args: str, cgroup: Path | None = None, holder: str = "test run"
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "entrypoint"
    script.write_text(k3s.ENTRYPOINT_SCRIPT, encoding="utf-8")
    return subprocess.run(
        [str(SH), str(script), *args],
        capture_output=True,
        text=True,
        env=entrypoint_env(tmp_path, cgroup, holder),
        check=False,
        timeout=30,
    )


def entrypoint_env(tmp_path: Path, cgroup: Path | None = None, holder: str = "test run") -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DBSTACK_STATE_DIR": str(tmp_path / "state"),
        "DBSTACK_CGROUP_ROOT": str(cgroup or tmp_path / "no-cgroup"),
        k3s.HOLDER_VARIABLE: holder,
    }


def data_dir(done: subprocess.CompletedProcess[str]) -> str:
    """The --data-dir the entrypoint handed k3s (the last argument it appends)."""
    last = done.stdout.split()[-1]
    assert last.startswith("--data-dir="), done.stdout
    return last.removeprefix("--data-dir=")


def make_state(tmp_path: Path, slot: int = 0) -> Path:
    state = tmp_path / "state" / "slots" / str(slot) / "k3s"
    for path in (
        "server/db/state.db",
        "server/tls/server-ca.crt",
        "storage/pvc-1/data",
        "agent/containerd/io.containerd.content.v1.content/blobs/sha256/abc",
        "agent/pod-manifests/x.yaml",
        "agent/client-kubelet.crt",
    ):
        (state / path).parent.mkdir(parents=True, exist_ok=True)
        (state / path).write_text("x", encoding="utf-8")
    return state


def test_each_start_wipes_the_cluster_state_but_keeps_the_image_store(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    done = run_entrypoint(tmp_path, "echo")
    assert done.returncode == 0, done.stderr
    assert data_dir(done) == str(state)
    assert sorted(p.name for p in state.iterdir()) == ["agent"]
    assert sorted(p.name for p in (state / "agent").iterdir()) == ["containerd"]
    assert (state / "agent/containerd/io.containerd.content.v1.content/blobs/sha256/abc").exists()


def test_the_first_start_with_an_empty_cache_volume_just_runs(tmp_path: Path) -> None:
    done = run_entrypoint(tmp_path, "echo", "started")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("started --bind-address=")
    assert data_dir(done) == str(tmp_path / "state" / "slots" / "0" / "k3s")


def test_the_server_command_runs_with_a_bind_address_and_its_slot_appended(tmp_path: Path) -> None:
    done = run_entrypoint(tmp_path, "echo", *k3s.server_args("run1"))
    assert done.stdout.split()[:-2] == [
        "k3s",
        "server",
        "--disable=traefik",
        "--disable=metrics-server",
        "--egress-selector-mode=disabled",
        "--tls-san=kubernetes",
        "--write-kubeconfig=/etc/rancher/k3s/k3s-run1.yaml",
        "--write-kubeconfig-mode=0600",
    ]
    assert done.stdout.split()[-2].startswith("--bind-address=")
    assert done.stdout.split()[-2] != "--bind-address="
    assert done.stdout.split()[-1] == f"--data-dir={tmp_path}/state/slots/0/k3s"


def wait_until_free(lock: Path, limit_s: float = 10.0) -> None:
    """Block until no process holds `lock` (as the entrypoint's `flock -n` would see it), at most `limit_s`."""
    deadline = time.monotonic() + limit_s
    with lock.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{lock} still held after {limit_s} s"
                time.sleep(0.05)
                continue
            fcntl.flock(handle, fcntl.LOCK_UN)
            return


def test_a_second_k3s_on_the_engine_takes_the_next_free_slot_and_a_finished_one_frees_its_own(
    tmp_path: Path,
) -> None:
    script = tmp_path / "entrypoint"
    script.write_text(k3s.ENTRYPOINT_SCRIPT, encoding="utf-8")
    # The first k3s keeps running (sleep stands in for it) and holds slot 0 through the fd it inherited.
    first = subprocess.Popen(
        [str(SH), str(script), "sh", "-c", "echo up; sleep 20"],
        stdout=subprocess.PIPE,
        text=True,
        env=entrypoint_env(tmp_path, holder="cluster dbstack"),
        start_new_session=True,
    )
    try:
        assert first.stdout is not None and first.stdout.readline() == "up\n"
        second = run_entrypoint(tmp_path, "echo", holder="deploy-and-test run abc")
        assert second.returncode == 0, second.stderr
        assert data_dir(second) == str(tmp_path / "state" / "slots" / "1" / "k3s")
        assert (tmp_path / "state/slots/0/holder").read_text(encoding="utf-8").startswith("cluster dbstack since ")
    finally:  # the service's container stops: all its processes end, and with them the lock
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    wait_until_free(tmp_path / "state/slots/0/lock")  # the killed sleep closes its copy of fd 9 when it is reaped
    third = run_entrypoint(tmp_path, "echo")
    assert data_dir(third) == str(tmp_path / "state" / "slots" / "0" / "k3s")


def test_when_every_slot_is_held_k3s_does_not_start_and_names_the_holders(tmp_path: Path) -> None:
    held = []
    for slot in range(k3s.STATE_SLOTS):
        folder = tmp_path / "state" / "slots" / str(slot)
        folder.mkdir(parents=True)
        (folder / "holder").write_text(f"cluster c{slot} since 2026-09-21T14:13:20Z\n", encoding="utf-8")
        lock = (folder / "lock").open("w")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what flock(1) takes: the same kernel lock
        held.append(lock)
    try:
        done = run_entrypoint(tmp_path, "echo", "started")
    finally:
        for lock in held:
            lock.close()
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"all {k3s.STATE_SLOTS} k3s state slots of this Dagger engine are in use ("
        + "; ".join(f"slot {i}: cluster c{i} since 2026-09-21T14:13:20Z" for i in range(k3s.STATE_SLOTS))
        + "); stop one of them first\n"
    )


def test_a_stale_kubeconfig_of_the_same_name_is_removed_before_k3s_starts(tmp_path: Path) -> None:
    stale = tmp_path / "k3s-run1.yaml"
    other = tmp_path / "k3s-run2.yaml"
    stale.write_text("old", encoding="utf-8")
    other.write_text("another run's", encoding="utf-8")
    done = run_entrypoint(tmp_path, "true", f"--write-kubeconfig={stale}")
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and other.exists()


def test_on_cgroup_v2_processes_leave_the_root_group_and_controllers_are_delegated(tmp_path: Path) -> None:
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "cgroup.controllers").write_text("cpu memory pids\n", encoding="utf-8")
    (cgroup / "cgroup.procs").write_text("1\n7\n", encoding="utf-8")
    done = run_entrypoint(tmp_path, "true", cgroup=cgroup)
    assert done.returncode == 0, done.stderr
    # A real cgroupfs takes one pid / controller per write; a plain file keeps the last write.
    assert (cgroup / "dbstack-init" / "cgroup.procs").read_text(encoding="utf-8") == "7\n"
    assert (cgroup / "cgroup.subtree_control").read_text(encoding="utf-8") == "+pids\n"


def test_the_server_runs_with_traefik_and_metrics_server_off_and_a_kubeconfig_per_run() -> None:
    assert k3s.kubeconfig_name("a") == "k3s-a.yaml"
    assert k3s.server_args("a") == [
        "k3s",
        "server",
        "--disable=traefik",
        "--disable=metrics-server",
        "--egress-selector-mode=disabled",
        "--tls-san=kubernetes",
        "--write-kubeconfig=/etc/rancher/k3s/k3s-a.yaml",
        "--write-kubeconfig-mode=0600",
    ]
    assert k3s.server_args("b")[6] == "--write-kubeconfig=/etc/rancher/k3s/k3s-b.yaml"


def run_reader(tmp_path: Path, wait_s: int) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "kubeconfig"
    script = k3s.read_kubeconfig_script("run1", str(out), wait_s).replace(k3s.KUBECONFIG_DIR, str(tmp_path))
    done = subprocess.run([str(SH), "-c", script], capture_output=True, text=True, check=False, timeout=30)
    return done, out


def test_the_kubeconfig_is_copied_pointing_at_the_service_alias(tmp_path: Path) -> None:
    written = "clusters:\n- cluster:\n    server: https://10.87.0.5:6443\n  name: default\n"
    (tmp_path / k3s.kubeconfig_name("run1")).write_text(written, encoding="utf-8")
    done, out = run_reader(tmp_path, wait_s=5)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == written.replace("10.87.0.5", "kubernetes")
    assert out.stat().st_mode & 0o777 == 0o600  # a credential: readable by its owner only
    assert done.stderr == ""


def test_reading_gives_up_with_a_message_when_k3s_writes_no_kubeconfig(tmp_path: Path) -> None:
    done, out = run_reader(tmp_path, wait_s=1)
    assert done.returncode == 1
    assert "wrote no kubeconfig within 1s" in done.stderr
    assert not out.exists()


def test_readiness_waits_for_the_api_then_the_node_then_coredns() -> None:
    checks = k3s.ready_checks(300)
    assert [(check.title, check.command.argv, check.timeout_s) for check in checks] == [
        (
            "Wait for the k3s API server",
            ("sh", "-c", "until kubectl get --raw=/readyz >/dev/null; do sleep 2; done"),
            300,
        ),
        (
            "Wait for the k3s node to register",
            ("sh", "-c", "until kubectl get nodes -o name | grep -q .; do sleep 2; done"),
            300,
        ),
        (
            "Wait for the k3s node to be Ready",
            ("kubectl", "wait", "node", "--all", "--for=condition=Ready", "--timeout=300s"),
            300,
        ),
        (
            "Wait for CoreDNS to be created",
            ("kubectl", "-n", "kube-system", "wait", "deployment/coredns", "--for=create", "--timeout=300s"),
            300,
        ),
        (
            "Wait for CoreDNS to roll out",
            ("kubectl", "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=300s"),
            300,
        ),
    ]
    assert all(check.command.stdin is None for check in checks)


def test_an_existing_cluster_only_has_to_answer() -> None:
    assert [(c.title, c.command.argv, c.timeout_s) for c in k3s.reach_checks(20)] == [
        ("Reach the cluster", ("kubectl", "version", "--request-timeout=20s"), 20)
    ]


def test_the_cluster_step_fails_with_its_cause_and_passes_without_one() -> None:
    failed = k3s.cluster_step("k3s", 10.0, 70.0, "Wait for the k3s API server: timed out")
    passed = k3s.cluster_step("existing", 10.0, 11.0, None)
    assert (failed.outcome, failed.cause, failed.duration_s) == (
        Outcome.FAILED,
        "Wait for the k3s API server: timed out",
        60.0,
    )
    assert (passed.outcome, passed.title) == (Outcome.PASSED, "Reach the existing cluster")
    assert failed.title == "Start k3s and wait for its API, node and CoreDNS"


def test_a_readiness_check_that_ran_out_of_time_says_so_with_its_last_answer() -> None:
    check = k3s.ready_checks(300)[1]
    retried = CommandResult(143, "", "error: first try\n\nerror: latest try\n", timed_out=True)
    silent = CommandResult(143, "", "", timed_out=True)
    failed = CommandResult(1, "", "error: You must be logged in to the server (Unauthorized)\nmore")
    assert k3s.check_failure(check, retried) == (
        "Wait for the k3s node to register: timed out after 300 s (last answer: error: latest try)"
    )
    assert k3s.check_failure(check, silent) == "Wait for the k3s node to register: timed out after 300 s"
    assert k3s.check_failure(check, failed) == (
        "Wait for the k3s node to register: error: You must be logged in to the server (Unauthorized)"
    )


def test_the_kubeconfig_is_written_owner_only(tmp_path: Path) -> None:
    # Group-readable, Helm up to 3.16 prints a WARNING before every answer (cmd/helm/root_unix.go); it is a credential.
    assert f"--write-kubeconfig-mode={k3s.KUBECONFIG_MODE:04o}" in k3s.server_args("run1")
    assert k3s.KUBECONFIG_MODE == 0o600
    (tmp_path / k3s.kubeconfig_name("run1")).write_text("clusters: []\n", encoding="utf-8")
    done, out = run_reader(tmp_path, wait_s=5)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_the_dagger_layer_puts_every_kubeconfig_in_the_toolbox_owner_only() -> None:
    """ci/pipeline.py cannot run here (no engine): read its calls. A copied file gets KUBECONFIG_MODE; a mounted
    Secret keeps Dagger's default mode, 0400 (dagger-io's with_mounted_secret(mode=256))."""
    import inspect

    import dagger

    source = (Path(__file__).resolve().parents[1] / "ci" / "pipeline.py").read_text(encoding="utf-8")
    calls = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("with_file", "with_mounted_secret", "with_new_file")
        and node.args
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == "TOOLBOX_KUBECONFIG"
    ]
    assert {c.func.attr for c in calls} == {"with_file", "with_mounted_secret"}  # type: ignore[attr-defined]
    for call in calls:
        options = {k.arg: ast.unparse(k.value) for k in call.keywords}
        if call.func.attr == "with_file":  # type: ignore[attr-defined]
            assert options.get("permissions") == "k3s.KUBECONFIG_MODE"
        else:
            assert "mode" not in options
    default = inspect.signature(dagger.Container.with_mounted_secret).parameters["mode"].default
    assert default == 0o400
