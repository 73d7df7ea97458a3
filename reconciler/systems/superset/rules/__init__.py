"""Pure Superset rules: the asset bundle, its normalised shape, desired state, roles, pull and verify."""
