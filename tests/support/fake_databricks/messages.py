"""The workspace's Anthropic Messages API: POST /serving-endpoints/anthropic/v1/messages (and /ai-gateway/...).

Behaves like Databricks in front of Anthropic: bearer auth with Databricks' 403
"Invalid Token" for expired tokens, the `model` must be what the route serves
(a served endpoint's name, or on /ai-gateway a model service's: gateway.py),
and `stream: true` answers with SSE events exactly in the Anthropic API's order
(message_start, content_block_start/delta/stop, message_delta, message_stop).
Tests script the replies (`text`, or a `tool_use` whose tool_result arrives in
the next request) and can slow a stream down or cut it mid-way.

Answers of the real service modelled here (docs/design.md "Service behaviours we rely on"):
- an `anthropic-beta` value not on the route's allow list (`allowed_betas`) is refused with 400,
  as gateways in front of Anthropic models do (anthropics/claude-code issues 46105, 11672);
- `/serving-endpoints/anthropic/v1/messages/count_tokens` is 404 "Path must be of form
  /serving-endpoints/<endpoint_name>/invocations" (anthropics/claude-code issue 14007);
- a per-endpoint AI Gateway rate limit of 0 calls refuses the key with 403 PERMISSION_DENIED
  (terraform-provider-databricks issue 5362); it does not govern /ai-gateway traffic (issue 5796).
"""

import collections
import json
import threading
import time
import uuid
from typing import Callable, Iterator, List, Optional

from . import gateway
from .server import ApiError, DropConnection, FakeDatabricks, Request, Response

ROUTES = ("serving-endpoints", "ai-gateway")
# What Claude Code sends with CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS=1, as Databricks' first Claude Code
# configs had it on /serving-endpoints: known to pass there. None = every value passes.
SERVING_ENDPOINT_BETAS = frozenset(("claude-code-20250219", "interleaved-thinking-2025-05-14"))
COUNT_TOKENS_PATH_ERROR = "Path must be of form /serving-endpoints/<endpoint_name>/invocations"


def text(words: str, **options) -> dict:
    """An assistant reply with one text block, streamed a word per delta."""
    return dict(options, kind="text", text=words)


def tool_use(name: str, tool_input: dict, **options) -> dict:
    """An assistant reply that calls a tool (e.g. Bash); Claude Code sends its tool_result next."""
    return dict(options, kind="tool_use", name=name, input=tool_input)


class AnthropicMessages:
    """State of the Messages API: scripted replies and stream knobs (served endpoints: the serving area).

    Reply options (per reply, else these defaults): `event_delay` seconds between SSE events,
    `drop_after` = number of events sent before the connection is cut.
    """

    def __init__(self, fake: FakeDatabricks):
        self.fake = fake
        self.replies = collections.deque()  # type: collections.deque
        self.default_reply = text("ok")
        self.event_delay = 0.0
        self.drop_after = None  # type: Optional[int]
        self.streams_finished = []  # type: List[float]  # time.time() when a stream's last event was sent
        self.allowed_betas = {"serving-endpoints": SERVING_ENDPOINT_BETAS, "ai-gateway": None}
        self._lock = threading.Lock()
        self.rates = gateway.RateCounter(fake)

    def script(self, *replies: dict) -> None:
        """Queue replies; each answers one request, in order. Then default_reply answers."""
        with self._lock:
            self.replies.extend(replies)

    def requests(self, path: str = r"/anthropic/v1/messages$") -> List[Request]:
        return self.fake.calls(path, "POST")

    def bodies(self) -> List[dict]:
        return [r.json() for r in self.requests()]

    def tool_results(self) -> List[str]:
        """The text of every tool_result block Claude Code sent back, oldest first."""
        out = []
        for body in self.bodies():
            for message in body.get("messages", []):
                content = message.get("content")
                for block in content if isinstance(content, list) else []:
                    if block.get("type") == "tool_result":
                        out.append(_block_text(block.get("content")))
        return list(dict.fromkeys(out))  # each later request repeats the history

    def _next_reply(self) -> dict:
        with self._lock:
            return self.replies.popleft() if self.replies else self.default_reply

    # -- handlers --------------------------------------------------------------
    def messages(self, req: Request, route: str) -> Response:
        principal = gateway.caller(self.fake, req, route)
        refused = self._refused_beta(req, route)
        if refused is not None:
            return refused
        body = self._validated(req, route, principal)
        if route == "serving-endpoints":
            self._check_rate_limits(body["model"], principal)
        input_tokens = max(1, len(req.body) // 4)
        self.rates.admit(route, body["model"], principal, input_tokens)
        reply = self._next_reply()
        message_id = "msg_" + uuid.uuid4().hex[:24]
        delay = reply.get("event_delay", self.event_delay)
        drop_after = reply.get("drop_after", self.drop_after)
        if not body.get("stream"):
            answer = Response.json(_as_message(reply, body["model"], message_id, input_tokens))
            if drop_after is not None:  # cut the JSON in half: a truncated body must not pass for a whole one
                half = len(answer.body) // 2
                answer.body = self._stream([answer.body[:half], answer.body[half:]], 0, 1)
            return answer
        events = list(_events(reply, body["model"], message_id, input_tokens))
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
                   "x-request-id": str(uuid.uuid4())}
        return Response(200, self._stream(events, delay, drop_after), headers)

    def count_tokens(self, req: Request, route: str) -> Response:
        principal = gateway.caller(self.fake, req, route)
        if route == "serving-endpoints":
            return Response.error(404, "ENDPOINT_NOT_FOUND", COUNT_TOKENS_PATH_ERROR)
        self._validated(req, route, principal)
        return Response.json({"input_tokens": max(1, len(req.body) // 4)})

    def _refused_beta(self, req: Request, route: str) -> Optional[Response]:
        """The 400 a gateway gives for `anthropic-beta` values it does not support, or None."""
        allowed = self.allowed_betas.get(route)
        sent = [v.strip() for v in req.headers.get("anthropic-beta", "").split(",") if v.strip()]
        unexpected = [v for v in sent if allowed is not None and v not in allowed]
        if not unexpected:
            return None
        message = ("Unexpected value(s) %s for the `anthropic-beta` header. Please consult our documentation at "
                   "docs.anthropic.com or try again without the header." % ", ".join("`%s`" % v for v in unexpected))
        return Response.json({"type": "error", "error": {"type": "invalid_request_error", "message": message}}, 400)

    def _check_rate_limits(self, endpoint: str, principal: str) -> None:
        reason = self.fake.serving.refusal(endpoint, principal)
        if reason is not None:
            raise ApiError(403, "PERMISSION_DENIED", reason)

    def _validated(self, req: Request, route: str, principal: str) -> dict:
        try:
            body = req.json()
        except ValueError:
            raise ApiError(400, "BAD_REQUEST", "Request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise ApiError(400, "BAD_REQUEST", "Missing required field: model")
        gateway.check_model(self.fake, route, body["model"], principal)
        return body

    def _stream(self, events: List[bytes], delay: float, drop_after: Optional[int]) -> Iterator[bytes]:
        for i, event in enumerate(events):
            if drop_after is not None and i >= drop_after:
                raise DropConnection()
            if i and delay:
                time.sleep(delay)
            yield event
        self.streams_finished.append(time.time())


def _sse(kind: str, data: dict) -> bytes:
    return ("event: %s\ndata: %s\n\n" % (kind, json.dumps(data, separators=(",", ":")))).encode()


def _events(reply: dict, model: str, message_id: str, input_tokens: int) -> Iterator[bytes]:
    """The SSE events of one reply, in the Anthropic API's order."""
    yield _sse("message_start", {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1}}})
    if reply["kind"] == "text":
        yield _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}})
        yield _sse("ping", {"type": "ping"})
        words = reply["text"].split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": piece}})
        stop_reason, output_tokens = "end_turn", len(words)
    else:
        yield _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": _tool_use_id(message_id), "name": reply["name"], "input": {}}})
        yield _sse("ping", {"type": "ping"})
        arguments = json.dumps(reply["input"])
        for start in range(0, len(arguments), 16):
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                "type": "input_json_delta", "partial_json": arguments[start:start + 16]}})
        stop_reason, output_tokens = "tool_use", 1 + len(arguments) // 4
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _sse("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                 "usage": {"output_tokens": output_tokens}})
    yield _sse("message_stop", {"type": "message_stop"})


def _as_message(reply: dict, model: str, message_id: str, input_tokens: int) -> dict:
    """The same reply as one JSON message (stream: false)."""
    if reply["kind"] == "text":
        content = [{"type": "text", "text": reply["text"]}]
        stop_reason = "end_turn"
    else:
        content = [{"type": "tool_use", "id": _tool_use_id(message_id), "name": reply["name"],
                    "input": reply["input"]}]
        stop_reason = "tool_use"
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1}}


def _tool_use_id(message_id: str) -> str:
    return "toolu_" + message_id[len("msg_"):]


def _block_text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def register(fake: FakeDatabricks) -> None:
    fake.anthropic = AnthropicMessages(fake)
    for route in ROUTES:
        _route(fake, route, "/v1/messages", fake.anthropic.messages)
        _route(fake, route, "/v1/messages/count_tokens", fake.anthropic.count_tokens)


def _route(fake: FakeDatabricks, route: str, suffix: str, handler: Callable[..., Response]) -> None:
    fake.route("POST", r"/(?P<route>%s)/anthropic%s" % (route, suffix), handler)
