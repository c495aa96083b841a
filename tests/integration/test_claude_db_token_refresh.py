"""Later runs of claude-db-token: which of cached token / cached ID token / refresh / sign-in is used, and when."""

import json
import os
import subprocess
import time

import pytest

from tests.support.pki import make_pki

pytestmark = pytest.mark.slow

USER = "alice@example.test"


def exchanges(workstation):
    return workstation.fake.calls(r"^/oidc/v1/token$", "POST")


def wait_for_token_to_age(seconds):
    """Let a Databricks token issued with exchange_ttl = SAFETY_MARGIN + `seconds` fall inside the margin."""
    time.sleep(seconds + 0.2)


def test_cached_id_token_is_exchanged_without_asking_the_idp(workstation):
    workstation.fake.exchange_ttl = 62  # usable for 2 s (the helper keeps a 60 s margin)
    first = json.loads(workstation.run(check=0).stdout)
    stats = workstation.idp.stats()
    wait_for_token_to_age(2)
    second = json.loads(workstation.run(check=0).stdout)
    assert second["token"] != first["token"]
    assert workstation.idp.stats() == stats  # the ID token (1 h) was still good: no refresh, no sign-in
    sent = [call.form()["subject_token"] for call in exchanges(workstation)]
    assert len(sent) == 2 and sent[0] == sent[1]


def test_expired_id_token_beside_a_valid_access_token_is_refreshed(workstation_factory):
    # The trap (facts/test-idp.md §1): MSAL's plain silent call answers from the cached access
    # token (1 h) and returns no fresh ID token. The fake refuses expired ID tokens, so only a
    # force_refresh gets a second Databricks token.
    workstation = workstation_factory(IDP_ID_TOKEN_TTL="4")
    workstation.fake.exchange_ttl = 61
    workstation.run(check=0)
    wait_for_token_to_age(4)
    result = workstation.run(check=0)
    assert workstation.fake.tokens[json.loads(result.stdout)["token"]].subject == USER
    stats = workstation.idp.stats()
    assert stats["token"].get("refresh_token") == 1
    assert stats["auth"] == 1  # no second sign-in
    assert len(exchanges(workstation)) == 2
    assert result.stderr == ""


def test_revoked_refresh_token_leads_to_one_fresh_sign_in(workstation_factory):
    workstation = workstation_factory(IDP_ID_TOKEN_TTL="2")
    workstation.fake.exchange_ttl = 61
    workstation.run(check=0)
    workstation.idp.revoke(USER)
    wait_for_token_to_age(2)
    workstation.fake.exchange_ttl = 3600
    result = workstation.run(check=0)
    assert "signing in again" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    stats = workstation.idp.stats()
    assert stats["auth"] == 2 and stats["token"].get("authorization_code") == 2
    assert stats["token"].get("refresh_token") == 1  # the one refused refresh, then no retry loop
    assert workstation.run("--raw", check=0).stdout.strip() == json.loads(result.stdout)["token"]


def test_twenty_concurrent_runs_on_an_expired_token_refresh_once(workstation_factory):
    workstation = workstation_factory(IDP_ID_TOKEN_TTL="3")
    workstation.fake.exchange_ttl = 61
    workstation.run(check=0)
    wait_for_token_to_age(3)  # both the Databricks token and the ID token are now too old
    workstation.fake.exchange_ttl = 3600
    workstation.fake.reset_log()
    before = workstation.idp.stats()["token"].get("refresh_token", 0)
    processes = [workstation.popen("--raw", stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _i in range(20)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in processes]
    assert [r[2] for r in results] == [0] * 20, [r[1] for r in results if r[2]]
    assert len({r[0] for r in results}) == 1  # everybody got the one new token
    assert workstation.idp.stats()["token"].get("refresh_token", 0) - before == 1
    assert len(exchanges(workstation)) == 1
    # Nothing on stderr but, from a run that waited over a second for the others' refresh, that it waited.
    assert all(line.startswith("claude-db-token: waiting for another claude-db or claude-db-token of yours")
               for r in results for line in r[1].splitlines()), [r[1] for r in results]


def test_idp_down_is_one_line_with_the_fix(workstation_factory):
    workstation = workstation_factory(IDP_ID_TOKEN_TTL="2")
    workstation.fake.exchange_ttl = 61
    workstation.run(check=0)
    workstation.idp.stop()
    wait_for_token_to_age(2)
    result = workstation.run(check=1)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("claude-db-token: cannot reach the identity provider https://127.0.0.1:")
    assert "check your network" in line
    assert "Traceback" not in result.stderr


def test_idp_down_before_the_first_sign_in(workstation_factory):
    workstation = workstation_factory()
    workstation.idp.stop()
    result = workstation.run(check=1)
    [line] = result.stderr.splitlines()
    assert "cannot reach the identity provider" in line and workstation.config_path in line


def test_an_untrusted_idp_certificate_is_a_tls_error(workstation, tmp_path):
    other_ca = make_pki(str(tmp_path / "other-ca")).ca_pem
    env = {name: other_ca for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    line = workstation.run(env=env, check=1).stderr.strip()
    assert line == ("claude-db-token: TLS verification failed for the identity provider %s with the CA bundle %s "
                    "(from REQUESTS_CA_BUNDLE); if your network inspects TLS, that bundle must hold your company's "
                    "CA" % (workstation.idp.authority, other_ca))


def test_429_then_success(workstation):
    workstation.fake.fail(r"^/oidc/v1/token$", status=429, times=1, method="POST")
    result = workstation.run(check=0)
    assert workstation.fake.tokens[json.loads(result.stdout)["token"]].subject == USER
    assert [c.path for c in exchanges(workstation)] == ["/oidc/v1/token"] * 2
    assert result.stderr == ""


def test_5xx_retries_are_bounded(workstation):
    workstation.fake.fail(r"^/oidc/v1/token$", status=503, times=-1, method="POST")
    result = workstation.run(check=1)
    assert len(exchanges(workstation)) == 4
    [line] = result.stderr.splitlines()
    assert "HTTP 503" in line and "try again" in line


def test_corrupt_and_truncated_caches_mean_a_fresh_sign_in(workstation):
    workstation.run(check=0)
    names = os.listdir(workstation.state_dir)
    for name in names:
        path = os.path.join(workstation.state_dir, name)
        if name.startswith("token-"):
            with open(path, "r+") as f:
                data = f.read()
                f.seek(0)
                f.truncate()
                f.write(data[:len(data) // 2])  # truncated mid-write by a crash
        elif name.startswith("msal-cache-"):
            with open(path, "w") as f:
                f.write("\x00garbage{")
    result = workstation.run(check=0)
    assert "Traceback" not in result.stderr
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2 and all("warning: ignoring the damaged" in w for w in warnings), warnings
    assert workstation.idp.stats()["auth"] == 2  # signed in again
    assert workstation.run(check=0).stderr == ""  # and the files are good again


def test_raw_hands_claude_code_a_token_that_outlives_its_helper_cache(workstation):
    # Claude Code keeps an apiKeyHelper answer for 5 min and then sends it once more, stale; a token
    # with less life than that left would be refused with a 403 Claude Code does not retry.
    workstation.fake.exchange_ttl = 300
    first = json.loads(workstation.run(check=0).stdout)["token"]
    assert workstation.run("--raw", check=0).stdout.strip() != first
    assert len(exchanges(workstation)) == 2
    workstation.fake.exchange_ttl = 3600
    raw = workstation.run("--raw", check=0).stdout.strip()
    assert workstation.run("--raw", check=0).stdout.strip() == raw  # a long-lived one is reused
    assert json.loads(workstation.run(check=0).stdout)["token"] == raw
    assert len(exchanges(workstation)) == 3
