"""Bounded YAML: every YAML the project reads goes through here.

A YAML file can describe far more data than it holds: eight nested anchors of nine aliases
each (a 1 KB file) expand to 9^8 = 43 million nodes, and ``[[[[...`` a few thousand levels
deep overflows the recursive composer. So the document is composed with limits, checked
*while* composing, before any alias is expanded:

- ``max_bytes``: the size of the text;
- ``max_depth``: nesting of sequences and mappings;
- ``max_nodes`` and ``max_chars``: nodes and scalar characters of the document *as
  expanded* (every alias counts the full size of what it refers to; a merge key ``<<: *a``
  is an alias too). The sizes are tallied per anchor as the composer goes, so a bomb is
  refused at the alias that crosses the limit, in time linear in the file;
- a recursive alias (``&a [*a]``) is refused: it has no finite expansion.

Each refusal is a ConfigError ``file:line: invalid YAML: ...`` naming the line of the alias
(or of the node) where the limit was crossed. Tags that are not plain data (``!!python/...``,
``!custom``) are refused with their line as well.

``compose`` gives the node tree (config.py builds its data from it, recording the line of
every key); ``load`` gives plain data for any other YAML the project reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.events import AliasEvent, Event, NodeEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from monitor.errors import ConfigError

__all__ = ["YAML_LIMITS", "YamlLimits", "build_data", "compose", "load"]

MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """Caps on one YAML document; the defaults fit any hand-written or generated config
    (docs/configuration.md, "Limits") and parse in well under a second."""

    max_bytes: int = 8 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 100_000
    max_chars: int = 16 * 1024 * 1024


YAML_LIMITS = YamlLimits()


class _LimitExceededError(yaml.MarkedYAMLError):
    """A limit crossed while composing: carries the mark of the node or alias at fault."""


class _Accounting(Composer):
    """PyYAML's composer with expansion accounting in ``compose_node``."""

    def start_accounting(self, limits: YamlLimits) -> None:
        self.limits = limits
        self.depth = 0
        self.nodes = 0
        self.chars = 0
        # expanded (nodes, chars) of every anchor whose node is complete; an anchor that is
        # in self.anchors but not here is still being composed, so an alias to it recurses
        self.sizes: dict[str, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = cast(Event, cast(Any, self).peek_event())  # the parser's, mixed in
        mark = cast(Mark, event.start_mark)
        if isinstance(event, AliasEvent):
            anchor = cast(str, event.anchor)
            if anchor in self.anchors and anchor not in self.sizes:
                raise _LimitExceededError(
                    None, None, f"recursive alias *{anchor} (it refers to itself)", mark
                )
            nodes, chars = self.sizes.get(anchor, (0, 0))  # undefined: the composer says so
            self._add(nodes, chars, mark, f" (at alias *{anchor})")
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise _LimitExceededError(
                None,
                None,
                f"nested more than {self.limits.max_depth} levels deep",
                mark,
            )
        start = (self.nodes, self.chars)
        chars = len(event.value) if isinstance(event, ScalarEvent) else 0
        self._add(1, chars, mark, "")
        node = super().compose_node(parent, index)
        self.depth -= 1
        defined = event.anchor if isinstance(event, NodeEvent) else None
        if defined is not None:
            self.sizes[defined] = (self.nodes - start[0], self.chars - start[1])
        return node

    def _add(self, nodes: int, chars: int, mark: Mark, where: str) -> None:
        """Count ``nodes`` and ``chars`` more; raise at ``mark`` past a limit."""
        self.nodes += nodes
        self.chars += chars
        if self.nodes > self.limits.max_nodes:
            raise _LimitExceededError(
                None,
                None,
                f"the document expands to more than {self.limits.max_nodes} nodes{where}; "
                "anchors and aliases are expanded in full",
                mark,
            )
        if self.chars > self.limits.max_chars:
            raise _LimitExceededError(
                None,
                None,
                f"the document expands to more than {self.limits.max_chars} characters of "
                f"text{where}; anchors and aliases are expanded in full",
                mark,
            )


class _PyLoader(_Accounting, yaml.SafeLoader):
    """The pure-Python safe loader: its error messages are the ones quoted by
    tests/data/bad/expected.yaml, so it reports every syntax error."""

    def __init__(self, text: str, limits: YamlLimits) -> None:
        yaml.SafeLoader.__init__(self, text)
        self.start_accounting(limits)


# libyaml's parser when PyYAML was built with it (the wheels are), else None
_CParser: Any = getattr(yaml, "cyaml", None) and getattr(yaml.cyaml, "CParser", None)

if _CParser is not None:

    class _CLoader(_Accounting, _CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        """libyaml's parser (about ten times faster) under the same accounting composer."""

        def __init__(self, text: str, limits: YamlLimits) -> None:
            _CParser.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.start_accounting(limits)


def _compose_with(loader_class: type[_Accounting], text: str, limits: YamlLimits) -> Node | None:
    loader = loader_class(text, limits)  # type: ignore[call-arg]
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()  # type: ignore[attr-defined]


def compose(text: str, source: str, limits: YamlLimits = YAML_LIMITS) -> Node | None:
    """The node tree of one YAML document (None if it is empty), within ``limits``.

    Raises ConfigError ``source:line: invalid YAML: ...`` for a syntax error, a control
    character, a second document, or a limit crossed.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise ConfigError(
            f"{source}:1: invalid YAML: the file is {size} bytes, over the limit of "
            f"{limits.max_bytes} bytes"
        )
    try:
        if _CParser is not None:
            try:
                return _compose_with(_CLoader, text, limits)
            except _LimitExceededError:
                raise
            except yaml.YAMLError:
                pass  # a syntax error: the pure-Python parser words it (and finds it again)
        return _compose_with(_PyLoader, text, limits)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(f"{source}:{describe_error(exc)}") from None
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character
        code = char if isinstance(char, int) else ord(char)
        raise ConfigError(
            f"{source}:{line}: invalid YAML: unacceptable character #x{code:04x} ({exc.reason})"
        ) from None


def describe_error(exc: yaml.MarkedYAMLError) -> str:
    """``LINE: invalid YAML: problem (column C; context at line L)`` from a PyYAML error."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    problem = exc.problem or exc.context or "cannot parse"
    notes = [f"column {mark.column + 1}"] if mark else []
    if exc.context and exc.problem and exc.context_mark:
        start = exc.context_mark.line + 1
        if problem.startswith("but "):  # "expected a single document..., but found another"
            problem = f"{exc.context} (line {start}), {problem}"
        else:
            notes.append(f"{exc.context} at line {start}")
    if "'\\t'" in problem:
        notes.append("indent with spaces: YAML does not allow tabs")
    return f"{line}: invalid YAML: {problem}" + (f" ({'; '.join(notes)})" if notes else "")


Path_ = tuple[str | int, ...]


def format_path(path: Path_) -> str:
    """``endpoints[1].timeout`` from ``("endpoints", 1, "timeout")``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


class _Builder:
    """Plain data from a composed tree, recording the line of every path; a scalar is
    constructed once however often it is aliased."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[Path_, int] = {}
        self.constructor = yaml.SafeLoader("")  # only its constructor methods are used

    def error(self, node: Node, path: Path_, message: str) -> ConfigError:
        return ConfigError(
            f"{self.source}:{node.start_mark.line + 1}: {format_path(path)}: {message}"
        )

    def scalar(self, node: ScalarNode, path: Path_) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            # an unknown tag (``!env``, ``!!python/object``) or a value its tag refuses
            problem = (exc.problem or "cannot construct the value").split("\n")[0]
            raise self.error(node, path, f"invalid YAML value: {problem}") from None

    def build(self, node: Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            self.check_tag(node, path, "tag:yaml.org,2002:seq")
            return [self.build(v, (*path, i)) for i, v in enumerate(node.value)]
        return self.scalar(cast(ScalarNode, node), path)

    def check_tag(self, node: Node, path: Path_, plain: str) -> None:
        if node.tag != plain:  # !!set, !!omap, !custom: not configuration data
            raise self.error(node, path, f"invalid YAML value: unsupported tag {node.tag!r}")

    def mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        self.check_tag(node, path, "tag:yaml.org,2002:map")
        out: dict[str, Any] = {}
        merged: list[MappingNode] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == MERGE_TAG:
                merged.extend(self.merge_sources(value_node, path))
                continue
            self.put(out, key_node, value_node, path)
        # YAML merge keys: keys written in the mapping win, then the merged ones in order
        for source in merged:
            for key_node, value_node in source.value:
                if self.key(key_node, path) not in out:
                    self.put(out, key_node, value_node, path)
        return out

    def put(self, out: dict[str, Any], key_node: Node, value_node: Node, path: Path_) -> None:
        key = self.key(key_node, path)
        line = key_node.start_mark.line + 1
        if key in out:
            first = self.lines[(*path, key)]
            raise self.error(key_node, (*path, key), f"duplicate key (first at line {first})")
        self.lines[(*path, key)] = line
        out[key] = self.build(value_node, (*path, key))

    def merge_sources(self, value: Node, path: Path_) -> list[MappingNode]:
        if isinstance(value, MappingNode):
            return [value]
        if isinstance(value, SequenceNode) and all(isinstance(v, MappingNode) for v in value.value):
            return list(value.value)
        raise self.error(value, path, "a merge key `<<` takes a mapping or a list of mappings")

    def key(self, key_node: Node, path: Path_) -> str:
        key = self.scalar(key_node, path) if isinstance(key_node, ScalarNode) else None
        if not isinstance(key, str | int | float | bool):
            raise self.error(key_node, path, "keys must be scalars")
        return str(key)


def build_data(root: Node, source: str) -> tuple[Any, dict[Path_, int]]:
    """Plain Python data (dicts with ``str`` keys, lists, scalars) from a composed tree,
    and the line of every path (``("endpoints", 0, "url")`` -> 7).

    Duplicate keys, non-scalar keys, a bad merge key and unsupported tags are ConfigErrors
    naming the line.
    """
    builder = _Builder(source)
    data = builder.build(root, ())
    return data, builder.lines


def load(text: str, source: str, limits: YamlLimits = YAML_LIMITS) -> Any:
    """Plain data from one bounded YAML document; None for an empty one."""
    root = compose(text, source, limits)
    return None if root is None else build_data(root, source)[0]
