"""reconciler: git is the source of truth for a data platform (Airbyte, Superset, dbt, Dagster).

The flow: spec (load YAML) -> providers observe the live systems through clients -> core diffs
and plans (pure) -> the service applies the plan in dependency order -> render shows it.
"""

__version__ = "0.1.0"
