"""The fake's federation-policy API behaves like §C of the facts (the module tests rely on it)."""

import json

import pytest

from tests.support.fake_databricks import Request, make_fake
from tests.support.fake_databricks.accounts import MAX_POLICIES

BASE = "/api/2.0/accounts/acc-1"
ISSUER = "https://login.microsoftonline.com/tenant/v2.0"


@pytest.fixture
def api():
    fake = make_fake()
    token = fake.issue_token("admin@example.test", 3600)
    fake.service_principals["app-1"] = 1001

    def call(method, path, body=None, token=token, **query):
        req = Request(method=method, path=path, query={k: [str(v)] for k, v in query.items()},
                      headers={"authorization": "Bearer " + token} if token else {},
                      body=json.dumps(body).encode() if body is not None else b"")
        resp = fake.dispatch(req)
        return resp.status, json.loads(resp.body or b"{}")

    call.fake = fake
    return call


def oidc(**extra):
    return dict({"issuer": ISSUER, "audiences": ["app"], "subject_claim": "preferred_username"}, **extra)


def test_create_fills_output_only_fields_and_defaults(api):
    status, body = api("POST", BASE + "/federationPolicies", {"oidc_policy": {"issuer": ISSUER}}, policy_id="entra")
    assert status == 200
    assert body["name"] == "accounts/acc-1/federationPolicies/entra"
    assert body["policy_id"] == "entra" and body["uid"] and body["create_time"] == body["update_time"]
    assert body["oidc_policy"] == {"issuer": ISSUER, "audiences": ["acc-1"], "subject_claim": "sub"}
    assert api.fake.federation_policies[body["name"]] == api("GET", BASE + "/federationPolicies/entra")[1]


def test_server_assigns_an_id_when_none_is_given(api):
    status, body = api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()})
    assert status == 200 and len(body["policy_id"]) >= 2


@pytest.mark.parametrize("policy_id", ["A", "x", "has_underscore", "UPPER", "a" * 64])
def test_policy_id_charset_and_length(api, policy_id):
    status, body = api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()}, policy_id=policy_id)
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_duplicate_id_conflicts(api):
    api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()}, policy_id="entra")
    status, body = api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()}, policy_id="entra")
    assert (status, body["error_code"]) == (409, "RESOURCE_ALREADY_EXISTS")


def test_subject_forbidden_for_account_and_required_for_sp(api):
    status, body = api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc(subject="x")})
    assert status == 400 and "must not be set" in body["message"]
    status, body = api("POST", BASE + "/servicePrincipals/1001/federationPolicies", {"oidc_policy": oidc()})
    assert status == 400 and "required" in body["message"]
    status, body = api("POST", BASE + "/servicePrincipals/1001/federationPolicies",
                       {"oidc_policy": oidc(subject="wl")}, policy_id="ci")
    assert status == 200 and body["service_principal_id"] == 1001
    assert body["name"] == "accounts/acc-1/servicePrincipals/1001/federationPolicies/ci"


def test_unknown_service_principal_is_404(api):
    status, body = api("POST", BASE + "/servicePrincipals/app-1/federationPolicies", {"oidc_policy": oidc(subject="s")})
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST") and "numeric" in body["message"]


def test_wrapped_body_is_refused(api):
    status, body = api("POST", BASE + "/federationPolicies", {"policy": {"oidc_policy": oidc()}})
    assert status == 400 and "policy itself" in body["message"]


def test_patch_changes_only_masked_fields(api):
    api("POST", BASE + "/federationPolicies", {"description": "d", "oidc_policy": oidc()}, policy_id="p1")
    status, body = api("PATCH", BASE + "/federationPolicies/p1",
                       {"description": "ignored", "oidc_policy": {"audiences": ["a", "b"], "issuer": "https://x"}},
                       update_mask="oidc_policy.audiences")
    assert status == 200
    assert body["description"] == "d"
    assert body["oidc_policy"] == oidc(audiences=["a", "b"])
    assert body["update_time"] >= body["create_time"]


def test_patch_star_replaces_everything(api):
    api("POST", BASE + "/federationPolicies", {"description": "d", "oidc_policy": oidc()}, policy_id="p1")
    status, body = api("PATCH", BASE + "/federationPolicies/p1", {"oidc_policy": {"issuer": ISSUER}}, update_mask="*")
    assert status == 200 and "description" not in body
    assert body["oidc_policy"] == {"issuer": ISSUER, "audiences": ["acc-1"], "subject_claim": "sub"}


def test_patch_with_unknown_mask_path_is_refused(api):
    api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()}, policy_id="p1")
    status, body = api("PATCH", BASE + "/federationPolicies/p1", {"oidc_policy": oidc()}, update_mask="uid")
    assert status == 400 and "update_mask" in body["message"]


def test_list_paginates(api):
    for i in range(5):
        api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()}, policy_id="p%d" % i)
    seen, token = [], None
    while True:
        query = {"page_size": 2}
        if token:
            query["page_token"] = token
        body = api("GET", BASE + "/federationPolicies", **query)[1]
        seen += [p["policy_id"] for p in body["policies"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == ["p0", "p1", "p2", "p3", "p4"]


def test_limit_of_twenty_policies(api):
    for i in range(MAX_POLICIES):
        assert api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()}, policy_id="p%d" % i)[0] == 200
    status, body = api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()}, policy_id="one-more")
    assert status == 400 and "20" in body["message"]
    # The limit is per owner: a service principal still has room.
    assert api("POST", BASE + "/servicePrincipals/1001/federationPolicies", {"oidc_policy": oidc(subject="s")})[0] == 200


def test_delete_then_404(api):
    api("POST", BASE + "/federationPolicies", {"oidc_policy": oidc()}, policy_id="p1")
    assert api("DELETE", BASE + "/federationPolicies/p1")[0] == 200
    status, body = api("GET", BASE + "/federationPolicies/p1")
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert api("DELETE", BASE + "/federationPolicies/p1")[0] == 404


def test_requires_a_valid_bearer_token(api):
    assert api("GET", BASE + "/federationPolicies", token=None)[0] == 401
    invalid = {"error_code": "403", "message": "Invalid Token"}
    assert api("GET", BASE + "/federationPolicies", token="bogus") == (403, invalid)


def test_other_account_is_404(api):
    assert api("GET", "/api/2.0/accounts/other/federationPolicies")[0] == 404
