"""Hostile and broken input through the real command, as a separate process: it never hangs, never prints a
traceback, and says what is wrong in one line with the documented exit code.

Every command runs in a separate process with a generous `timeout`, so a hang fails the test instead of stalling
the suite: the inputs the issue names each as its own `python -m dbstack`, the rest batched through `main` in one
process (one interpreter start). Nothing here times how fast an answer comes (benchmarks/hostile_input.py does);
the limits themselves are what keeps it fast.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbstack.cli.main import EXIT_BROKEN_PIPE, EXIT_INVALID, EXIT_UNREACHABLE, build_parser, main
from dbstack.config.kubeconfig import KubeconfigError, read_kubeconfig
from dbstack.config.yamlfile import MAX_ALIASES, MAX_DEPTH, MAX_VALUES
from report_samples import failed_run

SAFETY_TIMEOUT_S = 60
VALUES = Path(__file__).resolve().parents[1] / "values"
KUBECONFIG_TOKEN = "kubeconfig-token-Zq81xT"
KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {{server: "https://10.0.0.1:6443"}}
contexts:
- name: lab
  context: {{cluster: lab, user: admin}}
current-context: lab
users:
- name: admin
  user: {{token: {KUBECONFIG_TOKEN}}}
"""


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def dbstack(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Ran:
    done = subprocess.run(
        [sys.executable, "-m", "dbstack", *args],
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT_S,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return Ran(done.returncode, done.stdout, done.stderr)


def one_line_error(ran: Ran, code: int = EXIT_INVALID) -> str:
    assert ran.code == code, ran.err
    assert len(ran.err_lines) == 1, ran.err
    return ran.err_lines[0]


BATCH_DRIVER = """
import contextlib, io, json, sys, traceback
from dbstack.cli.main import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            code, err = -1, io.StringIO(traceback.format_exc())
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(results))
"""


def in_one_process(argvs: list[list[str]], env: dict[str, str] | None = None) -> list[Ran]:
    """Several commands through `main`, as `dbstack` runs them, in one separate process (one interpreter start):
    its timeout still catches a command that hangs, and an escaping exception shows up as a traceback."""
    done = subprocess.run(
        [sys.executable, "-c", BATCH_DRIVER, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT_S,
        env={**os.environ, **(env or {})},
        check=True,
    )
    runs = [Ran(r["code"], r["out"], r["err"]) for r in json.loads(done.stdout)]
    assert not [r for r in runs if "Traceback" in r.err], [r.err for r in runs]
    return runs


def alias_bomb() -> str:
    """The classic "billion laughs": 9 levels of 9 aliases each, a few hundred bytes, 4 billion values expanded."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


# --- values files ------------------------------------------------------------------------------------------------


def test_a_fifo_as_values_file_is_refused_without_opening_it(values_dir: Path) -> None:
    redis = values_dir / "redis.yaml"
    redis.unlink()
    os.mkfifo(redis)
    line = one_line_error(dbstack("validate", "--values", str(values_dir)))
    assert line == f"{redis}:1: -: is a FIFO (named pipe), not a regular file"


def test_a_link_to_a_device_is_refused_as_leaving_the_folder(values_dir: Path) -> None:
    redis = values_dir / "redis.yaml"
    redis.unlink()
    redis.symlink_to("/dev/zero")
    line = one_line_error(dbstack("validate", "--values", str(values_dir)))
    assert line == f"{redis}:1: -: is a link to /dev/zero, outside the folder {values_dir} (links must stay inside it)"


def test_an_alias_bomb_is_refused_before_it_expands(values_dir: Path) -> None:
    qdrant = values_dir / "qdrant.yaml"
    qdrant.write_text(alias_bomb(), encoding="utf-8")
    assert qdrant.stat().st_size < 1000
    line = one_line_error(dbstack("validate", "--values", str(values_dir)))
    assert line == (
        f"{qdrant}:1: -: holds 4,412,961,516 values once its aliases are expanded, more than the {MAX_VALUES:,} allowed"
    )


def test_a_file_above_the_size_limit_is_refused_without_reading_it(values_dir: Path) -> None:
    redis = values_dir / "redis.yaml"
    with redis.open("wb") as big:
        big.truncate(50 * 1024 * 1024)  # sparse: 50 MiB that cost no disk
    line = one_line_error(dbstack("validate", "--values", str(values_dir)))
    assert line == f"{redis}:1: -: file is 50 MiB, above the 1 MiB limit for this file"


def test_the_other_limits_each_answer_in_one_line(tmp_path: Path) -> None:
    def values(name: str) -> Path:
        folder = tmp_path / name / "values"
        shutil.copytree(VALUES, folder)
        return folder

    cases: list[tuple[list[str], int, str]] = []
    outside = tmp_path / "elsewhere.yaml"
    shutil.copy(VALUES / "redis.yaml", outside)
    v = values("link-out")
    (v / "redis.yaml").unlink()
    (v / "redis.yaml").symlink_to(outside)
    cases.append((["validate", "--values", str(v)], EXIT_INVALID, f"is a link to {outside}, outside the folder {v}"))
    v = values("link-in")
    (v / "profiles" / "ci" / "redis.yaml").unlink()
    (v / "profiles" / "ci" / "redis.yaml").symlink_to(v / "redis.yaml")
    cases.append((["validate", "--values", str(v), "--profile", "ci"], 0, ""))
    v = values("aliases")
    aliases = ",".join(["*a"] * (MAX_ALIASES + 1))
    (v / "qdrant.yaml").write_text(f"extra: {{x: &a 1, y: [{aliases}]}}\n", encoding="utf-8")
    says = f"{v / 'qdrant.yaml'}:1: -: uses more than the {MAX_ALIASES} YAML aliases allowed"
    cases.append((["validate", "--values", str(v)], EXIT_INVALID, says))
    v = values("deep")
    (v / "qdrant.yaml").write_text("extra: " + "[" * 990 + "]" * 990 + "\n", encoding="utf-8")
    says = f"{v / 'qdrant.yaml'}:1: -: nests 991 levels deep, more than the {MAX_DEPTH} allowed"
    cases.append((["validate", "--values", str(v)], EXIT_INVALID, says))
    v = values("many")
    (v / "redis.yaml").write_text("extra: [" + ",".join(["1"] * 500_000) + "]\n", encoding="utf-8")
    assert (v / "redis.yaml").stat().st_size < 1024 * 1024
    says = f"{v / 'redis.yaml'}:1: -: holds more than the {MAX_VALUES:,} values allowed"
    cases.append((["validate", "--values", str(v)], EXIT_INVALID, says))
    bomb = "{" + alias_bomb().strip().replace("\n", ", ") + "}"
    says = (
        f"namespace: the value holds 4,412,961,516 values once its aliases are expanded, more than the {MAX_VALUES:,}"
    )
    cases.append((["validate", "--values", str(VALUES), "--set", f"namespace={bomb}"], EXIT_INVALID, says))
    v = values("device")
    (v / "redis.yaml").unlink()
    try:
        os.mknod(v / "redis.yaml", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # a character device, like /dev/zero
        says = f"{v / 'redis.yaml'}:1: -: is a character device, not a regular file"
        cases.append((["validate", "--values", str(v)], EXIT_INVALID, says))
    except PermissionError:
        pass  # creating a device node needs root (CAP_MKNOD); the link to /dev/zero is tested either way
    runs = in_one_process([argv for argv, _, _ in cases])
    for (argv, code, says), ran in zip(cases, runs, strict=True):
        assert ran.code == code, (argv, ran.err)
        assert len(ran.err_lines) == (1 if code else 0), (argv, ran.err)
        assert says in ran.err, (argv, ran.err)


# --- where the values are ------------------------------------------------------------------------------------------


def test_without_values_or_a_values_folder_validate_and_plan_say_there_is_none(tmp_path: Path) -> None:
    for command in ("validate", "plan"):
        line = one_line_error(dbstack(command, cwd=tmp_path))
        assert line == f"dbstack {command}: no values folder: there is no ./values here; pass --values DIR"


def test_validate_names_the_folder_it_checked(
    values_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(values_dir.parent)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("values OK: values (6 files), profile none, namespace default\n")


# --- stdout closed early ---------------------------------------------------------------------------------------------


def test_plan_into_a_closed_pipe_ends_quietly_with_141(values_dir: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before dbstack writes a byte: every write fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dbstack", "plan", "--values", str(values_dir)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=SAFETY_TIMEOUT_S,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (EXIT_BROKEN_PIPE, "")


def test_plan_piped_to_head_prints_no_error(values_dir: Path) -> None:
    """As users type it; 0 or 141 depending on whether head left before the last write (both documented)."""
    script = f'set -o pipefail; "{sys.executable}" -m dbstack plan --json --values "{values_dir}" | head -1'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=SAFETY_TIMEOUT_S, check=False)
    assert done.stdout == "{\n"
    assert done.stderr == ""
    assert done.returncode in (0, EXIT_BROKEN_PIPE)


# --- deploy's own paths: --out and --kubeconfig --------------------------------------------------------------------


def no_tools(tmp_path: Path) -> dict[str, str]:
    """A PATH without kubectl or helm: anything that got as far as running a tool would fail differently."""
    empty = tmp_path / "no-tools"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty)}


def test_deploy_into_an_existing_file_is_one_line(values_dir: Path, tmp_path: Path) -> None:
    taken = tmp_path / "reports"
    taken.write_text("mine\n")
    ran = dbstack("deploy", "--values", str(values_dir), "--out", str(taken), env=no_tools(tmp_path))
    assert one_line_error(ran) == f"dbstack deploy: --out {taken}: exists and is not a folder"
    assert taken.read_text() == "mine\n"


def test_deploy_with_a_missing_kubeconfig_names_it_before_any_tool_runs(values_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    ran = dbstack("deploy", "--values", str(values_dir), "--kubeconfig", str(missing), "--out", str(tmp_path / "r"))
    line = one_line_error(ran)
    assert line == f"dbstack deploy: --kubeconfig {missing}: cannot read file: No such file or directory"
    assert "localhost:8080" not in ran.out + ran.err
    assert not (tmp_path / "r").exists()


def test_a_kubeconfig_kubectl_could_not_use_is_refused_naming_the_file(values_dir: Path, tmp_path: Path) -> None:
    unusable = {
        "unparsable": ("clusters: [\n", "invalid YAML"),
        "a-list": ("- a list\n", "top level is a list, expected a mapping"),
        "no-clusters": ("apiVersion: v1\nkind: Config\n", "is not a kubeconfig: it has no clusters"),
        "no-context": (KUBECONFIG.replace("current-context: lab\n", ""), "has no current-context, so kubectl would"),
        "bad-context": (KUBECONFIG.replace("current-context: lab", "current-context: prod"), "'prod' is not one"),
    }
    cases = []
    for name, (content, says) in unusable.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
        cases.append((tmp_path / name, says))
    os.mkfifo(tmp_path / "fifo")
    cases.append((tmp_path / "fifo", "is a FIFO (named pipe), not a regular file"))
    argvs = [["teardown", "--values", str(values_dir), "--kubeconfig", str(path)] for path, _ in cases]
    for (path, says), ran in zip(cases, in_one_process(argvs, no_tools(tmp_path)), strict=True):
        line = one_line_error(ran)
        assert line.startswith(f"dbstack teardown: --kubeconfig {path}: ") and says in line, line


def test_kubeconfig_credentials_are_returned_for_masking(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG.replace("{token: ", "{password: hunter2, token: "), encoding="utf-8")
    assert set(read_kubeconfig(config)) == {KUBECONFIG_TOKEN, "hunter2"}
    with pytest.raises(KubeconfigError):
        read_kubeconfig(tmp_path)


FAKE_KUBECTL = """#!/bin/sh
echo "Unable to connect to the server: Get https://admin:s3cr3t-pw@10.0.0.1:6443/version \
(Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig) as {token}: i/o timeout" >&2
exit 1
"""


def test_the_preflight_error_is_masked_like_the_reports(values_dir: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("kubectl", "helm"):
        (tools / tool).write_text(FAKE_KUBECTL.format(token=KUBECONFIG_TOKEN), encoding="utf-8")
        (tools / tool).chmod(0o755)
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG, encoding="utf-8")
    out = tmp_path / "reports"
    ran = dbstack(
        "deploy", "--values", str(values_dir), "--kubeconfig", str(config), "--out", str(out), env={"PATH": str(tools)}
    )
    line = one_line_error(ran, EXIT_UNREACHABLE)
    assert line.startswith("dbstack deploy: the cluster does not answer: Unable to connect to the server: ")
    assert "https://admin:***@10.0.0.1:6443" in line  # userinfo in a URL
    assert "(Authorization: Bearer *** as ***: i/o timeout" in line  # a Bearer token; the kubeconfig's own token
    written = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    for secret in ("s3cr3t-pw", "eyJhbGciOiJSUzI1NiJ9", KUBECONFIG_TOKEN):
        assert secret not in ran.out + ran.err
        assert secret not in written
    assert "(check --kubeconfig and the current context)" in line


# --- every subcommand, every path broken -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    name: str
    argv: tuple[str, ...]
    says: str


def broken_paths(root: Path, values: Path, results: Path) -> list[Broken]:
    a_file = root / "a-file"
    a_dir = root / "a-dir"
    fifo = root / "a-fifo"
    missing = root / "missing"
    v = ("--values", str(values))
    return [
        Broken("validate missing values", ("validate", "--values", str(missing)), "values folder does not exist"),
        Broken("validate values is a file", ("validate", "--values", str(a_file)), "values folder is not a folder"),
        Broken("validate values is a fifo", ("validate", "--values", str(fifo)), "values folder is not a folder"),
        Broken("plan missing values", ("plan", "--values", str(missing)), "values folder does not exist"),
        Broken("plan values is a file", ("plan", "--json", "--values", str(a_file)), "values folder is not a folder"),
        Broken("deploy missing values", ("deploy", "--values", str(missing)), "values folder does not exist"),
        Broken("deploy out is a file", ("deploy", *v, "--out", str(a_file)), "exists and is not a folder"),
        Broken("deploy out under a file", ("deploy", *v, "--out", f"{a_file}/x"), "cannot create the folder"),
        Broken("deploy kubeconfig missing", ("deploy", *v, "--kubeconfig", str(missing)), "No such file"),
        Broken("deploy kubeconfig is a dir", ("deploy", *v, "--kubeconfig", str(a_dir)), "is a directory"),
        Broken("deploy kubeconfig is a device", ("deploy", *v, "--kubeconfig", "/dev/zero"), "a character device"),
        Broken(
            "plan base values is a file", ("plan", *v, "--base-values", str(a_file)), "values folder is not a folder"
        ),
        Broken("upgrade missing base", ("upgrade-test", *v, "--base-values", str(missing)), "folder does not exist"),
        Broken(
            "upgrade out is a file",
            ("upgrade-test", *v, "--base-values", str(values), "--out", str(a_file)),
            "exists and is not a folder",
        ),
        Broken(
            "upgrade kubeconfig missing",
            ("upgrade-test", *v, "--base-values", str(values), "--kubeconfig", str(missing)),
            "No such file",
        ),
        Broken("teardown missing values", ("teardown", "--values", str(missing)), "values folder does not exist"),
        Broken("teardown kubeconfig missing", ("teardown", *v, "--kubeconfig", str(missing)), "No such file"),
        Broken("teardown kubeconfig fifo", ("teardown", *v, "--kubeconfig", str(fifo)), "FIFO"),
        Broken("report results missing", ("report", "--results", str(missing), "--out", str(a_dir)), "No such"),
        Broken("report results is a dir", ("report", "--results", str(a_dir), "--out", str(a_dir)), "a directory"),
        Broken("report results is a fifo", ("report", "--results", str(fifo), "--out", str(a_dir)), "FIFO"),
        Broken("report out is a file", ("report", "--results", str(results), "--out", str(a_file)), "not a folder"),
        Broken("preview results is a dir", ("preview-comment", "--pr", "1", "--results", str(a_dir)), "directory"),
        Broken("preview results is a fifo", ("preview-comment", "--pr", "1", "--results", str(fifo)), "FIFO"),
        Broken(
            "preview out is a dir",
            ("preview-comment", "--pr", "1", "--results", str(results), "--out", str(a_dir)),
            "cannot write",
        ),
        Broken(
            "kubeconfig missing",
            ("preview-kubeconfig", "--kubeconfig", str(missing), "--out", str(root / "k")),
            "No such",
        ),
        Broken("kubeconfig fifo", ("preview-kubeconfig", "--kubeconfig", str(fifo), "--out", str(root / "k")), "FIFO"),
        Broken("kubeconfig out is a dir", ("preview-kubeconfig", "--out", str(a_dir)), "is a folder"),
        Broken("kubeconfig out under a file", ("preview-kubeconfig", "--out", f"{a_file}/k"), "folder does not exist"),
        Broken(
            "preview out under a file",
            ("preview-comment", "--pr", "1", "--removed", "--out", f"{a_file}/x"),
            "cannot write",
        ),
    ]


def test_every_subcommand_with_broken_paths_answers_in_one_line(values_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-dir").mkdir()
    os.mkfifo(tmp_path / "a-fifo")
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps(failed_run().to_json()), encoding="utf-8")
    cases = broken_paths(tmp_path, values_dir, results)
    runs = in_one_process([list(case.argv) for case in cases], no_tools(tmp_path))
    wrong = [
        f"{case.name}: exit {ran.code}, stderr {ran.err!r}"
        for case, ran in zip(cases, runs, strict=True)
        if ran.code != EXIT_INVALID or len(ran.err_lines) != 1 or case.says not in ran.err or "Traceback" in ran.err
    ]
    assert not wrong, "\n".join(wrong)


def test_argument_lists_cover_every_subcommand(tmp_path: Path) -> None:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    subcommands = set(action.choices)
    covered = {case.argv[0] for case in broken_paths(tmp_path, tmp_path, tmp_path)}
    assert covered == subcommands
