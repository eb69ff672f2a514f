"""`dbstack validate`: every rule, through the CLI as a user meets it (exit 2, one line per problem, no traceback)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dbstack.cli.main import EXIT_INVALID, EXIT_OK, main
from dbstack.config.catalog import DATABASES
from dbstack.config.problems import InvalidInput, Problem
from dbstack.config.validate import validate
from dbstack.config.yamlfile import load_yaml
from dbstack.plan.build import build_plan
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

TALLY = re.compile(r"^\d+ problems? found; nothing was deployed\.$")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def problems(self) -> list[str]:
        """The problem lines, without the closing tally."""
        return [line for line in self.err.splitlines() if not TALLY.match(line)]

    def line_starting(self, prefix: str) -> str:
        found = [line for line in self.problems if line.startswith(prefix)]
        assert found, f"no problem starts with {prefix!r}; got:\n{self.err}"
        return found[0]


def run_validate(capsys: pytest.CaptureFixture[str], values: Path, *args: str) -> Run:
    code = main(["validate", "--values", str(values), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return Run(code, out, err)


def replace(path: Path, old: str, new: str) -> int:
    """Replace the one line that is exactly `old` and return its line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = lines.index(old)
    lines[index] = new
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index + 1


def line_of(path: Path, text: str, after: str | None = None) -> int:
    """The number of the first line equal to `text` (stripped), after the line equal to `after` if given."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    start = lines.index(after) + 1 if after is not None else 0
    return lines.index(text, start) + 1


def append(path: Path, text: str) -> int:
    """Append `text` (one or more lines) and return the line number of its first line."""
    existing = path.read_text(encoding="utf-8")
    if not existing.endswith("\n"):
        existing += "\n"
    path.write_text(existing + text, encoding="utf-8")
    return existing.count("\n") + 1


def assert_invalid(run: Run, expected: str) -> None:
    assert run.code == EXIT_INVALID
    assert expected in run.problems, f"expected:\n{expected}\ngot:\n{run.err}"


# --- valid input ------------------------------------------------------------------------------------------------


def test_defaults_are_valid_and_summarised(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_OK
    assert run.err == ""
    assert run.out.startswith(f"values OK: {values_dir} (6 files), profile none, namespace default\n")
    assert "enabled: postgresql (pg-cluster), redis (redis-cluster)" in run.out
    assert re.search(r"^requests: [\d.]+ of 8 cpu, [\d.]+ of 16 Gi memory$", run.out, re.M)


def test_ci_profile_is_valid_and_fits_a_github_runner(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    run = run_validate(capsys, values_dir, "--profile", "ci")
    assert run.code == EXIT_OK
    assert "profile ci" in run.out
    assert re.search(r"^requests: [\d.]+ of 4 cpu, [\d.]+ of 16 Gi memory$", run.out, re.M)


def test_validate_runs_as_python_dash_m_in_a_fresh_process(values_dir: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "dbstack", "validate", "--values", str(values_dir), "--profile", "ci"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.startswith("values OK:")
    line = replace(values_dir / "redis.yaml", "replicas: 1", "replicas: 9")
    bad = subprocess.run(
        [sys.executable, "-m", "dbstack", "validate", "--values", str(values_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == EXIT_INVALID
    assert bad.stderr.splitlines()[0] == (
        f"{values_dir / 'redis.yaml'}:{line}: replicas: 9 is above the maximum (allowed: a whole number 1 to 5)"
    )
    assert "Traceback" not in bad.stderr


def test_layers_apply_base_then_profile_then_set(values_dir: Path) -> None:
    assert validate(values_dir).config.node_cpu == 8
    assert validate(values_dir, "ci").config.node_cpu == 4
    assert validate(values_dir, "ci", ["node.cpu=6"]).config.node_cpu == 6
    redis = validate(values_dir, "ci").config.database("redis")
    assert redis.values["requests"] == {"cpu": 0.1, "memory": 0.25}
    assert redis.values["cpu"] == 0.5  # from the base file, untouched by the profile
    assert redis.values_files == (values_dir / "redis.yaml", values_dir / "profiles/ci/redis.yaml")


# --- the charts' own rules ----------------------------------------------------------------------------------------


def test_wrong_type_names_the_expected_type(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = replace(values_dir / "redis.yaml", "replicas: 1", "replicas: two")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'redis.yaml'}:{line}: replicas: must be a whole number, got string 'two' "
        "(allowed: a whole number 1 to 5)",
    )


@pytest.mark.parametrize("version", ["16", "16.4", "latest", "v16.4.0"])
def test_database_version_must_be_a_full_service_version(
    capsys: pytest.CaptureFixture[str], values_dir: Path, version: str
) -> None:
    line = replace(values_dir / "postgresql.yaml", "version: 16.4.0", f'version: "{version}"')
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'postgresql.yaml'}:{line}: version: {version!r} is not a full service version "
        "(allowed: major.minor.patch, e.g. 16.4.0)",
    )


def test_unquoted_version_read_as_a_number_asks_for_quotes(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    line = replace(values_dir / "elasticsearch.yaml", 'version: "8.8.2"', "version: 8.8")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'elasticsearch.yaml'}:{line}: version: must be a string, got float 8.8; quote it "
        "(allowed: a string)",
    )


@pytest.mark.parametrize(
    ("word", "becomes"), [("on", "a boolean"), ("NO", "a boolean"), ("null", "null"), ("0x1F", "a number")]
)
def test_a_name_the_chart_writes_unquoted_must_stay_a_string_to_kubernetes(
    capsys: pytest.CaptureFixture[str], values_dir: Path, word: str, becomes: str
) -> None:
    redis = values_dir / "redis.yaml"
    line = append(redis, f'customSecretName: "{word}"\ncustomSecretNamespace: default\n')
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{redis}:{line}: customSecretName: {word!r} would reach the cluster as {becomes}: the chart writes it "
        "unquoted (allowed: a string that YAML 1.1 does not read as a boolean, number or null)",
    )


def test_boolean_setting_rejects_a_quoted_string(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = line_of(pipeline, "enabled: false", after="neo4j:")
    replace(pipeline, "    enabled: false", '    enabled: "false"')
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: databases.neo4j.enabled: must be true or false, got string 'false' "
        "(allowed: true or false)",
    )


def test_neo4j_mode_must_be_singlealone(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = replace(values_dir / "neo4j.yaml", "mode: singlealone", "mode: standalone")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'neo4j.yaml'}:{line}: mode: 'standalone' is not one of the chart's choices "
        "(allowed: singlealone)",
    )


def test_value_below_the_minimum(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = replace(values_dir / "elasticsearch.yaml", "memory: 1", "memory: 0.5")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'elasticsearch.yaml'}:{line}: memory: 0.5 is below the minimum (allowed: a number 1 to 1000)",
    )


def test_postgresql_needs_two_replicas_although_the_schema_allows_one(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    line = replace(values_dir / "postgresql.yaml", "replicas: 2", "replicas: 1")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'postgresql.yaml'}:{line}: replicas: 1 is below the minimum (allowed: a whole number 2 to 5)",
    )


def test_value_above_the_maximum(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = replace(values_dir / "qdrant.yaml", "replicas: 1", "replicas: 17")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:{line}: replicas: 17 is above the maximum (allowed: a whole number 1 to 16)",
    )


def test_cpu_must_be_a_multiple_of_the_charts_step(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = replace(values_dir / "redis.yaml", "cpu: 0.5", "cpu: 0.7")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'redis.yaml'}:{line}: cpu: 0.7 is not a multiple of 0.5 "
        "(allowed: a number 0.5 to 64, in steps of 0.5)",
    )


def test_quantity_may_be_a_decimal_string(values_dir: Path) -> None:
    replace(values_dir / "redis.yaml", "cpu: 0.5", 'cpu: "1.5"')
    assert validate(values_dir).config.database("redis").values["cpu"] == "1.5"


@pytest.mark.parametrize("text", ["1_0", "1e1", "1Gi", " 1", "nan"])
def test_quantity_string_the_chart_cannot_put_before_its_unit_is_rejected(
    capsys: pytest.CaptureFixture[str], values_dir: Path, text: str
) -> None:
    line = replace(values_dir / "qdrant.yaml", "memory: 0.5", f'memory: "{text}"')
    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_INVALID
    assert run.problems[0] == (
        f"{values_dir / 'qdrant.yaml'}:{line}: memory: must be a number, got string {text!r} "
        "(allowed: a number 0.5 to 1000)"
    )


def test_unknown_chart_key_suggests_the_closest_one(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = replace(values_dir / "redis.yaml", "replicas: 1", "replica: 1")
    run = run_validate(capsys, values_dir)
    problem = run.line_starting(f"{values_dir / 'redis.yaml'}:{line}: replica: ")
    assert "unknown key; did you mean 'replicas'? (Helm would silently ignore it) (allowed: " in problem
    assert "replicas, requests, sentinel" in problem


def test_unknown_nested_key_is_reported_with_its_dotted_path(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    line = replace(values_dir / "qdrant.yaml", "  terminationPolicy: Delete", "  terminationPolicyy: Delete")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:{line}: extra.terminationPolicyy: unknown key; did you mean "
        "'terminationPolicy'? (Helm would silently ignore it) "
        "(allowed: disableExporter, terminationPolicy)",
    )


def test_unknown_key_without_a_close_match_gets_no_suggestion(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    line = append(values_dir / "qdrant.yaml", "zzz: 1\n")
    problem = run_validate(capsys, values_dir).line_starting(f"{values_dir / 'qdrant.yaml'}:{line}: zzz: ")
    assert "did you mean" not in problem


def test_unknown_database_in_pipeline_yaml(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = replace(pipeline, "  postgresql:", "  postgres:")
    run = run_validate(capsys, values_dir)
    assert_invalid(
        run,
        f"{pipeline}:{line}: databases.postgres: unknown key; did you mean 'postgresql'? "
        "(the pipeline would never read it) (allowed: elasticsearch, neo4j, postgresql, qdrant, redis)",
    )
    assert run.line_starting(f"{pipeline}:{line_of(pipeline, 'databases:')}: databases: missing required key ")


def test_missing_setting_points_at_the_base_file_even_with_a_profile(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    pipeline = values_dir / "pipeline.yaml"
    text = pipeline.read_text(encoding="utf-8")
    pipeline.write_text(re.sub(r"(?ms)^snapshotter:\n  version: \S+\n", "", text), encoding="utf-8")
    assert_invalid(
        run_validate(capsys, values_dir, "--profile", "ci"), f"{pipeline}:1: -: missing required key 'snapshotter'"
    )


def test_requests_above_the_limit_are_reported(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = append(values_dir / "qdrant.yaml", "requests:\n  cpu: 0.75\n")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:{line + 1}: requests.cpu: 0.75 is above cpu 0.5; "
        "the chart ignores a request above the limit (allowed: at most 0.5)",
    )


def test_requests_of_the_wrong_type_are_reported_not_a_crash(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    line = append(values_dir / "qdrant.yaml", "requests: lots\n")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:{line}: requests: must be a mapping, got string 'lots' (allowed: a mapping)",
    )


@pytest.mark.parametrize(
    ("file", "mode"),
    [("redis.yaml", "standalone"), ("elasticsearch.yaml", "single-node"), ("neo4j.yaml", "singlealone")],
)
def test_single_node_modes_run_exactly_one_replica(
    capsys: pytest.CaptureFixture[str], values_dir: Path, file: str, mode: str
) -> None:
    line = replace(values_dir / file, "replicas: 1", "replicas: 3")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / file}:{line}: replicas: {mode} mode runs exactly one replica, got 3 (allowed: 1)",
    )


def test_a_disabled_databases_values_are_still_checked(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    assert not validate(values_dir).config.database("neo4j").enabled
    line = replace(values_dir / "neo4j.yaml", "cpu: 2", "cpu: 1")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'neo4j.yaml'}:{line}: cpu: 1 is below the minimum (allowed: a number 2 to 64, in steps of 0.1)",
    )


# --- broken files -------------------------------------------------------------------------------------------------


def test_duplicate_key_names_both_lines(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    first = line_of(values_dir / "redis.yaml", "cpu: 0.5")
    line = append(values_dir / "redis.yaml", "cpu: 1\n")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'redis.yaml'}:{line}: cpu: duplicate key (first set on line {first}; YAML keeps only the last)",
    )


def test_duplicate_nested_key(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    path = values_dir / "redis.yaml"
    first = line_of(path, "disableExporter: true")
    line = append(path, "  disableExporter: false\n")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{path}:{line}: extra.disableExporter: duplicate key (first set on line {first}; YAML keeps only the last)",
    )


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "scalar")])
def test_top_level_must_be_a_mapping(
    capsys: pytest.CaptureFixture[str], values_dir: Path, text: str, kind: str
) -> None:
    (values_dir / "qdrant.yaml").write_text(text, encoding="utf-8")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:1: -: top level is a {kind}, expected a mapping",
    )


def test_more_than_one_document(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = append(values_dir / "qdrant.yaml", "---\nreplicas: 2\n")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:{line + 1}: -: more than one YAML document "
        "(Helm reads only the first; use one mapping)",
    )


def test_a_trailing_document_marker_is_not_a_second_document(values_dir: Path) -> None:
    append(values_dir / "qdrant.yaml", "---\n")
    assert validate(values_dir).config.database("qdrant").values["replicas"] == 1


def test_invalid_yaml_gives_line_and_column(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    (values_dir / "redis.yaml").write_text("version: 7.2.7\nmode: [standalone\nreplicas: 1\n", encoding="utf-8")
    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_INVALID
    problem = run.line_starting(f"{values_dir / 'redis.yaml'}:")
    assert re.fullmatch(
        rf"{re.escape(str(values_dir / 'redis.yaml'))}:(\d+): -: invalid YAML at line \1, column \d+: .+", problem
    )


def test_invalid_yaml_reports_where_the_parser_stopped(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    (values_dir / "redis.yaml").write_text("version: 7.2.7\nmode: standalone\n  replicas: 1\n", encoding="utf-8")
    problem = run_validate(capsys, values_dir).line_starting(f"{values_dir / 'redis.yaml'}:")
    assert problem.startswith(f"{values_dir / 'redis.yaml'}:3: -: invalid YAML at line 3, column 11: mapping values ")


@pytest.mark.parametrize("ending", ["\n", ""])
def test_unclosed_bracket_points_at_the_last_line_not_past_it(
    capsys: pytest.CaptureFixture[str], values_dir: Path, ending: str
) -> None:
    (values_dir / "qdrant.yaml").write_text("version: 1.10.0\nextra: {terminationPolicy: Delete" + ending)
    problem = run_validate(capsys, values_dir).line_starting(f"{values_dir / 'qdrant.yaml'}:")
    assert problem.startswith(
        f"{values_dir / 'qdrant.yaml'}:2: -: invalid YAML at the end of the file (line 2, column 34): "
    )
    assert problem.endswith("while parsing a flow mapping started at line 2, column 8")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "null\n"])
def test_empty_file(capsys: pytest.CaptureFixture[str], values_dir: Path, text: str) -> None:
    (values_dir / "qdrant.yaml").write_text(text, encoding="utf-8")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:1: -: file is empty (expected a mapping of keys to values)",
    )


def test_non_utf8_bytes_give_line_and_offset(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    (values_dir / "qdrant.yaml").write_bytes(b"version: 1.10.0\nstorage: 5\nextra: caf\xe9\n")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:3: -: not valid UTF-8 (byte 0xe9 at offset 37)",
    )


def test_control_character_is_one_line_with_its_position(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    (values_dir / "qdrant.yaml").write_text("version: 1.10.0\nstorage: 5\x00\n", encoding="utf-8")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:2: -: invalid YAML at line 2, column 11: character U+0000 is not allowed",
    )


def test_unknown_yaml_tag_is_a_problem_not_a_crash(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = replace(values_dir / "qdrant.yaml", "storage: 20", "storage: !gigabytes 20")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:{line}: storage: could not determine a constructor for the tag '!gigabytes'",
    )


def test_impossible_date_is_a_problem_not_a_crash(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = replace(values_dir / "qdrant.yaml", "version: 1.10.0", "version: 2024-13-01")
    run = run_validate(capsys, values_dir)
    problem = run.line_starting(f"{values_dir / 'qdrant.yaml'}:{line}: version: cannot read '2024-13-01' as ")
    assert "month must be in 1..12" in problem


def test_recursive_alias_is_a_problem_not_a_crash(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    line = append(values_dir / "qdrant.yaml", "extra: &loop\n  rbacEnabled: *loop\n")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{values_dir / 'qdrant.yaml'}:{line}: extra.rbacEnabled: alias refers to itself (recursive YAML anchor)",
    )


def test_merge_keys_supply_defaults_as_helm_reads_them(values_dir: Path) -> None:
    append(
        values_dir / "redis.yaml",
        "requests: &small\n  cpu: 0.3\n  memory: 0.25\nprometheus:\n  <<: {enabled: false}\n"
        "sentinel:\n  <<: [{memory: 0.2, cpu: 0.2}, *small]\n  replicas: 3\n  cpu: 0.1\n",
    )
    redis = validate(values_dir).config.database("redis")
    assert redis.values["prometheus"] == {"enabled": False}
    # Keys written beside `<<` win; among the merged mappings the earlier one wins.
    assert redis.values["sentinel"] == {"cpu": 0.1, "memory": 0.2, "replicas": 3}


def test_line_breaks_in_a_key_stay_on_one_line(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    append(values_dir / "qdrant.yaml", '"two\\nlines": 1\n')
    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_INVALID
    assert len(run.problems) == 1
    assert "two\\nlines: unknown key" in run.problems[0]


def test_missing_values_file_of_an_enabled_database(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    (values_dir / "redis.yaml").unlink()
    pipeline = values_dir / "pipeline.yaml"
    line = line_of(pipeline, "enabled: true", after="redis:")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: databases.redis.enabled: database is enabled but its values file "
        f"{values_dir / 'redis.yaml'} is missing (allowed: create redis.yaml, or set enabled: false)",
    )


def test_missing_values_file_is_reported_even_when_the_profile_has_one(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    (values_dir / "redis.yaml").unlink()
    pipeline = values_dir / "pipeline.yaml"
    line = line_of(pipeline, "enabled: true", after="redis:")
    assert_invalid(
        run_validate(capsys, values_dir, "--profile", "ci"),
        f"{pipeline}:{line}: databases.redis.enabled: database is enabled but its values file "
        f"{values_dir / 'redis.yaml'} is missing (the profile's redis.yaml only overrides it) "
        "(allowed: create redis.yaml, or set enabled: false)",
    )


def test_a_profile_file_of_a_disabled_database_without_base_is_still_checked(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    (values_dir / "neo4j.yaml").unlink()
    profile_file = values_dir / "profiles" / "ci" / "neo4j.yaml"
    profile_file.write_text("storage: 0\n", encoding="utf-8")
    run = run_validate(capsys, values_dir, "--profile", "ci")
    assert run.code == EXIT_INVALID
    assert run.line_starting(f"{profile_file}:1: storage: 0 is below the minimum")


def test_missing_values_file_of_a_disabled_database_is_fine(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    (values_dir / "neo4j.yaml").unlink()
    assert run_validate(capsys, values_dir).code == EXIT_OK


def test_missing_pipeline_yaml_is_one_problem_and_the_databases_are_still_checked(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    (values_dir / "pipeline.yaml").unlink()
    line = replace(values_dir / "redis.yaml", "replicas: 1", "replicas: 9")
    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_INVALID
    assert run.problems == [
        f"{values_dir / 'pipeline.yaml'}:1: -: file is missing",
        f"{values_dir / 'redis.yaml'}:{line}: replicas: 9 is above the maximum (allowed: a whole number 1 to 5)",
        f"{values_dir / 'redis.yaml'}:{line}: replicas: standalone mode runs exactly one replica, got 9 (allowed: 1)",
    ]


def test_a_misspelt_replicas_is_the_only_problem_not_a_chart_default_blamed_first(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    """The chart's default of 2 replicas never applies in standalone mode (it renders one): no "got 2"."""
    line = replace(values_dir / "redis.yaml", "replicas: 1", "replica: 1")
    run = run_validate(capsys, values_dir)
    assert len(run.problems) == 1
    assert run.problems[0].startswith(
        f"{values_dir / 'redis.yaml'}:{line}: replica: unknown key; did you mean 'replicas'?"
    )


def test_a_standalone_redis_without_replicas_counts_one_pod(values_dir: Path) -> None:
    replace(values_dir / "redis.yaml", "replicas: 1", "")
    redis = validate(values_dir).config.database("redis")
    assert (redis.mode, redis.replicas) == ("standalone", 1)


def test_broken_settings_do_not_hide_problems_in_database_files(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    pipeline = values_dir / "pipeline.yaml"
    typo = replace(pipeline, "namespace: default", "namespce: default")
    redis = replace(values_dir / "redis.yaml", "cpu: 0.5", "cpu: 0.7")
    run = run_validate(capsys, values_dir)
    assert [line.split(": ")[:2] for line in run.problems] == [
        [f"{pipeline}:1", "-"],  # missing required key 'namespace'
        [f"{pipeline}:{typo}", "namespce"],
        [f"{values_dir / 'redis.yaml'}:{redis}", "cpu"],
    ]


def test_missing_values_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_invalid(
        run_validate(capsys, tmp_path / "nowhere"), f"{tmp_path / 'nowhere'}:1: -: values folder does not exist"
    )


@pytest.mark.parametrize(("name", "meant"), [("postgres.yaml", "postgresql.yaml"), ("redis.yml", "redis.yaml")])
def test_values_file_the_loader_would_never_read(
    capsys: pytest.CaptureFixture[str], values_dir: Path, name: str, meant: str
) -> None:
    (values_dir / "profiles" / "ci" / name).write_text("replicas: 2\n", encoding="utf-8")
    run = run_validate(capsys, values_dir, "--profile", "ci")
    problem = run.line_starting(f"{values_dir / 'profiles' / 'ci' / name}:1: -: ")
    assert f"unknown values file, never read; did you mean {meant!r}? (allowed: pipeline.yaml, " in problem
    # Without the profile, the profile's files are not read, so nothing is wrong.
    assert run_validate(capsys, values_dir).code == EXIT_OK


# --- names, versions, images --------------------------------------------------------------------------------------


def test_release_name_of_16_characters_is_accepted(values_dir: Path) -> None:
    name = "redis-cluster-ab"
    assert len(name) == 16
    replace(values_dir / "pipeline.yaml", "    release: redis-cluster", f"    release: {name}")
    assert validate(values_dir).config.database("redis").release == name


def test_release_name_of_17_characters_is_rejected(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = replace(pipeline, "    release: redis-cluster", "    release: redis-cluster-abc")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: databases.redis.release: 'redis-cluster-abc' is 17 characters long, "
        "KubeBlocks allows at most 16 (allowed: ^[a-z]([-a-z0-9]*[a-z0-9])?$, 1-16)",
    )


@pytest.mark.parametrize("name", ["Redis", "1redis", "redis-", "redis_cluster"])
def test_release_name_pattern(capsys: pytest.CaptureFixture[str], values_dir: Path, name: str) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = replace(pipeline, "    release: redis-cluster", f"    release: {name}")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: databases.redis.release: {name!r} must start with a lowercase letter and hold only "
        "lowercase letters, digits and '-', not ending in '-' (allowed: ^[a-z]([-a-z0-9]*[a-z0-9])?$, 1-16)",
    )


def test_two_databases_cannot_share_a_release(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = replace(pipeline, "    release: neo4j-cluster", "    release: pg-cluster")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: databases.neo4j.release: 'pg-cluster' is already the release of postgresql",
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("Default", "must hold only lowercase letters, digits and '-', starting and ending with a letter or digit"),
        ("a" * 64, "is 64 characters long, Kubernetes allows at most 63"),
    ],
)
def test_namespace_must_be_a_kubernetes_name(
    capsys: pytest.CaptureFixture[str], values_dir: Path, value: str, why: str
) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = replace(pipeline, "namespace: default", f"namespace: {value}")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: namespace: {value!r} {why} (allowed: lowercase RFC 1123 label, e.g. default)",
    )


def test_kubeblocks_namespace_is_checked_too(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = replace(pipeline, "  namespace: kb-system", "  namespace: kb_system")
    run = run_validate(capsys, values_dir)
    assert run.line_starting(f"{pipeline}:{line}: kubeblocks.namespace: 'kb_system' must hold only")


def _image_line(pipeline: Path, name: str) -> tuple[int, str]:
    lines = pipeline.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"  {name}: "))
    return index + 1, lines[index]


@pytest.mark.parametrize("image", ["rancher/k3s", "rancher/k3s:latest", "localhost:5000/k3s", "Rancher/K3s:v1"])
def test_images_must_be_pinned(capsys: pytest.CaptureFixture[str], values_dir: Path, image: str) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line, text = _image_line(pipeline, "k3s")
    replace(pipeline, text, f"  k3s: {image}")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: images.k3s: {image!r} is not a pinned image (allowed: name:tag (not latest) or @sha256)",
    )


@pytest.mark.parametrize(
    "image",
    ["localhost:5000/rancher/k3s:v1.31.5-k3s1", "ghcr.io/a/b__c:1", f"rancher/k3s@sha256:{'a' * 64}", "k3s:v1"],
)
def test_pinned_images_are_accepted(values_dir: Path, image: str) -> None:
    assert validate(values_dir, overrides=[f"images.k3s={image}"]).config.images["k3s"] == image


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("key", "image"),
    [
        ("k3s", f"rancher/k3s:v1.31.5-k3s1@{DIGEST}"),
        ("toolbox", f"alpine/k8s:1.31.4@{DIGEST}"),
        ("python", f"docker.io/library/python:3.12.8-slim-bookworm@{DIGEST}"),
    ],
)
def test_every_image_can_be_pinned_by_tag_and_digest(values_dir: Path, key: str, image: str) -> None:
    config = validate(values_dir, overrides=[f"images.{key}={image}"]).config
    assert config.images[key] == image
    assert build_plan(config).versions[f"image.{key}"] == image  # the reports name exactly what ran


@pytest.mark.parametrize(
    "digest", ["sha256:abc", f"sha256:{'A' * 64}", f"sha512:{'a' * 128}", f"{'a' * 64}", f"sha256:{'a' * 65}", ""]
)
def test_a_malformed_digest_is_refused_saying_what_a_digest_is(
    capsys: pytest.CaptureFixture[str], values_dir: Path, digest: str
) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line, text = _image_line(pipeline, "toolbox")
    image = f"alpine/k8s:1.31.4@{digest}"
    replace(pipeline, text, f"  toolbox: {image}")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: images.toolbox: {image!r} has a malformed digest {digest!r} "
        "(allowed: sha256: and 64 lowercase hex digits, e.g. name:tag@sha256:<digest>)",
    )


@pytest.mark.parametrize(
    ("key", "old", "new", "message"),
    [
        ("kubeblocks.version", "  version: 1.0.1", "  version: v1.0.1", "must be a chart version without 'v'"),
        ("snapshotter.version", "  version: v8.2.0", "  version: 8.2.0", "must be a release tag"),
    ],
)
def test_versions_must_have_their_form(
    capsys: pytest.CaptureFixture[str], values_dir: Path, key: str, old: str, new: str, message: str
) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = replace(pipeline, old, new)
    run = run_validate(capsys, values_dir)
    assert run.line_starting(f"{pipeline}:{line}: {key}: {message} (allowed: e.g. ")


def test_chart_version_of_a_database(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    pipeline = values_dir / "pipeline.yaml"
    line = line_of(pipeline, "chartVersion: 1.0.1", after="qdrant:")
    lines = pipeline.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = "    chartVersion: latest"
    pipeline.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert_invalid(
        run_validate(capsys, values_dir),
        f"{pipeline}:{line}: databases.qdrant.chartVersion: must be a chart version without 'v' (allowed: e.g. 1.0.1)",
    )


def test_helm_repo_must_be_a_url(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    assert_invalid(
        run_validate(capsys, values_dir, "--set", "kubeblocks.helmRepo=apecloud.github.io"),
        "--set kubeblocks.helmRepo=apecloud.github.io:1: kubeblocks.helmRepo: must be a URL "
        "(allowed: https://..., oci://...)",
    )


def test_timeouts_have_bounds(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    assert_invalid(
        run_validate(capsys, values_dir, "--set", "timeouts.cluster=5"),
        "--set timeouts.cluster=5:1: timeouts.cluster: 5 is below the minimum (allowed: a whole number 10 to 7200)",
    )


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("databases.redis.release", "redis-cluster"),
        ("namespace", "default"),
        ("kubeblocks.version", "1.0.1"),
        ("snapshotter.version", "v8.2.0"),
        ("images.k3s", "rancher/k3s:v1.31.5-k3s1"),
    ],
)
def test_a_trailing_line_break_does_not_slip_through_a_pattern(
    capsys: pytest.CaptureFixture[str], values_dir: Path, setting: str, value: str
) -> None:
    text = f'{setting}="{value}\\n"'
    run = run_validate(capsys, values_dir, "--set", text)
    assert run.code == EXIT_INVALID
    assert run.line_starting(f"--set {text}:1: {setting}: ")


def test_a_trailing_line_break_does_not_slip_through_a_quantity(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    line = replace(values_dir / "qdrant.yaml", "memory: 0.5", 'memory: "0.5\\n"')
    assert run_validate(capsys, values_dir).line_starting(
        f"{values_dir / 'qdrant.yaml'}:{line}: memory: must be a number"
    )


# --- capacity -----------------------------------------------------------------------------------------------------


def test_capacity_names_the_largest_consumers_when_it_does_not_fit(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    replace(values_dir / "qdrant.yaml", "cpu: 0.5", "cpu: 8")
    pipeline = values_dir / "pipeline.yaml"
    line = line_of(pipeline, "cpu: 8", after="node:")
    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_INVALID
    problem = run.line_starting(f"{pipeline}:{line}: node.cpu: enabled databases and the control plane request ")
    assert re.search(
        r"request 1[0-9.]+ cores, the node has 8; largest: qdrant-cluster-qdrant \(1 x 8 cpu\) 8\.00, ", problem
    )
    assert problem.endswith("(allowed: lower requests in a profile, disable a database, or a larger node)")


def test_capacity_counts_memory_too(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    run = run_validate(capsys, values_dir, "--set", "node.memoryGi=2")
    problem = run.line_starting("--set node.memoryGi=2:1: node.memoryGi: enabled databases and the control plane ")
    assert "Gi, the node has 2; largest: " in problem
    largest = problem.split("largest: ")[1]
    assert "cpu" not in largest, "a memory line speaks of memory only"
    assert re.search(r"pg-cluster-postgresql \(2 x 0\.5 Gi\) 1\.00", largest), largest


def test_ci_node_does_not_hold_the_defaults(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    """Without the profile's lower requests, the databases do not fit a 4-core runner: the profile is needed."""
    run = run_validate(capsys, values_dir, "--set", "node.cpu=4")
    assert run.line_starting("--set node.cpu=4:1: node.cpu: enabled databases and the control plane request ")


def test_enabling_a_database_adds_its_requests(values_dir: Path) -> None:
    base = validate(values_dir, "ci").capacity.cpu
    with_neo4j = validate(values_dir, "ci", ["databases.neo4j.enabled=true"]).capacity.cpu
    assert with_neo4j == pytest.approx(base + 0.5)


# --- profiles and --set -------------------------------------------------------------------------------------------


def test_unknown_profile_lists_the_known_ones(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    (values_dir / "profiles" / "laptop").mkdir()
    assert_invalid(
        run_validate(capsys, values_dir, "--profile", "gpu"),
        f"{values_dir / 'profiles' / 'gpu'}:1: profile: no profile named 'gpu' (allowed: ci, full, laptop)",
    )


@pytest.mark.parametrize("name", [".", "..", "ci/", "../values/profiles/ci"])
def test_profile_must_be_a_folder_directly_under_profiles(
    capsys: pytest.CaptureFixture[str], values_dir: Path, name: str
) -> None:
    run = run_validate(capsys, values_dir, "--profile", name)
    assert run.code == EXIT_INVALID
    assert f"profile: no profile named {name!r} (allowed: ci, full)" in run.problems[0]


def test_a_problem_set_by_the_profile_is_reported_in_the_profile_file(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    profile_redis = values_dir / "profiles" / "ci" / "redis.yaml"
    line = replace(profile_redis, "storage: 1", "storage: 0")
    assert_invalid(
        run_validate(capsys, values_dir, "--profile", "ci"),
        f"{profile_redis}:{line}: storage: 0 is below the minimum (allowed: a number 1 to 10000)",
    )
    assert run_validate(capsys, values_dir).code == EXIT_OK  # the base file alone is fine


def test_unknown_key_in_a_profiles_pipeline_yaml(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    profile_pipeline = values_dir / "profiles" / "ci" / "pipeline.yaml"
    line = append(profile_pipeline, "nodes:\n  cpu: 2\n")
    run = run_validate(capsys, values_dir, "--profile", "ci")
    assert run.line_starting(f"{profile_pipeline}:{line}: nodes: unknown key; did you mean 'node'? ")


def test_set_with_an_unknown_key_suggests_one(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    assert_invalid(
        run_validate(capsys, values_dir, "--set", "databases.neo4j.enabeld=true"),
        "--set databases.neo4j.enabeld=true:1: databases.neo4j.enabeld: unknown key; did you mean 'enabled'? "
        "(the pipeline would never read it) (allowed: chartVersion, enabled, release)",
    )


def test_set_with_a_value_of_the_wrong_type(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    assert_invalid(
        run_validate(capsys, values_dir, "--set", "node.cpu=many"),
        "--set node.cpu=many:1: node.cpu: must be a number, got string 'many' (allowed: a number 1 to 1024)",
    )


@pytest.mark.parametrize("text", ["namespace", "=ci", "databases..enabled=true"])
def test_set_needs_key_equals_value(capsys: pytest.CaptureFixture[str], values_dir: Path, text: str) -> None:
    run = run_validate(capsys, values_dir, "--set", text)
    assert run.code == EXIT_INVALID
    assert run.line_starting(f"--set {text}:1: ").endswith(": expected key.path=value (allowed: e.g. namespace=ci)")


def test_set_with_a_mapping_of_number_keys_is_a_problem_not_a_crash(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    run = run_validate(capsys, values_dir, "--set", "databases=1:")
    assert run.code == EXIT_INVALID
    assert run.line_starting("--set databases=1::1: databases.1: unknown key")


def test_set_can_enable_a_database(values_dir: Path) -> None:
    assert validate(values_dir, overrides=["databases.neo4j.enabled=true"]).config.database("neo4j").enabled


def test_summary_counts_files_read_and_overrides_apart(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    run = run_validate(capsys, values_dir, "--profile", "ci", "--set", "node.cpu=6", "--set", "namespace=ci")
    assert run.out.startswith(f"values OK: {values_dir} (12 files + 2 --set), profile ci, namespace ci\n")


# --- all at once --------------------------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_sorted_by_file_and_line(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    redis_type = replace(values_dir / "redis.yaml", "replicas: 1", "replicas: one")
    redis_key = append(values_dir / "redis.yaml", "sentinal: {}\n")
    (values_dir / "qdrant.yaml").write_bytes(b"\xff\n")
    neo4j_mode = replace(values_dir / "neo4j.yaml", "mode: singlealone", "mode: cluster")
    pipeline = values_dir / "pipeline.yaml"
    release = replace(pipeline, "    release: es-cluster", "    release: ES")

    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_INVALID
    located = [(line.split(":")[0], int(line.split(":")[1])) for line in run.problems]
    assert located == [
        (str(values_dir / "neo4j.yaml"), neo4j_mode),
        (str(pipeline), release),
        (str(values_dir / "qdrant.yaml"), 1),
        (str(values_dir / "redis.yaml"), redis_type),
        (str(values_dir / "redis.yaml"), redis_key),
    ]
    assert run.err.splitlines()[-1] == "5 problems found; nothing was deployed."


def test_invalid_input_from_the_api_lists_every_problem(values_dir: Path) -> None:
    replace(values_dir / "redis.yaml", "cpu: 0.5", "cpu: 0")
    replace(values_dir / "qdrant.yaml", "replicas: 1", "replicas: 0")
    with pytest.raises(InvalidInput) as caught:
        validate(values_dir)
    assert [(p.file.name, p.key) for p in caught.value.problems] == [("qdrant.yaml", "replicas"), ("redis.yaml", "cpu")]
    assert str(caught.value).count("\n") == 1


# --- never a traceback ------------------------------------------------------------------------------------------

YAML_ISH = st.text(alphabet="ab1:-[]{}&*!<>|'\"#%@`,?.~ \n\t\x00\ufeff", max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(YAML_ISH.map(str.encode), st.binary(max_size=40)))
@example(content=b"\xef\xbb\xbfa: 1\nb: \xc3\xa9\x00\n")  # libyaml counts bytes, not characters
def test_any_file_content_gives_problems_or_data_never_an_exception(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "any.yaml"
    path.write_bytes(content)
    problems: list[Problem] = []
    doc = load_yaml(path, problems)
    if doc is None:
        assert problems, "an unusable file must say why"
    else:
        assert isinstance(doc.data, dict)
    for problem in problems:
        assert "\n" not in str(problem)
        assert 1 <= problem.line <= max(1, len(content.decode("utf-8", "replace").splitlines()))


CHART_KEYS = sorted({key for db in DATABASES.values() for key in db.values_rules} | {"enabled", "cpu", "x"})
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "0.5", "1Gi", "standalone", "singlealone", "single-node", "Delete", "16.4.0"]),
)
CHART_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(CHART_KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    database=st.sampled_from(sorted(DATABASES)),
    values=st.dictionaries(st.sampled_from(CHART_KEYS), CHART_VALUES, min_size=1, max_size=6),
)
def test_any_chart_values_give_a_config_or_problems_never_an_exception(
    values_dir: Path, database: str, values: dict[str, object]
) -> None:
    (values_dir / f"{database}.yaml").write_text(yaml.safe_dump(values), encoding="utf-8")
    try:
        validate(values_dir, overrides=[f"databases.{database}.enabled=true"])
    except InvalidInput as exc:
        assert exc.problems
        assert all("\n" not in str(p) for p in exc.problems)


SETTING_KEYS = st.sampled_from(
    ["namespace", "databases", "databases.redis", "databases.redis.enabled", "node.cpu", "images.k3s", "a..b", ""]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=SETTING_KEYS, value=st.text(alphabet="ab1.:-[]{}!&* =\n", max_size=12))
def test_any_set_override_gives_a_config_or_problems_never_an_exception(values_dir: Path, key: str, value: str) -> None:
    try:
        validate(values_dir, overrides=[f"{key}={value}"])
    except InvalidInput as exc:
        assert all("\n" not in str(p) for p in exc.problems)


# --- keys the 1.0.1 charts never read, and values dbstack does not model ---------------------------------------

DEAD_KEYS = [(key, path) for key, db in DATABASES.items() for path in db.dead_keys]


def write_key(path: Path, dotted: str, value: object) -> int:
    """Set `dotted` in the YAML file (nested mappings created) and return the line of its last part."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    doc = load_yaml(path, [])
    assert doc is not None
    return doc.line_of(dotted)


@pytest.mark.parametrize(("key", "dotted"), DEAD_KEYS, ids=[f"{k}-{p}" for k, p in DEAD_KEYS])
def test_a_key_the_chart_never_reads_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], values_dir: Path, key: str, dotted: str
) -> None:
    db = DATABASES[key]
    path = values_dir / f"{key}.yaml"
    line = write_key(path, dotted, {"enabled": True} if dotted in ("twemproxy", "redisCluster", "roles") else "x")
    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_INVALID
    assert run.problems == [f"{path}:{line}: {dotted}: the {db.cluster_chart} 1.0.1 chart {db.dead_keys[dotted]}"]


def test_postgresql_extra_termination_policy_names_the_key_that_works(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    path = values_dir / "postgresql.yaml"
    line = append(path, "extra:\n  terminationPolicy: WipeOut\n") + 1
    assert run_validate(capsys, values_dir).problems == [
        f"{path}:{line}: extra.terminationPolicy: the postgresql-cluster 1.0.1 chart never reads this key; "
        "use terminationPolicy"
    ]


UNMODELLED_VALUES = [
    (key, dotted, value, unmodelled.modelled)
    for key, db in DATABASES.items()
    for dotted, unmodelled in db.unmodelled.items()
    for value in unmodelled.values
]


@pytest.mark.parametrize(
    ("key", "dotted", "value", "modelled"), UNMODELLED_VALUES, ids=[f"{k}-{p}-{v}" for k, p, v, _ in UNMODELLED_VALUES]
)
def test_a_mode_dbstack_does_not_model_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], values_dir: Path, key: str, dotted: str, value: object, modelled: tuple[object]
) -> None:
    path = values_dir / f"{key}.yaml"
    line = write_key(path, dotted, value)
    run = run_validate(capsys, values_dir)
    assert run.code == EXIT_INVALID
    shown = repr(value) if isinstance(value, str) else str(value).lower()
    allowed = ", ".join(str(m).lower() if isinstance(m, bool) else str(m) for m in modelled)
    (problem,) = run.problems
    assert problem.startswith(f"{path}:{line}: {dotted}: {shown} is not modelled: ")
    assert problem.endswith(f" (allowed: {allowed})")


def test_a_chart_default_mode_dbstack_does_not_model_must_be_overridden(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    path = values_dir / "elasticsearch.yaml"
    replace(path, "mode: single-node", "# mode left to the chart")
    (problem,) = run_validate(capsys, values_dir).problems
    assert problem.startswith(f"{path}:1: mode: the chart's default 'multi-node' is not modelled; set it: ")


def test_redis_replication_runs_at_least_two_replicas(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    path = values_dir / "redis.yaml"
    replace(path, "mode: standalone", "mode: replication")
    line = line_of(path, "replicas: 1")
    assert run_validate(capsys, values_dir).problems == [
        f"{path}:{line}: replicas: replication mode runs at least 2 replicas, got 1 (allowed: 2 to 5)"
    ]
    replace(path, "replicas: 1", "replicas: 2")
    assert run_validate(capsys, values_dir).code == EXIT_OK


def test_a_version_the_addons_component_version_does_not_release_is_refused(
    capsys: pytest.CaptureFixture[str], values_dir: Path
) -> None:
    path = values_dir / "postgresql.yaml"
    line = replace(path, "version: 16.4.0", "version: 16.5.0")
    (problem,) = run_validate(capsys, values_dir).problems
    assert problem.startswith(
        f"{path}:{line}: version: '16.5.0' is no release of the postgresql 1.0.1 addon's ComponentVersion; "
        "KubeBlocks would never start the Cluster (allowed: 12.14.0, "
    )
    assert ", 16.4.0, 16.9.0, 17.5.0)" in problem


def test_every_profile_of_the_repository_is_valid(capsys: pytest.CaptureFixture[str], values_dir: Path) -> None:
    """Nothing in values/ became invalid: the base values and each profile, every database enabled."""
    enable = [arg for key in DATABASES for arg in ("--set", f"databases.{key}.enabled=true")]
    for profile in ["", *sorted(p.name for p in (values_dir / "profiles").iterdir())]:
        run = run_validate(capsys, values_dir, *(["--profile", profile] if profile else []), *enable)
        assert (run.code, run.err) == (EXIT_OK, ""), profile
