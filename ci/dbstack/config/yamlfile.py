"""Read YAML the strict way: line numbers for every key, duplicates and bad bytes reported, never raised.

Hostile files are refused before they cost anything: only regular files are opened (a FIFO would block, a device
never end), links may not leave the folder they were found in, at most 1 MiB is read (`config.inputfile`), and the node
tree is measured before it is built (an alias bomb of a few hundred bytes expands to billions of values).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dbstack.config.inputfile import InputFileError, read_input_file
from dbstack.config.problems import Problem

# libyaml's parser when PyYAML was built with it (several times faster), else the pure-Python one; both give marks.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"

MAX_ALIASES = 100
MAX_VALUES = 10_000
"""Values (every mapping, list and scalar) a file may hold once its aliases are expanded."""
MAX_DEPTH = 100
"""Nesting depth after expanding aliases (the values files nest 4 deep; libyaml itself stops at 1000)."""


def _event_problem(text: str) -> str | None:
    """Too many values or aliases, counted on the parser's events before any node is built: composing half a
    million nodes takes seconds, counting the first ten thousand events milliseconds. Parse errors are left to
    the composer, which reports them with their line."""
    values = aliases = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    return f"uses more than the {MAX_ALIASES} YAML aliases allowed"
            elif isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                values += 1
                if values > MAX_VALUES:
                    return f"holds more than the {MAX_VALUES:,} values allowed"
    except yaml.YAMLError:
        return None
    return None


def tree_problem(root: yaml.Node) -> str | None:
    """Why a composed node tree is too big to build, measured without expanding it; None when it is fine.

    Aliases share their anchor's node, so sizes are computed once per node (iteratively: no recursion limit).
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    aliases = 0
    visited: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            # A child still being measured is an ancestor (a recursive anchor, reported by the builder): it adds 0.
            sizes[id(node)] = 1 + sum(sizes.get(id(child), 0) for child in children)
            depths[id(node)] = 1 + max((depths.get(id(child), 0) for child in children), default=0)
            continue
        if id(node) in visited:
            aliases += 1
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    if aliases > MAX_ALIASES:
        return f"uses {aliases} YAML aliases, more than the {MAX_ALIASES} allowed"
    if sizes[id(root)] > MAX_VALUES:
        expanded = " once its aliases are expanded" if aliases else ""
        return f"holds {sizes[id(root)]:,} values{expanded}, more than the {MAX_VALUES:,} allowed"
    if depths[id(root)] > MAX_DEPTH:
        return f"nests {depths[id(root)]} levels deep, more than the {MAX_DEPTH} allowed"
    return None


def text_problem(text: str) -> str | None:
    """The limits of a file, for a YAML text (a `--set` value), before anything builds it; None when fine or not
    YAML."""
    too_many = _event_problem(text)
    if too_many is not None:
        return too_many
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        return None
    return tree_problem(root) if root is not None else None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


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


def load_yaml(path: Path, problems: list[Problem], *, within: Path | None = None) -> YamlDocument | None:
    """Parse `path` into a mapping; append every problem found and return None when unusable.

    `within`: the folder the file was found in; a link leading out of it is refused.
    """
    try:
        raw = read_input_file(path, within=within)
    except InputFileError as exc:
        problems.append(Problem(path, 1, "-", str(exc)))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            Problem(path, line, "-", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})")
        )
        return None
    too_many = _event_problem(text)
    if too_many is not None:
        problems.append(Problem(path, 1, "-", too_many))
        return None
    root = _single_root(path, text, problems)
    if root is None:
        return None
    too_big = tree_problem(root)
    if too_big is not None:
        problems.append(Problem(path, 1, "-", too_big))
        return None
    doc = YamlDocument(path=path, data=None)
    doc.data = _Builder(doc, problems).build(root, "", ())
    return doc


def _single_root(path: Path, text: str, problems: list[Problem]) -> yaml.MappingNode | None:
    """The file's one document as a mapping node, or None after reporting why not."""
    try:
        documents = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = _one_line(exc.problem or exc.context or "unreadable")
        if mark is None:
            problems.append(Problem(path, 1, "-", f"invalid YAML: {what}"))
        elif mark.line + 1 > _last_line(text):
            # The parser ran off the end (an unclosed bracket or quote): point at the last line, not past it.
            last = _last_line(text)
            column = len(text.splitlines()[last - 1]) + 1 if text.strip() else 1
            opened = exc.context_mark
            where = (
                f"; {_one_line(exc.context or 'it')} started at line {opened.line + 1}, column {opened.column + 1}"
                if opened is not None and opened is not mark
                else ""
            )
            problems.append(
                Problem(
                    path,
                    last,
                    "-",
                    f"invalid YAML at the end of the file (line {last}, column {column}): {what}{where}",
                )
            )
        else:
            line, column = mark.line + 1, mark.column + 1
            problems.append(Problem(path, line, "-", f"invalid YAML at line {line}, column {column}: {what}"))
        return None
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        # libyaml reports a byte offset, PyYAML a character index; the character is refused wherever it appears,
        # so its first occurrence is where the reader stopped.
        found = text.find(chr(char))
        line, column = _line_and_column(text, found if found >= 0 else min(exc.position, len(text)))
        problems.append(
            Problem(
                path, line, "-", f"invalid YAML at line {line}, column {column}: character U+{char:04X} is not allowed"
            )
        )
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(path, 1, "-", f"invalid YAML: {_one_line(str(exc))}"))
        return None
    documents = [d for d in documents if d.tag != _NULL_TAG]
    if not documents:
        problems.append(Problem(path, 1, "-", "file is empty (expected a mapping of keys to values)"))
        return None
    if len(documents) > 1:
        problems.append(
            Problem(
                path,
                documents[1].start_mark.line + 1,
                "-",
                "more than one YAML document (Helm reads only the first; use one mapping)",
            )
        )
        return None
    root = documents[0]
    if not isinstance(root, yaml.MappingNode):
        problems.append(
            Problem(path, root.start_mark.line + 1, "-", f"top level is a {_kind(root)}, expected a mapping")
        )
        return None
    return root


_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
"""What YAML counts as a line break, so line numbers agree with the parser's."""


def _last_line(text: str) -> int:
    breaks = len(_LINE_BREAK.findall(text))
    ends_with_break = _LINE_BREAK.fullmatch(text[-1:]) is not None
    return max(1, breaks if ends_with_break else breaks + 1)


def _line_and_column(text: str, position: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "list"
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    return "scalar"


class _Builder:
    """Turns a node tree into plain data, recording key lines and reporting what Helm would silently accept."""

    def __init__(self, doc: YamlDocument, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems
        # A fresh constructor per file: SafeConstructor caches every node it has built.
        self.constructor = yaml.constructor.SafeConstructor()

    def report(self, node: yaml.Node, key: str, message: str) -> None:
        self.problems.append(Problem(self.doc.path, node.start_mark.line + 1, key or "-", message))

    def build(self, node: yaml.Node, prefix: str, active: tuple[int, ...]) -> Any:
        if id(node) in active:
            self.report(node, prefix, "alias refers to itself (recursive YAML anchor)")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, prefix, (*active, id(node)))
        if isinstance(node, yaml.SequenceNode):
            inner = (*active, id(node))
            return [self.build(item, f"{prefix}[{i}]", inner) for i, item in enumerate(node.value)]
        return self._scalar(node, prefix)

    def _scalar(self, node: yaml.Node, prefix: str) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.report(node, prefix, _one_line(exc.problem or str(exc)))
        except (ValueError, TypeError, OverflowError) as exc:
            self.report(node, prefix, f"cannot read {_one_line(str(node.value))!r} as {node.tag}: {exc}")
        return node.value

    def _key(self, node: yaml.Node, prefix: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.report(node, prefix, f"a key must be a plain value, not a {_kind(node)}")
            return None
        return str(self._scalar(node, prefix))

    def _mapping(self, node: yaml.MappingNode, prefix: str, active: tuple[int, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_pairs(value_node, prefix, active))
                continue
            key = self._key(key_node, prefix)
            if key is None:
                continue
            path = f"{prefix}.{key}" if prefix else key
            line = key_node.start_mark.line + 1
            if key in result:
                self.problems.append(
                    Problem(
                        self.doc.path,
                        line,
                        path,
                        f"duplicate key (first set on line {self.doc.lines[path]}; YAML keeps only the last)",
                    )
                )
            else:
                self.doc.lines[path] = line
            result[key] = self.build(value_node, path, active)
        # `<<: *anchor` supplies defaults: keys written here win, then earlier merge sources over later ones.
        for key_node, value_node in merged:
            key = self._key(key_node, prefix)
            if key is None or key in result:
                continue
            path = f"{prefix}.{key}" if prefix else key
            self.doc.lines[path] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, path, active)
        return result

    def _merge_pairs(
        self, node: yaml.Node, prefix: str, active: tuple[int, ...]
    ) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.report(source, prefix, f"'<<' merges a mapping or a list of mappings, not a {_kind(source)}")
                continue
            if id(source) in active:
                self.report(source, prefix, "alias refers to itself (recursive YAML anchor)")
                continue
            own = [(k, v) for k, v in source.value if k.tag != _MERGE_TAG]
            nested = [v for k, v in source.value if k.tag == _MERGE_TAG]
            yield from own
            for value in nested:
                yield from self._merge_pairs(value, prefix, (*active, id(source)))
