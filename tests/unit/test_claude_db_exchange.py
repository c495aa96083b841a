"""claude_db.exchange (against the fake workspace) and the sign-in decisions of claude_db.identity."""

import base64
import json
import subprocess
import sys

import pytest

from claude_db.config import load_config
from claude_db.errors import AuthError, ConfigError
from claude_db.exchange import ATTEMPTS, exchange, refusal_message
from claude_db.identity import is_microsoft_authority, sign_in_method, sign_in_timeout
from claude_db import jwt
from tests.support.credential_fixtures import BIN
from tests.support.fake_databricks import Response
from tests.support.pki import make_pki

CLAIMS = {"iss": "https://idp.example/t/v2.0", "aud": "cid-1", "preferred_username": "alice@example.test"}
# JWT-shaped but unsigned: what the exchange must refuse without ever echoing it. Built here, not written
# out, so that nothing token-like sits in the repository.
NOT_A_VALID_JWT = ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode()
                           for part in (b'{"alg":"RS256"}', b'{"iss":"x"}', b"sig"))


@pytest.fixture
def config(tmp_path, monkeypatch, fake_databricks, trust_test_ca):
    monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"databricks_host": fake_databricks.url, "endpoint_name": "e",
                                "azure_ad": {"tenant_id": "t", "client_id": "cid-1"}}))
    return load_config(str(path))


@pytest.fixture
def offline_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"databricks_host": "https://adb-1.azuredatabricks.net", "endpoint_name": "e",
                                "azure_ad": {"tenant_id": "t", "client_id": "cid-1"}}))
    return load_config(str(path))


def calls(fake):
    return fake.calls(r"^/oidc/v1/token$", "POST")


def test_5xx_and_429_are_retried_then_the_refusal_is_explained(config, fake_databricks, monkeypatch):
    monkeypatch.setattr("claude_db.exchange.BACKOFF", 0.01)
    fake_databricks.fail(r"^/oidc/v1/token$", status=500, times=1)
    fake_databricks.fail(r"^/oidc/v1/token$", status=429, times=1)
    with pytest.raises(AuthError) as e:
        exchange(config, NOT_A_VALID_JWT)
    assert len(calls(fake_databricks)) == 3  # 500, 429, then the fake's own answer: a refusal
    assert "HTTP 400 invalid_request" in str(e.value) and NOT_A_VALID_JWT not in str(e.value)


def test_retries_are_bounded(config, fake_databricks, monkeypatch):
    monkeypatch.setattr("claude_db.exchange.BACKOFF", 0.01)
    fake_databricks.fail(r"^/oidc/v1/token$", status=503, times=-1)
    with pytest.raises(AuthError) as e:
        exchange(config, NOT_A_VALID_JWT)
    assert len(calls(fake_databricks)) == ATTEMPTS
    assert "HTTP 503" in str(e.value) and "busy" in str(e.value)


def test_retry_after_is_honoured_within_bounds(config, fake_databricks, monkeypatch):
    waits = []
    monkeypatch.setattr("claude_db.exchange.time.sleep", waits.append)
    busy = Response.json({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}, 429,
                         {"Retry-After": "600"})
    fake_databricks.fail(r"^/oidc/v1/token$", status=429, times=2, body=busy)
    with pytest.raises(AuthError):
        exchange(config, NOT_A_VALID_JWT)
    assert waits == [10, 10]  # Retry-After: 600 capped at MAX_WAIT


def test_unreachable_workspace(tmp_path, monkeypatch):
    import socket
    monkeypatch.setattr("claude_db.exchange.BACKOFF", 0.01)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connection refused
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"databricks_host": "https://127.0.0.1:%d" % port, "endpoint_name": "e",
                                "azure_ad": {"tenant_id": "t", "client_id": "c"}}))
    with pytest.raises(AuthError) as e:
        exchange(load_config(str(path)), NOT_A_VALID_JWT)
    assert "cannot reach Databricks at https://127.0.0.1:%d" % port in str(e.value)
    assert "after %d attempts" % ATTEMPTS in str(e.value)


def test_netrc_credentials_are_never_sent(config, fake_databricks, tmp_path):
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login someone password hunter2\n")
    (tmp_path / ".netrc").chmod(0o600)
    with pytest.raises(AuthError):
        exchange(config, NOT_A_VALID_JWT)
    assert "authorization" not in calls(fake_databricks)[0].headers


def test_not_a_workspace(config, fake_databricks):
    fake_databricks.fail(r"^/oidc/v1/token$", status=404, body=Response.error(404, "ENDPOINT_NOT_FOUND", "nope"))
    with pytest.raises(AuthError) as e:
        exchange(config, NOT_A_VALID_JWT)
    assert "does not look like a Databricks workspace" in str(e.value) and config.path in str(e.value)


REFUSALS = [
    ("Token exchange failed: no federation policy matches the token issuer 'x'.", "no federation policy in the "
     "Databricks account trusts issuer https://idp.example/t/v2.0"),
    ("Token exchange failed: the token audience does not match any federation policy", "accepts audience cid-1"),
    ("Token exchange failed: user 'alice@example.test' (claim 'email') not found in the account.",
     "alice@example.test is not a user of the Databricks account"),
    ("Token exchange failed: the subject token is expired.", "check this machine's clock"),
    ("Token exchange failed: the subject token signature could not be verified", "signature"),
    ("Something new", "check the account's federation policy for issuer https://idp.example/t/v2.0"),
]


@pytest.mark.parametrize("description,expected", REFUSALS)
def test_refusals_name_a_cause_someone_can_act_on(offline_config, description, expected):
    message = refusal_message(offline_config, 400, {"error": "invalid_request", "error_description": description}, CLAIMS)
    assert expected in message
    assert message.startswith("Databricks refused the token exchange (HTTP 400 invalid_request: ")
    assert "\n" not in message


def test_a_multi_line_description_stays_on_one_line(offline_config):
    message = refusal_message(offline_config, 400, {"error": "x", "error_description": "a\nb\r\nc" + "d" * 1000}, {})
    assert "\n" not in message and len(message) < 800


@pytest.mark.parametrize("env,platform,expected", [
    ({}, "darwin", "browser"),
    ({"DISPLAY": ":0"}, "linux", "browser"),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", "browser"),
    ({}, "linux", "device"),
    ({"BROWSER": "/usr/bin/firefox"}, "linux", "browser"),
    ({"SSH_CONNECTION": "a b c d", "DISPLAY": ":0"}, "linux", "device"),
    ({"SSH_TTY": "/dev/pts/1", "BROWSER": "x"}, "darwin", "device"),
])
def test_browser_or_device(env, platform, expected):
    assert sign_in_method(None, env, platform) == expected


def test_forced_method_wins():
    assert sign_in_method("browser", {"SSH_TTY": "x"}, "linux") == "browser"
    assert sign_in_method("device", {"DISPLAY": ":0"}, "darwin") == "device"


def test_sign_in_timeout():
    assert sign_in_timeout({}) == 300
    assert sign_in_timeout({"CLAUDE_DB_LOGIN_TIMEOUT": "5"}) == 5
    with pytest.raises(ConfigError):
        sign_in_timeout({"CLAUDE_DB_LOGIN_TIMEOUT": "soon"})


def test_instance_discovery_only_for_microsoft_clouds():
    assert is_microsoft_authority("https://login.microsoftonline.com/tid")
    assert is_microsoft_authority("https://login.microsoftonline.us/tid")
    assert not is_microsoft_authority("https://127.0.0.1:9/tid")
    assert not is_microsoft_authority("https://login.microsoftonline.com.evil.example/tid")


def test_jwt_claims_never_raise():
    assert jwt.claims("a.eyJpc3MiOiJ4In0.c") == {"iss": "x"}
    for junk in ("", "abc", "a.!!!.c", "a.WzFd.c"):
        assert jwt.claims(junk) == {}


@pytest.mark.parametrize("answer,outcome", [
    ({"error": "invalid_grant", "error_description": "AADSTS700082: expired"}, None),
    ({"error": "interaction_required", "error_description": "AADSTS50076: MFA"}, None),
    (None, None),  # no refresh token for the account
    ({"id_token": "new.id.token", "access_token": "a"}, "new.id.token"),
    ({"error": "temporarily_unavailable", "error_description": "try later"}, AuthError),
])
def test_which_refresh_failures_lead_to_a_new_sign_in(offline_config, answer, outcome):
    from types import SimpleNamespace

    from claude_db.identity import Identity
    identity = Identity.__new__(Identity)  # only the refresh decision, without MSAL's network set-up
    identity.config, identity.scopes = offline_config, ["email"]
    identity.cache = SimpleNamespace(has_state_changed=False)
    identity._app = SimpleNamespace(acquire_token_silent_with_error=lambda *args, **kwargs: answer)
    if outcome is AuthError:
        with pytest.raises(AuthError) as e:
            identity._refresh({"username": "alice"})
        assert "temporarily_unavailable: try later" in str(e.value)
    else:
        assert identity._refresh({"username": "alice"}) == outcome


def test_an_untrusted_workspace_certificate_is_a_tls_error(tmp_path, monkeypatch, fake_databricks):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", make_pki(str(tmp_path / "other-ca")).ca_pem)  # not the test CA
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"databricks_host": fake_databricks.url, "endpoint_name": "e",
                                "azure_ad": {"tenant_id": "t", "client_id": "c"}}))
    with pytest.raises(AuthError) as e:
        exchange(load_config(str(path)), NOT_A_VALID_JWT)
    assert str(e.value).startswith("TLS verification failed for Databricks at %s" % fake_databricks.url)
    assert calls(fake_databricks) == []  # nothing was sent over the unverified connection


def test_the_exchange_reads_the_id_token_without_msal():
    """A cached ID token is exchanged without importing MSAL: the claims of a refusal come from claude_db.jwt."""
    code = ("import sys; sys.path.insert(0, %r); import claude_db.exchange; "
            "print(sorted(m for m in ('msal', 'claude_db.identity') if m in sys.modules))" % BIN)
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
