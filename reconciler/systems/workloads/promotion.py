"""Promotion, pure: image pins written into an environment file's text, every byte around them kept.

`promote` (commands.py) calls `rewrite_image_pins` on the target file's exact text, then
`check_promoted` on the file the loader read back. The text is composed into YAML nodes that
know their offsets (`spec.editing`), and only the spans of the promoted pins change: a value
replaced, a key renamed, a `digest` pair added or dropped where the source pins one field and
the target the other. Comments, quoting, flow or block layout (multi-line flow mappings too),
indentation and CRLF line endings stay as they are, so the pull request shows the pins that
moved and nothing else. Tags are always written quoted (`1.10` must not become a float). A pin
the text cannot change by itself is refused with the reason, the file untouched: an anchor or
alias on the way to it (one edit would move two components), a merge key, a `${VAR}` (its value
comes from the environment at load time), a block scalar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.errors import PermanentError
from reconciler.spec.editing import Splice, compose_yaml, line_break, splice
from reconciler.spec.loader import Environment
from reconciler.systems.workloads.loading import WorkloadsSelection
from reconciler.systems.workloads.rules import SYSTEM
from reconciler.systems.workloads.spec import ImageVersion

FIELDS = ("tag", "digest")


class PromotionRefused(PermanentError):
    """The target file cannot take the promoted pins by a change of those pins alone; it is left untouched."""


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _pairs(node: Any) -> list[tuple[Any, Any]]:
    return list(node.value) if _is_mapping(node) else []


def _is_mapping(node: Any) -> bool:
    from ruamel.yaml.nodes import MappingNode

    return isinstance(node, MappingNode)


def _is_scalar(node: Any) -> bool:
    from ruamel.yaml.nodes import ScalarNode

    return isinstance(node, ScalarNode)


def _key_name(key: Any) -> str | None:
    return str(key.value) if _is_scalar(key) else None


def _child(node: Any, name: str, file: str, where: str) -> Any:
    """The value under `name` of a mapping node, which must be written there plainly (no anchor, alias or merge)."""
    if not _is_mapping(node):
        raise PromotionRefused(f"{file} has no {where} mapping to promote into")
    for key, _value in _pairs(node):
        if _key_name(key) == "<<":
            raise PromotionRefused(
                f"{file}:{_line(key)}: a merge key (<<) where {where} is looked up; write the pins out to promote"
            )
    found = [value for key, value in _pairs(node) if _key_name(key) == name]
    if not found:
        raise PromotionRefused(f"{file} has no {where} section to promote into")
    value = found[0]
    if getattr(value, "anchor", None) is not None:
        raise PromotionRefused(
            f"{file}:{_line(value)}: {where} carries the anchor &{value.anchor} (or is an alias of it): an edit there "
            "would change every place that uses it; write it out without anchors and aliases to promote"
        )
    return value


def _refuse_shared(entry: Any, file: str, field: str) -> None:
    """Refuse an entry with an anchor, an alias or a merge key anywhere in it: one edit would move other pins."""
    seen: set[int] = set()
    stack = [entry]
    while stack:
        node = stack.pop()
        if id(node) in seen or getattr(node, "anchor", None) is not None:
            anchor = getattr(node, "anchor", None)
            named = f"&{anchor}" if anchor is not None else "an alias"
            raise PromotionRefused(
                f"{file}:{_line(node)}: {field} uses {named}: an anchor or alias on a pin would move every pin that "
                "shares it; write this pin out in full (no &anchor, *alias or <<) to promote it"
            )
        seen.add(id(node))
        if _is_mapping(node):
            for key, value in node.value:
                if _key_name(key) == "<<":
                    raise PromotionRefused(
                        f"{file}:{_line(key)}: {field} uses a merge key (<<); write this pin out in full to promote it"
                    )
                stack += [key, value]
        elif isinstance(node.value, list):
            stack += node.value


def _quoted(value: str, like: Any | None) -> str:
    """`value` in the quotes the old scalar used, double quotes when it had none (a tag is never written bare)."""
    quote = "'" if like is not None and like.style == "'" else '"'
    return f"{quote}{value}{quote}"


def _replaceable(node: Any, file: str, field: str) -> None:
    if not _is_scalar(node):
        raise PromotionRefused(f"{file}:{_line(node)}: {field} is not a single value")
    if node.style in ("|", ">"):
        raise PromotionRefused(f"{file}:{_line(node)}: {field} is a block scalar; write it on one line to promote")
    if "${" in str(node.value):
        raise PromotionRefused(
            f"{file}:{_line(node)}: {field} is {node.value!r}: its value comes from a variable when the file is "
            "loaded, and promote would have to drop the variable; change it by hand, or pin the version there"
        )


def _line_end(text: str, at: int, file: str, field: str, node: Any) -> int:
    """The offset just past the line break that ends the line holding `at` (the text's end on its last line);
    only blanks or a comment may stand between `at` and it."""
    end = at
    while end < len(text) and text[end] not in "\r\n":
        end += 1
    rest = text[at:end].strip(" \t")
    if rest and not rest.startswith("#"):
        raise PromotionRefused(f"{file}:{_line(node)}: {field} shares its line with {rest!r}; put it on its own line")
    if text.startswith("\r\n", end):
        return end + 2
    return end + 1 if end < len(text) else end


def _block_pair_span(text: str, key: Any, value: Any, file: str, field: str) -> tuple[int, int]:
    """The whole lines of a block mapping pair (its comment included)."""
    start = int(key.start_mark.index) - int(key.start_mark.column)
    if text[start : key.start_mark.index].strip(" \t"):
        raise PromotionRefused(f"{file}:{_line(key)}: {field} does not start its own line")
    return start, _line_end(text, int(value.end_mark.index), file, field, value)


def _pin_splices(text: str, file: str, component: str, entry: Any, version: ImageVersion, brk: str) -> list[Splice]:
    where = f"workloads.images.{component}"
    if not _is_mapping(entry):
        raise PromotionRefused(f"{file}:{_line(entry)}: {where} is not a mapping of tag and digest")
    pairs = _pairs(entry)
    names = [_key_name(key) for key, _ in pairs]
    if any(name not in FIELDS for name in names) or len(set(names)) != len(names):
        raise PromotionRefused(f"{file}:{_line(entry)}: {where} holds more than a tag and a digest")
    present = {str(name): pair for name, pair in zip(names, pairs, strict=True)}
    wanted = {name: value for name, value in (("tag", version.tag), ("digest", version.digest)) if value is not None}
    for name, (_, value) in present.items():
        _replaceable(value, file, f"{where}.{name}")
    splices = [
        Splice(value.start_mark.index, value.end_mark.index, _quoted(wanted[name], value))
        for name, (_, value) in present.items()
        if name in wanted
    ]
    added = [name for name in wanted if name not in present]
    dropped = [name for name in present if name not in wanted]
    if added and dropped:  # the target pins the one field the source does not, and the other way round
        key, value = present[dropped.pop()]
        name = added.pop()
        splices += [
            Splice(key.start_mark.index, key.end_mark.index, name),
            Splice(value.start_mark.index, value.end_mark.index, _quoted(wanted[name], value)),
        ]
    flow = bool(entry.flow_style)
    for name in added:
        last_key, last = pairs[-1]
        like = present.get("tag", (None, None))[1]
        written = f"{name}: {_quoted(wanted[name], like)}"
        if flow:
            splices.append(Splice(last.end_mark.index, last.end_mark.index, f", {written}"))
            continue
        _block_pair_span(text, last_key, last, file, f"{where}.{_key_name(last_key)}")
        at = _line_end(text, int(last.end_mark.index), file, where, last)
        indent = " " * int(pairs[0][0].start_mark.column)
        line = f"{indent}{written}"
        ends_with_break = at > 0 and text[at - 1] in "\r\n"
        splices.append(Splice(at, at, f"{line}{brk}" if ends_with_break else f"{brk}{line}"))
    for name in dropped:
        index = names.index(name)
        key, value = pairs[index]
        if not flow:
            start, end = _block_pair_span(text, key, value, file, f"{where}.{name}")
            splices.append(Splice(start, end, ""))
        elif index < len(pairs) - 1:
            splices.append(Splice(key.start_mark.index, pairs[index + 1][0].start_mark.index, ""))
        else:
            splices.append(Splice(pairs[index - 1][1].end_mark.index, value.end_mark.index, ""))
    return splices


def rewrite_image_pins(text: str, file: str, pins: Mapping[str, ImageVersion]) -> str:
    """Set `workloads.images.<component>` to each pin, changing only those pins' text (see the module docstring)."""
    if not pins:
        return text
    root = compose_yaml(text, file)
    images = _child(_child(root, "workloads", file, "workloads"), "images", file, "workloads.images")
    brk = line_break(text)
    splices: list[Splice] = []
    entries = {_key_name(key): value for key, value in _pairs(images)}
    for component, version in pins.items():
        entry = entries.get(component)
        if entry is None:
            raise PromotionRefused(
                f"{file}: {component} is not pinned there (workloads.images.{component}); add it by hand once, "
                "then promote"
            )
        _refuse_shared(entry, file, f"workloads.images.{component}")
        splices += _pin_splices(text, file, component, entry, version, brk)
    return splice(text, splices)


def pins_of(env: Environment) -> dict[str, ImageVersion]:
    selection = env.section(SYSTEM, WorkloadsSelection)
    return dict(selection.images) if selection is not None else {}


def check_promoted(before: Environment, after: Environment, pins: Mapping[str, ImageVersion]) -> None:
    """Refuse unless `after` (the edited file, read back by the loader) differs from `before` in exactly the
    promoted pins, each now exactly the source's."""
    expected = {**pins_of(before), **pins}
    found = pins_of(after)
    wrong = sorted(
        name
        for name in set(expected) | set(found)
        if expected.get(name) != found.get(name)  # a pin moved that was not promoted, or not to the source's value
    )
    if wrong:
        shown = "; ".join(
            f"{name}: {found[name].label if name in found else 'missing'} (expected "
            f"{expected[name].label if name in expected else 'no pin'})"
            for name in wrong
        )
        raise PromotionRefused(f"{after.file}: the edit would change the wrong pins ({shown}); the file is untouched")
    if _without_pins(before) != _without_pins(after):
        raise PromotionRefused(f"{after.file}: the edit would change more than the image pins; the file is untouched")


def _without_pins(env: Environment) -> dict[str, Any]:
    dumped = env.settings.model_dump()
    if isinstance(dumped.get("workloads"), dict):
        dumped["workloads"]["images"] = None
    return dumped
