"""`claude-db-token serve` and `--service-key` with the real IdP sign-in and the fake workspace (issue 12)."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from tests.support.credential_fixtures import HELPER_PYTHON, TOKEN_HELPER
from tests.support.launcher_fixtures import USER
from tests.support.user_service import UserService, accepting, free_port, service_pids, signed_in_service

pytestmark = pytest.mark.slow

LOGIN_MESSAGE = "run `claude-db-token login`"


@pytest.fixture
def service(workstation):
    with signed_in_service(workstation) as running:
        yield running


def bearer(request) -> str:
    return request.headers["authorization"][len("Bearer "):]


def test_the_helper_starts_the_service_and_the_first_request_is_answered(service):
    assert not accepting(service.port)
    key = service.key()
    assert accepting(service.port)
    [pid] = service_pids(service.workstation.config_path)
    assert os.getsid(pid) == pid  # detached: a session of its own
    status, body = service.request(key)
    assert status == 200, body
    [request] = service.workstation.fake.anthropic.requests()
    assert service.workstation.fake.tokens[bearer(request)].subject == USER
    assert key not in request.headers.values()  # the client key stays on this machine
    log = os.path.join(service.workstation.state_dir, "service.log")
    assert os.stat(log).st_mode & 0o777 == 0o600
    assert os.stat(service.workstation.state_dir).st_mode & 0o777 == 0o700
    with open(log) as f:
        text = f.read()
    assert "serving http://127.0.0.1:%d/serving-endpoints/anthropic" % service.port in text
    assert not service.workstation.secrets() & {w for w in text.split() if len(w) >= 16}
    assert service.key() == key  # the second call finds it running and changes nothing
    assert service_pids(service.workstation.config_path) == [pid]


def test_a_socket_activated_service_serves_the_request_queued_before_it_started(service):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    activated = listener.getsockname()[1]
    service.workstation.run("serve", "--rotate-key", check=0)  # a key, and nothing started
    key = _read_key(service)
    client = socket.create_connection(("127.0.0.1", activated), 5)  # queued in the backlog: nobody serves yet
    assert not accepting(service.port)

    def on_fd_3():
        os.dup2(listener.fileno(), 3)

    command = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", HELPER_PYTHON, TOKEN_HELPER, "serve"]
    proc = subprocess.Popen(command, env=service.workstation.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=on_fd_3, pass_fds=(3,))  # kept after on_fd_3
    service.procs.append(proc)
    listener.close()
    body = json.dumps({"model": "databricks-claude-sonnet-4-5", "max_tokens": 8,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    client.sendall(b"POST /serving-endpoints/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                   + key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                   + body)
    client.settimeout(30)
    answer = client.recv(65536)
    client.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert not accepting(service.port)  # it never bound a socket of its own
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "(systemd socket activation)" in err.splitlines()[0]
    assert err.splitlines()[-1].endswith("stopping: SIGTERM")


def _read_key(service) -> str:
    with open(os.path.join(service.workstation.state_dir, "service-key")) as f:
        return json.load(f)["key"]


def test_key_rotation_on_demand_and_on_logout_in_the_same_service(service):
    proc = service.start()
    first = service.key()
    assert service.request(first)[0] == 200
    rotated = service.workstation.run("serve", "--rotate-key", check=0)
    assert "rotated the service client key" in rotated.stderr
    second = service.key()
    assert second != first
    status, body = service.request(first)
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
    assert service.request(second)[0] == 200

    assert "rotated the service client key" in service.workstation.run("logout", check=0).stderr
    third = service.key()
    assert third != second and service.request(second)[0] == 401
    # Signed out: the service dropped the token it held, so the new key meets the login message.
    status, body = service.request(third)
    assert status == 401 and LOGIN_MESSAGE in json.loads(body)["error"]["message"], body
    service.workstation.run("login", check=0)
    assert service.request(third)[0] == 200
    assert proc.poll() is None  # the same service process throughout
    assert service_pids(service.workstation.config_path) == []  # and the helper never started another


def test_a_dead_sign_in_is_401_with_the_login_message_and_login_recovers_without_a_restart(workstation_factory):
    workstation = workstation_factory(IDP_ID_TOKEN_TTL="2")
    workstation.fake.exchange_ttl = 47  # the service refreshes it when 45 s are left: after 2 s
    workstation.run(check=0)
    service = UserService(workstation)
    try:
        proc = service.start()
        key = service.key()
        assert service.request(key)[0] == 200
        workstation.idp.revoke(USER)
        time.sleep(2.5)  # the Databricks token and the ID token are both too old now; the refresh is refused
        status, body = service.request(key)
        assert status == 401, body
        error = json.loads(body)["error"]
        assert error["type"] == "authentication_error" and LOGIN_MESSAGE in error["message"], error
        workstation.fake.exchange_ttl = 3600
        workstation.run("login", check=0)
        assert service.request(key)[0] == 200
        assert proc.poll() is None
    finally:
        service.stop()


def test_idp_down_while_the_token_is_valid_keeps_working(workstation_factory):
    workstation = workstation_factory()
    with signed_in_service(workstation) as service:
        service.start()
        key = service.key()
        workstation.idp.stop()
        for _i in range(3):
            status, body = service.request(key)
            assert status == 200, body


def test_idle_stop_exits_0_and_a_request_keeps_it_alive(workstation):
    with signed_in_service(workstation, idle_stop=1.5) as service:
        proc = service.start()
        key = service.key()
        for _i in range(8):  # 4 s of requests, each well within 1.5 s of the previous one
            assert service.request(key)[0] == 200
            time.sleep(0.5)
        assert proc.poll() is None
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert time.monotonic() - started >= 1.0
        assert err.splitlines()[-1].endswith("stopping: no client for 1.5 s (serve.idle_stop)")
        assert not accepting(service.port)


def test_an_open_connection_keeps_it_alive(workstation):
    with signed_in_service(workstation, idle_stop=1) as service:
        proc = service.start()
        held = socket.create_connection(("127.0.0.1", service.port), 5)
        time.sleep(3)
        assert proc.poll() is None
        held.close()
        proc.communicate(timeout=30)
        assert proc.returncode == 0


def test_a_taken_port_is_one_line_naming_it_and_serve_port(workstation):
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    port = squatter.getsockname()[1]
    workstation.write_config(serve={"port": port})
    try:
        result = workstation.run("serve", check=1)
    finally:
        squatter.close()
    [line] = result.stderr.splitlines()
    assert line.startswith("claude-db-token: port %d on 127.0.0.1 is already taken" % port), line
    assert "serve.port in %s" % workstation.config_path in line
    assert result.stdout == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to listen as another user (nobody)")
def test_another_users_listener_on_our_port_gets_no_key(workstation):
    port = free_port()
    workstation.write_config(serve={"port": port})
    squatter = subprocess.Popen(
        ["python3", "-c", "import socket, sys, time\ns = socket.socket()\ns.bind(('127.0.0.1', %d))\ns.listen(8)\n"
                          "print('up', flush=True)\ntime.sleep(60)" % port],
        user="nobody", stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout.readline() == "up\n"
        result = workstation.run("--service-key", check=1)
        doctor = workstation.run("doctor").stdout
    finally:
        squatter.kill()
        squatter.wait()
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    nobody = int(subprocess.check_output(["id", "-u", "nobody"]))
    assert ("127.0.0.1:%d is held by uid %d, not by your claude-db-token serve; no key given out" % (port, nobody)
            in line), line
    assert "FAIL  service            127.0.0.1:%d is held by uid %d" % (port, nobody) in doctor, doctor


def test_status_and_doctor_show_the_service(service):
    before = json.loads(service.workstation.run("status", "--json", check=0).stdout)["service"]
    assert before == {"port": service.port, "running": False, "listener_uids": None, "ours": None}
    assert "service:          not running (starts on demand on 127.0.0.1:%d)" % service.port in \
        service.workstation.run("status", check=0).stdout
    service.start()
    after = json.loads(service.workstation.run("status", "--json", check=0).stdout)["service"]
    assert after == {"port": service.port, "running": True, "listener_uids": [os.geteuid()], "ours": True}
    assert "service:          running on 127.0.0.1:%d (yours)" % service.port in \
        service.workstation.run("status", check=0).stdout
    doctor = service.workstation.run("doctor").stdout
    assert "ok    service            running on 127.0.0.1:%d (yours); key " % service.port in doctor, doctor
