"""Specs read with libyaml's parser give exactly what the pure-Python parser gives: values, lines, errors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.spec import yamlsource
from reconciler.spec.yamlsource import LocatedList, LocatedMap, YamlSyntaxError, parse_yaml
from tests.helpers import REPO

pytestmark = pytest.mark.skipif(not yamlsource._LIBYAML, reason="PyYAML was built without libyaml")

SAMPLES = {
    "anchors and merge keys": "base: &base {a: 1, b: [x, y]}\none: {<<: *base, c: [z]}\ntwo: *base\n",
    "scalars": "a: 2026-11-29\nb: yes\nc: 0o17\nd: ~\ne: '1.0'\nf: |\n  two\n  lines\ng: >-\n  folded\n  text\n",
    "duplicate key": "sources:\n  - name: a\n    name: b\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "unclosed flow": "a: [1, 2\nb: 3\n",
    "tab": "a:\n\tb: 1\n",
    "undefined alias": "a: *nowhere\n",
    "refused tag": "a: !!binary aGVsbG8=\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "control character": "a: \x07\n",
    "deep nesting": "a: " + "[" * 120 + "]" * 120 + "\n",
    "a value one level too deep": "a: " + "[" * 99 + "x" + "]" * 99 + "\n",
    "a key one level too deep": "".join("  " * depth + f"k{depth}:\n" for depth in range(100)),
    "an empty collection at the deepest level": "[" * 100 + "]" * 100 + "\n",
    "a value at the deepest level": "[" * 99 + "x" + "]" * 99 + "\n",
}


def located(tree: Any) -> Any:
    """The tree with every file and line in it, for an exact comparison."""
    if isinstance(tree, LocatedMap):
        return ("map", tree.file, tree.line, sorted(tree.key_locs.items()), [(k, located(v)) for k, v in tree.items()])
    if isinstance(tree, LocatedList):
        return ("list", tree.file, tree.line, tree.item_lines, [located(v) for v in tree])
    return (type(tree).__name__, tree)


def outcome(text: str, file: str, monkeypatch: pytest.MonkeyPatch, libyaml: bool) -> Any:
    monkeypatch.setattr(yamlsource, "_LIBYAML", libyaml)
    try:
        return located(parse_yaml(text, file))
    except YamlSyntaxError as error:
        return ("error", error.problem)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_libyaml_and_pure_python_agree(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = SAMPLES[name]
    assert outcome(text, "s.yaml", monkeypatch, True) == outcome(text, "s.yaml", monkeypatch, False)


def test_every_example_spec_reads_the_same_with_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted([*REPO.glob("specs/**/*.yaml"), *REPO.glob("environments/*.yaml")])
    assert len(files) > 5
    for path in files:
        text, name = path.read_text(), str(path.relative_to(REPO))
        assert outcome(text, name, monkeypatch, True) == outcome(text, name, monkeypatch, False), name


def test_the_libyaml_loader_is_the_one_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    used: list[bool] = []
    original = yamlsource._loader_for

    def spy(file: str, *, libyaml: bool = False) -> Any:
        used.append(libyaml)
        return original(file, libyaml=libyaml)

    monkeypatch.setattr(yamlsource, "_loader_for", spy)
    parse_yaml("a: 1\n", "a.yaml")
    assert used == [True]
    with pytest.raises(YamlSyntaxError):
        parse_yaml("a: [1\n", "a.yaml")
    assert used == [True, True, False]  # a malformed file is read again, for PyYAML's own message and line


PLAIN = {
    **SAMPLES,
    "keys of every scalar type": "1: a\ntrue: b\n~: c\n1.5: d\n0x1F: e\n",
    "collections": "- a\n-\n  - b\n- {}\n- []\n- {x: [1, {y: null}]}\n",
    "empty": "",
    "comment only": "# nothing\n",
    "a lone scalar": "x\n",
    "numbers": "a: -.5\nb: +12\nc: 1_000\nd: .NaN\ne: 1:20\nf: .inf\ng: 2001-12-14t21:59:43.10-05:00\n",
    "explicit tag": "a: !!str 1\n",
    "a collection as a key": "? [a]\n: b\n",
    "a mapping as a flow key": "{[a]: 1, b: 2}\n",
    "lists of mappings of lists": "a:\n- b: 1\n  c: [2, 3]\n-\n  - d\n  - {e: f}\nz: last\n",
    "a mapping ending a list ending a mapping": "a:\n  b:\n  - c: 1\n    d:\n    - 2\nnext: 3\n",
    "value key": "a: =\n",
    "document end": "a: b\n...\n",
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_the_plain_reader_builds_what_the_full_loader_builds(name: str) -> None:
    text = PLAIN[name]

    def full() -> Any:
        try:
            return located(yamlsource.yaml.load(text, Loader=yamlsource._loader_for("s.yaml", libyaml=True)))
        except Exception as error:  # either way, the plain reader must leave it to the full loader
            return ("error", type(error).__name__)

    try:
        fast = located(yamlsource._read_plain(text, "s.yaml"))
    except yamlsource._NotPlain:
        return
    assert fast == full()


@pytest.mark.parametrize("seed", range(40))
def test_the_plain_reader_agrees_with_the_full_loader_on_random_documents(seed: int) -> None:
    """Nested mappings and lists of every scalar, dumped in block and flow styles: the same trees and lines."""
    chooser = random.Random(seed)
    scalars = [0, -7, 1.5, True, False, None, "", "yes", "no", "~", "1_000", "0x1F", "2026-11-29", "a: b", "ünï", "#x"]

    def tree(depth: int) -> Any:
        roll = chooser.random()
        if depth > 4 or roll < 0.35:
            return chooser.choice(scalars)
        if roll < 0.7:
            return {f"k{i}-{chooser.choice(scalars)}": tree(depth + 1) for i in range(chooser.randint(0, 4))}
        return [tree(depth + 1) for _ in range(chooser.randint(0, 4))]

    text = yaml.safe_dump(
        {"root": tree(0), "more": tree(0)}, default_flow_style=chooser.choice([False, None]), allow_unicode=True
    )
    full = located(yaml.load(text, Loader=yamlsource._loader_for("s.yaml", libyaml=True)))
    assert located(yamlsource._read_plain(text, "s.yaml")) == full, text


def test_the_plain_reader_reads_the_example_specs() -> None:
    for path in sorted([*REPO.glob("specs/**/*.yaml"), *REPO.glob("environments/*.yaml")]):
        text, name = path.read_text(), str(path.relative_to(REPO))
        full = located(yamlsource.yaml.load(text, Loader=yamlsource._loader_for(name, libyaml=True)))
        assert located(yamlsource._read_plain(text, name)) == full, name


def test_a_file_read_again_comes_from_the_cache_as_its_own_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = yamlsource.ParsedCache()
    parsed: list[str] = []
    original = yamlsource.parse_yaml

    def counting(text: str, file: str) -> Any:
        parsed.append(file)
        return original(text, file)

    monkeypatch.setattr(yamlsource, "parse_yaml", counting)
    text = "sources:\n  - name: a\n    url: ${URL}\n"
    trees = [cache.parse(text, "s.yaml") for _ in range(4)]
    assert parsed == ["s.yaml", "s.yaml"]  # kept from the second read on
    assert all(located(tree) == located(trees[0]) for tree in trees)
    trees[2]["sources"][0]["url"] = "filled in"
    assert cache.parse(text, "s.yaml")["sources"][0]["url"] == "${URL}"
    cache.parse(text + "# changed\n", "s.yaml")
    cache.parse(text, "t.yaml")
    assert parsed == ["s.yaml", "s.yaml", "s.yaml", "t.yaml"]


def test_the_cache_is_bounded() -> None:
    cache = yamlsource.ParsedCache(limit=40)
    for name in ("a", "b", "c"):
        for _ in range(2):
            cache.parse(f"name: {name}\nvalue: {'x' * 10}\n", f"{name}.yaml")
    assert cache.size <= 40
