"""Read YAML the strict way: line numbers for every key, duplicates and bad bytes reported, never raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dbstack.problems import Problem


@dataclass
class YamlDocument:
    """One parsed file: plain data plus the line of every dotted key path."""

    path: Path
    data: Any
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, key: str) -> int:
        """The line of `key`, or of its nearest parent that has one, or 1."""
        parts = key.split(".")
        while parts:
            line = self.lines.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
        return 1


def load_yaml(path: Path, problems: list[Problem]) -> YamlDocument | None:
    """Parse `path` into a mapping; append every problem found and return None when unusable."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(path, 1, "-", f"cannot read file: {exc.strerror or exc}"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            Problem(path, line, "-", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})")
        )
        return None
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        line = mark.line + 1 if mark else 1
        problems.append(Problem(path, line, "-", f"invalid YAML at {where}: {exc.problem or exc}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(path, 1, "-", f"invalid YAML: {exc}"))
        return None
    documents = [d for d in documents if d is not None]
    if not documents:
        problems.append(Problem(path, 1, "-", "file is empty (expected a mapping of keys to values)"))
        return None
    if len(documents) > 1:
        problems.append(
            Problem(path, documents[1].start_mark.line + 1, "-", "more than one YAML document (use one mapping)")
        )
        return None
    root = documents[0]
    if not isinstance(root, yaml.MappingNode):
        problems.append(
            Problem(path, root.start_mark.line + 1, "-", f"top level is a {_kind(root)}, expected a mapping")
        )
        return None
    doc = YamlDocument(path=path, data=None)
    doc.data = _build(root, "", doc, problems)
    return doc


_SCALARS = yaml.constructor.SafeConstructor()


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "list"
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    return "scalar"


def _build(node: yaml.Node, prefix: str, doc: YamlDocument, problems: list[Problem]) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = str(_SCALARS.construct_object(key_node, deep=True))
            path = f"{prefix}.{key}" if prefix else key
            line = key_node.start_mark.line + 1
            if key in result:
                problems.append(
                    Problem(
                        doc.path,
                        line,
                        path,
                        f"duplicate key (first set on line {doc.lines[path]}; YAML keeps only the last)",
                    )
                )
            else:
                doc.lines[path] = line
            result[key] = _build(value_node, path, doc, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, f"{prefix}[{i}]", doc, problems) for i, item in enumerate(node.value)]
    return _SCALARS.construct_object(node, deep=True)
