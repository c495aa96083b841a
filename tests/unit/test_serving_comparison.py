"""Desired vs actual for serving endpoints: each GET quirk from the facts, normalised away or caught."""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.comparison import (
    is_subset,
    prune,
    sanitize,
    sanitized_diff,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.serving_config import (
    actual_config,
    config_matches,
    default_entity_name,
    desired_entities,
    endpoint_view,
    external_model_lock_in,
    predicted_entities,
    tags_patch,
    traffic_routes,
    updated_view,
)

REF = "{{secrets/claude/key}}"


def external(name, model, **anthropic):
    return {"name": name, "external_model": {"provider": "anthropic", "name": model, "task": "llm/v1/chat",
                                             "anthropic_config": anthropic or {"anthropic_api_key": REF},
                                             "amazon_bedrock_config": None},
            "entity_name": None, "workload_size": None}


def server_entity(name, model, **extra):
    """A served entity as GET returns it: server fields added, plaintext secrets gone."""
    entity = {"name": name, "creator": "admin@example.test", "creation_timestamp": 1,
              "state": {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""},
              "external_model": {"provider": "anthropic", "name": model, "task": "llm/v1/chat",
                                 "anthropic_config": {"anthropic_api_key": REF}}}
    entity.update(extra)
    return entity


def endpoint(entities, routes=None, **top):
    config = {"config_version": 3, "served_entities": entities,
              "served_models": [dict(e, model_name="mirror") for e in reversed(entities)]}
    if routes:
        config["traffic_config"] = {"routes": [
            {"served_model_name": n, "served_entity_name": n, "traffic_percentage": p} for n, p in routes]}
    ep = {"name": "ep", "id": "abc", "creator": "admin@example.test", "creation_timestamp": 1,
          "last_updated_timestamp": 2, "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
          "permission_level": "CAN_MANAGE", "endpoint_url": "https://x", "task": "llm/v1/chat",
          "config": config}
    ep.update(top)
    return ep


def test_prune_drops_unset_options_only():
    assert prune({"a": None, "b": {"c": None, "d": 0}, "e": [{"f": None}], "g": False}) == \
        {"b": {"d": 0}, "e": [{}], "g": False}


def test_is_subset_ignores_server_added_keys_but_not_changed_values():
    assert is_subset({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2, "d": 3}, "e": 4})
    assert not is_subset({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 5}})
    assert not is_subset({"a": [1, 2]}, {"a": [1, 2, 3]})
    assert is_subset({"k": "x"}, {}, optional_keys=("k",))


def test_default_entity_name_replaces_dots_and_colons():
    assert default_entity_name({"external_model": {"name": "claude-3.5:sonnet"}}) == "claude-3-5-sonnet"
    assert default_entity_name({"name": "mine", "external_model": {"name": "a.b"}}) == "mine"


def test_entities_in_any_order_with_server_fields_match():
    desired = desired_entities([external("b", "claude-haiku-4-5"), external("a", "claude-sonnet-4-5")])
    actual = actual_config(endpoint([server_entity("b", "claude-haiku-4-5"), server_entity("a", "claude-sonnet-4-5")]))
    assert [e["name"] for e in desired] == ["a", "b"]
    assert config_matches(desired, None, actual)


def test_changed_model_removed_or_added_entity_is_a_change():
    desired = desired_entities([external("a", "claude-sonnet-4-5")])
    assert not config_matches(desired, None, actual_config(endpoint([server_entity("a", "claude-opus-4-1")])))
    assert not config_matches(desired, None, actual_config(endpoint(
        [server_entity("a", "claude-sonnet-4-5"), server_entity("b", "claude-haiku-4-5")])))
    assert not config_matches(desired_entities([external("a", "claude-sonnet-4-5"), external("b", "x")]), None,
                              actual_config(endpoint([server_entity("a", "claude-sonnet-4-5")])))


def test_plaintext_key_is_never_compared():
    desired = desired_entities([external("a", "claude-sonnet-4-5", anthropic_api_key_plaintext="sk-ant-secret")])
    served = server_entity("a", "claude-sonnet-4-5")
    served["external_model"]["anthropic_config"] = {}
    assert config_matches(desired, None, actual_config(endpoint([served])))
    del served["external_model"]["anthropic_config"]
    assert config_matches(desired, None, actual_config(endpoint([served])))


def test_secret_reference_compared_when_echoed_and_tolerated_when_not():
    desired = desired_entities([external("a", "claude-sonnet-4-5", anthropic_api_key="{{secrets/other/key}}")])
    assert not config_matches(desired, None, actual_config(endpoint([server_entity("a", "claude-sonnet-4-5")])))
    served = server_entity("a", "claude-sonnet-4-5")
    served["external_model"]["anthropic_config"] = {}
    assert config_matches(desired, None, actual_config(endpoint([served])))


def test_server_default_workload_is_ignored_when_unset():
    desired = desired_entities([{"name": "m", "entity_name": "main.models.m", "entity_version": "2"}])
    actual = actual_config(endpoint([{"name": "m", "entity_name": "main.models.m", "entity_version": "2",
                                      "workload_size": "Small", "workload_type": "CPU", "state": {}}]))
    assert config_matches(desired, None, actual)
    assert not config_matches(desired_entities([{"name": "m", "entity_name": "main.models.m", "entity_version": "2",
                                                 "workload_size": "Large"}]), None, actual)


def test_routes_with_both_names_and_in_any_order_match():
    desired = desired_entities([external("a", "m1"), external("b", "m2")])
    routes = traffic_routes({"routes": [{"served_entity_name": "b", "traffic_percentage": 20},
                                        {"served_entity_name": "a", "traffic_percentage": 80}]})
    actual = actual_config(endpoint([server_entity("b", "m2"), server_entity("a", "m1")], [("a", 80), ("b", 20)]))
    assert config_matches(desired, routes, actual)
    assert not config_matches(desired, traffic_routes({"routes": [{"served_entity_name": "a", "traffic_percentage": 50},
                                                                  {"served_entity_name": "b", "traffic_percentage": 50}]}),
                              actual)


def test_unmanaged_traffic_config_is_not_compared():
    actual = actual_config(endpoint([server_entity("a", "m1")], [("a", 100)]))
    assert config_matches(desired_entities([external("a", "m1")]), None, actual)


def test_served_models_mirror_is_ignored():
    actual = actual_config(endpoint([server_entity("a", "m1")]))
    assert "served_models" not in actual and [e["name"] for e in actual["served_entities"]] == ["a"]


def test_pending_config_is_what_an_update_in_progress_converges_to():
    ep = endpoint([server_entity("a", "old")], state={"ready": "READY", "config_update": "IN_PROGRESS"},
                  pending_config={"served_entities": [server_entity("a", "new")], "start_time": 5})
    assert config_matches(desired_entities([external("a", "new")]), None, actual_config(ep))
    ep["state"]["config_update"] = "NOT_UPDATING"
    assert not config_matches(desired_entities([external("a", "new")]), None, actual_config(ep))


def test_external_model_lock_in():
    ext = actual_config(endpoint([server_entity("a", "m1")]))["served_entities"]
    plain = [{"name": "m", "entity_name": "x.y.m"}]
    assert "cannot remove it in place" in external_model_lock_in(desired_entities(plain), ext)
    assert "cannot add one in place" in external_model_lock_in(desired_entities([external("a", "m1")]), plain)
    assert external_model_lock_in(desired_entities([external("b", "m2")]), ext) is None


def test_tags_compared_as_a_set_with_one_patch():
    actual = [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}, {"key": "old", "value": "x"}]
    assert tags_patch({"a": "1", "b": "2", "old": "x"}, list(reversed(actual)), True) == ([], [])
    add, delete = tags_patch({"a": "1", "b": "3", "c": "4"}, actual, True)
    assert add == [{"key": "b", "value": "3"}, {"key": "c", "value": "4"}] and delete == ["old"]
    assert tags_patch({"a": "1"}, actual, False) == ([], [])
    assert tags_patch(None, actual, True) == ([], [])


def test_yaml_numbers_in_tags_and_env_vars_are_strings_to_the_service():
    served = [{"key": "cost-center", "value": "4711"}, {"key": "flag", "value": "True"}]
    assert tags_patch({"cost-center": 4711, "flag": True}, served, True) == ([], [])
    entity = desired_entities([{"name": "m", "entity_name": "x.y.m", "environment_vars": {"WORKERS": 4}}])[0]
    assert entity["environment_vars"] == {"WORKERS": "4"}


def test_sanitize_removes_every_secret_field():
    desired = desired_entities([external("a", "m", anthropic_api_key_plaintext="sk-ant-secret")])
    assert "sk-ant-secret" not in repr(sanitize(desired))
    diff = sanitized_diff({"token": "dapi-x", "x": 1}, None)
    assert diff == {"before": {"x": 1}, "after": {}}


def test_endpoint_view_is_stable_under_reordering():
    one = endpoint([server_entity("a", "m1"), server_entity("b", "m2")], [("a", 50), ("b", 50)],
                   tags=[{"key": "t", "value": "1"}, {"key": "u", "value": "2"}])
    two = endpoint([server_entity("b", "m2"), server_entity("a", "m1")], [("b", 50), ("a", 50)],
                   tags=[{"key": "u", "value": "2"}, {"key": "t", "value": "1"}])
    assert endpoint_view(one) == endpoint_view(two)
    assert endpoint_view(one)["tags"] == {"t": "1", "u": "2"}


def test_check_mode_prediction_keeps_server_defaults_and_hides_plaintext():
    current = actual_config(endpoint([{"name": "m", "entity_name": "x.y.m", "entity_version": "1",
                                       "workload_size": "Small", "workload_type": "CPU"}]))["served_entities"]
    desired = desired_entities([{"name": "m", "entity_name": "x.y.m", "entity_version": "2"},
                                external("n", "claude-haiku-4-5", anthropic_api_key_plaintext="sk-ant-secret")])
    predicted = predicted_entities(desired, current)
    assert predicted[0] == {"name": "m", "entity_name": "x.y.m", "entity_version": "2",
                            "workload_size": "Small", "workload_type": "CPU"}
    assert "sk-ant-secret" not in repr(predicted)


def test_check_mode_view_of_an_update_changes_only_what_is_managed():
    current = endpoint([server_entity("a", "m1")], [("a", 100)], tags=[{"key": "t", "value": "1"}])
    assert updated_view(current, None, None, None, True) == endpoint_view(current)
    kept = updated_view(current, None, None, {"u": 2}, False)
    assert kept["tags"] == {"t": "1", "u": "2"} and kept["served_entities"] == endpoint_view(current)["served_entities"]
    assert updated_view(current, None, None, {"u": 2}, True)["tags"] == {"u": "2"}
    moved = updated_view(current, desired_entities([external("a", "m2")]), [{"served_entity_name": "a",
                                                                            "traffic_percentage": 100}], None, True)
    assert moved["served_entities"][0]["external_model"]["name"] == "m2"
    assert moved["routes"] == [{"served_entity_name": "a", "traffic_percentage": 100}]
