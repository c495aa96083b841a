"""A real forward proxy for the egress-proxy tests: proxy.py (PyPI proxy.py, abhinavsingh/proxy.py), per test.

The fake workspace is reachable only through it: tests address the workspace by pki.PROXY_ONLY_HOST,
a name only this proxy resolves (forward_proxy_plugin.py), so a connection that bypasses the proxy
cannot even find the host. The proxy records every upstream connection it opens. Options: Basic
proxy auth (`user`, `password`), TLS interception with its own CA (`intercept`: a Pki whose CA
signs the certificates it shows; it verifies the workspace with the test CA), the idle timeout.
"""

import json
import os
import socket
import subprocess
import sys
import time
from typing import List, Optional, Tuple

import pytest

from tests.support.pki import PROXY_ONLY_HOST, Pki

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN = "tests.support.forward_proxy_plugin.ProxyOnlyDns"


class ForwardProxy:
    """A running proxy.py on 127.0.0.1; `url` is what HTTPS_PROXY / network.proxy get."""

    def __init__(self, directory: str, upstream_ca: str, user: Optional[str] = None, password: Optional[str] = None,
                 intercept: Optional[Pki] = None, idle_timeout: float = 30):
        os.makedirs(directory, exist_ok=True)
        self.log = os.path.join(directory, "upstreams.log")
        open(self.log, "w").close()
        port_file = os.path.join(directory, "port")
        args = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0", "--port-file", port_file,
                "--num-workers", "1", "--num-acceptors", "1", "--timeout", str(idle_timeout),
                "--plugins", PLUGIN, "--log-level", "WARNING", "--log-file", os.path.join(directory, "proxy.log")]
        if user is not None:
            args += ["--basic-auth", "%s:%s" % (user, password)]  # argv of a throwaway test proxy, not ours
        if intercept is not None:
            certs = os.path.join(directory, "certs")
            os.makedirs(certs, exist_ok=True)
            args += ["--ca-cert-file", intercept.ca_pem, "--ca-key-file", intercept.ca_key_pem,
                     "--ca-signing-key-file", intercept.key_pem, "--ca-cert-dir", certs, "--ca-file", upstream_ca]
        env = dict(os.environ, PYTHONPATH=REPO, FORWARD_PROXY_LOG=self.log,
                   FORWARD_PROXY_HOSTS="%s=127.0.0.1" % PROXY_ONLY_HOST)
        for name in list(env):
            if name.lower().endswith("_proxy"):
                del env[name]
        self._process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        self.port = self._wait_for_port(port_file)
        credentials = "%s:%s@" % (user, password) if user is not None else ""
        self.url = "http://%s127.0.0.1:%d" % (credentials, self.port)

    def _wait_for_port(self, port_file: str, timeout: float = 30) -> int:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self._process.poll() is not None:
                pytest.fail("proxy.py exited with %s before listening" % self._process.returncode)
            try:
                with open(port_file) as f:
                    port = int(f.read().split()[0])
                socket.create_connection(("127.0.0.1", port), 1).close()
                return port
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        self.stop()
        pytest.fail("proxy.py did not listen within %d s" % timeout)

    def upstreams(self) -> List[Tuple[str, int]]:
        """Every upstream connection the proxy opened so far, as (host, port), in order."""
        with open(self.log) as f:
            return [tuple(json.loads(line)) for line in f if line.strip()]

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def proxy_only_url(fake) -> str:
    """The fake workspace's URL by the name only the forward proxy resolves."""
    return "https://%s:%d" % (PROXY_ONLY_HOST, int(fake.url.rsplit(":", 1)[1]))


@pytest.fixture
def forward_proxy(pki, tmp_path_factory):
    """start(**options) -> ForwardProxy (see the module docstring); every proxy started is stopped at teardown."""
    started = []

    def start(**options) -> ForwardProxy:
        proxy = ForwardProxy(str(tmp_path_factory.mktemp("forward-proxy")), pki.ca_pem, **options)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
