"""The Unity AI Gateway modules, run by ansible-playbook against the fake workspace over HTTPS.

Each test names the behaviour (or the service quirk) it guards; the fake logs every request, so "no
write" and "one read per resource" are asserted on what went over the wire.
"""

import json
import textwrap

import pytest

pytestmark = pytest.mark.slow

SERVICE = "main.ai.claude-sonnet"
PROVIDER = "main.ai.anthropic"
GROUP = "claude-code-developers"

PROVIDER_TASK = """
- name: provider
  databricks_claude.gateway.model_provider_service:
    catalog: main
    schema: ai
    name: anthropic
    comment: Anthropic, billed to the platform team
    api_key_secret: main.ai.anthropic_api_key
    targets:
      - {model: claude-sonnet-4-5, native_api_types: [anthropic/v1/messages]}
      - {model: claude-haiku-4-5, native_api_types: [anthropic/v1/messages]}
"""

SERVICE_TASK = """
- name: service
  databricks_claude.gateway.model_service:
    catalog: main
    schema: ai
    name: claude-sonnet
    comment: Claude Code, sonnet slot
    destinations:
      - {model: system.ai.databricks-claude-sonnet-4-5, traffic_percentage: 80}
      - {model_provider_service: main.ai.anthropic, model: claude-sonnet-4-5, traffic_percentage: 20}
    fallback_destinations:
      - {model_provider_service: main.ai.anthropic, model: claude-haiku-4-5}
    rate_limits:
      - {key: user_default, requests: 60, tokens: 400000}
      - {key: service, requests: 1000, renewal_period: hour}
      - {key: user_group, principal: claude-code-developers, tokens: 5000000, renewal_period: hour}
    inference_table: {catalog_name: main, schema_name: ai}
"""

GRANT_TASKS = """
- name: use catalog
  databricks_claude.gateway.grants:
    securable_type: catalog
    full_name: main
    grants: [{principal: claude-code-developers, privileges: [USE_CATALOG]}]
- name: use schema
  databricks_claude.gateway.grants:
    securable_type: schema
    full_name: main.ai
    grants: [{principal: claude-code-developers, privileges: [USE_SCHEMA]}]
- name: execute
  databricks_claude.gateway.grants:
    securable_type: model_service
    full_name: main.ai.claude-sonnet
    grants: [{principal: claude-code-developers, privileges: [EXECUTE]}]
"""

INFO_TASK = """
- name: info
  databricks_claude.gateway.model_service_info:
    catalog: main
    schema: ai
"""

ALL = (PROVIDER_TASK, SERVICE_TASK, GRANT_TASKS)
CONNECTION = 'host: "{{ databricks_host }}"\ntoken: "{{ databricks_token }}"'


def playbook(*tasks: str) -> str:
    body = "".join(textwrap.indent(textwrap.dedent(t).strip("\n"), "    ") + "\n" for t in tasks)
    return textwrap.dedent("""\
        - name: unity modules
          hosts: localhost
          gather_facts: false
          module_defaults:
            group/databricks_claude.gateway.databricks:
        """) + textwrap.indent(CONNECTION, "      ") + "\n  tasks:\n" + body


def absent(task: str) -> str:
    """The same service task with state: absent (its other options ignored)."""
    return task.replace("    name: anthropic\n", "    name: anthropic\n    state: absent\n").replace(
        "    name: claude-sonnet\n", "    name: claude-sonnet\n    state: absent\n")


@pytest.fixture
def ws(fake_databricks):
    token = fake_databricks.issue_token("admin@example.test", 3600)
    return fake_databricks, {"databricks_host": fake_databricks.url, "databricks_token": token}


def converge(ansible, ws, *tasks):
    fake, variables = ws
    run = ansible.play(playbook(*tasks), extra_vars=variables).assert_ok()
    fake.reset_log()
    return run


def test_first_run_creates_second_run_reads_once_and_writes_nothing(ansible, ws):
    fake, variables = ws
    first = ansible.play(playbook(*ALL, INFO_TASK), extra_vars=variables).assert_ok()
    assert first.changed == 5
    assert [(w.method, w.path.rsplit("/", 2)[-2]) for w in fake.writes()] == [
        ("POST", "unity-catalog"), ("POST", "unity-catalog"), ("PATCH", "catalog"), ("PATCH", "schema"),
        ("PATCH", "model_service")]
    assert fake.unity.missing_to_query("alice@example.test", SERVICE) is None  # alice is a developer
    assert [s["name"] for s in first.result("info")["model_services"]] == ["model-services/" + SERVICE]
    assert first.result("service")["full_name"] == SERVICE

    fake.reset_log()
    second = ansible.play(playbook(*ALL), extra_vars=variables).assert_ok()
    assert second.changed == 0, second.output[-3000:]
    assert fake.writes() == []
    # server-set etag, timestamps, owner, inference table name, defaulted native_api_types: no drift
    assert len(fake.calls("/model-services/%s$" % SERVICE, "GET")) == 1
    assert len(fake.calls("/model-provider-services/%s$" % PROVIDER, "GET")) == 1
    assert len(fake.calls("/permissions/", "GET")) == 3
    api_calls = [r for r in fake.requests if r.path.startswith("/api/")]  # not the SDK's host-metadata probe
    assert len(api_calls) == 5  # one read per resource, nothing else
    assert second.result("service")["msg"] == "model service %s is up to date" % SERVICE


def test_check_mode_on_an_empty_workspace_writes_nothing_and_predicts(ansible, ws):
    fake, variables = ws
    check = ansible.play(playbook(*ALL), extra_vars=variables, check=True, diff=True).assert_ok()
    assert check.changed == 5 and fake.writes() == []
    assert fake.unity.model_service(SERVICE) is None
    assert check.result("service")["changes"] == ["create"]
    after = check.result("service")["diff"]["after"]
    assert [d["name"] for d in after["config.routing.destinations"]] == ["claude-sonnet-4-5",
                                                                         "databricks-claude-sonnet-4-5"]
    assert check.result("use schema")["changes"] == [{"principal": GROUP, "add": ["USE_SCHEMA"]}]
    assert check.result("execute")["grants"] == [{"principal": GROUP, "privileges": ["EXECUTE"]}]
    assert "does not exist (yet)" in " ".join(check.result("execute").get("warnings", []))

    converge(ansible, ws, *ALL)
    changed = SERVICE_TASK.replace("requests: 60", "requests: 90")
    check = ansible.play(playbook(PROVIDER_TASK, changed, GRANT_TASKS), extra_vars=variables, check=True,
                         diff=True).assert_ok()
    assert check.changed == 1 and fake.writes() == []
    assert check.result("service")["changes"] == ["config.rate_limits"]
    diff = check.result("service")["diff"]
    assert [r.get("requests") for r in diff["before"]["config.rate_limits"]] == [1000, 60, None]
    assert [r.get("requests") for r in diff["after"]["config.rate_limits"]] == [1000, 90, None]


def test_drift_behind_ansibles_back_is_repaired_with_granular_paths(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, *ALL)

    def drift(rec):
        rec["config"]["routing"]["destinations"][0]["traffic_percentage"] = 50
        rec["config"]["routing"]["destinations"][1]["traffic_percentage"] = 50
        rec["config"]["rate_limits"][0]["requests"] = 6000
    fake.unity.edit("MODEL_SERVICE", SERVICE, drift)
    fake.unity.grants[("MODEL_SERVICE", SERVICE)][GROUP].discard("EXECUTE")
    fake.unity.grants[("MODEL_SERVICE", SERVICE)]["bob@example.test"] = {"EXECUTE"}  # someone else's grant
    etag = fake.unity.model_service(SERVICE)["etag"]

    run = ansible.play(playbook(*ALL), extra_vars=variables, diff=True).assert_ok()
    assert run.changed == 2
    patch, grant = fake.writes()
    assert patch.arg("update_mask") == "config.rate_limits,config.routing.destinations"
    assert patch.arg("etag") == etag  # conditional on what was read
    assert set(patch.json()["config"]) == {"rate_limits", "routing"}
    assert "fallback" not in patch.json()["config"]["routing"]
    assert grant.json() == {"changes": [{"principal": GROUP, "add": ["EXECUTE"]}]}
    repaired = fake.unity.model_service(SERVICE)["config"]
    assert sorted(d["traffic_percentage"] for d in repaired["routing"]["destinations"]) == [20, 80]
    assert fake.unity.has_privilege("bob@example.test", "MODEL_SERVICE", SERVICE, "EXECUTE")  # left alone
    fake.reset_log()
    assert ansible.play(playbook(*ALL), extra_vars=variables).assert_ok().changed == 0
    assert fake.writes() == []


def test_exclusive_grants_remove_unnamed_principals(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, *ALL)
    fake.unity.grants[("MODEL_SERVICE", SERVICE)]["bob@example.test"] = {"EXECUTE"}
    exclusive = GRANT_TASKS.split("- name: execute")[1].replace("    grants:", "    exclusive: true\n    grants:")
    run = ansible.play(playbook("- name: execute" + exclusive), extra_vars=variables).assert_ok()
    assert run.changed == 1
    assert fake.writes()[0].json() == {"changes": [{"principal": "bob@example.test", "remove": ["EXECUTE"]}]}


def test_a_conflicting_etag_rereads_once_and_retries(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, *ALL)
    fake.unity.edit("MODEL_SERVICE", SERVICE, lambda rec: rec.update(comment="old"))
    # Another admin changes the rate limits between Ansible's read and its write.
    fake.unity.concurrent_edit("MODEL_SERVICE", SERVICE, lambda rec: rec["config"]["rate_limits"].pop())
    run = ansible.play(playbook(SERVICE_TASK), extra_vars=variables).assert_ok()
    first, second = fake.writes()
    assert fake.calls("/model-services/", "GET")[1].time > first.time  # re-read after the 409
    assert first.arg("update_mask") == "comment"
    assert second.arg("update_mask") == "comment,config.rate_limits"  # planned again from the new read
    assert second.arg("etag") != first.arg("etag")
    assert run.result("service")["changes"] == ["comment", "config.rate_limits"]
    assert len(fake.unity.model_service(SERVICE)["config"]["rate_limits"]) == 3

    fake.reset_log()
    fake.unity.edit("MODEL_SERVICE", SERVICE, lambda rec: rec.update(comment="old"))
    fake.unity.concurrent_edit("MODEL_SERVICE", SERVICE, lambda rec: rec.update(comment="busy"), times=2)
    run = ansible.play(playbook(SERVICE_TASK), extra_vars=variables)
    assert run.rc != 0 and len(fake.writes()) == 2
    failed = run.result("service")
    assert "changed again while it was being updated" in failed["msg"] and failed["error_code"] == "ABORTED"


def test_state_absent_removes_what_it_made(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, *ALL)
    revoke = GRANT_TASKS.replace("    grants:", "    state: absent\n    grants:").split("- name: execute", maxsplit=1)[0]
    teardown = playbook(absent(SERVICE_TASK), absent(PROVIDER_TASK), revoke)
    check = ansible.play(teardown, extra_vars=variables, check=True).assert_ok()
    assert check.changed == 4 and fake.writes() == []
    run = ansible.play(teardown, extra_vars=variables).assert_ok()
    assert run.changed == 4
    assert fake.unity.model_service(SERVICE) is None and fake.unity.model_provider_service(PROVIDER) is None
    assert not fake.unity.has_privilege("alice@example.test", "CATALOG", "main", "USE_CATALOG")
    fake.reset_log()
    again = ansible.play(teardown, extra_vars=variables).assert_ok()
    assert again.changed == 0 and fake.writes() == []
    assert again.result("service")["msg"] == "model service %s does not exist" % SERVICE


def test_invalid_options_fail_with_the_cause_and_write_nothing(ansible, ws):
    fake, variables = ws
    bad = SERVICE_TASK.replace("{key: service, requests: 1000, renewal_period: hour}",
                               "{key: user_group, requests: 1000}")
    run = ansible.play(playbook(bad), extra_vars=variables)
    assert run.rc != 0 and fake.writes() == []
    assert "rate_limits[1]: key user_group needs a principal" in run.result("service")["msg"]
    bedrock = PROVIDER_TASK.replace("api_key_secret: main.ai.anthropic_api_key", "service_credential: role")
    run = ansible.play(playbook(bedrock), extra_vars=variables)
    assert "provider anthropic takes no service credential" in run.result("provider")["msg"]
    run = ansible.play(playbook(SERVICE_TASK), extra_vars=variables)  # the provider service does not exist
    assert run.result("service")["msg"].startswith("create model service %s: Model provider service" % SERVICE)
    assert run.result("service")["status"] == 404


def test_bedrock_and_provisioned_throughput_destinations(ansible, ws):
    fake, variables = ws
    fake.serving.update_seconds = 0
    bedrock = """
    - name: bedrock
      databricks_claude.gateway.model_provider_service:
        catalog: main
        schema: ai
        name: bedrock
        provider: amazon_bedrock
        service_credential: bedrock-invoke-role
        region: us-east-1
        allow_all_targets: true
    - name: endpoint
      databricks_claude.gateway.serving_endpoint:
        name: claude-opus-pt
        served_entities: [{name: opus-pt, entity_name: system.ai.databricks-claude-opus-4-6, entity_version: "1"}]
    - name: opus
      databricks_claude.gateway.model_service:
        catalog: main
        schema: ai
        name: claude-opus
        destinations:
          - {serving_endpoint: claude-opus-pt}
        fallback_destinations:
          - {model_provider_service: main.ai.bedrock, model: anthropic.claude-opus-4-6-v1}
    """
    converge(ansible, ws, bedrock)
    provider = fake.unity.model_provider_service("main.ai.bedrock")["config"]
    assert provider["amazon_bedrock"] == {"direct": {"service_credential": {"name": "credentials/bedrock-invoke-role"},
                                                     "region": "us-east-1"}}
    # the service resolves the endpoint's model into the destination: not drift
    assert fake.unity.model_service("main.ai.claude-opus")["config"]["routing"]["destinations"][0][
        "provisioned_throughput_config"]["model"] == "system.ai.databricks-claude-opus-4-6"
    fake.fail("/unity-catalog/model-services/", status=429, times=2, method="GET")  # a burst: retried
    again = ansible.play(playbook(bedrock), extra_vars=variables).assert_ok()
    assert again.changed == 0 and fake.writes() == []
    assert len(fake.calls("/unity-catalog/model-services/main.ai.claude-opus$", "GET")) == 3


def test_secrets_never_reach_verbose_output(ansible, ws):
    fake, variables = ws
    run = ansible.play(playbook(*ALL, INFO_TASK), extra_vars=variables, diff=True, verbosity=3,
                       env={"ANSIBLE_INJECT_INVOCATION": "1"}).assert_ok()
    assert '"module_args"' in run.output and "main.ai.anthropic_api_key" in run.output
    assert variables["databricks_token"] not in run.output
    for task in run.tasks:
        assert variables["databricks_token"] not in json.dumps(task)
