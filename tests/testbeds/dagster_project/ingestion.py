"""Dagster code location `ingestion` for the test bed: a healthy location (two assets and a job).

Loaded by a real dagster-webserver in a venv of its own (tests/testbeds/dagster_bed.py); the
project's own venv has no dagster, so nothing in the test suite imports this module.
"""

import dagster as dg


@dg.asset
def raw_orders() -> list[dict[str, int]]:
    return [{"order_id": 1, "amount": 30}, {"order_id": 2, "amount": 12}]


@dg.asset
def order_totals(raw_orders: list[dict[str, int]]) -> int:
    return sum(row["amount"] for row in raw_orders)


ingest_job = dg.define_asset_job("ingest_orders", selection=["raw_orders", "order_totals"])

defs = dg.Definitions(assets=[raw_orders, order_totals], jobs=[ingest_job])
