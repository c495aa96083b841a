"""Unity AI Gateway's control plane: model services, model provider services and their UC grants.

Shapes are those of databricks-sdk 0.162.0 `databricks.sdk.service.catalog` (AiGatewayAPI, GrantsAPI,
ModelService, ModelProviderService, PrivilegeAssignment...); every path below is the SDK's:
- POST /api/2.1/unity-catalog/{model-services|model-provider-services}?parent=schemas/{c}.{s}&<kind>_id=ID
  (the server derives `name` = `<kind>s/{c}.{s}.{id}`), GET|PATCH|DELETE .../{c}.{s}.{id}, GET list with
  `parent`, `page_size`, `page_token`, `view` (BASIC, the default, omits destinations, inference-table
  details and rate-limit principals: SDK ListModelServicesRequest.view docstring);
- PATCH takes `update_mask` (comma-separated, snake_case: SDK FieldMask.ToJsonString) with only the
  granular paths the SDK docstrings list; intermediate paths (`config.routing`, `config.routing.fallback`,
  `config.pricing`) are refused; an optional `etag` query parameter makes it conditional. A stale etag
  answers 409 ABORTED: the API follows Google's AIP resource style (parent, *_id, update_mask, etag), and
  AIP-154 says a mismatched etag "must send an ABORTED error" (aip-dev/google.aip.dev PR 705: ABORTED
  maps to 409). The exact Databricks message is unverified;
- server-set fields on every read: name, create_time/update_time (RFC 3339), created_by/updated_by,
  effective_owner, metastore_id, etag (base64, new on every write: SDK `etag` docstring),
  supported_api_types, a provisioned-throughput destination's `model` (resolved from its serving
  endpoint) and an inference table's `table`; `plaintext` secrets are INPUT_ONLY: reads keep the
  enclosing secret object empty (SDK ModelProviderServiceConfigProviderSecret docstring);
- GET|PATCH /api/2.1/unity-catalog/permissions/{securable_type}/{full_name} (direct grants only; PATCH
  `changes: [{principal, add, remove}]`) and GET .../effective-permissions/... (with privileges
  inherited from the schema and catalog: GrantsAPI docstring "privileges are inherited downward").
  An unknown principal answers "Could not find principal with name X" (terraform-provider-databricks
  issues 1773, 2237).

For the data plane and tests (state: `fake.unity`, a UnityCatalog):
    fake.unity.model_service("main.ai.claude_code")  -> the model service as GET returns it, or None
    fake.unity.has_privilege(principal, "MODEL_SERVICE", full_name, "EXECUTE")  -> bool (own or a
        group's grant on the securable, its schema or its catalog; owners hold every privilege)
    fake.unity.missing_to_query(principal, full_name) -> None, or the first missing privilege
        ("USE_CATALOG", "USE_SCHEMA", "EXECUTE") as ("CATALOG", "main") style (type, privilege, on)
    fake.unity.add_schema("main.ai"), add_group("devs", members), add_principal("sp-app-id")
    fake.unity.edit("MODEL_SERVICE", full_name, fn)  -> a change behind the API's back (new etag)
    fake.unity.concurrent_edit("MODEL_SERVICE", full_name, fn, times=1) -> the next `times` PATCH/DELETE
        of it find `fn` applied first, as if another admin wrote between the caller's read and its write
Seeded: catalogs `main` (schemas `default`, `ai`) and `system` (schema `ai`, holding the UC models of
the pay-per-token endpoints and Databricks-provided model services `system.ai.claude-*`); groups
`account users` (every user) and `claude-code-developers` (the example vars' developers group);
`account users` has USE_CATALOG on `system`, USE_SCHEMA and EXECUTE on `system.ai`.
Every call needs a bearer token from `fake.issue_token`; writes are not authorized beyond that.
"""

import base64
import copy
import datetime
import re
import uuid
from typing import Callable, Dict, List, Optional, Set, Tuple

from .server import ApiError, Request, Response
from .serving import PAY_PER_TOKEN

_UC = r"/api/2\.1/unity-catalog"
NAME_PART = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,254}"
MODEL_SERVICE, MODEL_PROVIDER_SERVICE = "MODEL_SERVICE", "MODEL_PROVIDER_SERVICE"
KINDS = {  # URL collection -> (securable type, the create query parameter, the list response key)
    "model-services": (MODEL_SERVICE, "model_service_id", "model_services"),
    "model-provider-services": (MODEL_PROVIDER_SERVICE, "model_provider_service_id", "model_provider_services"),
}
COLLECTION = {kind[0]: path for path, kind in KINDS.items()}
SERVICE_MASKS = {
    MODEL_SERVICE: {"comment", "config", "config.routing.destinations", "config.routing.fallback.destinations",
                    "config.rate_limits", "config.inference_table"},
    MODEL_PROVIDER_SERVICE: {"comment", "config", "config.provider", "config.allow_all_targets", "config.targets",
                             "config.forward_headers", "config.forward_query_parameters",
                             "config.forward_unmanaged_paths", "config.rate_limits",
                             "config.pricing.default_discount_basis_points", "config.inference_table"},
}
DESTINATION_CONFIGS = {
    "DESTINATION_TYPE_PAY_PER_TOKEN_FOUNDATION_MODEL": "pay_per_token_config",
    "DESTINATION_TYPE_EXTERNAL_FOUNDATION_MODEL": "external_model_config",
    "DESTINATION_TYPE_PROVISIONED_THROUGHPUT_FOUNDATION_MODEL": "provisioned_throughput_config",
}
PROVIDERS = {  # provider_type -> its config key (SDK ModelProviderServiceConfigExternalModelProviderType)
    "EXTERNAL_MODEL_PROVIDER_TYPE_" + key.upper(): key
    for key in ("amazon_bedrock", "anthropic", "azure_openai", "bedrock_mantle", "custom", "gemini_enterprise",
                "microsoft_foundry", "openai")}
AUTH_FIELDS = ("api_key", "aws_access_key", "service_credential", "entra_service_principal", "header_auth")
RATE_LIMIT_KEYS = {"RATE_LIMIT_KEY_SERVICE": False, "RATE_LIMIT_KEY_USER_DEFAULT": False,  # -> needs principal
                   "RATE_LIMIT_KEY_USER": True, "RATE_LIMIT_KEY_USER_GROUP": True,
                   "RATE_LIMIT_KEY_SERVICE_PRINCIPAL": True}
RENEWAL_PERIODS = ("RATE_LIMIT_RENEWAL_PERIOD_MINUTE", "RATE_LIMIT_RENEWAL_PERIOD_HOUR")
MAX_DESTINATIONS, MAX_FALLBACKS = 10, 5  # SDK ModelServiceConfigRoutingConfig / FallbackConfig docstrings
PAGE_SIZES = {"BASIC": 1000, "FULL": 200}  # the maximum page_size per view; 200 when unset or 0
# Privileges a securable type takes (a subset of the SDK's Privilege enum, plus CREATE_SERVICE, which
# the AiGatewayAPI docstrings require on the schema although the 0.162 enum lacks it).
PRIVILEGES = {
    "CATALOG": {"ALL_PRIVILEGES", "MANAGE", "BROWSE", "USE_CATALOG", "USE_SCHEMA", "CREATE_SCHEMA", "EXECUTE",
                "CREATE_SERVICE", "CREATE_TABLE", "CREATE_FUNCTION", "CREATE_MODEL", "CREATE_CONNECTION",
                "SELECT", "MODIFY", "READ_VOLUME", "WRITE_VOLUME", "APPLY_TAG"},
    "SCHEMA": {"ALL_PRIVILEGES", "MANAGE", "USE_SCHEMA", "EXECUTE", "CREATE_SERVICE", "CREATE_TABLE",
               "CREATE_FUNCTION", "CREATE_MODEL", "CREATE_CONNECTION", "SELECT", "MODIFY", "READ_VOLUME",
               "WRITE_VOLUME", "APPLY_TAG"},
    MODEL_SERVICE: {"ALL_PRIVILEGES", "MANAGE", "EXECUTE", "READ_METADATA", "APPLY_TAG"},
    MODEL_PROVIDER_SERVICE: {"ALL_PRIVILEGES", "MANAGE", "EXECUTE", "READ_METADATA", "APPLY_TAG"},
    "FUNCTION": {"ALL_PRIVILEGES", "MANAGE", "EXECUTE", "APPLY_TAG"},  # UC models (system.ai.*)
}
SECRET_REFERENCE = re.compile(r"secrets/%s\.%s\.%s\Z" % (NAME_PART, NAME_PART, NAME_PART))
SERVICE_CREDENTIAL = re.compile(r"credentials/%s\Z" % NAME_PART)
SYSTEM_MODEL_SERVICES = {  # Databricks-provided model services -> the system.ai UC model they route to
    "system.ai.claude-sonnet-4-5": "databricks-claude-sonnet-4-5",
    "system.ai.claude-opus-4-6": "databricks-claude-opus-4-6",
    "system.ai.claude-haiku-4-5": "databricks-claude-haiku-4-5",
}
SYSTEM_USER = "System-User"


def register(fake) -> None:
    api = UnityCatalog(fake)
    fake.unity = api
    for path in KINDS:
        fake.route("POST", "%s/%s" % (_UC, path), api.create)
        fake.route("GET", "%s/%s" % (_UC, path), api.list)
        item = r"%s/(?P<collection>%s)/(?P<full_name>[^/]+)" % (_UC, re.escape(path))
        fake.route("GET", item, api.get)
        fake.route("PATCH", item, api.update)
        fake.route("DELETE", item, api.delete)
    fake.route("GET", _UC + r"/permissions/(?P<securable_type>[^/]+)/(?P<full_name>[^/]+)", api.get_permissions)
    fake.route("PATCH", _UC + r"/permissions/(?P<securable_type>[^/]+)/(?P<full_name>[^/]+)",
               api.update_permissions)
    fake.route("GET", _UC + r"/effective-permissions/(?P<securable_type>[^/]+)/(?P<full_name>[^/]+)",
               api.get_effective_permissions)


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _missing(what: str, name: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", "%s '%s' does not exist." % (what, name))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_etag() -> str:
    # 17 random bytes: standard base64 with padding, so a client that does not URL-encode it breaks.
    return base64.b64encode(uuid.uuid4().bytes + b"\xfb").decode()


def _parent_schema(parent: Optional[str], what: str = "parent") -> str:
    m = re.match(r"schemas/(%s\.%s)\Z" % (NAME_PART, NAME_PART), parent or "")
    if not m:
        raise _bad("%s must be of the form schemas/{catalog}.{schema}; got %r." % (what, parent))
    return m.group(1)


def _resource(name: Optional[str], collection: str, what: str) -> str:
    """The full name in a `<collection>/{c}.{s}.{id}` resource name."""
    m = re.match(r"%s/(%s\.%s\.%s)\Z" % (re.escape(collection), NAME_PART, NAME_PART, NAME_PART), name or "")
    if not m:
        raise _bad("%s must be of the form %s/{catalog}.{schema}.{name}; got %r." % (what, collection, name))
    return m.group(1)


class UnityCatalog:
    """The metastore's schemas, AI Gateway securables, principals and grants; handlers plus test knobs."""

    def __init__(self, fake):
        self.fake = fake
        self.metastore_id = str(uuid.uuid4())
        self.catalogs: Dict[str, Set[str]] = {"main": {"default", "ai"}, "system": {"ai"}}
        self.models = {"system.ai." + name for name in PAY_PER_TOKEN}  # UC models of pay-per-token endpoints
        self.services: Dict[str, Dict[str, dict]] = {MODEL_SERVICE: {}, MODEL_PROVIDER_SERVICE: {}}
        self.grants: Dict[Tuple[str, str], Dict[str, Set[str]]] = {}  # (type, full name) -> principal -> privs
        self.groups: Dict[str, Set[str]] = {"claude-code-developers": set(fake.users)}
        self.principals: Set[str] = set()  # service principals (application ids) and other extra principals
        self.concurrent: Dict[Tuple[str, str], list] = {}  # (type, full name) -> [change, times left]
        self.grants[("CATALOG", "system")] = {"account users": {"USE_CATALOG"}}
        self.grants[("SCHEMA", "system.ai")] = {"account users": {"USE_SCHEMA", "EXECUTE"}}
        for full_name, model in SYSTEM_MODEL_SERVICES.items():
            destination = {"name": model, "destination_type": "DESTINATION_TYPE_PAY_PER_TOKEN_FOUNDATION_MODEL",
                           "pay_per_token_config": {"model": "models/system.ai." + model}}
            self._store(MODEL_SERVICE, full_name, {"comment": "Databricks-provided model service.",
                                                   "config": {"routing": {"destinations": [destination]}}},
                        SYSTEM_USER)

    # -- the interface for the data plane and tests ---------------------------------
    def model_service(self, full_name: str) -> Optional[dict]:
        """The model service `c.s.id` as GET returns it (rate limits included), or None."""
        with self.fake.lock:
            rec = self.services[MODEL_SERVICE].get(full_name)
            return self._view(MODEL_SERVICE, rec) if rec else None

    def model_provider_service(self, full_name: str) -> Optional[dict]:
        with self.fake.lock:
            rec = self.services[MODEL_PROVIDER_SERVICE].get(full_name)
            return self._view(MODEL_PROVIDER_SERVICE, rec) if rec else None

    def has_privilege(self, principal: str, securable_type: str, full_name: str, privilege: str) -> bool:
        """Whether `principal` (or a group it is in) holds `privilege` on the securable or a parent of it."""
        with self.fake.lock:
            holders = {principal} | {g for g, members in self._all_groups().items() if principal in members}
            for sec_type, name in self._lineage(securable_type.upper(), full_name):
                if sec_type in self.services and self.services[sec_type].get(name, {}).get("owner") in holders:
                    return True
                for holder in holders:
                    privileges = self.grants.get((sec_type, name), {}).get(holder, set())
                    if privilege in privileges or "ALL_PRIVILEGES" in privileges:
                        return True
            return False

    def missing_to_query(self, principal: str, full_name: str) -> Optional[Tuple[str, str, str]]:
        """None if `principal` may query the model service; else (securable type, name, privilege) lacking."""
        catalog, schema = full_name.split(".", 2)[:2]
        needed = (("CATALOG", catalog, "USE_CATALOG"), ("SCHEMA", catalog + "." + schema, "USE_SCHEMA"),
                  (MODEL_SERVICE, full_name, "EXECUTE"))
        for sec_type, name, privilege in needed:
            if not self.has_privilege(principal, sec_type, name, privilege):
                return sec_type, name, privilege
        return None

    def add_schema(self, full_name: str) -> None:
        catalog, schema = full_name.split(".")
        with self.fake.lock:
            self.catalogs.setdefault(catalog, set()).add(schema)

    def add_group(self, name: str, members=()) -> None:
        with self.fake.lock:
            self.groups.setdefault(name, set()).update(members)

    def add_principal(self, name: str) -> None:
        """A principal grants may name besides the account's users and groups (e.g. an SP's application id)."""
        with self.fake.lock:
            self.principals.add(name)

    def edit(self, securable_type: str, full_name: str, change: Callable[[dict], None]) -> None:
        """Apply `change(stored)` to a service (keys comment, config) as a write behind the API's back."""
        with self.fake.lock:
            rec = self.services[securable_type][full_name]
            change(rec)
            rec.update(etag=_new_etag(), update_time=_now())

    def concurrent_edit(self, securable_type: str, full_name: str, change: Callable[[dict], None],
                        times: int = 1) -> None:
        with self.fake.lock:
            self.concurrent[(securable_type, full_name)] = [change, times]

    def _land_concurrent_edit(self, sec_type: str, full_name: str) -> None:
        pending = self.concurrent.get((sec_type, full_name))
        if pending:
            pending[1] -= 1
            if pending[1] <= 0:
                del self.concurrent[(sec_type, full_name)]
            self.edit(sec_type, full_name, pending[0])

    # -- services --------------------------------------------------------------------
    def create(self, req: Request) -> Response:
        principal = self.fake.authenticate(req)
        collection = req.path.rsplit("/", 1)[1]
        sec_type, id_param = KINDS[collection][:2]
        schema = _parent_schema(req.arg("parent"))
        service_id = req.arg(id_param)
        if not service_id or not re.match(NAME_PART + r"\Z", service_id):
            raise _bad("%s is required: 1-255 letters, digits, '_' or '-'; got %r." % (id_param, service_id))
        body = req.json()
        full_name = "%s.%s" % (schema, service_id)
        if body.get("name") not in (None, "%s/%s" % (collection, full_name)):
            raise _bad("Do not set name on create: the server derives it from parent and %s." % id_param)
        with self.fake.lock:
            self._existing_schema(schema)
            if full_name in self.services[sec_type]:
                raise ApiError(409, "RESOURCE_ALREADY_EXISTS", "%s '%s' already exists." % (sec_type, full_name))
            if not body.get("config"):
                raise _bad("config is required to create a %s." % sec_type)
            fields = {"comment": body.get("comment"),
                      "config": self._validated(sec_type, full_name, body["config"], None)}
            return Response.json(self._view(sec_type, self._store(sec_type, full_name, fields, principal)))

    def list(self, req: Request) -> Response:
        self.fake.authenticate(req)
        collection = req.path.rsplit("/", 1)[1]
        sec_type, key = KINDS[collection][0], KINDS[collection][2]
        schema = _parent_schema(req.arg("parent"))
        view = req.arg("view", "BASIC")
        if view not in PAGE_SIZES:
            raise _bad("view must be BASIC or FULL; got %r." % view)
        size = int(req.arg("page_size") or 0) or 200
        if size < 0 or size > PAGE_SIZES[view]:
            raise _bad("page_size must be between 0 and %d for view %s." % (PAGE_SIZES[view], view))
        start = self._page_start(req.arg("page_token"))
        with self.fake.lock:
            self._existing_schema(schema)
            names = sorted(n for n in self.services[sec_type] if n.startswith(schema + "."))
            page = [self._view(sec_type, self.services[sec_type][n], basic=view == "BASIC")
                    for n in names[start:start + size]]
        out = {key: page} if page else {}
        if start + size < len(names):
            out["next_page_token"] = base64.urlsafe_b64encode(b"offset:%d" % (start + size)).decode()
        return Response.json(out)

    def get(self, req: Request, collection: str, full_name: str) -> Response:
        self.fake.authenticate(req)
        sec_type = KINDS[collection][0]
        with self.fake.lock:
            return Response.json(self._view(sec_type, self._existing(sec_type, full_name)))

    def update(self, req: Request, collection: str, full_name: str) -> Response:
        principal = self.fake.authenticate(req)
        sec_type = KINDS[collection][0]
        paths = [p.strip() for p in (req.arg("update_mask") or "").split(",") if p.strip()]
        if not paths:
            raise _bad("update_mask is required.")
        unsupported = [p for p in paths if p not in SERVICE_MASKS[sec_type]]
        if unsupported:
            raise _bad("Unsupported update_mask path(s) %s; supported: %s." % (
                ", ".join(unsupported), ", ".join(sorted(SERVICE_MASKS[sec_type]))))
        body = req.json()
        with self.fake.lock:
            rec = self._existing(sec_type, full_name)
            self._land_concurrent_edit(sec_type, full_name)
            self._check_etag(rec, req.arg("etag"))
            if rec["created_by"] == SYSTEM_USER:
                raise ApiError(403, "PERMISSION_DENIED", "'%s' is provided by Databricks and cannot be changed."
                               % full_name)
            config = copy.deepcopy(rec["config"])
            given = body.get("config") or {}
            for path in (p for p in paths if p != "comment"):
                if path == "config":
                    config = copy.deepcopy(given)
                elif path == "config.provider":
                    key = PROVIDERS[rec["config"]["provider_type"]]
                    config[key] = copy.deepcopy(given.get(key) or {})
                elif path == "config.pricing.default_discount_basis_points":
                    config.setdefault("pricing", {})["default_discount_basis_points"] = \
                        (given.get("pricing") or {}).get("default_discount_basis_points")
                else:
                    _set_path(config, path.split(".")[1:], _get_path(given, path.split(".")[1:]))
            new_config = self._validated(sec_type, full_name, _pruned(config), rec["config"])
            if "comment" in paths:
                rec["comment"] = body.get("comment")
            rec.update(config=new_config, updated_by=principal, update_time=_now(), etag=_new_etag())
            return Response.json(self._view(sec_type, rec))

    def delete(self, req: Request, collection: str, full_name: str) -> Response:
        self.fake.authenticate(req)
        sec_type = KINDS[collection][0]
        with self.fake.lock:
            rec = self._existing(sec_type, full_name)
            self._land_concurrent_edit(sec_type, full_name)
            self._check_etag(rec, req.arg("etag"))
            if rec["created_by"] == SYSTEM_USER:
                raise ApiError(403, "PERMISSION_DENIED", "'%s' is provided by Databricks and cannot be deleted."
                               % full_name)
            del self.services[sec_type][full_name]
            self.grants.pop((sec_type, full_name), None)
        return Response.json({})

    # -- grants ----------------------------------------------------------------------
    def get_permissions(self, req: Request, securable_type: str, full_name: str) -> Response:
        self.fake.authenticate(req)
        with self.fake.lock:
            key = self._securable(securable_type, full_name)
            assignments = [{"principal": p, "privileges": sorted(privs)}
                           for p, privs in sorted(self.grants.get(key, {}).items()) if privs]
        return Response.json(self._paged(req, assignments))

    def get_effective_permissions(self, req: Request, securable_type: str, full_name: str) -> Response:
        self.fake.authenticate(req)
        with self.fake.lock:
            key = self._securable(securable_type, full_name)
            found: Dict[str, List[dict]] = {}
            for sec_type, name in self._lineage(*key):
                for principal, privs in sorted(self.grants.get((sec_type, name), {}).items()):
                    for privilege in sorted(privs):
                        entry = {"privilege": privilege}
                        if (sec_type, name) != key:
                            entry.update(inherited_from_type=sec_type, inherited_from_name=name)
                        found.setdefault(principal, []).append(entry)
        principal = req.arg("principal")
        assignments = [{"principal": p, "privileges": privs} for p, privs in sorted(found.items())
                       if principal in (None, p)]
        return Response.json(self._paged(req, assignments))

    def update_permissions(self, req: Request, securable_type: str, full_name: str) -> Response:
        self.fake.authenticate(req)
        body = req.json()
        with self.fake.lock:
            key = self._securable(securable_type, full_name)
            grants = copy.deepcopy(self.grants.get(key, {}))
            for change in body.get("changes") or []:
                principal = change.get("principal")
                if not principal:
                    raise _bad("changes[].principal is required.")
                if not self._principal_exists(principal):
                    raise ApiError(404, "PRINCIPAL_DOES_NOT_EXIST", "Could not find principal with name %s"
                                   % principal)
                for privilege in (change.get("add") or []) + (change.get("remove") or []):
                    if privilege not in PRIVILEGES[key[0]]:
                        raise _bad("Privilege %s is not applicable to this entity [%s:%s]."
                                   % (privilege, key[0], full_name))
                held = grants.setdefault(principal, set())
                held.update(change.get("add") or [])
                held.difference_update(change.get("remove") or [])
            self.grants[key] = {p: privs for p, privs in grants.items() if privs}
            if body.get("omit_permissions_in_response"):
                return Response.json({})
            return Response.json({"privilege_assignments": [
                {"principal": p, "privileges": sorted(privs)} for p, privs in sorted(self.grants[key].items())]})

    # -- state -----------------------------------------------------------------------
    def _store(self, sec_type: str, full_name: str, fields: dict, principal: str) -> dict:
        now = _now()
        rec = {"full_name": full_name, "comment": fields.get("comment"), "config": fields["config"],
               "create_time": now, "update_time": now, "created_by": principal, "updated_by": principal,
               "owner": principal, "etag": _new_etag()}
        self.services[sec_type][full_name] = rec
        return rec

    def _existing(self, sec_type: str, full_name: str) -> dict:
        rec = self.services[sec_type].get(full_name)
        if rec is None:
            raise _missing("Model service" if sec_type == MODEL_SERVICE else "Model provider service", full_name)
        return rec

    def _existing_schema(self, full_name: str) -> None:
        catalog, schema = full_name.split(".")
        if catalog not in self.catalogs:
            raise ApiError(404, "CATALOG_DOES_NOT_EXIST", "Catalog '%s' does not exist." % catalog)
        if schema not in self.catalogs[catalog]:
            raise ApiError(404, "SCHEMA_DOES_NOT_EXIST", "Schema '%s' does not exist." % full_name)

    @staticmethod
    def _check_etag(rec: dict, etag: Optional[str]) -> None:
        if etag is not None and etag != rec["etag"]:
            raise ApiError(409, "ABORTED", "The etag '%s' does not match the current etag of '%s': it changed "
                           "since it was read. Read it again and retry." % (etag, rec["full_name"]))

    def _all_groups(self) -> Dict[str, Set[str]]:
        groups = dict(self.groups)
        groups["account users"] = set(self.fake.users)
        return groups

    def _principal_exists(self, name: str) -> bool:
        return (name in self.fake.users or name in self._all_groups() or name in self.principals
                or name in getattr(self.fake, "service_principals", {}))

    def _lineage(self, sec_type: str, full_name: str) -> List[Tuple[str, str]]:
        """The securable, then its schema, then its catalog."""
        parts = full_name.split(".")
        chain = [(sec_type, full_name)]
        if len(parts) >= 3:
            chain.append(("SCHEMA", ".".join(parts[:2])))
        if len(parts) >= 2:
            chain.append(("CATALOG", parts[0]))
        return chain

    def _securable(self, securable_type: str, full_name: str) -> Tuple[str, str]:
        sec_type = securable_type.upper()
        if sec_type not in PRIVILEGES:
            raise _bad("Unsupported securable type '%s'." % securable_type)
        parts = full_name.split(".")
        if sec_type == "CATALOG":
            if full_name not in self.catalogs:
                raise ApiError(404, "CATALOG_DOES_NOT_EXIST", "Catalog '%s' does not exist." % full_name)
        elif sec_type == "SCHEMA":
            if len(parts) != 2:
                raise _bad("Schema name '%s' must be {catalog}.{schema}." % full_name)
            self._existing_schema(full_name)
        elif sec_type == "FUNCTION":
            if full_name not in self.models:
                raise _missing("Function", full_name)
        else:
            self._existing(sec_type, full_name)
        return sec_type, full_name

    @staticmethod
    def _page_start(token: Optional[str]) -> int:
        if not token:
            return 0
        try:
            return int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])
        except (ValueError, IndexError):
            raise _bad("Invalid page_token.")

    def _paged(self, req: Request, assignments: List[dict]) -> dict:
        """GrantsAPI paging: no max_results = everything; 0 = a server page; 1-149 refused."""
        limit = req.arg("max_results")
        if limit is None:
            return {"privilege_assignments": assignments} if assignments else {}
        limit = int(limit)
        if limit < 0 or 0 < limit < 150:
            raise _bad("max_results must be 0 or at least 150; got %d." % limit)
        size = limit or 150
        start = self._page_start(req.arg("page_token"))
        out = {"privilege_assignments": assignments[start:start + size]}
        if start + size < len(assignments):
            out["next_page_token"] = base64.urlsafe_b64encode(b"offset:%d" % (start + size)).decode()
        return out

    # -- validation ------------------------------------------------------------------
    def _validated(self, sec_type: str, full_name: str, config: dict, current: Optional[dict]) -> dict:
        config = copy.deepcopy(config)
        if sec_type == MODEL_SERVICE:
            self._validate_routing(config.get("routing") or {})
        else:
            self._validate_provider(config, current)
        for limit in config.get("rate_limits") or []:
            self._validate_rate_limit(limit)
        keys = [(r["key"], r.get("principal"), r["renewal_period"]) for r in config.get("rate_limits") or []]
        if len(set(keys)) != len(keys):
            raise _bad("rate_limits has two limits for the same key, principal and renewal period.")
        self._validate_inference_table(full_name, config.get("inference_table"),
                                       (current or {}).get("inference_table"))
        return config

    def _validate_routing(self, routing: dict) -> None:
        primaries = routing.get("destinations") or []
        fallbacks = (routing.get("fallback") or {}).get("destinations") or []
        if not primaries:
            raise _bad("config.routing.destinations needs at least one destination.")
        if len(primaries) > MAX_DESTINATIONS or len(fallbacks) > MAX_FALLBACKS:
            raise _bad("A model service takes at most %d destinations and %d fallback destinations."
                       % (MAX_DESTINATIONS, MAX_FALLBACKS))
        for destination in primaries + fallbacks:
            self._validate_destination(destination)
        names = [d["name"] for d in primaries + fallbacks]
        if len(set(names)) != len(names):
            raise _bad("Destination names must be unique; got %s." % names)
        if any(d.get("traffic_percentage") is not None for d in fallbacks):
            raise _bad("Fallback destinations are tried in order and take no traffic_percentage.")
        shares = [d.get("traffic_percentage") for d in primaries]
        if len(primaries) > 1 and (None in shares or sum(shares) != 100):
            raise _bad("With more than one destination every destination needs a traffic_percentage and they "
                       "must add up to 100; got %s." % shares)
        if any(s is not None and not 0 <= s <= 100 for s in shares):
            raise _bad("traffic_percentage must be between 0 and 100.")

    def _validate_destination(self, destination: dict) -> None:
        if not destination.get("name"):
            raise _bad("Every destination needs a name.")
        kind = destination.get("destination_type")
        if kind not in DESTINATION_CONFIGS:
            raise _bad("destination_type must be one of %s; got %r." % (", ".join(DESTINATION_CONFIGS), kind))
        given = [k for k in DESTINATION_CONFIGS.values() if destination.get(k)]
        if given != [DESTINATION_CONFIGS[kind]]:
            raise _bad("Destination '%s' of type %s needs exactly %s; got %s."
                       % (destination["name"], kind, DESTINATION_CONFIGS[kind], given))
        destination.pop("is_deleted", None)
        cfg = destination[DESTINATION_CONFIGS[kind]]
        if kind == "DESTINATION_TYPE_PAY_PER_TOKEN_FOUNDATION_MODEL":
            model = _resource(cfg.get("model"), "models", "pay_per_token_config.model")
            if model not in self.models:
                raise _missing("Model", model)
        elif kind == "DESTINATION_TYPE_EXTERNAL_FOUNDATION_MODEL":
            provider_name = _resource(cfg.get("model_provider_service"), "model-provider-services",
                                      "external_model_config.model_provider_service")
            provider = self._existing(MODEL_PROVIDER_SERVICE, provider_name)["config"]
            target = cfg.get("target") or {}
            if not target.get("model"):
                raise _bad("external_model_config.target.model is required.")
            if target.get("endpoint_route"):
                raise _bad("Model service destinations do not support target.endpoint_route.")
            offered = [t["model"] for t in provider.get("targets") or []]
            if not provider.get("allow_all_targets") and target["model"] not in offered:
                raise _bad("Model '%s' is not among the targets of model provider service '%s' (%s)."
                           % (target["model"], provider_name, ", ".join(offered)))
        else:
            endpoint = re.match(r"serving-endpoints/([^/]+)\Z", cfg.get("model_serving_endpoint") or "")
            record = self.fake.serving.record(endpoint.group(1)) if endpoint else None
            if record is None or record["config"] is None:
                raise _bad("provisioned_throughput_config.model_serving_endpoint must name an existing serving "
                           "endpoint as serving-endpoints/{name}; got %r." % cfg.get("model_serving_endpoint"))
            entity = record["config"]["served_entities"][0]
            cfg["model"] = entity.get("entity_name") or (entity.get("foundation_model") or {}).get("name")

    @staticmethod
    def _validate_provider(config: dict, current: Optional[dict]) -> None:
        provider_type = config.get("provider_type")
        if current is not None and provider_type not in (None, current["provider_type"]):
            raise _bad("provider_type is immutable (%s)." % current["provider_type"])
        provider_type = provider_type or (current or {}).get("provider_type")
        config["provider_type"] = provider_type
        if provider_type not in PROVIDERS:
            raise _bad("config.provider_type must be one of %s; got %r." % (", ".join(PROVIDERS), provider_type))
        key = PROVIDERS[provider_type]
        others = [k for k in PROVIDERS.values() if k != key and k in config]
        if others:
            raise _bad("Provider %s takes only the %s config; got %s." % (provider_type, key, others))
        provider = config.get(key)
        if not provider:
            raise _bad("config.%s is required for provider %s." % (key, provider_type))
        mode = [m for m in ("direct", "relayed") if m in provider]
        if len(mode) != 1:
            raise _bad("config.%s needs exactly one of direct or relayed." % key)
        direct = provider.get("direct")
        if direct is not None:
            old = ((current or {}).get(key) or {}).get("direct") or {}
            if not any(direct.get(f) for f in AUTH_FIELDS) and old:
                # "A replacement that carries no authentication material preserves the existing binding."
                direct.update({f: old[f] for f in AUTH_FIELDS if f in old})
            if not any(direct.get(f) for f in AUTH_FIELDS):
                raise _bad("config.%s.direct needs its authentication (one of %s)." % (key, ", ".join(
                    f for f in AUTH_FIELDS)))
            _validate_secrets(direct)
            credential = (direct.get("service_credential") or {}).get("name")
            if credential is not None and not SERVICE_CREDENTIAL.match(credential):
                raise _bad("service_credential.name must be of the form credentials/{name}; got %r." % credential)
        if key == "custom" and config.get("allow_all_targets"):
            raise _bad("CUSTOM providers have no built-in model catalog and cannot set allow_all_targets.")
        targets = config.get("targets") or []
        if not targets and not config.get("allow_all_targets"):
            raise _bad("config.targets needs at least one model when allow_all_targets is false.")
        for target in targets:
            if not target.get("model") or not target.get("native_api_types"):
                raise _bad("Every target needs a model and at least one native_api_types value.")

    @staticmethod
    def _validate_rate_limit(limit: dict) -> None:
        key = limit.get("key")
        if key not in RATE_LIMIT_KEYS:
            raise _bad("rate_limits[].key must be one of %s; got %r." % (", ".join(RATE_LIMIT_KEYS), key))
        if limit.get("renewal_period") not in RENEWAL_PERIODS:
            raise _bad("rate_limits[].renewal_period must be one of %s; got %r."
                       % (", ".join(RENEWAL_PERIODS), limit.get("renewal_period")))
        if RATE_LIMIT_KEYS[key] != bool(limit.get("principal")):
            raise _bad("rate_limits[].principal is %s for key %s."
                       % ("required" if RATE_LIMIT_KEYS[key] else "not allowed", key))
        for dimension in ("requests", "tokens"):
            value = limit.get(dimension)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise _bad("rate_limits[].%s must be a whole number >= 0; got %r." % (dimension, value))

    def _validate_inference_table(self, full_name: str, table: Optional[dict], old: Optional[dict]) -> None:
        if not table:
            return
        self._existing_schema(_parent_schema(table.get("parent"), "inference_table.parent"))
        table.setdefault("table_name_prefix", full_name.split(".")[-1])
        if old and any(old.get(k) != table.get(k) for k in ("parent", "table_name_prefix")):
            raise _bad("The parent and table_name_prefix of an inference table cannot change once it is created.")
        table.pop("is_deleted", None)
        table["table"] = "tables/%s.%s_payload" % (table["parent"].split("/", 1)[1], table["table_name_prefix"])

    # -- what reads show --------------------------------------------------------------
    def _view(self, sec_type: str, rec: dict, basic: bool = False) -> dict:
        view = {"name": "%s/%s" % (COLLECTION[sec_type], rec["full_name"]), "config": _shown(rec["config"])}
        for key in ("comment", "create_time", "update_time", "created_by", "updated_by", "etag"):
            if rec.get(key) is not None:
                view[key] = rec[key]
        view.update(effective_owner=rec["owner"], metastore_id=self.metastore_id)
        if sec_type == MODEL_SERVICE:
            view["supported_api_types"] = ["anthropic/v1/messages", "mlflow/v1/chat/completions",
                                           "openai/v1/chat/completions"]
            if basic:
                view["config"].pop("routing", None)
                view["config"].pop("inference_table", None)
        if basic:
            for limit in view["config"].get("rate_limits") or []:
                limit.pop("principal", None)
        return view


def _shown(config: dict) -> dict:
    """A stored config as reads show it: INPUT_ONLY plaintext dropped, the secret object kept."""
    shown = copy.deepcopy(config)

    def strip(node):
        if isinstance(node, dict):
            node.pop("plaintext", None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(shown)
    return shown


def _validate_secrets(node) -> None:
    """Every ProviderSecret holds plaintext or a `secrets/{c}.{s}.{secret}` reference."""
    if isinstance(node, dict):
        reference = node.get("secret_reference")
        if reference is not None:
            if not SECRET_REFERENCE.match(reference.get("name") or ""):
                raise _bad("secret_reference.name must be of the form secrets/{catalog}.{schema}.{secret}; got "
                           "%r." % reference.get("name"))
        for value in node.values():
            _validate_secrets(value)


def _get_path(node: dict, keys: List[str]):
    for key in keys:
        node = (node or {}).get(key)
    return copy.deepcopy(node)


def _set_path(node: dict, keys: List[str], value) -> None:
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value


def _pruned(config: dict) -> dict:
    """Drop empty sub-objects left by granular updates (an absent fallback, cleared routing)."""
    routing = config.get("routing") or {}
    if "fallback" in routing and not routing["fallback"]:
        del routing["fallback"]
    return config
