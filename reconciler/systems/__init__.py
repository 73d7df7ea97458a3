"""One package per system (airbyte, superset, workloads), each exposing `SYSTEM` for the registry."""
