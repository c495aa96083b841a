"""playbooks/admin.yml, run by its FQCN with ansible-playbook against the fake workspace + account.

The vars file is the documented example (playbooks/vars/admin.example.yml) with only the hosts,
ids and profiles swapped for the fake's, so the example itself - including its `!unsafe` secret
reference - is what these tests prove. The fake serves workspace and account APIs on one host;
the token reaches the modules through DATABRICKS_TOKEN, never argv or the vars file.
"""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "playbooks" / "vars" / "admin.example.yml"
ADMIN = "databricks_claude.gateway.admin"
ENDPOINT = "claude-code-gateway"
TENANT = "11111111-1111-1111-1111-111111111111"
CLIENT_ID = "22222222-2222-2222-2222-222222222222"
POLICY = "accounts/acc-1/federationPolicies/claude-code-entra"
SECRET_REFERENCE = "{{secrets/claude/anthropic_api_key}}"
TASKS = ("Serving endpoint", "AI Gateway config of the endpoint", "Developers may query the endpoint",
         "Account federation policy trusting the Entra ID tenant")


def example_vars(url, example=EXAMPLE, **overrides):
    """The example vars file pointed at the fake; `overrides` replace top-level scalar lines."""
    text = example.read_text()
    text = re.sub(r"(?m)^databricks_(account_)?profile:.*\n", "", text)
    values = dict(databricks_host=url, databricks_account_host=url, databricks_account_id="acc-1", **overrides)
    for key, value in values.items():
        text, n = re.subn(r"(?m)^%s:.*$" % key, "%s: %s" % (key, value), text)
        assert n == 1, "the example vars file has no top-level %s" % key
    return text


class Admin:
    def __init__(self, fake, ansible, tmp_path):
        self.fake, self.ansible, self.tmp_path = fake, ansible, tmp_path
        self.token = fake.issue_token("admin@example.test", 3600)
        fake.serving.update_seconds = 0.2

    def run(self, vars_text=None, check=False, diff=False, **overrides):
        path = self.tmp_path / "admin-vars.yml"
        path.write_text(vars_text or example_vars(self.fake.url, **overrides))
        return self.ansible.play(ADMIN, args=["-e", "@%s" % path], check=check, diff=diff,
                                 env={"DATABRICKS_TOKEN": self.token})

    def changed_tasks(self, run):
        return [t["task"] for t in run.tasks if t["result"].get("changed")]


@pytest.fixture
def admin(fake_databricks, ansible, tmp_path):
    return Admin(fake_databricks, ansible, tmp_path)


def endpoint(fake):
    return fake.serving.record(ENDPOINT)


def test_first_run_creates_everything_and_second_run_writes_nothing(admin):
    fake = admin.fake
    first = admin.run().assert_ok()
    assert admin.changed_tasks(first) == list(TASKS)

    entity = endpoint(fake)["config"]["served_entities"][0]
    assert entity["external_model"]["anthropic_config"]["anthropic_api_key"] == SECRET_REFERENCE
    policy = fake.federation_policies[POLICY]
    assert policy["oidc_policy"] == {"issuer": "https://login.microsoftonline.com/%s/v2.0" % TENANT,
                                     "audiences": [CLIENT_ID], "subject_claim": "preferred_username"}

    fake.reset_log()
    second = admin.run().assert_ok()
    assert second.changed == 0, admin.changed_tasks(second)
    assert fake.writes() == []
    # One read per resource: the endpoint and its AI Gateway config (both in the endpoint's GET),
    # its permissions (by the id the first task returned, not looked up again), the policy.
    assert len(fake.calls("^/api/2.0/serving-endpoints/%s$" % ENDPOINT, "GET")) == 2
    assert len(fake.calls("^/api/2.0/permissions/serving-endpoints/", "GET")) == 1
    assert len(fake.calls("/federationPolicies/", "GET")) == 1


def test_check_mode_predicts_and_writes_nothing(admin):
    fake = admin.fake
    predicted = admin.run(check=True, diff=True).assert_ok()
    assert admin.changed_tasks(predicted) == list(TASKS)
    assert fake.writes() == [] and fake.federation_policies == {}
    assert ENDPOINT not in fake.serving.endpoints

    admin.run().assert_ok()
    fake.reset_log()
    changed = admin.run(check=True, diff=True, gateway_subject_claim="email").assert_ok()
    assert admin.changed_tasks(changed) == [TASKS[3]]
    result = changed.result(TASKS[3])
    assert result["update_mask"] == ["oidc_policy.subject_claim"]
    assert result["diff"]["after"]["oidc_policy"]["subject_claim"] == "email"
    assert fake.writes() == []
    assert fake.federation_policies[POLICY]["oidc_policy"]["subject_claim"] == "preferred_username"


def test_drift_behind_ansibles_back_is_repaired(admin):
    fake = admin.fake
    admin.run().assert_ok()
    with fake.lock:
        fake.federation_policies[POLICY]["oidc_policy"]["audiences"].append("someone-elses-app")
        record = endpoint(fake)
        record["ai_gateway"]["rate_limits"][0]["calls"] = 100000
        del record["tags"]["team"]

    fake.reset_log()
    repaired = admin.run().assert_ok()
    assert admin.changed_tasks(repaired) == [TASKS[0], TASKS[1], TASKS[3]]
    (policy_patch,) = fake.writes("/federationPolicies/")
    assert (policy_patch.method, policy_patch.arg("update_mask")) == ("PATCH", "oidc_policy.audiences")
    (tags_patch,) = fake.writes("/tags$")
    assert tags_patch.json()["add_tags"] == [{"key": "team", "value": "platform"}]
    assert fake.federation_policies[POLICY]["oidc_policy"]["audiences"] == [CLIENT_ID]
    assert endpoint(fake)["tags"]["team"] == "platform"
    assert 100000 not in [limit.get("calls") for limit in endpoint(fake)["ai_gateway"]["rate_limits"]]

    fake.reset_log()
    assert admin.run().assert_ok().changed == 0 and fake.writes() == []


def test_absent_removes_and_is_idempotent(admin):
    fake = admin.fake
    admin.run().assert_ok()
    removed = admin.run(gateway_state="absent").assert_ok()
    assert admin.changed_tasks(removed) == [TASKS[0], TASKS[3]]
    assert ENDPOINT not in fake.serving.endpoints and fake.federation_policies == {}

    fake.reset_log()
    again = admin.run(gateway_state="absent").assert_ok()
    assert again.changed == 0 and fake.writes() == []


def test_secret_reference_without_unsafe_fails_with_the_message_users_see(admin):
    naive = example_vars(admin.fake.url).replace('!unsafe "{{secrets/', '"{{secrets/')
    assert naive != example_vars(admin.fake.url)
    run = admin.run(vars_text=naive)
    assert run.rc != 0, run.output
    assert "Error while resolving value for 'served_entities': 'secrets' is undefined" in run.output
    assert admin.fake.writes() == []


def test_secret_reference_escaped_as_a_jinja_string_also_works(admin):
    escaped = example_vars(admin.fake.url).replace(
        '!unsafe "%s"' % SECRET_REFERENCE, '"{{ \'%s\' }}"' % SECRET_REFERENCE)
    assert escaped != example_vars(admin.fake.url)
    admin.run(vars_text=escaped).assert_ok()
    entity = endpoint(admin.fake)["config"]["served_entities"][0]
    assert entity["external_model"]["anthropic_config"]["anthropic_api_key"] == SECRET_REFERENCE


def test_token_never_shown_even_with_invocation_injected(admin):
    """-vvv output with ANSIBLE_INJECT_INVOCATION (2.21 hides module args without it) never shows the token."""
    fake = admin.fake
    token = fake.issue_token("admin@example.test", 3600)
    vars_text = example_vars(fake.url) + "databricks_token: %s\n" % token
    path = admin.tmp_path / "admin-vars.yml"
    path.write_text(vars_text)
    run = admin.ansible.play(ADMIN, args=["-e", "@%s" % path], verbosity=3,
                             env={"ANSIBLE_INJECT_INVOCATION": "1"}).assert_ok()
    assert '"module_args"' in run.output and "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.output
    assert token not in run.output
    assert all(token not in str(t["result"]) for t in run.tasks)


def test_preconfigured_pay_per_token_endpoint(admin):
    """gateway_create_endpoint: false configures an endpoint that cannot be created, and never deletes it."""
    fake = admin.fake
    overrides = dict(gateway_endpoint_name="databricks-claude-sonnet-4-5", gateway_create_endpoint="false")
    first = admin.run(**overrides).assert_ok()
    assert admin.changed_tasks(first) == list(TASKS[1:])
    assert fake.serving.record("databricks-claude-sonnet-4-5")["ai_gateway"]["usage_tracking_config"]["enabled"]

    fake.reset_log()
    assert admin.run(**overrides).assert_ok().changed == 0 and fake.writes() == []

    removed = admin.run(gateway_state="absent", **overrides).assert_ok()
    assert admin.changed_tasks(removed) == [TASKS[1], TASKS[3]]
    assert "databricks-claude-sonnet-4-5" in fake.serving.endpoints and fake.federation_policies == {}
    gateway = fake.serving.record("databricks-claude-sonnet-4-5")["ai_gateway"]
    assert not gateway.get("rate_limits") and not gateway.get("guardrails")
    assert not any(part.get("enabled") for part in gateway.values() if isinstance(part, dict))
