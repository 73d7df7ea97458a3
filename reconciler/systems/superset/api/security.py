"""Superset client, security: roles and their permissions (`/api/v1/security/roles/`).

A part of SupersetClient (client.py), on the plumbing of calls.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.systems.superset.api.calls import SupersetCalls


@dataclass(frozen=True)
class Role:
    id: int
    name: str


@dataclass(frozen=True)
class PermissionViewMenu:
    """One permission on one view menu (`can_read` on `Dashboard`, `datasource_access` on a table)."""

    id: int
    permission: str
    view_menu: str


class RoleCalls(SupersetCalls):
    """List, create and delete roles; read and replace a role's permissions."""

    # ---- roles and permissions --------------------------------------------------------------

    def list_roles(self) -> list[Role]:
        return [Role(row["id"], row["name"]) for row in self.iter_pages("/api/v1/security/roles/")]

    def create_role(self, name: str) -> int:
        return int(self.request_json("POST", "/api/v1/security/roles/", ok=(201,), json={"name": name})["id"])

    def delete_role(self, role_id: int) -> None:
        self._delete(f"/api/v1/security/roles/{role_id}")

    def role_permissions(self, role_id: int) -> list[PermissionViewMenu]:
        answer = self.get_json(f"/api/v1/security/roles/{role_id}/permissions/")
        return [
            PermissionViewMenu(row["id"], row["permission_name"], row["view_menu_name"])
            for row in answer.get("result") or []
        ]

    def set_role_permissions(self, role_id: int, pvm_ids: Sequence[int]) -> None:
        """Replace the role's whole permission set with `pvm_ids`."""
        path = f"/api/v1/security/roles/{role_id}/permissions"
        self.request_json("POST", path, ok=(200,), json={"permission_view_menu_ids": sorted(set(pvm_ids))})

    def list_permission_view_menus(self) -> list[PermissionViewMenu]:
        return [
            PermissionViewMenu(row["id"], row["permission"]["name"], row["view_menu"]["name"])
            for row in self.iter_pages("/api/v1/security/permissions-resources/")
        ]
