"""`claude-db-token serve` for tests: a signed-in workstation's service on a free port, and a client for it."""

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from typing import List, Optional

from tests.support.launcher_fixtures import BASE_PATH, message_body, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


def service_pids(config_path: str) -> List[int]:
    """Processes running `claude-db-token serve --config <config_path>` (also the ones --service-key started)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and os.path.abspath(config_path).encode() in argv:
            found.append(int(name))
    return found


class UserService:
    """The service of one workstation (tests.support.credential_fixtures.Workstation), on its own port."""

    def __init__(self, workstation, **serve):
        self.workstation = workstation
        self.port = serve.pop("port", None) or free_port()
        workstation.write_config(serve=dict(serve, port=self.port))
        self.procs = []  # type: List[subprocess.Popen]

    def start(self, env: Optional[dict] = None, **popen) -> subprocess.Popen:
        """`claude-db-token serve` in the foreground of a child process; returns once it accepts."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        proc = self.workstation.popen("serve", env=env, **popen)
        self.procs.append(proc)
        wait_for(lambda: accepting(self.port) or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, proc.communicate()
        return proc

    def key(self, env: Optional[dict] = None) -> str:
        """What the apiKeyHelper (`--service-key`) prints."""
        return self.workstation.run("--service-key", env=env, check=0).stdout.strip()

    def request(self, key: Optional[str], body: Optional[dict] = None, stream: bool = False, timeout: float = 60):
        """POST /v1/messages to the service; (status, body text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Content-Type": "application/json", "anthropic-version": "2023-06-01"}
        if key:
            headers["Authorization"] = "Bearer " + key
        try:
            conn.request("POST", BASE_PATH + "/v1/messages?beta=true",
                         body=json.dumps(body or message_body(stream=stream)).encode(), headers=headers)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop every service of this workstation: the ones started here and the ones the helper started."""
        for pid in service_pids(self.workstation.config_path):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        deadline = time.time() + 10
        while service_pids(self.workstation.config_path) and time.time() < deadline:
            time.sleep(0.05)


@contextlib.contextmanager
def signed_in_service(workstation, **serve):
    """A signed-in workstation's UserService (not started), stopped with everything it started at the end."""
    workstation.run(check=0)
    service = UserService(workstation, **serve)
    try:
        yield service
    finally:
        service.stop()
