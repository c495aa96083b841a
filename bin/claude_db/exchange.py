"""RFC 8693 token exchange: the IdP's ID token in, a Databricks OAuth token out.

POST <databricks_host>/oidc/v1/token (docs/design.md "The flow"). Databricks
checks the ID token against the account's federation policies (issuer, audience,
signature, subject claim -> a user); a refusal is turned into the cause a user
can act on. 429 and 5xx answers and dropped connections are retried with a
bounded backoff; every request has a timeout.
"""

from __future__ import annotations

import json
import time

import requests

from . import jwt, network, urls
from .errors import AuthError, ConfigError, one_line

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SCOPE = "all-apis"
TIMEOUT = (10, 30)  # seconds: connect, read
ATTEMPTS = 4
BACKOFF = 0.5  # seconds before the 2nd attempt, doubled each time
MAX_WAIT = 10  # seconds: the longest Retry-After we honour


def exchange(config, id_token: str):
    """(access_token, expires_in) for `id_token`; AuthError with the cause and the fix otherwise."""
    url = config.databricks_host + "/oidc/v1/token"
    form = {"grant_type": GRANT_TYPE, "subject_token": id_token, "subject_token_type": SUBJECT_TOKEN_TYPE,
            "scope": SCOPE}
    if config.service_principal_client_id:
        form["client_id"] = config.service_principal_client_id  # workload identity federation
    try:
        urls.check_sendable(url, "the token exchange URL")
    except urls.UnsafeUrl as e:
        raise ConfigError("%s; fix databricks_host in %s" % (e, config.path))
    response = _post_with_retries(url, form, config)
    if response.status_code == 200:
        return _token_in(response, url, config)
    if 300 <= response.status_code < 400:
        raise AuthError("the token exchange at %s answered with a redirect (HTTP %d to %s) instead of a token: "
                        "databricks_host in %s is not the workspace URL itself (a login page or proxy?); set it to "
                        "the workspace URL"
                        % (url, response.status_code, one_line(response.headers.get("Location"), 120) or "nowhere",
                           config.path))
    raise AuthError(refusal_message(config, response.status_code, _error_body(response), jwt.claims(id_token)))


def _token_in(response: requests.Response, url: str, config):
    """(access_token, expires_in) of a 200 answer; a lifetime that is not a positive number is refused."""
    try:
        body = response.json()
        access_token, expires_in = body["access_token"], body["expires_in"]
    except (ValueError, KeyError, TypeError):
        raise AuthError("Databricks answered the token exchange at %s without a token; check databricks_host "
                        "in %s" % (url, config.path))
    if not isinstance(access_token, str) or not access_token:
        raise AuthError("Databricks answered the token exchange at %s with an access_token that is not a string; "
                        "check databricks_host in %s" % (url, config.path))
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or not 0 < expires_in < 1e9:
        raise AuthError("Databricks answered the token exchange at %s with expires_in %s, not a positive number "
                        "of seconds; check databricks_host in %s"
                        % (url, one_line(json.dumps(expires_in), 40), config.path))
    return access_token, int(expires_in)


def _post_with_retries(url: str, form: dict, config) -> requests.Response:
    with network.session(config) as session:
        for attempt in range(1, ATTEMPTS + 1):
            last = attempt == ATTEMPTS
            try:
                # auth=no-op: requests would otherwise add ~/.netrc credentials for this host.
                response = session.post(url, data=form, timeout=TIMEOUT, allow_redirects=False,
                                        headers={"Accept": "application/json"}, auth=lambda r: r)
            except (requests.exceptions.ProxyError, requests.exceptions.SSLError) as e:
                raise network.request_failure(config, url, e, "Databricks at %s" % config.databricks_host)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                if last:
                    raise AuthError("cannot reach Databricks at %s (%s after %d attempts); check your network or "
                                    "VPN, or databricks_host in %s" % (config.databricks_host, type(e).__name__,
                                                                       ATTEMPTS, config.path))
                time.sleep(BACKOFF * 2 ** (attempt - 1))
                continue
            if response.status_code != 429 and response.status_code < 500 or last:
                return response
            time.sleep(_retry_wait(response, attempt))
    raise AssertionError("unreachable")


def _retry_wait(response: requests.Response, attempt: int) -> float:
    retry_after = response.headers.get("Retry-After", "")
    if retry_after.isdigit():
        return min(float(retry_after), MAX_WAIT)
    return BACKOFF * 2 ** (attempt - 1)


def _error_body(response: requests.Response) -> dict:
    """{"error", "error_description"}; Databricks' REST shape {"error_code", "message"} is folded in."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return {"error": str(body.get("error") or body.get("error_code") or body.get("errorCode") or ""),
            "error_description": str(body.get("error_description") or body.get("message")
                                     or body.get("errorSummary") or "")}


def refusal_message(config, status: int, body: dict, claims: dict) -> str:
    """Why Databricks refused the exchange, in terms of what the user (or their admin) can change."""
    error, description = body["error"], one_line(body["error_description"])
    said = "HTTP %d%s%s" % (status, " " + error if error else "", ": " + description if description else "")
    text = (error + " " + description).lower()
    issuer, audience = claims.get("iss", "?"), claims.get("aud", "?")
    user = claims.get("preferred_username") or claims.get("email") or claims.get("sub", "?")
    if status == 404:
        cause = ("%s does not look like a Databricks workspace (no token endpoint); fix databricks_host in %s"
                 % (config.databricks_host, config.path))
    elif status == 429 or status >= 500:
        cause = "Databricks is busy or failing; try again in a minute"
    elif error == "invalid_client" and config.service_principal_client_id:
        cause = ("federation.service_principal_client_id %s in %s is not a service principal with a federation "
                 "policy in this account; fix it, or set it to null for account-wide federation"
                 % (config.service_principal_client_id, config.path))
    elif "expired" in text:
        cause = "the ID token had expired when Databricks checked it; check this machine's clock, then run again"
    elif "audience" in text:
        cause = ("no federation policy for issuer %s accepts audience %s; an account admin must add it to the "
                 "policy's audiences (or fix azure_ad.client_id in %s)" % (issuer, audience, config.path))
    elif "signature" in text or "jwks" in text or "verif" in text or "fetch" in text:
        cause = ("Databricks could not verify the ID token with the keys issuer %s publishes (discovery document, "
                 "JWKS); an account admin must check the federation policy's issuer and jwks settings" % issuer)
    elif "user" in text or "subject" in text or "principal" in text:
        cause = ("%s is not a user of the Databricks account (or the policy's subject_claim names another claim); "
                 "ask an account admin to add the user" % user)
    elif "issuer" in text or "policy" in text:
        cause = ("no federation policy in the Databricks account trusts issuer %s; an account admin must create one "
                 "(playbooks/admin.yml), or fix azure_ad.authority in %s" % (issuer, config.path))
    else:
        cause = ("check the account's federation policy for issuer %s and audience %s, and that %s is a user of "
                 "the account" % (issuer, audience, user))
    return "Databricks refused the token exchange (%s): %s" % (said, cause)
