"""claude_db.network: which proxy and CA bundle a connection uses, read as curl and requests read them."""

import json
import subprocess
import sys
import types

import pytest

from claude_db import network
from claude_db.config import load_config
from claude_db.errors import ConfigError
from claude_db.launcher import child_environment
from tests.support.launcher_fixtures import BIN

WORKSPACE = "https://adb-1.2.azuredatabricks.net"
VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
             "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture
def env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _config(proxy=None, ca_bundle=None):
    return types.SimpleNamespace(network_proxy=proxy, network_ca_bundle=ca_bundle, path="/etc/claude-db.json")


def test_no_variable_no_config_is_direct(env):
    assert network.route(_config(), WORKSPACE).describe() == "direct"


def test_lower_case_beats_upper_case_and_the_scheme_picks_the_variable(env):
    env.setenv("HTTPS_PROXY", "http://upper:3128")
    env.setenv("https_proxy", "http://lower:3128")
    env.setenv("HTTP_PROXY", "http://plain:3128")
    chosen = network.route(_config(), WORKSPACE)
    assert (chosen.proxy, chosen.source, chosen.target) == ("http://lower:3128", "https_proxy",
                                                            "adb-1.2.azuredatabricks.net:443")
    assert network.route(_config(), "http://127.0.0.1:8080").proxy == "http://plain:3128"
    assert network.route(_config(), "https://[::1]:8443").target == "[::1]:8443"


def test_all_proxy_is_the_fallback_and_a_bare_host_port_is_http(env):
    env.setenv("ALL_PROXY", "proxy.corp:8080")
    chosen = network.route(_config(), WORKSPACE)
    assert (chosen.proxy, chosen.source, chosen.proxy_address()) == ("http://proxy.corp:8080", "ALL_PROXY",
                                                                     ("proxy.corp", 8080))


@pytest.mark.parametrize("no_proxy, direct", [
    ("azuredatabricks.net", True), (".azuredatabricks.net", True), ("*", True),
    ("other.net,adb-1.2.azuredatabricks.net", True), ("databricks.net", False), ("10.0.0.0/8", False),
])
def test_no_proxy_suffixes_and_star(env, no_proxy, direct):
    env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    env.setenv("NO_PROXY", no_proxy)
    assert (network.route(_config(), WORKSPACE).proxy is None) is direct


def test_no_proxy_cidr_ranges_cover_ip_hosts(env):
    env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    env.setenv("no_proxy", "10.0.0.0/8")
    assert network.route(_config(), "https://10.1.2.3").proxy is None
    assert network.route(_config(), "https://11.1.2.3").proxy == "http://proxy.corp:3128"


def test_network_proxy_beats_the_environment_but_no_proxy_still_applies(env):
    env.setenv("HTTPS_PROXY", "http://stray:1")
    chosen = network.route(_config(proxy="http://fleet:3128"), WORKSPACE)
    assert (chosen.proxy, chosen.source) == ("http://fleet:3128", "network.proxy in /etc/claude-db.json")
    env.setenv("NO_PROXY", ".azuredatabricks.net")
    assert network.route(_config(proxy="http://fleet:3128"), WORKSPACE).proxy is None


def test_the_password_is_redacted_and_decoded_for_basic_auth(env):
    env.setenv("HTTPS_PROXY", "http://alice:p%40ss%3Aword@proxy.corp:3128")
    chosen = network.route(_config(), WORKSPACE)
    assert chosen.describe() == "via proxy http://alice:***@proxy.corp:3128 (HTTPS_PROXY)"
    assert chosen.proxy_authorization() == "Basic YWxpY2U6cEBzczp3b3Jk"  # base64("alice:p@ss:word")
    assert network.redact("proxy.corp:3128") == "proxy.corp:3128"
    assert network.redact("http://token@proxy.corp/") == "http://token@proxy.corp/"


@pytest.mark.parametrize("proxy", ["socks5://proxy.corp:1080", "https://alice:secret@proxy.corp:443", "http://"])
def test_only_http_proxies_and_the_message_hides_the_password(env, proxy):
    env.setenv("HTTPS_PROXY", proxy)
    with pytest.raises(ConfigError) as e:
        network.route(_config(), WORKSPACE)
    assert "must be an http:// proxy URL" in str(e.value) and "(from HTTPS_PROXY)" in str(e.value)
    assert "secret" not in str(e.value)


def test_a_bad_network_proxy_is_a_config_error_at_load(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"databricks_host": WORKSPACE, "endpoint_name": "e",
                                "azure_ad": {"tenant_id": "t", "client_id": "c"},
                                "network": {"proxy": "socks5://u:hidden@p:1"}}))
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    assert str(e.value) == ("the proxy socks5://u:***@p:1 (from network.proxy in %s) must be an http:// proxy URL, "
                            "e.g. http://proxy.example.com:3128 or http://user:password@proxy.example.com:3128" % path)
    path.write_text(json.dumps({"databricks_host": WORKSPACE, "endpoint_name": "e",
                                "azure_ad": {"tenant_id": "t", "client_id": "c"},
                                "network": {"proxy": "proxy.corp:3128", "ca_bundle": "/etc/ssl/corp.pem"}}))
    config = load_config(str(path))
    assert (config.network_proxy, config.network_ca_bundle) == ("http://proxy.corp:3128", "/etc/ssl/corp.pem")


def test_ca_bundle_order_config_then_the_variables(env, tmp_path):
    files = {}
    for name in ("config", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        files[name] = tmp_path / (name + ".pem")
        files[name].write_text("")
    assert network.ca_bundle(_config()) == (None, "the default CA store")
    env.setenv("SSL_CERT_FILE", str(files["SSL_CERT_FILE"]))
    assert network.ca_bundle(_config()) == (str(files["SSL_CERT_FILE"]), "SSL_CERT_FILE")
    env.setenv("REQUESTS_CA_BUNDLE", str(files["REQUESTS_CA_BUNDLE"]))
    assert network.ca_bundle(_config()) == (str(files["REQUESTS_CA_BUNDLE"]), "REQUESTS_CA_BUNDLE")
    assert network.ca_bundle(_config(ca_bundle=str(files["config"]))) == (
        str(files["config"]), "network.ca_bundle in /etc/claude-db.json")
    with pytest.raises(ConfigError) as e:
        network.ca_bundle(_config(ca_bundle="/nonexistent/corp.pem"))
    assert str(e.value) == ("the CA bundle /nonexistent/corp.pem (from network.ca_bundle in /etc/claude-db.json) "
                            "does not exist; fix the path or remove that setting")


def test_requests_sessions_take_the_route_not_requests_own_environment_reading(env, tmp_path):
    env.setenv("HTTPS_PROXY", "http://stray:1")
    env.setenv("REQUESTS_CA_BUNDLE", "/nonexistent")
    bundle = tmp_path / "corp.pem"
    bundle.write_text("")
    session = network.session(_config(proxy="http://fleet:3128", ca_bundle=str(bundle)))
    seen = {}
    session.send = lambda prepared, **kwargs: seen.update(kwargs) or (x for x in ()).throw(StopIteration)
    with pytest.raises(StopIteration):
        session.get(WORKSPACE + "/oidc/v1/token")
    assert seen["proxies"] == {"http": "http://fleet:3128", "https": "http://fleet:3128"}
    assert seen["verify"] == str(bundle)


def test_claude_code_gets_no_proxy_for_loopback_merged_with_the_users_own():
    env = child_environment({"PATH": "/bin", "NO_PROXY": "corp.example, .internal", "no_proxy": "localhost",
                             "HTTPS_PROXY": "http://proxy.corp:3128"}, {})
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,corp.example,.internal,127.0.0.1"
    assert env["HTTPS_PROXY"] == "http://proxy.corp:3128"  # Claude Code's own other traffic keeps the proxy
    assert child_environment({"PATH": "/bin"}, {})["NO_PROXY"] == "127.0.0.1,localhost"


def test_the_cached_token_path_still_imports_nothing_heavy():
    """network.py is imported by config.py, so it must stay as light as config.py."""
    code = ("import sys; sys.path.insert(0, %r); import claude_db.cli, claude_db.launcher; "
            "print(sorted(m for m in ('requests', 'urllib.request', 'urllib.parse', 'ssl', 'msal') "
            "if m in sys.modules))" % BIN)
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
