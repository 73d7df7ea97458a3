"""JSON Schema of the spec files, for editors (yaml-language-server) and CI linting."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.spec.environment import EnvironmentFile
from reconciler.systems.airbyte.spec import ConnectionSpec, DestinationSpec, SourceSpec
from reconciler.systems.superset.spec import RolesFile
from reconciler.systems.workloads.spec import WorkloadsFile


class AirbyteSpecFile(BaseModel):
    """A file under specs/airbyte/: any of the three lists."""

    model_config = ConfigDict(extra="forbid")

    sources: list[SourceSpec] = []
    destinations: list[DestinationSpec] = []
    connections: list[ConnectionSpec] = []


SCHEMAS: dict[str, type[BaseModel]] = {
    "airbyte": AirbyteSpecFile,
    "environment": EnvironmentFile,
    "workloads": WorkloadsFile,
    "superset-roles": RolesFile,
}


def json_schema(kind: str) -> dict[str, Any]:
    schema = SCHEMAS[kind].model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://reconciler.dev/schema/{kind}.json"
    return schema
