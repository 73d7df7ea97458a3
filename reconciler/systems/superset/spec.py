"""Spec models for Superset, as written in YAML: the environment file's `superset:` section and `roles.yaml`.

Dashboards, charts, datasets and databases are not modelled here: they live under
`specs/superset/` in Superset's own export format (see `core.superset_bundle`). What this module
validates is what reconciler adds around them: how to reach an environment's Superset, the
connection of each database there, which dashboards and roles exist there, and replication.

```yaml
superset:
  url: ${SUPERSET_QA_URL:-http://127.0.0.1:18089}
  auth: {username: admin, password: {secretRef: {env: SUPERSET_QA_PASSWORD}}}  # or token: {secretRef: ...}
  databases:                       # connection of each database, by the name dashboards use
    warehouse: {sqlalchemyUri: "postgresql://reporter@warehouse.qa:5432/analytics",
                password: {secretRef: {env: QA_WAREHOUSE_PASSWORD}}}
  dashboards: [sales-overview]     # spec dashboards (slug) that exist here, or `all`
  roles: [analyst]                 # roles of specs/superset/roles.yaml, or `all`
  prune: false
  replicate:                       # mirror another environment's live dashboards
    from: prod
    dashboards: all                # or {slugs: [...], tags: [...], owners: [email or full name]}
    databases: {warehouse: warehouse}
  verify: true                     # run every chart of what an apply touched
```
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from reconciler.spec.secrets import SecretField
from reconciler.systems.superset.rules.connection_secrets import uri_secrets

ROLES_FILE = "roles.yaml"
NAME = r"^[^\s/][^/]{0,249}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _reference_only(value: object) -> object:
    if isinstance(value, str | int | float):
        raise ValueError("looks like an inline secret; use {secretRef: {env: NAME}}")
    return value


Secret = Annotated[SecretField, BeforeValidator(_reference_only)]
"""A secret field that names where the value lives; an inline value gets a message saying so."""


class SupersetAuth(_Strict):
    """How reconciler signs in: a database user and password (JWT), or a pre-issued access token."""

    username: str | None = None
    password: Secret | None = None
    token: Secret | None = Field(default=None, description="Pre-issued access token (IdP sign-in)")

    @model_validator(mode="after")
    def _one_way(self) -> SupersetAuth:
        if self.token is None and (self.username is None or self.password is None):
            raise ValueError("give username and password, or a token")
        return self


class DatabaseConnection(_Strict):
    """Where one database of the dashboards points in this environment; the password apart."""

    sqlalchemy_uri: str = Field(alias="sqlalchemyUri", min_length=1)
    password: Secret | None = None

    @field_validator("sqlalchemy_uri")
    @classmethod
    def _no_inline_password(cls, value: str) -> str:
        found = uri_secrets(value)
        if found:
            raise ValueError(
                f"the URI carries a password or secret ({', '.join(found)}); "
                "write it without and use password: {secretRef: ...}"
            )
        return value


class DashboardSelector(_Strict):
    """Dashboards chosen by slug, tag or owner (a dashboard matching any of them is chosen)."""

    slugs: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list, description="Owner e-mail or full name")

    @model_validator(mode="after")
    def _something(self) -> DashboardSelector:
        if not (self.slugs or self.tags or self.owners):
            raise ValueError("name at least one of slugs, tags or owners (or write `dashboards: all`)")
        return self


class Replication(_Strict):
    """Mirror another environment's live dashboards here, pointed at this environment's databases."""

    source: str = Field(alias="from", description="Environment whose live dashboards are copied")
    dashboards: Literal["all"] | DashboardSelector = "all"
    databases: dict[str, str] = Field(
        default_factory=dict, description="Source database name -> this environment's database name"
    )


class SupersetEnvironment(_Strict):
    """The `superset:` section of an environment file."""

    url: str
    auth: SupersetAuth
    databases: dict[Annotated[str, Field(pattern=NAME)], DatabaseConnection] = Field(default_factory=dict)
    dashboards: Literal["all"] | list[str] = Field(default_factory=list)
    roles: Literal["all"] | list[str] = Field(default_factory=list)
    prune: bool = False
    replicate: Replication | None = None
    verify: bool = True


class DatasetAccess(_Strict):
    """Read access to one dataset, named as Superset names it: database, optional schema, table."""

    database: str
    schema_: str | None = Field(default=None, alias="schema")
    table: str


class SchemaAccess(_Strict):
    database: str
    schema_: str = Field(alias="schema")


def _pair(value: object) -> object:
    if not (isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError("expected a [permission, view menu] pair, e.g. [can_read, Dashboard]")
    return value


Permission = Annotated[tuple[str, str], BeforeValidator(_pair)]


class RoleSpec(_Strict):
    """A role: permissions on view menus, plus data access by name (never by instance id)."""

    name: str = Field(pattern=NAME)
    permissions: list[Permission] = Field(
        default_factory=list, description="[permission, view menu] pairs, e.g. [can_read, Dashboard]"
    )
    datasets: list[DatasetAccess] = Field(default_factory=list)
    schemas: list[SchemaAccess] = Field(default_factory=list)
    databases: list[str] = Field(default_factory=list)
    manage_builtin: bool = Field(
        default=False,
        alias="manageBuiltIn",
        description="Take over one of Superset's built-in roles (Admin, Alpha, Gamma, Public, sql_lab): its "
        "permissions are replaced whole by these. Without it such a role is refused; it is never pruned.",
    )


class RolesFile(_Strict):
    """`specs/superset/roles.yaml`."""

    roles: list[RoleSpec] = Field(default_factory=list)
