"""Superset roles are matched by the one identity matcher: a recorded role is its recorded id or nothing."""

from __future__ import annotations

from typing import Any, cast

import pytest

from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.errors import AmbiguousIdentityError
from reconciler.systems.superset.client import Role, SupersetClient
from reconciler.systems.superset.loading import SupersetSelection
from reconciler.systems.superset.provider import SupersetProvider
from reconciler.systems.superset.rules.bundle import Bundle
from reconciler.systems.superset.spec import RoleSpec, SupersetEnvironment

KEY = ResourceKey("superset", "role", "sales-viewer")


class Listed:
    """A Superset with no assets and two roles (only the listings observe reads)."""

    def __init__(self, roles: list[Role]) -> None:
        self.roles = roles

    def list_dashboards(self) -> list[Any]:
        return []

    list_charts = list_datasets = list_databases = list_dashboards

    def list_roles(self) -> list[Role]:
        return self.roles

    def role_permissions(self, role_id: int) -> list[Any]:
        return []


def provider(roles: list[Role]) -> SupersetProvider:
    settings = SupersetEnvironment.model_validate(
        {"url": "http://superset.test", "auth": {"token": {"secretRef": {"env": "T"}}}}
    )
    selection = SupersetSelection(settings, Bundle(), (), (RoleSpec(name="sales-viewer"),))
    return SupersetProvider(lambda: cast(SupersetClient, Listed(roles)), selection, "qa")


def test_a_role_without_a_record_is_found_by_name() -> None:
    made = provider([Role(7, "sales-viewer"), Role(1, "Admin")])
    observed = made.observe(made.desired(lambda _ref: ""), {})
    assert observed.live[KEY].id == "7"


def test_a_recorded_role_that_is_gone_is_not_re_found_by_name() -> None:
    """Someone else's namesake is never taken over (the Airbyte rule, now Superset's too)."""
    made = provider([Role(9, "sales-viewer")])
    with pytest.raises(AmbiguousIdentityError, match="recorded \\(7\\) is gone") as info:
        made.observe(made.desired(lambda _ref: ""), {KEY: OwnershipRecord(KEY, "7")})
    assert "reconcile import" not in str(info.value) and "Delete or rename it" in str(info.value)


def test_a_recorded_role_is_its_recorded_id_whatever_its_name() -> None:
    made = provider([Role(7, "sales-viewer-renamed-by-hand")])
    observed = made.observe(made.desired(lambda _ref: ""), {KEY: OwnershipRecord(KEY, "7")})
    assert observed.live[KEY].id == "7"
