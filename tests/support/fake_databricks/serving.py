"""Serving endpoints: endpoints, config updates, tags, AI Gateway and permissions (workspace APIs).

Faithful to facts/databricks-api.md §A-B, including the quirks a client must cope with:
- GET adds server fields (id, creator, timestamps, state, per-entity state, config_version),
  server defaults (entity names, workload size/type, a computed traffic_config), a
  `served_models` mirror, routes naming the entity twice (served_model_name + served_entity_name);
- served entities, served_models, tags and ACL entries come back shuffled, never in the order sent;
- `*_plaintext` secrets are accepted and kept, never returned;
- a create or config update stays IN_PROGRESS (with `pending_config`) for `update_seconds`, and a
  config update, a tags PATCH or an AI Gateway PUT meanwhile is refused with 409 and
  `conflict_error_code` (the code is not documented, so tests vary it); `fail_next_update`
  makes the next one end UPDATE_FAILED;
- at most 15 served entities (databricks-sdk-py issue 1496; the SDK docstring's 10 is out of date);
  an unnamed entity is named `<entity_name>-<entity_version>` (SDK ServedEntityInput.name docstring);
  `endpoint_url` only on route-optimized endpoints;
- a rate limit of 0 calls disables the endpoint for that key: queries get 403 PERMISSION_DENIED
  (terraform-provider-databricks issue 5362);
- one host can serve several workspaces (a unified host, `add_workspace`): workspace calls are
  routed by the X-Databricks-Workspace-Id header the SDK sends (databricks/sdk/config.py
  `workspace_id`), and refused without it;
- an external model can be neither added to nor removed from an existing endpoint;
- the pay-per-token `databricks-claude-*` endpoints exist from the start and cannot be created,
  deleted or reconfigured, but their AI Gateway config and permissions can be set;
- PUT .../ai-gateway replaces the whole object and refuses to move an enabled inference table;
- permissions are addressed by the endpoint's id, not its name.
Every call needs a bearer token from `fake.issue_token`. State: `fake.serving` (a ServingEndpoints).
"""

import copy
import random
import re
import time
import uuid
from typing import Dict, Optional

from .server import ApiError, Request, Response

PAY_PER_TOKEN = {
    "databricks-claude-sonnet-4-5": "Claude Sonnet 4.5",
    "databricks-claude-opus-4-1": "Claude Opus 4.1",
    "databricks-claude-opus-4-6": "Claude Opus 4.6",
    "databricks-claude-haiku-4-5": "Claude Haiku 4.5",
}
PROVIDERS = ("ai21labs", "amazon-bedrock", "anthropic", "cohere", "custom", "databricks-model-serving",
             "google-cloud-vertex-ai", "openai", "palm")
SECRET_REFERENCE = re.compile(r"\{\{secrets/[^/{}]+/[^/{}]+\}\}\Z")
ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}\Z")
MAX_ENTITIES = 15  # databricks-sdk-py issue 1496
LEVELS = ("CAN_MANAGE", "CAN_QUERY", "CAN_VIEW")
PRINCIPAL_KINDS = ("user_name", "group_name", "service_principal_name")
RATE_LIMIT_KEYS = ("endpoint", "user", "user_group", "service_principal")
TABLE_LOCATION = ("catalog_name", "schema_name", "table_name_prefix")

_ENDPOINTS = r"/api/2\.0/serving-endpoints"
_ENDPOINT = _ENDPOINTS + r"/(?P<name>[^/]+)"
_PERMISSIONS = r"/api/2\.0/permissions/serving-endpoints/(?P<endpoint_id>[^/]+)"


def register(fake) -> None:
    fake.serving = ServingEndpoints(fake)  # the host's (first) workspace
    fake.workspaces = {fake.workspace_id: fake.serving}
    for method, pattern, handler in (
            ("POST", _ENDPOINTS, "create"), ("GET", _ENDPOINTS, "list"), ("GET", _ENDPOINT, "get"),
            ("DELETE", _ENDPOINT, "delete"), ("PUT", _ENDPOINT + r"/config", "update_config"),
            ("PATCH", _ENDPOINT + r"/tags", "patch_tags"), ("PUT", _ENDPOINT + r"/ai-gateway", "put_ai_gateway"),
            ("GET", _PERMISSIONS, "get_permissions"), ("PUT", _PERMISSIONS, "set_permissions"),
            ("PATCH", _PERMISSIONS, "update_permissions")):
        fake.route(method, pattern, _in_workspace(fake, handler))


def add_workspace(fake, workspace_id: str) -> "ServingEndpoints":
    """Serve another workspace on the same host: the host becomes a unified host."""
    api = ServingEndpoints(fake)
    fake.workspaces[workspace_id] = api
    fake.unified_host = True
    return api


def workspace_of(fake, req: Request) -> "ServingEndpoints":
    """The workspace a call is for: its X-Databricks-Workspace-Id, needed once the host serves several."""
    workspace_id = req.headers.get("x-databricks-workspace-id")
    if workspace_id is None:
        if len(fake.workspaces) > 1:
            raise _bad("This host serves several workspaces: send the X-Databricks-Workspace-Id header.")
        return fake.serving
    if workspace_id not in fake.workspaces:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Workspace %s is not served by this host." % workspace_id)
    return fake.workspaces[workspace_id]


def _in_workspace(fake, handler: str):
    return lambda req, **groups: getattr(workspace_of(fake, req), handler)(req, **groups)


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _ms() -> int:
    return int(time.time() * 1000)


class ServingEndpoints:
    """The workspace's serving endpoints; handlers plus knobs for tests."""

    def __init__(self, fake):
        self.fake = fake
        self.update_seconds = 1.0  # how long a create / config update stays IN_PROGRESS
        self.fail_next_update: Optional[str] = None  # e.g. "UPDATE_FAILED": how the next update ends
        self.conflict_error_code = "RESOURCE_CONFLICT"  # of the 409 for a write while an update runs
        self.rng = random.Random()
        self.endpoints: Dict[str, dict] = {}
        for name, display in PAY_PER_TOKEN.items():
            self._add_pay_per_token(name, display)

    # -- test helpers ------------------------------------------------------------
    def record(self, name: str) -> dict:
        """The stored endpoint (tests edit it to make drift behind Ansible's back)."""
        with self.fake.lock:
            return self._settled(name)

    def serves(self, name: str) -> bool:
        """Whether `name` is an endpoint with a live config (what the Messages API accepts as `model`)."""
        with self.fake.lock:
            rec = self._settled(name)
            return rec is not None and rec["config"] is not None

    def finish_updates(self) -> None:
        """End every running update now (tests that do not want to wait)."""
        with self.fake.lock:
            for rec in self.endpoints.values():
                if rec["pending"]:
                    rec["pending"]["done_at"] = 0
                self._settle(rec)

    # -- handlers ----------------------------------------------------------------
    def create(self, req: Request) -> Response:
        principal = self.fake.authenticate(req)
        body = req.json()
        name = body.get("name")
        if not name or not ENDPOINT_NAME.match(name):
            raise _bad("Endpoint name must be 1-63 characters: letters, digits, '-' and '_'; got %r." % name)
        config = body.get("config")
        if not config or not config.get("served_entities"):
            raise _bad("config.served_entities is required to create an endpoint.")
        with self.fake.lock:
            if name in self.endpoints:
                raise ApiError(409, "RESOURCE_ALREADY_EXISTS", "Endpoint with name '%s' already exists." % name)
            config = self._validated_config(config)
            gateway = self._validated_gateway(body.get("ai_gateway") or {}, None)
            now = _ms()
            rec = {"name": name, "id": uuid.uuid4().hex, "creator": principal, "creation_timestamp": now,
                   "last_updated_timestamp": now, "description": body.get("description"),
                   "route_optimized": body.get("route_optimized"), "task": self._task(config),
                   "tags": {t["key"]: t.get("value") for t in body.get("tags") or []},
                   "ai_gateway": gateway, "config": None, "config_version": 0, "pending": None,
                   "config_update": "NOT_UPDATING", "pay_per_token": False,
                   "acl": {("user_name", principal): "CAN_MANAGE"}}
            self._start_update(rec, config)
            self.endpoints[name] = rec
            return Response.json(self._view(rec))

    def list(self, req: Request) -> Response:
        self.fake.authenticate(req)
        with self.fake.lock:
            views = [self._view(self._settled(n)) for n in sorted(self.endpoints)]
        keep = ("name", "id", "creator", "creation_timestamp", "last_updated_timestamp", "state", "config",
                "tags", "task", "ai_gateway", "description")
        return Response.json({"endpoints": [{k: v[k] for k in keep if k in v} for v in views]})

    def get(self, req: Request, name: str) -> Response:
        self.fake.authenticate(req)
        with self.fake.lock:
            return Response.json(self._view(self._existing(name)))

    def delete(self, req: Request, name: str) -> Response:
        self.fake.authenticate(req)
        with self.fake.lock:
            rec = self._existing(name)
            if rec["pay_per_token"]:
                raise _bad("Endpoint '%s' is a Databricks-managed pay-per-token endpoint and cannot be deleted."
                           % name)
            del self.endpoints[name]
        return Response.json({})

    def update_config(self, req: Request, name: str) -> Response:
        self.fake.authenticate(req)
        body = req.json()
        with self.fake.lock:
            rec = self._existing(name)
            if rec["pay_per_token"]:
                raise _bad("The config of pay-per-token endpoint '%s' cannot be updated." % name)
            self._refuse_while_updating(rec)
            if not body.get("served_entities"):
                raise _bad("served_entities is required.")
            config = self._validated_config(body)
            current = (rec["config"] or {}).get("served_entities") or []
            had = any(e.get("external_model") for e in current)
            wants = any(e.get("external_model") for e in config["served_entities"])
            if current and had != wants:
                raise _bad("Cannot %s external model on endpoint '%s': an endpoint created with an external "
                           "model must always serve one, and one created without cannot add one."
                           % ("remove the" if had else "add an", name))
            self._start_update(rec, config)
            return Response.json(self._view(rec))

    def patch_tags(self, req: Request, name: str) -> Response:
        self.fake.authenticate(req)
        body = req.json()
        with self.fake.lock:
            rec = self._existing(name)
            self._refuse_while_updating(rec)
            for key in body.get("delete_tags") or []:
                rec["tags"].pop(key, None)
            for tag in body.get("add_tags") or []:
                if not tag.get("key"):
                    raise _bad("Tag key is required.")
                rec["tags"][tag["key"]] = tag.get("value")
            rec["last_updated_timestamp"] = _ms()
            return Response.json({"tags": self._tags(rec)})

    def put_ai_gateway(self, req: Request, name: str) -> Response:
        self.fake.authenticate(req)
        body = req.json()
        with self.fake.lock:
            rec = self._existing(name)
            self._refuse_while_updating(rec)
            rec["ai_gateway"] = self._validated_gateway(body, rec["ai_gateway"])
            rec["last_updated_timestamp"] = _ms()
            return Response.json(copy.deepcopy(rec["ai_gateway"]))

    def get_permissions(self, req: Request, endpoint_id: str) -> Response:
        self.fake.authenticate(req)
        with self.fake.lock:
            return Response.json(self._acl_view(self._by_id(endpoint_id)))

    def set_permissions(self, req: Request, endpoint_id: str) -> Response:
        self.fake.authenticate(req)
        with self.fake.lock:
            rec = self._by_id(endpoint_id)
            rec["acl"] = self._validated_acl(req.json())
            return Response.json(self._acl_view(rec))

    def update_permissions(self, req: Request, endpoint_id: str) -> Response:
        self.fake.authenticate(req)
        with self.fake.lock:
            rec = self._by_id(endpoint_id)
            rec["acl"].update(self._validated_acl(req.json()))
            return Response.json(self._acl_view(rec))

    def refusal(self, name: str, principal: str) -> Optional[str]:
        """Why the AI Gateway refuses `principal` a query of endpoint `name` (a rate limit of 0), or None."""
        with self.fake.lock:
            rec = self._settled(name)
            limits = ((rec or {}).get("ai_gateway") or {}).get("rate_limits") or []
        for limit in limits:
            key = limit.get("key", "endpoint")
            applies = key == "endpoint" or (key in ("user", "service_principal")
                                            and limit.get("principal") in (None, principal))
            if applies and limit.get("calls") == 0:
                return "The endpoint %s is disabled for %s by a rate limit of 0 calls per %s." % (
                    name, principal if key != "endpoint" else "everyone", limit.get("renewal_period", "minute"))
        return None

    # -- state -------------------------------------------------------------------
    def _refuse_while_updating(self, rec: dict) -> None:
        if rec["config_update"] == "IN_PROGRESS":
            raise ApiError(409, self.conflict_error_code,
                           "Endpoint %s is currently being updated. Please wait until the current update "
                           "completes or fails." % rec["name"])

    def _add_pay_per_token(self, name: str, display: str) -> None:
        entity = {"name": name, "foundation_model": {"name": name.replace("databricks-", "system.ai."),
                                                     "display_name": display, "docs": "https://docs.databricks.com",
                                                     "description": "%s, pay-per-token." % display}}
        self.endpoints[name] = {
            "name": name, "id": uuid.uuid4().hex, "creator": "System-User", "creation_timestamp": _ms(),
            "last_updated_timestamp": _ms(), "description": None, "route_optimized": None, "task": "llm/v1/chat",
            "tags": {}, "ai_gateway": {}, "config": {"served_entities": [entity], "traffic_config": None},
            "config_version": 1, "pending": None, "config_update": "NOT_UPDATING", "pay_per_token": True,
            "acl": {}}

    def _existing(self, name: str) -> dict:
        rec = self._settled(name)
        if rec is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Endpoint with name '%s' does not exist." % name)
        return rec

    def _by_id(self, endpoint_id: str) -> dict:
        for name, rec in self.endpoints.items():
            if rec["id"] == endpoint_id:
                return self._settled(name)
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Serving endpoint with id '%s' does not exist." % endpoint_id)

    def _settled(self, name: str) -> Optional[dict]:
        rec = self.endpoints.get(name)
        if rec is not None:
            self._settle(rec)
        return rec

    def _start_update(self, rec: dict, config: dict) -> None:
        outcome, self.fail_next_update = self.fail_next_update or "NOT_UPDATING", None
        rec["pending"] = {"config": config, "start_time": _ms(), "done_at": time.time() + self.update_seconds,
                          "outcome": outcome}
        rec["config_update"] = "IN_PROGRESS"
        rec["last_updated_timestamp"] = _ms()

    def _settle(self, rec: dict) -> None:
        pending = rec["pending"]
        if not pending or time.time() < pending["done_at"]:
            return
        rec["pending"] = None
        rec["config_update"] = pending["outcome"]
        if pending["outcome"] == "NOT_UPDATING":
            rec["config"] = pending["config"]
            rec["config_version"] += 1

    # -- validation --------------------------------------------------------------
    def _validated_config(self, config: dict) -> dict:
        entities = [copy.deepcopy(e) for e in config.get("served_entities") or []]
        if len(entities) > MAX_ENTITIES:
            raise _bad("An endpoint can serve at most %d entities." % MAX_ENTITIES)
        for entity in entities:
            self._validate_entity(entity)
        names = [e["name"] for e in entities]
        if len(set(names)) != len(names):
            raise _bad("Served entity names must be unique; got %s." % names)
        tasks = {e["external_model"]["task"] for e in entities if e.get("external_model")}
        if len(tasks) > 1:
            raise _bad("All external models of an endpoint must have the same task; got %s." % sorted(tasks))
        routes = ((config.get("traffic_config") or {}).get("routes"))
        if routes:
            routes = [{"served_entity_name": r.get("served_entity_name") or r.get("served_model_name"),
                       "traffic_percentage": r.get("traffic_percentage")} for r in routes]
            unknown = [r["served_entity_name"] for r in routes if r["served_entity_name"] not in names]
            if unknown:
                raise _bad("Traffic config routes to unknown served entities %s." % unknown)
            if sum(int(r["traffic_percentage"] or 0) for r in routes) != 100:
                raise _bad("Traffic percentages of an endpoint must add up to 100.")
        else:  # the server computes one: an even split, the remainder to the first entity
            share, rest = divmod(100, len(names))
            routes = [{"served_entity_name": n, "traffic_percentage": share + (rest if i == 0 else 0)}
                      for i, n in enumerate(names)]
        return {"served_entities": entities, "traffic_config": {"routes": routes}}

    def _validate_entity(self, entity: dict) -> None:
        model = entity.get("external_model")
        if model:
            for key in ("provider", "name", "task"):
                if not model.get(key):
                    raise _bad("external_model.%s is required." % key)
            if model["provider"] not in PROVIDERS:
                raise _bad("Unknown external model provider '%s'." % model["provider"])
            if model["provider"] == "anthropic":
                cfg = model.get("anthropic_config") or {}
                given = [k for k in ("anthropic_api_key", "anthropic_api_key_plaintext") if cfg.get(k)]
                if len(given) != 1:
                    raise _bad("anthropic_config needs exactly one of anthropic_api_key or "
                               "anthropic_api_key_plaintext.")
                if cfg.get("anthropic_api_key") and not SECRET_REFERENCE.match(cfg["anthropic_api_key"]):
                    raise _bad("anthropic_api_key must be a secret reference of the form {{secrets/<scope>/<key>}}.")
            entity.setdefault("name", model["name"].replace(".", "-").replace(":", "-"))
        elif entity.get("entity_name"):
            entity.setdefault("name", "%s-%s" % (entity["entity_name"], entity.get("entity_version")))
            entity.setdefault("workload_size", "Small")
            entity.setdefault("workload_type", "CPU")
        else:
            raise _bad("A served entity needs entity_name or external_model.")

    def _validated_gateway(self, body: dict, current: Optional[dict]) -> dict:
        for limit in body.get("rate_limits") or []:
            if limit.get("renewal_period") != "minute":
                raise _bad("rate_limits[].renewal_period is required and must be 'minute'.")
            if limit.get("key", "endpoint") not in RATE_LIMIT_KEYS:
                raise _bad("rate_limits[].key must be one of %s." % ", ".join(RATE_LIMIT_KEYS))
        table = body.get("inference_table_config") or {}
        if table.get("enabled") and not (table.get("catalog_name") and table.get("schema_name")):
            raise _bad("inference_table_config needs catalog_name and schema_name when enabled.")
        old = (current or {}).get("inference_table_config") or {}
        if old.get("enabled") and table.get("enabled") and any(old.get(k) != table.get(k) for k in TABLE_LOCATION):
            raise _bad("Cannot change the catalog, schema or table prefix of an enabled inference table; "
                       "disable the inference table first.")
        if (body.get("fallback_config") or {}).get("enabled") is None and body.get("fallback_config") is not None:
            raise _bad("fallback_config.enabled is required.")
        return copy.deepcopy(body)  # a full replacement: whatever was not sent is gone

    def _validated_acl(self, body: dict) -> dict:
        acl = {}
        for entry in body.get("access_control_list") or []:
            kinds = [k for k in PRINCIPAL_KINDS if entry.get(k)]
            if len(kinds) != 1:
                raise _bad("Each access control entry needs exactly one of %s." % ", ".join(PRINCIPAL_KINDS))
            if entry.get("permission_level") not in LEVELS:
                raise _bad("Permission level must be one of %s; got %r."
                           % (", ".join(LEVELS), entry.get("permission_level")))
            acl[(kinds[0], entry[kinds[0]])] = entry["permission_level"]
        return acl

    @staticmethod
    def _task(config: dict) -> Optional[str]:
        tasks = [e["external_model"]["task"] for e in config["served_entities"] if e.get("external_model")]
        return tasks[0] if tasks else None

    # -- what GET shows ----------------------------------------------------------
    def _shuffled(self, items: list) -> list:
        """A permutation never equal to the given order (when there are two or more items)."""
        items = list(items)
        if len(items) < 2:
            return items
        shuffled = items[:]
        while shuffled == items:
            self.rng.shuffle(shuffled)
        return shuffled

    def _tags(self, rec: dict) -> list:
        return self._shuffled([{"key": k, "value": v} if v is not None else {"key": k}
                               for k, v in rec["tags"].items()])

    def _entity_view(self, rec: dict, entity: dict, deployment: str) -> dict:
        out = copy.deepcopy(entity)
        model = out.get("external_model")
        for cfg_key in list((model or {}).keys()):
            if cfg_key.endswith("_config") and isinstance(model[cfg_key], dict):
                model[cfg_key] = {k: v for k, v in model[cfg_key].items() if not k.endswith("_plaintext")}
        out.update({"creation_timestamp": rec["creation_timestamp"], "creator": rec["creator"],
                    "state": {"deployment": deployment,
                              "deployment_state_message": "" if deployment == "DEPLOYMENT_READY"
                              else "Creating served entity"}})
        return out

    def _config_view(self, rec: dict, config: dict, deployment: str, version: int) -> dict:
        entities = [self._entity_view(rec, e, deployment) for e in config["served_entities"]]
        view = {"config_version": version, "served_entities": self._shuffled(entities)}
        mirror = []
        for e in entities:
            m = {("model_name" if k == "entity_name" else "model_version" if k == "entity_version" else k): v
                 for k, v in e.items()}
            mirror.append(m)
        view["served_models"] = self._shuffled(mirror)
        if config.get("traffic_config"):
            view["traffic_config"] = {"routes": [
                {"served_model_name": r["served_entity_name"], "served_entity_name": r["served_entity_name"],
                 "traffic_percentage": r["traffic_percentage"]} for r in config["traffic_config"]["routes"]]}
        return view

    def _view(self, rec: dict) -> dict:
        view = {k: rec[k] for k in ("name", "id", "creator", "creation_timestamp", "last_updated_timestamp")}
        ready = rec["config"] is not None
        view["state"] = {"ready": "READY" if ready else "NOT_READY", "config_update": rec["config_update"]}
        if rec["config"] is not None:
            view["config"] = self._config_view(rec, rec["config"], "DEPLOYMENT_READY", rec["config_version"])
        if rec["pending"]:
            pending = self._config_view(rec, rec["pending"]["config"], "DEPLOYMENT_CREATING",
                                        rec["config_version"] + 1)
            pending.pop("served_models")
            pending["start_time"] = rec["pending"]["start_time"]
            view["pending_config"] = pending
        view["tags"] = self._tags(rec)
        if rec["ai_gateway"]:
            view["ai_gateway"] = copy.deepcopy(rec["ai_gateway"])
        for key in ("description", "route_optimized", "task"):
            if rec[key] is not None:
                view[key] = rec[key]
        view["permission_level"] = "CAN_MANAGE"
        if rec["route_optimized"]:  # a dedicated URL only for route-optimized endpoints
            view["endpoint_url"] = "%s/serving-endpoints/%s/invocations" % (self.fake.url, rec["name"])
        return view

    def _acl_view(self, rec: dict) -> dict:
        entries = [{kind: name, "display_name": name.split("@")[0],
                    "all_permissions": [{"permission_level": level, "inherited": False}]}
                   for (kind, name), level in rec["acl"].items()]
        entries.append({"group_name": "admins", "all_permissions": [
            {"permission_level": "CAN_MANAGE", "inherited": True, "inherited_from_object": ["/serving-endpoints/"]}]})
        return {"object_id": "/serving-endpoints/%s" % rec["id"], "object_type": "serving-endpoint",
                "access_control_list": self._shuffled(entries)}
