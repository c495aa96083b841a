"""The fake workspace's token exchange checks a subject JWT the way a federation policy does."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.credential_fixtures import add_federation_policy
from tests.support.fake_databricks import Request

AUDIENCE = "app-1"


class Issuer:
    """A minimal OIDC issuer over HTTPS: discovery document + JWKS, and a signer for test JWTs."""

    def __init__(self, pki):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid="k1", use="sig", alg="RS256")
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                docs = {"/t/v2.0/.well-known/openid-configuration": {"issuer": issuer.url,
                                                                     "jwks_uri": issuer.url + "/jwks"},
                        "/t/v2.0/jwks": {"keys": [jwk]}}
                body = json.dumps(docs.get(self.path, {})).encode()
                self.send_response(200 if self.path in docs else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = pki.server_context().wrap_socket(self.server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/t/v2.0" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key=None, **claims):
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "pairwise-1", "preferred_username": "alice@example.test",
                "iat": now, "exp": now + 600}
        body.update(claims)
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer(pki, fake_databricks):
    fake_databricks.issuer_ca = pki.ca_pem
    issuer = Issuer(pki)
    add_federation_policy(fake_databricks, issuer.url, [AUDIENCE])
    yield issuer
    issuer.stop()


def exchange(fake, subject_token, **extra):
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": subject_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "scope": "all-apis", **extra}
    response = fake.dispatch(Request("POST", "/oidc/v1/token", {}, {}, urlencode(form).encode()))
    return response.status, json.loads(response.body)


def test_a_valid_token_becomes_a_databricks_token_for_the_user(fake_databricks, issuer):
    status, body = exchange(fake_databricks, issuer.token())
    assert status == 200 and body["token_type"] == "Bearer" and body["scope"] == "all-apis"
    assert 590 <= body["expires_in"] <= 600  # the subject token's remaining life
    assert fake_databricks.tokens[body["access_token"]].subject == "alice@example.test"


def test_lifetime_is_capped_and_can_be_overridden(fake_databricks, issuer):
    assert exchange(fake_databricks, issuer.token(exp=int(time.time()) + 7200))[1]["expires_in"] == 3600
    fake_databricks.exchange_ttl = 45
    assert exchange(fake_databricks, issuer.token())[1]["expires_in"] == 45


@pytest.mark.parametrize("change,error,words", [
    (dict(exp=int(time.time()) - 5), "invalid_request", "expired"),
    (dict(aud="other-app"), "invalid_request", "audience"),
    (dict(iss="https://127.0.0.1:1/elsewhere/v2.0"), "invalid_request", "no federation policy"),
    (dict(preferred_username="mallory@example.test"), "invalid_request", "not found in the account"),
])
def test_refusals(fake_databricks, issuer, change, error, words):
    status, body = exchange(fake_databricks, issuer.token(**change))
    assert status == 400 and body["error"] == error and words in body["error_description"]


def test_a_token_signed_with_another_key_is_refused(fake_databricks, issuer):
    forged = issuer.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    status, body = exchange(fake_databricks, forged)
    assert status == 400 and "signature" in body["error_description"]


def test_not_a_jwt_and_wrong_grant(fake_databricks, issuer):
    assert exchange(fake_databricks, "opaque-access-token")[0] == 400
    status, body = exchange(fake_databricks, issuer.token(), grant_type="password")
    assert body["error"] == "unsupported_grant_type"


def test_service_principal_policies_apply_when_client_id_names_one(fake_databricks, issuer):
    fake_databricks.service_principals["sp-app"] = 42
    add_federation_policy(fake_databricks, issuer.url, [AUDIENCE], subject_claim="sub", sp_id=42,
                          subject="pairwise-1")
    status, body = exchange(fake_databricks, issuer.token(), client_id="sp-app")
    assert status == 200 and fake_databricks.tokens[body["access_token"]].subject == "sp-app"
    status, body = exchange(fake_databricks, issuer.token(sub="someone-else"), client_id="sp-app")
    assert status == 400 and "service principal federation policy" in body["error_description"]
    status, body = exchange(fake_databricks, issuer.token(), client_id="unknown-app")
    assert status == 401 and body["error"] == "invalid_client"


def test_discovery_document(fake_databricks):
    response = fake_databricks.dispatch(Request("GET", "/oidc/.well-known/oauth-authorization-server", {}, {}, b""))
    doc = json.loads(response.body)
    assert doc["token_endpoint"] == fake_databricks.url + "/oidc/v1/token"
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in doc["grant_types_supported"]
