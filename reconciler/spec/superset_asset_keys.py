"""Spec loading, Superset asset files: the top-level keys Superset's import accepts, per kind of asset.

Pure; the Superset slice of the loader checks every asset file against these before anything is
planned. They are the fields of Superset 6.1's import schemas (`ImportV1DashboardSchema`,
`ImportV1ChartSchema`, `ImportV1DatasetSchema`, `ImportV1DatabaseSchema`), which refuse any other
key, so a typo is a `file:line` error at `validate` instead of a failed import.
"""

from __future__ import annotations

import difflib

ACCEPTED_KEYS: dict[str, frozenset[str]] = {
    "dashboards": frozenset(
        {
            "dashboard_title",
            "description",
            "css",
            "slug",
            "uuid",
            "position",
            "metadata",
            "version",
            "is_managed_externally",
            "external_url",
            "certified_by",
            "certification_details",
            "published",
            "tags",
            "theme_uuid",
            "theme_id",
        }
    ),
    "charts": frozenset(
        {
            "slice_name",
            "description",
            "certified_by",
            "certification_details",
            "viz_type",
            "params",
            "query_context",
            "cache_timeout",
            "uuid",
            "version",
            "dataset_uuid",
            "is_managed_externally",
            "external_url",
            "tags",
        }
    ),
    "datasets": frozenset(
        {
            "table_name",
            "main_dttm_col",
            "currency_code_column",
            "description",
            "default_endpoint",
            "offset",
            "cache_timeout",
            "schema",
            "catalog",
            "sql",
            "source_db_engine",
            "params",
            "template_params",
            "filter_select_enabled",
            "fetch_values_predicate",
            "extra",
            "uuid",
            "columns",
            "metrics",
            "version",
            "database_uuid",
            "data",
            "is_managed_externally",
            "external_url",
            "normalize_columns",
            "always_filter_main_dttm",
            "folders",
            "data_file",
        }
    ),
    "databases": frozenset(
        {
            "database_name",
            "sqlalchemy_uri",
            "password",
            "encrypted_extra",
            "masked_encrypted_extra",
            "cache_timeout",
            "expose_in_sqllab",
            "allow_run_async",
            "allow_ctas",
            "allow_cvas",
            "allow_dml",
            "allow_csv_upload",
            "allow_file_upload",  # the name exports write; the import reads it as allow_csv_upload
            "impersonate_user",
            "extra",
            "uuid",
            "version",
            "is_managed_externally",
            "external_url",
            "ssh_tunnel",
            "configuration_method",
        }
    ),
}

KIND_LABEL = {"dashboards": "dashboard", "charts": "chart", "datasets": "dataset", "databases": "database"}


def unknown_key_message(kind: str, key: str) -> str | None:
    """Why `key` cannot be in an asset file of `kind` (None when Superset's import accepts it)."""
    accepted = ACCEPTED_KEYS.get(kind)
    if accepted is None or key in accepted:
        return None
    message = f"unknown key: Superset's {KIND_LABEL[kind]} import does not accept {key!r}"
    close = difflib.get_close_matches(key, sorted(accepted), n=1)
    return f"{message} (did you mean {close[0]!r}?)" if close else message
