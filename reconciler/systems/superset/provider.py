"""Superset provider: observe in a handful of calls, apply through one assets import, verify every touched chart.

- desired: the spec selection, plus (with `replicate`) the source environment's live export of
  the chosen dashboards (one listing, one export), rewritten onto this environment's databases.
- observe: four listings (dashboards, charts, datasets, databases), one export of every desired
  or owned dashboard found, and an export of charts, datasets or databases found live but not
  under those dashboards (usually none); roles: one listing and one call per role. With
  `replicate`, `desired()` starts the listings beside the source's listing, and this instance's
  export of the replicated dashboards it holds beside the source's export; observe takes both.
- apply: the first asset action imports, in one `/api/v1/assets/import/` call, every asset the
  plan changes and what they need (`overwrite` covers charts, datasets and databases too, unlike
  the dashboard import); the other asset actions find their asset already imported and write
  nothing. Database passwords go in the `passwords` field. Then every chart of every dashboard
  the import touched runs its query (`verify: true`): one listing and one export of those charts
  give each chart's saved query context as this Superset holds it (a chart with none runs the
  query its own params describe), and the charts of one dataset run a batch to a chart data
  request (rules/chart_batches.py), a failed batch again one chart a request. Any failure, or a
  chart that could not be checked at all, fails the apply, naming the charts; the import itself
  stays, as it is what the specs ask for.
- roles: created by name; their permission set is replaced whole with this instance's ids for the
  permissions the spec names (data access matched by database and table name).
- deletes (only with `prune`, only what reconciler owns) go through each asset's own endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path as FilePath

from reconciler.background import in_background
from reconciler.core.diff import diff_resource
from reconciler.core.identity import LiveObject, match_objects
from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey, SecretSlot, digest_of
from reconciler.core.plan import Action, ActionKind, Override, Refusal
from reconciler.errors import ApiError, PlanError, SpecError, SpecProblem
from reconciler.providers.base import ApplyContext, ApplyOutcome, Observation
from reconciler.secrets import SecretResolver
from reconciler.spec.loader import Environment
from reconciler.spec.secrets import SecretRef
from reconciler.systems.superset.client import SupersetClient, SupersetError
from reconciler.systems.superset.listing import Listing, union
from reconciler.systems.superset.loading import SupersetSelection
from reconciler.systems.superset.rules.assets import (
    CHART,
    DASHBOARD,
    DATABASE,
    DATASET,
    FOLDER_OF,
    PASSWORD_PATH,
    ROLE,
    SYSTEM,
    assets_by_key,
    depends_of,
    desired_assets,
    fields_of,
    names_of,
    trim_live,
)
from reconciler.systems.superset.rules.bundle import Asset, Bundle, read_bundle
from reconciler.systems.superset.rules.chart_batches import (
    BatchSizer,
    ChartQuery,
    batch_context,
    chart_query,
    groups,
    split_answer,
)
from reconciler.systems.superset.rules.chart_query import UncheckableChart
from reconciler.systems.superset.rules.desired import ListedDashboard, desired_bundle, select_dashboards
from reconciler.systems.superset.rules.guards import (
    BUILTIN_KEPT,
    SourceYield,
    builtin_role,
    chart_dependents,
    dataset_dependents,
    empty_source,
    lost_security_access,
    shrunken_source,
)
from reconciler.systems.superset.rules.importing import import_request
from reconciler.systems.superset.rules.roles import (
    PERMISSIONS,
    LiveDataset,
    PermissionView,
    desired_roles,
    resolve_permissions,
    role_fields,
    role_pairs,
)
from reconciler.systems.superset.rules.verify import (
    ChartResult,
    ChartToRun,
    Outcome,
    Verification,
    charts_to_verify,
    result_error,
)
from reconciler.systems.superset.spec import SupersetEnvironment

Connect = Callable[[], SupersetClient]
VERIFY_BATCH = 20
"""At most this many charts of one dataset in one chart data request: fewer requests, each still small."""
VERIFY_FIRST_BATCH = 5
"""Charts in a request before any has answered (the time a query takes is not known yet)."""
VERIFY_BUDGET_SECONDS = 10.0
"""What a chart data request should take at most, by the time per query seen so far: a third of the client's
30 s timeout, so a slow warehouse gets smaller requests instead of timeouts (`BatchSizer`)."""
VERIFY_CONCURRENCY = 4
"""Chart data requests at once: what one Superset (its gunicorn threads, its warehouse pool) takes without queueing."""
EXPORT_IDS = 200
"""Chart ids in one export request (they travel in the URL)."""
NO_QUERY_CONTEXT_NOTE = "no saved query context: ran the query its params describe"


class SupersetVerificationError(ApiError):
    """Charts failed to run their queries after an apply."""


@dataclass(frozen=True)
class SupersetObservation:
    """The Superset part of an observation, for apply: what observe compared (the desired resources and
    bundle, what to import from; the records) and the live listing (this instance's ids and uuids)."""

    bundle: Bundle
    listing: Listing
    desired: Mapping[ResourceKey, DesiredResource]
    records: Mapping[ResourceKey, OwnershipRecord]
    imported: dict[ResourceKey, str] = field(default_factory=dict)
    """What this plan's import brought (key -> uuid), filled by the plan's first asset action so the others
    find theirs imported; it lives and dies with the observation of one plan, never with the provider."""


def to_import(seen: SupersetObservation, live: Mapping[ResourceKey, LiveResource]) -> set[ResourceKey]:
    """The desired assets missing live or differing from it (a rotated password too): what the plan's one
    import brings in. Worked out by the first asset action that applies, from the observation alone."""
    assets = assets_by_key(seen.bundle)
    return {
        key
        for key, resource in seen.desired.items()
        if key in assets and (key not in live or diff_resource(resource, live[key], seen.records.get(key)))
    }


class SupersetProvider:
    """Superset in one environment."""

    system = SYSTEM

    def __init__(
        self,
        connect: Connect,
        selection: SupersetSelection,
        environment: str,
        connect_source: Connect | None = None,
        shrink_ratio: float = 0.5,
    ) -> None:
        self._connect = connect
        self._connect_source = connect_source
        self._clients: dict[str, SupersetClient] = {}
        self.selection = selection
        self.settings = selection.settings
        self.environment = environment
        self.prune = selection.settings.prune
        self.shrink_ratio = shrink_ratio
        """More than this share of the dashboards replicated here gone from the source refuses the plan."""
        self.clock: Callable[[], float] = time.monotonic
        """Times each chart data request, to size the next (`BatchSizer`)."""
        self._bundle: Bundle | None = None
        """The desired bundle, read once per plan (`desired()` reads the replication source again); a fresh
        instance reads it on first use. Apply takes the one the observation compared, never this."""
        self._source_yield: SourceYield | None = None
        """What the replication source gave the bundle above (read with it, for observe's check)."""
        self._listing: Future[Listing] | None = None
        """This environment's listing, started by `desired()` beside the replication source's reads and
        taken (once) by the `observe()` of the same plan."""
        self._reading_early = False
        """True while `desired()` runs: `_replicated` then starts the early export below."""
        self._early_export: Future[tuple[list[int], Bundle]] | None = None
        """This environment's export of the replicated dashboards it already holds (their ids, the bundle),
        started once the source's listing names them, beside the source's export; observe's export takes it
        when it asks for those very dashboards."""

    # ---- clients ------------------------------------------------------------------------

    def _client(self, which: str, connect: Connect) -> SupersetClient:
        if which not in self._clients:
            self._clients[which] = connect()
        return self._clients[which]

    @property
    def client(self) -> SupersetClient:
        """This environment's Superset (signs in on first use)."""
        return self._client("target", self._connect)

    @property
    def source_client(self) -> SupersetClient | None:
        """The replication source's Superset, once desired state has read it."""
        return self._clients.get("source")

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    # ---- desired ------------------------------------------------------------------------

    def _replicated(self) -> Bundle | None:
        source, replicate = self.selection.source, self.settings.replicate
        if source is None or replicate is None or self._connect_source is None:
            return None
        client = self._client("source", self._connect_source)
        listed = client.list_dashboards()
        chosen = select_dashboards(
            [ListedDashboard(d.id, d.slug, d.tags, d.owners) for d in listed], replicate.dashboards
        )
        self._source_yield = SourceYield(source.environment, len(listed), len(chosen))
        if self._reading_early and self._listing is not None:
            uuids = {d.id: d.uuid for d in listed}
            wanted, held = [uuids[d.id] for d in chosen], self._listing
            self._early_export = in_background(lambda: self._export_held(held, wanted), "superset-early-export")
        return read_bundle(client.export_dashboards([d.id for d in chosen])) if chosen else Bundle()

    def _export_held(self, listing: Future[Listing], uuids: Sequence[str]) -> tuple[list[int], Bundle]:
        """This environment's export of the dashboards among `uuids` it holds (their ids, sorted, and the bundle)."""
        held = listing.result().dashboards
        ids = sorted(i for uuid in uuids if (i := held.get(uuid)) is not None)
        return ids, read_bundle(self.client.export(DASHBOARD, ids)) if ids else Bundle()

    def desired_bundle(self) -> Bundle:
        """The assets this environment should hold (reads the replication source once per session)."""
        if self._bundle is None:
            replicate = self.settings.replicate
            self._bundle = desired_bundle(
                self.selection.bundle,
                self.settings.databases,
                self._replicated(),
                replicate.databases if replicate else None,
                self.selection.source.environment if self.selection.source else "",
            )
        return self._bundle

    def desired(self, fingerprints: Callable[[SecretRef], str]) -> list[DesiredResource]:
        self._bundle = None  # a new plan reads the replication source again
        # observe's listing of this environment needs nothing desired state gives: it runs beside the
        # source's listing and export, and so does its export of the replicated dashboards it holds
        # (`_replicated` starts it once the source's listing names them); daemon threads, so a plan that
        # fails before observe takes them exits without waiting for them
        self._early_export = None
        client = self.client
        self._listing = in_background(lambda: Listing.read(client), "superset-early-listing")
        self._reading_early = True
        try:
            bundle = self.desired_bundle()
        finally:
            self._reading_early = False
        slots = {}
        for database in bundle.of("databases"):
            connection = self.settings.databases.get(database.name)
            if connection is not None and connection.password is not None:
                ref = connection.password.secret_ref
                slots[database.name] = SecretSlot(PASSWORD_PATH, ref.describe(), fingerprints(ref))
        return desired_assets(bundle, slots) + desired_roles(self.selection.roles)

    # ---- observe ------------------------------------------------------------------------

    def _live_uuid(
        self, listing: Listing, key: ResourceKey, asset: Asset, record: OwnershipRecord | None
    ) -> str | None:
        """The live asset a desired one is: by uuid (dashboards, charts) or by name (datasets, databases)."""
        if key.kind in (DATASET, DATABASE):
            row = (listing.datasets if key.kind == DATASET else listing.databases).get(key.name)
            return row[1] if row else None
        if key.kind == DASHBOARD:
            if asset.uuid in listing.dashboards:
                return asset.uuid
            other = listing.slugs.get(str(asset.content.get("slug")))
            if other is not None:
                owned = " (reconciler created it)" if record is not None and record.id == other else ""
                raise ApiError(
                    SYSTEM,
                    f"{self.environment} has a dashboard with slug {asset.content.get('slug')!r} under another uuid "
                    f"({other}){owned}; the specs have {asset.uuid}. Delete or re-slug one of them; reconciler will "
                    "not guess which is meant",
                )
            return None
        return asset.uuid if asset.uuid in listing.charts else None

    def _export(
        self, listing: Listing, found: Mapping[str, set[str]], early: Future[tuple[list[int], Bundle]] | None = None
    ) -> Bundle:
        """The found assets' exports: one call for the dashboards (with all they use), then one per kind
        only for what no earlier export held (a dataset no exported dashboard uses, say). `early`, the
        export `desired()` started, stands for the dashboards' when it holds only found dashboards."""
        exported = Bundle()
        for kind in (DASHBOARD, CHART, DATASET, DATABASE):
            missing = found[kind] - set(exported.assets.get(FOLDER_OF[kind], {}))
            ids = sorted(i for uuid in missing if (i := listing.id_of(kind, uuid)) is not None)
            if kind == DASHBOARD and ids and early is not None:
                early_ids, early_bundle = early.result()
                if early_ids and set(early_ids) <= set(ids):
                    exported = early_bundle
                    ids = sorted(set(ids) - set(early_ids))
            if ids:
                exported = union([exported, read_bundle(self.client.export(kind, ids))])
        return exported

    def observe(
        self, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> Observation:
        started, self._listing = self._listing, None
        listing = started.result() if started is not None else Listing.read(self.client)
        bundle = self.desired_bundle()
        assets = assets_by_key(bundle)
        wanted = {resource.key: resource for resource in desired}
        matched: dict[ResourceKey, str] = {}
        found: dict[str, set[str]] = {kind: set() for kind in (DASHBOARD, CHART, DATASET, DATABASE)}
        for resource in desired:
            asset = assets.get(resource.key)
            if asset is not None and (uuid := self._live_uuid(listing, resource.key, asset, records.get(resource.key))):
                matched[resource.key] = uuid
                found[resource.key.kind].add(uuid)
        # An owned key whose asset a desired key already claims was renamed (a chart's name or a
        # dashboard's slug is part of its key): its record is dropped, the asset is not deleted.
        claimed = set(matched.values())
        owned_only = {k: r for k, r in records.items() if k not in matched and k.kind != ROLE and k not in wanted}
        for key, record in owned_only.items():
            if record.id not in claimed and listing.id_of(key.kind, record.id) is not None:
                matched[key] = record.id
                found[key.kind].add(record.id)
        early, self._early_export = self._early_export, None
        live_bundle = self._export(listing, found, early)
        names = names_of(live_bundle)
        live: dict[ResourceKey, LiveResource] = {}
        depends: dict[ResourceKey, Sequence[ResourceKey]] = {}
        for key, uuid in matched.items():
            asset = live_bundle.assets.get(FOLDER_OF[key.kind], {}).get(uuid)
            want = wanted.get(key)
            fields = fields_of(asset, names) if asset is not None and want is not None else {}
            live[key] = LiveResource(key, uuid, trim_live(want.fields, fields) if want is not None else fields)
            if asset is not None and want is None:
                depends[key] = depends_of(asset, names)
        live.update(self._observe_roles(desired, records))
        protected = {k: BUILTIN_KEPT for k in records if k.kind == ROLE and self._builtin(k, live.get(k))}
        refusals, warnings = self._source_refusals(records, listing, set(matched[k] for k in wanted if k in matched))
        unmanaged, blocked = self._delete_dependents(records, wanted, matched, listing)
        refusals += blocked + self._own_access(wanted, records, live, protected)
        return Observation(
            live,
            depends,
            tuple(warnings),
            unmanaged,
            protected,
            tuple(refusals),
            payload=SupersetObservation(bundle, listing, wanted, dict(records)),
        )

    # ---- what the plan refuses --------------------------------------------------------------

    @staticmethod
    def _builtin(key: ResourceKey, live: LiveResource | None) -> bool:
        """An owned role that is one of Superset's built-ins, by its spec name or its live one."""
        names = [key.name, *([str(live.fields.get("name"))] if live is not None else [])]
        return any(builtin_role(name) is not None for name in names)

    def _source_refusals(
        self, records: Mapping[ResourceKey, OwnershipRecord], listing: Listing, wanted_uuids: set[str]
    ) -> tuple[list[Refusal], list[str]]:
        """A replication source yielding nothing, or far less than what this environment holds from it."""
        source = self._source_yield
        if source is None:
            return [], []
        specs = {asset.uuid for asset in self.selection.bundle.of("dashboards")}
        held = {
            key.name: record.id
            for key, record in records.items()
            if key.kind == DASHBOARD and record.id in listing.dashboards and record.id not in specs
        }
        gone = [name for name, uuid in held.items() if uuid not in wanted_uuids]
        empty = empty_source(source, len(held), self.environment)
        if empty is not None:
            return [Refusal(empty, Override.SOURCE_SHRINK)], []
        shrunk = shrunken_source(source, len(held), gone, self.shrink_ratio, self.environment)
        if shrunk is None:
            return [], []
        if not self.prune:
            return [], [f"{shrunk}: left in place, pruning is off"]
        return [Refusal(f"{shrunk}, and prune would delete them", Override.SOURCE_SHRINK)], []

    def _delete_dependents(
        self,
        records: Mapping[ResourceKey, OwnershipRecord],
        wanted: Mapping[ResourceKey, DesiredResource],
        matched: Mapping[ResourceKey, str],
        listing: Listing,
    ) -> tuple[dict[ResourceKey, tuple[str, ...]], list[Refusal]]:
        """What a prune of owned datasets and databases would break that the specs do not own: charts on a
        dataset (left without it: the plan names them and refuses unless allowed), and datasets on a database
        (Superset refuses that delete: the plan refuses it outright)."""
        if not self.prune:
            return {}, []
        charts = {listing.charts[uuid] for k, uuid in matched.items() if k.kind == CHART and uuid in listing.charts}
        datasets = {i for k, uuid in matched.items() if k.kind == DATASET and (i := listing.id_of(DATASET, uuid))}
        unmanaged: dict[ResourceKey, tuple[str, ...]] = {}
        refusals: list[Refusal] = []
        for key in sorted(k for k in records if k in matched and k not in wanted):
            live_id = listing.id_of(key.kind, matched[key])
            if key.kind == DATASET and live_id is not None:
                if found := chart_dependents(live_id, listing.chart_rows, charts):
                    unmanaged[key] = found
            elif key.kind == DATABASE and live_id is not None:
                name = next(name for name, (i, _) in listing.databases.items() if i == live_id)
                if found := dataset_dependents(name, listing.dataset_rows, datasets):
                    refusals.append(
                        Refusal(
                            f"{key} still has datasets the specs do not own ({'; '.join(found)}), and Superset "
                            "refuses to delete a database with datasets: delete or adopt them first"
                        )
                    )
        return unmanaged, refusals

    def _own_access(
        self,
        wanted: Mapping[ResourceKey, DesiredResource],
        records: Mapping[ResourceKey, OwnershipRecord],
        live: Mapping[ResourceKey, LiveResource],
        protected: Mapping[ResourceKey, str],
    ) -> list[Refusal]:
        """A plan that would take the security API away from the user reconciler signs in as (it could then
        neither manage nor repair roles, nor could anyone else signing in with those roles)."""
        specs = {spec.name: spec for spec in self.selection.roles}
        after: dict[str, list[tuple[str, str]] | None] = {}
        for key, resource in wanted.items():
            role = live.get(key)
            if key.kind == ROLE and role is not None and role.fields.get(PERMISSIONS) != resource.fields[PERMISSIONS]:
                after[str(role.fields.get("name"))] = role_pairs(specs[key.name])
        if self.prune:
            for key in records:
                if key.kind == ROLE and key not in wanted and key in live and key not in protected:
                    after[str(live[key].fields.get("name"))] = None
        if not after:
            return []
        try:
            mine = self.client.my_roles()
        except SupersetError as exc:
            return [Refusal(f"the plan changes roles, and the signed-in user's own roles could not be read ({exc})")]
        lost = lost_security_access(mine, after)
        if not lost:
            return []
        changed = ", ".join(sorted(role for role in after if role in mine))
        return [
            Refusal(
                f"the plan would take {', '.join(lost)} away from the user reconciler signs in as (through its "
                f"role(s) {changed}): it would lock itself out of Superset's roles or asset APIs. Keep those"
            )
        ]

    def _observe_roles(
        self, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> dict[ResourceKey, LiveResource]:
        wanted = [r.key.name for r in desired if r.key.kind == ROLE]
        if not wanted and not any(k.kind == ROLE for k in records):
            return {}
        listed = [LiveObject(str(role.id), role.name, {}) for role in self.client.list_roles()]
        # the one identity matcher: a recorded role is its recorded id or nothing; only an unrecorded one by name
        matched = match_objects(SYSTEM, ROLE, wanted, records, listed, adopt_with=None)
        live = {}
        for key, role in sorted(matched.items()):
            pairs = [(p.permission, p.view_menu) for p in self.client.role_permissions(int(role.id))]
            live[key] = LiveResource(key, role.id, role_fields(role.name, pairs))
        return live

    # ---- apply --------------------------------------------------------------------------

    def apply(self, action: Action, context: ApplyContext) -> ApplyOutcome:
        seen = context.observation.payload
        if not isinstance(seen, SupersetObservation):
            raise PlanError(f"{action.key}: apply needs the Superset observation the plan was made from")
        if action.kind == ActionKind.DELETE:
            return self._delete(action, seen.listing)
        assert action.desired is not None
        current = seen.desired.get(action.key)
        if current is None or digest_of(current.fields) != digest_of(action.desired.fields):
            raise PlanError(
                f"{action.key} is not what the specs (or the replicated dashboards) now say; plan again and review"
            )
        fingerprints = {".".join(slot.path): slot.fingerprint for slot in action.desired.secrets}
        if action.key.kind == ROLE:
            return ApplyOutcome(self._apply_role(action, seen.listing), fingerprints)
        notes: tuple[str, ...] = ()
        if action.key not in seen.imported:  # else it came with the import an earlier action of the plan made
            notes = self._import(seen, to_import(seen, context.observation.live) | {action.key}, context)
        return ApplyOutcome(seen.imported[action.key], fingerprints, notes)

    def _password(self, context: ApplyContext) -> Callable[[str], str | None]:
        def password(database: str) -> str | None:
            connection = self.settings.databases.get(database)
            if connection is None or connection.password is None:
                return None
            return context.secret(connection.password.secret_ref.describe())

        return password

    def _import(self, seen: SupersetObservation, keys: set[ResourceKey], context: ApplyContext) -> tuple[str, ...]:
        bundle, listing = seen.bundle, seen.listing
        assets = assets_by_key(bundle)
        touched = [assets[key].uuid for key in sorted(keys) if key in assets]
        request = import_request(
            bundle, touched, listing.uuids(DATABASE), listing.uuids(DATASET), self._password(context)
        )
        started = time.monotonic()
        self.client.import_assets(request.zip_bytes, request.passwords)
        imported = time.monotonic()
        names = names_of(request.bundle)
        for asset in request.bundle.all_assets():
            seen.imported[names.key(asset)] = asset.uuid
        notes = [f"imported {request.describe()} in one bundle ({imported - started:.1f} s)"]
        if self.settings.verify:
            verification = self.run_charts(charts_to_verify(bundle, touched))
            if not verification.ok:
                raise SupersetVerificationError(
                    SYSTEM,
                    f"imported {request.describe()}, then {verification.failure_message()}\n"
                    f"The import stays (it is what the specs say). Fix the data or the charts, then check with "
                    f"`reconcile verify superset --env {self.environment}`.",
                )
            notes.append(f"{verification.summary()} ({time.monotonic() - imported:.1f} s)")
        return tuple(notes)

    def _delete(self, action: Action, listing: Listing) -> ApplyOutcome:
        assert action.live_id is not None
        if action.key.kind == ROLE:
            self.client.delete_role(int(action.live_id))
            return ApplyOutcome(None)
        live_id = listing.id_of(action.key.kind, action.live_id)
        if live_id is not None:
            delete = {
                DASHBOARD: self.client.delete_dashboard,
                DATASET: self.client.delete_dataset,
                DATABASE: self.client.delete_database,
            }.get(action.key.kind, self.client.delete_chart)
            delete(live_id)
        return ApplyOutcome(None)

    def _apply_role(self, action: Action, listing: Listing) -> str:
        spec = next(role for role in self.selection.roles if role.name == action.key.name)
        # read now: an import earlier in this apply brings new datasets and their data-access permissions
        views = [PermissionView(p.id, p.permission, p.view_menu) for p in self.client.list_permission_view_menus()]
        rows = listing.dataset_rows
        if any(access.schema_ for access in spec.datasets):
            rows = [LiveDataset(d.id, d.database_name, d.schema, d.table_name) for d in self.client.list_datasets()]
        ids = resolve_permissions(spec, views, rows)
        role_id = int(action.live_id) if action.live_id else self.client.create_role(spec.name)
        self.client.set_role_permissions(role_id, ids)
        return str(role_id)

    # ---- verify -------------------------------------------------------------------------

    def _run_query(self, chart: ChartToRun, query: ChartQuery) -> ChartResult:
        """One chart in a request of its own: its error, if any, is its own."""
        try:
            answer = self.client.query_chart_data(batch_context([query]))
        except SupersetError as exc:
            return ChartResult(chart, Outcome.FAILED, exc.message)
        return _result(chart, query, answer)

    def _run_batch(self, batch: Sequence[tuple[ChartToRun, ChartQuery]], sizer: BatchSizer) -> list[ChartResult]:
        """The charts of one batch in one request; when it fails as a whole (Superset stops at the first
        failing query and names none), each chart again in a request of its own, so the failing one is named.
        Each request's time per chart goes to `sizer`."""
        queries = [query for _, query in batch]
        parts = None
        if len(batch) > 1:
            started = self.clock()
            try:
                parts = split_answer(self.client.query_chart_data(batch_context(queries)), queries)
            except SupersetError:
                parts = None
            finally:
                sizer.ended(len(batch), self.clock() - started)
        if parts is None:
            results = []
            for chart, query in batch:
                started = self.clock()
                results.append(self._run_query(chart, query))
                sizer.ended(1, self.clock() - started)
            return results
        return [_result(chart, query, part) for (chart, query), part in zip(batch, parts, strict=True)]

    def _chart_queries(
        self, charts: Sequence[ChartToRun]
    ) -> tuple[list[tuple[ChartToRun, ChartQuery]], dict[str, ChartResult]]:
        """Each chart's query as this environment holds it (one listing, one export of the charts), or
        the result that says why it cannot run."""
        refs = {ref.uuid: ref for ref in self.client.list_charts()}
        ids = sorted(refs[chart.uuid].id for chart in charts if chart.uuid in refs)
        exported = [
            read_bundle(self.client.export("chart", ids[i : i + EXPORT_IDS])) for i in range(0, len(ids), EXPORT_IDS)
        ]
        contents = {asset.uuid: asset.content for bundle in exported for asset in bundle.of("charts")}
        runnable: list[tuple[ChartToRun, ChartQuery]] = []
        done: dict[str, ChartResult] = {}
        for chart in charts:
            ref, content = refs.get(chart.uuid), contents.get(chart.uuid)
            if ref is None or content is None:
                done[chart.uuid] = ChartResult(chart, Outcome.FAILED, f"not in {self.environment}'s Superset")
            elif ref.dataset_id is None:
                done[chart.uuid] = ChartResult(chart, Outcome.UNCHECKED, "it has no dataset")
            else:
                try:
                    runnable.append((chart, chart_query(content, ref.dataset_id)))
                except UncheckableChart as why:
                    done[chart.uuid] = ChartResult(chart, Outcome.UNCHECKED, f"no saved query context, and {why}")
        return runnable, done

    def run_charts(self, charts: Sequence[ChartToRun]) -> Verification:
        """Run each chart's query in this environment (bypassing Superset's cache): the charts of one
        dataset a batch at a time, a few batches at once."""
        if not charts:
            return Verification(self.environment, ())
        runnable, results = self._chart_queries(charts)
        waiting = groups(runnable)
        sizer = BatchSizer(VERIFY_BUDGET_SECONDS, VERIFY_BATCH, VERIFY_FIRST_BATCH)
        with ThreadPoolExecutor(max_workers=VERIFY_CONCURRENCY) as pool:
            running: set[Future[list[ChartResult]]] = set()
            while waiting or running:
                while waiting and len(running) < VERIFY_CONCURRENCY:  # the next request, sized by what ended
                    size = sizer.size()
                    batch, waiting[0] = waiting[0][:size], waiting[0][size:]
                    if not waiting[0]:
                        waiting.pop(0)
                    running.add(pool.submit(self._run_batch, batch, sizer))
                ended, running = wait(running, return_when=FIRST_COMPLETED)
                for future in ended:
                    results.update((result.chart.uuid, result) for result in future.result())
        return Verification(self.environment, tuple(results[chart.uuid] for chart in charts))

    def verify(self) -> Verification:
        """Every chart of every dashboard this environment should have."""
        return self.run_charts(charts_to_verify(self.desired_bundle()))


def _result(chart: ChartToRun, query: ChartQuery, answer: object) -> ChartResult:
    error = result_error(answer)
    if error:
        return ChartResult(chart, Outcome.FAILED, error)
    return ChartResult(chart, Outcome.OK, NO_QUERY_CONTEXT_NOTE if query.from_params else "")


def _client_factory(settings: SupersetEnvironment, resolver: SecretResolver) -> Callable[[], SupersetClient]:
    """A Superset client made on first use: its secrets are resolved only when it is needed."""

    def make() -> SupersetClient:
        auth = settings.auth
        password = resolver.value(auth.password.secret_ref) if auth.password else None
        token = resolver.value(auth.token.secret_ref) if auth.token else None
        return SupersetClient(settings.url, username=auth.username, password=password, access_token=token)

    return make


def connect(root: FilePath, env: Environment, resolver: SecretResolver) -> SupersetProvider:
    """The provider of an environment with a `superset:` section (and of its replication source's Superset)."""
    selection = env.section(SYSTEM, SupersetSelection)
    if selection is None:
        raise SpecError([SpecProblem(env.file, None, SYSTEM, "no superset section")])
    source = selection.source
    connect_source = _client_factory(source.settings, resolver) if source is not None else None
    return SupersetProvider(
        _client_factory(selection.settings, resolver),
        selection,
        env.name,
        connect_source,
        env.settings.state.mass_delete_ratio,
    )
