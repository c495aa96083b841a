"""The proxy's HTTP/1.1 handling on both sides: bad input, pipelining, slow readers, dead keep-alive connections."""

import json
import socket
import threading
import time

import pytest

from tests.support.fake_databricks import messages
from tests.support.launcher_fixtures import BASE_PATH, message_body, read_events


def _raw_request(proxy, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST %s/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n%s\r\n%s"
            % (BASE_PATH.encode(), proxy.session_key.encode(), len(body), extra, body))


def _read_all(sock: socket.socket, until: bytes, timeout: float = 20) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while data.count(until) < 1:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def test_a_malformed_request_gets_a_400_and_nothing_reaches_the_workspace(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    sock = socket.create_connection(("127.0.0.1", proxy.port))
    sock.sendall(b"POST /serving-endpoints/anthropic/v1/messages HTTP/1.1\r\nHost x\r\n\r\n")
    assert _read_all(sock, b"}").startswith(b"HTTP/1.1 400")
    assert fake_databricks.calls() == []


def test_pipelined_requests_are_answered_in_order(auth_proxy, fake_databricks):
    fake_databricks.anthropic.script(messages.text("first"), messages.text("second"))
    proxy = auth_proxy()
    body = json.dumps(message_body(stream=False)).encode()
    sock = socket.create_connection(("127.0.0.1", proxy.port))
    sock.sendall(_raw_request(proxy, body) + _raw_request(proxy, body))
    data = b""
    while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"}"):
        data += _read_all(sock, b"}")
    assert data.index(b'"first"') < data.index(b'"second"')


def test_a_slow_reader_holds_the_workspace_back_instead_of_filling_the_proxys_memory(auth_proxy, fake_databricks):
    """Claude Code's socket fills up: the proxy stops reading the workspace until it drains."""
    words = " ".join("%06d" % i + "x" * 600 for i in range(60000))  # ~36 MB of SSE, over 2x what socket buffers hold
    fake_databricks.anthropic.script(messages.text(words))
    proxy = auth_proxy()
    sock = socket.create_connection(("127.0.0.1", proxy.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(_raw_request(proxy, json.dumps(message_body()).encode()))
    time.sleep(2)  # not reading: the workspace must still be stuck mid-answer
    assert fake_databricks.anthropic.streams_finished == []
    pieces, tail = [], b""
    sock.settimeout(30)
    while not tail.endswith(b"0\r\n\r\n"):
        pieces.append(sock.recv(1 << 20))
        tail = (tail + pieces[-1])[-16:]
    assert b"".join(pieces).count(b"content_block_delta") == 2 * 60000  # event name + type, for every word
    assert len(fake_databricks.anthropic.streams_finished) == 1


class _FlakyUpstream:
    """A workspace stand-in that drops connections: `script` says, per connection, how many requests it answers
    before closing (without answering the next one)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            answers = self.script.pop(0) if self.script else 1
            threading.Thread(target=self._connection, args=(conn, answers), daemon=True).start()

    def _connection(self, conn, answers):
        buffered = b""
        while True:
            while b"\r\n\r\n" not in buffered:
                piece = conn.recv(65536)
                if not piece:
                    return conn.close()
                buffered += piece
            head, buffered = buffered.split(b"\r\n\r\n", 1)
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            while len(buffered) < length:
                buffered += conn.recv(65536)
            buffered = buffered[length:]
            self.requests += 1
            if answers == 0:
                return conn.close()  # as a server that timed the idle connection out just now
            answers -= 1
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}')

    def close(self):
        self.sock.close()


def test_a_kept_alive_connection_the_workspace_dropped_is_retried_on_a_new_one(auth_proxy):
    upstream = _FlakyUpstream([1, 1])  # connection 1 answers once, then drops the next request
    proxy = auth_proxy(upstream=upstream.url)
    try:
        for _i in range(2):
            resp = proxy.request(body=message_body())
            assert (resp.status, resp.read()) == (200, b"{}")
        assert upstream.requests == 3
    finally:
        upstream.close()


def test_a_request_on_a_new_connection_is_never_sent_twice(auth_proxy):
    upstream = _FlakyUpstream([0, 0])
    proxy = auth_proxy(upstream=upstream.url)
    try:
        resp = proxy.request(body=message_body())
        assert resp.status == 502 and "closed the connection" in json.loads(resp.read())["error"]["message"]
        assert upstream.requests == 1
    finally:
        upstream.close()


def test_sse_through_the_proxy_is_byte_for_byte_what_the_workspace_sent(auth_proxy, fake_databricks):
    fake_databricks.anthropic.script(messages.tool_use("Bash", {"command": "echo 'é' && env"}))
    proxy = auth_proxy()
    events = read_events(proxy.request(body=message_body()))
    partial = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert json.loads(partial) == {"command": "echo 'é' && env"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_a_proxy_that_cannot_start_refuses_connections_instead_of_leaving_them_hanging(auth_proxy, capfd):
    proxy = auth_proxy(upstream="http://[::1")  # not a URL: the proxy fails while starting
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), 5)
    assert "claude-db: the proxy stopped (ValueError" in capfd.readouterr().err
