"""Core rule with plain data: a spec value where Airbyte's answer is masked is an inline secret."""

from __future__ import annotations

from reconciler.errors import SpecProblem
from reconciler.spec.yamlsource import parse_yaml
from reconciler.systems.airbyte.rules import MASK, masked_paths, values_where_masked
from reconciler.systems.airbyte.spec import SourceSpec

SPEC = """\
name: events
type: kafka
configuration:
  protocol:
    sasl_jaas_config: "plain value"
  brokers: [{host: a, auth: "inline"}]
  password: {secretRef: {env: PW}}
  host: kafka
"""


def test_masked_paths_are_found_in_mappings_and_lists() -> None:
    answer = {"protocol": {"sasl_jaas_config": MASK}, "brokers": [{"host": "a", "auth": MASK}], "host": "kafka"}
    assert list(masked_paths(answer)) == [("protocol", "sasl_jaas_config"), ("brokers", 0, "auth")]


def test_a_value_under_a_masked_field_is_a_problem_at_its_line_and_a_reference_is_not() -> None:
    spec = SourceSpec.model_validate(parse_yaml(SPEC, "specs/airbyte/sources.yaml"))
    configuration = {
        "protocol": {"sasl_jaas_config": MASK},
        "brokers": [{"host": "a", "auth": MASK}],
        "password": MASK,
        "host": "kafka",
        "extra": MASK,
    }
    problems = values_where_masked(spec, {"configuration": configuration})
    message = "Airbyte masks this field, so it is a secret: write {secretRef: {env: NAME}}, not a value"
    assert problems == [
        SpecProblem("specs/airbyte/sources.yaml", 5, "configuration.protocol.sasl_jaas_config", message),
        SpecProblem("specs/airbyte/sources.yaml", 6, "configuration.brokers.0.auth", message),
    ]
