"""The auth proxy streams: events pass as they come, many streams at once, and a dying upstream ends cleanly."""

import http.client
import json
import socket
import time

import pytest

from tests.support.fake_databricks import messages
from tests.support.launcher_fixtures import message_body, read_events, run_in_threads


def test_the_first_event_reaches_the_client_before_the_upstream_has_finished(auth_proxy, fake_databricks):
    fake_databricks.anthropic.script(messages.text("one two three four five six", event_delay=0.25))
    proxy = auth_proxy()
    resp = proxy.request(body=message_body())
    first_line = resp.readline()
    got_first = time.time()
    assert first_line == b"event: message_start\n"
    assert fake_databricks.anthropic.streams_finished == []  # the upstream is still sending
    rest = read_events(resp)
    assert rest[-1]["type"] == "message_stop"
    [finished] = fake_databricks.anthropic.streams_finished
    assert finished - got_first > 1.5  # about 10 events x 0.25 s were still to come


def test_32_parallel_streams_through_one_proxy_all_complete(auth_proxy, fake_databricks):
    fake_databricks.anthropic.event_delay = 0.02
    proxy = auth_proxy()

    def stream(i):
        resp = proxy.request(body=message_body(text="stream %d" % i))
        return resp.status, read_events(resp)

    results = run_in_threads(32, stream)
    for status, events in results:
        assert status == 200
        assert [e["type"] for e in events][-1] == "message_stop"
        assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == "ok"
    assert len(fake_databricks.anthropic.requests()) == 32
    assert len(proxy.fetches) <= 1


def test_an_upstream_that_drops_mid_stream_ends_the_sse_stream_with_an_error_event(auth_proxy, fake_databricks):
    fake_databricks.anthropic.script(messages.text("a b c d e f", drop_after=4))
    proxy = auth_proxy()
    conn = proxy.connect()
    resp = proxy.request(body=message_body(), conn=conn)
    events = read_events(resp)  # http.client raises IncompleteRead unless the chunked body ended properly
    assert [e["type"] for e in events[:4]] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert events[-1]["type"] == "error" and "closed the stream early" in events[-1]["error"]["message"]
    # The proxy stays usable, even on the same client connection.
    resp = proxy.request(body=message_body(), conn=conn)
    assert read_events(resp)[-1]["type"] == "message_stop"


def test_an_upstream_that_drops_a_json_answer_cuts_the_client_connection(auth_proxy, fake_databricks):
    fake_databricks.anthropic.script(messages.text("whole answer", drop_after=1))
    proxy = auth_proxy()
    resp = proxy.request(body=message_body(stream=False))
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead):
        resp.read()


def test_an_upstream_that_stops_sending_is_given_up_after_the_read_timeout(auth_proxy, fake_databricks):
    fake_databricks.slow(r"/v1/messages$", delay=3)
    proxy = auth_proxy(read_timeout=0.5)
    started = time.time()
    resp = proxy.request(body=message_body())
    assert resp.status == 504 and "did not answer in time" in json.loads(resp.read())["error"]["message"]
    assert time.time() - started < 2.5


def test_an_unreachable_workspace_is_a_502(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    fake_databricks.stop()
    resp = proxy.request(body=message_body())
    assert resp.status == 502 and json.loads(resp.read())["error"]["type"] == "api_error"


def test_a_client_that_hangs_up_mid_stream_does_not_hurt_the_proxy(auth_proxy, fake_databricks):
    fake_databricks.anthropic.script(messages.text("w " * 40, event_delay=0.05))
    proxy = auth_proxy()
    sock = socket.create_connection(("127.0.0.1", proxy.port))
    body = json.dumps(message_body()).encode()
    sock.sendall(b"POST /serving-endpoints/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                 + proxy.session_key.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    sock.close()
    resp = proxy.request(body=message_body())
    assert read_events(resp)[-1]["type"] == "message_stop"
