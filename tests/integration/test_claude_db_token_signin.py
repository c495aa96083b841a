"""claude-db-token against the real local IdP (MSAL, browser and device code) and the fake workspace."""

import json
import os
import re
import stat
import subprocess

import pytest

from tests.support import browser as scripted

pytestmark = pytest.mark.slow

USER = "alice@example.test"


def token_calls(workstation):
    return workstation.fake.calls(r"^/oidc/v1/token$", "POST")


def assert_token_output(result, workstation):
    """The seed's format, and a token the fake workspace accepts as the signed-in user."""
    out = json.loads(result.stdout)
    assert set(out) == {"token", "expires_in"}
    assert 3000 < out["expires_in"] <= 3600
    info = workstation.fake.tokens[out["token"]]
    assert info.subject == USER
    return out


def test_first_sign_in_in_the_browser_then_cached_with_no_requests(workstation):
    first = workstation.run(check=0)
    out = assert_token_output(first, workstation)
    stats = workstation.idp.stats()
    assert stats["auth"] == 1 and stats["token"].get("authorization_code") == 1
    assert len(token_calls(workstation)) == 1
    assert any("approve" in line for line in workstation.browser_log_lines())
    # The exchange sent exactly the documented form, and no client_id (account-wide federation).
    form = token_calls(workstation)[0].form()
    assert set(form) == {"grant_type", "subject_token", "subject_token_type", "scope"}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert form["scope"] == "all-apis"

    workstation.fake.reset_log()
    for args in ((), ("--raw",), ("--check",)):
        again = workstation.run(*args, check=0)
        if args == ("--raw",):
            assert again.stdout == out["token"] + "\n"
        elif args == ("--check",):
            assert json.loads(again.stdout)["valid"] is True
        else:
            assert json.loads(again.stdout)["token"] == out["token"]
        assert again.stderr == ""
    assert workstation.fake.requests == []  # the cached path makes no request to Databricks...
    assert workstation.idp.stats() == stats  # ...nor to the IdP


def test_first_sign_in_with_a_device_code(workstation, trust_test_ca):
    process = workstation.popen("--device", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    prompt = process.stderr.readline()
    match = re.search(r"open (https://\S+) in a browser on any device and enter the code (\S+)", prompt)
    assert match, prompt
    verification_uri, user_code = match.groups()
    assert verification_uri.startswith(workstation.idp.issuer)
    scripted.approve_device(verification_uri, user_code, username=USER)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    out = json.loads(stdout)
    assert workstation.fake.tokens[out["token"]].subject == USER
    stats = workstation.idp.stats()
    assert stats["device_auth"] == 1 and stats["auth"] == 0


def test_device_code_is_chosen_over_ssh(workstation):
    process = workstation.popen(env={"SSH_CONNECTION": "10.0.0.1 50000 10.0.0.2 22"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    prompt = process.stderr.readline()
    process.kill()
    process.communicate()
    assert "enter the code" in prompt
    assert workstation.idp.stats()["auth"] == 0


def test_file_modes(workstation):
    workstation.run(check=0)
    state = workstation.state_dir
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    files = os.listdir(state)
    assert any(f.startswith("token-") for f in files) and any(f.startswith("msal-cache-") for f in files)
    for name in files:
        assert stat.S_IMODE(os.stat(os.path.join(state, name)).st_mode) == 0o600, name
    assert not [f for f in files if f.endswith(".tmp")]  # atomic writes leave no temp files behind
