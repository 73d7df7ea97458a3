"""The workloads package."""
