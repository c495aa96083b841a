"""claude-db-token's subcommands, refusals a user must be able to act on, and secrets kept out of every output."""

import json
import os

import pytest

from tests.support.credential_fixtures import TEST_KEYRING, add_federation_policy

pytestmark = pytest.mark.slow

USER = "alice@example.test"


def one_line_error(result, code=1):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("claude-db-token: "), result.stderr
    return lines[0]


def test_a_bad_config_exits_2_naming_key_and_file(workstation):
    workstation.write_config(azure_ad={"client_id": 42})
    line = one_line_error(workstation.run(), code=2)
    assert "key azure_ad.client_id in config file %s must be a string, got a number" % workstation.config_path in line
    assert workstation.fake.requests == [] and workstation.idp.stats()["auth"] == 0


def test_the_seed_config_works_unchanged(workstation):
    # The DESIGN.md example, scopes ["openid", "profile", "email"] included (MSAL raises on the first two).
    workstation.write_config(models={"opus": "claude-code-gateway", "sonnet": "claude-code-gateway",
                                     "haiku": "claude-code-gateway"},
                             launcher={"mode": "proxy", "claude_command": "claude"})
    assert workstation.config["azure_ad"]["scopes"] == ["openid", "profile", "email"]
    out = json.loads(workstation.run(check=0).stdout)
    assert workstation.fake.tokens[out["token"]].subject == USER


def test_no_policy_for_the_issuer(workstation):
    workstation.fake.federation_policies.clear()
    line = one_line_error(workstation.run())
    assert "no federation policy" in line and workstation.idp.issuer in line and "admin" in line


def test_user_not_in_the_account(workstation):
    workstation.fake.users.discard(USER)
    line = one_line_error(workstation.run())
    assert "%s is not a user of the Databricks account" % USER in line


def test_audience_not_in_the_policy(workstation):
    workstation.fake.federation_policies.clear()
    add_federation_policy(workstation.fake, workstation.idp.issuer, ["some-other-app"])
    line = one_line_error(workstation.run())
    assert "audience %s" % workstation.idp.client_id in line


def test_service_principal_federation_sends_client_id(workstation):
    app_id = "22222222-2222-2222-2222-222222222222"
    workstation.fake.service_principals[app_id] = 7001
    add_federation_policy(workstation.fake, workstation.idp.issuer, [workstation.idp.client_id], sp_id=7001,
                          subject=USER)
    workstation.write_config(federation={"service_principal_client_id": app_id})
    out = json.loads(workstation.run(check=0).stdout)
    assert workstation.fake.tokens[out["token"]].subject == app_id
    assert workstation.fake.calls(r"^/oidc/v1/token$")[0].form()["client_id"] == app_id


def test_unknown_service_principal(workstation):
    workstation.write_config(federation={"service_principal_client_id": "not-an-sp"})
    line = one_line_error(workstation.run())
    assert "federation.service_principal_client_id not-an-sp" in line and workstation.config_path in line


def test_sign_in_refused_in_the_browser(workstation):
    line = one_line_error(workstation.run(env={"SCRIPTED_BROWSER_ACTION": "deny"}))
    assert "cancelled or refused" in line


def test_sign_in_times_out(workstation):
    line = one_line_error(workstation.run(env={"SCRIPTED_BROWSER_ACTION": "ignore", "CLAUDE_DB_LOGIN_TIMEOUT": "2"}))
    assert "timed out after 2 s" in line


def test_check_needs_no_network_and_never_signs_in(workstation):
    result = workstation.run("--check", check=1)
    assert json.loads(result.stdout) == {"valid": False, "expires_in": 0}
    assert workstation.fake.requests == [] and workstation.idp.stats()["auth"] == 0


def test_login_status_logout(workstation):
    status = workstation.run("status", check=1)
    assert status.stdout.startswith("not signed in")
    login = workstation.run("login", check=0)
    assert login.stdout == "" and "signed in" in login.stderr
    data = json.loads(workstation.run("status", "--json", check=0).stdout)
    assert data["signed_in"] is True and data["user"] == USER and data["issuer"] == workstation.idp.issuer
    assert 3000 < data["databricks_token_expires_in"] <= 3600 and data["id_token_expires_in"] > 3000
    assert data["sign_in_stored_in"].startswith(workstation.state_dir)
    text = workstation.run("status", check=0).stdout
    assert text.startswith("signed in as %s" % USER) and workstation.idp.issuer in text

    again = workstation.run("login", check=0)  # login always signs in anew
    assert "signed in" in again.stderr and workstation.idp.stats()["auth"] == 2

    logout = workstation.run("logout", check=0)
    assert "signed out" in logout.stderr
    assert [f for f in os.listdir(workstation.state_dir) if f.endswith(".json")] == []
    assert workstation.run("--check", check=1)
    assert workstation.run("status", check=1).stdout.startswith("not signed in")


def test_the_keyring_holds_the_refresh_token_when_usable(workstation):
    env = {"PYTHON_KEYRING_BACKEND": TEST_KEYRING}
    out = json.loads(workstation.run(env=env, check=0).stdout)
    files = os.listdir(workstation.state_dir)
    assert not [f for f in files if f.startswith("msal-cache-")]  # no refresh token on disk
    assert [f for f in files if f.startswith("token-")]  # the short-lived token stays in a file (fast path)
    with open(workstation.keyring_file) as f:
        [entry] = json.load(f)["databricks-claude-gateway"].values()
    assert '"RefreshToken"' in entry
    status = json.loads(workstation.run("status", "--json", env=env, check=0).stdout)
    assert status["sign_in_stored_in"].startswith("OS keyring")
    assert json.loads(workstation.run(env=env, check=0).stdout)["token"] == out["token"]
    workstation.run("logout", env=env, check=0)
    with open(workstation.keyring_file) as f:
        assert json.load(f)["databricks-claude-gateway"] == {}


def test_doctor(workstation):
    workstation.write_config(endpoint_name="databricks-claude-sonnet-4-5")
    not_signed_in = workstation.run("doctor", check=1)
    assert "FAIL  sign-in" in not_signed_in.stdout and "claude-db-token login" in not_signed_in.stdout
    workstation.run("login", check=0)
    result = workstation.run("doctor", check=0)
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * 9, result.stdout
    assert "endpoint databricks-claude-sonnet-4-5" in lines[-1] and "ready" in lines[-1]
    workstation.write_config(models={"opus": "no-such-endpoint"})
    result = workstation.run("doctor", check=1)
    assert "FAIL  endpoint no-such-endpoint" in result.stdout and "admin.yml" in result.stdout


def test_no_secret_in_any_output(workstation):
    """Every run's stdout/stderr and the browser log, against the actual token values held afterwards."""
    outputs = []

    def run(*args, **kwargs):
        result = workstation.run(*args, **kwargs)
        outputs.append((args, result))
        return result

    printed = json.loads(run(check=0).stdout)["token"]
    run("--raw", check=0)
    run("--check", check=0)
    run("status", check=0)
    run("status", "--json", check=0)
    run("login", check=0)
    workstation.fake.users.discard(USER)  # an exchange refusal echoes Databricks' answer
    run("login", check=1)
    workstation.fake.users.add(USER)
    workstation.fake.fail(r"^/oidc/v1/token$", status=500, times=-1)
    run("login", check=1)
    workstation.fake.faults.clear()
    run("doctor")
    secrets = workstation.secrets()
    assert printed in secrets and len(secrets) >= 5  # Databricks tokens, ID/access/refresh tokens
    for args, result in outputs:
        allowed = {printed} if args in ((), ("--raw",)) else set()
        for secret in secrets - allowed:
            assert secret not in result.stdout and secret not in result.stderr, args
        assert "eyJ" not in result.stderr and "eyJ" not in result.stdout  # no JWT at all
    log = "\n".join(workstation.browser_log_lines())
    assert log and not [s for s in secrets if s in log]
