"""Property: whatever is written in the spec and environment files, `validate` and `plan` end in exit 0 or
`Error:` with `file:line` problems (exit 1): never a traceback, a hang, a secret in the output, or (for
`validate`) a network call.

The files start as the worked example; each case mutates one to three of them: a whole file replaced by
generated YAML or raw text, a value deep inside replaced or added (wrong types, unicode names, unknown keys,
inline secrets, bad cron), an alias bomb, deep nesting.
"""

from __future__ import annotations

import re
import socket
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from tests.helpers import REPO, copy_example

FILES = sorted(
    path.relative_to(REPO).as_posix()
    for top in ("specs", "environments")
    for path in (REPO / top).rglob("*.yaml")
    if "/charts/" not in path.as_posix()
)
"""Every spec file of the example but the charts (one dashboard folder stands for the rest)."""

SECRET = "s3cr3t-VALUE-\u2620"
"""Written inline as a connector's `client_secret`; must never be printed."""

SECRET_VARIABLES = {
    name: "from-the-environment"
    for name in re.findall(r"env: ([A-Z_0-9]+)", "".join((REPO / f).read_text() for f in FILES))
}
"""The example's secret references, set, so `plan` gets as far as the network."""

KEYS = [
    "name", "type", "configuration", "source", "destination", "schedule", "cron", "streams", "syncMode",
    "secretRef", "env", "file", "kubernetes", "password", "api_key", "environment", "airbyte", "sources",
    "destinations", "connections", "url", "auth", "clientId", "clientSecret", "workloads", "images", "tag",
    "superset", "roles", "dashboards", "databases", "uuid", "state", "path", "prune", "components", "<<",
]  # fmt: skip

LOCATED = re.compile(r"^  (specs|environments)/\S+\.ya?ml:\d+: ")

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["app-postgres", "lake", "qa", "prod", "café-ü", "名前", "", " ", "-x", "a" * 300]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | names
    | st.sampled_from(["0 0 2 * * ?", "0 2 * * *", "61 * * * * ?", "manual", "${NOPE}", "${X:-y}", "**********"])
)
keys = st.sampled_from(KEYS) | names
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=16
)
raw_text = st.lists(
    st.sampled_from([*"ab:-[]{}&*!|>'\"#%@ \n\t\\é", "  ", "- ", ": ", "*a", "&a ", "!!set ", "!!binary "]), max_size=60
).map("".join)


@dataclass(frozen=True)
class Mutation:
    """One change to one file of the example."""

    file: str
    kind: str
    steps: tuple[int, ...] = ()
    value: Any = None

    def apply(self, text: str) -> str:
        if self.kind == "replace":
            return str(yaml.dump(self.value, Dumper=yaml.CSafeDumper, allow_unicode=True))
        if self.kind == "raw":
            return str(self.value)
        if self.kind == "bomb":
            levels, width = self.value
            lines = ['x-bomb:\n  l0: &l0 ["lol"]\n']
            for level in range(1, levels + 1):
                lines.append(f"  l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]\n")
            return text + "".join(lines)
        if self.kind == "secret":  # inline, in the n-th configuration of the file
            parts = re.split(r"(\n *configuration:\n)", text)
            at = 1 + 2 * (self.value % max(1, len(parts) // 2))
            if at >= len(parts):
                return text
            indent = parts[at][1:].split("c")[0] + "  "
            return "".join([*parts[: at + 1], f"{indent}client_secret: {SECRET}\n", *parts[at + 1 :]])
        if self.kind == "deep":
            return text + "x-deep: " + "[" * self.value + "]" * self.value + "\n"
        try:
            tree = yaml.load(text, Loader=yaml.CSafeLoader)
        except (yaml.YAMLError, RecursionError):  # an earlier change broke the file: nothing to walk
            return text
        changed = _set_deep(tree, self.steps, self.value)
        return str(yaml.dump(changed, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False))


def _set_deep(tree: Any, steps: tuple[int, ...], value: Any) -> Any:
    """Walk `tree` choosing children by `steps` (modulo their count) and put `value` where the walk stops."""
    if not steps or not isinstance(tree, dict | list) or not tree:
        if isinstance(tree, dict) and isinstance(value, dict):
            return {**tree, **value}  # add keys (unknown ones, inline secrets, ...)
        return value
    if isinstance(tree, dict):
        key = list(tree)[steps[0] % len(tree)]
        return {**tree, key: _set_deep(tree[key], steps[1:], value)}
    index = steps[0] % len(tree)
    return [*tree[:index], _set_deep(tree[index], steps[1:], value), *tree[index + 1 :]]


special_values = st.sampled_from(
    [
        {"password": "inline"},
        {"configuration": {"api_key": "inline"}},
        {"secretRef": {"env": "A", "file": "b"}},
        {"secretRef": "inline"},
        {"cron": "0 2 * * *"},
        {"schedule": {"cron": "* * * * * * * *"}},
        {"source": "nowhere"},
        {"unknownKey": 1},
        [],
        {},
        None,
    ]
)
files = st.sampled_from(FILES)
mutations = st.one_of(
    st.builds(Mutation, files, st.just("replace"), value=values),
    st.builds(Mutation, files, st.just("raw"), value=raw_text),
    st.builds(
        Mutation,
        files,
        st.just("set"),
        steps=st.lists(st.integers(0, 40), max_size=6).map(tuple),
        value=special_values | values,
    ),
    st.builds(Mutation, files, st.just("secret"), value=st.integers(0, 10)),
    st.builds(Mutation, files, st.just("bomb"), value=st.tuples(st.integers(1, 9), st.integers(1, 10))),
    st.builds(Mutation, files, st.just("deep"), value=st.integers(20, 3000)),
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example(tmp_path_factory.mktemp("properties"))


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every connection and name lookup is refused, and recorded."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[1:] or args)
        raise ConnectionRefusedError(111, "refused by the test")

    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise socket.gaierror(socket.EAI_NONAME, "lookups refused by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    yield attempts


def _run(root: Path, changes: list[Mutation], *args: str) -> Result:
    originals = {change.file: (root / change.file).read_text() for change in changes}
    try:
        for change in changes:
            path = root / change.file
            path.write_text(change.apply(path.read_text()), encoding="utf-8")
        return CliRunner().invoke(main, ["--root", str(root), *args], env=SECRET_VARIABLES)
    finally:
        for file, text in originals.items():
            (root / file).write_text(text)


def _check(result: Result) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        pytest.fail("".join(traceback.format_exception(*result.exc_info)))
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    assert SECRET not in result.output
    if result.exit_code == 1:
        assert result.output.startswith("Error: "), result.output
        first, *problems = result.output.splitlines()
        if "in the specs" in first:
            unlocated = [line for line in problems if not LOCATED.match(line)]
            assert not unlocated, f"problems without file:line: {unlocated}\n{result.output}"


example_settings = settings(
    max_examples=60,
    deadline=timedelta(seconds=30),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.timeout(120)
@example_settings
@given(changes=st.lists(mutations, min_size=1, max_size=3))
@example(changes=[Mutation("specs/workloads.yaml", "raw", value="-}")])
@example(changes=[Mutation("specs/workloads.yaml", "raw", value='"a\\u2028": 1\n"a\\u2028": 2\n')])
@example(changes=[Mutation("specs/airbyte/sources.yaml", "set", value={"forged\n  specs/x.yaml:1: \u2028": 1})])
@example(changes=[Mutation("specs/superset/roles.yaml", "replace", value="0 0 2 * * ?")])
@example(changes=[Mutation("specs/superset/datasets/warehouse/sales.yaml", "set", (5,), {"password": "inline"})])
@example(changes=[Mutation("environments/qa.yaml", "bomb", value=(9, 10))])
@example(changes=[Mutation("specs/airbyte/sources.yaml", "deep", value=3000)])
@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_validate_ends_in_valid_or_located_errors_offline(
    root: Path, network: list[Any], changes: list[Mutation]
) -> None:
    result = _run(root, changes, "validate")
    _check(result)
    assert network == [], f"validate tried the network: {network}"


@pytest.mark.timeout(120)
@settings(example_settings, max_examples=20)
@given(
    changes=st.lists(mutations, min_size=1, max_size=2),
    env=st.sampled_from(["qa", "prod"]),
    system=st.sampled_from(["", "airbyte", "superset"]),
)
@example(changes=[Mutation("environments/qa.yaml", "set", (1,), "ünïcode ☠")], env="qa", system="airbyte")
@example(changes=[Mutation("environments/prod.yaml", "set", (1,), "ünïcode ☠")], env="prod", system="superset")
def test_plan_ends_in_a_plan_or_an_error_when_the_network_refuses(
    root: Path, network: list[Any], changes: list[Mutation], env: str, system: str
) -> None:
    _check(_run(root, changes, "plan", "--env", env, *(("--system", system) if system else ())))
