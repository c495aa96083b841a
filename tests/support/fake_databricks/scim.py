"""The caller's workspace identity: GET /api/2.0/preview/scim/v2/Me (SDK CurrentUserAPI.me, iam.User).

`groups` lists the groups the caller is a direct member of (ComplexValue display/value/$ref), from
the Unity Catalog area's groups; the built-in `account users` group is implicit and not listed.
"""

import hashlib

from .server import Request, Response

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def register(fake) -> None:
    fake.route("GET", r"/api/2\.0/preview/scim/v2/Me", lambda req: me(fake, req))


def me(fake, req: Request) -> Response:
    user = fake.authenticate(req)
    groups = sorted(g for g, members in fake.unity.groups.items() if user in members)
    return Response.json({
        "schemas": [USER_SCHEMA], "id": _id(user), "userName": user, "displayName": user.split("@")[0],
        "active": True, "emails": [{"value": user, "type": "work", "primary": True}],
        "groups": [{"display": g, "value": _id(g), "$ref": "Groups/" + _id(g)} for g in groups]})


def _id(name: str) -> str:
    return str(int(hashlib.sha256(name.encode()).hexdigest()[:12], 16))
