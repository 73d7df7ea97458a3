"""Spec models of Airbyte resources: sources, destinations and connections as written in YAML.

Field names follow Airbyte's public API (camelCase) so a spec reads like the API it drives.
Validation here is offline: types, enums, cron syntax, unknown keys. Cross-references (a
connection's source must exist in the environment) are checked by the loader.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reconciler.spec.cron import validate_quartz_cron
from reconciler.spec.secrets import SecretField, iter_refs_in_lists
from reconciler.spec.yamlsource import locate

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SyncMode(StrEnum):
    """Airbyte's ConnectionSyncModeEnum."""

    FULL_REFRESH_OVERWRITE = "full_refresh_overwrite"
    FULL_REFRESH_OVERWRITE_DEDUPED = "full_refresh_overwrite_deduped"
    FULL_REFRESH_APPEND = "full_refresh_append"
    FULL_REFRESH_UPDATE = "full_refresh_update"
    FULL_REFRESH_SOFT_DELETE = "full_refresh_soft_delete"
    INCREMENTAL_APPEND = "incremental_append"
    INCREMENTAL_DEDUPED_HISTORY = "incremental_deduped_history"
    INCREMENTAL_UPDATE = "incremental_update"
    INCREMENTAL_SOFT_DELETE = "incremental_soft_delete"


class WrittenAt:
    """The located YAML tree a model was validated from: where each key was written, never its identity."""

    def __init__(self, tree: Any) -> None:
        self.tree = tree

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WrittenAt)

    def __hash__(self) -> int:
        return 0


class _Connector(_Strict):
    """A connector is identified by its definitionId; `type` names one Airbyte knows by name."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"anyOf": [{"required": ["type"]}, {"required": ["definitionId"]}]},
    )
    name: str = Field(pattern=NAME_PATTERN)
    definition_id: str | None = Field(
        default=None,
        alias="definitionId",
        min_length=1,
        description="The connector definition's id: needed for custom connectors, whose type Airbyte cannot name",
    )
    type: str | None = Field(
        default=None,
        min_length=1,
        validate_default=True,
        description="sourceType (postgres, ...) or destinationType (s3, ...)",
    )
    configuration: dict[str, Any] = Field(default_factory=dict)
    _written_at: WrittenAt = PrivateAttr(default_factory=lambda: WrittenAt(None))

    @field_validator("configuration")
    @classmethod
    def _no_reference_in_a_list(cls, configuration: dict[str, Any]) -> dict[str, Any]:
        inside = [*iter_refs_in_lists(configuration)]
        if inside:
            where = ", ".join(f"configuration.{path}" for path in inside)
            raise ValueError(f"a secretRef inside a list cannot be applied ({where}); give the secret its own key")
        return configuration

    @model_validator(mode="wrap")
    @classmethod
    def _remember_where_written(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        model = handler(data)
        model._written_at = WrittenAt(data)
        return model

    def where(self, configuration_path: Sequence[str | int]) -> tuple[str, int | None]:
        """File and line of a configuration field (after environment overrides), when loaded from YAML."""
        return locate(self._written_at.tree, ["configuration", *configuration_path])

    @field_validator("type")
    @classmethod
    def _identified(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("definition_id") is None:
            raise ValueError("give `type` (e.g. postgres) or `definitionId` (required for a custom connector)")
        return value


class SourceSpec(_Connector):
    """An Airbyte source: a connector type and its configuration (secrets as references)."""


class DestinationSpec(_Connector):
    """An Airbyte destination: a connector type and its configuration (secrets as references)."""


class Schedule(_Strict):
    """When a connection syncs: `manual`, or a Quartz cron expression evaluated in UTC."""

    type: Literal["manual", "cron"] = "cron"
    cron: str | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return validate_quartz_cron(value) if value is not None else None

    @model_validator(mode="after")
    def _cron_when_cron(self) -> Schedule:
        if self.type == "cron" and not self.cron:
            raise ValueError("a cron schedule needs `cron`, e.g. '0 0 2 * * ?' (or write `schedule: manual`)")
        if self.type == "manual" and self.cron:
            raise ValueError("a manual schedule takes no `cron`")
        return self


class StreamSpec(_Strict):
    """One stream of a connection's configured catalog."""

    @field_validator("selected_fields")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("Airbyte refuses an empty selection; omit selectedFields to sync every field")
        return value

    name: str = Field(min_length=1)
    namespace: str | None = None
    sync_mode: SyncMode | None = Field(default=None, alias="syncMode")
    cursor_field: list[str] | None = Field(default=None, alias="cursorField")
    primary_key: list[list[str]] | None = Field(default=None, alias="primaryKey")
    selected_fields: list[str] | None = Field(
        default=None, alias="selectedFields", description="Field paths, nested levels joined with '.'"
    )


class NamespaceDefinition(StrEnum):
    SOURCE = "source"
    DESTINATION = "destination"
    CUSTOM_FORMAT = "custom_format"


class SchemaChangeBehavior(StrEnum):
    IGNORE = "ignore"
    DISABLE_CONNECTION = "disable_connection"
    PROPAGATE_COLUMNS = "propagate_columns"
    PROPAGATE_FULLY = "propagate_fully"


class ConnectionSpec(_Strict):
    """An Airbyte connection from a source to a destination, referenced by spec name."""

    name: str = Field(pattern=NAME_PATTERN)
    source: str
    destination: str
    schedule: Schedule | None = None
    status: Literal["active", "inactive"] | None = None
    namespace_definition: NamespaceDefinition | None = Field(default=None, alias="namespaceDefinition")
    namespace_format: str | None = Field(default=None, alias="namespaceFormat")
    prefix: str | None = None
    non_breaking_schema_updates_behavior: SchemaChangeBehavior | None = Field(
        default=None, alias="nonBreakingSchemaUpdatesBehavior"
    )
    streams: list[StreamSpec] | None = None

    @field_validator("schedule", mode="before")
    @classmethod
    def _manual_shorthand(cls, value: Any) -> Any:
        return {"type": "manual"} if value == "manual" else value

    @field_validator("streams")
    @classmethod
    def _unique_streams(cls, streams: list[StreamSpec] | None) -> list[StreamSpec] | None:
        seen: set[tuple[str | None, str]] = set()
        for stream in streams or []:
            key = (stream.namespace, stream.name)
            if key in seen:
                raise ValueError(f"stream {stream.name!r} is listed twice")
            seen.add(key)
        return streams


class AirbyteAuth(_Strict):
    """How reconciler signs in to Airbyte: client credentials, a static token, or none."""

    client_id: str | None = Field(default=None, alias="clientId")
    client_secret: SecretField | None = Field(default=None, alias="clientSecret")
    token: SecretField | None = None


class AirbyteEnvironment(_Strict):
    """The Airbyte section of an environment file: endpoint, selection and overrides."""

    url: str
    auth: AirbyteAuth = Field(default_factory=AirbyteAuth)
    workspace: str | None = Field(default=None, description="Workspace name (or use workspaceId)")
    workspace_id: str | None = Field(default=None, alias="workspaceId")
    prune: bool = False
    sources: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    destinations: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    connections: dict[str, dict[str, Any] | None] = Field(default_factory=dict)


class AirbyteSpecFile(BaseModel):
    """A file under specs/airbyte/: any of the three lists."""

    model_config = ConfigDict(extra="forbid")

    sources: list[SourceSpec] = []
    destinations: list[DestinationSpec] = []
    connections: list[ConnectionSpec] = []
