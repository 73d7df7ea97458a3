"""The Superset REST client: auth and paging (calls), assets (resources), roles (security), errors."""
