"""HTTP/1.1 connections for the auth proxy: Claude Code's side and a keep-alive pool to the workspace.

Parsing is httptools (llhttp, the parser behind uvicorn); this module only
frames messages and moves bytes. It exists because a general HTTP framework
costs several Python calls per streamed chunk on each side (measured: about 4x
nginx's CPU per streamed answer with aiohttp); here an upstream chunk becomes
one callback and one write to Claude Code's socket, with backpressure from a
slow reader passed back to the upstream socket.
"""

import asyncio
import ssl
from collections import deque
from typing import Callable, List, Optional, Tuple

import httptools

Headers = List[Tuple[bytes, bytes]]
# Headers that describe one hop, not the message (RFC 9110 7.6.1); the framing ones are set per hop.
HOP_BY_HOP = frozenset((
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection", b"te",
    b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect",
))
MAX_BODY = 64 * 1024 * 1024  # twice the Anthropic API's own request limit


class UpstreamError(Exception):
    """The workspace could not be reached, stopped answering, or broke the connection."""


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamTLSError(UpstreamError):
    """The workspace's certificate did not verify (a TLS-inspecting proxy whose CA we do not trust?)."""


class ProxyFailure(UpstreamError):
    """The egress proxy refused the tunnel or could not be reached; the message names the proxy."""


class Request:
    """One request from Claude Code: method, raw target (path + query), headers, the whole body."""

    __slots__ = ("method", "target", "path", "headers", "body", "keep_alive")

    def __init__(self, method: bytes, target: bytes, headers: Headers, body: bytes, keep_alive: bool):
        self.method = method
        self.target = target
        self.path = target.split(b"?", 1)[0]
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive

    def header(self, name: bytes) -> bytes:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return b""


class ClientConnection(asyncio.Protocol):
    """Claude Code's connection to the proxy: parse requests, hand them to `handle`, one at a time."""

    def __init__(self, handle: Callable[["ClientConnection", Request], "asyncio.Future"]):
        self._handle = handle
        self._parser = httptools.HttpRequestParser(self)
        self.transport = None  # type: Optional[asyncio.Transport]
        self._target = b""
        self._headers = []  # type: Headers
        self._body = []  # type: List[bytes]
        self._size = 0
        self._queue = deque()  # type: deque
        self._worker = None  # type: Optional[asyncio.Task]
        self._out = []  # type: List[bytes]
        self.on_writable = None  # type: Optional[Callable[[bool], None]]  # backpressure to the upstream
        self.closed = False

    # -- asyncio.Protocol --------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.send_error_and_close(400, b'{"type":"error","error":{"type":"invalid_request_error",'
                                           b'"message":"claude-db proxy: malformed HTTP request"}}')

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self._worker is not None:
            self._worker.cancel()
        if self.on_writable is not None:
            self.on_writable(True)

    def pause_writing(self) -> None:
        if self.on_writable is not None:
            self.on_writable(False)

    def resume_writing(self) -> None:
        if self.on_writable is not None:
            self.on_writable(True)

    # -- httptools callbacks -----------------------------------------------------
    def on_message_begin(self) -> None:
        self._target, self._headers, self._body, self._size = b"", [], [], 0

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            if name.lower() == b"expect" and value.lower() == b"100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            self.send_error_and_close(413, b'{"type":"error","error":{"type":"request_too_large",'
                                           b'"message":"claude-db proxy: request body too large"}}')
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = Request(self._parser.get_method(), self._target, self._headers, b"".join(self._body),
                          self._parser.should_keep_alive())
        self._queue.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._serve_queue())

    async def _serve_queue(self) -> None:
        while self._queue and not self.closed:
            request = self._queue.popleft()
            try:
                await self._handle(self, request)
            except Exception:
                self.abort()  # a bug in the proxy: Claude Code sees a dropped connection (and retries)
                raise
            if not request.keep_alive and not self.closed:
                self.transport.close()
                self.closed = True

    # -- responses ---------------------------------------------------------------
    def start_response(self, status: int, reason: bytes, headers: Headers, content_length: Optional[int]) -> None:
        """Status line and headers; chunked unless the length is known."""
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason or b"-")]
        lines.extend(b"%s: %s\r\n" % (k, v) for k, v in headers)
        if content_length is None:
            lines.append(b"Transfer-Encoding: chunked\r\n\r\n")
        else:
            lines.append(b"Content-Length: %d\r\n\r\n" % content_length)
        self.transport.write(b"".join(lines))

    def write_chunk(self, data: bytes) -> None:
        """Queue one piece of a chunked body; flush() sends what one upstream read brought, in one write."""
        if data:
            self._out.append(b"%x\r\n%s\r\n" % (len(data), data))

    def write_raw(self, data: bytes) -> None:
        self._out.append(data)

    def flush(self) -> None:
        if self._out and not self.closed:
            self.transport.write(b"".join(self._out))
        self._out = []

    def end_chunks(self) -> None:
        self._out.append(b"0\r\n\r\n")
        self.flush()

    def respond(self, status: int, reason: bytes, body: bytes, content_type: bytes = b"application/json",
                head: bool = False) -> None:
        """A whole small response (errors, the preconnect)."""
        if self.closed:
            return
        self.start_response(status, reason, [(b"Content-Type", content_type)], len(body))
        if not head:
            self.transport.write(body)

    def send_error_and_close(self, status: int, body: bytes) -> None:
        if not self.closed:
            self.respond(status, b"Error", body)
            self.transport.close()
            self.closed = True

    def abort(self) -> None:
        """Cut the connection: the client must not take a truncated body for a whole one."""
        self._out = []
        if not self.closed:
            self.transport.abort()
            self.closed = True


class UpstreamResponse:
    """Status and headers of the workspace's answer; the body goes to a sink as it arrives."""

    __slots__ = ("status", "reason", "headers", "content_length", "is_sse")

    def __init__(self, status: int, reason: bytes, headers: Headers):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content_length = None  # type: Optional[int]
        self.is_sse = False
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                self.content_length = int(value)
            elif lower == b"content-type":
                self.is_sse = value.split(b";", 1)[0].strip().lower() == b"text/event-stream"


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to the workspace, carrying one request at a time."""

    def __init__(self, pool: "UpstreamPool"):
        self._pool = pool
        self._loop = pool.loop
        self.transport = None  # type: Optional[asyncio.Transport]
        self._parser = None
        self.reused = False
        self.closed = False
        self._head = None  # type: Optional[asyncio.Future]
        self.done = None  # type: Optional[asyncio.Future]
        self._reason = b""
        self._headers = []  # type: Headers
        self._pending = []  # type: List[bytes]  # body received before a sink was attached
        self._sink = None  # type: Optional[Callable[[bytes], None]]
        self._flush = None  # type: Optional[Callable[[], None]]
        self._timer = None  # type: Optional[asyncio.TimerHandle]
        self._last_read = 0.0
        self._received = False

    # -- asyncio.Protocol --------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._received = True
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, AttributeError) as e:  # AttributeError: bytes while idle
            self._fail(UpstreamError("malformed answer from the workspace (%s)" % type(e).__name__))
            self.transport.abort()
        if self._flush is not None:
            self._flush()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._cancel_timer()
        self._pool.forget(self)
        self._fail(UpstreamError("the workspace closed the connection"))

    # -- httptools callbacks -----------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if not self._head.done():
            self._head.set_result(UpstreamResponse(self._parser.get_status_code(), self._reason, self._headers))

    def on_body(self, body: bytes) -> None:
        if self._sink is not None:
            self._sink(body)
        else:
            self._pending.append(body)

    def on_message_complete(self) -> None:
        self._cancel_timer()
        keep = self._parser.should_keep_alive()
        if not self.done.done():
            self.done.set_result(keep)

    # -- one exchange ------------------------------------------------------------
    def send(self, head: bytes, body: bytes) -> "asyncio.Future":
        """Write a request; the returned future gives the UpstreamResponse once the headers are in."""
        self._parser = httptools.HttpResponseParser(self)
        self._head = self._loop.create_future()
        self.done = self._loop.create_future()
        self._reason, self._headers, self._pending, self._received = b"", [], [], False
        self._sink = self._flush = None
        self.transport.writelines((head, body))
        self._arm_timer()
        return self._head

    def stream_to(self, sink: Callable[[bytes], None], flush: Optional[Callable[[], None]] = None) -> None:
        """From now on each body piece goes to `sink`, and `flush` runs after each read; what came before first."""
        for piece in self._pending:
            sink(piece)
        self._pending = []
        self._sink = sink
        self._flush = flush
        if flush is not None:
            flush()

    @property
    def answered(self) -> bool:
        """Whether any byte of the answer arrived (a request that got nothing may be retried)."""
        return self._received

    def pause(self, paused: bool) -> None:
        """Backpressure: stop reading while Claude Code's socket is full."""
        if self.closed:
            return
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _fail(self, error: Exception) -> None:
        for future in (self._head, self.done):
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: the other future is the one awaited

    def _arm_timer(self) -> None:
        """One timer per exchange, re-armed only when it fires (not per read): reads stay cheap."""
        self._cancel_timer()
        self._last_read = self._loop.time()
        self._timer = self._loop.call_later(self._pool.read_timeout, self._check_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_timeout(self) -> None:
        quiet = self._loop.time() - self._last_read
        if quiet < self._pool.read_timeout:
            self._timer = self._loop.call_later(self._pool.read_timeout - quiet, self._check_timeout)
            return
        self._timer = None
        self._fail(UpstreamTimeout("the workspace sent nothing for %g s" % self._pool.read_timeout))
        self.transport.abort()


class _TunnelReply(asyncio.Protocol):
    """The egress proxy's answer to CONNECT: its status line and headers, nothing after them."""

    MAX_HEAD = 64 * 1024

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.answer = loop.create_future()  # type: asyncio.Future  # (status, reason)
        self._head = b""

    def data_received(self, data: bytes) -> None:
        self._head += data
        if self.answer.done():
            return
        if b"\r\n\r\n" not in self._head:
            if len(self._head) > self.MAX_HEAD:
                self.answer.set_exception(ConnectionError("an endless answer to CONNECT"))
            return
        status_line = self._head.split(b"\r\n", 1)[0].split(None, 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") or not status_line[1].isdigit():
            self.answer.set_exception(ConnectionError("not an HTTP answer to CONNECT"))
            return
        reason = status_line[2].decode("latin-1").strip() if len(status_line) > 2 else ""
        self.answer.set_result((int(status_line[1]), reason))

    def connection_lost(self, exc) -> None:
        if not self.answer.done():
            self.answer.set_exception(ConnectionError("the proxy closed the connection"))


class UpstreamPool:
    """Keep-alive connections to one workspace, reused across requests; through a CONNECT tunnel when the
    route (network.Route) names an egress proxy. A tunnel is kept alive and reused like a direct connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, ssl_context: Optional[ssl.SSLContext],
                 connect_timeout: float, read_timeout: float, route=None):
        self.loop = loop
        self.host = host
        self.port = port
        self.ssl = ssl_context
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.route = route if route is not None and route.proxy else None
        self._idle = []  # type: List[UpstreamConnection]
        self._all = set()  # type: set

    async def acquire(self) -> UpstreamConnection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                connection.reused = True
                return connection
        where = " through the proxy %s" % self.route.shown if self.route else ""
        try:
            connection = await asyncio.wait_for(self._connect(), self.connect_timeout)
        except asyncio.TimeoutError:
            raise UpstreamTimeout("no connection to the workspace within %g s%s" % (self.connect_timeout, where)) \
                from None
        except ssl.SSLCertVerificationError as e:
            raise UpstreamTLSError("TLS verification failed (%s)" % e.verify_message) from None
        except (OSError, ssl.SSLError) as e:
            raise UpstreamError("cannot connect to the workspace (%s)%s" % (e.strerror or type(e).__name__, where)) \
                from None
        self._all.add(connection)
        return connection

    async def _connect(self) -> UpstreamConnection:
        if self.route is None:
            return (await self.loop.create_connection(
                lambda: UpstreamConnection(self), self.host, self.port, ssl=self.ssl,
                server_hostname=self.host if self.ssl else None))[1]
        transport = await self._tunnel()
        connection = UpstreamConnection(self)
        if self.ssl is not None:
            try:
                transport = await self.loop.start_tls(transport, connection, self.ssl, server_hostname=self.host)
            except BaseException:
                transport.abort()
                raise
        else:
            transport.set_protocol(connection)
        connection.connection_made(transport)
        return connection

    async def _tunnel(self) -> asyncio.Transport:
        """A TCP connection to the proxy on which CONNECT host:port succeeded (RFC 9110 9.3.6)."""
        route = self.route
        try:
            transport, reply = await self.loop.create_connection(lambda: _TunnelReply(self.loop),
                                                                 *route.proxy_address())
        except OSError as e:
            raise ProxyFailure(route.unreachable((e.strerror or type(e).__name__).lower())) from None
        target = route.target.encode("idna")
        head = b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (target, target)
        authorization = route.proxy_authorization()
        if authorization:
            head += b"Proxy-Authorization: %s\r\n" % authorization.encode("latin-1")
        transport.write(head + b"\r\n")
        try:
            status, reason = await reply.answer
        except ConnectionError as e:
            transport.abort()
            raise ProxyFailure(route.unreachable(str(e))) from None
        except BaseException:
            transport.abort()
            raise
        if not 200 <= status < 300:
            transport.abort()
            raise ProxyFailure(route.refused(status, reason))
        return transport

    def release(self, connection: UpstreamConnection, keep_alive: bool) -> None:
        if keep_alive and not connection.closed:
            connection.reused = False
            self._idle.append(connection)
        else:
            self.discard(connection)

    def discard(self, connection: UpstreamConnection) -> None:
        if not connection.closed:
            connection.transport.abort()
        self.forget(connection)

    def forget(self, connection: UpstreamConnection) -> None:
        self._all.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        for connection in list(self._all):
            self.discard(connection)
