# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small Databricks REST client: the SDK's unified auth, JSON over HTTPS, bounded retries.

Authentication is the Databricks SDK's own (`databricks.sdk.core.Config`): explicit options
first (host, account_id, profile, token, client_id, client_secret, auth_type), then the
DATABRICKS_* environment variables, then ~/.databrickscfg profiles. The SDK supplies fresh
auth headers per request (OAuth tokens refresh themselves); this client only sends the calls,
so its errors and retries are ours to word and bound. Workspace calls carry
X-Databricks-Workspace-Id when the workspace id is known (the option, DATABRICKS_WORKSPACE_ID, the
profile, or the host's /.well-known/databricks-config), as the SDK's workspace APIs do, so that a
unified host (one host, several workspaces) routes them to the right workspace.

How a module uses it (module.py does the first step for you):

    client = module.client()                 # workspace APIs (serving endpoints, permissions)
    client = module.client(account=True)     # account APIs; client.account_id is then set
    endpoint = client.get(endpoint_path("x"), missing_ok=True)   # None on 404 (serving_api.endpoint_path)
    client.put(endpoint_path("x", "/ai-gateway"), body)

Failures raise `DatabricksApiError` / `DatabricksAuthError` (errors.py). 429 and 503 answers are retried with
full-jitter exponential backoff (honouring Retry-After), at most `RETRIES` times.
The SDK (and `requests`, which it brings) is imported behind HAS_DATABRICKS_SDK so the
collection imports without it; `module.client()` turns its absence into missing_required_lib.
"""

from __future__ import annotations

import random
import time
import traceback

from ansible_collections.databricks_claude.gateway.plugins.module_utils.errors import (
    DatabricksApiError,
    DatabricksAuthError,
)

try:
    import requests
    from databricks.sdk.core import Config
except ImportError:
    HAS_DATABRICKS_SDK = False
    DATABRICKS_SDK_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_DATABRICKS_SDK = True
    DATABRICKS_SDK_IMPORT_ERROR = None

# The connection/auth options every module takes, in the SDK's own attribute names.
AUTH_OPTIONS = ("host", "account_id", "workspace_id", "profile", "token", "client_id", "client_secret", "auth_type")
AUTH_HINT = ("give the host and token or client_id/client_secret options, set DATABRICKS_HOST and "
             "DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET), or name a ~/.databrickscfg "
             "profile with the profile option or DATABRICKS_CONFIG_PROFILE")
SDK_RETRY_TIMEOUT = 30  # seconds
RETRY_STATUSES = (429, 503)
RETRIES = 6  # also stated in doc_fragments/connection.py (held equal by tests/unit/test_collection_facts.py)
BACKOFF_BASE = 1.0  # seconds; attempt n waits up to BACKOFF_BASE * 2**n ...
BACKOFF_CAP = 20.0  # ... but never more than this
USER_AGENT_PRODUCT = "databricks-claude-gateway-ansible"
USER_AGENT_VERSION = "1.0.0"  # galaxy.yml owns the version (tests/unit/test_collection_facts.py holds this equal)


def backoff_delays(retries=RETRIES, base=BACKOFF_BASE, cap=BACKOFF_CAP, rand=random.uniform):
    """Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2**n)] per retry."""
    for attempt in range(retries):
        yield rand(0, min(cap, base * 2 ** attempt))


def _retry_after(headers, cap):
    value = (headers or {}).get("Retry-After")
    try:
        return min(float(value), cap)
    except (TypeError, ValueError):
        return 0.0


class DatabricksClient:
    """JSON calls against one Databricks host (a workspace, or the account console)."""

    def __init__(self, options, account=False, sleep=time.sleep, delays=backoff_delays):
        """`options`: a dict holding AUTH_OPTIONS (None = let the SDK find it in env / profile)."""
        kwargs = dict((k, options.get(k)) for k in AUTH_OPTIONS if options.get(k) not in (None, ""))
        # The SDK's own calls (host metadata probe, OAuth token fetches) otherwise retry for 300 s,
        # so a mistyped host would hang the task for five minutes.
        kwargs["retry_timeout_seconds"] = SDK_RETRY_TIMEOUT
        try:
            self.config = Config(product=USER_AGENT_PRODUCT, product_version=USER_AGENT_VERSION, **kwargs)
        except ValueError as e:
            raise DatabricksAuthError("%s (%s)" % (str(e).rstrip("."), AUTH_HINT))
        self.account = account
        if account and not self.config.account_id:
            raise DatabricksAuthError("account_id is required for account APIs: set the account_id option, "
                                      "DATABRICKS_ACCOUNT_ID, or account_id in the profile")
        self.host = self.config.host.rstrip("/")
        self._sleep = sleep
        self._delays = delays
        self._session = requests.Session()

    @property
    def account_id(self):
        return self.config.account_id

    def get(self, path, query=None, missing_ok=False):
        """GET; with missing_ok a 404 returns None instead of raising."""
        try:
            return self.request("GET", path, query=query)
        except DatabricksApiError as e:
            if missing_ok and e.not_found:
                return None
            raise

    def post(self, path, body=None, query=None):
        return self.request("POST", path, body=body, query=query)

    def put(self, path, body=None, query=None):
        return self.request("PUT", path, body=body, query=query)

    def patch(self, path, body=None, query=None):
        return self.request("PATCH", path, body=body, query=query)

    def delete(self, path, query=None):
        return self.request("DELETE", path, query=query)

    def request(self, method, path, body=None, query=None):
        """Send one call; retry 429/503 with jittered backoff; return the decoded JSON body ({} if empty)."""
        delays = self._delays()
        while True:
            response = self._send(method, path, body, query)
            if response.status_code < 400:
                return response.json() if response.content.strip() else {}
            error = DatabricksApiError.from_response(response.status_code, response.content, method, path)
            if response.status_code not in RETRY_STATUSES:
                raise error
            delay = next(delays, None)
            if delay is None:
                raise error
            self._sleep(max(delay, _retry_after(response.headers, BACKOFF_CAP)))

    def _send(self, method, path, body, query):
        headers = {"Accept": "application/json", "User-Agent": self.config.user_agent}
        if not self.account and self.config.workspace_id:
            headers["X-Databricks-Workspace-Id"] = self.config.workspace_id
        try:
            headers.update(self.config.authenticate())
        except ValueError as e:
            raise DatabricksAuthError(str(e))
        try:
            return self._session.request(
                method, self.host + path, params=query, json=body, headers=headers,
                timeout=self.config.http_timeout_seconds or 60, verify=not self.config.skip_verify)
        except requests.RequestException as e:
            raise DatabricksApiError(None, "CONNECTION_ERROR", "cannot reach %s: %s" % (self.host, e), method, path)
