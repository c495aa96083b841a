"""The serving-side modules, run by ansible-playbook against the fake workspace over HTTPS.

Each test names the behaviour (or the service quirk) it guards; the fake logs every request,
so "no write" and "one read per resource" are asserted on what actually went over the wire.
"""

import glob
import json
import os
import ssl
import textwrap
import urllib.request

import pytest

from tests.support.fake_databricks import Response

pytestmark = pytest.mark.slow

ENDPOINT = "claude-code-gateway"
PLAINTEXT = "sk-ant-api03-PLAINTEXT-never-shown"

ENDPOINT_TASK = """
- name: endpoint
  databricks_claude.gateway.serving_endpoint:
    name: claude-code-gateway
    served_entities:
      - external_model:
          provider: anthropic
          name: claude-sonnet-4-5
          anthropic_config:
            anthropic_api_key: !unsafe "{{secrets/claude/anthropic_api_key}}"
      - name: claude-haiku
        external_model:
          provider: anthropic
          name: claude-haiku-4-5
          anthropic_config:
            anthropic_api_key_plaintext: "{{ plaintext_key }}"
    traffic_config:
      routes:
        - {served_entity_name: claude-sonnet-4-5, traffic_percentage: 80}
        - {served_entity_name: claude-haiku, traffic_percentage: 20}
    tags: {team: platform, cost-center: 4711, env: test}
    description: Claude Code for developers
"""

GATEWAY_TASK = """
- name: gateway
  databricks_claude.gateway.ai_gateway:
    name: claude-code-gateway
    usage_tracking_config: {enabled: true}
    rate_limits:
      - {calls: 100, key: user}
      - {tokens: 200000, key: user_group, principal: developers}
    guardrails:
      input: {pii: {behavior: BLOCK}, safety: true}
    inference_table_config: {enabled: true, catalog_name: ml, schema_name: ai_gateway}
"""

PERMISSIONS_TASK = """
- name: permissions
  databricks_claude.gateway.serving_endpoint_permissions:
    name: claude-code-gateway
    access_control_list:
      - {group_name: developers, permission_level: CAN_QUERY}
"""

INFO_TASK = """
- name: info
  databricks_claude.gateway.serving_endpoint_info:
    name: claude-code-gateway
    include_permissions: true
"""


CONNECTION = 'host: "{{ databricks_host }}"\ntoken: "{{ databricks_token }}"'


def playbook(*tasks: str, connection: str = CONNECTION) -> str:
    """A play on localhost running `tasks`, the connection options set once for the action group."""
    body = "".join(textwrap.indent(textwrap.dedent(t).strip("\n"), "    ") + "\n" for t in tasks)
    return textwrap.dedent("""\
        - name: serving modules
          hosts: localhost
          gather_facts: false
          module_defaults:
            group/databricks_claude.gateway.databricks:
        """) + textwrap.indent(connection, "      ") + "\n  tasks:\n" + body


@pytest.fixture
def ws(fake_databricks):
    """The fake workspace with quick config updates, and the vars every playbook gets."""
    fake_databricks.serving.update_seconds = 0.5
    token = fake_databricks.issue_token("admin@example.test", 3600)
    return fake_databricks, {"databricks_host": fake_databricks.url, "databricks_token": token,
                             "plaintext_key": PLAINTEXT}


@pytest.fixture
def backdoor(ws, pki):
    """Calls behind Ansible's back, as another admin would make them."""
    fake, variables = ws
    context = ssl.create_default_context(cafile=pki.ca_pem)

    def call(method, path, body=None):
        req = urllib.request.Request(fake.url + path, method=method, data=json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + variables["databricks_token"],
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=context) as resp:
            return json.loads(resp.read() or b"{}")
    return call


def converge(ansible, ws, *tasks):
    fake, variables = ws
    run = ansible.play(playbook(*tasks), extra_vars=variables).assert_ok()
    fake.serving.finish_updates()
    return run


def test_first_run_changes_second_run_writes_nothing(ansible, ws):
    fake, variables = ws
    pb = playbook(ENDPOINT_TASK, GATEWAY_TASK, PERMISSIONS_TASK, INFO_TASK)
    first = ansible.play(pb, extra_vars=variables).assert_ok()
    assert first.changed == 3
    assert [(w.method, w.path.rsplit("/", 1)[-1]) for w in fake.writes()] == [
        ("POST", "serving-endpoints"), ("PUT", "ai-gateway"), ("PATCH", fake.serving.record(ENDPOINT)["id"])]
    created = fake.serving.record(ENDPOINT)
    assert created["config_update"] == "NOT_UPDATING", "the module waits for the create to finish"
    info = first.result("info")
    assert info["changed"] is False
    assert {e["name"] for e in info["serving_endpoints"][0]["config"]["served_entities"]} == \
        {"claude-sonnet-4-5", "claude-haiku"}

    # GET returns entities, tags and ACL shuffled, routes with both names, served_models, server fields,
    # and no plaintext key: none of that may look like drift.
    fake.reset_log()
    second = ansible.play(pb, extra_vars=variables).assert_ok()
    assert second.changed == 0, second.output[-3000:]
    assert fake.writes() == []
    assert len(fake.calls("/serving-endpoints/%s$" % ENDPOINT, "GET")) == 4  # one read per module
    assert len(fake.calls("/permissions/", "GET")) == 2  # permissions module + info include_permissions
    assert second.result("endpoint")["msg"] == "serving endpoint %s is up to date" % ENDPOINT


def test_check_mode_writes_nothing_and_predicts_the_change(ansible, ws):
    fake, variables = ws
    pb = playbook(ENDPOINT_TASK, GATEWAY_TASK, PERMISSIONS_TASK)
    check = ansible.play(pb, extra_vars=variables, check=True, diff=True).assert_ok()
    assert check.changed == 3 and fake.writes() == []
    after = check.result("endpoint")["diff"]["after"]
    assert {e["name"] for e in after["served_entities"]} == {"claude-sonnet-4-5", "claude-haiku"}
    assert after["tags"] == {"team": "platform", "cost-center": "4711", "env": "test"}
    assert "does not exist (yet)" in " ".join(check.result("gateway").get("warnings", []))

    converge(ansible, ws, ENDPOINT_TASK, GATEWAY_TASK, PERMISSIONS_TASK)
    fake.reset_log()
    changed_limit = GATEWAY_TASK.replace("calls: 100", "calls: 250")
    check = ansible.play(playbook(ENDPOINT_TASK, changed_limit, PERMISSIONS_TASK), extra_vars=variables,
                         check=True, diff=True).assert_ok()
    assert check.changed == 1 and fake.writes() == []
    diff = check.result("gateway")["diff"]
    assert [r.get("calls") for r in diff["before"]["rate_limits"]] == [100, None]
    assert [r.get("calls") for r in diff["after"]["rate_limits"]] == [250, None]


def test_drift_behind_ansibles_back_is_detected_and_repaired(ansible, ws):
    fake, variables = ws
    tasks = (ENDPOINT_TASK, GATEWAY_TASK, PERMISSIONS_TASK)
    converge(ansible, ws, *tasks)
    with fake.lock:
        rec = fake.serving.record(ENDPOINT)
        next(r for r in rec["ai_gateway"]["rate_limits"] if r.get("calls"))["calls"] = 5000
        del rec["tags"]["cost-center"]
        rec["tags"]["rogue"] = "yes"
        rec["acl"][("group_name", "developers")] = "CAN_VIEW"
    fake.reset_log()
    run = ansible.play(playbook(*tasks), extra_vars=variables, diff=True).assert_ok()
    assert run.changed == 3
    writes = fake.writes()
    assert [(w.method, w.path.rsplit("/", 1)[-1]) for w in writes] == [
        ("PATCH", "tags"), ("PUT", "ai-gateway"), ("PATCH", rec["id"])]
    assert writes[0].json() == {"add_tags": [{"key": "cost-center", "value": "4711"}], "delete_tags": ["rogue"]}
    assert run.result("endpoint")["changes"] == ["tags"]
    assert rec["tags"] == {"team": "platform", "cost-center": "4711", "env": "test"}
    assert sorted(r.get("calls", 0) for r in rec["ai_gateway"]["rate_limits"]) == [0, 100]
    fake.reset_log()
    assert ansible.play(playbook(*tasks), extra_vars=variables).assert_ok().changed == 0
    assert fake.writes() == []


def test_state_absent_removes_and_is_idempotent(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    absent = "- name: absent\n  databricks_claude.gateway.serving_endpoint:\n    name: %s\n    state: absent\n" % ENDPOINT
    check = ansible.play(playbook(absent), extra_vars=variables, check=True).assert_ok()
    assert check.changed == 1 and ENDPOINT in fake.serving.endpoints
    run = ansible.play(playbook(absent), extra_vars=variables).assert_ok()
    assert run.changed == 1 and ENDPOINT not in fake.serving.endpoints
    fake.reset_log()
    again = ansible.play(playbook(absent), extra_vars=variables).assert_ok()
    assert again.changed == 0 and fake.writes() == []


def test_update_requested_while_another_runs_waits_for_it(ansible, ws, backdoor):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    # Another admin starts a config update that takes a few seconds.
    fake.serving.update_seconds = 3
    other = {"served_entities": [{"name": "claude-sonnet-4-5", "external_model": {
        "provider": "anthropic", "name": "claude-opus-4-1", "task": "llm/v1/chat",
        "anthropic_config": {"anthropic_api_key": "{{secrets/claude/anthropic_api_key}}"}}}]}
    backdoor("PUT", "/api/2.0/serving-endpoints/%s/config" % ENDPOINT, other)
    fake.serving.update_seconds = 0.5
    run = ansible.play(playbook(ENDPOINT_TASK), extra_vars=variables).assert_ok()
    assert run.changed == 1 and run.result("endpoint")["changes"] == ["config"]
    puts = fake.calls("/config$", "PUT")
    assert len(puts) == 2, "no PUT while the other update ran (it would be refused with 409)"
    rec = fake.serving.record(ENDPOINT)
    assert rec["config_update"] == "NOT_UPDATING"
    assert {e["name"] for e in rec["config"]["served_entities"]} == {"claude-sonnet-4-5", "claude-haiku"}


def test_409_at_update_time_waits_and_retries(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    fake.serving.record(ENDPOINT)["config"]["traffic_config"]["routes"][0]["traffic_percentage"] = 50
    fake.serving.record(ENDPOINT)["config"]["traffic_config"]["routes"][1]["traffic_percentage"] = 50
    fake.fail("/serving-endpoints/%s/config$" % ENDPOINT, status=409, method="PUT", times=1)
    run = ansible.play(playbook(ENDPOINT_TASK), extra_vars=variables).assert_ok()
    assert run.changed == 1
    assert len(fake.calls("/config$", "PUT")) == 2  # refused once, then accepted


def test_429_bursts_are_retried(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK, GATEWAY_TASK)
    fake.reset_log()
    fake.fail("/serving-endpoints/%s$" % ENDPOINT, status=429, method="GET", times=2)
    fake.fail("/ai-gateway$", status=503, method="PUT", times=1)
    changed = GATEWAY_TASK.replace("calls: 100", "calls: 120")
    run = ansible.play(playbook(ENDPOINT_TASK, changed), extra_vars=variables).assert_ok()
    assert run.changed == 1
    assert len(fake.calls("/serving-endpoints/%s$" % ENDPOINT, "GET")) == 4  # 2 x 429, then one per module
    assert len(fake.calls("/ai-gateway$", "PUT")) == 2


def test_failed_update_fails_with_the_state(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    fake.serving.fail_next_update = "UPDATE_FAILED"
    run = ansible.play(playbook(ENDPOINT_TASK.replace("claude-haiku-4-5", "claude-haiku-4-6")), extra_vars=variables)
    assert run.rc != 0
    result = run.result("endpoint")
    assert result["msg"].startswith("update serving endpoint %s: config update ended UPDATE_FAILED" % ENDPOINT)
    assert result["error_code"] == "UPDATE_FAILED"


def test_service_errors_name_action_resource_and_code(ansible, ws):
    fake, variables = ws
    absent = ("- name: absent\n  databricks_claude.gateway.serving_endpoint:\n"
              "    name: databricks-claude-sonnet-4-5\n    state: absent\n")
    run = ansible.play(playbook(absent), extra_vars=variables)
    result = run.result("absent")
    assert result["msg"] == ("delete serving endpoint databricks-claude-sonnet-4-5: Endpoint "
                             "'databricks-claude-sonnet-4-5' is a Databricks-managed pay-per-token endpoint "
                             "and cannot be deleted.")
    assert (result["status"], result["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "Traceback" not in run.output


def test_adding_or_removing_an_external_model_fails_clearly(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    fake.reset_log()
    uc_model = """
    - name: endpoint
      databricks_claude.gateway.serving_endpoint:
        name: claude-code-gateway
        served_entities:
          - {name: m, entity_name: main.models.m, entity_version: "1"}
    """
    run = ansible.play(playbook(uc_model), extra_vars=variables)
    assert run.rc != 0 and fake.writes() == []
    msg = run.result("endpoint")["msg"]
    assert "cannot remove it in place" in msg and "state: absent" in msg


def test_description_is_set_only_at_creation(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    run = ansible.play(playbook(ENDPOINT_TASK.replace("Claude Code for developers", "Something else")),
                       extra_vars=variables)
    assert run.rc != 0 and "only when the endpoint is created" in run.result("endpoint")["msg"]


def test_no_wait_then_pending_config_is_not_drift(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    fake.serving.update_seconds = 60
    no_wait = ENDPOINT_TASK.replace("claude-haiku-4-5", "claude-haiku-4-6").rstrip("\n") + "\n    wait: false\n"
    first = ansible.play(playbook(no_wait), extra_vars=variables).assert_ok()
    assert first.changed == 1 and fake.serving.record(ENDPOINT)["config_update"] == "IN_PROGRESS"
    fake.reset_log()
    # GET still shows the old config, and the new one under pending_config: that is what counts.
    again = ansible.play(playbook(no_wait), extra_vars=variables).assert_ok()
    assert again.changed == 0 and fake.writes() == []
    assert len(fake.calls("/serving-endpoints/%s$" % ENDPOINT, "GET")) == 1, "one read, no waiting"


def test_computed_traffic_config_is_not_drift(ansible, ws):
    fake, variables = ws
    no_routes = ENDPOINT_TASK.split("    traffic_config:", maxsplit=1)[0] + "    tags: {team: platform}\n"
    converge(ansible, ws, no_routes)
    assert fake.serving.record(ENDPOINT)["config"]["traffic_config"]["routes"]  # the server computed a split
    fake.reset_log()
    assert ansible.play(playbook(no_routes), extra_vars=variables).assert_ok().changed == 0
    assert fake.writes() == []


def test_pay_per_token_endpoint_gateway_and_permissions(ansible, ws):
    fake, variables = ws
    tasks = [GATEWAY_TASK.replace(ENDPOINT, "databricks-claude-sonnet-4-5"),
             PERMISSIONS_TASK.replace(ENDPOINT, "databricks-claude-sonnet-4-5").rstrip("\n") + "\n    purge: true\n"]
    run = converge(ansible, ws, *tasks)
    assert run.changed == 2
    rec = fake.serving.record("databricks-claude-sonnet-4-5")
    assert rec["ai_gateway"]["usage_tracking_config"] == {"enabled": True}
    assert rec["acl"] == {("group_name", "developers"): "CAN_QUERY"}
    fake.reset_log()
    assert ansible.play(playbook(*tasks), extra_vars=variables).assert_ok().changed == 0
    assert fake.writes() == []


def test_moving_an_enabled_inference_table_disables_it_first(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK, GATEWAY_TASK)
    fake.reset_log()
    moved = GATEWAY_TASK.replace("schema_name: ai_gateway", "schema_name: ai_gateway_v2")
    run = ansible.play(playbook(moved), extra_vars=variables).assert_ok()
    assert run.result("gateway")["changes"] == ["disable inference table", "update"]
    first, second = [w.json() for w in fake.writes()]
    assert first["inference_table_config"] == {"enabled": False}
    assert first["usage_tracking_config"] == {"enabled": True}  # the rest kept while the table is off
    assert second["inference_table_config"]["schema_name"] == "ai_gateway_v2"
    assert fake.serving.record(ENDPOINT)["ai_gateway"]["inference_table_config"]["schema_name"] == "ai_gateway_v2"


def test_secrets_never_reach_verbose_output(ansible, ws):
    fake, variables = ws
    run = ansible.play(playbook(ENDPOINT_TASK, INFO_TASK), extra_vars=variables, diff=True, verbosity=3,
                       env={"ANSIBLE_INJECT_INVOCATION": "1"}).assert_ok()
    assert '"module_args"' in run.output and "claude-sonnet-4-5" in run.output  # the arguments are logged...
    assert PLAINTEXT not in run.output  # ...but never the secrets
    assert variables["databricks_token"] not in run.output
    for task in run.tasks:
        assert PLAINTEXT not in json.dumps(task) and variables["databricks_token"] not in json.dumps(task)


def test_secret_reference_needs_unsafe_in_vars_files(ansible, ws, tmp_path):
    fake, variables = ws
    (tmp_path / "refs.yml").write_text(
        'plain_reference: "{{secrets/claude/anthropic_api_key}}"\n'
        'unsafe_reference: !unsafe "{{secrets/claude/anthropic_api_key}}"\n')
    task = """
    - name: %s
      databricks_claude.gateway.serving_endpoint:
        name: %s
        served_entities:
          - external_model:
              provider: anthropic
              name: claude-sonnet-4-5
              anthropic_config:
                anthropic_api_key: "{{ %s }}"
      ignore_errors: %s
    """
    pb = playbook(task % ("plain", "plain-ref", "plain_reference", "true"),
                  task % ("unsafe", "unsafe-ref", "unsafe_reference", "false"))
    run = ansible.play(pb, extra_vars=variables, args=["-e", "@%s" % (tmp_path / "refs.yml")])
    assert "'secrets' is undefined" in run.result("plain")["msg"]
    assert run.result("unsafe")["changed"] is True
    sent = fake.serving.record("unsafe-ref")["pending"] or {"config": fake.serving.record("unsafe-ref")["config"]}
    assert sent["config"]["served_entities"][0]["external_model"]["anthropic_config"] == \
        {"anthropic_api_key": "{{secrets/claude/anthropic_api_key}}"}
    assert "plain-ref" not in fake.serving.endpoints


def test_wrong_token_fails_with_the_service_message(ansible, ws):
    fake, variables = ws
    run = ansible.play(playbook(INFO_TASK), extra_vars=dict(variables, databricks_token="dkea-wrong"))
    result = run.result("info")
    assert result["msg"] == "get serving endpoint %s: Invalid Token" % ENDPOINT
    assert result["status"] == 403


def test_module_defaults_profile_from_databrickscfg(ansible, ws):
    fake, variables = ws
    home = ansible.workdir / "home"
    home.mkdir(exist_ok=True)
    cfg = home / ".databrickscfg"
    cfg.write_text("[admin]\nhost = %s\ntoken = %s\n" % (fake.url, variables["databricks_token"]))
    cfg.chmod(0o600)
    run = ansible.play(playbook(INFO_TASK, connection="profile: admin")).assert_ok()
    assert run.result("info")["serving_endpoints"] == []


def test_missing_sdk_gives_missing_required_lib(ansible, ws):
    """A target Python without databricks-sdk (here pyenv's 3.9, the oldest supported target)."""
    fake, variables = ws
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9"))
                   + glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9"))
    if not found:
        pytest.skip("no pyenv Python 3.9")
    python39 = found[0]
    run = ansible.play(playbook(INFO_TASK), extra_vars=variables, env={"ANSIBLE_PYTHON_INTERPRETER": python39})
    msg = run.result("info")["msg"]
    assert "Failed to import the required Python library (databricks-sdk)" in msg, msg
    assert fake.calls("/serving-endpoints") == []


def test_gateway_absent_on_a_missing_endpoint_is_a_no_op(ansible, ws):
    fake, variables = ws
    task = "- name: gateway\n  databricks_claude.gateway.ai_gateway:\n    name: gone\n    state: absent\n"
    run = ansible.play(playbook(task), extra_vars=variables).assert_ok()
    assert run.changed == 0 and fake.writes() == []


def test_tags_and_gateway_wait_for_a_running_update_instead_of_writing_into_it(ansible, ws, backdoor):
    """The service refuses tag and AI Gateway writes while an update runs (409, with no documented code)."""
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    fake.serving.update_seconds = 3
    fake.serving.conflict_error_code = "INVALID_STATE"
    backdoor("PUT", "/api/2.0/serving-endpoints/%s/config" % ENDPOINT, fake.serving.record(ENDPOINT)["config"])
    fake.reset_log()
    run = ansible.play(playbook(ENDPOINT_TASK.replace("env: test", "env: prod"), GATEWAY_TASK),
                       extra_vars=variables).assert_ok()
    assert run.result("endpoint")["changes"] == ["tags"] and run.result("gateway")["changed"]
    assert len(fake.calls("/tags$", "PATCH")) == 1 and len(fake.calls("/ai-gateway$", "PUT")) == 1, \
        "each written once, after the running update ended"
    assert fake.serving.record(ENDPOINT)["tags"]["env"] == "prod"


def test_a_409_with_another_error_code_is_retried_too(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, ENDPOINT_TASK)
    fake.serving.update_seconds = 1
    fake.fail("/ai-gateway$", status=409, method="PUT", times=1,
              body=Response.error(409, "INVALID_STATE", "Endpoint is being updated"))
    run = ansible.play(playbook(GATEWAY_TASK), extra_vars=variables).assert_ok()
    assert run.changed == 1 and len(fake.calls("/ai-gateway$", "PUT")) == 2


UNNAMED_ENTITY_TASK = """
- name: endpoint
  databricks_claude.gateway.serving_endpoint:
    name: uc-model
    served_entities:
      - {entity_name: main.models.claude_judge, entity_version: "3", workload_size: Small}
"""


def test_an_unnamed_entity_gets_the_services_default_name_and_a_rerun_is_a_no_op(ansible, ws):
    fake, variables = ws
    converge(ansible, ws, UNNAMED_ENTITY_TASK)
    [entity] = fake.serving.record("uc-model")["config"]["served_entities"]
    assert entity["name"] == "main.models.claude_judge-3"
    fake.reset_log()
    assert ansible.play(playbook(UNNAMED_ENTITY_TASK), extra_vars=variables).assert_ok().changed == 0
    assert fake.writes() == []


def test_more_than_15_entities_fail_before_anything_is_sent(ansible, ws):
    fake, variables = ws
    entities = "".join('\n      - {entity_name: main.models.m%d, entity_version: "1"}' % i for i in range(16))
    task = "- name: endpoint\n  databricks_claude.gateway.serving_endpoint:\n    name: many\n" \
           "    served_entities:" + entities + "\n"
    run = ansible.play(playbook(task), extra_vars=variables)
    assert run.rc != 0
    assert run.result("endpoint")["msg"] == (
        "served_entities: 16 entities given, but an endpoint serves at most 15; split them over several endpoints")
    assert fake.writes() == []
