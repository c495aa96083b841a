"""The local test IdP behaves like Entra towards real MSAL (the credential helper's client library).

Each test names the Entra behaviour it pins down; if the wrapper or a dependency upgrade breaks
one, the credential-helper tests would fail for reasons far from their own code.
"""

import base64
import json
import os
import ssl
import subprocess
import sys
import textwrap
import time

import jwt
import msal
import pytest

from tests.support.browser import BrowserError, approve_device, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("trust_test_ca")]

SCOPES = ["email"]
SCRIPTED_BROWSER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "support", "scripted-browser")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def app_for(idp):
    """The client configuration the credential helper uses for a non-Microsoft authority."""
    return msal.PublicClientApplication(idp.client_id, authority=idp.authority, instance_discovery=False)


def interactive(app, **kwargs):
    return app.acquire_token_interactive(SCOPES, timeout=30, **kwargs)


def claims(id_token):
    return jwt.decode(id_token, options={"verify_signature": False})


def device_sign_in(app, idp, username=None):
    flow = app.initiate_device_flow(SCOPES)
    assert "user_code" in flow, flow
    approve_device(flow["verification_uri"], flow["user_code"], username)
    return flow, app.acquire_token_by_device_flow(flow)


def test_interactive_sign_in_returns_id_token_and_refresh_token(idp, browser):
    result = interactive(app_for(idp))

    assert "id_token" in result and "refresh_token" in result, result
    assert set(result["scope"].split()) == {"email", "offline_access", "openid", "profile"}
    got = result["id_token_claims"]
    assert got["iss"] == idp.issuer and got["aud"] == idp.client_id and got["tid"] == idp.tenant
    assert got["preferred_username"] == got["email"] == "alice@example.test"
    assert got["ver"] == "2.0" and got["sub"] != got["oid"] and len(got["sub"]) == 43
    assert len(browser.urls) == 1 and "response_mode=form_post" in browser.urls[0]


def test_sign_in_as_another_user_and_login_hint(idp, browser):
    browser.user = "bob@example.test"
    assert interactive(app_for(idp))["id_token_claims"]["preferred_username"] == "bob@example.test"
    browser.user = None
    result = interactive(app_for(idp), login_hint="bob@example.test", prompt="select_account")
    assert result["id_token_claims"]["preferred_username"] == "bob@example.test"


def test_unknown_user_and_cancel_give_access_denied(idp, browser):
    browser.user = "mallory@example.test"
    assert interactive(app_for(idp))["error"] == "access_denied"
    browser.user, browser.action = None, "deny"
    result = interactive(app_for(idp))
    assert result["error"] == "access_denied" and "id_token" not in result


def test_device_flow_with_typed_user_code(idp):
    app = app_for(idp)
    flow, result = device_sign_in(app, idp, "bob@example.test")

    assert flow["interval"] == 1 and "message" not in flow and flow["verification_uri"].endswith("/device")
    assert "id_token" in result and "refresh_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "bob@example.test"
    assert "nonce" not in result["id_token_claims"]


def test_device_flow_message_knob(idp_factory):
    flow = app_for(idp_factory(IDP_DEVICE_MESSAGE=1)).initiate_device_flow(SCOPES)
    assert flow["user_code"] in flow["message"] and flow["verification_uri"] in flow["message"]


def test_wrong_user_code_is_refused(idp):
    flow = app_for(idp).initiate_device_flow(SCOPES)
    with pytest.raises(BrowserError):
        approve_device(flow["verification_uri"], "WRONG-CODE")


def test_force_refresh_returns_a_fresh_id_token(idp_factory, browser):
    idp = idp_factory(IDP_ID_TOKEN_TTL=60)
    app = app_for(idp)
    first = interactive(app)["id_token_claims"]
    time.sleep(1.1)  # iat has one-second resolution

    refreshed = app.acquire_token_silent(SCOPES, app.get_accounts()[0], force_refresh=True)

    again = refreshed["id_token_claims"]
    assert again["iat"] > first["iat"] and again["exp"] - again["iat"] == 60
    assert (again["sub"], again["oid"]) == (first["sub"], first["oid"])
    assert idp.stats()["token"] == {"authorization_code": 1, "refresh_token": 1}


def test_entra_style_scope_survives_refresh(idp_factory, browser):
    scope = "api://databricks-test/user_impersonation"
    app = app_for(idp_factory(IDP_EXTRA_SCOPES=scope))
    first = app.acquire_token_interactive([scope, "email"], timeout=30)
    assert scope in first["scope"].split(), first

    refreshed = app.acquire_token_silent([scope, "email"], app.get_accounts()[0], force_refresh=True)

    assert refreshed and "id_token" in refreshed, refreshed


def test_revoke_makes_the_next_refresh_fail(idp, browser):
    app = app_for(idp)
    interactive(app)
    account = app.get_accounts()[0]

    idp.revoke("alice@example.test")

    failed = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert failed["error"] == "invalid_grant", failed
    assert idp.stats()["token_error"] == {"refresh_token": 1}


def test_replayed_refresh_token_revokes_the_grant(idp, browser):
    app = app_for(idp)
    old_rt = interactive(app)["refresh_token"]
    assert "id_token" in app.acquire_token_by_refresh_token(old_rt, SCOPES)

    assert app.acquire_token_by_refresh_token(old_rt, SCOPES)["error"] == "invalid_grant"


def test_stats_count_calls_by_endpoint_and_grant_type(idp, browser):
    app = app_for(idp)
    interactive(app)
    for _refresh in range(2):
        app.acquire_token_silent(SCOPES, app.get_accounts()[0], force_refresh=True)
    device_sign_in(app, idp)

    stats = idp.stats()
    assert stats["auth"] == 1 and stats["device_auth"] == 1
    assert stats["token"]["authorization_code"] == 1 and stats["token"]["refresh_token"] == 2
    assert stats["token"][DEVICE_GRANT] >= 1
    idp.reset()
    assert idp.stats() == {"token": {}, "token_error": {}, "auth": 0, "device_auth": 0}


def test_id_token_verifies_against_jwks_and_tampering_is_caught(idp, browser, pki):
    id_token = interactive(app_for(idp))["id_token"]
    jwks = jwt.PyJWKClient(idp.jwks_uri, ssl_context=ssl.create_default_context(cafile=pki.ca_pem))
    key = jwks.get_signing_key_from_jwt(id_token).key

    verified = jwt.decode(id_token, key, algorithms=["RS256"], audience=idp.client_id, issuer=idp.issuer)
    assert verified["preferred_username"] == "alice@example.test"

    header, payload, signature = id_token.split(".")
    forged = dict(verified, preferred_username="bob@example.test")
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{header}.{forged_payload}.{signature}", key, algorithms=["RS256"],
                   audience=idp.client_id, issuer=idp.issuer)


def test_browser_refuses_non_loopback_urls():
    with pytest.raises(BrowserError, match="non-loopback"):
        sign_in("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?client_id=x")


CHILD = textwrap.dedent("""
    import json, sys, msal
    client_id, authority = sys.argv[1:3]
    app = msal.PublicClientApplication(client_id, authority=authority, instance_discovery=False)
    result = app.acquire_token_interactive(["email"], timeout=20)
    print(json.dumps({"user": result.get("id_token_claims", {}).get("preferred_username"),
                      "error": result.get("error")}))
""")


def run_child_with_scripted_browser(idp, tmp_path, **browser_env):
    """A separate process doing acquire_token_interactive with BROWSER=scripted-browser."""
    log = tmp_path / "browser.log"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "BROWSER": SCRIPTED_BROWSER,
           "SCRIPTED_BROWSER_LOG": str(log), **idp.env, **browser_env}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHILD, idp.client_id, idp.authority], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), time.monotonic() - started, log.read_text()


def test_scripted_browser_as_BROWSER_does_not_deadlock(idp, tmp_path):
    result, seconds, log = run_child_with_scripted_browser(idp, tmp_path, SCRIPTED_BROWSER_USER="bob@example.test")

    assert result == {"user": "bob@example.test", "error": None}
    assert seconds < 15, f"interactive sign-in through $BROWSER took {seconds:.1f} s (deadlock?)"
    assert "approve user=bob@example.test" in log and "code=" not in log


def test_scripted_browser_deny(idp, tmp_path):
    result, _seconds, log = run_child_with_scripted_browser(idp, tmp_path, SCRIPTED_BROWSER_ACTION="deny")
    assert result == {"user": None, "error": "access_denied"}
    assert "deny" in log


def test_ttl_knobs_and_rotation_off(idp_factory, browser):
    idp = idp_factory(IDP_ACCESS_TOKEN_TTL=120, IDP_REFRESH_TOKEN_TTL=3, IDP_DEVICE_CODE_TTL=30,
                      IDP_ROTATE_REFRESH_TOKEN=0)
    app = app_for(idp)
    first = interactive(app)
    assert 110 <= first["expires_in"] <= 120
    assert app.initiate_device_flow(SCOPES)["expires_in"] == 30
    for _reuse in range(2):  # without rotation the same refresh token keeps working
        assert "id_token" in app.acquire_token_by_refresh_token(first["refresh_token"], SCOPES)

    time.sleep(3.5)

    assert app.acquire_token_by_refresh_token(first["refresh_token"], SCOPES)["error"] == "invalid_grant"


def test_tenant_client_users_and_auto_login_knobs(idp_factory, browser):
    idp = idp_factory(IDP_TENANT="tenant-x", IDP_CLIENT_ID="client-x", IDP_USERS="carol@corp.test",
                      IDP_AUTO_LOGIN=1)
    assert idp.issuer.endswith("/tenant-x/v2.0") and idp.users == ["carol@corp.test"]
    browser.action = "deny"  # auto-login shows no form, so there is nothing to cancel

    got = interactive(app_for(idp))["id_token_claims"]

    assert (got["tid"], got["aud"], got["preferred_username"]) == ("tenant-x", "client-x", "carol@corp.test")


@pytest.mark.parametrize("how", ["stdin closed", "SIGTERM"])
def test_idp_exits_with_its_test_run(idp_factory, how):
    process = idp_factory()._process
    if how == "SIGTERM":
        process.terminate()
    else:
        process.stdin.close()
    assert process.wait(10) == 0
