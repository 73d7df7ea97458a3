"""Core rules for what a Superset plan refuses: built-in roles, the signed-in user's own access, a shrunken
replication source, and live objects outside the specs that a delete would break.

Pure; the loader (built-in role names) and the provider's observe (the rest) call them, and the
plan carries their answers as refusals, protected records and unmanaged dependents.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.systems.superset.rules.assets import dataset_name
from reconciler.systems.superset.rules.roles import LiveDataset

BUILTIN_ROLES = ("Admin", "Alpha", "Gamma", "Public", "sql_lab")
"""The roles `superset init` makes and syncs (`sync_role_definitions`), Public being Superset's anonymous role
(`AUTH_ROLE_PUBLIC`, `GUEST_ROLE_NAME`). A spec takes one over only with `manageBuiltIn: true`."""
BUILTIN_KEPT = "one of Superset's built-in roles, which reconciler never deletes"

SECURITY_API: tuple[tuple[str, str], ...] = (
    ("can_get", "Role"),
    ("can_post", "Role"),
    ("can_delete", "Role"),
    ("can_list_role_permissions", "Role"),
    ("can_add_role_permissions", "Role"),
    ("can_get", "PermissionViewMenu"),
    ("can_read", "CurrentUserRestApi"),
)
"""What reconciler's role management calls need (`/api/v1/security/roles/...`,
`/api/v1/security/permissions-resources/`, `/api/v1/me/roles/`), as (permission, view menu)."""

ASSET_API: tuple[tuple[str, str], ...] = (
    *(
        (permission, view)
        for view in ("Dashboard", "Chart", "Dataset", "Database")
        for permission in ("can_read", "can_export", "can_write")
    ),
    ("can_import_", "ImportExportRestApi"),
    ("all_datasource_access", "all_datasource_access"),
    ("all_database_access", "all_database_access"),
)
"""What its asset calls need: list and export (`can_read`, `can_export`), delete and import over (`can_write`,
`/api/v1/assets/import/`), and seeing every dataset and database (else the listings hide what it owns, and
the next plan would take them for deleted by hand). Without `can_read` on Dashboard the next plan fails before
it could even put the role back."""


_LOOKALIKES = str.maketrans(
    "\u0410\u0430\u0412\u0415\u0435\u041c\u041d\u041e\u043e\u0420\u0440\u0421\u0441\u0405\u0455\u0406\u0456"
    "\u0501\u04bb\u04c0\u04cf\u0391\u03b1\u0392\u039c\u039d\u039f\u03bf\u03a1\u0399\u03b9\u0131",
    "AaBEeMHOoPpCcSsIidhllAaBMNOoPIii",
)
"""Cyrillic and Greek letters drawn like the Latin ones in the built-in names (`Admin` with a Cyrillic A)."""


def _folded(name: str) -> str:
    """`name` as a reader or a case- and accent-insensitive collation sees it: compatibility forms (full-width),
    accents, invisible characters (zero-width space, soft hyphen) and Cyrillic or Greek look-alikes gone."""
    decomposed = unicodedata.normalize("NFKD", name)
    kept = "".join(char for char in decomposed if unicodedata.category(char) not in ("Mn", "Me", "Cf"))
    return kept.translate(_LOOKALIKES).strip().casefold()


def builtin_role(name: str) -> str | None:
    """The built-in role `name` is, or is too close to, or None. Too close: another case or spacing (`admin`,
    ` Public`), or a name that reads the same (`\u00c1dmin`, a full-width `Admin`, `Admin` + zero-width space,
    `Admin` with a Cyrillic A): a MySQL-backed Superset (utf8mb4 `_ci` collations) finds the built-in itself by most of
    them, and a person reading the role list cannot tell any of them from it."""
    folded = _folded(name)
    return next((role for role in BUILTIN_ROLES if role.casefold() == folded), None)


def lost_security_access(
    user_roles: Mapping[str, Iterable[tuple[str, str]]], after: Mapping[str, Iterable[tuple[str, str]] | None]
) -> list[str]:
    """The permissions reconciler's calls need (security API and assets) the signed-in user holds now and would
    not after the plan.

    `user_roles`: the user's roles and their permissions now; `after`: the roles the plan changes, with their
    permissions afterwards (None: deleted). A permission the user lacks now is not "lost".
    """
    now = {pair for pairs in user_roles.values() for pair in pairs}
    then: set[tuple[str, str]] = set()
    for role, pairs in user_roles.items():
        then.update(pairs if role not in after else after[role] or ())
    return [
        f"{permission} on {view}"
        for permission, view in (*SECURITY_API, *ASSET_API)
        if (permission, view) in now - then
    ]


@dataclass(frozen=True)
class SourceYield:
    """What a replication source gave one plan: dashboards listed there and chosen by the selector."""

    environment: str
    listed: int
    chosen: int


def empty_source(source: SourceYield, held: int, target_env: str) -> str | None:
    """Why a replication source that yields no dashboard is refused (None: it yields some)."""
    if source.chosen:
        return None
    why = "has none" if source.listed == 0 else f"lists {source.listed}; superset.replicate.dashboards chose none"
    held_text = f"; {target_env} holds {held} dashboard(s) replicated from it" if held else ""
    return f"the replication source {source.environment} yields no dashboards to replicate (it {why}){held_text}"


def shrunken_source(source: SourceYield, held: int, gone: Sequence[str], ratio: float, target_env: str) -> str | None:
    """Why a source that now yields far less than the target holds from it is refused (None: it does not).

    `held`: dashboards reconciler replicated into the target and still finds there; `gone`: those the source no
    longer yields. Far less: more than `ratio` of them gone (two at least; one gone is an ordinary delete).
    """
    if len(gone) < 2 or len(gone) / max(held, 1) <= ratio:
        return None
    names = ", ".join(sorted(gone)[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
    return (
        f"the replication source {source.environment} now yields {source.chosen} dashboard(s) to replicate, and "
        f"{len(gone)} of the {held} {target_env} holds from it are no longer among them ({names})"
    )


@dataclass(frozen=True)
class LiveChart:
    id: int
    name: str
    dataset_id: int | None


def chart_dependents(dataset_id: int, charts: Iterable[LiveChart], managed: set[int]) -> tuple[str, ...]:
    """The live charts outside `managed` (chart ids) on a dataset, described for the plan."""
    return tuple(
        f"chart {chart.name!r} (id {chart.id}), left without its dataset"
        for chart in sorted(charts, key=lambda c: c.id)
        if chart.dataset_id == dataset_id and chart.id not in managed
    )


def dataset_dependents(database: str, datasets: Iterable[LiveDataset], managed: set[int]) -> tuple[str, ...]:
    """The live datasets outside `managed` (dataset ids) on a database, described for the plan (Superset refuses
    to delete a database that still has datasets, so these block its delete outright)."""
    return tuple(
        f"dataset {dataset_name(dataset.database, dataset.schema, dataset.table)!r} (id {dataset.id})"
        for dataset in sorted(datasets, key=lambda d: d.id)
        if dataset.database == database and dataset.id not in managed
    )
