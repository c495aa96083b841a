"""Fixtures for claude-db: the auth proxy in front of the fake workspace, and the real Claude Code.

`auth_proxy` runs bin/claude_db/proxy.py on a loopback port in front of the
fake Databricks (HTTPS, test CA), with a token source the test controls.
`claude_db` prepares everything `bin/claude-db` needs to run for real: the
credential helper's `workstation` (local IdP, a config pointing at it and at the
fake, a scratch HOME) and the pinned Claude Code from tests/support/claude-code
(installed by `npm ci` there; missing -> skip, or fail when $CI is set).
`cached_token_home` is a workstation with a cached token and no IdP (start-up
measurements, launcher unit tests).
"""

import http.client
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
import types
from typing import Callable, List, Optional

import pytest

from tests.support.credential_fixtures import HELPER_PYTHON  # $CLAUDE_DB_TEST_PYTHON: run bin/ under e.g. 3.9

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "bin")
CLAUDE_DB = os.path.join(BIN, "claude-db")
CLAUDE_CODE_DIR = os.path.join(REPO, "tests", "support", "claude-code")
CLAUDE_CODE = os.path.join(CLAUDE_CODE_DIR, "node_modules", ".bin", "claude")
USER = "alice@example.test"
BASE_PATH = "/serving-endpoints/anthropic"

if BIN not in sys.path:
    sys.path.insert(0, BIN)


def token(value: str, expires_in: float):
    """A stand-in for credentials.DatabricksToken: what the proxy reads from a token."""
    return types.SimpleNamespace(access_token=value, expires_at=time.time() + expires_in)


class RunningProxy:
    """A proxy thread on 127.0.0.1 and a small HTTP client for it."""

    def __init__(self, port: int, session_key: str, fetches: List[Optional[str]]):
        self.port = port
        self.session_key = session_key
        self.fetches = fetches  # the `rejected` argument of every token fetch, in order
        self.base = "http://127.0.0.1:%d%s" % (port, BASE_PATH)

    def connect(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str = "POST", path: str = BASE_PATH + "/v1/messages?beta=true", body=None,
                headers: Optional[dict] = None, key: Optional[str] = None, conn=None):
        """Send one request; returns the open response (read it, or stream it)."""
        conn = conn or self.connect()
        sent = {"Content-Type": "application/json", "anthropic-version": "2023-06-01"}
        if key is None:
            key = self.session_key
        if key:
            sent["Authorization"] = "Bearer " + key
        sent.update(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=sent)
        return conn.getresponse()


def message_body(stream: bool = True, model: str = "databricks-claude-sonnet-4-5", text: str = "hi") -> dict:
    return {"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": text}]}


@pytest.fixture
def auth_proxy(fake_databricks, pki):
    """start(fetch=None, first=None, upstream=None, base_path=BASE_PATH, **options) -> RunningProxy.

    `fetch(rejected)` defaults to minting a 1-hour token for alice at the fake; `first` seeds the
    proxy as the launcher does. Every proxy started is stopped at teardown.
    """
    from claude_db.launcher import listen_on_loopback
    from claude_db.network import ssl_context as network_ssl_context
    from claude_db.proxy import ProxyThread

    threads = []

    def start(fetch: Optional[Callable] = None, first=None, upstream: Optional[str] = None,
              base_path: str = BASE_PATH, **options) -> RunningProxy:
        fetches = []

        def default_fetch(rejected):
            return token(fake_databricks.issue_token(USER, 3600), 3600)

        def recording_fetch(rejected):
            fetches.append(rejected)
            return (fetch or default_fetch)(rejected)

        sock = listen_on_loopback()
        port = sock.getsockname()[1]
        key = secrets.token_urlsafe(32)
        if "ssl_context" not in options and "config" not in options:  # else the test picks what is trusted
            options["ssl_context"] = network_ssl_context(None)
            options["ssl_context"].load_verify_locations(pki.ca_pem)
        thread = ProxyThread(sock, upstream or fake_databricks.url, base_path, key, recording_fetch, first,
                             **options)
        thread.start()
        thread.ready.wait(10)
        threads.append(thread)
        return RunningProxy(port, key, fetches)

    yield start
    for thread in threads:
        thread.stop()


def read_events(response) -> List[dict]:
    """The `data:` payloads of an SSE response, parsed."""
    events = []
    for line in response.read().decode().splitlines():
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: "):]))
    return events


def run_in_threads(n: int, target: Callable[[int], object]) -> list:
    """Run target(i) for i in range(n) at the same time; results in order (exceptions re-raised)."""
    results = [None] * n
    errors = []
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait(10)
            results[i] = target(i)
        except BaseException as e:  # noqa: B902 - handed back to the test thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def cached_token_home(directory: str, **config) -> dict:
    """An environment in which `claude-db` finds a cached Databricks token: no IdP, no network.

    For start-up measurements; the token is never sent anywhere. `config`: keys to set in the config file.
    """
    from claude_db.config import load_config
    from claude_db.store import Store

    os.makedirs(directory, exist_ok=True)
    config_path = os.path.join(directory, "config.json")
    with open(config_path, "w") as f:
        json.dump({"databricks_host": "https://127.0.0.1:9", "endpoint_name": "databricks-claude-sonnet-4-5",
                   "azure_ad": {"tenant_id": "t", "client_id": "c", "authority": "https://127.0.0.1:9/t"},
                   "token_cache": {"method": "file"}, **config}, f)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": directory, "CLAUDE_DB_CONFIG": config_path,
           "CLAUDE_DB_HOME": os.path.join(directory, "state")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        Store(load_config(config_path)).write_token("cached-" + secrets.token_hex(16), time.time() + 3600)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return env


class ClaudeDb:
    """A workstation signed in against the local IdP, with the real Claude Code behind bin/claude-db."""

    def __init__(self, workstation, claude_code: str):
        self.workstation = workstation
        self.fake = workstation.fake
        self.endpoint = "databricks-claude-sonnet-4-5"
        workstation.write_config(endpoint_name=self.endpoint,
                                 models={"opus": "databricks-claude-opus-4-6", "sonnet": self.endpoint,
                                         "haiku": "databricks-claude-haiku-4-5"})
        self.env = dict(workstation.env, CLAUDE_DB_CLAUDE_COMMAND=claude_code, TERM="dumb",
                        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", CLAUDE_CODE_MAX_RETRIES="1")

    def command(self, *args) -> List[str]:
        return [HELPER_PYTHON, CLAUDE_DB, *args]

    def run(self, *args, timeout: float = 120, env: Optional[dict] = None):
        return subprocess.run(self.command(*args), env=dict(self.env, **(env or {})), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=self.workstation.home)

    def popen(self, *args, env: Optional[dict] = None, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(*args), env=dict(self.env, **(env or {})), text=True,
                                cwd=self.workstation.home, **kwargs)

    def session(self, *args, env: Optional[dict] = None) -> "StreamJsonSession":
        proc = self.popen("-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
                          *args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return StreamJsonSession(proc)

    def bearer(self, request) -> str:
        """The Databricks token a request reached the workspace with."""
        return request.headers["authorization"][len("Bearer "):]

    def wait_until_refused(self, access_token: str) -> None:
        """Sleep until the workspace refuses `access_token` (Databricks: 30 s or less left)."""
        time.sleep(max(0.0, self.fake.tokens[access_token].expires_at - 30 - time.time()) + 0.5)


@pytest.fixture(scope="session")
def claude_code() -> str:
    """The pinned real Claude Code CLI (tests/support/claude-code, `npm ci`)."""
    if not os.access(CLAUDE_CODE, os.X_OK):
        message = "Claude Code is not installed: run `npm ci` in tests/support/claude-code"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CLAUDE_CODE


@pytest.fixture
def claude_db(workstation, claude_code):
    return ClaudeDb(workstation, claude_code)


class StreamJsonSession:
    """A multi-turn `claude-db -p --input-format stream-json` session: send a turn, wait for its result."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def turn(self, text: str, timeout: float = 90) -> dict:
        """Send one user message; the `result` message Claude Code answers it with."""
        self.proc.stdin.write(json.dumps({"type": "user", "message": {"role": "user", "content": text}}) + "\n")
        self.proc.stdin.flush()
        deadline = time.time() + timeout
        while True:
            line = self._lines.get(timeout=max(0.1, deadline - time.time()))
            if line is None:
                raise AssertionError("Claude Code exited before answering (rc %s)" % self.proc.wait())
            message = json.loads(line)
            if message.get("type") == "result":
                return message

    def close(self, timeout: float = 30) -> int:
        self.proc.stdin.close()
        return self.proc.wait(timeout)


def children(pid: int) -> List[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    found = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            found.extend(int(c) for c in f.read().split())
    return found


def wait_for(condition: Callable[[], object], timeout: float = 30, interval: float = 0.05):
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out waiting for %s" % getattr(condition, "__name__", condition))
        time.sleep(interval)
