"""The rules package."""
