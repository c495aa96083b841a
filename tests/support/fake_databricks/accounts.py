"""Account OAuth federation policies: account-wide and per service principal.

Routes (facts/databricks-api.md §C), served on the same host as the workspace:
  /api/2.0/accounts/<acct>/federationPolicies[/<policy_id>]
  /api/2.0/accounts/<acct>/servicePrincipals/<sp id>/federationPolicies[/<policy_id>]
The request body is the policy object itself (no wrapper). Policies are stored in
`fake.federation_policies` keyed by their `name`, exactly as GET returns them, because
the token exchange reads that store to decide which IdP tokens it trusts.
"""

import copy
import datetime
import re
import uuid

from .server import ApiError, Request, Response

MAX_POLICIES = 20  # per account, and per service principal
POLICY_ID = re.compile(r"[a-z0-9/-]{2,63}\Z")
OIDC_FIELDS = ("issuer", "audiences", "subject_claim", "subject", "jwks_json", "jwks_uri")
MUTABLE_FIELDS = ("description", "oidc_policy")
OUTPUT_ONLY = ("name", "policy_id", "service_principal_id", "uid", "create_time", "update_time")
DEFAULT_PAGE_SIZE = 100

_ACCOUNT = r"/api/2\.0/accounts/(?P<account_id>[^/]+)"
_SP = r"/servicePrincipals/(?P<sp_id>[^/]+)"
_COLLECTION = r"/federationPolicies"
_ITEM = r"/federationPolicies/(?P<policy_id>.+)"


def register(fake) -> None:
    api = FederationPolicies(fake)
    for prefix in (_ACCOUNT, _ACCOUNT + _SP):
        fake.route("POST", prefix + _COLLECTION, api.create)
        fake.route("GET", prefix + _COLLECTION, api.list)
        fake.route("GET", prefix + _ITEM, api.get)
        fake.route("PATCH", prefix + _ITEM, api.update)
        fake.route("DELETE", prefix + _ITEM, api.delete)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


class FederationPolicies:
    """Handlers for both policy kinds; `sp_id` is None for account-wide policies."""

    def __init__(self, fake):
        self.fake = fake

    # -- handlers --------------------------------------------------------------
    def create(self, req: Request, account_id: str, sp_id: str = None) -> Response:
        parent = self._parent(req, account_id, sp_id)
        body = self._body(req)
        policy_id = req.arg("policy_id")
        if policy_id is None:
            policy_id = uuid.uuid4().hex[:16]
        elif not POLICY_ID.match(policy_id):
            raise _bad("Invalid policy_id '%s': use 2-63 lowercase letters, digits, '-' or '/'." % policy_id)
        name = "%s/federationPolicies/%s" % (parent, policy_id)
        self._check_name(body, name)
        policy = {"description": body.get("description"), "oidc_policy": copy.deepcopy(body.get("oidc_policy"))}
        with self.fake.lock:
            if name in self.fake.federation_policies:
                raise ApiError(409, "RESOURCE_ALREADY_EXISTS", "Federation policy '%s' already exists." % policy_id)
            if len(self._children(parent)) >= MAX_POLICIES:
                raise ApiError(400, "RESOURCE_LIMIT_EXCEEDED",
                               "Cannot create more than %d federation policies for %s." % (MAX_POLICIES, parent))
            stored = self._finish(policy, sp_id)
            now = _now()
            stored.update(name=name, policy_id=policy_id, uid=str(uuid.uuid4()), create_time=now, update_time=now)
            if sp_id is not None:
                stored["service_principal_id"] = int(sp_id)
            self.fake.federation_policies[name] = stored
            return Response.json(stored)

    def get(self, req: Request, account_id: str, policy_id: str, sp_id: str = None) -> Response:
        name = "%s/federationPolicies/%s" % (self._parent(req, account_id, sp_id), policy_id)
        with self.fake.lock:
            return Response.json(self._existing(name, policy_id))

    def list(self, req: Request, account_id: str, sp_id: str = None) -> Response:
        parent = self._parent(req, account_id, sp_id)
        try:
            size = int(req.arg("page_size") or DEFAULT_PAGE_SIZE)
            start = int(req.arg("page_token") or 0)
        except ValueError:
            raise _bad("page_size and page_token must come from this API.")
        if size <= 0 or start < 0:
            raise _bad("page_size must be positive.")
        with self.fake.lock:
            policies = self._children(parent)
            result = {"policies": policies[start:start + size]}
        if start + size < len(policies):
            result["next_page_token"] = str(start + size)
        return Response.json(result)

    def update(self, req: Request, account_id: str, policy_id: str, sp_id: str = None) -> Response:
        name = "%s/federationPolicies/%s" % (self._parent(req, account_id, sp_id), policy_id)
        body = self._body(req)
        self._check_name(body, name)
        mask = req.arg("update_mask")
        with self.fake.lock:
            current = self._existing(name, policy_id)
            mutable = {k: copy.deepcopy(current.get(k)) for k in MUTABLE_FIELDS}
            for path in self._mask_paths(mask, body):
                _apply(mutable, body, path)
            stored = self._finish(mutable, sp_id)
            stored.update({k: current[k] for k in OUTPUT_ONLY if k in current})
            stored["update_time"] = _now()
            self.fake.federation_policies[name] = stored
            return Response.json(stored)

    def delete(self, req: Request, account_id: str, policy_id: str, sp_id: str = None) -> Response:
        name = "%s/federationPolicies/%s" % (self._parent(req, account_id, sp_id), policy_id)
        with self.fake.lock:
            self._existing(name, policy_id)
            del self.fake.federation_policies[name]
        return Response.json({})

    # -- helpers -----------------------------------------------------------------
    def _parent(self, req: Request, account_id: str, sp_id) -> str:
        """Authenticate, then the resource name of the policies' owner (account or SP)."""
        self.fake.authenticate(req)
        if account_id != self.fake.account_id:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Account %s does not exist." % account_id)
        parent = "accounts/%s" % account_id
        if sp_id is None:
            return parent
        if not sp_id.isdigit() or int(sp_id) not in self.fake.service_principals.values():
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST",
                           "Service principal %s does not exist (use the numeric id, not the application id)."
                           % sp_id)
        return "%s/servicePrincipals/%s" % (parent, sp_id)

    def _children(self, parent: str):
        prefix = parent + "/federationPolicies/"
        return [copy.deepcopy(p) for n, p in self.fake.federation_policies.items() if n.startswith(prefix)]

    def _existing(self, name: str, policy_id: str) -> dict:
        policy = self.fake.federation_policies.get(name)
        if policy is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Federation policy '%s' does not exist." % policy_id)
        return copy.deepcopy(policy)

    @staticmethod
    def _body(req: Request) -> dict:
        try:
            body = req.json()
        except ValueError:
            raise ApiError(400, "MALFORMED_REQUEST", "Request body is not valid JSON.")
        if not isinstance(body, dict):
            raise ApiError(400, "MALFORMED_REQUEST", "Request body must be a JSON object.")
        if "policy" in body:
            raise _bad("Unknown field 'policy': the request body is the policy itself.")
        unknown = set(body) - set(MUTABLE_FIELDS) - set(OUTPUT_ONLY)
        if unknown:
            raise _bad("Unknown field(s): %s." % ", ".join(sorted(unknown)))
        return body

    @staticmethod
    def _check_name(body: dict, name: str) -> None:
        if body.get("name") not in (None, name):
            raise _bad("name '%s' does not match the request URL (%s)." % (body["name"], name))

    @staticmethod
    def _mask_paths(mask, body: dict):
        if mask is None:  # no mask: the fields set in the body overwrite
            return [k for k in MUTABLE_FIELDS if k in body]
        paths = [p.strip() for p in mask.split(",") if p.strip()]
        if paths == ["*"]:
            return list(MUTABLE_FIELDS)
        allowed = set(MUTABLE_FIELDS) | {"oidc_policy." + f for f in OIDC_FIELDS}
        bad = [p for p in paths if p not in allowed]
        if bad or not paths:
            raise _bad("Invalid update_mask '%s': allowed paths are *, %s." % (mask, ", ".join(sorted(allowed))))
        return paths

    def _finish(self, policy: dict, sp_id) -> dict:
        """Validate a policy's mutable part and fill the server defaults, as GET shows them."""
        oidc = policy.get("oidc_policy")
        if not isinstance(oidc, dict) or not oidc.get("issuer"):
            raise _bad("oidc_policy.issuer is required.")
        unknown = set(oidc) - set(OIDC_FIELDS)
        if unknown:
            raise _bad("Unknown field(s) in oidc_policy: %s." % ", ".join(sorted(unknown)))
        if not str(oidc["issuer"]).startswith("https://"):
            raise _bad("oidc_policy.issuer must be an https URL.")
        audiences = oidc.get("audiences")
        if audiences is not None and (not isinstance(audiences, list)
                                      or not all(isinstance(a, str) and a for a in audiences)):
            raise _bad("oidc_policy.audiences must be a list of non-empty strings.")
        if sp_id is None and oidc.get("subject") is not None:
            raise _bad("oidc_policy.subject must not be set for account federation policies.")
        if sp_id is not None and not oidc.get("subject"):
            raise _bad("oidc_policy.subject is required for service principal federation policies.")
        if oidc.get("jwks_json") and oidc.get("jwks_uri"):
            raise _bad("Set at most one of oidc_policy.jwks_json and oidc_policy.jwks_uri.")
        oidc = {k: v for k, v in oidc.items() if v is not None}
        if not oidc.get("audiences"):
            oidc["audiences"] = [self.fake.account_id]
        oidc.setdefault("subject_claim", "sub")
        result = {"oidc_policy": oidc}
        if policy.get("description") is not None:
            result["description"] = policy["description"]
        return result


def _apply(target: dict, body: dict, path: str) -> None:
    """Copy one update_mask path from body into target; a path absent from the body clears it."""
    if "." not in path:
        target[path] = copy.deepcopy(body.get(path))
        return
    field = path.split(".", 1)[1]
    oidc = dict(target.get("oidc_policy") or {})
    oidc[field] = copy.deepcopy((body.get("oidc_policy") or {}).get(field))
    target["oidc_policy"] = oidc
