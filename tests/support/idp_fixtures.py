"""Fixtures for the local test IdP (tests/support/idp/idp.mjs): start it, trust its CA, drive sign-ins.

The IdP is a real OpenID provider (panva oidc-provider) shaped like Entra, so the credential helper
runs real MSAL against it. The default `idp` is one process per test session, reset before each
test (its store and counters), because starting node takes ~0.8 s; `idp_factory` starts private
ones with their own env knobs.
"""

import collections
import json
import os
import shutil
import ssl
import subprocess
import threading
import urllib.parse
import urllib.request
import webbrowser

import pytest

from tests.support import browser as scripted

IDP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "idp")
DEFAULT_USERS = ["alice@example.test", "bob@example.test"]
DEFAULT_ENV = {"IDP_DEVICE_INTERVAL": "1"}
START_TIMEOUT = 30  # seconds; the machine is shared and node + RSA keygen take ~0.8 s when idle


class Idp:
    """A running test IdP. See tests/support/idp/idp.mjs for the env knobs."""

    def __init__(self, pki, home, **env):
        if shutil.which("node") is None:
            pytest.fail("node is not installed: the test IdP needs Node.js >= 20 (apt-get install nodejs)")
        if not os.path.isdir(os.path.join(IDP_DIR, "node_modules", "oidc-provider")):
            pytest.fail("the test IdP's packages are missing: run `cd tests/support/idp && npm ci`")
        self._pki = pki
        settings = {k: str(v) for k, v in env.items()}
        child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
                     "IDP_TLS_CERT": pki.cert_pem, "IDP_TLS_KEY": pki.key_pem, **settings}
        self._stderr = collections.deque(maxlen=20)
        self._ready = threading.Event()
        self._info = None
        self._process = subprocess.Popen(
            ["node", os.path.join(IDP_DIR, "idp.mjs")], cwd=IDP_DIR, env=child_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        if not self._ready.wait(START_TIMEOUT) or self._info is None:
            self.stop()
            pytest.fail("test IdP did not start: " + (" | ".join(self._stderr) or "no output"))
        self.issuer = self._info["issuer"]
        self.port = self._info["port"]
        self.client_id = self._info["client_id"]
        self.tenant = self._info["tenant"]
        self.authority = f"https://127.0.0.1:{self.port}/{self.tenant}"
        self.jwks_uri = f"{self.issuer}/jwks"
        self.users = settings.get("IDP_USERS", "").replace(",", " ").split() or list(DEFAULT_USERS)
        self.env = pki.client_env()

    def _drain_stdout(self):
        # The first JSON line is the ready line; oidc-provider's NOTICE lines follow and are dropped.
        for line in self._process.stdout:
            if self._info is None and line.startswith("{"):
                self._info = json.loads(line)
                self._ready.set()
        self._ready.set()

    def _drain_stderr(self):
        for line in self._process.stderr:
            self._stderr.append(line.rstrip())

    def _hook(self, method, path):
        context = ssl.create_default_context(cafile=self._pki.ca_pem)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=context))
        request = urllib.request.Request(f"https://127.0.0.1:{self.port}/__test__/{path}", method=method,
                                         data=b"" if method == "POST" else None)
        with opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    @property
    def running(self):
        return self._process.poll() is None

    def stats(self):
        """Calls seen so far: token endpoint by grant_type (also failed ones), /auth and /device/auth."""
        return self._hook("GET", "stats")

    def revoke(self, username):
        """Revoke every grant, token and session of `username`: the next refresh gets invalid_grant."""
        return self._hook("POST", "revoke/" + urllib.parse.quote(username, safe=""))

    def reset(self):
        """Forget all grants, tokens, sessions and counters (the signing key stays)."""
        return self._hook("POST", "reset")

    def stop(self):
        """Stop the IdP; afterwards it is unreachable (connection refused), as a dead IdP would be."""
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@pytest.fixture
def idp_factory(pki, tmp_path_factory):
    """start(**env) -> Idp with those IDP_* knobs on top of the defaults; all stopped at teardown."""
    started = []

    def start(**env):
        idp = Idp(pki, str(tmp_path_factory.mktemp("idp-home")), **{**DEFAULT_ENV, **env})
        started.append(idp)
        return idp

    yield start
    for idp in started:
        idp.stop()


@pytest.fixture(scope="session")
def _shared_idp(pki, tmp_path_factory):
    holder = {}
    yield holder
    if holder:
        holder["idp"].stop()


@pytest.fixture
def idp(_shared_idp, pki, tmp_path_factory):
    """The default IdP (IDP_DEVICE_INTERVAL=1), fresh for each test: no grants, zero stats."""
    current = _shared_idp.get("idp")
    if current is None or not current.running:
        current = _shared_idp["idp"] = Idp(pki, str(tmp_path_factory.mktemp("idp-home")), **DEFAULT_ENV)
    else:
        current.reset()
    return current


@pytest.fixture
def trust_test_ca(pki, monkeypatch):
    """Make requests/MSAL in this process trust the test CA (REQUESTS_CA_BUNDLE beats verify=)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, pki.ca_pem)
    return pki.ca_pem


class BrowserRecorder:
    """Stands in for the user's browser: each URL opened is signed in (or not) in a thread."""

    def __init__(self):
        self.urls = []
        self.user = None  # None: the IdP's prefill (login_hint, else its first user)
        self.action = "approve"  # approve | deny | ignore (never completes)
        self.errors = []
        self._threads = []

    def open(self, url, *_args, **_kwargs):
        self.urls.append(url)
        if self.action != "ignore":
            thread = threading.Thread(target=self._sign_in, args=(url, self.user, self.action), daemon=True)
            thread.start()
            self._threads.append(thread)
        return True

    def _sign_in(self, url, user, action):
        try:
            scripted.sign_in(url, user, action)
        except Exception as error:  # reported by join(), in the test's thread
            self.errors.append(error)

    def join(self, timeout=20):
        """Wait for the sign-ins started so far; raise the first error one of them hit."""
        for thread in self._threads:
            thread.join(timeout)
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def browser(monkeypatch, trust_test_ca):
    """Patch webbrowser.open so MSAL's interactive sign-in is completed by the scripted browser."""
    recorder = BrowserRecorder()
    monkeypatch.setattr(webbrowser, "open", recorder.open)
    yield recorder
    recorder.join()
