"""Files named by the user, read in-process: the exact words of every refusal of `read_input_file` and
`read_kubeconfig` (tests/test_hostile_input.py drives the same refusals through `python -m dbstack`)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml
from dbstack.config.inputfile import InputFileError, read_input_file
from dbstack.config.kubeconfig import KubeconfigError, read_kubeconfig
from dbstack.config.load import parse_override
from dbstack.config.problems import InvalidInput, Problem
from dbstack.config.yamlfile import load_yaml, tree_problem

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "https://10.0.0.1:6443"}
contexts:
- name: lab
  context: {cluster: lab, user: admin}
- name: prod
  context: {cluster: lab, user: admin}
current-context: lab
users:
- name: admin
  user: {token: tok-1}
"""


def refusal(path: Path, **kwargs: object) -> str:
    with pytest.raises(InputFileError) as raised:
        read_input_file(path, **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


def test_what_is_not_a_regular_file_is_named_by_its_kind(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tmp_path / "sock"))
        assert refusal(tmp_path / "sock") == "is a socket, not a regular file"
    assert refusal(tmp_path) == "is a directory, not a regular file"
    assert refusal(tmp_path / "fifo") == "is a FIFO (named pipe), not a regular file"
    assert refusal(Path("/dev/null")) == "is a character device, not a regular file"
    assert refusal(tmp_path / "missing") == "cannot read file: No such file or directory"


@pytest.mark.parametrize(
    ("size", "limit", "says"),
    [
        (150, 100, "file is 150 bytes, above the 100 bytes limit for this file"),
        (1076, 1024, "file is 1.1 KiB, above the 1.0 KiB limit for this file"),
        (3000, 2048, "file is 2.9 KiB, above the 2.0 KiB limit for this file"),
        (1536 * 1024, 1024 * 1024, "file is 1.5 MiB, above the 1 MiB limit for this file"),
        (2 * 1024 * 1024 + 1, 2 * 1024 * 1024, "file is 2.0 MiB, above the 2 MiB limit for this file"),
    ],
)
def test_a_file_above_its_limit_is_refused_with_both_sizes_in_words(
    tmp_path: Path, size: int, limit: int, says: str
) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * size)
    assert refusal(big, limit=limit) == says
    big.write_bytes(b"x" * limit)
    assert read_input_file(big, limit=limit) == b"x" * limit


def test_the_default_limit_is_one_mebibyte(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    assert refusal(big) == "file is 1.0 MiB, above the 1 MiB limit for this file"


def test_a_link_may_not_leave_its_folder(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("a: 1\n", encoding="utf-8")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "out").symlink_to(tmp_path / "outside")
    (folder / "target").write_text("b: 2\n", encoding="utf-8")
    (folder / "inside").symlink_to(folder / "target")
    assert refusal(folder / "out", within=folder) == (
        f"is a link to {tmp_path / 'outside'}, outside the folder {folder} (links must stay inside it)"
    )
    assert read_input_file(folder / "inside", within=folder) == b"b: 2\n"
    assert read_input_file(folder / "out") == b"a: 1\n"


def kubeconfig_refusal(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KubeconfigError) as raised:
        read_kubeconfig(path)
    return str(raised.value)


def test_a_kubeconfig_kubectl_could_not_use_is_refused_saying_why(tmp_path: Path) -> None:
    k = tmp_path / "kubeconfig"
    assert kubeconfig_refusal(k, "a: 1\nb: [\n  c: d: e\n") == (
        "line 3: invalid YAML at line 3, column 7: did not find expected ',' or ']'"
    )
    assert kubeconfig_refusal(k, "- a list\n") == "top level is a list, expected a mapping"
    assert kubeconfig_refusal(k, "apiVersion: v1\n") == (
        "is not a kubeconfig: it has no clusters (expected a list under 'clusters')"
    )
    assert kubeconfig_refusal(k, "clusters: [{name: a}]\ncontexts: []\n") == (
        "is not a kubeconfig: it has no contexts (expected a list under 'contexts')"
    )
    assert kubeconfig_refusal(k, KUBECONFIG.replace("current-context: lab\n", "")) == (
        "has no current-context, so kubectl would try localhost:8080; set one with `kubectl config use-context` "
        "(contexts: lab, prod)"
    )
    assert kubeconfig_refusal(k, "clusters: [{name: a}]\ncontexts: [{context: {}}]\n") == (
        "has no current-context, so kubectl would try localhost:8080; set one with `kubectl config use-context` "
        "(contexts: none named)"
    )
    assert kubeconfig_refusal(k, KUBECONFIG.replace("current-context: lab", "current-context: staging")) == (
        "current-context 'staging' is not one of its contexts (lab, prod)"
    )


def test_a_problem_on_the_first_line_is_not_prefixed_with_it(tmp_path: Path) -> None:
    assert kubeconfig_refusal(tmp_path / "k", "a: [b\n").startswith("invalid YAML at the end of the file")


def test_every_credential_of_every_user_is_returned_once(tmp_path: Path) -> None:
    users = """
users:
- name: admin
  user:
    token: tok-1
    client-certificate-data: not-secret-cert
    client-key-data: key-2
- name: oidc
  user:
    auth-provider:
      name: oidc
      config: {id-token: id-3, refresh-token: refresh-4, client-secret: secret-5, client-id: public-id}
- name: basic
  user: {username: bob, password: pw-6}
- name: again
  user: {token: tok-1, Password: "  "}
- name: exec
  user:
    exec:
      env: [{name: TOKEN, value: plain}]
      args: [--token-file, /x]
"""
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG.split("users:")[0] + users, encoding="utf-8")
    assert read_kubeconfig(config) == ("tok-1", "key-2", "id-3", "refresh-4", "secret-5", "pw-6")


def test_a_list_under_a_secret_key_is_secret_throughout(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        KUBECONFIG.replace("user: {token: tok-1}", "user: {tokens: [a-1, [b-2]], other: [c-3]}"), encoding="utf-8"
    )
    assert read_kubeconfig(config) == ("a-1", "b-2")
    config.write_text(KUBECONFIG.replace("users:\n- name: admin\n  user: {token: tok-1}\n", "users: none\n"))
    assert read_kubeconfig(config) == ()


def yaml_problems(path: Path, text: str) -> list[str]:
    path.write_bytes(text.encode("utf-8"))
    problems: list[Problem] = []
    load_yaml(path, problems)
    return [f"{p.line}: {p.key}: {p.message}" for p in problems]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("x: [\n1", "2: -: invalid YAML at the end of the file (line 2, column 2)"),
        ("x: [\r\n1", "2: -: invalid YAML at the end of the file (line 2, column 2)"),
        ("x: [\n12", "2: -: invalid YAML at the end of the file (line 2, column 3)"),
        ("x: [\n", "1: -: invalid YAML at the end of the file (line 1, column 5)"),
    ],
)
def test_a_parse_running_off_the_end_points_at_the_last_line(tmp_path: Path, text: str, says: str) -> None:
    (problem,) = yaml_problems(tmp_path / "values.yaml", text)
    assert problem.startswith(f"{says}: ")


def test_a_merge_of_anything_but_mappings_names_what_it_got(tmp_path: Path) -> None:
    assert yaml_problems(tmp_path / "a.yaml", "b:\n  <<: [[1]]\n") == [
        "2: b: '<<' merges a mapping or a list of mappings, not a list"
    ]
    assert yaml_problems(tmp_path / "b.yaml", "b:\n  <<: 3\n") == [
        "2: b: '<<' merges a mapping or a list of mappings, not a scalar"
    ]


def big(text: str, tmp_path: Path) -> list[str]:
    return yaml_problems(tmp_path / "values.yaml", text)


def test_a_file_too_big_to_build_is_refused_before_it_is_built(tmp_path: Path) -> None:
    aliases = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    assert big(aliases, tmp_path) == ["1: -: uses more than the 100 YAML aliases allowed"]
    assert big("a: [" + ", ".join(["1"] * 10_000) + "]\n", tmp_path) == [
        "1: -: holds more than the 10,000 values allowed"
    ]
    # 55 aliases, 57 values written: 50 + 50 x 50 + 4 x 2,551 (and the mappings and lists) once expanded.
    expanded = (
        "a: &a [" + ",".join(["x"] * 50) + "]\nb: &b [" + ",".join(["*a"] * 50) + "]\nc: [" + ",".join(["*b"] * 4)
    )
    assert big(expanded + "]\n", tmp_path) == [
        "1: -: holds 12,811 values once its aliases are expanded, more than the 10,000 allowed"
    ]
    assert big("a: " + "[" * 100 + "]" * 100 + "\n", tmp_path) == [
        "1: -: nests 101 levels deep, more than the 100 allowed"
    ]
    assert big("a: " + "[" * 99 + "]" * 99 + "\n", tmp_path) == []
    root = yaml.compose(aliases)
    assert root is not None
    assert tree_problem(root) == "uses 101 YAML aliases, more than the 100 allowed"


def test_a_set_value_too_big_to_build_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_override("namespace=[" + ",".join(["1"] * 10_001) + "]")
    assert [(p.line, p.key, p.message) for p in raised.value.problems] == [
        (1, "namespace", "the value holds more than the 10,000 values allowed")
    ]


def test_a_key_must_be_a_plain_value(tmp_path: Path) -> None:
    assert big("? {a: 1}\n: 1\nb: 2\n", tmp_path) == ["1: -: a key must be a plain value, not a mapping"]
    assert big("m: &m {? [a] : 1, k: 2}\nc:\n  <<: *m\n", tmp_path) == [
        "1: m: a key must be a plain value, not a list",
        "1: c: a key must be a plain value, not a list",
    ]


def test_merges_nest_and_the_first_source_wins(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(
        "base: &base {x: 1, y: 0}\nmid: &mid {<<: *base, y: 2}\nc:\n  <<: [*mid, {w: 4, x: 9}]\n  z: 3\n",
        encoding="utf-8",
    )
    problems: list[Problem] = []
    doc = load_yaml(path, problems)
    assert problems == []
    assert doc is not None
    assert doc.data["c"] == {"z": 3, "y": 2, "x": 1, "w": 4}
    assert (doc.lines["c.z"], doc.lines["c.y"], doc.lines["c.x"], doc.lines["c.w"]) == (5, 2, 1, 4)
    assert big("a: &a\n  b: 1\n  <<: *a\n", tmp_path) == ["1: a: alias refers to itself (recursive YAML anchor)"]


def test_a_file_that_says_it_is_small_is_still_read_no_further_than_its_limit() -> None:
    # procfs files report a size of 0 and hold more: the limit holds on what is read, not on what stat says.
    assert refusal(Path("/proc/self/status"), limit=10) == "file is larger than 10 bytes, the limit for this file"
