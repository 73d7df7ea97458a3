"""Core rules for Superset roles: spec roles and live permission sets -> one comparable shape; names -> ids.

Pure. A role's fields are `{"name": ..., "permissions": {"<permission> on <view menu>": "granted"}}`,
compared on every key, so a plan lists each permission gained (`(none) -> "granted"`) and lost
(`"granted" -> (none)`) on its own line. Data-access view menus embed instance ids
(`[warehouse].[sales](id:7)`); they are compared without them (`[warehouse].[sales]`), and turned
back into this instance's permission ids by name only when applying (`resolve_permissions`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core.model import DesiredResource, ResourceKey
from reconciler.errors import ReconcilerError
from reconciler.systems.superset.rules.assets import DATASET, ROLE, key
from reconciler.systems.superset.rules.assets import dataset_name as dataset_key_name
from reconciler.systems.superset.spec import RoleSpec

GRANTED = "granted"
PERMISSIONS = "permissions"
DATASOURCE, SCHEMA, DATABASE = "datasource_access", "schema_access", "database_access"
_INSTANCE_ID = re.compile(r"\.?\(id:\d+\)$")


def without_ids(view_menu: str) -> str:
    """`[warehouse].[sales](id:7)` -> `[warehouse].[sales]`; `[warehouse].(id:1)` -> `[warehouse]`."""
    return _INSTANCE_ID.sub("", view_menu)


def permission_name(permission: str, view_menu: str) -> str:
    return f"{permission} on {without_ids(view_menu)}"


def role_pairs(spec: RoleSpec) -> list[tuple[str, str]]:
    """Every (permission, view menu without ids) the spec grants."""
    pairs = [(permission, view) for permission, view in spec.permissions]
    pairs += [(DATASOURCE, f"[{access.database}].[{access.table}]") for access in spec.datasets]
    pairs += [(SCHEMA, f"[{access.database}].[{access.schema_}]") for access in spec.schemas]
    pairs += [(DATABASE, f"[{database}]") for database in spec.databases]
    return pairs


def role_fields(name: str, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    permissions = {permission_name(permission, view): GRANTED for permission, view in pairs}
    return {"name": name, PERMISSIONS: dict(sorted(permissions.items()))}


def desired_roles(roles: Sequence[RoleSpec]) -> list[DesiredResource]:
    """One resource per role; it waits for the datasets it grants access to."""
    resources = []
    for spec in roles:
        depends = tuple(dataset_keys(spec))
        resources.append(
            DesiredResource(
                key(ROLE, spec.name), role_fields(spec.name, role_pairs(spec)), (), depends, exact=((PERMISSIONS,),)
            )
        )
    return resources


@dataclass(frozen=True)
class PermissionView:
    """One permission on one view menu of one instance."""

    id: int
    permission: str
    view_menu: str


@dataclass(frozen=True)
class LiveDataset:
    id: int
    database: str
    schema: str | None
    table: str


class UnknownPermissionError(ReconcilerError):
    """A role grants something the target instance has no permission for (yet)."""


def resolve_permissions(
    role: RoleSpec, available: Sequence[PermissionView], datasets: Sequence[LiveDataset]
) -> list[int]:
    """This instance's permission ids for everything the role grants, matched by name."""
    by_name: dict[tuple[str, str], list[PermissionView]] = {}
    for pvm in available:
        by_name.setdefault((pvm.permission, without_ids(pvm.view_menu)), []).append(pvm)
    schemas = {(access.database, access.table): access.schema_ for access in role.datasets}
    ids: list[int] = []
    missing: list[str] = []
    for permission, view in role_pairs(role):
        candidates = by_name.get((permission, view), [])
        if permission == DATASOURCE and len(candidates) > 1:
            candidates = _in_schema(candidates, view, schemas, datasets)
        if len(candidates) != 1:
            problem = "no such permission" if not candidates else f"{len(candidates)} match; name the schema"
            missing.append(f"{permission} on {view} ({problem})")
            continue
        ids.append(candidates[0].id)
    if missing:
        raise UnknownPermissionError(f"role {role.name!r}: " + "; ".join(missing))
    return sorted(set(ids))


def _in_schema(
    candidates: list[PermissionView],
    view: str,
    schemas: Mapping[tuple[str, str], str | None],
    datasets: Sequence[LiveDataset],
) -> list[PermissionView]:
    """Datasets with one name in several schemas: keep the one in the schema the role names."""
    database, _, table = view.strip("[]").partition("].[")
    schema = schemas.get((database, table))
    if schema is None:
        return candidates
    ids = {d.id for d in datasets if d.database == database and d.table == table and d.schema == schema}
    return [pvm for pvm in candidates if any(pvm.view_menu.endswith(f"(id:{i})") for i in ids)]


def dataset_keys(role: RoleSpec) -> list[ResourceKey]:
    return [key(DATASET, dataset_key_name(a.database, a.schema_, a.table)) for a in role.datasets]
