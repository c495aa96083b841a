"""The claims of a JWT, read without verifying it: the IdP sent it over TLS and Databricks verifies the
signature. Its own module so that the exchange and `status` can read an ID token without importing MSAL."""

import base64
import json
import math


def claims(token: str) -> dict:
    """The payload of a JWT, unverified; {} for anything that is not one."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def expires_at(token: str) -> float:
    """The token's `exp` in epoch seconds; 0 (already expired) when it has none that is a finite number."""
    return time_claim(claims(token).get("exp"))


def time_claim(value) -> float:
    """A JWT time claim as a number; anything else (a string, NaN, infinity) counts as already expired."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return value
