"""Airbyte's live listings for observe: the three kinds of one workspace at once, each paging on its own thread.

The provider's `observe` starts them and waits; for a plan, `prefetch` starts them from the
environment file's `airbyte:` section alone, before the specs are loaded and validated, and the
provider's next `observe` takes them (`AirbyteProvider.adopt`) instead of listing again. Reads
only: an apply never takes a prefetch (it lists under the environment's write lock). The threads
are daemons (`background.in_background`, and `DaemonWorkers` for the pages asked for ahead): a
prefetch abandoned for a spec error (`close`) is waited for by nothing, so an unreachable server
never delays the exit, and what it found or failed on is never reported; it asks for no further
page, and its client is closed once the request in flight is answered.
A failure is raised when the listings are taken, exactly as a listing made then would raise it:
the workspace lookup's first, then the first kind's, in order.

Each answer is turned into what observe keeps of it (`rules.ListedConnector`, `ListedConnection`)
as its page arrives, so the raw answers of a whole workspace are never held at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from reconciler.background import in_background
from reconciler.errors import ApiError, SecretError
from reconciler.secrets import SecretResolver
from reconciler.spec.secrets import SecretField
from reconciler.systems.airbyte import rules
from reconciler.systems.airbyte.client import SYSTEM, AirbyteClient
from reconciler.systems.airbyte.spec import AirbyteEnvironment

COLLECTIONS = {rules.SOURCE: "sources", rules.DESTINATION: "destinations", rules.CONNECTION: "connections"}
"""Each kind's collection, in the order observe reads them (a connection names its ends by id)."""
ID_FIELDS = {rules.SOURCE: "sourceId", rules.DESTINATION: "destinationId", rules.CONNECTION: "connectionId"}
PAGES_AHEAD = 2
"""Pages each kind's listing asks for while it reads one (`AirbyteClient.iter_list`): with three kinds at once,
at most six requests in flight, fewer than Terraform's ten."""


@dataclass
class Listed:
    """A workspace's listings as observe keeps them."""

    workspace_id: str
    connectors: dict[str, list[rules.ListedConnector]]
    """Sources and destinations, by kind."""
    connections: list[rules.ListedConnection]


def client_for(settings: AirbyteEnvironment, resolver: SecretResolver) -> AirbyteClient:
    """The client of an `airbyte:` section; its credentials are resolved here (raises `SecretError`)."""
    auth = settings.auth

    def secret(field: SecretField | None) -> str | None:
        return resolver.value(field.secret_ref) if field is not None else None

    return AirbyteClient(
        settings.url,
        client_id=auth.client_id,
        client_secret=secret(auth.client_secret),
        token=secret(auth.token),
    )


def find_workspace_id(client: AirbyteClient, settings: AirbyteEnvironment) -> str:
    """The configured workspace's id: as configured, or the one workspace with the configured name."""
    if settings.workspace_id is not None:
        return settings.workspace_id
    workspaces = client.workspaces()
    wanted = settings.workspace
    matches = [w for w in workspaces if wanted is None or w.get("name") == wanted]
    if len(matches) != 1:
        names = ", ".join(repr(w.get("name")) for w in workspaces) or "none"
        which = f"named {wanted!r}" if wanted else "(none named; more than one exists)"
        raise ApiError(SYSTEM, f"no single workspace {which}; the server has: {names}")
    return str(matches[0]["workspaceId"])


def connection_settings(settings: AirbyteEnvironment) -> tuple[object, ...]:
    """What a listing depends on in a section: the server, the credentials and the workspace."""
    return (settings.url, settings.auth, settings.workspace, settings.workspace_id)


class Listings:
    """The three listings of one workspace, started at once on daemon threads; `take` waits for them."""

    def __init__(self, client: AirbyteClient, settings: AirbyteEnvironment, workspace_id: str | None) -> None:
        self.client = client
        self.section = settings
        """The `airbyte:` section it lists for (`connection_settings` says what of it a listing depends on)."""
        self.workspace_id = workspace_id
        self._texts = rules.Texts()
        """Dropped with the listings: what observe keeps holds one copy of each repeated text."""
        self._abandoned = threading.Event()
        self._listed = in_background(self._run, "airbyte-list")
        self._listed.add_done_callback(lambda _: self._close_if_abandoned())

    def _run(self) -> Listed:
        if self.workspace_id is None:
            self.workspace_id = find_workspace_id(self.client, self.section)  # signs in once, before the kinds
        workspace_id = self.workspace_id
        if self._abandoned.is_set():
            return Listed(workspace_id, {}, [])
        connectors = {
            kind: in_background(partial(self._connectors, kind, workspace_id), f"airbyte-list-{kind}")
            for kind in (rules.SOURCE, rules.DESTINATION)
        }
        connections = in_background(partial(self._connections, workspace_id), f"airbyte-list-{rules.CONNECTION}")
        every: list[Future[Any]] = [*connectors.values(), connections]
        wait(every)  # every listing has ended before its client may be closed
        listed = {kind: future.result() for kind, future in connectors.items()}  # the first failure, in order
        return Listed(workspace_id, listed, connections.result())

    def _answers(self, kind: str, workspace_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each listed object of `kind` with its id, page after page, until the listings are abandoned."""
        id_field = ID_FIELDS[kind]
        for answer in self.client.iter_list(COLLECTIONS[kind], workspace_id=workspace_id, ahead=PAGES_AHEAD):
            if self._abandoned.is_set():
                return
            yield str(answer[id_field]), answer

    def _connectors(self, kind: str, workspace_id: str) -> list[rules.ListedConnector]:
        share = self._texts.share  # a connector's id is also a connection's end: one copy
        return [
            rules.listed_connector(kind, share(object_id), answer, share)
            for object_id, answer in self._answers(kind, workspace_id)
        ]

    def _connections(self, workspace_id: str) -> list[rules.ListedConnection]:
        share = self._texts.share
        return [
            rules.listed_connection(object_id, answer, share)
            for object_id, answer in self._answers(rules.CONNECTION, workspace_id)
        ]

    def take(self) -> Listed:
        """The workspace's listings, once all are made; a failure is raised as it came (the workspace lookup's
        first, then the first kind's, in order)."""
        return self._listed.result()

    def close(self) -> None:
        """Abandon the listings: nothing waits for them, no further page is asked for, and their client is closed
        (here when they are done, else once the request in flight is answered)."""
        self._abandoned.set()
        if self._listed.done():
            self.client.close()

    def _close_if_abandoned(self) -> None:
        # `close` sets the flag before it looks at the future, which is done before this looks at the flag:
        # one of the two always closes the client (closing it twice is harmless)
        if self._abandoned.is_set():
            self.client.close()


def prefetch(_root: Path, settings: AirbyteEnvironment, resolver: SecretResolver) -> Listings | None:
    """A plan's listings, started from the `airbyte:` section before the specs are loaded; None when a credential
    cannot be resolved yet (the provider's own client reports it, after any spec error)."""
    try:
        client = client_for(settings, resolver)
    except SecretError:
        return None
    return Listings(client, settings, settings.workspace_id)
