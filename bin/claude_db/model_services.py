"""May the signed-in user query each Unity AI Gateway model service the config names? (`doctor`, ai-gateway)

Querying a model service takes USE_CATALOG on its catalog, USE_SCHEMA on its schema and EXECUTE on it,
each held by the user or a group they are in, granted there or on a parent (Unity Catalog privileges
are inherited downward), or ownership of the model service. Every call is one the SDK makes
(databricks-sdk 0.162): GET /api/2.0/preview/scim/v2/Me (CurrentUserAPI.me),
GET /api/2.1/unity-catalog/model-services/{c.s.name} (AiGatewayAPI.get_model_service) and
GET /api/2.1/unity-catalog/effective-permissions/{type}/{name} (GrantsAPI.get_effective, paged).
Effective permissions are listed per principal, so the user's groups are matched here: SCIM's
`groups`, plus `account users`, which every user of the account is in.
"""

from urllib.parse import quote

from .config import CONTEXT_1M_SUFFIX, SLOTS
from .errors import AuthError

ALL_USERS = "account users"
NEEDED = (("CATALOG", 1, "USE_CATALOG"), ("SCHEMA", 2, "USE_SCHEMA"), ("MODEL_SERVICE", 3, "EXECUTE"))
_WORDS = {"CATALOG": "catalog", "SCHEMA": "schema", "MODEL_SERVICE": "model service"}
_PARENTS = {"CATALOG": "", "SCHEMA": " (or its catalog)", "MODEL_SERVICE": " (or its schema or catalog)"}
MAX_PAGES = 50


def configured(config) -> list:
    """[(model service, [slots naming it])], slots being `model` and opus/sonnet/haiku; Claude Code's [1m] off."""
    named = {}
    for slot, name in [("model", config.main_model)] + [(s, config.models[s]) for s in SLOTS]:
        if name.lower().endswith(CONTEXT_1M_SUFFIX):
            name = name[:-len(CONTEXT_1M_SUFFIX)]
        named.setdefault(name, []).append(slot)
    return sorted(named.items())


class Workspace:
    """GETs against the workspace with the user's Databricks token; JSON back, or AuthError (exit 1)."""

    def __init__(self, config, token):
        import requests
        self._requests = requests
        self._host = config.databricks_host
        self._headers = {"Authorization": "Bearer " + token.access_token, "Accept": "application/json"}

    def get(self, path: str, **params):
        """(HTTP status, JSON body or {})."""
        try:
            response = self._requests.get(self._host + path, params=params, headers=self._headers, timeout=(10, 30),
                                          auth=lambda r: r)
        except self._requests.exceptions.RequestException as e:
            raise AuthError("cannot reach %s (%s); check your network" % (self._host, type(e).__name__))
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}


class DatabricksUser:
    """The signed-in Databricks user: name, groups, and every principal whose grants count for them."""

    __slots__ = ("name", "groups", "holders")

    def __init__(self, name: str, groups: list):
        self.name = name
        self.groups = groups
        self.holders = {name, ALL_USERS, *groups}

    def __str__(self):
        return "%s (groups: %s)" % (self.name, ", ".join(self.groups) or "none")


def signed_in_user(workspace: Workspace) -> DatabricksUser:
    """Who the token belongs to (SCIM Me), or AuthError."""
    status, me = workspace.get("/api/2.0/preview/scim/v2/Me")
    if status != 200 or not me.get("userName"):
        raise AuthError("Databricks did not say who the token belongs to (HTTP %d %s); try again later"
                        % (status, me.get("message", "")))
    return DatabricksUser(me["userName"], [g["display"] for g in me.get("groups") or [] if g.get("display")])


def check(workspace: Workspace, user: DatabricksUser, name: str, slots: list) -> str:
    """One line for the model service `name`: who grants the user what querying it needs, or AuthError."""
    user_name, holders = user.name, user.holders
    which = "%s %s" % ("slot" if len(slots) == 1 else "slots", ", ".join(slots))
    status, service = workspace.get("/api/2.1/unity-catalog/model-services/" + quote(name))
    if status == 404:
        raise AuthError("%s: no model service %s in the workspace; fix: an admin creates it (playbooks/admin.yml "
                        "with gateway_kind: unity), or name an existing one in the config" % (which, name))
    if status != 200:
        raise AuthError("%s: cannot read model service %s (HTTP %d: %s); fix: an admin grants you USE_CATALOG, "
                        "USE_SCHEMA and EXECUTE on it" % (which, name, status, service.get("message", "")))
    if service.get("effective_owner") in holders:
        return "%s: %s owns it" % (which, user_name)
    parts = name.split(".")
    found = []
    for securable, depth, privilege in NEEDED:
        on = "%s %s" % (_WORDS[securable], ".".join(parts[:depth]))
        holder, source = _held_by(workspace, securable, ".".join(parts[:depth]), privilege, holders)
        if holder is None:
            raise AuthError("%s: %s may not query model service %s: no %s on %s; fix: an admin grants %s on %s%s "
                            "to you or a group you are in" % (which, user_name, name, privilege, on, privilege, on,
                                                              _PARENTS[securable]))
        found.append("%s%s%s" % (privilege, "" if holder == user_name else " via " + holder, source))
    return "%s: may query it (%s)" % (which, "; ".join(found))


def _held_by(workspace: Workspace, securable: str, full_name: str, privilege: str, holders: set):
    """(principal, " from <parent>" or "") that holds `privilege` for the user, or (None, "")."""
    path = "/api/2.1/unity-catalog/effective-permissions/%s/%s" % (securable, quote(full_name))
    page_token = None
    for _page in range(MAX_PAGES):
        params = {"max_results": 0}
        if page_token:
            params["page_token"] = page_token
        status, page = workspace.get(path, **params)
        if status != 200:
            raise AuthError("cannot read the privileges on %s %s (HTTP %d: %s); try again later, or ask an admin"
                            % (_WORDS[securable], full_name, status, page.get("message", "")))
        for assignment in page.get("privilege_assignments") or []:
            if assignment.get("principal") not in holders:
                continue
            for held in assignment.get("privileges") or []:
                if held.get("privilege") in (privilege, "ALL_PRIVILEGES"):
                    parent, kind = held.get("inherited_from_name"), held.get("inherited_from_type") or ""
                    return assignment["principal"], " from %s %s" % (_WORDS.get(kind, kind), parent) if parent else ""
        page_token = page.get("next_page_token")
        if not page_token:
            break
    return None, ""
