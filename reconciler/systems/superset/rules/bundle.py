"""Pure core for Superset assets: export bundles in, comparable assets, git files and import bundles out.

Sits between the Superset client (which moves ZIP bytes) and the Superset provider: no network,
no filesystem. A bundle is what `GET /api/v1/dashboard/export/` answers: a ZIP with one top
folder holding `metadata.yaml` and `databases/`, `datasets/<db>/`, `charts/`, `dashboards/` YAML
files. Every asset carries a `uuid`, its identity across instances.

- `read_bundle(zip_bytes)` parses one; `to_files` / `from_files` write it as deterministic YAML for
  git (charts under the first dashboard that shows them) and read it back.
- `normalise(asset)` removes what differs between instances or exports of one unchanged asset
  (integer ids, derived scopes, export noise), so prod and QA copies compare equal.
- `rewrite_databases` points a bundle at another instance's databases (replication prod -> QA);
  `rewrite_dataset_uuids` adopts a target's existing datasets. Both exist because an import that
  brings a new UUID with an existing database name (or database+schema+table) does not create a
  new row: it silently rewrites the existing row's UUID.
- `build_import_zip(bundle, overrides)` makes the `type: assets` ZIP that `/api/v1/assets/import/`
  takes (the only import that overwrites charts, datasets and databases too).

This module only gathers those names; the code lives in `bundle_model` (`Bundle`,
`Asset`), `bundle_zip` (ZIP in and out), `bundle_files` (git files),
`bundle_normalise` and `bundle_rewrite`.
"""

from reconciler.systems.superset.rules.bundle_files import chart_homes, from_files, to_files
from reconciler.systems.superset.rules.bundle_model import (
    EXPORT_VERSION,
    KINDS,
    PASSWORD_MASK,
    Asset,
    Bundle,
    BundleError,
    dump_yaml,
    slugify,
)
from reconciler.systems.superset.rules.bundle_normalise import (
    CHART_PARAM_NOISE,
    DATABASE_EXTRA_RENAMES,
    DATABASE_RENAMES,
    NORMALISERS,
    chart_uuids_by_id,
    normalise,
    normalise_bundle,
)
from reconciler.systems.superset.rules.bundle_rewrite import DatabaseTarget, rewrite_databases, rewrite_dataset_uuids
from reconciler.systems.superset.rules.bundle_zip import (
    IMPORT_ROOT,
    ZIP_DATE,
    build_import_zip,
    database_file,
    read_bundle,
)

__all__ = [
    "CHART_PARAM_NOISE",
    "DATABASE_EXTRA_RENAMES",
    "DATABASE_RENAMES",
    "EXPORT_VERSION",
    "IMPORT_ROOT",
    "KINDS",
    "NORMALISERS",
    "PASSWORD_MASK",
    "ZIP_DATE",
    "Asset",
    "Bundle",
    "BundleError",
    "DatabaseTarget",
    "build_import_zip",
    "chart_homes",
    "chart_uuids_by_id",
    "database_file",
    "dump_yaml",
    "from_files",
    "normalise",
    "normalise_bundle",
    "read_bundle",
    "rewrite_databases",
    "rewrite_dataset_uuids",
    "slugify",
    "to_files",
]
