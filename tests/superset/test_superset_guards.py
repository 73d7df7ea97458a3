"""What a Superset plan refuses, with plain data: built-in roles, the signed-in user's own access, a shrunken
replication source, dependents a delete would break; and `roles.yaml` naming a built-in role."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import ALLOW_FLAGS, main
from reconciler.core.plan import Override
from reconciler.systems.superset.rules.guards import (
    SECURITY_API,
    LiveChart,
    SourceYield,
    builtin_role,
    chart_dependents,
    dataset_dependents,
    empty_source,
    lost_security_access,
    shrunken_source,
)
from reconciler.systems.superset.rules.roles import LiveDataset
from tests.helpers import copy_example


def test_every_allow_flag_lifts_one_override() -> None:
    assert set(ALLOW_FLAGS) == {override.value for override in Override}


@pytest.mark.parametrize("name", ["Admin", "admin", " Public", "GAMMA", "Alpha", "sql_lab", "SQL_LAB "])
def test_built_in_roles_are_recognised_in_any_case_and_spacing(name: str) -> None:
    assert builtin_role(name) is not None


@pytest.mark.parametrize("name", ["analyst", "Admins", "sql-lab", "Public viewers", ""])
def test_other_roles_are_not_built_in(name: str) -> None:
    assert builtin_role(name) is None


ADMIN = [*SECURITY_API, ("can_read", "Dashboard")]


def test_emptying_the_users_role_loses_the_security_api() -> None:
    lost = lost_security_access({"Admin": ADMIN}, {"Admin": [("can_read", "Dashboard")]})
    assert lost == [f"{permission} on {view}" for permission, view in SECURITY_API]


def test_a_deleted_role_loses_what_only_it_gave_and_another_role_keeps_the_rest() -> None:
    mine = {"Admin": ADMIN, "role-admins": [("can_get", "Role"), ("can_post", "Role")]}
    lost = lost_security_access(mine, {"Admin": None})
    assert "can_get on Role" not in lost and "can_post on Role" not in lost
    assert "can_delete on Role" in lost and "can_get on PermissionViewMenu" in lost


def test_changing_roles_the_user_lacks_or_keeping_the_api_loses_nothing() -> None:
    assert lost_security_access({"Admin": ADMIN}, {"analyst": None, "Public": []}) == []
    assert lost_security_access({"Admin": ADMIN}, {"Admin": ADMIN[:-1]}) == []
    assert lost_security_access({"Gamma": [("can_read", "Dashboard")]}, {"Gamma": []}) == []  # had none to lose


def test_a_source_yielding_nothing_is_refused_and_says_whether_the_selector_chose_none() -> None:
    typo = empty_source(SourceYield("prod", 3, 0), 3, "qa")
    assert typo is not None and "lists 3; superset.replicate.dashboards chose none" in typo
    assert "qa holds 3 dashboard(s) replicated from it" in typo
    emptied = empty_source(SourceYield("prod", 0, 0), 0, "qa")
    assert emptied is not None and "(it has none)" in emptied and "holds" not in emptied
    assert empty_source(SourceYield("prod", 3, 1), 3, "qa") is None


@pytest.mark.parametrize(
    ("held", "gone", "refused"),
    [(10, 6, True), (10, 5, False), (3, 2, True), (2, 1, False), (1, 1, False), (0, 0, False), (4, 3, True)],
)
def test_a_source_yielding_far_less_than_the_target_holds_is_refused(held: int, gone: int, refused: bool) -> None:
    names = [f"dash-{n}" for n in range(gone)]
    why = shrunken_source(SourceYield("prod", 10, held - gone), held, names, 0.5, "qa")
    assert (why is not None) == refused
    if why is not None:
        assert f"{gone} of the {held} qa holds from it are no longer among them" in why


def test_dependents_are_the_live_objects_no_spec_owns() -> None:
    charts = [
        LiveChart(3, "Mine", 7),
        LiveChart(4, "Hand-made", 7),
        LiveChart(5, "Elsewhere", 8),
        LiveChart(6, "x", None),
    ]
    assert chart_dependents(7, charts, managed={3}) == ("chart 'Hand-made' (id 4), left without its dataset",)
    rows = [LiveDataset(1, "warehouse", None, "sales"), LiveDataset(2, "warehouse", "main", "scratch")]
    rows.append(LiveDataset(3, "other", None, "t"))
    assert dataset_dependents("warehouse", rows, managed={1}) == ("dataset 'warehouse.main.scratch' (id 2)",)


ROLE = """\
  - name: {name}
{extra}    permissions:
      - [can_read, Dashboard]
"""


@pytest.mark.parametrize(
    ("name", "extra", "where", "message"),
    [
        (
            "Admin",
            "",
            "22: roles.2.name",
            "'Admin' is one of Superset's built-in roles (Admin, Alpha, Gamma, Public, sql_lab)",
        ),
        ("Public", "", "22: roles.2.name", "add manageBuiltIn: true to take it over"),
        (
            "admin",
            "    manageBuiltIn: true\n",
            "22: roles.2.name",
            "'admin' is too close to Superset's built-in role 'Admin'",
        ),
        ("analysts", "    manageBuiltIn: true\n", "23: roles.2.manageBuiltIn", "'analysts' is not a built-in role"),
    ],
)
def test_a_built_in_role_in_the_specs_needs_its_exact_name_and_the_opt_in(
    tmp_path: Path, name: str, extra: str, where: str, message: str
) -> None:
    root = copy_example(tmp_path)
    roles = root / "specs" / "superset" / "roles.yaml"
    roles.write_text(roles.read_text() + ROLE.format(name=name, extra=extra))
    result = CliRunner().invoke(main, ["--root", str(root), "validate"])
    assert result.exit_code == 1, result.output
    assert any(
        line.strip().startswith(f"specs/superset/roles.yaml:{where}: ") and message in line
        for line in result.output.splitlines()
    ), result.output


def test_a_built_in_role_taken_over_explicitly_validates(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    roles = root / "specs" / "superset" / "roles.yaml"
    roles.write_text(roles.read_text() + ROLE.format(name="Gamma", extra="    manageBuiltIn: true\n"))
    result = CliRunner().invoke(main, ["--root", str(root), "validate"])
    assert result.exit_code == 0, result.output
