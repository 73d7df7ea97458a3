"""Spec loading, step 1: parse YAML text into plain data that remembers file and line of every key.

Pure: takes text and a file name, never opens files. Mappings become `LocatedMap` and sequences
`LocatedList`, ordinary dict/list subclasses that also carry where each entry was written, so
later steps (merging environment overrides, schema validation) can point a user at `file:line`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import yaml

from reconciler.errors import SpecProblem

try:
    from yaml._yaml import CParser

    _LIBYAML = True
except ImportError:  # PyYAML built without libyaml: every file is read by the pure-Python parser
    _LIBYAML = False
from reconciler.spec.secrets import is_secret_ref


class LocatedMap(dict[str, Any]):
    """A YAML mapping plus the file and line (1-based) of each key and of the mapping itself."""

    __slots__ = ("file", "key_locs", "line")  # no __dict__ each: a spec of 5,000 connections holds some 50,000
    file: str
    line: int
    key_locs: dict[str, tuple[str, int]]

    def __init__(self, items: Iterable[tuple[str, Any]] = (), *, file: str = "", line: int = 0) -> None:
        super().__init__(items)
        self.file = file
        self.line = line
        self.key_locs = {}


class LocatedList(list[Any]):
    """A YAML sequence plus the line of each item."""

    __slots__ = ("file", "item_lines", "line")
    file: str
    line: int
    item_lines: list[int]

    def __init__(self, items: Iterable[Any] = (), *, file: str = "", line: int = 0) -> None:
        super().__init__(items)
        self.file = file
        self.line = line
        self.item_lines = []


class YamlSyntaxError(Exception):
    """Malformed YAML, already turned into a spec problem."""

    def __init__(self, problem: SpecProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


ALIAS_BUDGET = 10_000
"""How many nodes aliases may add to one file once expanded (a YAML "billion laughs" adds 10**9)."""
MAX_DEPTH = 100
"""How deeply one file's collections may nest, aliases expanded."""
NOT_JSON_TAGS = ("binary", "set", "omap", "pairs")
"""YAML types with no JSON counterpart: refused, since every spec value ends up in a JSON API call."""


def _expanded(node: yaml.Node, memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(nodes, depth) of `node` with every alias in it written out; shared subtrees are counted once each."""
    known = memo.get(id(node))
    if known is not None:
        return known
    size, depth = 1, 0
    if isinstance(node, yaml.CollectionNode):
        children: list[yaml.Node] = []
        for child in node.value:
            children.extend(child if isinstance(child, tuple) else (child,))
        for child in children:
            child_size, child_depth = _expanded(child, memo)
            size += child_size
            depth = max(depth, child_depth + 1)
    memo[id(node)] = (size, depth)
    return size, depth


def one_line(label: str) -> str:
    """A field label as it is printed: a key's line breaks and control characters written as escapes."""
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in label)


def _loader_for(file: str, *, libyaml: bool = False) -> type[yaml.SafeLoader]:
    """A SafeLoader for `file` with the located constructors and the budget; `libyaml` reads with libyaml's parser."""

    class _Loader(yaml.SafeLoader):
        """Composes with a budget: aliases may add `ALIAS_BUDGET` nodes, nesting may reach `MAX_DEPTH`."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.alias_budget = ALIAS_BUDGET
            self.depth = 0
            self.sizes: dict[int, tuple[int, int]] = {}

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, yaml.AliasEvent):
                node = super().compose_node(parent, index)
                if node is not None:
                    size, depth = _expanded(node, self.sizes)
                    self.alias_budget -= size
                    if self.alias_budget < 0:
                        raise YamlSyntaxError(
                            SpecProblem(
                                file,
                                line,
                                "",
                                f"alias *{event.anchor} expands the file past {ALIAS_BUDGET} nodes; "
                                "write the values out or use fewer aliases",
                            )
                        )
                    self._check_depth(self.depth + 1 + depth, line)
                return node
            self.depth += 1
            self._check_depth(self.depth, line)
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def _check_depth(self, depth: int, line: int | None) -> None:
            if depth > MAX_DEPTH:
                raise YamlSyntaxError(SpecProblem(file, line, "", f"nested deeper than {MAX_DEPTH} levels"))

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LocatedMap:
        result = LocatedMap(file=file, line=node.start_mark.line + 1)
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                raise YamlSyntaxError(
                    SpecProblem(file, key_node.start_mark.line + 1, one_line(key), "duplicate key in the same mapping")
                )
            result[key] = loader.construct_object(value_node, deep=True)
            result.key_locs[key] = (file, key_node.start_mark.line + 1)
        return result

    def construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> LocatedList:
        result = LocatedList(file=file, line=node.start_mark.line + 1)
        for child in node.value:
            result.append(loader.construct_object(child, deep=True))
            result.item_lines.append(child.start_mark.line + 1)
        return result

    def construct_as_written(loader: yaml.SafeLoader, node: yaml.Node) -> str:
        return str(node.value)  # a date or a time stays the text the API is sent, not a datetime

    def refuse(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        raise YamlSyntaxError(
            SpecProblem(file, node.start_mark.line + 1, "", f"!!{node.tag.rsplit(':', 1)[-1]} has no JSON form")
        )

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)
    _Loader.add_constructor("tag:yaml.org,2002:timestamp", construct_as_written)
    for tag in NOT_JSON_TAGS:
        _Loader.add_constructor(f"tag:yaml.org,2002:{tag}", refuse)
    if not libyaml:
        return _Loader

    class _LibyamlLoader(_Loader):
        """The same loader fed by libyaml's scanner and parser: the same events and marks, several times faster.

        Composing stays in Python, so the budget above sees every event; the resolver and the
        constructors are the ones above.
        """

        def __init__(self, stream: str) -> None:
            super().__init__("")  # the pure-Python reader never sees the text
            self.events = CParser(stream)
            # bound straight to libyaml's methods: the composer calls them once or more per event
            self.check_event = self.events.check_event  # type: ignore[method-assign]
            self.peek_event = self.events.peek_event  # type: ignore[method-assign]
            self.get_event = self.events.get_event  # type: ignore[method-assign]

        def dispose(self) -> None:
            self.events.dispose()
            super().dispose()

    return _LibyamlLoader


class _NotPlain(Exception):
    """The fast reader met something it leaves to the full loader (an anchor, a tag, a merge key, ...)."""

    def __init__(self, what: str, *, malformed: bool = False) -> None:
        super().__init__(what)
        self.malformed = malformed


_RESOLVERS = yaml.SafeLoader.yaml_implicit_resolvers
_STR_TAG = "tag:yaml.org,2002:str"
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp"))


def _plain_scalar(value: str, loader: yaml.SafeLoader) -> Any:
    """A plain scalar as the SafeLoader's resolver and constructors (and `construct_as_written`) read it."""
    tag = next((tag for tag, pattern in _RESOLVERS.get(value[0] if value else "", ()) if pattern.match(value)), None)
    if tag is None:
        return value
    if tag not in _SCALAR_TAGS:
        raise _NotPlain(tag)
    if tag in (_STR_TAG, "tag:yaml.org,2002:timestamp"):
        return value
    return loader.yaml_constructors[tag](loader, yaml.ScalarNode(tag, value))


def _read_plain(text: str, file: str) -> Any:
    """One document of plain mappings, sequences and scalars, built straight from libyaml's events.

    The same trees, keys' lines and values as the full loader, several times faster and with no
    node graph in between. Raises `_NotPlain` at anything else (anchors and aliases, explicit
    tags, merge keys, duplicate or non-scalar keys, deep nesting, several documents, malformed
    text): the full loader then reads the file and gives its own answer or message. Scalars are
    resolved and built by the libyaml loader's resolver and constructors.
    """
    loader = _loader_for(file, libyaml=True)("")
    events = CParser(text)
    get_event: Callable[[], Any] = events.get_event  # libyaml's events, typed loosely: every field is read as written
    # the event classes and the resolvers' first characters as locals: the loop below runs once per event
    scalar_event, mapping_start, sequence_start = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
    mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    resolved_first = _RESOLVERS
    new_dict, new_list = dict.__new__, list.__new__
    resolved: dict[str, Any] = {}  # plain scalars already resolved in this file (`5432`, `true`): immutable values
    try:
        # the innermost open collection, as locals: `target`, and for a list its `item_lines`, for a mapping its
        # `key_locs` and the key waiting for its value (`pending`, None between entries) with that key's line;
        # the collections around it wait on `stack`, each as these four
        stack: list[tuple[Any, Any, Any, int]] = []
        target: Any = None
        lines: Any = None  # the target's item_lines (a list) or key_locs (a mapping); None at the top
        pending: Any = None
        pending_line = 0
        document: Any = None
        documents = 0
        while True:
            event: Any = get_event()
            kind = type(event)
            if kind is scalar_event:
                if event.anchor is not None or event.tag is not None:
                    raise _NotPlain("tag or anchor")
                value: Any = event.value
                if event.implicit[0] and (not value or value[0] in resolved_first):
                    if value in resolved:
                        value = resolved[value]
                    else:
                        value = resolved[value] = _plain_scalar(value, loader)
                if type(lines) is dict:
                    if pending is None:  # a key (a merge key, <<, never gets here: its tag is not a scalar one)
                        pending = value if isinstance(value, str) else str(value)
                        if pending in target:
                            raise _NotPlain("duplicate key")
                        pending_line = event.start_mark.line + 1
                    else:
                        target[pending] = value
                        lines[pending] = (file, pending_line)
                        pending = None
                elif lines is not None:
                    target.append(value)
                    lines.append(event.start_mark.line + 1)
                else:
                    document = value
                continue
            if kind is mapping_start or kind is sequence_start:
                # the full loader counts every node, a scalar too: a collection at the deepest level it allows
                # (`MAX_DEPTH`, its `len(stack)` one less) is left to it, which knows whether anything is inside
                if event.anchor is not None or event.tag is not None or len(stack) >= MAX_DEPTH - 1:
                    raise _NotPlain("tag, anchor or depth")
                if type(lines) is dict and pending is None:
                    raise _NotPlain("key")
                stack.append((target, lines, pending, pending_line))
                # built without their Python `__init__` (a call frame each, some 60,000 at 5,000 connections)
                if kind is mapping_start:
                    target = new_dict(LocatedMap)
                    lines = target.key_locs = {}
                else:
                    target = new_list(LocatedList)
                    lines = target.item_lines = []
                target.file = file
                target.line = event.start_mark.line + 1
                pending = None
                continue
            if kind is mapping_end or kind is sequence_end:
                value = target
                target, lines, pending, pending_line = stack.pop()
                if type(lines) is dict:
                    target[pending] = value
                    lines[pending] = (file, pending_line)
                    pending = None
                elif lines is not None:
                    target.append(value)
                    lines.append(value.line)
                else:
                    document = value
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _NotPlain("several documents")
            elif kind is yaml.StreamEndEvent:
                return document
            elif kind is not yaml.StreamStartEvent and kind is not yaml.DocumentEndEvent:
                raise _NotPlain(kind.__name__)
    except yaml.YAMLError as exc:
        raise _NotPlain("malformed", malformed=True) from exc
    finally:
        events.dispose()
        loader.dispose()


def parse_yaml(text: str, file: str) -> Any:
    """Parse one YAML document; malformed input raises `YamlSyntaxError` naming file and line."""
    if _LIBYAML:
        try:
            return _read_plain(text, file)
        except _NotPlain as unusual:
            malformed = unusual.malformed
        if not malformed:
            try:
                return yaml.load(text, Loader=_loader_for(file, libyaml=True))
            except YamlSyntaxError:
                raise
            except yaml.YAMLError:
                pass  # malformed: read again below, so the message and line are PyYAML's own, as always
    try:
        return yaml.load(text, Loader=_loader_for(file))
    except YamlSyntaxError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "malformed YAML"
        raise YamlSyntaxError(SpecProblem(file, line, "", f"invalid YAML: {message}")) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(SpecProblem(file, None, "", f"invalid YAML: {exc}")) from exc


PARSED_CACHE_CHARS = 16 * 1024 * 1024
"""How much spec text the cache of parsed files may stand for, least recently used dropped first."""


def copy_tree(tree: Any) -> Any:
    """A copy of a parsed tree: new mappings and sequences with the same locations, scalars shared."""
    kind = type(tree)
    if kind is LocatedMap:
        mapping = LocatedMap(file=tree.file, line=tree.line)
        for key, value in tree.items():
            mapping[key] = copy_tree(value) if type(value) is LocatedMap or type(value) is LocatedList else value
        mapping.key_locs = dict(tree.key_locs)
        return mapping
    if kind is LocatedList:
        sequence = LocatedList(
            [copy_tree(item) if type(item) is LocatedMap or type(item) is LocatedList else item for item in tree],
            file=tree.file,
            line=tree.line,
        )
        sequence.item_lines = list(tree.item_lines)
        return sequence
    return tree


class ParsedCache:
    """Parsed spec files keyed by file name and the sha256 of their text: a file that did not change is not re-parsed.

    For the controller, which plans again every few minutes in one process. A file is kept from
    the second time its text is read (so a one-shot command pays nothing: no copy, no second
    tree); each later call gets its own copy of the kept tree (later steps fill in `${VAR}`s in
    place) with every location as first parsed. Only files that parse are kept; a malformed one
    is read, and reported, every time.
    """

    def __init__(self, limit: int = PARSED_CACHE_CHARS) -> None:
        self.limit = limit
        self.size = 0
        self._seen: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._trees: OrderedDict[tuple[str, bytes], tuple[Any, int]] = OrderedDict()

    def parse(self, text: str, file: str) -> Any:
        """`parse_yaml(text, file)`, from the cache when the same file held the same text before."""
        key = (file, hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
        kept = self._trees.get(key)
        if kept is not None:
            self._trees.move_to_end(key)
            return copy_tree(kept[0])
        tree = parse_yaml(text, file)
        if key not in self._seen:
            self._seen[key] = None
            if len(self._seen) > 4096:
                self._seen.popitem(last=False)
            return tree
        if len(text) <= self.limit:
            self._trees[key] = (tree, len(text))
            self.size += len(text)
            while self.size > self.limit:
                _, (_, size) = self._trees.popitem(last=False)
                self.size -= size
            return copy_tree(tree)
        return tree

    def clear(self) -> None:
        self._seen.clear()
        self._trees.clear()
        self.size = 0


PARSED = ParsedCache()
"""The process's cache of parsed spec files (`spec.loader.parse_all` reads through it)."""


def locate(tree: Any, path: Sequence[str | int]) -> tuple[str, int | None]:
    """The file and line of the deepest entry of `path` that the tree still knows about."""
    file = getattr(tree, "file", "")
    line: int | None = getattr(tree, "line", None) or None
    node = tree
    for step in path:
        if isinstance(node, LocatedMap) and isinstance(step, str) and step in node:
            file, line = node.key_locs.get(step, (node.file or file, line))
            node = node[step]
        elif isinstance(node, LocatedList) and isinstance(step, int) and 0 <= step < len(node):
            file = node.file or file
            line = node.item_lines[step] if step < len(node.item_lines) else line
            node = node[step]
        else:
            break
    return file, line


def deep_merge(base: Any, override: Any) -> Any:
    """Overlay `override` on `base`: mappings merge key by key, anything else is replaced.

    A secret reference (`{secretRef: ...}`) on either side is replaced whole, never merged: an
    environment moving a secret from `env` to `file` means the file only. Locations travel with
    the values, so a merged tree still points each key at the file that supplied it (the
    environment file for an override, the shared spec otherwise).
    """
    if (
        isinstance(base, Mapping)
        and isinstance(override, Mapping)
        and not is_secret_ref(base)
        and not is_secret_ref(override)
    ):
        merged = LocatedMap(
            file=getattr(base, "file", ""),
            line=getattr(base, "line", 0),
        )
        merged.key_locs = dict(getattr(base, "key_locs", {}))
        for key, value in base.items():
            merged[key] = value
        override_locs = getattr(override, "key_locs", {})
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
            if key in override_locs and merged[key] is value:
                merged.key_locs[key] = override_locs[key]
        if not merged.file:
            merged.file = getattr(override, "file", "")
        return merged
    return override
