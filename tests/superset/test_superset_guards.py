"""What a Superset plan refuses, with plain data: built-in roles, the signed-in user's own access, a shrunken
replication source, dependents a delete would break; and `roles.yaml` naming a built-in role."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from reconciler.cli import ALLOW_FLAGS, main
from reconciler.core.model import OwnershipRecord
from reconciler.core.plan import Override
from reconciler.providers.base import Observation
from reconciler.systems.superset.client import PermissionViewMenu, Role, SupersetClient
from reconciler.systems.superset.loading import SupersetSelection
from reconciler.systems.superset.provider import SupersetProvider
from reconciler.systems.superset.rules.assets import ROLE, key
from reconciler.systems.superset.rules.bundle import Bundle
from reconciler.systems.superset.rules.guards import (
    BUILTIN_KEPT,
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
from reconciler.systems.superset.spec import RoleSpec, SupersetEnvironment
from tests.helpers import copy_example


def test_every_allow_flag_lifts_one_override() -> None:
    assert set(ALLOW_FLAGS) == {override.value for override in Override}


@pytest.mark.parametrize("name", ["Admin", "admin", " Public", "GAMMA", "Alpha", "sql_lab", "SQL_LAB "])
def test_built_in_roles_are_recognised_in_any_case_and_spacing(name: str) -> None:
    assert builtin_role(name) is not None


@pytest.mark.parametrize("name", ["analyst", "Admins", "sql-lab", "Public viewers", ""])
def test_other_roles_are_not_built_in(name: str) -> None:
    assert builtin_role(name) is None


ADMIN = [*SECURITY_API, ("can_read", "Log")]


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
    assert lost_security_access({"Gamma": [("can_read", "Log")]}, {"Gamma": []}) == []  # had none to lose


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


ROLE_YAML = """\
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
    roles.write_text(roles.read_text() + ROLE_YAML.format(name=name, extra=extra))
    result = CliRunner().invoke(main, ["--root", str(root), "validate"])
    assert result.exit_code == 1, result.output
    assert any(
        line.strip().startswith(f"specs/superset/roles.yaml:{where}: ") and message in line
        for line in result.output.splitlines()
    ), result.output


def test_a_built_in_role_taken_over_explicitly_validates(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    roles = root / "specs" / "superset" / "roles.yaml"
    roles.write_text(roles.read_text() + ROLE_YAML.format(name="Gamma", extra="    manageBuiltIn: true\n"))
    result = CliRunner().invoke(main, ["--root", str(root), "validate"])
    assert result.exit_code == 0, result.output


# ---- the provider's observe, on a stand-in holding only roles ---------------------------------------


class RolesOnly:
    """A Superset with no assets: roles with permissions, and the signed-in user's roles."""

    def __init__(self, roles: dict[str, list[tuple[str, str]]], mine: list[str]) -> None:
        self.roles = roles
        self.mine = mine
        self.asked_mine = 0

    def list_dashboards(self) -> list[Any]:
        return []

    list_charts = list_datasets = list_databases = list_dashboards

    def list_roles(self) -> list[Role]:
        return [Role(number, name) for number, name in enumerate(self.roles, start=1)]

    def role_permissions(self, role_id: int) -> list[PermissionViewMenu]:
        pairs = list(self.roles.values())[role_id - 1]
        return [PermissionViewMenu(n, permission, view) for n, (permission, view) in enumerate(pairs)]

    def my_roles(self) -> dict[str, list[tuple[str, str]]]:
        self.asked_mine += 1
        return {name: self.roles[name] for name in self.mine}


def observe(client: RolesOnly, specs: tuple[RoleSpec, ...], owned: list[str]) -> Observation:
    settings = SupersetEnvironment.model_validate(
        {"url": "http://superset.test", "auth": {"token": {"secretRef": {"env": "T"}}}, "prune": True}
    )
    made = SupersetProvider(
        lambda: cast(SupersetClient, client), SupersetSelection(settings, Bundle(), (), specs), "qa"
    )
    ids = {name: str(number) for number, name in enumerate(client.roles, start=1)}
    records = {key(ROLE, name): OwnershipRecord(key(ROLE, name), ids[name]) for name in owned}
    return made.observe(made.desired(lambda _ref: ""), records)


def test_pruning_the_role_that_gives_the_user_the_roles_api_is_refused_and_a_built_in_is_kept() -> None:
    client = RolesOnly({"Admin": [], "role-admins": list(SECURITY_API), "Gamma": []}, mine=["role-admins", "Gamma"])
    seen = observe(client, (), owned=["role-admins", "Admin"])
    assert [r.override for r in seen.refusals] == [None]
    assert (
        "would take can_get on Role" in seen.refusals[0].message and "role(s) role-admins" in seen.refusals[0].message
    )
    assert seen.protected == {key(ROLE, "Admin"): BUILTIN_KEPT}


def test_roles_the_plan_does_not_change_cost_no_call_for_the_users_own_roles() -> None:
    client = RolesOnly({"analyst": [("can_read", "Dashboard")]}, mine=["analyst"])
    seen = observe(client, (RoleSpec(name="analyst", permissions=[("can_read", "Dashboard")]),), owned=["analyst"])
    assert not seen.refusals and client.asked_mine == 0
