"""Core: keyed fingerprints of secret values, so a changed secret shows as changed without its value.

A fingerprint is HMAC-SHA256(key, value), truncated. The key is the environment's own (kept
outside the state store), so fingerprints in state or plans cannot be brute-forced offline
from a leaked state file alone.
"""

from __future__ import annotations

import hashlib
import hmac

FINGERPRINT_PREFIX = "hmac-sha256:"


def fingerprint(key: bytes, value: str) -> str:
    """A keyed, non-reversible fingerprint of one secret value."""
    mac = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return FINGERPRINT_PREFIX + mac[:32]
