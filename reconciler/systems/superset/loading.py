"""Spec loading, the Superset slice: `specs/superset/` + an environment's `superset:` section -> `SupersetSelection`.

Pure, like the rest of the loader (which calls it): texts in, a validated selection or
problems (`file:line: field: message`) out. It checks the asset files (a uuid each, no uuid
twice, no chart without its dataset, no dashboard placing a chart the specs lack), `roles.yaml`,
and the environment section against both: dashboards and roles that exist, a connection for
every database the selected dashboards use, and a replication source that is a known
environment with a Superset of its own and databases mapped onto declared ones.
"""

from __future__ import annotations

import json
import uuid as uuids
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from reconciler.spec.environment import interpolate_tree
from reconciler.spec.loader import Problems, SectionInput
from reconciler.spec.yamlsource import LocatedMap, copy_tree
from reconciler.systems.superset.asset_keys import unknown_keys
from reconciler.systems.superset.rules.assets import (
    chart_nodes,
    dashboard_key,
    filter_targets,
    key_of_dashboard,
    sub_bundle,
)
from reconciler.systems.superset.rules.bundle import Asset, Bundle, BundleError, from_files
from reconciler.systems.superset.rules.bundle_model import FILTERS
from reconciler.systems.superset.rules.connection_secrets import iter_database_secrets
from reconciler.systems.superset.rules.guards import BUILTIN_ROLES, builtin_role
from reconciler.systems.superset.rules.importing import closure
from reconciler.systems.superset.spec import ROLES_FILE, RolesFile, RoleSpec, SupersetEnvironment

SUPERSET_SPEC_DIR = "specs/superset/"
ASSET_FOLDERS = ("databases", "datasets", "charts", "dashboards")
SECTION = "superset"


@dataclass(frozen=True)
class ReplicationSource:
    """The environment dashboards are replicated from, and how to reach its Superset."""

    environment: str
    settings: SupersetEnvironment


@dataclass(frozen=True)
class SupersetSelection:
    """What Superset holds in one environment, per the specs, before any live export is read."""

    settings: SupersetEnvironment
    bundle: Bundle
    """The spec assets that exist here: the selected dashboards and all they use."""
    dashboards: tuple[str, ...]
    """Slugs of the selected spec dashboards."""
    roles: tuple[RoleSpec, ...]
    source: ReplicationSource | None = None


@dataclass
class SupersetSpecs:
    """`specs/superset/` read once per load."""

    bundle: Bundle = field(default_factory=Bundle)
    files: dict[str, LocatedMap] = field(default_factory=dict)
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    broken: bool = False
    roles_broken: bool = False


def _kind(relative: str) -> str | None:
    folder = relative.split("/", 1)[0]
    if folder not in ASSET_FOLDERS or not relative.endswith((".yaml", ".yml")):
        return None
    return "charts" if "/charts/" in relative and folder == "dashboards" else folder


JSON_FIELDS = {"charts": ("params", "query_context")}
"""Fields an export may carry as a JSON string: written as a string, it must parse."""

SECRET_HINT = "keep secrets out of specs/superset/; use superset.databases.<name>.password: {secretRef: ...}"


def _is_uuid(value: str) -> bool:
    try:
        uuids.UUID(value)
    except ValueError:
        return False
    return True


def _check_content(kind: str, tree: LocatedMap, problems: Problems) -> None:
    """What Superset's import would refuse without naming the file: keys it does not accept, JSON strings
    that do not parse; and what must never be in git: a database's inline secrets (the value never shown)."""
    for where, message in unknown_keys(kind, tree):
        problems.at(tree, where, message)
    for key in JSON_FIELDS.get(kind, ()):
        value = tree.get(key)
        if isinstance(value, str) and value.strip():
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                problems.at(tree, (key,), f"not valid JSON ({exc.msg} at character {exc.pos}); write a mapping")
    if kind == "databases":
        for where, message in iter_database_secrets(dict(tree)):
            problems.at(tree, where, f"{message}: {SECRET_HINT}")


def _check_asset_files(files: Mapping[str, LocatedMap], problems: Problems) -> bool:
    """Only keys Superset's import accepts, a uuid (a UUID) in every asset file, none twice (a uuid is one
    asset, whatever its kind), no slug on two dashboards; True when they can be read as a bundle (an
    unknown key or a bad JSON string is reported but does not stop the other checks)."""
    ok = True
    seen: dict[str, str] = {}
    slugs: dict[str, str] = {}
    for path, tree in sorted(files.items()):
        kind = str(_kind(path.removeprefix(SUPERSET_SPEC_DIR)))
        _check_content(kind, tree, problems)
        uuid = tree.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            problems.at(tree, (), "an asset file needs its uuid (the identity Superset keeps across instances)")
            ok = False
        elif not _is_uuid(uuid):
            problems.at(tree, ("uuid",), f"{uuid!r} is not a UUID (e.g. {uuids.uuid4()})")
            ok = False
        elif uuid in seen:
            problems.at(tree, ("uuid",), f"uuid {uuid} is also used by {seen[uuid]}")
            ok = False
        else:
            seen[uuid] = path
        if kind == "dashboards" and isinstance(uuid, str):
            key = key_of_dashboard(tree, uuid)
            if key in slugs:
                where = ("slug",) if tree.get("slug") else ()
                also = f"slug {key!r} is also the slug of {slugs[key]}"
                problems.at(tree, where, also if tree.get("slug") else f"{also}; give this dashboard a slug of its own")
                ok = False
            else:
                slugs[key] = path
    return ok


def _names(reference: Any, uuids: set[str]) -> bool:
    """True when `reference` is the uuid of one of `uuids` (a mapping or a list written there is not)."""
    return isinstance(reference, str) and reference in uuids


def _check_references(specs: SupersetSpecs, problems: Problems) -> None:
    """Every reference between asset files resolves inside the specs."""
    bundle = specs.bundle
    known = {kind: set(bundle.assets.get(kind, {})) for kind in ASSET_FOLDERS}
    trees = {str(tree.get("uuid")): tree for tree in specs.files.values()}
    for asset in bundle.of("datasets"):
        if not _names(asset.content.get("database_uuid"), known["databases"]):
            problems.at(trees[asset.uuid], ("database_uuid",), "no database in specs/superset/ has this uuid")
    for asset in bundle.of("charts"):
        if not _names(asset.content.get("dataset_uuid"), known["datasets"]):
            problems.at(trees[asset.uuid], ("dataset_uuid",), "no dataset in specs/superset/ has this uuid")
    for asset in bundle.of("dashboards"):
        for node, uuid in chart_nodes(asset):
            if uuid not in known["charts"]:
                where = ("position", node, "meta", "uuid")
                problems.at(trees[asset.uuid], where, f"places chart {uuid}, which is not in specs/superset/")
        for index, number, dataset in filter_targets(asset):
            if dataset not in known["datasets"]:
                target = ("metadata", FILTERS, index, "targets", number, "datasetUuid")
                problems.at(trees[asset.uuid], target, f"a native filter reads dataset {dataset}, not in specs/")


def read_superset_specs(texts: Mapping[str, str], parsed: Mapping[str, Any], problems: Problems) -> SupersetSpecs:
    """The asset bundle and the roles under `specs/superset/`, with every problem reported."""
    specs = SupersetSpecs()
    asset_texts: dict[str, str] = {}
    for path, tree in parsed.items():
        if not path.startswith(SUPERSET_SPEC_DIR) or path == SUPERSET_SPEC_DIR + ROLES_FILE:
            continue
        relative = path.removeprefix(SUPERSET_SPEC_DIR)
        if _kind(relative) is None:
            continue
        if not isinstance(tree, LocatedMap):
            where = tree if getattr(tree, "file", "") else LocatedMap(file=path, line=1)
            problems.at(where, (), "expected a mapping (an exported Superset asset)")
            specs.broken = True
            continue
        specs.files[path] = tree
        asset_texts[relative] = texts[path]
    broken_yaml = any(p.startswith(SUPERSET_SPEC_DIR) and p not in parsed for p in texts)
    if broken_yaml or not _check_asset_files(specs.files, problems):
        specs.broken = True
    else:
        try:
            specs.bundle = from_files(asset_texts)
        except BundleError as exc:  # not expected after the checks above; reported all the same
            problems.at(next(iter(specs.files.values()), None), (), str(exc))
            specs.broken = True
        else:
            _check_references(specs, problems)
    roles_path = SUPERSET_SPEC_DIR + ROLES_FILE
    roles_tree = parsed.get(roles_path)
    if roles_tree is not None:
        try:
            roles = RolesFile.model_validate(roles_tree)
        except ValidationError as error:
            problems.from_validation(roles_tree, (), error)
            specs.roles_broken = True
        else:
            for index, role in enumerate(roles.roles):
                if role.name in specs.roles:
                    problems.at(roles_tree, ("roles", index, "name"), f"role {role.name!r} is defined twice")
                _check_builtin(role, roles_tree, index, problems)
                specs.roles[role.name] = role
    return specs


def _check_builtin(role: RoleSpec, tree: Any, index: int, problems: Problems) -> None:
    """A built-in role only by its exact name and with `manageBuiltIn: true`; the flag on no other role."""
    builtin = builtin_role(role.name)
    if builtin is not None and builtin != role.name:
        message = (
            f"{role.name!r} is too close to Superset's built-in role {builtin!r}; "
            f"name it differently (or write {builtin!r} with manageBuiltIn: true)"
        )
        problems.at(tree, ("roles", index, "name"), message)
    elif builtin is not None and not role.manage_builtin:
        message = (
            f"{builtin!r} is one of Superset's built-in roles ({', '.join(BUILTIN_ROLES)}), which reconciler leaves "
            "alone: add manageBuiltIn: true to take it over (its permissions are then replaced whole by these)"
        )
        problems.at(tree, ("roles", index, "name"), message)
    elif builtin is None and role.manage_builtin:
        message = f"{role.name!r} is not a built-in role ({', '.join(BUILTIN_ROLES)}); remove manageBuiltIn"
        problems.at(tree, ("roles", index, "manageBuiltIn"), message)


def dashboard_slug(asset: Asset) -> str:
    """What an environment file selects a dashboard by: its exact slug (see `dashboard_key`)."""
    return dashboard_key(asset)


def _select_bundle(bundle: Bundle, dashboards: Sequence[Asset], everything: bool) -> Bundle:
    """The chosen dashboards and what they use (everything when `everything`)."""
    if everything:
        return bundle
    return sub_bundle(bundle, closure(bundle, [asset.uuid for asset in dashboards]))


def _source(
    name: str,
    settings: SupersetEnvironment,
    environments: Mapping[str, Any],
    variables: Mapping[str, str],
    raw: LocatedMap,
    problems: Problems,
) -> ReplicationSource | None:
    replicate = settings.replicate
    assert replicate is not None
    where = (SECTION, "replicate", "from")
    if replicate.source == name:
        problems.at(raw, where, "an environment cannot replicate from itself")
        return None
    source_raw = environments.get(replicate.source)
    if replicate.source not in environments:
        known = ", ".join(sorted(environments)) or "none"
        problems.at(raw, where, f"no environment {replicate.source!r} (known: {known})")
        return None
    section = source_raw.get(SECTION) if isinstance(source_raw, LocatedMap) else None
    if not isinstance(section, LocatedMap):
        problems.at(raw, where, f"environment {replicate.source!r} has no superset section to replicate from")
        return None
    unresolved: list[tuple[tuple[Any, ...], str]] = []
    section = copy_tree(section)  # filled in here alone: the source's own load fills in its file as written
    interpolate_tree(section, variables, unresolved, (SECTION,))
    for path, message in unresolved:
        problems.at(source_raw, path, message)
    try:
        return ReplicationSource(replicate.source, SupersetEnvironment.model_validate(section))
    except ValidationError as error:
        problems.from_validation(source_raw, (SECTION,), error)
        return None


def load_superset(
    name: str,
    raw: LocatedMap,
    settings: SupersetEnvironment,
    specs: SupersetSpecs,
    environments: Mapping[str, Any],
    variables: Mapping[str, str],
    problems: Problems,
) -> SupersetSelection:
    """One environment's Superset selection; `environments` holds every environment file's tree by name."""
    by_slug = {dashboard_slug(asset): asset for asset in specs.bundle.of("dashboards")}
    chosen: list[Asset] = []
    if settings.dashboards != "all":
        for index, slug in enumerate(settings.dashboards):
            if slug in by_slug:
                chosen.append(by_slug[slug])
            elif not specs.broken:
                known = ", ".join(sorted(by_slug)) or "none"
                message = f"no dashboard {slug!r} in {SUPERSET_SPEC_DIR} (known: {known})"
                alike = [other for other in by_slug if str(other).casefold() == str(slug).casefold()]
                if alike:
                    message += f"; slugs are exact: did you mean {alike[0]!r}?"
                problems.at(raw, (SECTION, "dashboards", index), message)
    everything = settings.dashboards == "all"
    bundle = _select_bundle(specs.bundle, chosen, everything)
    roles: list[RoleSpec] = []
    role_names = sorted(specs.roles) if settings.roles == "all" else settings.roles
    for index, role_name in enumerate(role_names):
        if role_name in specs.roles:
            roles.append(specs.roles[role_name])
        elif not specs.roles_broken:
            problems.at(raw, (SECTION, "roles", index), f"no role {role_name!r} in {SUPERSET_SPEC_DIR}{ROLES_FILE}")
    for database in bundle.of("databases"):
        if database.name not in settings.databases:
            users = sorted(dashboard_slug(a) for a in bundle.of("dashboards")) or ["the selected charts"]
            problems.at(
                raw,
                (SECTION, "databases"),
                f"database {database.name!r} (used by {', '.join(users)}) has no connection here; "
                "declare it under superset.databases",
                field="superset.databases",
            )
    source = None
    if settings.replicate is not None:
        for source_name, target in settings.replicate.databases.items():
            if target not in settings.databases:
                problems.at(
                    raw,
                    (SECTION, "replicate", "databases", source_name),
                    f"maps onto {target!r}, which superset.databases does not declare",
                )
        source = _source(name, settings, environments, variables, raw, problems)
    slugs = tuple(sorted(dashboard_slug(asset) for asset in bundle.of("dashboards")))
    return SupersetSelection(settings, bundle, slugs, tuple(roles), source)


def load_superset_section(section: SectionInput) -> SupersetSelection:
    return load_superset(
        section.environment,
        section.raw,
        section.settings,
        section.specs,
        section.environments,
        section.variables,
        section.problems,
    )
