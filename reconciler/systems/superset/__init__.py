"""The superset package."""
