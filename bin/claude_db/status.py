"""`claude-db-token status`: who is signed in, with which issuer, until when; from the caches alone."""

import json
import sys
import time

from .credentials import cached_sign_in, kept_in
from .service_client import describe as describe_service, service_status


def sign_in_status(config) -> dict:
    """What the caches of this config hold (no network, no secret in the result)."""
    sign_in = cached_sign_in(config)
    now = time.time()
    databricks_at, id_at = sign_in.databricks_token_expires_at, sign_in.id_token_expires_at
    databricks_left = int(databricks_at - now) if databricks_at is not None else None
    return {
        "signed_in": sign_in.has_refresh_token or (databricks_left or 0) > 0,
        "user": sign_in.user,
        "issuer": sign_in.issuer,
        "id_token_expires_in": int(id_at - now) if id_at else None,
        "databricks_host": config.databricks_host,
        "databricks_token_expires_in": databricks_left,
        "sign_in_stored_in": kept_in(config),
        "config": config.path,
    }


def print_status(config, as_json: bool = False) -> int:
    """Print the status (text or JSON) on stdout; exit code 0 when signed in, 1 when not."""
    status = sign_in_status(config)
    status["service"] = service_status(config)
    if as_json:
        sys.stdout.write(json.dumps(status) + "\n")
    else:
        head = "signed in as %s" % (status["user"] or "?") if status["signed_in"] else \
            "not signed in (run `claude-db-token login`)"
        rows = [("issuer", status["issuer"] or "-"),
                ("ID token", _life(status["id_token_expires_in"], "refreshed when needed")),
                ("Databricks token", _life(status["databricks_token_expires_in"], "renewed when needed")),
                ("workspace", status["databricks_host"]),
                ("sign-in kept in", status["sign_in_stored_in"]),
                ("config", status["config"]),
                ("service", describe_service(status["service"]))]
        sys.stdout.write(head + "\n" + "".join("  %-17s %s\n" % (k + ":", v) for k, v in rows))
    return 0 if status["signed_in"] else 1


def _life(seconds, when_expired: str) -> str:
    if seconds is None:
        return "none cached"
    if seconds <= 0:
        return "expired (%s)" % when_expired
    return "valid for %d min %02d s" % divmod(seconds, 60)
