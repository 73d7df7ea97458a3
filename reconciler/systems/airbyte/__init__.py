"""The airbyte package."""
