"""The auth proxy's upstream pool behind a real forward proxy (proxy.py) that is the only way to the workspace.

The workspace is addressed by a name only the forward proxy resolves, so every request that succeeds
here went through it; a pool that connected directly would fail to resolve the name.
"""

import json
import socket
import time
import types

import pytest

from tests.support.forward_proxy_fixtures import proxy_only_url
from tests.support.launcher_fixtures import message_body
from tests.support.pki import PROXY_ONLY_HOST, make_pki

PASSWORD = "s3cr:t@pw/1"  # every character that must be percent-encoded in a proxy URL
ENCODED = "s3cr%3At%40pw%2F1"


@pytest.fixture
def no_proxy_env(monkeypatch):
    """A clean slate: none of the machine's proxy or CA variables leak into a test."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _config(tmp_path, proxy=None, ca_bundle=None):
    """What network.py reads from a Config."""
    return types.SimpleNamespace(network_proxy=proxy, network_ca_bundle=ca_bundle, path=str(tmp_path / "config.json"))


def _error(response) -> str:
    assert response.status == 502, response.status
    return json.loads(response.read())["error"]["message"]


def test_every_request_goes_through_the_proxy_on_one_kept_alive_tunnel(no_proxy_env, auth_proxy, fake_databricks,
                                                                       forward_proxy):
    relay = forward_proxy()
    no_proxy_env.setenv("HTTPS_PROXY", relay.url)
    proxy = auth_proxy(upstream=proxy_only_url(fake_databricks))
    conn = proxy.connect()
    for _i in range(3):
        response = proxy.request(body=message_body(stream=False), conn=conn)
        assert response.status == 200, response.read()
        response.read()
    port = int(fake_databricks.url.rsplit(":", 1)[1])
    assert relay.upstreams() == [(PROXY_ONLY_HOST, port)]  # one tunnel, reused
    assert len([c for c in fake_databricks.calls() if c.path.endswith("/v1/messages")]) == 3


def test_a_tunnel_the_proxy_closed_while_idle_is_replaced_without_an_error(
        no_proxy_env, auth_proxy, fake_databricks, forward_proxy):
    relay = forward_proxy(idle_timeout=1)
    no_proxy_env.setenv("https_proxy", relay.url)
    proxy = auth_proxy(upstream=proxy_only_url(fake_databricks))
    for _i in range(2):
        response = proxy.request(body=message_body(stream=False))
        assert response.status == 200, response.read()
        response.read()
        time.sleep(2.5)  # the proxy drops the idle tunnel meanwhile
    assert len(relay.upstreams()) == 2


def test_network_proxy_in_the_config_beats_the_environment(no_proxy_env, auth_proxy, fake_databricks,
                                                           forward_proxy, tmp_path, pki):
    relay = forward_proxy()
    no_proxy_env.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    no_proxy_env.setenv("REQUESTS_CA_BUNDLE", "/nonexistent")  # the config's bundle wins
    proxy = auth_proxy(upstream=proxy_only_url(fake_databricks),
                       config=_config(tmp_path, proxy=relay.url, ca_bundle=pki.ca_pem))
    response = proxy.request(body=message_body(stream=False))
    assert response.status == 200, response.read()
    assert len(relay.upstreams()) == 1


def test_basic_proxy_auth_with_an_encoded_password(no_proxy_env, auth_proxy, fake_databricks, forward_proxy):
    relay = forward_proxy(user="alice", password=PASSWORD)
    no_proxy_env.setenv("HTTPS_PROXY", "http://alice:%s@127.0.0.1:%d" % (ENCODED, relay.port))
    proxy = auth_proxy(upstream=proxy_only_url(fake_databricks))
    response = proxy.request(body=message_body(stream=False))
    assert response.status == 200, response.read()


def test_a_407_names_the_proxy_without_its_password_once_on_the_terminal(
        no_proxy_env, auth_proxy, fake_databricks, forward_proxy, capfd):
    relay = forward_proxy(user="alice", password=PASSWORD)
    no_proxy_env.setenv("HTTPS_PROXY", "http://alice:wrong-%s@127.0.0.1:%d" % (ENCODED, relay.port))
    proxy = auth_proxy(upstream=proxy_only_url(fake_databricks))
    messages = {_error(proxy.request(body=message_body(stream=False))) for _i in range(2)}
    shown = "http://alice:***@127.0.0.1:%d" % relay.port
    assert messages == {"claude-db: the proxy %s refused the tunnel to %s:%s (HTTP 407 Proxy Authentication "
                        "Required); check the user and password in HTTPS_PROXY"
                        % (shown, PROXY_ONLY_HOST, fake_databricks.url.rsplit(":", 1)[1])}
    err = capfd.readouterr().err
    assert err.count("refused the tunnel") == 1 and len(err.splitlines()) == 1
    assert "wrong" not in err and ENCODED not in err
    assert fake_databricks.calls() == []


def test_a_proxy_that_is_down_is_named_as_the_cause(no_proxy_env, auth_proxy, fake_databricks):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connection refused
    no_proxy_env.setenv("HTTPS_PROXY", "127.0.0.1:%d" % port)  # scheme-less, as curl and requests take it
    proxy = auth_proxy(upstream=proxy_only_url(fake_databricks))
    assert _error(proxy.request(body=message_body(stream=False))) == (
        "claude-db: cannot connect to the proxy http://127.0.0.1:%d (connection refused); check HTTPS_PROXY" % port)


def test_a_host_the_proxy_cannot_reach_is_its_502(no_proxy_env, auth_proxy, forward_proxy):
    relay = forward_proxy()
    no_proxy_env.setenv("HTTPS_PROXY", relay.url)
    proxy = auth_proxy(upstream="https://nowhere.proxy-only.test:443")
    message = _error(proxy.request(body=message_body(stream=False)))
    assert message.startswith("claude-db: the proxy %s refused the tunnel to nowhere.proxy-only.test:443 (HTTP 502"
                              % relay.url)
    assert "the proxy could not reach nowhere.proxy-only.test:443" in message


def test_no_proxy_sends_the_workspace_direct(no_proxy_env, auth_proxy, fake_databricks, forward_proxy):
    relay = forward_proxy()
    no_proxy_env.setenv("HTTPS_PROXY", relay.url)
    no_proxy_env.setenv("NO_PROXY", "example.com,127.0.0.0/8")
    proxy = auth_proxy()  # https://127.0.0.1:<port>: in the CIDR range
    response = proxy.request(body=message_body(stream=False))
    assert response.status == 200, response.read()
    assert relay.upstreams() == []


def test_a_tls_inspecting_proxy_works_only_with_its_ca_in_network_ca_bundle(
        no_proxy_env, auth_proxy, fake_databricks, forward_proxy, tmp_path, pki):
    inspecting = make_pki(str(tmp_path / "inspecting-ca"))
    relay = forward_proxy(intercept=inspecting)
    no_proxy_env.setenv("REQUESTS_CA_BUNDLE", pki.ca_pem)  # the workspace's own CA: not enough behind inspection
    untrusting = auth_proxy(upstream=proxy_only_url(fake_databricks), config=_config(tmp_path, proxy=relay.url))
    message = _error(untrusting.request(body=message_body(stream=False)))
    assert message == ("claude-db: TLS verification failed for the Databricks workspace %s:%s with the CA bundle %s "
                       "(from REQUESTS_CA_BUNDLE); if your network inspects TLS, that bundle must hold your "
                       "company's CA" % (PROXY_ONLY_HOST, fake_databricks.url.rsplit(":", 1)[1], pki.ca_pem))
    assert fake_databricks.calls() == []
    trusting = auth_proxy(upstream=proxy_only_url(fake_databricks),
                          config=_config(tmp_path, proxy=relay.url, ca_bundle=inspecting.ca_pem))
    response = trusting.request(body=message_body(stream=False))
    assert response.status == 200, response.read()
    assert len([c for c in fake_databricks.calls() if c.path.endswith("/v1/messages")]) == 1


def test_a_proxy_variable_that_cannot_be_used_is_one_line_and_no_hanging_connection(no_proxy_env, auth_proxy,
                                                                                    fake_databricks, capfd):
    no_proxy_env.setenv("HTTPS_PROXY", "socks5://alice:hidden@127.0.0.1:1080")
    proxy = auth_proxy(upstream=proxy_only_url(fake_databricks))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), 5)
    assert capfd.readouterr().err == (
        "claude-db: the proxy socks5://alice:***@127.0.0.1:1080 (from HTTPS_PROXY) must be an http:// proxy URL, e.g. "
        "http://proxy.example.com:3128 or http://user:password@proxy.example.com:3128\n")
