"""The user's sign-in at the company IdP (Entra ID or any OIDC provider), through MSAL.

What Databricks needs from it is an ID token (its `aud` is our app's client id,
which a federation policy can trust). The order: a cached ID token with life
left -> MSAL force_refresh (a plain silent call may answer from the cached
access token and return no ID token, or an expired one: docs/design.md "Sign-in behaviours")
-> a new sign-in, in the browser (auth code + PKCE) or with a device code when
no browser can reach this machine. Imported only when the cached Databricks
token is not enough (msal and requests are slow to import).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import msal
import requests

from . import jwt, network, urls
from .config import environment
from .errors import AuthError, one_line, say, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

ID_TOKEN_MARGIN = 300  # seconds: a cached ID token closer to expiry than this is refreshed first
HTTP_TIMEOUT = 30  # seconds, for every request MSAL sends
# Refresh errors that mean "the refresh token is no good any more": sign in again (OAuth 2.0 / OIDC codes).
SIGN_IN_AGAIN = ("invalid_grant", "interaction_required", "login_required", "consent_required")

# MSAL logs through the root logger's last-resort handler otherwise (stray warnings on stderr).
logging.getLogger("msal").addHandler(logging.NullHandler())
logging.getLogger("msal").propagate = False


def sign_in_method(forced: Optional[str] = None, env=None, platform: str = sys.platform) -> str:
    """'browser' or 'device': forced by --browser/--device, else device over SSH or without a display."""
    env = os.environ if env is None else env
    if forced:
        return forced
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return "device"  # a browser here could not reach the loopback redirect on that machine
    if env.get("BROWSER"):
        return "browser"  # the user named a browser program
    if platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "device"
    return "browser"


def sign_in_timeout(env=None) -> int:
    """Seconds a sign-in may take: $CLAUDE_DB_LOGIN_TIMEOUT (config.ENVIRONMENT declares its default)."""
    return environment("CLAUDE_DB_LOGIN_TIMEOUT", env)


def is_microsoft_authority(authority: str) -> bool:
    """Entra in any cloud (public, US Gov, China, ...), where MSAL's instance discovery belongs."""
    return urls.parse(authority)[1] in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS


def load_cache(store) -> msal.SerializableTokenCache:
    """The MSAL cache of this config; a damaged one counts as empty (the user signs in again)."""
    cache = msal.SerializableTokenCache()
    data = store.read_msal_cache()
    if data:
        try:
            if not _well_formed(json.loads(data)):
                raise ValueError("not an MSAL cache")
            cache.deserialize(data)
        except (ValueError, TypeError, AttributeError, RecursionError):
            warn("ignoring the damaged MSAL token cache; you will be asked to sign in")
            cache = msal.SerializableTokenCache()
    return cache


# Fields of MSAL cache entries that MSAL reads as text, and those it reads as whole seconds (in text).
_TEXT_FIELDS = ("secret", "home_account_id", "client_id", "environment", "username", "authority_type", "realm",
                "credential_type", "target", "local_account_id")
_SECONDS_FIELDS = ("expires_on", "extended_expires_on", "cached_at", "refresh_on")


def _well_formed(data) -> bool:
    """The shape MSAL's cache code assumes ({section: {key: {field: text}}}), which it does not check itself:
    a cache with the right JSON shape but wrong content would otherwise fail deep inside MSAL."""
    if not isinstance(data, dict):
        return False
    for section in data.values():
        if not isinstance(section, dict):
            return False
        for entry in section.values():
            if not isinstance(entry, dict):
                return False
            if any(k in entry and not isinstance(entry[k], str) for k in _TEXT_FIELDS):
                return False
            if any(k in entry and not str(entry[k]).isdigit() for k in _SECONDS_FIELDS):
                return False
    return True


def signed_in_account(cache: msal.SerializableTokenCache, client_id: str) -> dict:
    """Who is signed in, from the cache alone (no network): for credentials.cached_sign_in."""
    accounts = list(cache.search(msal.TokenCache.CredentialType.ACCOUNT))
    id_token = _newest_id_token(cache, client_id)
    claims = jwt.claims(id_token) if id_token else {}
    refresh = list(cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN, query={"client_id": client_id}))
    return {
        "user": accounts[0].get("username") if accounts else None,
        "issuer": claims.get("iss"),
        "id_token_expires_at": jwt.time_claim(claims.get("exp")) or None,
        "has_refresh_token": bool(refresh),
    }


def _newest_id_token(cache, client_id: str, home_account_id: Optional[str] = None) -> Optional[str]:
    query = {"client_id": client_id}
    if home_account_id:
        query["home_account_id"] = home_account_id
    tokens = [item.get("secret") for item in cache.search(msal.TokenCache.CredentialType.ID_TOKEN, query=query)]
    tokens = [t for t in tokens if t]
    return max(tokens, key=jwt.expires_at) if tokens else None


class Identity:
    """MSAL's public client for one config, with its cache persisted through the Store."""

    def __init__(self, config, store):
        self.config = config
        self.store = store
        self.cache = load_cache(store)
        self.scopes = list(config.scopes)
        self._app = None

    @property
    def app(self) -> msal.PublicClientApplication:
        """MSAL's client, built on first use: building it fetches the IdP's discovery document (network)."""
        if self._app is None:
            http = idp_session(self.config)
            try:
                self._app = msal.PublicClientApplication(
                    self.config.client_id, authority=self.config.authority, token_cache=self.cache,
                    http_client=http,
                    # Instance discovery only makes sense for Microsoft clouds; elsewhere it would call
                    # login.microsoftonline.com (docs/design.md "Sign-in behaviours").
                    instance_discovery=None if is_microsoft_authority(self.config.authority) else False)
            except Exception as e:
                raise self._idp_error(e)
        return self._app

    def id_token(self, interactive: bool, method: Optional[str] = None) -> str:
        """An ID token for the exchange: cached -> force_refresh -> sign-in (if interactive)."""
        cached = self.cached_id_token()
        if cached:
            return cached  # no MSAL app, so no discovery: a hung IdP does not hold up the exchange
        account = self._account()
        if account is not None:
            refreshed = self._refresh(account)
            if refreshed:
                return refreshed
            if not interactive:
                raise AuthError("your sign-in has expired or was revoked; run `claude-db-token login`")
            say("your sign-in has expired or was revoked; signing in again")
        elif not interactive:
            raise AuthError("not signed in; run `claude-db-token login`")
        return self.sign_in(method, login_hint=account.get("username") if account else None)

    def cached_id_token(self) -> Optional[str]:
        """The signed-in account's ID token when it has more than ID_TOKEN_MARGIN left; from the cache alone."""
        accounts = list(self.cache.search(msal.TokenCache.CredentialType.ACCOUNT))
        if not accounts:
            return None
        cached = _newest_id_token(self.cache, self.config.client_id, accounts[0].get("home_account_id"))
        if cached and jwt.expires_at(cached) - time.time() > ID_TOKEN_MARGIN:
            return cached
        return None

    def sign_in(self, method: Optional[str] = None, login_hint: Optional[str] = None) -> str:
        """A new sign-in (browser or device code, always with a timeout); returns the new ID token."""
        method = sign_in_method(method)
        timeout = sign_in_timeout()
        try:
            if method == "device":
                result = self._device_flow(timeout)
            else:
                result = self.app.acquire_token_interactive(
                    self.scopes, timeout=timeout, login_hint=login_hint,
                    auth_uri_callback=lambda uri: say("open this address in a browser on this machine to sign in: "
                                                      + uri))
        except KeyboardInterrupt:
            raise AuthError("sign-in cancelled; run the command again to sign in")
        except msal.oauth2cli.oauth2.BrowserInteractionTimeoutError:
            raise AuthError("sign-in timed out after %d s; run the command again and finish signing in in the "
                            "browser (or use --device)" % timeout)
        except AuthError:
            raise
        except Exception as e:
            raise self._idp_error(e)
        finally:
            self._save()
        if "id_token" not in result:
            raise AuthError(_sign_in_refused(result, timeout))
        self._forget_other_accounts(result.get("id_token_claims", {}).get("preferred_username"))
        self._save()
        return result["id_token"]

    def _refresh(self, account: dict) -> Optional[str]:
        """A fresh ID token from the refresh token; None when only a new sign-in can help (revoked, expired,
        MFA asked for); AuthError when the IdP fails otherwise (no surprise browser window for an outage)."""
        try:
            result = self.app.acquire_token_silent_with_error(self.scopes, account, force_refresh=True)
        except Exception as e:
            raise self._idp_error(e)
        finally:
            self._save()
        if result is None or result.get("id_token") or result.get("error") in SIGN_IN_AGAIN:
            return (result or {}).get("id_token")
        raise AuthError("the identity provider %s refused to refresh the sign-in (%s: %s); try again, or run "
                        "`claude-db-token login`" % (self.config.authority, result.get("error"),
                                                     one_line(result.get("error_description"))))

    def _device_flow(self, timeout: int) -> dict:
        flow = self.app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            reason = one_line(flow.get("error_description") or flow.get("error"))
            raise AuthError("the identity provider refused a device-code sign-in (%s); use --browser, or ask your "
                            "IdP admin to allow public client flows" % reason)
        # Entra sends no verification_uri_complete, and its `message` is not always there: say it ourselves.
        say("to sign in, open %s in a browser on any device and enter the code %s (waiting up to %d s)"
            % (flow["verification_uri"], flow["user_code"], timeout))
        flow["expires_at"] = min(flow.get("expires_at") or float("inf"), time.time() + timeout)
        return self.app.acquire_token_by_device_flow(flow)

    def _account(self) -> Optional[dict]:
        accounts = self.app.get_accounts()
        return accounts[0] if accounts else None

    def _forget_other_accounts(self, username: Optional[str]) -> None:
        """One config, one signed-in user: a new sign-in replaces the previous user."""
        for account in self.app.get_accounts():
            if username and account.get("username") != username:
                self.app.remove_account(account)

    def _save(self) -> None:
        """Persist the cache; when that fails (full disk) go on with the tokens in hand and say what is lost."""
        if self.cache.has_state_changed:
            try:
                self.store.write_msal_cache(self.cache.serialize())
            except OSError as e:
                if not self.store.save_failed:
                    warn("the sign-in could not be saved to %s (%s); this run goes on, but the next one may "
                         "ask you to sign in again; free some space" % (e.filename or self.store.msal_path,
                                                                        e.strerror or e))
                self.store.save_failed = True
                return
            self.cache.has_state_changed = False

    def _idp_error(self, error: Exception) -> AuthError:
        where = "the identity provider %s" % self.config.authority
        if isinstance(error, urls.UnsafeUrl):
            return AuthError("%s: %s; its discovery document must publish https endpoints (ask its admin), or fix "
                             "azure_ad.authority in %s" % (where, error, self.config.path))
        failure = network.request_failure(self.config, self.config.authority, error, where)
        if failure is not None:
            return failure
        if isinstance(error, requests.exceptions.Timeout):
            return AuthError("%s did not answer within %d s; check your network or VPN and retry"
                             % (where, HTTP_TIMEOUT))
        if isinstance(error, requests.exceptions.ConnectionError):
            return AuthError("cannot reach %s; check your network or VPN, or azure_ad.authority in %s"
                             % (where, self.config.path))
        return AuthError("%s failed: %s; check azure_ad.authority and azure_ad.client_id in %s"
                         % (where, one_line(str(error)), self.config.path))


def idp_session(config) -> requests.Session:
    """MSAL's HTTP client: network.session() (the egress proxy and CA bundle in force) with what MSAL's own
    would have (a timeout on every request, one retry), and a secret never goes over plain http to another
    host: not when the discovery document names such an endpoint, not when an https endpoint redirects
    there (a 307 would repeat the refresh token in the body)."""
    http = network.session(config, timeout=HTTP_TIMEOUT)
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    http.hooks["response"].append(_refuse_unsafe_redirect)
    send = http.request

    def request(method, url, *args, **kwargs):
        urls.check_sendable(url, "the identity provider's endpoint")
        return send(method, url, *args, **kwargs)

    http.request = request
    return http


def _refuse_unsafe_redirect(response, *args, **kwargs):
    if response.is_redirect:
        target = requests.compat.urljoin(response.url, response.headers["location"])
        urls.check_sendable(target, "the identity provider's redirect from %s to" % response.url.split("?")[0])
    return response


def _sign_in_refused(result: dict, timeout: int) -> str:
    error = result.get("error") or "unknown_error"
    if error in ("authorization_pending", "expired_token", "slow_down"):
        return "sign-in timed out after %d s; run the command again and enter the code in time" % timeout
    if error == "access_denied":
        return "sign-in was cancelled or refused at the identity provider (%s); run the command again" % (
            one_line(result.get("error_description")) or error)
    return "sign-in failed at the identity provider (%s: %s); check azure_ad.client_id and azure_ad.scopes" % (
        error, one_line(result.get("error_description")))
