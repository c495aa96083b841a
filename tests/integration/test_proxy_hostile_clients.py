"""Hostile local clients against the auth proxy: any local account can reach its port, none has the session key.

What each may cost: no body read before the key is checked, bounded heads, timeouts for slow and idle
clients, a connection cap that closes unauthenticated connections first, no protocol switch or tunnel,
nothing forwarded, nothing printed on Claude Code's terminal. Cases that are about another local user
run their client as `nobody` (root only; skipped otherwise).
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.support.launcher_fixtures import BASE_PATH, USER, message_body, read_events
from tests.support.proxy_process import rss_mb, start_flood, start_proxy, stop

MESSAGES = BASE_PATH + "/v1/messages"


@pytest.fixture(autouse=True)
def nothing_on_the_terminal(capfd):
    """Claude Code shares the proxy's terminal: no traceback or asyncio complaint may reach it."""
    yield
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Fatal error" not in err and "never retrieved" not in err, err


def _head(target: str = MESSAGES, key: str = "", extra: bytes = b"", method: bytes = b"POST") -> bytes:
    lines = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, target.encode())
    if key:
        lines += b"Authorization: Bearer %s\r\n" % key.encode()
    return lines + extra + b"\r\n"


def _answer(sock: socket.socket, timeout: float = 15) -> bytes:
    """Everything the proxy sends until it closes the connection (or `timeout`: then what came so far)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            piece = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not piece:
            return data + b"<closed>"
        data += piece
    return data


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _connect(proxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), 10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    return _answer(sock, seconds).endswith(b"<closed>")


# -- bodies -----------------------------------------------------------------------------------------------------

def test_a_client_without_the_key_is_refused_before_it_sends_its_body(auth_proxy, fake_databricks):
    """The key is checked when the headers are in: the 401 comes although not one byte of the 50 MB body was sent."""
    proxy = auth_proxy()
    sock = _connect(proxy)
    sock.sendall(_head(extra=b"Content-Type: application/json\r\nContent-Length: 52428800\r\n"))
    answer = _answer(sock)
    assert _status(answer) == 401 and answer.endswith(b"<closed>"), answer[:200]
    assert b"missing or wrong session key" in answer
    assert fake_databricks.calls() == [] and proxy.fetches == []


def test_a_keyed_request_announcing_a_body_over_the_limit_gets_413_before_sending_it(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    sock = _connect(proxy)
    sock.sendall(_head(key=proxy.session_key, extra=b"Content-Length: %d\r\n" % (64 * 1024 * 1024 + 1)))
    answer = _answer(sock)
    assert _status(answer) == 413 and answer.endswith(b"<closed>"), answer[:200]
    assert fake_databricks.calls() == []


def test_a_chunked_body_over_the_limit_is_cut_at_the_limit(auth_proxy, fake_databricks):
    from claude_db.connections import ClientLimits
    proxy = auth_proxy(limits=ClientLimits(max_body=256 * 1024))
    sock = _connect(proxy)
    sock.sendall(_head(key=proxy.session_key, extra=b"Transfer-Encoding: chunked\r\n"))
    piece = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    try:
        for _i in range(8):  # 512 KB, twice the limit
            sock.sendall(piece)
    except OSError:
        pass  # the proxy stopped reading and cut the connection: what this test wants
    answer = _answer(sock)
    assert _status(answer) == 413, answer[:200]
    assert fake_databricks.calls() == []


# -- heads ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, status", [("long URL", 414), ("many headers", 431), ("one huge header", 431),
                                          ("huge header, trickled", 431)])
def test_a_request_head_over_the_limits_is_refused_even_with_the_key(auth_proxy, fake_databricks, kind, status):
    """Caps on the target (8 KB), header count (100) and head size (64 KB): a 414/431, nothing forwarded."""
    proxy = auth_proxy()
    body = json.dumps(message_body()).encode()
    length = b"Content-Length: %d\r\n" % len(body)
    sock = _connect(proxy)
    if kind == "long URL":
        sock.sendall(_head(MESSAGES + "?q=" + "a" * 9000, proxy.session_key, length) + body)
    elif kind == "many headers":
        sock.sendall(_head(key=proxy.session_key, extra=length + b"".join(b"X-%d: y\r\n" % i for i in range(101)))
                     + body)
    elif kind == "one huge header":
        sock.sendall(_head(key=proxy.session_key, extra=length + b"X-Big: " + b"a" * (70 * 1024) + b"\r\n") + body)
    else:  # one header that never ends, in small writes: the proxy must not keep every piece
        sock.sendall(_head(key=proxy.session_key, extra=length)[:-2] + b"X-Big: ")
        try:
            for _i in range(100):
                sock.sendall(b"a" * 1024)
        except OSError:
            pass
    answer = _answer(sock)
    assert _status(answer) == status and answer.endswith(b"<closed>"), answer[:200]
    assert fake_databricks.calls() == [] and proxy.fetches == []


def test_a_keyed_request_bigger_than_the_head_limit_in_one_write_is_served(auth_proxy, fake_databricks):
    """Only the head counts against the 64 KB: Claude Code's ~80 KB requests arrive head and body in one read."""
    proxy = auth_proxy()
    body = json.dumps(message_body(stream=False, text="x" * 200000)).encode()
    sock = _connect(proxy)
    sock.sendall(_head(key=proxy.session_key, extra=b"Content-Length: %d\r\nConnection: close\r\n" % len(body))
                 + body)
    answer = _answer(sock)
    assert _status(answer) == 200, answer[:200]
    assert fake_databricks.anthropic.requests()[0].body == body


# -- slow and idle clients --------------------------------------------------------------------------------------

def _trickle(sock: socket.socket, data: bytes) -> bytes:
    """Send `data` a byte every 0.2 s until the proxy answers or closes; what it answered."""
    answer = b""
    for byte in data:
        try:
            sock.send(bytes([byte]))
        except OSError:
            break
        answer += _answer(sock, 0.2)
        if answer:
            break
    return answer + _answer(sock, 5)


def test_a_head_trickled_byte_by_byte_is_cut_after_the_head_timeout(auth_proxy, fake_databricks):
    """Slowloris: a byte every 0.2 s keeps any per-read timeout happy; the head as a whole has 1 s here."""
    from claude_db.connections import ClientLimits
    proxy = auth_proxy(limits=ClientLimits(head_timeout=1.0))
    sock = _connect(proxy)
    started = time.time()
    answer = _trickle(sock, _head(key=proxy.session_key, extra=b"X-Slow: " + b"z" * 200))  # 40 s unless cut
    assert _status(answer) == 408 and answer.endswith(b"<closed>"), answer[:200]
    assert time.time() - started < 20
    assert fake_databricks.calls() == []


def test_a_body_trickled_by_a_keyed_client_is_cut_after_the_body_timeout(auth_proxy, fake_databricks):
    from claude_db.connections import ClientLimits
    proxy = auth_proxy(limits=ClientLimits(body_timeout=1.0))
    sock = _connect(proxy)
    sock.sendall(_head(key=proxy.session_key, extra=b"Content-Length: 1000\r\n"))
    answer = _trickle(sock, b"{" * 100)  # 20 s unless cut
    assert _status(answer) == 408 and answer.endswith(b"<closed>"), answer[:200]
    assert fake_databricks.calls() == []


def test_idle_connections_without_the_key_are_closed_and_a_keyed_one_is_kept(auth_proxy, fake_databricks):
    from claude_db.connections import ClientLimits
    proxy = auth_proxy(limits=ClientLimits(head_timeout=1.0, idle_timeout=60.0))
    idle = [_connect(proxy) for _i in range(5)]
    keyed = proxy.connect()
    assert proxy.request(body=message_body(stream=False), conn=keyed).read()
    assert all(_closed_within(s, 10) for s in idle)
    time.sleep(0.5)  # the keyed connection has been idle longer than head_timeout now
    resp = proxy.request(body=message_body(stream=False), conn=keyed)
    assert resp.status == 200 and json.loads(resp.read())["type"] == "message"
    assert len(fake_databricks.anthropic.requests()) == 2  # both on the one kept connection


def test_a_preconnect_keeps_its_connection_only_as_long_as_an_unauthenticated_one(auth_proxy, fake_databricks):
    """Claude Code's HEAD warm-up is answered without the key; the connection then has the unauthenticated budget."""
    from claude_db.connections import ClientLimits
    proxy = auth_proxy(limits=ClientLimits(head_timeout=1.0))
    sock = _connect(proxy)
    sock.sendall(_head(BASE_PATH, method=b"HEAD") * 2)
    answer = _answer(sock, 10)
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and answer.endswith(b"<closed>"), answer
    assert fake_databricks.calls() == []


# -- connection cap ---------------------------------------------------------------------------------------------

def test_claude_code_is_served_while_unauthenticated_connections_fill_every_slot(auth_proxy, fake_databricks):
    """At the cap, a new connection closes the oldest unauthenticated one; a keyed client always gets in."""
    from claude_db.connections import ClientLimits
    proxy = auth_proxy(limits=ClientLimits(max_connections=8, head_timeout=60.0))
    hostile = [_connect(proxy) for _i in range(8)]
    hostile[-1].sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # one in the middle of a head, the rest idle
    time.sleep(0.3)
    keyed = [proxy.connect() for _i in range(3)]  # held open: each needs a slot of its own
    for conn in keyed:
        resp = proxy.request(body=message_body(), conn=conn)
        assert resp.status == 200 and read_events(resp)[-1]["type"] == "message_stop"
    assert all(_closed_within(s, 5) for s in hostile[:3])  # the oldest unauthenticated ones made room
    assert not _closed_within(hostile[3], 0.5)
    assert len(fake_databricks.anthropic.requests()) == 3


def test_at_the_cap_with_every_connection_keyed_a_new_one_is_refused(auth_proxy, fake_databricks):
    from claude_db.connections import ClientLimits
    proxy = auth_proxy(limits=ClientLimits(max_connections=2))
    keyed = [proxy.connect() for _i in range(2)]
    for conn in keyed:
        assert proxy.request(body=message_body(stream=False), conn=conn).read()
    late = _connect(proxy)
    assert _closed_within(late, 5)
    for conn in keyed:  # the keyed ones were not touched
        assert proxy.request(body=message_body(stream=False), conn=conn).status == 200


# -- protocol switches and tunnels ------------------------------------------------------------------------------

UPGRADES = {
    "h2c upgrade": b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: Upgrade, HTTP2-Settings"
                   b"\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\n{}"
                   % MESSAGES.encode(),
    "websocket": b"GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: Upgrade\r\n"
                 b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
                 b"\r\n\r\n" % MESSAGES.encode(),
    "Upgrade without Connection": b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nUpgrade: h2c\r\n"
                                  b"Content-Length: 2\r\n\r\n{}" % MESSAGES.encode(),
    "CONNECT": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nAuthorization: Bearer {key}\r\n\r\n",
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}


@pytest.mark.parametrize("kind", list(UPGRADES))
def test_protocol_switches_and_tunnels_are_refused_and_nothing_is_forwarded(auth_proxy, fake_databricks, kind):
    """Even with the session key: 400 (Upgrade, h2 preface) or 501 (CONNECT), the connection closes, no traceback."""
    proxy = auth_proxy()
    sock = _connect(proxy)
    sock.sendall(UPGRADES[kind].replace(b"{key}", proxy.session_key.encode()))
    answer = _answer(sock)
    assert _status(answer) == (501 if kind == "CONNECT" else 400) and answer.endswith(b"<closed>"), answer[:200]
    assert b"claude-db proxy" in answer
    time.sleep(0.2)
    assert fake_databricks.calls() == [] and proxy.fetches == []


# -- another local user, and memory ------------------------------------------------------------------------------

def _client_as_another_user():
    """An interpreter and Popen options that run a client as `nobody`; skips unless we are root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the client as another local user (nobody)")
    python = shutil.which("python3", path="/usr/bin:/bin")  # ours may live where nobody cannot read
    if python is None:
        pytest.skip("no /usr/bin/python3 that user nobody can run")
    return python, {"user": "nobody", "group": "nogroup"}


def _flood_client():
    """As `nobody` when we are root (the realistic attacker); else as ourselves, which the proxy cannot tell apart."""
    if os.geteuid() != 0:
        return sys.executable, {}
    return _client_as_another_user()


def test_a_flood_leaves_the_proxys_memory_bounded_and_claude_code_served(fake_databricks, pki):
    """A local client (`nobody` when root) floods the port for 4 s (64 MB bodies, endless headers, hundreds of
    idle connections); the proxy, in its own process, grows by less than 24 MB at its peak, and every keyed
    request in the meantime succeeds."""
    python, user = _flood_client()
    env = dict(os.environ, REQUESTS_CA_BUNDLE=pki.ca_pem)
    key = "hostile-test-session-key"
    proc, port = start_proxy(fake_databricks.url, BASE_PATH, key, fake_databricks.issue_token(USER, 3600), env=env)
    try:
        before = rss_mb(proc.pid)
        flood = start_flood(port, 4, python, **user)
        statuses = []
        time.sleep(0.5)
        while flood.poll() is None and len(statuses) < 200:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", MESSAGES, body=json.dumps(message_body(stream=False)),
                         headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
            conn.close()
        counts = flood.communicate(timeout=60)[0]
        peak = rss_mb(proc.pid, "VmHWM")
    finally:
        stop(proc)
    print("flood %s; proxy RSS %.1f MB before, peak %.1f MB; %d keyed requests" % (counts.strip(), before, peak,
                                                                                   len(statuses)))
    assert "'bodies'" in counts and statuses and set(statuses) == {200}, (counts, statuses)
    assert peak - before < 24, (before, peak)
    assert len(fake_databricks.anthropic.requests()) == len(statuses)  # nothing of the flood was forwarded


def test_another_user_without_the_key_is_refused_and_nothing_is_forwarded(auth_proxy, fake_databricks):
    python, user = _client_as_another_user()
    proxy = auth_proxy()
    probe = ("import socket, sys\ns = socket.create_connection(('127.0.0.1', %d), 5)\n"
             "s.sendall(b'POST %s HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\n\\r\\n{}')\n"
             "s.settimeout(10)\nsys.stdout.write('%%d ' %% os.getuid() + s.recv(200).decode('latin-1'))"
             % (proxy.port, MESSAGES))
    out = subprocess.run([python, "-c", "import os\n" + probe], capture_output=True, text=True, timeout=30,
                         check=True, **user).stdout
    uid, answer = out.split(" ", 1)
    assert int(uid) != os.getuid()
    assert answer.startswith("HTTP/1.1 401 "), out
    assert fake_databricks.calls() == [] and proxy.fetches == []
