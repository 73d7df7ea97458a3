"""Secrets written as values are refused before anything runs: by name, in lists, as numbers, from ${VAR}.

Each case puts a canary value where a secret goes; validate and plan must name file, line and
field, exit 1, and never print the canary.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.sandbox import airbyte_catalog
from reconciler.spec.secrets import is_secret_name, iter_inline_secrets
from tests.helpers import copy_example

CANARY = "Canary-S3cret-7"
PG = "      replication_method: {method: Standard}\n"
LAKE_SECRET = "      secret_access_key: {secretRef: {env: LAKE_AWS_SECRET_ACCESS_KEY}}"
QA_PASSWORD = "        password: {secretRef: {env: QA_APP_POSTGRES_PASSWORD}}"

CASES: dict[str, tuple[str, str, str, str]] = {
    # name: (file, text to find, replacement, expected error line)
    "secret_access_key": (
        "specs/airbyte/destinations.yaml",
        LAKE_SECRET,
        f"      secret_access_key: {CANARY}",
        "specs/airbyte/destinations.yaml:10: configuration.secret_access_key: looks like an inline secret",
    ),
    "ssh key in tunnel_method": (
        "specs/airbyte/sources.yaml",
        PG,
        PG + f"      tunnel_method: {{tunnel_method: SSH_KEY_AUTH, tunnel_host: bastion, ssh_key: {CANARY}}}\n",
        "specs/airbyte/sources.yaml:15: configuration.tunnel_method.ssh_key: looks like an inline secret",
    ),
    "tunnel password": (
        "specs/airbyte/sources.yaml",
        PG,
        PG
        + f"      tunnel_method:\n        tunnel_method: SSH_PASSWORD_AUTH\n        tunnel_user_password: {CANARY}\n",
        "specs/airbyte/sources.yaml:17: configuration.tunnel_method.tunnel_user_password: looks like an inline",
    ),
    "a number": (
        "specs/airbyte/sources.yaml",
        "      password: {secretRef: {env: APP_POSTGRES_PASSWORD}}",
        "      password: 73519486",
        "specs/airbyte/sources.yaml:11: configuration.password: looks like an inline secret",
    ),
    "a list of keys": (
        "specs/airbyte/destinations.yaml",
        LAKE_SECRET,
        f"{LAKE_SECRET}\n      api_keys:\n        - first\n        - {CANARY}",
        "specs/airbyte/destinations.yaml:13: configuration.api_keys.1: looks like an inline secret",
    ),
    "inside a list of mappings": (
        "specs/airbyte/destinations.yaml",
        LAKE_SECRET,
        f"{LAKE_SECRET}\n      accounts:\n        - {{name: eu, clientSecret: {CANARY}}}",
        "specs/airbyte/destinations.yaml:12: configuration.accounts.0.clientSecret: looks like an inline secret",
    ),
    "a private key under any name": (
        "specs/airbyte/sources.yaml",
        "      ssl_mode: {mode: require}",
        f'      ssl_mode: {{mode: verify-full, bundle: "-----BEGIN PRIVATE KEY-----\\n{CANARY}"}}',
        "specs/airbyte/sources.yaml:13: configuration.ssl_mode.bundle: looks like an inline secret",
    ),
    "a URL with a password": (
        "specs/airbyte/sources.yaml",
        "      port: 5432",
        f"      port: 5432\n      jdbc_url: 'jdbc:postgresql://reader:{CANARY}@db:5432/app'",
        "specs/airbyte/sources.yaml:9: configuration.jdbc_url: looks like an inline secret",
    ),
    "a URL whose password holds a slash": (
        "specs/airbyte/sources.yaml",
        "      port: 5432",
        f'      port: 5432\n      dsn: "postgresql://reader:{CANARY[:6]}/{CANARY[6:]}@db/app"',
        "specs/airbyte/sources.yaml:9: configuration.dsn: looks like an inline secret",
    ),
    "a password in a parameter string": (
        "specs/airbyte/sources.yaml",
        "      port: 5432",
        f"      port: 5432\n      jdbc_url_params: 'ssl=true&password={CANARY}'",
        "specs/airbyte/sources.yaml:9: configuration.jdbc_url_params: looks like an inline secret",
    ),
    "a key in a URL's query": (
        "specs/airbyte/sources.yaml",
        "      port: 5432",
        f"      port: 5432\n      endpoint: 'https://api.example.com/v1?format=json&api_key={CANARY}'",
        "specs/airbyte/sources.yaml:9: configuration.endpoint: looks like an inline secret",
    ),
    "a header's value named by its sibling": (
        "specs/airbyte/sources.yaml",
        "      port: 5432",
        "      port: 5432\n      headers:\n        - {name: Accept, value: application/json}\n"
        f"        - name: X-Api-Key\n          value: {CANARY}",
        "specs/airbyte/sources.yaml:12: configuration.headers.1.value: looks like an inline secret",
    ),
    "a bearer token as a header's value": (
        "specs/airbyte/sources.yaml",
        "      port: 5432",
        f"      port: 5432\n      request_headers:\n        - {{header: X-Upstream, value: 'Bearer {CANARY}'}}",
        "specs/airbyte/sources.yaml:10: configuration.request_headers.0.value: looks like an inline secret",
    ),
    "a reference inside a list": (
        "specs/airbyte/destinations.yaml",
        LAKE_SECRET,
        f"{LAKE_SECRET}\n      api_keys: [{{secretRef: {{env: LAKE_KEY}}}}]",
        "specs/airbyte/destinations.yaml:5: configuration: a secretRef inside a list cannot be applied "
        "(configuration.api_keys.0); give the secret its own key",
    ),
    "${VAR} in the environment file": (
        "environments/qa.yaml",
        QA_PASSWORD,
        "        password: ${QA_APP_POSTGRES_PASSWORD}",
        "environments/qa.yaml:17: airbyte.sources.app-postgres.configuration.password: a secret cannot come "
        "from ${QA_APP_POSTGRES_PASSWORD} (plans would show it); use {secretRef: {env: QA_APP_POSTGRES_PASSWORD}}",
    ),
    "${VAR:-default} under a widened name": (
        "environments/qa.yaml",
        "        s3_bucket_name: acme-lake-qa",
        f"        s3_bucket_name: acme-lake-qa\n        kms_key: ${{LAKE_KMS_KEY:-{CANARY}}}",
        "environments/qa.yaml:23: airbyte.destinations.lake.configuration.kms_key: a secret cannot come",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_secret_written_as_a_value_is_refused_at_its_line_and_never_printed(
    case: str, command: str, tmp_path: Path
) -> None:
    file, old, new, expected = CASES[case]
    env = "qa" if file.startswith("environments/qa") else "prod"  # qa overrides some of the shared secrets
    arguments = ["validate"] if command == "validate" else ["plan", "--env", env, "--format", "json"]
    root = copy_example(tmp_path)
    text = (root / file).read_text()
    assert old in text, f"test case {case!r} no longer matches {file}"
    (root / file).write_text(text.replace(old, new, 1))

    result = CliRunner().invoke(main, ["--root", str(root), *arguments], env={"QA_APP_POSTGRES_PASSWORD": CANARY})

    assert result.exit_code == 1, result.output
    assert expected in result.output
    assert CANARY not in result.output and "73519486" not in result.output and "Traceback" not in result.output


# Real connector field names: what Airbyte marks `airbyte_secret` (the stand-in's connector knowledge,
# from the postgres, salesforce, hubspot, mailchimp and s3 connector specs) and the plain settings
# beside them (the same specs and the destination example of api.yaml).
MASKED_BY_AIRBYTE = sorted(
    {
        path[-1]
        for kind, name in [("source", t) for t in ("postgres", "salesforce", "hubspot", "mailchimp")]
        + [("destination", "s3")]
        for path in airbyte_catalog.connector(kind, name).secrets
    }
    | {"credentials_json", "service_account_info", "private_key", "private_key_password", "hmac_key_secret"}
    | {"hmac_key_access_id", "api_key", "client_certificate", "secretKey", "sshKey", "accessToken"}
    | {"sasl_jaas_config", "service_account_json", "key"}
)
PLAIN_SETTINGS = [
    *("host", "port", "database", "username", "schema", "schemas", "jdbc_url_params", "airbyte_destination_name"),
    *("mode", "method", "tunnel_method", "tunnel_host", "tunnel_port", "tunnel_user", "ssl_mode", "ssl"),
    *("client_id", "is_sandbox", "start_date", "auth_type", "credentials_title", "data_center", "token_expiry_date"),
    *("s3_bucket_name", "s3_bucket_path", "s3_bucket_region", "s3_endpoint", "format_type", "compression_codec"),
    *("project_id", "dataset_id", "dataset_location", "credential_type", "primary_key", "role_arn"),
]


def test_every_field_airbyte_masks_is_named_a_secret() -> None:
    assert {"ssh_key", "tunnel_user_password", "ca_certificate", "client_key", "secret_access_key"} <= set(
        MASKED_BY_AIRBYTE
    )
    assert [name for name in MASKED_BY_AIRBYTE if not is_secret_name(name)] == []


def test_plain_settings_beside_them_are_not() -> None:
    assert [name for name in PLAIN_SETTINGS if is_secret_name(name)] == []


def test_inline_secret_paths_in_plain_data() -> None:
    configuration = {
        "credentials": {"auth_type": "OAuth", "client_secret": "x", "refresh_token": {"secretRef": {"env": "T"}}},
        "password": 1234,
        "ssl": True,
        "api_keys": ["a", {"secretRef": {"env": "K"}}, "b"],
        "accounts": [{"name": "eu", "token": "t"}],
        "empty_password": "",
        "note": "-----BEGIN OPENSSH PRIVATE KEY-----",
        "jdbc_url": "jdbc:postgresql://reader:pw@db:5432/app",
        "masked_url": "postgresql://reader:***@db/app",
        "plain_url": "https://user@example.com/path",
        "jdbc_url_params": "ssl=true&sslmode=require&token_expiry_date=2026",
        "masked_params": "password=**********",
        "params": "user=reader;pwd=pw",
        "headers": [
            {"name": "Authorization", "value": "Token t"},
            {"key": "X-Api-Key", "value": "k"},
            {"header": "Cookie", "value": "session=s"},
            {"name": "X-Auth-Token", "value": "t"},
            {"name": "x-client-secret", "value": 1234},
            {"name": "X-Trace", "value": "Basic dTpw"},
            {"name": "X-Plain", "value": "bearer t"},
            {"name": "Authorization", "value": {"secretRef": {"env": "AUTH"}}},
            {"key": "Content-Type", "value": "application/json"},
            {"name": "Accept", "value": "Bearer-ish/json"},
            {"name": "X-Token-Count", "value": ""},
        ],
    }
    assert list(iter_inline_secrets(configuration)) == [
        ("credentials", "client_secret"),
        ("password",),
        ("api_keys", 0),
        ("api_keys", 2),
        ("accounts", 0, "token"),
        ("note",),
        ("jdbc_url",),
        ("params",),
        ("headers", 0, "value"),
        ("headers", 1, "value"),
        ("headers", 2, "value"),
        ("headers", 3, "value"),
        ("headers", 4, "value"),
        ("headers", 5, "value"),
        ("headers", 6, "value"),
    ]
