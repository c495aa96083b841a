"""A Databricks token for the signed-in user: the one API to the sign-in. The launcher, the proxy and the
CLI (login, logout, status, doctor) call it; nothing else reaches into the Store or identity (MSAL).

Order: the cached Databricks token (a file read: no network, no keyring, no
msal/requests import) -> exchange a cached ID token -> MSAL force_refresh ->
a new sign-in. Refreshing happens under a cross-process lock with a re-read of
the cache after taking it, so many concurrent callers refresh once.
"""

from __future__ import annotations

import time

from .errors import warn
from .store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

# Databricks refuses tokens with 30 s or less left (docs/design.md "Sign-in behaviours"); keep a minute in hand.
SAFETY_MARGIN = 60
# What `--raw` hands Claude Code's apiKeyHelper must outlive Claude Code's cache of it: the answer is
# reused for CLAUDE_CODE_API_KEY_HELPER_TTL_MS (5 min by default) and then sent once more, stale,
# while the helper re-runs. Ten minutes covers that with the margin above to spare.
HELPER_MIN_LIFE = 600
WAITING = "waiting for another claude-db or claude-db-token of yours to finish signing in or refreshing"


class DatabricksToken:
    """A Databricks OAuth access token and when it expires (epoch seconds); repr hides the token.

    A plain class rather than a dataclass: importing dataclasses alone costs ~2x Python's start-up.
    """

    __slots__ = ("access_token", "expires_at")

    def __init__(self, access_token: str, expires_at: float):
        self.access_token = access_token
        self.expires_at = expires_at

    @property
    def expires_in(self) -> int:
        """Whole seconds of life left (0 once expired)."""
        return max(0, int(self.expires_at - time.time()))

    def __eq__(self, other):
        return (isinstance(other, DatabricksToken) and other.access_token == self.access_token
                and other.expires_at == self.expires_at)

    def __hash__(self):
        return hash((self.access_token, self.expires_at))

    def __repr__(self):
        return "DatabricksToken(access_token=<hidden>, expires_in=%d)" % self.expires_in


def cached_token(config) -> Optional[DatabricksToken]:
    """The cached token when it has more than SAFETY_MARGIN left; None otherwise. No network, no prompt."""
    return _usable(Store(config).read_token())


def get_token(config, *, interactive: bool = True, rejected: Optional[str] = None,
              method: Optional[str] = None, min_life: float = SAFETY_MARGIN) -> DatabricksToken:
    """A token with more than `min_life` seconds left (unless the IdP's own tokens live shorter).

    interactive: may open a browser / print a device code when no sign-in is cached
        (else AuthError "not signed in; run `claude-db-token login`").
    rejected: a token Databricks refused (401/403); if the cache still holds it, it counts as expired.
    method: "browser" or "device" to force how a sign-in happens (default: decided from the environment).
    min_life: seconds of life a cached token needs to be returned as is (HELPER_MIN_LIFE for apiKeyHelper).
    """
    store = Store(config)
    token = _usable(store.read_token(), rejected, min_life)
    if token is not None:
        return token
    with store.refresh_lock(WAITING if interactive else None):
        token = _usable(store.read_token(), rejected, min_life)  # another process may have refreshed meanwhile
        if token is not None:
            return token
        from .identity import Identity
        id_token = Identity(config, store).id_token(interactive, method)
        return _exchange_and_store(config, store, id_token)


def sign_in(config, method: Optional[str] = None) -> DatabricksToken:
    """`claude-db-token login`: a new sign-in even when one is cached, then a fresh Databricks token."""
    store = Store(config)
    with store.refresh_lock(WAITING):
        from .identity import Identity
        id_token = Identity(config, store).sign_in(method)
        return _exchange_and_store(config, store, id_token)


def sign_out(config) -> list:
    """`claude-db-token logout`: delete every cached secret of this config; returns where they were."""
    store = Store(config)
    # Under the lock, so that a refresh running meanwhile cannot write the secrets back.
    with store.refresh_lock("waiting for a sign-in or refresh in progress to finish before signing out"):
        return store.forget()


class SignIn:
    """What the caches of one config hold, from the caches alone (no network, no secret): `status`, `doctor`.

    Expiry times are epoch seconds, None when nothing is cached; the Databricks token's may be past."""

    __slots__ = ("user", "issuer", "id_token_expires_at", "has_refresh_token", "databricks_token_expires_at")

    def __init__(self, user, issuer, id_token_expires_at, has_refresh_token, databricks_token_expires_at):
        self.user = user
        self.issuer = issuer
        self.id_token_expires_at = id_token_expires_at
        self.has_refresh_token = has_refresh_token
        self.databricks_token_expires_at = databricks_token_expires_at


def cached_sign_in(config) -> SignIn:
    """Who is signed in for this config and until when, from the caches (imports MSAL to read its cache)."""
    from .identity import load_cache, signed_in_account
    store = Store(config)
    found = signed_in_account(load_cache(store), config.client_id)
    token = store.read_token()
    return SignIn(found["user"], found["issuer"], found["id_token_expires_at"], found["has_refresh_token"],
                  token["expires_at"] if token else None)


def kept_in(config) -> str:
    """Where this config's sign-in is kept, in words: the OS keyring (which backend) or the file."""
    return Store(config).msal_cache_location()


def make_private(config) -> list:
    """chmod 600 the secret files of this config that group or others could read; the ones fixed (`doctor`)."""
    return Store(config).make_private()


def idp_token_endpoint(config) -> str:
    """The IdP's token endpoint, from its discovery document (MSAL fetches it): `doctor`'s IdP check."""
    from .identity import Identity
    return Identity(config, Store(config)).app.authority.token_endpoint


def _exchange_and_store(config, store: Store, id_token: str) -> DatabricksToken:
    from .exchange import exchange
    access_token, expires_in = exchange(config, id_token)
    token = DatabricksToken(access_token, time.time() + expires_in)
    try:
        store.write_token(token.access_token, token.expires_at)
    except OSError as e:  # a full disk, say: the token still works for this caller
        if not store.save_failed:
            warn("could not save the Databricks token to %s (%s); using it anyway, the next run fetches another"
                 % (store.token_path, e.strerror or e))
    return token


def _usable(data: Optional[dict], rejected: Optional[str] = None,
            min_life: float = SAFETY_MARGIN) -> Optional[DatabricksToken]:
    if data is None or data["access_token"] == rejected or data["expires_at"] - time.time() <= min_life:
        return None
    return DatabricksToken(data["access_token"], data["expires_at"])
