"""The fake's serving endpoints behave as facts/databricks-api.md says the service does."""

import pytest
import requests

from tests.support.fake_databricks import make_fake

CREATE = {"name": "ep", "config": {"served_entities": [
    {"external_model": {"provider": "anthropic", "name": "claude-sonnet-4-5", "task": "llm/v1/chat",
                        "anthropic_config": {"anthropic_api_key_plaintext": "sk-ant-secret"}}},
    {"name": "b", "external_model": {"provider": "anthropic", "name": "claude-haiku-4-5", "task": "llm/v1/chat",
                                     "anthropic_config": {"anthropic_api_key": "{{secrets/s/k}}"}}},
    {"name": "a", "external_model": {"provider": "anthropic", "name": "claude-opus-4-1", "task": "llm/v1/chat",
                                     "anthropic_config": {"anthropic_api_key": "{{secrets/s/k}}"}}}]},
    "tags": [{"key": "t1", "value": "1"}, {"key": "t2", "value": "2"}, {"key": "t3"}]}


@pytest.fixture
def fake():
    fake = make_fake()
    fake.start()
    fake.serving.update_seconds = 0
    yield fake
    fake.stop()


@pytest.fixture
def call(fake):
    token = fake.issue_token("admin@example.test", 3600)

    def call(method, path, body=None, status=200):
        resp = requests.request(method, fake.url + path, json=body, headers={"Authorization": "Bearer " + token})
        assert resp.status_code == status, resp.text
        return resp.json()
    return call


def test_get_adds_server_fields_defaults_and_mirrors(call):
    call("POST", "/api/2.0/serving-endpoints", CREATE)
    ep = call("GET", "/api/2.0/serving-endpoints/ep")
    assert {"id", "creator", "creation_timestamp", "state", "permission_level"} <= set(ep)
    names = {e["name"] for e in ep["config"]["served_entities"]}
    assert names == {"claude-sonnet-4-5", "a", "b"}  # the unnamed one got its model name
    assert all("state" in e and "creator" in e for e in ep["config"]["served_entities"])
    assert len(ep["config"]["served_models"]) == 3
    routes = ep["config"]["traffic_config"]["routes"]  # computed, both names
    assert sum(r["traffic_percentage"] for r in routes) == 100
    assert all(r["served_model_name"] == r["served_entity_name"] for r in routes)


def test_order_is_never_the_order_sent(call):
    call("POST", "/api/2.0/serving-endpoints", CREATE)
    sent = [e.get("name") or "claude-sonnet-4-5" for e in CREATE["config"]["served_entities"]]
    for attempt in range(5):
        ep = call("GET", "/api/2.0/serving-endpoints/ep")
        assert [e["name"] for e in ep["config"]["served_entities"]] != sent, "GET #%d" % attempt
        assert [t["key"] for t in ep["tags"]] != ["t1", "t2", "t3"]


def test_plaintext_secret_is_never_returned(call):
    call("POST", "/api/2.0/serving-endpoints", CREATE)
    assert "sk-ant-secret" not in str(call("GET", "/api/2.0/serving-endpoints/ep"))
    assert "sk-ant-secret" not in str(call("GET", "/api/2.0/serving-endpoints"))


def test_second_update_while_one_runs_is_409(fake, call):
    fake.serving.update_seconds = 60
    created = call("POST", "/api/2.0/serving-endpoints", CREATE)
    assert created["state"]["config_update"] == "IN_PROGRESS" and "pending_config" in created
    body = call("PUT", "/api/2.0/serving-endpoints/ep/config", CREATE["config"], status=409)
    assert body["error_code"] == "RESOURCE_CONFLICT"
    fake.serving.finish_updates()
    assert call("GET", "/api/2.0/serving-endpoints/ep")["state"]["config_update"] == "NOT_UPDATING"


def test_external_model_cannot_be_added_or_removed(call):
    call("POST", "/api/2.0/serving-endpoints", CREATE)
    body = call("PUT", "/api/2.0/serving-endpoints/ep/config",
                {"served_entities": [{"name": "m", "entity_name": "x.y.m", "entity_version": "1"}]}, status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and "external model" in body["message"]


def test_pay_per_token_endpoints_exist_and_cannot_be_created_or_deleted(call):
    assert call("GET", "/api/2.0/serving-endpoints/databricks-claude-sonnet-4-5")["config"]["served_entities"][0][
        "foundation_model"]
    call("POST", "/api/2.0/serving-endpoints", dict(CREATE, name="databricks-claude-sonnet-4-5"), status=409)
    call("DELETE", "/api/2.0/serving-endpoints/databricks-claude-sonnet-4-5", status=400)
    call("PUT", "/api/2.0/serving-endpoints/databricks-claude-sonnet-4-5/ai-gateway",
         {"usage_tracking_config": {"enabled": True}})


def test_ai_gateway_put_replaces_and_refuses_moving_an_enabled_table(call):
    path = "/api/2.0/serving-endpoints/databricks-claude-haiku-4-5/ai-gateway"
    table = {"enabled": True, "catalog_name": "ml", "schema_name": "gw"}
    call("PUT", path, {"usage_tracking_config": {"enabled": True}, "inference_table_config": table})
    call("PUT", path, {"inference_table_config": dict(table, schema_name="other")}, status=400)
    assert call("PUT", path, {"inference_table_config": {"enabled": False}}) == {
        "inference_table_config": {"enabled": False}}  # usage tracking gone: full replacement
    call("PUT", path, {"inference_table_config": dict(table, schema_name="other")})


def test_permissions_by_endpoint_id(call):
    ep = call("GET", "/api/2.0/serving-endpoints/databricks-claude-haiku-4-5")
    call("GET", "/api/2.0/permissions/serving-endpoints/databricks-claude-haiku-4-5", status=404)
    acl = call("PATCH", "/api/2.0/permissions/serving-endpoints/%s" % ep["id"],
               {"access_control_list": [{"group_name": "developers", "permission_level": "CAN_QUERY"}]})
    assert {"group_name": "developers", "display_name": "developers",
            "all_permissions": [{"permission_level": "CAN_QUERY", "inherited": False}]} in acl["access_control_list"]


def test_every_call_needs_a_valid_token(fake):
    resp = requests.get(fake.url + "/api/2.0/serving-endpoints/ep", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 403 and resp.json() == {"error_code": "403", "message": "Invalid Token"}
