"""The loopback auth proxy between Claude Code and the Databricks serving endpoint.

Claude Code only ever holds a per-launch session key that works on one loopback
port and two paths. The proxy checks that key, swaps it for a fresh Databricks
token, and streams the answer back untouched: bodies are never parsed or
re-encoded, and each chunk is passed on as it arrives so SSE stays live.
Databricks answers an expired token with 403 (which Claude Code never retries),
so the proxy refreshes before expiry and, on a 401/403, refreshes once and
replays the request itself.
"""

import asyncio
import hmac
import json
import os
import socket
import ssl
import threading
import time
from typing import Callable, Optional

import aiohttp
from aiohttp import web
from aiohttp.web_server import Server
from multidict import CIMultiDict

# Headers that describe one hop, not the message (RFC 9110 7.6.1), plus the ones we set ourselves.
_HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length",
))
# Claude Code's credential headers: the session key must never reach the workspace.
_CLIENT_CREDENTIALS = frozenset(("authorization", "x-api-key"))
_FORWARDED_PATHS = ("/v1/messages", "/v1/messages/count_tokens")
_MAX_BODY = 64 * 1024 * 1024  # twice the Anthropic API's own request limit
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
    """Forwards POST <base>/v1/messages[/count_tokens] to the workspace; refuses everything else."""

    def __init__(self, upstream: str, base_path: str, session_key: str, tokens: TokenKeeper,
                 ssl_context: Optional[ssl.SSLContext] = None, connect_timeout: float = 30.0,
                 read_timeout: float = 600.0):
        self._upstream = upstream.rstrip("/")
        self._base = "/" + base_path.strip("/")
        self._forwarded = frozenset(self._base + p for p in _FORWARDED_PATHS)
        self._preconnect = frozenset((self._base, self._base + "/"))
        self._expected = ("Bearer " + session_key).encode()
        self._tokens = tokens
        self._ssl = ssl_context if ssl_context is not None else client_ssl_context()
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._session = None  # type: Optional[aiohttp.ClientSession]

    async def start(self) -> None:
        # Upstream connections are kept and reused; bodies pass through compressed or not, as they come.
        connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            trust_env=any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy")))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if path not in self._forwarded:
            if request.method == "HEAD" and path in self._preconnect:
                return web.Response()  # Claude Code's connection warm-up; nothing to forward
            return _error(404, "not_found_error", "claude-db proxy forwards only POST %s/v1/messages and %s/v1/"
                                                  "messages/count_tokens, not %s" % (self._base, self._base, path))
        if request.method != "POST":
            return _error(405, "invalid_request_error", "claude-db proxy: %s needs POST" % path)
        if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), self._expected):
            return _error(401, "authentication_error", "claude-db proxy: missing or wrong session key")
        body = await _read_body(request)
        if body is None:
            return _error(413, "request_too_large", "claude-db proxy: request body over %d bytes" % _MAX_BODY)
        url = self._upstream + request.rel_url.raw_path_qs
        headers = CIMultiDict((k, v) for k, v in request.headers.items()
                              if k.lower() not in _HOP_BY_HOP and k.lower() not in _CLIENT_CREDENTIALS)
        try:
            token = await self._tokens.current()
            upstream = await self._send(url, headers, body, token)
            if upstream.status in (401, 403):
                upstream.release()
                token = await self._tokens.replace(token)
                upstream = await self._send(url, headers, body, token)
        except ProxyAuthError as e:
            return _error(401, "authentication_error", "claude-db: no Databricks token: %s" % e)
        except asyncio.TimeoutError:
            return _error(504, "api_error", "claude-db proxy: the Databricks endpoint did not answer in time")
        except aiohttp.ClientError as e:
            return _error(502, "api_error", "claude-db proxy: cannot reach the Databricks endpoint (%s)"
                          % (type(e).__name__,))
        return await self._relay(request, upstream)

    async def _send(self, url: str, headers: CIMultiDict, body: bytes, token: str) -> aiohttp.ClientResponse:
        headers["Authorization"] = "Bearer " + token
        return await self._session.request("POST", url, data=body, headers=headers, allow_redirects=False)

    async def _relay(self, request: web.BaseRequest, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        """Stream the upstream answer through chunk by chunk, as it arrives."""
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in upstream.headers.items():
            if k.lower() not in _HOP_BY_HOP:
                response.headers.add(k, v)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        else:
            response.enable_chunked_encoding()
        is_sse = upstream.content_type == "text/event-stream"
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, asyncio.TimeoutError):
            # The workspace went away mid-answer. An SSE client gets an error event and a proper end;
            # anything else is cut, because a clean end would pass a truncated body off as whole.
            upstream.close()
            if not is_sse:
                if request.transport is not None:
                    request.transport.abort()
                return response
            await response.write(_UPSTREAM_LOST_EVENT)
        except ConnectionError:  # Claude Code hung up (e.g. Esc); stop reading the workspace too
            upstream.close()
            return response
        upstream.release()
        await response.write_eof()
        return response


async def _read_body(request: web.BaseRequest) -> Optional[bytes]:
    """The request body as raw bytes (never decoded), or None when it is over the size cap."""
    chunks = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > _MAX_BODY:
            return None
        chunks.append(chunk)


def _error(status: int, kind: str, message: str) -> web.Response:
    """An error in the Anthropic API's shape, so Claude Code shows the message as it is."""
    body = json.dumps({"type": "error", "error": {"type": kind, "message": message}})
    return web.Response(status=status, text=body, content_type="application/json")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it installs (less CPU per streamed chunk), asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def client_ssl_context() -> ssl.SSLContext:
    """Trust what the credential helper (requests) trusts: $REQUESTS_CA_BUNDLE, else the system store."""
    return ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE") or None)


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
        self._loop.run_until_complete(self._serve())
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
        proxy = AuthProxy(*self._args, tokens=tokens, **self._options)
        await proxy.start()
        server = Server(proxy.handle, access_log=None, auto_decompress=False)
        self._sock.setblocking(False)
        listener = await self._loop.create_server(server, sock=self._sock)
        self._done = self._loop.create_future()
        self.ready.set()
        try:
            await self._done
        except asyncio.CancelledError:
            pass
        listener.close()
        await server.shutdown(1.0)
        await proxy.close()
