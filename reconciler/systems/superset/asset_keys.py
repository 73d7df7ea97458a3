"""Spec loading, Superset asset files: the top-level keys Superset's import accepts, per kind of asset.

Pure; the Superset slice of the loader checks every asset file against these before anything is
planned. They are the fields of Superset 6.1's import schemas (`ImportV1DashboardSchema`,
`ImportV1ChartSchema`, `ImportV1DatasetSchema`, `ImportV1DatabaseSchema`), which refuse any other
key (a dataset's columns and metrics likewise), so a typo is a `file:line` error at `validate`
instead of a failed import.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

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

# A dataset's columns and metrics are checked by schemas of their own (`ImportV1ColumnSchema`,
# `ImportV1MetricSchema`), which refuse other keys too.
ITEM_KEYS: dict[str, dict[str, frozenset[str]]] = {
    "datasets": {
        "columns": frozenset(
            {
                "column_name",
                "extra",
                "verbose_name",
                "is_dttm",
                "is_active",
                "type",
                "advanced_data_type",
                "groupby",
                "filterable",
                "expression",
                "description",
                "python_date_format",
                "datetime_format",
            }
        ),
        "metrics": frozenset(
            {
                "metric_name",
                "verbose_name",
                "metric_type",
                "expression",
                "description",
                "d3format",
                "currency",
                "extra",
                "warning_text",
            }
        ),
    }
}

KIND_LABEL = {"dashboards": "dashboard", "charts": "chart", "datasets": "dataset", "databases": "database"}


def _message(what: str, key: str, accepted: frozenset[str]) -> str:
    message = f"unknown key: Superset's {what} import does not accept {key!r}"
    close = difflib.get_close_matches(key, sorted(accepted), n=1)
    return f"{message} (did you mean {close[0]!r}?)" if close else message


def unknown_keys(kind: str, content: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every key of an asset file of `kind` that Superset's import refuses: (path to the key, why)."""
    accepted = ACCEPTED_KEYS.get(kind)
    if accepted is None:
        return []
    found: list[tuple[tuple[str | int, ...], str]] = [
        ((str(key),), _message(KIND_LABEL[kind], str(key), accepted)) for key in content if key not in accepted
    ]
    for field, item_keys in ITEM_KEYS.get(kind, {}).items():
        items = content.get(field)
        for index, item in enumerate(items if isinstance(items, list) else []):
            for key in item if isinstance(item, Mapping) else ():
                if key not in item_keys:
                    what = f"{KIND_LABEL[kind]} {field[:-1]}"
                    found.append(((field, index, str(key)), _message(what, str(key), item_keys)))
    return found
