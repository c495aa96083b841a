"""federation_policy: what counts as drift, which update_mask paths a PATCH names, and the module's calls.

The module tests run `main()` in-process against the fake account API (plain HTTP), so they see
the real request log without the cost of ansible-playbook.
"""

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.databricks_claude.gateway.plugins.module_utils import federation
from ansible_collections.databricks_claude.gateway.plugins.modules import federation_policy, federation_policy_info
from tests.support.fake_databricks import make_fake

ISSUER = "https://login.microsoftonline.com/tenant/v2.0"
JWKS = '{"keys": [{"kty": "RSA", "kid": "k1", "n": "abc", "e": "AQAB"}]}'


def params(**kw):
    base = dict((f, None) for f in federation.OIDC_FIELDS)
    base["description"] = None
    base.update(kw)
    return base


def current(**oidc):
    return {"policy_id": "p", "description": "d", "uid": "u", "create_time": "t",
            "oidc_policy": dict({"issuer": ISSUER, "audiences": ["acc-1"], "subject_claim": "sub"}, **oidc)}


# -- comparison and update_mask ------------------------------------------------------------------------

def test_unset_options_are_not_drift():
    assert federation.changed_paths(federation.desired_policy(params(issuer=ISSUER)), current()) == []


def test_only_differing_fields_are_named():
    desired = federation.desired_policy(params(issuer=ISSUER, audiences=["app"], subject_claim="sub",
                                               description="new"))
    assert federation.changed_paths(desired, current()) == ["description", "oidc_policy.audiences"]


def test_audience_order_does_not_matter_but_an_extra_audience_does():
    desired = federation.desired_policy(params(issuer=ISSUER, audiences=["b", "a"]))
    assert federation.changed_paths(desired, current(audiences=["a", "b"])) == []
    assert federation.changed_paths(desired, current(audiences=["a", "b", "c"])) == ["oidc_policy.audiences"]


def test_jwks_json_compared_as_json_not_text():
    desired = federation.desired_policy(params(issuer=ISSUER, jwks_json=JWKS))
    assert federation.changed_paths(desired, current(jwks_json=json.dumps(json.loads(JWKS), indent=2))) == []


def test_switching_jwks_uri_to_json_clears_the_uri():
    desired = federation.desired_policy(params(issuer=ISSUER, jwks_json=JWKS))
    paths = federation.changed_paths(desired, current(jwks_uri="https://idp/keys"))
    assert paths == ["oidc_policy.jwks_json", "oidc_policy.jwks_uri"]
    assert federation.update_body(desired, current(jwks_uri="https://idp/keys"), ["oidc_policy"]) == {
        "oidc_policy": {"issuer": ISSUER, "audiences": ["acc-1"], "subject_claim": "sub", "jwks_json": JWKS}}
    after = federation.predict(current(jwks_uri="https://idp/keys"), desired, paths)
    assert after["oidc_policy"]["jwks_json"] == JWKS and "jwks_uri" not in after["oidc_policy"]


def test_empty_description_equals_none():
    desired = federation.desired_policy(params(issuer=ISSUER, description=""))
    policy = current()
    del policy["description"]
    assert federation.changed_paths(desired, policy) == []
    assert federation.changed_paths(desired, current()) == ["description"]


def test_update_sends_the_whole_oidc_policy_as_terraform_does():
    """terraform-provider-databricks: UpdateMask "description,oidc_policy" with the whole policy in the body."""
    desired = federation.desired_policy(params(issuer=ISSUER, audiences=["app"], subject_claim="email",
                                               description="d"))
    paths = federation.changed_paths(desired, current())
    assert paths == ["oidc_policy.audiences", "oidc_policy.subject_claim"]
    assert federation.update_mask(paths) == ["oidc_policy"]
    assert federation.update_body(desired, current(), ["oidc_policy"]) == {
        "oidc_policy": {"issuer": ISSUER, "audiences": ["app"], "subject_claim": "email"}}
    assert federation.update_mask(["description", "oidc_policy.issuer"]) == ["description", "oidc_policy"]


def test_create_body_omits_fields_managed_as_absent():
    desired = federation.desired_policy(params(issuer=ISSUER, jwks_uri="https://idp/keys"))
    assert federation.create_body(desired) == {"oidc_policy": {"issuer": ISSUER, "jwks_uri": "https://idp/keys"}}


def test_paths():
    assert federation.collection_path("a") == "/api/2.0/accounts/a/federationPolicies"
    assert federation.policy_path("a", "p", 7) == "/api/2.0/accounts/a/servicePrincipals/7/federationPolicies/p"


# -- the module against the fake -----------------------------------------------------------------------

class Exit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


@pytest.fixture
def run(monkeypatch):
    fake = make_fake()
    fake.start()
    token = fake.issue_token("admin@example.test", 3600)
    fake.service_principals["ci-app"] = 1001

    def exit_json(self, **kw):
        raise Exit(dict(kw, failed=False))

    def fail_json(self, **kw):
        raise Exit(dict(kw, failed=True))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def call(module=federation_policy, check=False, diff=False, **args):
        args = dict(host=fake.url, account_id="acc-1", token=token, _ansible_check_mode=check,
                    _ansible_diff=diff, **args)
        with patch_module_args(args):
            with pytest.raises(Exit) as e:
                module.main()
        return e.value.result

    yield fake, call
    fake.stop()


ENTRA = dict(policy_id="entra", issuer=ISSUER, audiences=["app"], subject_claim="preferred_username")


def test_create_then_noop_then_update_names_only_the_change(run):
    fake, call = run
    assert call(**ENTRA)["changed"] is True
    fake.reset_log()
    result = call(**ENTRA)
    assert result["changed"] is False and fake.writes() == []
    assert [r.method for r in fake.calls("/api/2.0/accounts")] == ["GET"]

    result = call(**dict(ENTRA, audiences=["app", "second"]))
    assert result["changed"] is True and result["update_mask"] == ["oidc_policy"]
    (patch,) = fake.writes()
    assert patch.method == "PATCH" and patch.arg("update_mask") == "oidc_policy"
    assert patch.json() == {"oidc_policy": {"issuer": ISSUER, "audiences": ["app", "second"],
                                            "subject_claim": "preferred_username"}}


def test_check_mode_predicts_without_writing(run):
    fake, call = run
    result = call(check=True, diff=True, **ENTRA)
    assert result["changed"] is True and fake.writes() == [] and fake.federation_policies == {}
    assert result["diff"]["before"] == {} and result["diff"]["after"]["oidc_policy"]["audiences"] == ["app"]
    call(**ENTRA)
    fake.reset_log()
    result = call(check=True, diff=True, **dict(ENTRA, subject_claim="email"))
    assert result["changed"] is True and result["update_mask"] == ["oidc_policy"]
    assert fake.writes() == []
    assert result["diff"]["before"]["oidc_policy"]["subject_claim"] == "preferred_username"
    assert result["diff"]["after"]["oidc_policy"]["subject_claim"] == "email"


def test_clearing_a_field_by_leaving_it_out_of_the_whole_policy(run):
    """Switching jwks_uri -> jwks_json clears jwks_uri, and description "" clears the description."""
    fake, call = run
    call(**dict(ENTRA, jwks_uri="https://idp.example.test/keys", description="first"))
    fake.reset_log()
    result = call(**dict(ENTRA, jwks_json=JWKS, description=""))
    assert result["changed"] is True and result["update_mask"] == ["description", "oidc_policy"]
    (patch,) = fake.writes()
    assert "jwks_uri" not in patch.json()["oidc_policy"] and "description" not in patch.json()
    stored = fake.federation_policies["accounts/acc-1/federationPolicies/entra"]
    assert "jwks_uri" not in stored["oidc_policy"] and stored["oidc_policy"]["jwks_json"] == JWKS
    assert "description" not in stored
    assert stored["oidc_policy"]["subject_claim"] == "preferred_username"  # kept: sent whole
    assert call(**dict(ENTRA, jwks_json=JWKS, description=""))["changed"] is False


def test_drift_behind_ansibles_back_is_repaired(run):
    fake, call = run
    call(**ENTRA)
    fake.federation_policies["accounts/acc-1/federationPolicies/entra"]["oidc_policy"]["audiences"].append("evil")
    result = call(**ENTRA)
    assert result["changed"] is True and result["policy"]["oidc_policy"]["audiences"] == ["app"]


def test_found_by_issuer_without_policy_id(run):
    fake, call = run
    args = dict(ENTRA)
    del args["policy_id"]
    created = call(**args)["policy"]
    fake.reset_log()
    assert call(**args)["changed"] is False
    assert [(r.method, r.path) for r in fake.calls("/api/2.0/accounts")] == [
        ("GET", "/api/2.0/accounts/acc-1/federationPolicies")]
    call(policy_id="second", issuer=ISSUER)
    result = call(**args)
    assert result["failed"] and "2 policies match" in result["msg"] and created["policy_id"] in result["msg"]


def test_absent_deletes_and_is_idempotent(run):
    fake, call = run
    call(**ENTRA)
    fake.reset_log()
    predicted = call(policy_id="entra", state="absent", check=True, diff=True)
    assert predicted["changed"] is True and predicted["diff"]["after"] == {} and fake.writes() == []
    assert call(policy_id="entra", state="absent")["changed"] is True
    assert fake.federation_policies == {}
    fake.reset_log()
    assert call(policy_id="entra", state="absent")["changed"] is False and fake.writes() == []


def test_service_principal_policy_needs_subject(run):
    fake, call = run
    result = call(service_principal_id=1001, policy_id="ci", issuer=ISSUER)
    assert result["failed"] and result["msg"] == "subject is required for a service principal federation policy"
    result = call(policy_id="ci", issuer=ISSUER, subject="x")
    assert result["failed"] and "service_principal_id" in result["msg"]
    assert fake.writes() == []
    result = call(service_principal_id=1001, policy_id="ci", issuer=ISSUER, subject="repo:x")
    assert result["changed"] and result["policy"]["service_principal_id"] == 1001


def test_service_errors_name_action_resource_and_cause(run):
    fake, call = run
    result = call(**dict(ENTRA, policy_id="Bad_Id"))
    assert result["failed"] and result["msg"].startswith("create federation policy Bad_Id: Invalid policy_id")
    assert (result["status"], result["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_info_lists_and_filters(run):
    fake, call = run
    call(**ENTRA)
    call(policy_id="other", issuer="https://idp.example.test")
    fake.reset_log()
    assert len(call(federation_policy_info)["policies"]) == 2
    (only,) = call(federation_policy_info, issuer=ISSUER)["policies"]
    assert only["policy_id"] == "entra"
    assert call(federation_policy_info, policy_id="missing")["policies"] == []
    assert fake.writes() == []


def test_info_follows_next_page_token(run, monkeypatch):
    fake, call = run
    for i in range(3):
        call(policy_id="p%d" % i, issuer=ISSUER)
    monkeypatch.setattr(federation, "PAGE_SIZE", 2)
    fake.reset_log()
    assert [p["policy_id"] for p in call(federation_policy_info)["policies"]] == ["p0", "p1", "p2"]
    pages = fake.calls("/federationPolicies$", method="GET")
    assert [r.arg("page_token") for r in pages] == [None, "2"]
