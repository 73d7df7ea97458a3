"""Spec loading, the Superset slice: `specs/superset/` + an environment's `superset:` section -> `SupersetSelection`.

Pure, like the rest of the loader (which calls it): texts in, a validated selection or
problems (`file:line: field: message`) out. It checks the asset files (a uuid each, no uuid
twice, no chart without its dataset, no dashboard placing a chart the specs lack), `roles.yaml`,
and the environment section against both: dashboards and roles that exist, a connection for
every database the selected dashboards use, and a replication source that is a known
environment with a Superset of its own and databases mapped onto declared ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from reconciler.spec.environment import interpolate_tree
from reconciler.spec.loader import Problems, SectionInput
from reconciler.spec.yamlsource import LocatedMap
from reconciler.systems.superset.asset_keys import unknown_keys
from reconciler.systems.superset.rules.assets import chart_nodes, filter_targets, sub_bundle
from reconciler.systems.superset.rules.bundle import Asset, Bundle, BundleError, from_files, slugify
from reconciler.systems.superset.rules.bundle_model import FILTERS
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


def _check_asset_files(files: Mapping[str, LocatedMap], problems: Problems) -> bool:
    """Only keys Superset's import accepts, a uuid in every asset file, none twice in one kind; True when
    they can be read as a bundle (an unknown key is reported but does not stop the other checks)."""
    ok = True
    seen: dict[tuple[str, str], str] = {}
    for path, tree in sorted(files.items()):
        kind = _kind(path.removeprefix(SUPERSET_SPEC_DIR))
        for where, message in unknown_keys(str(kind), tree):
            problems.at(tree, where, message)
        uuid = tree.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            problems.at(tree, (), "an asset file needs its uuid (the identity Superset keeps across instances)")
            ok = False
        elif (str(kind), uuid) in seen:
            problems.at(tree, ("uuid",), f"uuid {uuid} is also used by {seen[(str(kind), uuid)]}")
            ok = False
        else:
            seen[(str(kind), uuid)] = path
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
    return slugify(str(asset.content.get("slug") or asset.content.get("dashboard_title") or asset.uuid))


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
