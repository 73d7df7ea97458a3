"""Airbyte stand-in, jobs: sync and reset jobs started on a connection, listed and read back.

Routed by airbyte_server.py (`/jobs`, `/jobs/{jobId}`); finds the connection through
airbyte_connections.py. A sandbox has no data to move, so every job has succeeded by the time it
is answered, and job ids count up from 1 like Airbyte's.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.sandbox.airbyte_connections import ConnectionHandlers
from reconciler.sandbox.airbyte_problems import bad_request, not_found
from reconciler.sandbox.airbyte_requests import (
    list_filters,
    page_response,
    request_body,
    required_string,
    workspace_ids,
)
from reconciler.sandbox.airbyte_store import JOBS, TOMBSTONE, Store
from reconciler.sandbox.http_util import Request, Response, json_response

_JOB_TYPES = ("sync", "reset")


class JobHandlers:
    """Handlers of one stand-in's jobs; `base_url` is the public API URL, for page links."""

    def __init__(self, store: Store, base_url: Callable[[], str], connections: ConnectionHandlers) -> None:
        self._store, self._base_url, self._connections = store, base_url, connections

    def create_job(self, request: Request) -> Response:
        """Jobs finish at once: a sandbox has no data to move."""
        body = request_body(request)
        job_type = body.get("jobType")
        if job_type not in _JOB_TYPES:
            raise bad_request(f"Job type {job_type!r} is not supported. Use one of {list(_JOB_TYPES)}.")
        now = _iso_now()
        with self._store.lock:
            connection = self._connections.stored_connection(required_string(body, "connectionId"))
            job = {
                "jobId": self._store.next_job_id(),
                "status": "succeeded",
                "jobType": job_type,
                "startTime": now,
                "connectionId": connection["connectionId"],
                "lastUpdatedAt": now,
                "duration": "PT0S",
                "bytesSynced": 0,
                "rowsSynced": 0,
                "workspaceId": connection["workspaceId"],
            }
            self._store.put(JOBS, job)
        return json_response(200, _job_answer(job))

    def get_job(self, job_id: str) -> Response:
        with self._store.lock:
            job = self._store.get(JOBS, job_id)
            if job is None:
                raise not_found("job", job_id)
            return json_response(200, _job_answer(job))

    def list_jobs(self, request: Request) -> Response:
        wanted = workspace_ids(request)
        filters = {name: request.first(name) for name in ("connectionId", "jobType", "status")}
        link_filters = {name: value for name, value in filters.items() if value is not None}
        with self._store.lock:
            jobs = [
                job
                for job in self._store.all(JOBS)
                if (not wanted or job["workspaceId"] in wanted)
                and all(value is None or str(job[name]) == value for name, value in filters.items())
            ]
            return page_response(
                request, self._base_url(), "/jobs", jobs, {**list_filters(request, wanted), **link_filters}, _job_answer
            )


def _job_answer(job: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in job.items() if name not in ("workspaceId", TOMBSTONE)}


def _iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
