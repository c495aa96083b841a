"""The whole journey behind an egress proxy (the real proxy.py) that is the only way to the workspace.

Sign-in (MSAL), the token exchange, `doctor` and `claude-db -p` with the real Claude Code; the
workspace is addressed by a name only the forward proxy resolves, so nothing reaches it directly.
"""

import json

import pytest

from tests.support.fake_databricks import messages
from tests.support.forward_proxy_fixtures import proxy_only_url
from tests.support.pki import PROXY_ONLY_HOST, make_pki

pytestmark = pytest.mark.slow

PASSWORD = "s3cr:t@pw/1"
ENCODED = "s3cr%3At%40pw%2F1"


def test_sign_in_exchange_doctor_and_claude_code_all_go_through_the_proxy(claude_db, forward_proxy):
    relay = forward_proxy(user="alice", password=PASSWORD)
    workstation = claude_db.workstation
    workstation.write_config(databricks_host=proxy_only_url(workstation.fake))
    url = "http://alice:%s@127.0.0.1:%d" % (ENCODED, relay.port)
    env = {"HTTPS_PROXY": url, "HTTP_PROXY": url, "no_proxy": "intranet.example.com"}
    outputs = [workstation.run("login", env=env, check=0)]
    workstation.fake.anthropic.script(messages.text("hello through the proxy"))
    result = claude_db.run("-p", "say hi", "--output-format", "json", env=env)
    outputs.append(result)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == "hello through the proxy"
    doctor = workstation.run("doctor", env=env, check=0)
    outputs.append(doctor)

    shown = "via proxy http://alice:***@127.0.0.1:%d (HTTPS_PROXY)" % relay.port
    lines = {line[6:24].strip(): line[25:] for line in doctor.stdout.splitlines()}
    assert lines["IdP route"] == shown
    assert lines["workspace route"].startswith(shown + ": connected to %s:" % PROXY_ONLY_HOST)
    workspace = (PROXY_ONLY_HOST, int(workstation.fake.url.rsplit(":", 1)[1]))
    idp = ("127.0.0.1", workstation.idp.port)
    # Everything went out through the proxy, and Claude Code reached the loopback auth proxy directly.
    assert set(relay.upstreams()) == {workspace, idp}
    assert [c.path for c in workstation.fake.anthropic.requests()] == ["/serving-endpoints/anthropic/v1/messages"]
    assert workstation.fake.calls(path="/oidc/v1/token")
    for output in outputs:
        assert PASSWORD not in output.stdout + output.stderr and ENCODED not in output.stdout + output.stderr


def test_a_407_is_one_line_naming_the_proxy_for_claude_code_and_for_the_helper(claude_db, forward_proxy):
    relay = forward_proxy(user="alice", password=PASSWORD)
    workstation = claude_db.workstation
    workstation.write_config(databricks_host=proxy_only_url(workstation.fake))
    workstation.run("login", env={"HTTPS_PROXY": "http://alice:%s@127.0.0.1:%d" % (ENCODED, relay.port)}, check=0)
    bad = {"HTTPS_PROXY": "http://alice:wrong@127.0.0.1:%d" % relay.port}
    expected = ("the proxy http://alice:***@127.0.0.1:%d refused the tunnel to %s:%s (HTTP 407 Proxy Authentication "
                "Required); check the user and password in HTTPS_PROXY"
                % (relay.port, PROXY_ONLY_HOST, workstation.fake.url.rsplit(":", 1)[1]))

    result = claude_db.run("-p", "say hi", "--output-format", "json", env=bad)  # the cached token: no exchange
    answer = json.loads(result.stdout)
    assert answer["is_error"] is True and expected in answer["result"], answer
    assert result.stderr.splitlines().count("claude-db: " + expected) == 1, result.stderr  # retries: still once
    assert workstation.fake.anthropic.requests() == []

    workstation.fake.exchange_ttl = 40  # shorter than the helper's margin: the next run must exchange
    workstation.run("login", env={"HTTPS_PROXY": "http://alice:%s@127.0.0.1:%d" % (ENCODED, relay.port)}, check=0)
    helper = workstation.run(env=bad, check=1)
    [line] = helper.stderr.splitlines()  # the IdP's refresh or the exchange, whichever the proxy refused first
    before, after = expected.split(" refused the tunnel to ")
    assert line.startswith("claude-db-token: %s refused the tunnel to " % before)
    assert line.endswith(after.split(" ", 1)[1])
    assert "wrong" not in result.stderr + result.stdout + helper.stderr


def test_a_tls_inspecting_proxy_needs_its_ca_in_network_ca_bundle(workstation, forward_proxy, tmp_path, pki):
    inspecting = make_pki(str(tmp_path / "inspecting-ca"))
    relay = forward_proxy(intercept=inspecting)
    workstation.write_config(databricks_host=proxy_only_url(workstation.fake), network={"proxy": relay.url},
                             endpoint_name="databricks-claude-sonnet-4-5")
    direct_idp = {"NO_PROXY": "127.0.0.1"}  # only the workspace is behind the inspecting proxy here
    failed = workstation.run("login", env=direct_idp, check=1)
    assert failed.stderr.splitlines()[-1] == (
        "claude-db-token: TLS verification failed for Databricks at %s with the CA bundle %s (from "
        "REQUESTS_CA_BUNDLE); if your network inspects TLS, that bundle must hold your company's CA"
        % (workstation.config["databricks_host"], pki.ca_pem))
    assert workstation.fake.calls(path="/oidc/v1/token") == []
    bundle = tmp_path / "company-bundle.pem"  # what a platform team ships: the usual CAs plus the company's
    bundle.write_text(open(pki.ca_pem).read() + open(inspecting.ca_pem).read())
    workstation.write_config(network={"proxy": relay.url, "ca_bundle": str(bundle)})
    workstation.run("login", env=direct_idp, check=0)
    doctor = workstation.run("doctor", env=direct_idp, check=0)
    assert "ok    IdP route          direct" in doctor.stdout
    assert ("via proxy %s (network.proxy in %s): connected to %s:%s, TLS verified with %s (network.ca_bundle in %s)"
            % (relay.url, workstation.config_path, PROXY_ONLY_HOST, workstation.fake.url.rsplit(":", 1)[1], bundle,
               workstation.config_path)) in doctor.stdout
