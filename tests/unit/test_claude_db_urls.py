"""claude_db.urls: one grammar for the URLs secrets go to, that every parser reads alike (issue 7)."""

import threading
import types
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from urllib3.util import parse_url

from claude_db import urls
from claude_db.identity import idp_session

ACCEPTED = [
    ("https://adb-123.4.azuredatabricks.net", "https", "adb-123.4.azuredatabricks.net"),
    ("https://ADB-1.Example.NET:8443/", "https", "adb-1.example.net"),
    ("http://127.0.0.1:8443", "http", "127.0.0.1"), ("http://127.255.0.9", "http", "127.255.0.9"),
    ("http://localhost:1/", "http", "localhost"), ("http://[::1]:8080", "http", "[::1]"),
    ("https://login.microsoftonline.com/tid/v2.0", "https", "login.microsoftonline.com"),
    ("https://[2001:db8::1]/t", "https", "[2001:db8::1]"),
]
HOSTILE = [
    "http://127.0.0.1@evil.example", "http://evil.example\\@127.0.0.1", "http://[::1].evil.example",
    "http://127.0.0.1%2eevil.example", "http://evil.example%40127.0.0.1", "http://127.0.0.1:80@evil.example",
    "http://127.0.0.1 .evil.example", "http://127.0.0.1\t.evil.example", "http://127.0.0.1\\.evil.example",
    "http://127.0.0.1/\\@evil.example", "http://[::1]@evil.example", "http://127.0.0.1:99999", "http://..",
    "http://\u0131ocalhost", "http:/127.0.0.1", "//127.0.0.1", "http://127.0.0.1:8x", "https://evil.example:/",
]
NOT_LOOPBACK = ["127.0.0.1.evil.example", "localhost.evil.example", "127.1", "0x7f000001", "2130706433",
                "127.0.0.256", "127.0.0.1.", "[::1].x", "[0:0:0:0:0:0:0:2]", "128.0.0.1"]

# A config without network settings: idp_session asks it only for these.
_NO_NETWORK_SETTINGS = types.SimpleNamespace(path="config.json", network_proxy=None, network_ca_bundle=None)


@pytest.mark.parametrize("url,scheme,host", ACCEPTED)
def test_accepted_urls_read_the_same_with_every_parser(url, scheme, host):
    assert urls.parse(url)[:2] == (scheme, host)
    sent = parse_url(url)
    assert (sent.scheme.lower(), sent.host.lower()) == (scheme, host) and sent.auth is None
    split = urllib.parse.urlsplit(url)
    assert split.hostname == host.strip("[]") and split.username is None
    urls.check_sendable(url, "test URL")


@pytest.mark.parametrize("url", HOSTILE)
def test_urls_parsers_could_disagree_on_are_refused(url):
    with pytest.raises(urls.UnsafeUrl):
        urls.parse(url)
    with pytest.raises(urls.UnsafeUrl):
        urls.check_sendable(url, "test URL")


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_only_literal_loopback_may_get_plain_http(host):
    assert not urls.is_loopback(host)
    with pytest.raises(urls.UnsafeUrl) as e:
        urls.check_sendable("http://%s/token" % host, "the token endpoint")
    assert "plain http" in str(e.value) or "not" in str(e.value)


def test_the_reason_names_the_trick():
    for url, reason in (("http://127.0.0.1@evil", "user info"), ("http://evil\\@127.0.0.1", "backslash"),
                        ("http://127.0.0.1%2eevil", "percent-encoded"), ("http://a b", "whitespace")):
        with pytest.raises(urls.UnsafeUrl) as e:
            urls.parse(url)
        assert reason in str(e.value)


@pytest.fixture
def redirector():
    """A loopback http server whose every answer is a 307 to `target` (a redirect keeps a POST's body)."""
    state = {"target": None, "posts": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _redirect(self):
            state["posts"] += self.command == "POST"
            self.send_response(307)
            self.send_header("Location", state["target"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _redirect

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = "http://127.0.0.1:%d" % server.server_address[1]
    yield state
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("target", ["http://idp.evil.example/token", "http://127.0.0.1@evil.example/token"])
def test_msal_never_follows_a_redirect_that_would_send_the_refresh_token_in_cleartext(redirector, target):
    redirector["target"] = target
    with idp_session(_NO_NETWORK_SETTINGS) as session, pytest.raises(urls.UnsafeUrl) as e:
        session.post(redirector["url"] + "/token", data={"refresh_token": "rt-0123456789abcdef"})
    assert "redirect" in str(e.value) and "rt-0123456789abcdef" not in str(e.value)
    assert redirector["posts"] == 1


def test_msal_refuses_a_discovered_endpoint_on_plain_http():
    with idp_session(_NO_NETWORK_SETTINGS) as session, pytest.raises(urls.UnsafeUrl) as e:
        session.post("http://idp.evil.example/token", data={"refresh_token": "rt-0123456789abcdef"})
    assert "plain http to a host that is not this machine" in str(e.value)


@pytest.mark.parametrize("token_endpoint", ["http://idp.evil.example/t/token", None])
def test_msal_through_the_guarded_session(pki, trust_test_ca, tmp_path, monkeypatch, token_endpoint):
    """An https IdP whose discovery document names a plain-http token endpoint on another host (MSAL itself
    refuses that), or whose https token endpoint answers with a 307 to one (idp_session refuses that)."""
    import json

    from claude_db.config import load_config
    from claude_db.errors import AuthError
    from claude_db.identity import Identity
    from claude_db.store import Store

    posts = []

    class Idp(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            base = "https://127.0.0.1:%d/t" % self.server.server_address[1]
            body = json.dumps({"issuer": base, "authorization_endpoint": base + "/authorize",
                               "token_endpoint": token_endpoint or base + "/token"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            posts.append(self.path)
            self.send_response(307)
            self.send_header("Location", "http://idp.evil.example/t/token")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Idp)
    server.socket = pki.server_context().wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "state"))
        path = tmp_path / "config.json"
        path.write_text(json.dumps({"databricks_host": "https://adb-1.azuredatabricks.net", "endpoint_name": "e",
                                    "azure_ad": {"tenant_id": "t", "client_id": "c", "authority":
                                                 "https://127.0.0.1:%d/t" % server.server_address[1]},
                                    "token_cache": {"method": "file"}}))
        config = load_config(str(path))
        identity = Identity(config, Store(config))
        if token_endpoint:
            with pytest.raises(AuthError) as e:
                identity.app
            assert token_endpoint in str(e.value)
        else:
            with pytest.raises(urls.UnsafeUrl) as e:
                identity.app.acquire_token_by_refresh_token("rt-0123456789abcdef", ["email"])
            assert "redirect" in str(e.value) and "http://idp.evil.example/t/token uses plain http" in str(e.value)
            assert posts == ["/t/token"]
    finally:
        server.shutdown()
        server.server_close()
