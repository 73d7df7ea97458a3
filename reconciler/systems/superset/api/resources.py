"""Superset client, resources: list, read, create, update, delete, export and import assets; run chart data.

A part of SupersetClient (client.py), on the plumbing of calls.py. Dashboards, charts,
datasets and databases; lists come back as small typed refs, single objects as Superset's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.systems.superset.api.calls import SupersetCalls, rison
from reconciler.systems.superset.api.errors import SupersetResponseError


@dataclass(frozen=True)
class DashboardRef:
    id: int
    uuid: str
    slug: str | None
    title: str
    tags: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    """Each owner's e-mail and full name."""


def _owner_names(owner: Mapping[str, Any]) -> list[str]:
    full = " ".join(str(owner[part]) for part in ("first_name", "last_name") if owner.get(part))
    return [name for name in (owner.get("email"), full) if name]


@dataclass(frozen=True)
class ChartRef:
    id: int
    uuid: str
    name: str
    viz_type: str
    dataset_id: int | None
    dashboard_ids: tuple[int, ...]


@dataclass(frozen=True)
class DatasetRef:
    id: int
    uuid: str
    table_name: str
    schema: str | None
    sql: str | None
    database_id: int
    database_name: str


@dataclass(frozen=True)
class DatabaseRef:
    id: int
    uuid: str
    name: str
    backend: str


class ResourceCalls(SupersetCalls):
    """The dashboard, chart, dataset and database endpoints, and the assets import."""

    # ---- listing ----------------------------------------------------------------------------

    def list_dashboards(self) -> list[DashboardRef]:
        columns = ["id", "uuid", "slug", "dashboard_title", "tags.name", "owners.email"]
        columns += ["owners.first_name", "owners.last_name"]
        return [
            DashboardRef(
                row["id"],
                str(row["uuid"]),
                row.get("slug"),
                row["dashboard_title"],
                tuple(sorted(str(tag["name"]) for tag in row.get("tags") or [])),
                tuple(sorted({name for owner in row.get("owners") or [] for name in _owner_names(owner)})),
            )
            for row in self.iter_pages("/api/v1/dashboard/", q={"columns": columns})
        ]

    def list_charts(self) -> list[ChartRef]:
        columns = ["id", "uuid", "slice_name", "viz_type", "datasource_id", "dashboards.id"]
        return [
            ChartRef(
                row["id"],
                str(row["uuid"]),
                row["slice_name"],
                row.get("viz_type") or "",
                row.get("datasource_id"),
                tuple(sorted(d["id"] for d in row.get("dashboards") or [])),
            )
            for row in self.iter_pages("/api/v1/chart/", q={"columns": columns})
        ]

    def list_datasets(self) -> list[DatasetRef]:
        columns = ["id", "uuid", "table_name", "schema", "sql", "database.id", "database.database_name"]
        return [
            DatasetRef(
                row["id"],
                str(row["uuid"]),
                row["table_name"],
                row.get("schema"),
                row.get("sql"),
                row["database"]["id"],
                row["database"]["database_name"],
            )
            for row in self.iter_pages("/api/v1/dataset/", q={"columns": columns})
        ]

    def list_databases(self) -> list[DatabaseRef]:
        columns = ["id", "uuid", "database_name", "backend"]
        return [
            DatabaseRef(row["id"], str(row["uuid"]), row["database_name"], row.get("backend") or "")
            for row in self.iter_pages("/api/v1/database/", q={"columns": columns})
        ]

    # ---- single objects ---------------------------------------------------------------------

    def get_dashboard(self, id_or_slug: int | str) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/v1/dashboard/{id_or_slug}")["result"]
        return result

    def get_chart(self, chart_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/v1/chart/{chart_id}")["result"]
        return result

    def get_dataset(self, dataset_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/v1/dataset/{dataset_id}")["result"]
        return result

    def get_database(self, database_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/v1/database/{database_id}")["result"]
        return result

    def create_database(self, name: str, sqlalchemy_uri: str, **fields: Any) -> int:
        """A database connection; returns its id (`fields`: expose_in_sqllab, extra, ...)."""
        return self._create("/api/v1/database/", {"database_name": name, "sqlalchemy_uri": sqlalchemy_uri, **fields})

    def create_dataset(
        self, database_id: int, table_name: str, *, schema: str | None = None, sql: str | None = None
    ) -> int:
        """A physical dataset (a table), or a virtual one when `sql` is given; returns its id."""
        payload: dict[str, Any] = {"database": database_id, "table_name": table_name}
        if schema is not None:
            payload["schema"] = schema
        if sql is not None:
            payload["sql"] = sql
        return self._create("/api/v1/dataset/", payload)

    def create_chart(self, payload: Mapping[str, Any]) -> int:
        """A chart (`slice_name`, `viz_type`, `datasource_id`, `datasource_type`, `params`, ...)."""
        return self._create("/api/v1/chart/", payload)

    def create_dashboard(self, payload: Mapping[str, Any]) -> int:
        """A dashboard (`dashboard_title`, `slug`, `position_json`, `json_metadata`, ...)."""
        return self._create("/api/v1/dashboard/", payload)

    def update_database(self, database_id: int, payload: Mapping[str, Any]) -> None:
        self._update(f"/api/v1/database/{database_id}", payload)

    def update_dataset(self, dataset_id: int, payload: Mapping[str, Any]) -> None:
        self._update(f"/api/v1/dataset/{dataset_id}", payload)

    def update_chart(self, chart_id: int, payload: Mapping[str, Any]) -> None:
        self._update(f"/api/v1/chart/{chart_id}", payload)

    def update_dashboard(self, dashboard_id: int, payload: Mapping[str, Any]) -> None:
        self._update(f"/api/v1/dashboard/{dashboard_id}", payload)

    def delete_database(self, database_id: int) -> None:
        self._delete(f"/api/v1/database/{database_id}")

    def delete_dataset(self, dataset_id: int) -> None:
        self._delete(f"/api/v1/dataset/{dataset_id}")

    def delete_chart(self, chart_id: int) -> None:
        self._delete(f"/api/v1/chart/{chart_id}")

    def delete_dashboard(self, dashboard_id: int) -> None:
        self._delete(f"/api/v1/dashboard/{dashboard_id}")

    # ---- export and import ------------------------------------------------------------------

    def export_dashboards(self, ids: Sequence[int]) -> bytes:
        """One ZIP bundle holding the dashboards and every chart, dataset and database they use."""
        return self.export("dashboard", ids)

    def export(self, resource: str, ids: Sequence[int]) -> bytes:
        """One ZIP bundle of `dashboard`s, `chart`s, `dataset`s or `database`s and what they use."""
        if not ids:
            raise ValueError(f"exporting {resource}s needs at least one id")
        path = f"/api/v1/{resource}/export/"
        response = self._send("GET", path, params={"q": rison(list(ids))})
        if response.status_code != 200:
            raise self._fail(response, "GET", path)
        if not response.content.startswith(b"PK"):
            content_type = response.headers.get("content-type", "")
            raise SupersetResponseError(
                f"expected a ZIP, got {content_type}: {response.text[:200]}", status=200, method="GET", path=path
            )
        return response.content

    def _import(self, path: str, field: str, bundle: bytes, form: dict[str, str]) -> None:
        files = {field: ("bundle.zip", bundle, "application/zip")}
        answer = self.request_json("POST", path, ok=(200,), files=files, data=form)
        if answer.get("message") != "OK":
            raise SupersetResponseError(f"import answered {answer}", status=200, method="POST", path=path)

    def import_assets(
        self, bundle: bytes, passwords: Mapping[str, str] | None = None, *, overwrite: bool = True
    ) -> None:
        """Import a `type: assets` bundle; Superset overwrites every asset in it (the only mode it has).

        `passwords` maps database files in the bundle (`databases/NAME.yaml`) to their passwords.
        """
        if not overwrite:
            raise ValueError("/api/v1/assets/import/ always overwrites; use import_dashboards(overwrite=False)")
        self._import("/api/v1/assets/import/", "bundle", bundle, {"passwords": json.dumps(dict(passwords or {}))})

    def import_dashboards(
        self, bundle: bytes, passwords: Mapping[str, str] | None = None, *, overwrite: bool = True
    ) -> None:
        """Import a `type: Dashboard` bundle. Even with overwrite only the dashboards are overwritten:
        charts, datasets and databases already there are left as they are (use `import_assets`)."""
        form = {"passwords": json.dumps(dict(passwords or {})), "overwrite": "true" if overwrite else "false"}
        self._import("/api/v1/dashboard/import/", "formData", bundle, form)

    # ---- chart data -------------------------------------------------------------------------

    def chart_data(self, chart_id: int, *, force: bool = False) -> dict[str, Any]:
        """Run a chart's saved query (charts need a saved `query_context`); `force` skips Superset's cache."""
        params = {"force": "true"} if force else None
        return self.request_json("GET", f"/api/v1/chart/{chart_id}/data/", params=params)

    def query_chart_data(self, query_context: Mapping[str, Any]) -> dict[str, Any]:
        """Run a query context given in full (`POST /api/v1/chart/data`); reads, so not a write."""
        return self.request_json("POST", "/api/v1/chart/data", ok=(200,), write=False, json=dict(query_context))
