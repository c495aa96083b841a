"""playbooks/admin.yml with gateway_kind: unity, from the documented playbooks/vars/admin.unity.example.yml.

The example vars file itself (only hosts, ids and profiles swapped for the fake's) is what these tests
run, so its provider service, the three slot model services, the developers' grants and the federation
policy are what is proven to converge and then stay put.
"""

import pytest

from tests.integration.test_admin_playbook import POLICY, REPO, Admin, example_vars

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "playbooks" / "vars" / "admin.unity.example.yml"
SLOTS = {"opus": "main.ai.claude_opus", "sonnet": "main.ai.claude_sonnet", "haiku": "main.ai.claude_haiku"}
DEVELOPER = "alice@example.test"  # a member of claude-code-developers in the fake


class UnityAdmin(Admin):
    def run(self, vars_text=None, check=False, diff=False, **overrides):
        return super().run(vars_text or example_vars(self.fake.url, EXAMPLE, **overrides), check, diff)


@pytest.fixture
def admin(fake_databricks, ansible, tmp_path):
    return UnityAdmin(fake_databricks, ansible, tmp_path)


def test_unity_twice_second_run_reads_once_and_writes_nothing(admin):
    fake = admin.fake
    first = admin.run().assert_ok()
    assert admin.changed_tasks(first) == [
        "Model provider service", "Model services", "Developers may use the catalog and schema",
        "Developers may query the model services", "Account federation policy trusting the Entra ID tenant"]
    assert fake.serving.endpoints.keys() >= {"databricks-claude-sonnet-4-5"}  # the legacy path is untouched
    assert "claude-code-gateway" not in fake.serving.endpoints
    for full_name in SLOTS.values():
        assert fake.unity.missing_to_query(DEVELOPER, full_name) is None, full_name
    assert fake.unity.model_service(SLOTS["sonnet"])["config"]["rate_limits"]
    assert POLICY in fake.federation_policies

    fake.reset_log()
    second = admin.run().assert_ok()
    assert second.changed == 0, admin.changed_tasks(second)
    assert fake.writes() == []
    # one read per resource: provider, 3 model services, catalog + schema + 3 model service grants, the policy
    assert len(fake.calls("/unity-catalog/model-provider-services/", "GET")) == 1
    assert len(fake.calls("/unity-catalog/model-services/", "GET")) == 3
    assert len(fake.calls("/unity-catalog/permissions/", "GET")) == 5
    assert len(fake.calls("/federationPolicies/", "GET")) == 1


def test_unity_absent_removes_what_it_made(admin):
    fake = admin.fake
    admin.run().assert_ok()
    removed = admin.run(gateway_state="absent").assert_ok()
    assert removed.changed == 5
    assert all(fake.unity.model_service(n) is None for n in SLOTS.values())
    assert fake.unity.model_provider_service("main.ai.anthropic") is None
    assert not fake.unity.has_privilege(DEVELOPER, "SCHEMA", "main.ai", "USE_SCHEMA")
    assert fake.unity.missing_to_query(DEVELOPER, "system.ai.claude-haiku-4-5") is None  # not ours: kept
    assert fake.federation_policies == {}

    fake.reset_log()
    again = admin.run(gateway_state="absent").assert_ok()
    assert again.changed == 0 and fake.writes() == []
