"""The fake Databricks: one workspace and its account, stateful, on 127.0.0.1.

Only Databricks is faked in this project, so this fake has to behave like the
service (../shared/facts/databricks-api.md): error bodies in Databricks' shape,
403 "Invalid Token" for expired tokens, 429 bursts, slow answers. Each API area
lives in its own module and registers its routes on `FakeDatabricks.route`;
this module only holds what they share: the HTTP server, the request log,
bearer-token checks and fault injection.
"""

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]  # lower-case names
    body: bytes
    time: float = field(default_factory=time.time)

    def json(self):
        return json.loads(self.body or b"{}")

    def form(self) -> Dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    def arg(self, name: str, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Response:
    status: int = 200
    body: Union[bytes, Iterable[bytes], None] = b""
    headers: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj, status: int = 200, headers: Optional[Dict[str, str]] = None) -> "Response":
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return cls(status, json.dumps(obj).encode(), h)

    @classmethod
    def error(cls, status: int, error_code: str, message: str, **extra) -> "Response":
        """An error body in Databricks' REST shape."""
        body = {"error_code": error_code, "message": message}
        body.update(extra)
        return cls.json(body, status)


class ApiError(Exception):
    """Raised by handlers to answer with a Databricks-shaped error."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.response = Response.error(status, error_code, message)


@dataclass
class Fault:
    """An injected failure for requests whose method/path match."""
    path: str  # regex, searched in the request path
    method: Optional[str] = None
    status: int = 500
    body: Optional[Response] = None
    delay: float = 0.0  # seconds to wait before answering (or before the fault)
    times: int = 1  # how many matching requests it applies to; -1 = forever
    passthrough: bool = False  # only delay, then handle normally

    def matches(self, req: Request) -> bool:
        return (self.method is None or self.method == req.method) and re.search(self.path, req.path) is not None


@dataclass
class TokenInfo:
    subject: str  # the Databricks user (or service principal) the token acts as
    expires_at: float
    scope: str = "all-apis"
    workspace_id: Optional[str] = None  # None: this workspace; another id: a token only that workspace takes


Handler = Callable[..., Response]


class FakeDatabricks:
    """State and routing for a fake workspace + account, served over HTTP(S)."""

    def __init__(self, account_id: str = "acc-1", workspace_id: str = "1234567890"):
        self.account_id = account_id
        self.workspace_id = workspace_id
        self.unified_host = False  # set when the host serves several workspaces (serving.add_workspace)
        self.lock = threading.RLock()
        self.requests: List[Request] = []
        self.faults: List[Fault] = []
        self.tokens: Dict[str, TokenInfo] = {}
        # Account state shared by the federation-policy API and the token exchange.
        # federation_policies: policy "name" (accounts/<acct>/federationPolicies/<id>, or
        # accounts/<acct>/servicePrincipals/<sp id>/federationPolicies/<id>) -> the policy as GET returns it.
        self.federation_policies: Dict[str, dict] = {}
        self.users = {"alice@example.test", "bob@example.test"}  # account users, by username
        self.service_principals: Dict[str, int] = {}  # application (client) id -> numeric SP id
        self._routes: List[Tuple[str, "re.Pattern[str]", Handler]] = []
        self._httpd: Optional[ThreadingHTTPServer] = None
        self.url = ""
        # The SDK's host-metadata probe; answered so SDK clients skip their fallback.
        self.route("GET", r"/\.well-known/databricks-config", self._databricks_config)

    # -- routing -------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register `handler(req, **named_groups) -> Response` for an exact-match path regex."""
        self._routes.append((method, re.compile(pattern + r"\Z"), handler))

    def dispatch(self, req: Request) -> Response:
        with self.lock:
            self.requests.append(req)
            fault = next((f for f in self.faults if f.matches(req)), None)
            if fault is not None:
                if fault.times > 0:
                    fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if not fault.passthrough:
                return fault.body or Response.error(
                    fault.status, _default_code(fault.status), "injected failure (%d)" % fault.status)
        path_matched = False
        for method, pattern, handler in self._routes:
            m = pattern.match(req.path)
            if not m:
                continue
            path_matched = True
            if method != req.method:
                continue
            try:
                return handler(req, **m.groupdict())
            except ApiError as e:
                return e.response
        if path_matched:
            return Response.error(405, "BAD_REQUEST", "Method %s not allowed" % req.method)
        return Response.error(404, "ENDPOINT_NOT_FOUND", "No API found for '%s %s'" % (req.method, req.path))

    # -- faults and logs -----------------------------------------------------
    def fail(self, path: str, status: int = 500, times: int = 1, method: Optional[str] = None,
             body: Optional[Response] = None, delay: float = 0.0) -> Fault:
        fault = Fault(path=path, method=method, status=status, body=body, delay=delay, times=times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def slow(self, path: str, delay: float, times: int = 1, method: Optional[str] = None) -> Fault:
        fault = Fault(path=path, method=method, delay=delay, times=times, passthrough=True)
        with self.lock:
            self.faults.append(fault)
        return fault

    def calls(self, path: str = "", method: Optional[str] = None) -> List[Request]:
        """Logged requests whose path matches the regex `path` (searched) and method."""
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and re.search(path, r.path)]

    def writes(self, path: str = "") -> List[Request]:
        return [r for r in self.calls(path) if r.is_write]

    def reset_log(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- bearer tokens -------------------------------------------------------
    def issue_token(self, subject: str, ttl: float, value: Optional[str] = None,
                    workspace_id: Optional[str] = None) -> str:
        """Mint an opaque Databricks token for `subject` valid for `ttl` seconds (at `workspace_id`: another one)."""
        import secrets
        value = value or "dkea" + secrets.token_hex(16)
        with self.lock:
            self.tokens[value] = TokenInfo(subject=subject, expires_at=time.time() + ttl, workspace_id=workspace_id)
        return value

    def authenticate(self, req: Request) -> str:
        """The principal a request acts as; raises Databricks' own 401/403 otherwise."""
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise ApiError(401, "401", "Credential was not sent or was of an unsupported type for this API.")
        info = self.tokens.get(auth[len("Bearer "):])
        # Databricks refuses tokens with 30 s or less left, with the same 403 as an expired one.
        if info is None or info.expires_at - time.time() <= 30 or info.workspace_id not in (None, self.workspace_id):
            raise ApiError(403, "403", "Invalid Token")
        return info.subject

    # -- server --------------------------------------------------------------
    def start(self, port: int = 0, tls: Optional[ssl.SSLContext] = None) -> str:
        fake = self

        class _Handler(_RequestHandler):
            pass

        _Handler.fake = fake
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:
            # Handshake lazily, in the request's own thread, so one slow client cannot stall accept().
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True,
                                                 do_handshake_on_connect=False)
            scheme = "https"
        self.url = "%s://127.0.0.1:%d" % (scheme, self._httpd.server_address[1])
        threading.Thread(target=self._httpd.serve_forever, name="fake-databricks", daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _databricks_config(self, req: Request) -> Response:
        meta = {"oidc_endpoint": self.url + "/oidc", "workspace_id": self.workspace_id, "account_id": self.account_id}
        if self.unified_host:  # no one workspace to name: callers must know theirs (DATABRICKS_WORKSPACE_ID)
            del meta["workspace_id"]
        return Response.json(meta)


def _default_code(status: int) -> str:
    return {400: "INVALID_PARAMETER_VALUE", 401: "401", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST",
            409: "RESOURCE_CONFLICT", 429: "REQUEST_LIMIT_EXCEEDED", 500: "INTERNAL_ERROR",
            503: "TEMPORARILY_UNAVAILABLE"}.get(status, "UNKNOWN")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeDatabricks

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def handle(self):
        try:
            super().handle()
        except (ssl.SSLError, ConnectionResetError):  # a client that refused our certificate, or hung up
            self.close_connection = True

    def _handle(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(method=self.command, path=parts.path, query=parse_qs(parts.query),
                      headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        resp = self.fake.dispatch(req)
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if isinstance(resp.body, (bytes, type(None))):
            data = resp.body or b""
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        # A streamed body (SSE): chunked, each piece flushed as soon as it is produced.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in resp.body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except _DropConnection:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):  # the client hung up mid-stream
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _DropConnection(Exception):
    """Raised inside a streamed body to cut the connection mid-stream."""


DropConnection = _DropConnection
