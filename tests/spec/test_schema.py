"""`reconcile schema` prints JSON Schemas that name the spec fields and flag unknown keys."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reconciler.cli import SCHEMA_KINDS, main


@pytest.mark.parametrize("kind", SCHEMA_KINDS)
def test_schema_is_json_schema_with_the_spec_fields(kind: str) -> None:
    result = CliRunner().invoke(main, ["schema", "--kind", kind])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"].endswith("2020-12/schema") and schema["type"] == "object"
    assert schema.get("additionalProperties") is False  # unknown keys are flagged by editors too


def test_connection_fields_use_the_api_names() -> None:
    schema = json.loads(CliRunner().invoke(main, ["schema", "--kind", "airbyte"]).output)
    connection = schema["$defs"]["ConnectionSpec"]["properties"]
    assert {"namespaceDefinition", "nonBreakingSchemaUpdatesBehavior", "streams"} <= set(connection)


def test_a_connector_needs_a_type_or_a_definition_id_in_the_schema_too() -> None:
    schema = json.loads(CliRunner().invoke(main, ["schema", "--kind", "airbyte"]).output)
    for kind in ("SourceSpec", "DestinationSpec"):
        assert schema["$defs"][kind]["anyOf"] == [{"required": ["type"]}, {"required": ["definitionId"]}]
