"""Import with plain data: every secret of a live configuration becomes a reference, masked or not."""

from __future__ import annotations

from reconciler.systems.airbyte.pull import connector_entry
from reconciler.systems.airbyte.rules import MASK


def test_masked_and_secret_looking_values_become_references_and_the_rest_stays() -> None:
    answer = {
        "name": "Lake",
        "destinationType": "s3",
        "configuration": {
            "s3_bucket_name": "lake",
            "secret_access_key": MASK,
            "hmac_key_access_id": "GOOG1E-live-value",
            "tunnel_method": {"tunnel_host": "bastion", "ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----"},
            "endpoints": [{"url": "https://reader:pw@files.internal/x"}, {"url": "https://files.internal/y"}],
            "api_keys": ["k1", MASK],
        },
    }
    refs: list[str] = []
    entry = connector_entry("destination", answer, "lake", "prod", refs)
    assert entry["configuration"] == {
        "s3_bucket_name": "lake",
        "secret_access_key": {"secretRef": {"env": "PROD_LAKE_SECRET_ACCESS_KEY"}},
        "hmac_key_access_id": {"secretRef": {"env": "PROD_LAKE_HMAC_KEY_ACCESS_ID"}},
        "tunnel_method": {
            "tunnel_host": "bastion",
            "ssh_key": {"secretRef": {"env": "PROD_LAKE_TUNNEL_METHOD_SSH_KEY"}},
        },
        "endpoints": [
            {"url": {"secretRef": {"env": "PROD_LAKE_ENDPOINTS_0_URL"}}},
            {"url": "https://files.internal/y"},
        ],
        "api_keys": [{"secretRef": {"env": "PROD_LAKE_API_KEYS_0"}}, {"secretRef": {"env": "PROD_LAKE_API_KEYS_1"}}],
    }
    assert len(refs) == 6
