"""The OAuth token endpoints: RFC 8693 exchange of an IdP JWT, and service principals' client credentials.

Routes (facts/databricks-api.md §D):
  POST /oidc/v1/token                                  grant_type=...:token-exchange | client_credentials
  GET  /oidc/.well-known/oauth-authorization-server    the endpoint's discovery document
  POST /oidc/accounts/{account_id}/v1/token            the account's, same grants
  GET  /oidc/accounts/{account_id}/.well-known/oauth-authorization-server

Client credentials (OAuth M2M, docs.databricks.com/en/dev-tools/auth/oauth-m2m.html): the service
principal's application id and OAuth secret in HTTP Basic auth (what the SDK's `oauth_service_principal`
sends: databricks/sdk/credentials_provider.py, oauth.ClientCredentials with use_header=True) or as
client_id/client_secret form fields; scope all-apis. A wrong or unknown secret is 401
{"error": "invalid_client", "error_description": "Client authentication failed"} (the text clients
surface, e.g. databricks-sql-nodejs issue 279). Secrets live in `fake.oauth_secrets` (application id
-> secret); `add_service_principal_secret` makes one.

The subject token is checked the way a federation policy does it, against
`fake.federation_policies` (accounts.py keeps them there): the policies of the
service principal named by `client_id`, else the account-wide ones; issuer
discovery and JWKS over HTTPS (trusting `fake.issuer_ca`, a CA file; None = the
system's), the signature, `iss`, `aud`, `exp`, then `subject_claim` -> a user in
`fake.users` (or the SP policy's `subject`). Refusals use the OAuth error shape
{"error", "error_description"}. The token lifetime is the JWT's remaining life
capped at one hour, or `fake.exchange_ttl` seconds when a test sets it.
"""

import base64
import binascii
import hmac
import json
import secrets
import ssl
import time
import urllib.request

import jwt

from .server import ApiError, Request, Response

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
CLIENT_CREDENTIALS = "client_credentials"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
MAX_TTL = 3600
ALGORITHMS = ["RS256", "ES256"]  # what Databricks accepts (facts §C)


def register(fake) -> None:
    fake.issuer_ca = None  # CA file trusted when fetching an issuer's discovery document and keys
    fake.exchange_ttl = None  # seconds; None = the JWT's remaining life, at most MAX_TTL
    fake.oauth_secrets = {}  # service principal application id -> its OAuth secret
    exchange = TokenExchange(fake)
    fake.route("POST", r"/oidc/v1/token", exchange.token)
    fake.route("GET", r"/oidc/\.well-known/oauth-authorization-server", exchange.discovery)
    fake.route("POST", r"/oidc/accounts/(?P<account_id>[^/]+)/v1/token", exchange.account_token)
    fake.route("GET", r"/oidc/accounts/(?P<account_id>[^/]+)/\.well-known/oauth-authorization-server",
               exchange.account_discovery)


def add_service_principal_secret(fake, application_id: str, sp_id: int) -> str:
    """Register service principal `sp_id` with `application_id` and give it a fresh OAuth secret (returned)."""
    secret = "dose" + secrets.token_hex(16)
    with fake.lock:
        fake.service_principals[application_id] = sp_id
        fake.oauth_secrets[application_id] = secret
    return secret


class Refused(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.response = Response.json({"error": error, "error_description": description}, status)


class TokenExchange:
    def __init__(self, fake):
        self.fake = fake
        self._jwks_clients = {}  # jwks_uri -> PyJWKClient (it caches keys, refetching on an unknown kid)

    def discovery(self, req: Request) -> Response:
        return self._discovery(self.fake.url + "/oidc")

    def account_discovery(self, req: Request, account_id: str) -> Response:
        self._check_account(account_id)
        return self._discovery("%s/oidc/accounts/%s" % (self.fake.url, account_id))

    def _check_account(self, account_id: str) -> None:
        if account_id != self.fake.account_id:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Account %s does not exist." % account_id)

    def _discovery(self, base: str) -> Response:
        return Response.json({
            "issuer": base, "authorization_endpoint": base + "/v1/authorize", "token_endpoint": base + "/v1/token",
            "jwks_uri": base + "/jwks.json", "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", GRANT_TYPE],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"], "scopes_supported": ["all-apis", "offline_access"]})

    def token(self, req: Request) -> Response:
        try:
            form = req.form()
            if form.get("grant_type") == CLIENT_CREDENTIALS:
                return self._client_credentials(req, form)
            return self._exchange(form)
        except Refused as e:
            return e.response

    def account_token(self, req: Request, account_id: str) -> Response:
        self._check_account(account_id)
        return self.token(req)

    def _client_credentials(self, req: Request, form: dict) -> Response:
        """OAuth M2M: a service principal's application id + OAuth secret -> a one-hour token acting as it."""
        client_id, secret = _basic_credentials(req.headers.get("authorization", ""))
        if client_id is None:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        with self.fake.lock:
            expected = self.fake.oauth_secrets.get(client_id or "")
        if expected is None or not hmac.compare_digest(expected, secret or ""):
            raise Refused(401, "invalid_client", "Client authentication failed")
        access_token = self.fake.issue_token(client_id, MAX_TTL)
        return Response.json({"access_token": access_token, "token_type": "Bearer", "expires_in": MAX_TTL,
                              "scope": form.get("scope") or "all-apis"})

    def _exchange(self, form: dict) -> Response:
        if form.get("grant_type") != GRANT_TYPE:
            raise Refused(400, "unsupported_grant_type", "Grant type '%s' is not supported by this endpoint."
                          % form.get("grant_type", ""))
        if form.get("subject_token_type") != SUBJECT_TOKEN_TYPE:
            raise Refused(400, "invalid_request", "Unsupported subject_token_type '%s'."
                          % form.get("subject_token_type", ""))
        subject_token = form.get("subject_token") or ""
        try:
            unverified = jwt.decode(subject_token, options={"verify_signature": False})
            header = jwt.get_unverified_header(subject_token)
        except jwt.PyJWTError:
            raise Refused(400, "invalid_request", "The subject token is not a valid JWT.")
        if header.get("alg") not in ALGORITHMS:
            raise Refused(400, "invalid_request", "Unsupported token signing algorithm '%s'." % header.get("alg"))
        issuer = unverified.get("iss") or ""
        policies = [p["oidc_policy"] for p in self._policies(form.get("client_id"))
                    if p["oidc_policy"].get("issuer") == issuer]
        if not policies:
            raise Refused(400, "invalid_request", "Token exchange failed: no federation policy matches the token "
                          "issuer '%s'." % issuer)
        with_audience = [p for p in policies if _audience_matches(unverified.get("aud"), p["audiences"])]
        if not with_audience:
            raise Refused(400, "invalid_request", "Token exchange failed: the token audience does not match any "
                          "federation policy for issuer '%s'." % issuer)
        policy = with_audience[0]
        claims = self._verified(subject_token, policy, issuer)
        principal = self._principal(claims, policy, form.get("client_id"))
        remaining = claims["exp"] - time.time()
        ttl = self.fake.exchange_ttl if self.fake.exchange_ttl is not None else min(remaining, MAX_TTL)
        access_token = self.fake.issue_token(principal, ttl)
        return Response.json({"access_token": access_token, "token_type": "Bearer", "expires_in": int(ttl),
                              "scope": form.get("scope") or "all-apis"})

    def _policies(self, client_id):
        """The service principal's policies when client_id names one, else the account-wide ones."""
        with self.fake.lock:
            stored = list(self.fake.federation_policies.values())
            sp_id = self.fake.service_principals.get(client_id) if client_id else None
        if client_id and sp_id is None:
            raise Refused(401, "invalid_client", "Client authentication failed: no service principal with "
                          "application id '%s' in this account." % client_id)
        return [p for p in stored if p.get("service_principal_id") == sp_id]

    def _verified(self, subject_token: str, policy: dict, issuer: str) -> dict:
        try:
            key = self._signing_key(subject_token, policy, issuer)
            return jwt.decode(subject_token, key, algorithms=ALGORITHMS, audience=policy["audiences"],
                              issuer=issuer, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Refused(400, "invalid_request", "Token exchange failed: the subject token is expired.")
        except jwt.InvalidSignatureError:
            raise Refused(400, "invalid_request", "Token exchange failed: the subject token signature could not be "
                          "verified with the issuer's keys.")
        except jwt.PyJWKClientError as e:
            raise Refused(400, "invalid_request", "Token exchange failed: could not fetch signing keys (JWKS) for "
                          "issuer '%s': %s" % (issuer, e))
        except jwt.PyJWTError as e:
            raise Refused(400, "invalid_request", "Token exchange failed: invalid subject token: %s" % e)

    def _signing_key(self, subject_token: str, policy: dict, issuer: str):
        if policy.get("jwks_json"):
            kid = jwt.get_unverified_header(subject_token).get("kid")
            for key in jwt.PyJWKSet.from_json(policy["jwks_json"]).keys:
                if kid is None or key.key_id == kid:
                    return key
            raise jwt.InvalidSignatureError("no key with kid %s in the policy's jwks_json" % kid)
        jwks_uri = policy.get("jwks_uri") or self._discover_jwks_uri(issuer)
        with self.fake.lock:
            client = self._jwks_clients.get(jwks_uri)
            if client is None:
                client = self._jwks_clients[jwks_uri] = jwt.PyJWKClient(jwks_uri, ssl_context=self._ssl_context(),
                                                                        timeout=10)
        return client.get_signing_key_from_jwt(subject_token)

    def _discover_jwks_uri(self, issuer: str) -> str:
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=10, context=self._ssl_context()) as response:
                return json.loads(response.read())["jwks_uri"]
        except (OSError, ValueError, KeyError) as e:
            raise Refused(400, "invalid_request", "Token exchange failed: could not fetch the OpenID configuration "
                          "of issuer '%s': %s" % (issuer, e))

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.fake.issuer_ca)

    def _principal(self, claims: dict, policy: dict, client_id) -> str:
        claim = policy.get("subject_claim") or "sub"
        value = claims.get(claim)
        if client_id:
            if value != policy.get("subject"):
                raise Refused(400, "invalid_request", "Token exchange failed: the token subject does not match the "
                              "service principal federation policy.")
            return client_id
        with self.fake.lock:
            known = value in self.fake.users
        if not known:
            raise Refused(400, "invalid_request", "Token exchange failed: user '%s' (claim '%s') not found in the "
                          "account." % (value, claim))
        return value


def _basic_credentials(header: str):
    """(client id, secret) from an HTTP Basic Authorization header, or (None, None)."""
    if not header.startswith("Basic "):
        return None, None
    try:
        client_id, colon, secret = base64.b64decode(header[len("Basic "):]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return (client_id, secret) if colon else (None, None)


def _audience_matches(aud, audiences) -> bool:
    values = aud if isinstance(aud, list) else [aud]
    return any(a in audiences for a in values)
