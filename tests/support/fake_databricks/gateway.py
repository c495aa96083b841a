"""Which model a Messages request reaches, per route: a serving endpoint, or a Unity AI Gateway model service.

- /serving-endpoints/anthropic: `model` is a served endpoint's name (facts/databricks-api.md E.1), so a
  model service name (`catalog.schema.name`, never a valid endpoint name: alphanumerics, `-`, `_`) is 404.
- /ai-gateway/anthropic: `model` is a model service's full name, e.g. `system.ai.claude-sonnet-4-5`
  (E.2, issue 11); an unknown one (a serving endpoint's name included) is 404; querying needs USE_CATALOG,
  USE_SCHEMA and EXECUTE, own or a group's, direct or inherited (AiGatewayAPI/GrantsAPI docstrings), else
  403 naming the first missing one; a spent rate limit of the model service is 429 (the fake counts, see
  RateCounter); a token minted for another workspace is 400 with the body `Invalid Token` (ucode's
  src/ucode/databricks.py treats exactly that as an auth failure; facts H).
"""

import json
import threading
import time
from typing import Optional

from .server import ApiError, Request, Response

SERVING_ENDPOINTS, AI_GATEWAY = "serving-endpoints", "ai-gateway"
DIMENSIONS = ("requests", "tokens")
PERIODS = {"RATE_LIMIT_RENEWAL_PERIOD_MINUTE": 60, "RATE_LIMIT_RENEWAL_PERIOD_HOUR": 3600}
_SECURABLE_WORDS = {"CATALOG": "Catalog", "SCHEMA": "Schema", "MODEL_SERVICE": "Model Service"}


def caller(fake, req, route: str) -> str:
    """The principal a Messages request acts as; /ai-gateway's 400 for another workspace's token."""
    if route == AI_GATEWAY:
        info = fake.tokens.get(req.headers.get("authorization", "")[len("Bearer "):])
        if info is not None and info.workspace_id not in (None, fake.workspace_id):
            error = ApiError(400, "400", "Invalid Token")
            error.response = Response(400, b"Invalid Token", {"Content-Type": "text/plain"})
            raise error
    return fake.authenticate(req)


def check_model(fake, route: str, model: str, principal: str) -> None:
    """That `model` names what `route` serves (an endpoint, or a model service `principal` may query): else
    404/403 as the service answers."""
    if route == SERVING_ENDPOINTS:
        if not fake.serving.serves(model):
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST",
                           "The given endpoint '%s' does not exist or is not served" % model)
        return
    if fake.unity.model_service(model) is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Model service '%s' does not exist." % model)
    missing = fake.unity.missing_to_query(principal, model)
    if missing is not None:
        securable_type, name, privilege = missing
        raise ApiError(403, "PERMISSION_DENIED", "User does not have %s on %s '%s'."
                       % (privilege.replace("_", " "), _SECURABLE_WORDS[securable_type], name))


class RateCounter:
    """Requests and (estimated input) tokens per model service, rate-limit key and renewal window.

    Keys as the SDK's RateLimitKey: USER and SERVICE_PRINCIPAL count per named principal; USER_DEFAULT per
    user that has no USER limit of its own; USER_GROUP is one budget for the group's members together;
    SERVICE one for everyone. Windows are fixed (the minute or hour the request falls in).
    """

    def __init__(self, fake):
        self.fake = fake
        self._counts = {}  # type: Dict[Tuple[str, int, str, int], list]
        self._lock = threading.Lock()

    def admit(self, route: str, model_service: str, principal: str, tokens: int) -> None:
        """Count one request on /ai-gateway, or 429 if a limit that applies to `principal` is spent."""
        if route != AI_GATEWAY:
            return
        limits = (self.fake.unity.model_service(model_service)["config"].get("rate_limits") or [])
        own = any(limit["key"] == "RATE_LIMIT_KEY_USER" and limit.get("principal") == principal for limit in limits)
        now = time.time()
        with self._lock:
            buckets = []
            for i, limit in enumerate(limits):
                who = self._budget(limit, principal, own)
                if who is None:
                    continue
                window = int(now // PERIODS[limit["renewal_period"]])
                count = self._counts.setdefault((model_service, i, who, window), [0, 0])
                if any(limit.get(d) is not None and count[k] >= limit[d] for k, d in enumerate(DIMENSIONS)):
                    raise ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Rate limit exceeded for model service '%s' (%s, "
                                   "%s)." % (model_service, limit["key"], limit["renewal_period"]))
                buckets.append(count)
            for count in buckets:
                count[0] += 1
                count[1] += tokens

    def _budget(self, limit: dict, principal: str, own: bool) -> Optional[str]:
        """Whose budget `limit` charges for this principal's request, or None if it does not apply."""
        key = limit["key"]
        if key in ("RATE_LIMIT_KEY_USER", "RATE_LIMIT_KEY_SERVICE_PRINCIPAL"):
            return principal if limit.get("principal") == principal else None
        if key == "RATE_LIMIT_KEY_USER_DEFAULT":
            return None if own else principal
        if key == "RATE_LIMIT_KEY_USER_GROUP":
            group = limit.get("principal")
            return group if principal in self.fake.unity.groups.get(group, ()) else None
        return ""  # RATE_LIMIT_KEY_SERVICE: everyone together


def add_model_service(fake, full_name: str, endpoint: str = "databricks-claude-sonnet-4-5", rate_limits=None,
                      executors=("claude-code-developers",)) -> None:
    """A test knob, through the fake's own API as an admin would call it: a model service routing to the
    pay-per-token `endpoint`, and USE_CATALOG, USE_SCHEMA, EXECUTE on it for `executors`."""
    admin = fake.issue_token("admin@example.test", 600)
    catalog, schema, service_id = full_name.split(".")
    fake.unity.add_schema(catalog + "." + schema)
    destination = {"name": endpoint, "destination_type": "DESTINATION_TYPE_PAY_PER_TOKEN_FOUNDATION_MODEL",
                   "pay_per_token_config": {"model": "models/system.ai." + endpoint}}
    config = {"routing": {"destinations": [destination]}, "rate_limits": rate_limits or []}
    _admin_call(fake, admin, "POST", "/api/2.1/unity-catalog/model-services", {"config": config},
                parent="schemas/%s.%s" % (catalog, schema), model_service_id=service_id)
    for principal in executors:
        grant(fake, "CATALOG", catalog, principal, "USE_CATALOG")
        grant(fake, "SCHEMA", catalog + "." + schema, principal, "USE_SCHEMA")
        grant(fake, "MODEL_SERVICE", full_name, principal, "EXECUTE")


def grant(fake, securable_type: str, full_name: str, principal: str, privilege: str) -> None:
    """A test knob: an admin grants `privilege` on the securable through the fake's permissions API."""
    _admin_call(fake, fake.issue_token("admin@example.test", 600), "PATCH",
                "/api/2.1/unity-catalog/permissions/%s/%s" % (securable_type, full_name),
                {"changes": [{"principal": principal, "add": [privilege]}]})


def _admin_call(fake, token: str, method: str, path: str, body: dict, **query) -> None:
    answer = fake.dispatch(Request(method, path, {k: [v] for k, v in query.items()},
                                   {"authorization": "Bearer " + token}, json.dumps(body).encode()))
    if answer.status != 200:
        raise AssertionError("%s %s: %d %s" % (method, path, answer.status, answer.body))
