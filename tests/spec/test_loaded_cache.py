"""The loader's cache: an identical load is taken from it; any change of input loads afresh; failures are not kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.registry import EXTRA_VARIABLE
from reconciler.spec import loader
from reconciler.spec.files import read_spec_tree
from reconciler.spec.loader import LOADED, load_environments
from tests.helpers import copy_example

VARIABLES = {"AIRBYTE_QA_URL": "http://qa.example", "UNUSED": "x"}


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str | None]]:
    """The loads actually made (by the environment asked for), the cache empty before and after."""
    made: list[str | None] = []
    real = loader._load_environments

    def counted(files, variables, only, systems):  # type: ignore[no-untyped-def]
        made.append(only)
        return real(files, variables, only, systems)

    monkeypatch.setattr(loader, "_load_environments", counted)
    monkeypatch.setattr(LOADED, "verify_hits", False)  # its fresh loads would be counted too
    LOADED.clear()
    yield made
    LOADED.clear()


def test_an_identical_load_is_the_kept_one(tmp_path: Path, loads: list[str | None]) -> None:
    files = read_spec_tree(copy_example(tmp_path))
    first = load_environments(files, VARIABLES, only="qa")
    again = load_environments(dict(files), dict(VARIABLES), only="qa")
    assert again["qa"] is first["qa"] and loads == ["qa"]
    again.clear()  # the caller's dict is its own
    assert load_environments(files, VARIABLES, only="qa")["qa"] is first["qa"]


@pytest.mark.parametrize("change", ["file text", "new file", "variable value", "new variable", "environment"])
def test_any_change_of_input_loads_afresh(tmp_path: Path, loads: list[str | None], change: str) -> None:
    files = read_spec_tree(copy_example(tmp_path))
    variables, only = dict(VARIABLES), "qa"
    first = load_environments(files, variables, only=only)
    if change == "file text":
        files["environments/qa.yaml"] += "\n# a comment\n"
    elif change == "new file":
        files["specs/airbyte/more.yaml"] = "sources: []\n"
    elif change == "variable value":
        variables["UNUSED"] = "y"  # unused by these specs, and still a change: the key does not guess
    elif change == "new variable":
        variables["ANOTHER"] = ""
    else:
        only = "prod"
    second = load_environments(files, variables, only=only)
    assert len(loads) == 2
    assert second[only] is not first.get(only)


def test_a_load_that_fails_is_never_kept(tmp_path: Path, loads: list[str | None]) -> None:
    files = read_spec_tree(copy_example(tmp_path))
    files["environments/qa.yaml"] += "\nunknown_section: {}\n"
    for _ in range(2):
        with pytest.raises(SpecError, match="unknown_section"):
            load_environments(files, VARIABLES, only="qa")
    assert loads == ["qa", "qa"]


def test_the_cache_is_bounded_by_count_and_by_text(
    tmp_path: Path, loads: list[str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = read_spec_tree(copy_example(tmp_path))
    monkeypatch.setattr(LOADED, "per_environment", 100)  # every load below is of qa: the other bounds alone
    monkeypatch.setattr(LOADED, "limit", 3)
    for index in range(4):
        load_environments(files, {**VARIABLES, "N": str(index)}, only="qa")
    load_environments(files, {**VARIABLES, "N": "3"}, only="qa")  # the newest: kept
    assert len(loads) == 4
    load_environments(files, {**VARIABLES, "N": "0"}, only="qa")  # the oldest: dropped
    assert len(loads) == 5

    LOADED.clear()
    size = sum(len(text) for text in files.values())
    monkeypatch.setattr(LOADED, "limit_chars", size * 2)  # two loads of these files, not three
    for index in range(3):
        load_environments(files, {**VARIABLES, "N": str(index)}, only="qa")
    load_environments(files, {**VARIABLES, "N": "2"}, only="qa")
    load_environments(files, {**VARIABLES, "N": "1"}, only="qa")
    assert len(loads) == 8
    load_environments(files, {**VARIABLES, "N": "0"}, only="qa")
    assert len(loads) == 9
    monkeypatch.setattr(LOADED, "limit_chars", size - 1)  # larger than the whole cache: never kept
    LOADED.clear()
    for _ in range(2):
        load_environments(files, {**VARIABLES, "N": "big"}, only="qa")
    assert len(loads) == 11


def test_a_kept_environment_changed_after_loading_is_caught_where_it_is_reused(
    tmp_path: Path, loads: list[str | None]
) -> None:
    files = read_spec_tree(copy_example(tmp_path))
    kept = load_environments(files, VARIABLES, only="qa")["qa"]
    assert kept.airbyte is not None
    kept.airbyte.sources[0].configuration["host"] = "changed-in-place"  # what no code after the loader may do
    LOADED.verify_hits = True  # as the test suite runs (tests/conftest.py); the fixture puts it back
    with pytest.raises(AssertionError, match=r"kept environments \['qa'\] differ from a fresh load"):
        load_environments(files, VARIABLES, only="qa")


NOTES_ENVIRONMENT = "environment: dev\nnotes:\n  store: live-notes.json\n  notes:\n    welcome: hello\n"


def test_a_load_is_not_taken_from_the_cache_once_the_registered_systems_changed(
    loads: list[str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registered systems are an input of a load too (`RECONCILER_SYSTEMS` is read from the process
    environment, not from the variables given): without the plugin its section is an unknown field again."""
    files = {"environments/dev.yaml": NOTES_ENVIRONMENT}
    monkeypatch.setenv(EXTRA_VARIABLE, "tests.fake_system")
    assert load_environments(files, {}, only="dev")["dev"].sections.keys() == {"notes"}
    monkeypatch.delenv(EXTRA_VARIABLE)
    with pytest.raises(SpecError, match=r"environments/dev\.yaml:2: notes: unknown field"):
        load_environments(files, {}, only="dev")
    monkeypatch.setenv(EXTRA_VARIABLE, "tests.fake_system")
    assert load_environments(files, {}, only="dev")["dev"].sections.keys() == {"notes"}
    assert loads == ["dev", "dev"]  # the first load, kept; the one without the plugin; then the kept one again


def test_only_the_two_latest_loads_of_an_environment_are_kept(tmp_path: Path, loads: list[str | None]) -> None:
    """A controller keeps its applied revision and the one it syncs to; older revisions go at once."""
    files = read_spec_tree(copy_example(tmp_path))

    def revision(number: int) -> dict[str, str]:
        return {**files, "environments/qa.yaml": files["environments/qa.yaml"] + f"\n# revision {number}\n"}

    load_environments(files, VARIABLES, only="prod")  # another environment's load stays
    for number in range(3):
        load_environments(revision(number), VARIABLES, only="qa")
    assert len(loads) == 4
    load_environments(revision(1), VARIABLES, only="qa")
    load_environments(revision(2), VARIABLES, only="qa")
    load_environments(files, VARIABLES, only="prod")
    assert len(loads) == 4  # kept: the two latest of qa, and prod's
    load_environments(revision(0), VARIABLES, only="qa")  # the oldest of qa went when the third was loaded
    assert len(loads) == 5
