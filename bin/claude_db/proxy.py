"""The loopback auth proxy between Claude Code and the Databricks serving endpoint.

Claude Code only ever holds a per-launch session key that works on one loopback
port and two paths. The proxy checks that key, swaps it for a fresh Databricks
token, and streams the answer back untouched: bodies are never parsed or
re-encoded, and each chunk is passed on as it arrives so SSE stays live.
Databricks answers an expired token with 403 (which Claude Code never retries),
so the proxy refreshes before expiry and, on a 401/403 (or the Unity AI
Gateway's 400 "Invalid Token"), refreshes once and replays the request itself.
"""

import asyncio
import hmac
import socket
import ssl
import sys
import threading
import time
from typing import Callable, Optional
from urllib.parse import urlsplit

from . import network
from .connections import (HOP_BY_HOP, Answer, ClientConnection, ClientLimits, Clients, ProxyFailure, Request,
                          UpstreamError, UpstreamPool, UpstreamTimeout, UpstreamTLSError, refusal)
from .errors import ClaudeDbError

# Claude Code's credential headers: the session key must never reach the workspace.
_CLIENT_CREDENTIALS = (b"authorization", b"x-api-key")
_BETA = b"anthropic-beta"
_WORKSPACE_ID = b"x-databricks-workspace-id"
_FORWARDED_PATHS = (b"/v1/messages", b"/v1/messages/count_tokens")
# /ai-gateway answers a token it will not take (e.g. another workspace's) with 400 and this body; ucode
# (databricks/ucode src/ucode/databricks.py _looks_like_definitive_auth_failure) counts it as an auth failure.
_INVALID_TOKEN = b"invalid token"
# A token with less life than this is refreshed before use (Databricks refuses the last 30 s).
REFRESH_AHEAD = 45.0
_UPSTREAM_LOST_EVENT = (
    b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
    b'"message":"claude-db proxy: the Databricks endpoint closed the stream early"}}\n\n'
)

TokenFetcher = Callable[[Optional[str]], object]
"""fetch(rejected) -> an object with .access_token and .expires_at (epoch seconds); may block."""


class ProxyAuthError(Exception):
    """No Databricks token could be had without the user (e.g. the sign-in expired)."""


class TokenKeeper:
    """The current Databricks token: refreshed ahead of expiry and after a rejection, one refresh at a time.

    `fetch` is the credential helper's get_token (blocking: file lock, maybe network), so it runs in
    a worker thread; concurrent requests that find the token stale wait for the same refresh.
    """

    def __init__(self, fetch: TokenFetcher, refresh_ahead: float = REFRESH_AHEAD):
        self._fetch = fetch
        self._refresh_ahead = refresh_ahead
        self._token = None
        self._lock = asyncio.Lock()

    def seed(self, token) -> None:
        """Start with a token the launcher already holds, so the first request needs no refresh."""
        self._token = token

    async def current(self) -> str:
        token = self._token
        if token is not None and token.expires_at - time.time() > self._refresh_ahead:
            return token.access_token
        async with self._lock:
            token = self._token
            if token is None or token.expires_at - time.time() <= self._refresh_ahead:
                token = await self._refresh(None)
            return token.access_token

    async def replace(self, rejected: str) -> str:
        """A token the workspace refused: get another, unless a concurrent request already did."""
        async with self._lock:
            token = self._token
            if token is None or token.access_token == rejected:
                token = await self._refresh(rejected)
            return token.access_token

    async def _refresh(self, rejected: Optional[str]):
        try:
            token = await asyncio.get_running_loop().run_in_executor(None, self._fetch, rejected)
        except Exception as e:  # the credential helper's errors carry a one-line, secret-free message
            raise ProxyAuthError(str(e) or type(e).__name__) from None
        self._token = token
        return token


class AuthProxy:
    """Forwards POST <base>/v1/messages[/count_tokens] to the workspace; refuses everything else.

    `limits` bounds what any client may make it spend (see ClientLimits); the session key is checked
    as soon as a request's headers are in, so a client without it never gets its body read.
    """

    def __init__(self, upstream: str, base_path: str, session_key: str, tokens: TokenKeeper,
                 ssl_context: Optional[ssl.SSLContext] = None, connect_timeout: float = 30.0,
                 read_timeout: float = 600.0, limits: Optional[ClientLimits] = None, config=None,
                 allowed_betas: Optional[frozenset] = None, workspace_id: Optional[str] = None,
                 client_key=None):
        """`config`: the workstation config, for network.proxy / network.ca_bundle (None: the environment's).
        `client_key`: what decides a request's Authorization header instead of `session_key` (an object
        with accepts(header) -> bool: the per-user service's key file, see service.py)."""
        url = urlsplit(upstream)
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._host_header = url.netloc.encode()
        self._config = config
        self.route = network.route(config, upstream)
        if url.scheme == "https":
            self._ssl = ssl_context if ssl_context is not None else network.ssl_context(config)
        else:
            self._ssl = None
        self._reported = set()  # the network failures already told to the user's terminal
        base = ("/" + base_path.strip("/")).encode()
        self._base = base
        self._forwarded = frozenset(base + p for p in _FORWARDED_PATHS)
        self._preconnect = frozenset((base, base + b"/"))
        expected = b"Bearer " + session_key.encode()
        self._accepts = client_key.accepts if client_key is not None else (
            lambda header: hmac.compare_digest(header, expected))
        self._tokens = tokens
        self._timeouts = (connect_timeout, read_timeout)
        # `anthropic-beta` values the route takes (None: all); the rest are dropped, not refused with a 400.
        self._betas = None if allowed_betas is None else frozenset(b.encode() for b in allowed_betas)
        # For unified hosts, as the SDK sends it on serving queries (databricks/sdk/config.py workspace_id).
        self._extra_headers = b"X-Databricks-Workspace-Id: %s\r\n" % workspace_id.encode() if workspace_id else b""
        self._pool = None  # type: Optional[UpstreamPool]
        self.limits = limits or ClientLimits()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = UpstreamPool(loop, self._host, self._port, self._ssl, *self._timeouts, route=self.route)

    def close(self) -> None:
        self._pool.close()

    async def check_connection(self) -> None:
        """Open one connection to the workspace as a request would (tunnel, TLS), then drop it; for doctor."""
        self._pool.discard(await self._pool.acquire())

    def screen(self, request: Request) -> Optional[Answer]:
        """Decide from the head alone (body not read yet): None forwards it, else the answer instead."""
        method, path = request.method, request.path
        if path not in self._forwarded:
            if method == b"HEAD" and path in self._preconnect:
                return Answer(200, b"", keep_open=True, head=True)  # Claude Code's warm-up; nothing to forward
            base = self._base.decode()
            return refusal(404, "not_found_error", "claude-db proxy forwards only POST %s/v1/messages and %s/v1/"
                           "messages/count_tokens, not %s" % (base, base, path.decode("latin-1")),
                           head=method == b"HEAD")
        if method != b"POST":
            return refusal(405, "invalid_request_error", "claude-db proxy: %s needs POST" % path.decode(),
                           head=method == b"HEAD")
        if not self._accepts(request.header(b"authorization")):
            return refusal(401, "authentication_error", "claude-db proxy: missing or wrong session key")
        return None

    async def handle(self, client: ClientConnection, request: Request) -> None:
        """Forward a request screen() let through; stream the answer back."""
        head = self._request_head(request)
        try:
            token = await self._tokens.current()
            connection, response = await self._exchange(head, request.body, token)
            if response.status in (400, 401, 403):
                refused = await self._finish_quietly(connection)
                if response.status == 400 and refused is not None and _INVALID_TOKEN not in refused.lower():
                    _respond_read(client, response, refused)  # a 400 about the request itself
                    return
                token = await self._tokens.replace(token)
                connection, response = await self._exchange(head, request.body, token)
        except ProxyAuthError as e:
            _error(client, 401, "authentication_error", "claude-db: no Databricks token: %s" % e)
            return
        except UpstreamTimeout:
            _error(client, 504, "api_error", "claude-db proxy: the Databricks endpoint did not answer in time")
            return
        except ProxyFailure as e:
            self._network_failure(client, str(e))
            return
        except UpstreamTLSError:
            where = "the Databricks workspace %s" % self._host_header.decode()
            self._network_failure(client, network.tls_failure(self._config, where))
            return
        except UpstreamError as e:
            _error(client, 502, "api_error", "claude-db proxy: cannot reach the Databricks endpoint: %s" % e)
            return
        await self._relay(client, connection, response)

    def _network_failure(self, client: ClientConnection, message: str) -> None:
        """The egress proxy or TLS stands in the way: Claude Code gets the message, the terminal gets it once."""
        _error(client, 502, "api_error", "claude-db: " + message)
        if message not in self._reported:
            self._reported.add(message)
            sys.stderr.write("claude-db: %s\n" % message)
            sys.stderr.flush()

    def _request_head(self, request: Request) -> bytes:
        """The request line and headers for the workspace, up to where the Authorization header goes."""
        lines = [b"POST %s HTTP/1.1\r\nHost: %s\r\n" % (request.target, self._host_header)]
        for k, v in request.headers:
            name = k.lower()
            if name in HOP_BY_HOP or name in _CLIENT_CREDENTIALS or (name == _WORKSPACE_ID and self._extra_headers):
                continue
            if name == _BETA and self._betas is not None:
                v = b",".join(b for b in (p.strip() for p in v.split(b",")) if b in self._betas)
                if not v:
                    continue
            lines.append(b"%s: %s\r\n" % (k, v))
        lines.append(self._extra_headers)
        lines.append(b"Content-Length: %d\r\n" % len(request.body))
        return b"".join(lines)

    async def _exchange(self, head: bytes, body: bytes, token: str):
        """Send the request with `token`; (connection, response headers). A kept-alive connection the
        workspace closed while idle gets nothing back: then the request goes once more on a new one."""
        head += b"Authorization: Bearer %s\r\n\r\n" % token.encode()
        for attempt in (1, 2):
            connection = await self._pool.acquire()
            try:
                return connection, await connection.send(head, body)
            except (UpstreamTimeout, asyncio.CancelledError):  # cancelled: Claude Code hung up
                self._pool.discard(connection)
                raise
            except UpstreamError:
                self._pool.discard(connection)
                if attempt == 2 or not connection.reused or connection.answered:
                    raise
        raise AssertionError("unreachable")

    async def _finish_quietly(self, connection) -> Optional[bytes]:
        """Read a refused answer (a small error body) to its end so the connection can be reused.

        Its body, or None when the workspace broke off (then the request is simply sent again)."""
        pieces = []
        connection.stream_to(pieces.append)
        try:
            self._pool.release(connection, await connection.done)
        except UpstreamError:  # the replay takes another connection
            self._pool.discard(connection)
            return None
        except asyncio.CancelledError:
            self._pool.discard(connection)
            raise
        return b"".join(pieces)

    async def _relay(self, client: ClientConnection, connection, response) -> None:
        """Stream the answer to Claude Code piece by piece, as it arrives; never buffered, never re-encoded."""
        chunked = response.content_length is None
        headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
        client.start_response(response.status, response.reason, headers, response.content_length)
        client.on_writable = lambda writable: connection.pause(not writable)
        connection.stream_to(client.write_chunk if chunked else client.write_raw, client.flush)
        try:
            keep_alive = await connection.done
        except UpstreamError:
            # The workspace went away mid-answer. An SSE client gets an error event and a proper end;
            # anything else is cut, because a clean end would pass a truncated body off as whole.
            self._pool.discard(connection)
            if response.is_sse and chunked:
                client.write_chunk(_UPSTREAM_LOST_EVENT)
                client.end_chunks()
            else:
                client.abort()
            return
        except asyncio.CancelledError:  # Claude Code hung up (e.g. Esc): stop reading the workspace too
            self._pool.discard(connection)
            raise
        finally:
            client.on_writable = None
        self._pool.release(connection, keep_alive)
        if chunked:
            client.end_chunks()


def _respond_read(client: ClientConnection, response, body: bytes) -> None:
    """Pass on an answer whose body was already read whole."""
    headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
    client.start_response(response.status, response.reason, headers, len(body))
    client.write_raw(body)
    client.flush()


def _error(client: ClientConnection, status: int, kind: str, message: str) -> None:
    """An error found while forwarding (screen() answers the rest), in the Anthropic API's shape."""
    answer = refusal(status, kind, message)
    client.respond(status, b"Error", answer.body)


def check_workspace_connection(config, timeout: float = 10.0) -> str:
    """doctor's check of the path prompts take: the pool's own tunnel and TLS code. AuthError with the cause."""
    from .errors import AuthError
    proxy = AuthProxy(config.databricks_host, "", "", None, connect_timeout=timeout, config=config)
    loop = new_event_loop()
    try:
        proxy.start(loop)
        loop.run_until_complete(proxy.check_connection())
    except ProxyFailure as e:
        raise AuthError(str(e))
    except UpstreamTLSError:
        raise AuthError(network.tls_failure(config, "the Databricks workspace %s" % config.databricks_host))
    except UpstreamError as e:
        raise AuthError("%s; check your network or VPN, or databricks_host in %s" % (e, config.path))
    finally:
        proxy.close()
        loop.close()
    path, source = network.ca_bundle(config)
    return "%s: connected to %s, TLS verified with %s" % (
        proxy.route.describe(), proxy.route.target, "%s (%s)" % (path, source) if path else source)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it installs (less CPU per streamed chunk), asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ProxyThread(threading.Thread):
    """Runs the proxy on an already-listening socket in its own thread and event loop.

    The launcher's main thread stays free to wait for Claude Code and forward signals to it.
    """

    def __init__(self, sock: socket.socket, upstream: str, base_path: str, session_key: str,
                 fetch: TokenFetcher, first_token=None, **options):
        super().__init__(name="claude-db-proxy", daemon=True)
        self._sock = sock
        self._args = (upstream, base_path, session_key)
        self._fetch = fetch
        self._first_token = first_token
        self._options = options
        self._loop = new_event_loop()
        self._done = None  # type: Optional[asyncio.Future]
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except Exception as e:  # a bug, or a proxy variable we cannot use: say so once, and refuse connections
            text = str(e) if isinstance(e, ClaudeDbError) else "the proxy stopped (%s: %s)" % (type(e).__name__, e)
            sys.stderr.write("claude-db: %s\n" % text)
            self._sock.close()
        finally:
            self.ready.set()
            self._loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        self.ready.wait(timeout)
        if self._done is not None:
            self._loop.call_soon_threadsafe(self._done.cancel)
        self.join(timeout)

    async def _serve(self) -> None:
        tokens = TokenKeeper(self._fetch)
        if self._first_token is not None:
            tokens.seed(self._first_token)
        done = self._loop.create_future()

        def listening(clients) -> None:
            self._done = done  # stop() cancels it only once there is a server to stop
            self.ready.set()

        await serve(self._sock, AuthProxy(*self._args, tokens=tokens, **self._options), done, listening)


async def serve(sock: socket.socket, proxy: AuthProxy, done: asyncio.Future,
                listening: Optional[Callable[[Clients], None]] = None) -> None:
    """Serve `proxy` on the listening `sock` until `done` completes or is cancelled; the one serving loop of
    the launcher's per-launch proxy and of `claude-db-token serve`. `listening(clients)` runs once it accepts."""
    loop = asyncio.get_running_loop()
    proxy.start(loop)
    clients = Clients(loop, proxy.limits)

    def accept() -> ClientConnection:
        return ClientConnection(proxy.handle, proxy.screen, clients)

    sock.setblocking(False)
    server = await loop.create_server(accept, sock=sock)
    if listening is not None:
        listening(clients)
    try:
        await done
    except asyncio.CancelledError:
        pass
    server.close()
    clients.close()
    proxy.close()
