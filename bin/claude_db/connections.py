"""HTTP/1.1 connections for the auth proxy: Claude Code's side and a keep-alive pool to the workspace.

Parsing is httptools (llhttp, the parser behind uvicorn); this module only
frames messages and moves bytes. It exists because a general HTTP framework
costs several Python calls per streamed chunk on each side (measured: about 4x
nginx's CPU per streamed answer with aiohttp); here an upstream chunk becomes
one callback and one write to Claude Code's socket, with backpressure from a
slow reader passed back to the upstream socket. Any local account can connect,
so the client side also bounds what a client may cost (ClientLimits, Clients).
"""

import asyncio
import json
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


class ClientLimits:
    """What one client may make the proxy spend, before and after it shows the session key.

    Claude Code sends one request head of ~2 KB in one write and a body right after it, and keeps
    a few connections alive between turns; anything slower, bigger or more numerous is someone else.
    """

    def __init__(self, max_connections: int = 256, max_url: int = 8 * 1024, max_head: int = 64 * 1024,
                 max_headers: int = 100, max_body: int = MAX_BODY, head_timeout: float = 10.0,
                 body_timeout: float = 60.0, idle_timeout: float = 300.0, linger: float = 2.0):
        self.max_connections = max_connections  # open at once; unauthenticated ones are closed first
        self.max_url = max_url  # bytes of the request target
        self.max_head = max_head  # bytes of the request line and headers
        self.max_headers = max_headers
        self.max_body = max_body
        self.head_timeout = head_timeout  # a request head complete this long after its first byte; also
        #                                   how long a connection may stay open before its first keyed request
        self.body_timeout = body_timeout  # a keyed request's whole body
        self.idle_timeout = idle_timeout  # a keyed connection between requests
        self.linger = linger  # after a refusal, the client's unread bytes are drained this long, then cut


class Answer:
    """An answer the proxy gives itself, decided from the request head; `keep_open` only for body-less ones."""

    __slots__ = ("status", "body", "keep_open", "head")

    def __init__(self, status: int, body: bytes, keep_open: bool = False, head: bool = False):
        self.status = status
        self.body = body
        self.keep_open = keep_open
        self.head = head


def refusal(status: int, kind: str, message: str, head: bool = False) -> Answer:
    """An error in the Anthropic API's shape, so Claude Code shows the message as it is."""
    body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    return Answer(status, body, head=head)


class _Stop(Exception):
    """Raised from a parser callback: parse no further, the request was refused."""


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


Screen = Callable[[Request], Optional[Answer]]
"""screen(request head, body still empty) -> None to read the body and handle it, or the answer to give instead."""


class ClientConnection(asyncio.Protocol):
    """Claude Code's connection to the proxy: parse requests, hand them to `handle`, one at a time.

    Each request head goes to `screen` as soon as it is complete: a refused request's body is never
    read, and the connection closes after the answer. Until a request passes `screen`, the connection
    is unauthenticated: `clients` closes those first when it runs out of room, and times them out sooner.
    """

    def __init__(self, handle: Callable[["ClientConnection", Request], "asyncio.Future"], screen: Screen,
                 clients: "Clients"):
        self._handle = handle
        self._screen = screen
        self._clients = clients
        self._limits = clients.limits
        self._parser = httptools.HttpRequestParser(self)
        self.transport = None  # type: Optional[asyncio.Transport]
        self._target = b""
        self._headers = []  # type: Headers
        self._request = None  # type: Optional[Request]
        self._body = []  # type: List[bytes]
        self._size = 0
        self._receiving = False  # a request begun and not yet complete
        self._in_head = True  # between requests or inside a request head
        self._heads = 0  # request heads completed so far
        self._head_bytes = 0  # bytes of the reads that went wholly into the current head
        self._head_size = 0  # bytes of its target and headers
        self._queue = deque()  # type: deque
        self._worker = None  # type: Optional[asyncio.Task]
        self._out = []  # type: List[bytes]
        self.on_writable = None  # type: Optional[Callable[[bool], None]]  # backpressure to the upstream
        self.closed = False
        self.authenticated = False
        self._stopped = False  # refused: reading paused, nothing more parsed; the connection goes after the answer
        self.deadline = None  # type: Optional[float]  # loop time at which `clients` times the connection out

    # -- asyncio.Protocol --------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self._clients.opened(self)

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return  # read before reading paused: a refused request's rest, never parsed
        heads = self._heads
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if not self._stopped:
                self._refuse(refusal(400, "invalid_request_error", "claude-db proxy: malformed HTTP request"))
            return
        if self._in_head and heads == self._heads:  # the whole read went into one request head
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_head:  # a header still incomplete: httptools holds it
                self._refuse(_head_too_large())

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._clients.lost(self)
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
        self._head_bytes = self._head_size = 0
        self._receiving = True
        self.deadline = self._clients.now() + self._limits.head_timeout

    def on_url(self, url: bytes) -> None:
        self._target += url
        self._head_size += len(url)
        if len(self._target) > self._limits.max_url:
            self._stop(refusal(414, "invalid_request_error", "claude-db proxy: request target too long"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value)
        if self._head_size > self._limits.max_head:
            self._stop(_head_too_large())
        if len(self._headers) > self._limits.max_headers:
            self._stop(refusal(431, "invalid_request_error", "claude-db proxy: too many request headers"))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads += 1
        method = self._parser.get_method()
        request = Request(method, self._target, self._headers, b"", self._parser.should_keep_alive())
        answer = _protocol_refusal(method, request) or self._screen(request)
        if answer is None:
            answer = self._body_refusal(request)
        if answer is not None:
            if answer.keep_open and request.keep_alive and not self._has_body(request):
                self._queue_item(answer)
                return
            self._stop(answer)
        self._request = request
        if not self.authenticated:
            self.authenticated = True
            self._clients.authenticated(self)
        self.deadline = self._clients.now() + self._limits.body_timeout
        if request.header(b"expect").lower() == b"100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._limits.max_body:
            self._stop(_too_large())
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._receiving = False
        self.deadline = None  # in the queue: the upstream's timeouts apply now
        request, self._request = self._request, None
        if request is None:  # a screened answer without a body, already queued
            return
        request.body = b"".join(self._body)
        self._body = []
        self._queue_item(request)

    # -- refusals ----------------------------------------------------------------
    def _body_refusal(self, request: Request) -> Optional[Answer]:
        length = request.header(b"content-length")
        if length.isdigit() and int(length) > self._limits.max_body:
            return _too_large()
        return None

    @staticmethod
    def _has_body(request: Request) -> bool:
        return request.header(b"content-length") not in (b"", b"0") or bool(request.header(b"transfer-encoding"))

    def _stop(self, answer: Answer) -> None:
        """From a parser callback: answer once the requests before are, then close; parse nothing more."""
        self._refuse(answer)
        raise _Stop()

    def _refuse(self, answer: Answer) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._request = None
        self._body = []
        answer.keep_open = False
        self.deadline = None
        self.transport.pause_reading()  # the rest stays in the kernel's buffers; nothing is read or parsed
        self._queue_item(answer)

    def _queue_item(self, item) -> None:
        self._queue.append(item)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._serve_queue())

    async def _serve_queue(self) -> None:
        while self._queue and not self.closed:
            item = self._queue.popleft()
            if isinstance(item, Answer):
                self.respond(item.status, b"Error" if item.status >= 400 else b"OK", item.body, head=item.head,
                             close=not item.keep_open)
                if not item.keep_open:
                    self._linger()
                    return
                continue
            try:
                await self._handle(self, item)
            except Exception:
                self.abort()  # a bug in the proxy: Claude Code sees a dropped connection (and retries)
                raise
            if not item.keep_alive and not self.closed:
                self.transport.close()
                self.closed = True
        if not self.closed and not self._stopped and not self._receiving:
            timeout = self._limits.idle_timeout if self.authenticated else self._limits.head_timeout
            self.deadline = self._clients.now() + timeout

    def _linger(self) -> None:
        """Close after a refusal: FIN now, the connection cut `linger` seconds later.

        Closing at once with the client's body unread would reset the connection, and the reset can
        destroy the answer before the client has read it.
        """
        if self.closed:
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.deadline = self._clients.now() + self._limits.linger
        else:
            self.transport.close()
            self.closed = True

    def timed_out(self) -> None:
        """Called by `clients` when the deadline passed: a request in progress gets a 408, then the connection goes."""
        self.deadline = None
        if self._stopped or not self._receiving:  # lingering, or idle between requests
            self.abort()
            return
        self._refuse(refusal(408, "invalid_request_error", "claude-db proxy: request not received in time"))

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
                head: bool = False, close: bool = False) -> None:
        """A whole small response (errors, the preconnect)."""
        if self.closed:
            return
        headers = [(b"Content-Type", content_type)]
        if close:
            headers.append((b"Connection", b"close"))
        self.start_response(status, reason, headers, len(body))
        if not head:
            self.transport.write(body)

    def abort(self) -> None:
        """Cut the connection: the client must not take a truncated body for a whole one."""
        self._out = []
        if not self.closed:
            self.transport.abort()
            self.closed = True


def _protocol_refusal(method: bytes, request: Request) -> Optional[Answer]:
    """CONNECT and protocol switches (h2c, WebSocket): the proxy relays HTTP/1.1 requests, nothing else."""
    if method == b"CONNECT":
        return refusal(501, "invalid_request_error", "claude-db proxy: CONNECT is not supported")
    upgrade = [v for k, v in request.headers if k.lower() == b"upgrade"]
    if upgrade:
        return refusal(400, "invalid_request_error", "claude-db proxy: no protocol upgrades (Upgrade: %s)"
                       % upgrade[0][:40].decode("latin-1"))
    return None


def _head_too_large() -> Answer:
    return refusal(431, "invalid_request_error", "claude-db proxy: request headers too large")


def _too_large() -> Answer:
    return refusal(413, "request_too_large", "claude-db proxy: request body too large")


class Clients:
    """The proxy's open client connections: the cap on them, and the clock that times out slow ones.

    At the cap, a new connection first makes room by closing the oldest one that has not shown the
    session key yet; only when every open connection has is the new one refused. Deadlines are
    checked once per `tick`, so a request costs an assignment rather than a timer.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: Optional[ClientLimits] = None, tick: float = 0.5):
        self.loop = loop
        self.limits = limits or ClientLimits()
        self._tick = tick
        self._open = set()  # type: set
        self._unauthenticated = {}  # type: dict  # insertion-ordered: oldest first
        self._sweeper = None  # type: Optional[asyncio.TimerHandle]
        self.now = loop.time
        self._idle_since = self.now()  # loop time the last connection closed (for the service's idle stop)

    def opened(self, connection: ClientConnection) -> None:
        if len(self._open) >= self.limits.max_connections:
            if not self._unauthenticated:
                connection.transport.abort()
                connection.closed = True
                return
            oldest = next(iter(self._unauthenticated))
            self.lost(oldest)
            oldest.abort()
        self._open.add(connection)
        self._unauthenticated[connection] = None
        connection.deadline = self.now() + self.limits.head_timeout
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._tick, self._sweep)

    def authenticated(self, connection: ClientConnection) -> None:
        self._unauthenticated.pop(connection, None)

    def lost(self, connection: ClientConnection) -> None:
        self._open.discard(connection)
        self._unauthenticated.pop(connection, None)
        if not self._open:
            self._idle_since = self.now()

    def idle_for(self) -> float:
        """Seconds since the last client connection closed; 0 while one is open."""
        return 0.0 if self._open else self.now() - self._idle_since

    def _sweep(self) -> None:
        now = self.now()
        for connection in [c for c in self._open if c.deadline is not None and c.deadline <= now]:
            connection.timed_out()
        self._sweeper = self.loop.call_later(self._tick, self._sweep) if self._open else None

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._open):
            connection.abort()


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
