"""`reconcile pull airbyte` (live -> git; `import airbyte` is its alias for a release): live objects the specs
do not define -> spec YAML, recorded as owned.

Reads the live system through the Airbyte provider's client, writes
`specs/airbyte/imported-<env>.yaml`, adds the new names to the environment file (comments
and order preserved), and records ownership so the next plan adopts instead of creating.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.errors import ReconcilerError
from reconciler.registry import Invocation
from reconciler.spec.editing import edit_yaml_file
from reconciler.spec.files import read_spec_tree
from reconciler.systems.airbyte import IMPORT, PULL, rules
from reconciler.systems.airbyte.loading import airbyte_definition_names
from reconciler.systems.airbyte.pull import ImportedSpecs, connection_entry, connector_entry, spec_name

if TYPE_CHECKING:  # the service, the provider and its client are imported when the command runs (fast --help)
    from reconciler.systems.airbyte.provider import AirbyteProvider

COLLECTIONS = {
    "source": ("sources", "sourceId"),
    "destination": ("destinations", "destinationId"),
    "connection": ("connections", "connectionId"),
}


def _collect(
    provider: AirbyteProvider,
    env: str,
    selected: Mapping[str, set[str]],
    defined: Mapping[str, set[str]],
    records: Mapping[ResourceKey, OwnershipRecord],
    include_owned: bool,
) -> ImportedSpecs:
    """Spec entries for live objects the specs do not define; defined but unselected ones are selected.

    A live object the state already records is managed: never written again, whatever its name.
    """
    result = ImportedSpecs()
    taken = {kind: set(names) for kind, names in defined.items()}
    names_by_id: dict[str, str] = {}
    for kind, (collection, id_field) in COLLECTIONS.items():
        listed = provider.client.list_all(collection, workspace_id=provider.workspace_id)
        recorded = {key.name: record.id for key, record in records.items() if key.kind == kind}
        owned = {live_id: name for name, live_id in recorded.items()}
        live_ids = {str(answer[id_field]) for answer in listed}
        unowned_names = Counter(str(a.get("name", "")) for a in listed if str(a[id_field]) not in owned)
        for answer in listed:
            live_id, live_name = str(answer[id_field]), str(answer.get("name", ""))
            if live_id in owned:
                result.managed.append(ResourceKey(rules.SYSTEM, kind, owned[live_id]))
                names_by_id[live_id] = owned[live_id]
                continue
            if live_name in defined[kind] and not include_owned:
                if unowned_names[live_name] > 1:
                    result.skipped.append(
                        f"{kind} {live_name!r} ({live_id}): {unowned_names[live_name]} live {kind}s have this name; "
                        "reconciler will not guess"
                    )
                elif recorded.get(live_name) in live_ids:
                    result.skipped.append(f"{kind} {live_name!r} ({live_id}): reconciler manages another of this name")
                else:
                    names_by_id[live_id] = live_name
                    if live_name not in selected[kind]:
                        result.select[f"{kind}s"].append(live_name)
                        result.ids[(kind, live_name)] = live_id
                    elif live_name in recorded:  # its recorded object is gone: this one takes its place, asked for
                        result.rebound.append(ResourceKey(rules.SYSTEM, kind, live_name))
                        result.ids[(kind, live_name)] = live_id
                continue
            if kind == "connection":
                source, destination = names_by_id.get(answer["sourceId"]), names_by_id.get(answer["destinationId"])
                if source is None or destination is None:
                    result.skipped.append(f"connection {live_name!r}: its source or destination was not imported")
                    continue
                name = spec_name(live_name, taken[kind])
                result.connections.append(connection_entry(answer, name, source, destination))
            else:
                name = spec_name(live_name, taken[kind])
                refs: list[str] = []
                getattr(result, f"{kind}s").append(connector_entry(kind, answer, name, env, refs))
                result.secret_variables += refs
            names_by_id[live_id] = name
            result.ids[(kind, name)] = live_id
    return result


def _add_to_environment(env_file: Path, imported: ImportedSpecs) -> None:
    """Select the pulled resources in the environment file (comments and order kept)."""

    def select(document: Any) -> bool:
        airbyte = document["airbyte"]
        for section in ("sources", "destinations", "connections"):
            names = [entry["name"] for entry in getattr(imported, section)] + imported.select[section]
            if not names:
                continue
            if airbyte.get(section) is None:
                airbyte[section] = {}
            for name in names:
                airbyte[section][name] = {}
        return True

    edit_yaml_file(env_file, select)


def _managed_line(imported: ImportedSpecs) -> list[str]:
    if not imported.managed:
        return []
    names = ", ".join(str(key) for key in sorted(imported.managed))
    return [f"{len(imported.managed)} already managed (recorded in the state), left as they are: {names}"]


def import_airbyte(root: Path, env_name: str, environ: Mapping[str, str], *, include_owned: bool = False) -> list[str]:
    """Write spec YAML for what the live Airbyte has and the specs do not; return report lines."""
    from reconciler import service
    from reconciler.systems.airbyte.provider import connect

    target = root / "specs" / "airbyte" / f"imported-{env_name}.yaml"
    warnings: list[str] = []
    with (
        service.open_provider(root, env_name, environ, rules.SYSTEM, connect) as (session, provider),
        service.locked(session, "reconcile import airbyte", lambda event: warnings.append(f"Warning: {event.message}")),
    ):
        records = session.state.load()  # a state it cannot use is refused before any file is written
        selection = provider.selection
        selected = {
            "source": {s.name for s in selection.sources},
            "destination": {d.name for d in selection.destinations},
            "connection": {c.name for c in selection.connections},
        }
        defined = airbyte_definition_names(read_spec_tree(root))
        owned = {key: record for key, record in records.items() if key.system == rules.SYSTEM}
        imported = _collect(provider, env_name, selected, defined, owned, include_owned)
        managed = _managed_line(imported)
        skipped = [f"Skipped {reason}" for reason in imported.skipped]
        if not imported.ids:
            return [*warnings, "Nothing to import: every live resource is already in the specs.", *managed, *skipped]
        body: dict[str, Any] = {
            section: getattr(imported, section)
            for section in ("sources", "destinations", "connections")
            if getattr(imported, section)
        }
        if body and target.exists():
            raise ReconcilerError(f"{target} already exists; merge or remove it before importing again")
        if body:
            target.parent.mkdir(parents=True, exist_ok=True)
            header = f"# Imported from the live Airbyte of {env_name} by `reconcile import airbyte`.\n"
            target.write_text(header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
        _add_to_environment(root / session.env.file, imported)
        for (kind, name), live_id in imported.ids.items():
            key = ResourceKey(rules.SYSTEM, kind, name)
            records[key] = OwnershipRecord(key, live_id)
        session.state.save(records)
    lines = [
        *warnings,
        f"Wrote {target.relative_to(root)}: {len(imported.sources)} sources, {len(imported.destinations)} "
        f"destinations, {len(imported.connections)} connections; added them to {session.env.file}."
        if body
        else "No new spec entries were needed.",
    ]
    selected_now = sum(len(names) for names in imported.select.values())
    if selected_now:
        lines.append(f"Selected {selected_now} resource(s) already defined in specs/ for {env_name}.")
    if imported.rebound:
        lines.append(
            f"Adopted {len(imported.rebound)} live resource(s) in place of recorded ones that are gone: "
            + ", ".join(str(key) for key in imported.rebound)
        )
    lines += managed
    if imported.secret_variables:
        lines.append("Set these environment variables to the secrets (the live values are masked):")
        lines += [f"  {name}" for name in imported.secret_variables]
    lines += skipped
    lines.append(f"Next: `reconcile plan --env {env_name}` should show no changes but secrets not tracked yet.")
    return lines


pass_invocation = click.make_pass_decorator(Invocation)


def _pull(invocation: Invocation, env_name: str, include_owned: bool) -> None:
    for line in import_airbyte(invocation.root, env_name, dict(os.environ), include_owned=include_owned):
        click.echo(line)


ENV = click.option("--env", "env_name", required=True, help="Environment to pull from (e.g. prod).")
INCLUDE_OWNED = click.option("--include-owned", is_flag=True, help="Also write resources the specs already define.")

pull_command = click.command(name=PULL.name, help=PULL.help)(ENV(INCLUDE_OWNED(pass_invocation(_pull))))
import_command = click.command(name=IMPORT.name, help=IMPORT.help)(ENV(INCLUDE_OWNED(pass_invocation(_pull))))
