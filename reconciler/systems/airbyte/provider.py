"""Airbyte provider: observe sources, destinations and connections in pages; apply one action.

Observing an environment costs one paged listing per kind (three kinds, listed at once,
`listing.py`; for a plan, started before the specs are loaded), whatever the number of resources.
Updates are PATCHes of what changed (sources and destinations deep-merge, so a masked secret the
spec did not change is simply not sent); a PATCH that sends a connection's
streams first reads the connection, to send back the stream settings the specs leave out (Airbyte
would reset them). A connection's ends cannot change in place, and neither can a connector's
type: those are replaced (delete, then create). Deleting a source or destination makes Airbyte
deprecate its connections, so observe also reports the connections outside the specs that use
each one: the planner refuses a replace that would kill them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path as FilePath
from typing import Any

from reconciler.core.identity import LiveObject, match_objects
from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, Path, ResourceKey, dotted
from reconciler.core.plan import Action, ActionKind, changed_fields
from reconciler.errors import SpecError, SpecProblem
from reconciler.providers.base import ApplyContext, ApplyOutcome, Observation, Prefetch
from reconciler.secrets import SecretResolver
from reconciler.spec.loader import Environment
from reconciler.spec.secrets import SecretRef
from reconciler.systems.airbyte import rules
from reconciler.systems.airbyte.client import AirbyteClient
from reconciler.systems.airbyte.listing import (
    COLLECTIONS,
    ID_FIELDS,
    Listed,
    Listings,
    client_for,
    connection_settings,
    find_workspace_id,
)
from reconciler.systems.airbyte.loading import AirbyteSelection
from reconciler.systems.airbyte.spec import AirbyteEnvironment, DestinationSpec, SourceSpec


class AirbyteProvider:
    """Airbyte in one environment."""

    system = rules.SYSTEM
    concurrent_apply = True  # each action is one resource's own calls: independent ones may run at once

    def __init__(self, client: AirbyteClient, settings: AirbyteEnvironment, selection: AirbyteSelection) -> None:
        self.client = client
        self.create_settle_seconds = client.create_settle_seconds
        """How long after a create is sent its object may still appear: Airbyte carries out a request it has read
        even when the client is gone, and the client itself gives up on an answer after its timeout."""
        self.settings = settings
        self.selection = selection
        self.prune = settings.prune
        self._workspace_id: str | None = settings.workspace_id
        self._prefetched: Listings | None = None
        """The only thing kept between calls, and a pure lookup: the configured workspace's id (by name) does not
        change while the environment file does not, and observe and apply need it (apply on a fresh instance
        looks it up once). A plan's listings started before the specs were loaded wait in `_prefetched` for the
        next observe (`adopt`)."""

    def close(self) -> None:
        self.client.close()

    def desired(self, fingerprints: Callable[[SecretRef], str]) -> list[DesiredResource]:
        return rules.desired_resources(self.selection, fingerprints)

    @property
    def workspace_id(self) -> str:
        """The configured workspace (by id, or found by name), resolved once."""
        if self._workspace_id is None:
            self._workspace_id = find_workspace_id(self.client, self.settings)
        return self._workspace_id

    def adopt(self, prefetch: Prefetch) -> None:
        """Take listings `prefetch` (`listing.prefetch`) started for the next observe, with their client; listings
        made for another server, credentials or workspace are closed, and observe lists afresh (so are those whose
        secrets read otherwise than the provider's: a secret file rotated while the specs loaded)."""
        if (
            not isinstance(prefetch, Listings)
            or connection_settings(prefetch.section) != connection_settings(self.settings)
            or not prefetch.client.same_sign_in(self.client)
        ):
            prefetch.close()
            return
        self.client.close()  # made by connect and not used yet
        self.client = prefetch.client
        self._prefetched = prefetch

    # ---- observe ------------------------------------------------------------------------

    def _list_every_kind(self) -> Listed:
        """The three listings (prefetched ones once, else listed now, at once: the round trips overlap); a failure
        is raised as the workspace lookup's, then the first kind's, in order."""
        listings, self._prefetched = self._prefetched, None
        if listings is None:
            listings = Listings(self.client, self.settings, self._workspace_id)
        listed = listings.take()
        self._workspace_id = listed.workspace_id
        return listed

    def _list(self, kind: str) -> list[dict[str, Any]]:
        return self.client.list_all(COLLECTIONS[kind], workspace_id=self.workspace_id)

    def observe(
        self, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> Observation:
        by_key = {resource.key: resource for resource in desired}
        specs: dict[ResourceKey, SourceSpec | DestinationSpec] = {
            rules.key(rules.SOURCE, spec.name): spec for spec in self.selection.sources
        }
        specs.update({rules.key(rules.DESTINATION, spec.name): spec for spec in self.selection.destinations})
        inline: list[SpecProblem] = []
        live: dict[ResourceKey, LiveResource] = {}
        depends: dict[ResourceKey, Sequence[ResourceKey]] = {}
        names_by_id: dict[str, str] = {}
        warnings: list[str] = []
        listed = self._list_every_kind()
        for kind in (rules.SOURCE, rules.DESTINATION):
            listed_kind = listed.connectors.pop(kind)
            connectors = {connector.id: connector for connector in listed_kind}
            matched = self._match(kind, by_key, records, listed_kind)
            for key, object_id in matched.items():
                connector = connectors[object_id]
                desired_one = by_key.get(key)
                live[key] = LiveResource(key, object_id, rules.connector_fields(kind, connector, desired_one))
                warning = rules.listed_unreadable_type(kind, connector, desired_one)
                warnings += [warning] if warning else []
                names_by_id[object_id] = key.name
                if key in specs:
                    inline += rules.values_at_masked_paths(specs[key], connector.masked)
        connections = {connection.id: connection for connection in listed.connections}
        matched = self._match(rules.CONNECTION, by_key, records, listed.connections)
        unmanaged = rules.unmanaged_listed_connections(listed.connections, set(matched.values()), names_by_id)
        for key, object_id in matched.items():
            fields = rules.connection_fields(connections[object_id], names_by_id, by_key.get(key))
            ends = ((rules.SOURCE, fields["source"]), (rules.DESTINATION, fields["destination"]))
            depends[key] = [rules.key(k, n) for k, n in ends]
            live[key] = LiveResource(key, object_id, fields)
        if inline:
            raise SpecError(inline)
        return Observation(live, depends, tuple(warnings), unmanaged)

    def _match(
        self,
        kind: str,
        by_key: Mapping[ResourceKey, DesiredResource],
        records: Mapping[ResourceKey, OwnershipRecord],
        listed: Sequence[rules.ListedConnector | rules.ListedConnection],
    ) -> dict[ResourceKey, str]:
        """The live object id of each wanted or owned resource of `kind` among those `listed`."""
        wanted = [key.name for key in by_key if key.kind == kind]
        objects = [LiveObject(item.id, item.label, {}) for item in listed]
        return {key: obj.id for key, obj in match_objects(self.system, kind, wanted, records, objects).items()}

    # ---- apply --------------------------------------------------------------------------

    def apply(self, action: Action, context: ApplyContext) -> ApplyOutcome:
        kind = action.key.kind
        if action.kind == ActionKind.DELETE:
            assert action.live_id is not None
            self.client.delete(COLLECTIONS[kind], action.live_id)
            return ApplyOutcome(None)
        assert action.desired is not None
        if action.kind == ActionKind.REPLACE:
            assert action.live_id is not None
            self.client.delete(COLLECTIONS[kind], action.live_id)
            return self._create(action.desired, context)
        if action.kind == ActionKind.CREATE:
            return self._create(action.desired, context)
        assert action.live_id is not None
        return self._update(action, action.live_id, context)

    def _fingerprints(self, desired: DesiredResource) -> dict[str, str]:
        return {dotted(slot.path): slot.fingerprint for slot in desired.secrets}

    def _secret_values(
        self, desired: DesiredResource, context: ApplyContext, only: set[Path] | None
    ) -> dict[Path, str]:
        return {slot.path: context.secret(slot.ref) for slot in desired.secrets if only is None or slot.path in only}

    def _find_by_name(self, kind: str, name: str) -> Callable[[], dict[str, Any] | None]:
        def find() -> dict[str, Any] | None:
            matches = [answer for answer in self._list(kind) if answer.get("name") == name]
            return matches[0] if len(matches) == 1 else None

        return find

    def _create(self, desired: DesiredResource, context: ApplyContext) -> ApplyOutcome:
        kind = desired.key.kind
        if kind == rules.CONNECTION:
            body = rules.connection_payload(desired.fields, context.ids, full=True)
            body["workspaceId"] = self.workspace_id
        else:
            secrets = self._secret_values(desired, context, None)
            body = rules.connector_payload(kind, desired, secrets, self.workspace_id, full=True)
        answer = self.client.create(COLLECTIONS[kind], body, find_existing=self._find_by_name(kind, desired.key.name))
        return ApplyOutcome(str(answer[ID_FIELDS[kind]]), self._fingerprints(desired))

    def _update(self, action: Action, live_id: str, context: ApplyContext) -> ApplyOutcome:
        assert action.desired is not None
        desired, kind = action.desired, action.key.kind
        if kind == rules.CONNECTION:
            body = rules.connection_payload(changed_fields(action), context.ids, full=False)
            if "configurations" in body:  # sent streams are rebuilt: keep what the specs leave out
                live = self.client.get(COLLECTIONS[kind], live_id).get("configurations") or {}
                sent = body["configurations"]["streams"]
                body["configurations"]["streams"] = rules.keep_live_stream_settings(sent, live.get("streams") or [])
        else:
            changed_secrets = {change.path for change in action.changes if change.secret}
            secrets = self._secret_values(desired, context, changed_secrets)
            body = rules.connector_payload(kind, desired, secrets, None, full=False)
        self.client.patch(COLLECTIONS[kind], live_id, body)
        return ApplyOutcome(live_id, self._fingerprints(desired))


def connect(root: FilePath, env: Environment, resolver: SecretResolver) -> AirbyteProvider:
    """The provider of an environment with an `airbyte:` section; its client resolves its secrets here."""
    settings = env.settings.section(rules.SYSTEM)
    selection = env.section(rules.SYSTEM, AirbyteSelection)
    if not isinstance(settings, AirbyteEnvironment) or selection is None:
        raise SpecError([SpecProblem(env.file, None, rules.SYSTEM, "no airbyte section")])
    return AirbyteProvider(client_for(settings, resolver), settings, selection)
