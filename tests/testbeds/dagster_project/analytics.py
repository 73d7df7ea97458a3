"""Dagster code location `analytics` for the test bed: a broken location, as after a bad image.

It fails on import the way a code-location image built without one of its dependencies does:
the webserver still lists it with loadStatus LOADED, and only locationOrLoadError says PythonError.
"""

import analytics_models_not_installed  # type: ignore[import-not-found]  # noqa: F401
import dagster as dg

defs = dg.Definitions(assets=[])
