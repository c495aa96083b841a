"""AI Gateway: the whole object compared after normalising equal meanings; inference-table moves."""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.ai_gateway_config import (
    fill_server_defaults,
    inference_table_moves,
    normalise_ai_gateway,
    put_body,
    without_inference_table,
)


def test_disabled_and_absent_sub_configs_are_the_same():
    assert normalise_ai_gateway({"usage_tracking_config": {"enabled": False}, "fallback_config": {"enabled": False},
                                 "inference_table_config": {"enabled": False, "catalog_name": "c"},
                                 "guardrails": {"input": {"pii": {"behavior": "NONE"}, "safety": False}},
                                 "rate_limits": []}) == {}
    assert normalise_ai_gateway(None) == {}


def test_rate_limits_in_any_order_with_defaults_filled():
    one = normalise_ai_gateway({"rate_limits": [{"calls": 5, "key": "user", "renewal_period": "minute"},
                                                {"tokens": 9, "renewal_period": "minute"}]})
    two = normalise_ai_gateway({"rate_limits": [{"tokens": 9, "key": "endpoint", "renewal_period": "minute",
                                                 "calls": None, "principal": None},
                                                {"calls": 5, "key": "user"}]})
    assert one == two
    assert one["rate_limits"][0] == {"tokens": 9, "key": "endpoint", "renewal_period": "minute"}


def test_whole_object_compare_sees_a_removed_sub_config():
    actual = normalise_ai_gateway({"usage_tracking_config": {"enabled": True},
                                   "rate_limits": [{"calls": 5, "renewal_period": "minute"}]})
    desired = normalise_ai_gateway({"usage_tracking_config": {"enabled": True}})
    assert desired != actual


def test_edited_rate_limit_is_a_change():
    desired = normalise_ai_gateway({"rate_limits": [{"calls": 100, "key": "user"}]})
    assert desired != normalise_ai_gateway({"rate_limits": [{"calls": 1000, "key": "user", "renewal_period": "minute"}]})


def test_guardrail_keyword_lists_are_unordered():
    assert normalise_ai_gateway({"guardrails": {"output": {"invalid_keywords": ["b", "a"]}}}) == \
        normalise_ai_gateway({"guardrails": {"output": {"invalid_keywords": ["a", "b"]}}})


def test_table_prefix_chosen_by_the_server_is_kept_when_unset():
    actual = normalise_ai_gateway({"inference_table_config": {"enabled": True, "catalog_name": "ml",
                                                              "schema_name": "gw", "table_name_prefix": "ep"}})
    desired = normalise_ai_gateway({"inference_table_config": {"enabled": True, "catalog_name": "ml",
                                                               "schema_name": "gw"}})
    assert fill_server_defaults(desired, actual) == actual
    moved = normalise_ai_gateway({"inference_table_config": {"enabled": True, "catalog_name": "ml2",
                                                             "schema_name": "gw"}})
    assert "table_name_prefix" not in fill_server_defaults(moved, actual)["inference_table_config"]


def test_moving_an_enabled_table_needs_a_disable_first():
    actual = normalise_ai_gateway({"usage_tracking_config": {"enabled": True},
                                   "inference_table_config": {"enabled": True, "catalog_name": "ml",
                                                              "schema_name": "gw", "table_name_prefix": "p"}})
    desired = normalise_ai_gateway({"inference_table_config": {"enabled": True, "catalog_name": "ml",
                                                               "schema_name": "other", "table_name_prefix": "p"}})
    assert inference_table_moves(desired, actual)
    assert not inference_table_moves(actual, actual)
    assert not inference_table_moves(normalise_ai_gateway({}), actual)
    first = without_inference_table(actual)
    assert first == {"usage_tracking_config": {"enabled": True}, "inference_table_config": {"enabled": False}}


def test_put_body_switches_off_what_is_no_longer_wanted():
    actual = normalise_ai_gateway({"usage_tracking_config": {"enabled": True}, "fallback_config": {"enabled": True}})
    assert put_body({}, actual) == {"usage_tracking_config": {"enabled": False}, "fallback_config": {"enabled": False}}
