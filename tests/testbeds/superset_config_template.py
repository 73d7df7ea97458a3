"""Test bed, beside superset_bed: the superset_config.py each test instance runs with.

Kept close to what a real deployment runs: CSRF stays enabled (clients must handle it), feature
flags stay at their defaults (native filters are always on in 6.x). The differences are the ones
a throwaway instance needs: SQLite metadata, SQLite warehouses allowed as data sources, no
Talisman, the FAB security API on for roles.
"""

from __future__ import annotations

from pathlib import Path

# Also signs the JWTs (flask-jwt-extended falls back to it): tests mint expired tokens with it.
SECRET_KEY = "reconciler-testbed-secret-key-not-for-production-0123456789"

TEMPLATE = """\
# Written by tests/testbeds/superset_bed.py: a throwaway Superset for the integration tests.
SECRET_KEY = "{secret_key}"
SQLALCHEMY_DATABASE_URI = "sqlite:///{metadata_db}"
DATA_DIR = "{data_dir}"

FAB_ADD_SECURITY_API = True
PREVENT_UNSAFE_DB_CONNECTIONS = False
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
WTF_CSRF_ENABLED = True

# One process per instance, SQLite everywhere: no Redis, no Celery, no thumbnails.
CACHE_CONFIG = {{"CACHE_TYPE": "SimpleCache"}}
DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
"""


def render_config(metadata_db: Path, data_dir: Path) -> str:
    """The config text for an instance whose metadata lives in `metadata_db`."""
    return TEMPLATE.format(secret_key=SECRET_KEY, metadata_db=metadata_db, data_dir=data_dir)
