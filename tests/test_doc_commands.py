"""Each `dbstack` command the README and docs/ show in a shell block runs as shown, from a folder with `values/`.

`deploy`, `upgrade-test` and `teardown` need a cluster: here they run with a valid `~/.kube/config` and no kubectl
or helm on PATH, so they get through argument parsing and every input check and stop at the preflight (exit 3),
which is as far as this machine can take them (an upgrade's base is a copy of `values/` in `base/values`). The
`dagger call` lines need an engine and are not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dbstack.cli.main import EXIT_OK, EXIT_UNREACHABLE

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)
PREFIXES = (".venv/bin/dbstack ", ".venv/bin/python -m dbstack ")
BASH = shutil.which("bash") or "/bin/bash"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "https://10.0.0.1:6443"}}]
contexts: [{name: lab, context: {cluster: lab, user: me}}]
current-context: lab
users: [{name: me, user: {token: not-a-real-token}}]
"""


def shown_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for block in SHELL_BLOCK.findall(doc.read_text(encoding="utf-8")):
            for line in block.splitlines():
                if line.startswith(PREFIXES):
                    command = line.split("  #", 1)[0].strip()
                    found.append((f"{doc.relative_to(REPO)}: {command}", command))
    first_shown: dict[str, tuple[str, str]] = {}
    for where, command in found:
        first_shown.setdefault(command, (where, command))
    return list(first_shown.values())


COMMANDS = shown_commands()


def subcommand(command: str) -> str:
    for prefix in PREFIXES:
        command = command.removeprefix(prefix)
    return command.split()[0]


def test_the_docs_show_the_commands_this_test_runs() -> None:
    assert {"validate", "plan", "deploy", "teardown"} <= {subcommand(command) for _, command in COMMANDS}


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_each_shown_command_runs_as_shown(where: str, command: str, tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "dbstack").is_file(), "the tests run with the project's .venv"
    shutil.copytree(REPO / "values", tmp_path / "values")
    shutil.copytree(REPO / "values", tmp_path / "base" / "values")  # an upgrade's base, as the docs check it out
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(KUBECONFIG, encoding="utf-8")
    no_tools = tmp_path / "no-tools"
    no_tools.mkdir()
    done = subprocess.run(
        [BASH, "-c", command.replace(".venv/bin/", f"{venv_bin}/", 1)],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "PATH": str(no_tools)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr
    if subcommand(command) in ("deploy", "teardown", "upgrade-test"):
        assert done.returncode == EXIT_UNREACHABLE, done.stderr
        assert "kubectl and helm not found on PATH" in done.stderr
    else:
        assert done.returncode == EXIT_OK, done.stderr
        assert done.stderr == ""
