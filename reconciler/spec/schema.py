"""JSON Schema of the spec files, for editors (yaml-language-server) and CI linting: every registered system's kinds."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from reconciler import registry
from reconciler.spec.environment import environment_model


def schemas() -> dict[str, type[BaseModel]]:
    """Spec file kinds by name: the environment file (with every system's section) and each system's files."""
    systems = registry.systems()
    found: dict[str, type[BaseModel]] = {
        "environment": environment_model(tuple((system.name, system.section) for system in systems))
    }
    for system in systems:
        found.update(system.schemas)
    return found


def json_schema(kind: str) -> dict[str, Any]:
    schema = schemas()[kind].model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://reconciler.dev/schema/{kind}.json"
    return schema
