"""YAML alias bombs and runaway nesting are refused while parsing, at the alias's file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.spec.yamlsource import ALIAS_BUDGET, MAX_DEPTH, YamlSyntaxError, parse_yaml
from tests.helpers import copy_example


def _bomb(levels: int, indent: str = "") -> str:
    """`levels` anchors of ten aliases each: 10**levels strings once expanded."""
    lines = [f'{indent}l0: &l0 ["lol"]']
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"{indent}l{level}: &l{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_alias_that_breaks_the_budget() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        parse_yaml(_bomb(9), "bomb.yaml")
    problem = caught.value.problem
    assert (problem.file, problem.line) == ("bomb.yaml", 5)
    assert f"alias *l3 expands the file past {ALIAS_BUDGET} nodes" in problem.message


def test_ordinary_aliases_and_merge_keys_still_work() -> None:
    tree = parse_yaml("base: &base {a: 1, b: [x, y]}\none: {<<: *base, c: [z]}\ntwo: *base\n", "ok.yaml")
    assert tree["one"] == {"a": 1, "b": ["x", "y"], "c": ["z"]}
    assert tree["two"] == {"a": 1, "b": ["x", "y"]}
    assert tree.key_locs["two"] == ("ok.yaml", 3)


def test_nesting_is_bounded_with_and_without_aliases() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        parse_yaml("a:\n  b: " + "[" * 2000 + "]" * 2000 + "\n", "deep.yaml")
    assert (caught.value.problem.line, caught.value.problem.message) == (2, f"nested deeper than {MAX_DEPTH} levels")
    half = MAX_DEPTH // 2 + 1
    nested = "[" * half + "1" + "]" * half
    with pytest.raises(YamlSyntaxError) as caught:
        parse_yaml(f"a: &a {nested}\nb: {'[' * half}*a{']' * half}\n", "alias.yaml")
    assert (caught.value.problem.file, caught.value.problem.line) == ("alias.yaml", 2)


def _validate(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--root", str(root), *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _insert_after(path: Path, anchor: str, text: str) -> int:
    """Insert `text` after the line `anchor`; the line number of the first inserted line."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(index for index, line in enumerate(lines) if line.rstrip("\n") == anchor) + 1
    path.write_text("".join([*lines[:at], text, *lines[at:]]))
    return at + 1


def test_an_alias_bomb_in_an_environment_file_is_a_spec_error(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    first = _insert_after(
        root / "environments/qa.yaml", "        host: app-db.qa.internal", "        extra:\n" + _bomb(5, " " * 10)
    )

    code, output = _validate(root, "validate")

    assert code == 1, output
    assert f"environments/qa.yaml:{first + 5}: alias *l3 expands the file past {ALIAS_BUDGET} nodes" in output


def test_an_alias_bomb_in_a_spec_file_is_a_spec_error_for_validate_and_plan(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    first = _insert_after(
        root / "specs/airbyte/sources.yaml", "      schemas: [public]", "      extra:\n" + _bomb(5, " " * 8)
    )

    for args in (("validate",), ("plan", "--env", "prod")):
        code, output = _validate(root, *args)
        assert code == 1, output
        assert f"specs/airbyte/sources.yaml:{first + 5}: alias *l3 expands the file past" in output
