"""Unity AI Gateway desired-vs-actual: canonical forms, granular update paths, grants, the etag retry."""

import pytest

from ansible_collections.databricks_claude.gateway.plugins.module_utils import model_provider_config as mpc
from ansible_collections.databricks_claude.gateway.plugins.module_utils import model_service_config as msc
from ansible_collections.databricks_claude.gateway.plugins.module_utils.errors import DatabricksApiError, OperationFailed
from ansible_collections.databricks_claude.gateway.plugins.module_utils.uc_grants import (
    apply_changes,
    desired_grants,
    direct_grants,
    grant_changes,
    revoke_changes,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_api import (
    MODEL_SERVICE,
    service_path,
    update_with_etag,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_config import (
    mask_update,
    rate_limit_problems,
    rate_limits_body,
)

PARAMS = {
    "comment": "Claude Code",
    "destinations": [
        {"model": "system.ai.databricks-claude-sonnet-4-5", "traffic_percentage": 80},
        {"model_provider_service": "main.ai.anthropic", "model": "claude-sonnet-4-5", "traffic_percentage": 20}],
    "fallback_destinations": [{"model_provider_service": "main.ai.anthropic", "model": "claude-haiku-4-5"}],
    "rate_limits": [{"key": "user_default", "renewal_period": "minute", "requests": 60, "tokens": None,
                     "principal": None},
                    {"key": "service", "renewal_period": "hour", "requests": 1000, "tokens": None, "principal": None}],
    "inference_table": {"enabled": True, "catalog_name": "main", "schema_name": "ai", "table_name_prefix": None},
}

# What the service shows after creating PARAMS: server fields, another order, defaults filled in.
READ = {
    "name": "model-services/main.ai.claude_code", "etag": "AAA=", "create_time": "2026-12-01T00:00:00Z",
    "effective_owner": "admin@example.test", "comment": "Claude Code", "supported_api_types": ["x"],
    "config": {
        "routing": {
            "destinations": [
                {"name": "claude-sonnet-4-5", "destination_type": "DESTINATION_TYPE_EXTERNAL_FOUNDATION_MODEL",
                 "is_deleted": False, "traffic_percentage": 20,
                 "external_model_config": {"model_provider_service": "model-provider-services/main.ai.anthropic",
                                           "target": {"model": "claude-sonnet-4-5",
                                                      "native_api_types": ["anthropic/v1/messages"]}}},
                {"name": "databricks-claude-sonnet-4-5", "traffic_percentage": 80,
                 "destination_type": "DESTINATION_TYPE_PAY_PER_TOKEN_FOUNDATION_MODEL",
                 "pay_per_token_config": {"model": "models/system.ai.databricks-claude-sonnet-4-5"}}],
            "fallback": {"destinations": [
                {"name": "claude-haiku-4-5", "destination_type": "DESTINATION_TYPE_EXTERNAL_FOUNDATION_MODEL",
                 "external_model_config": {"model_provider_service": "model-provider-services/main.ai.anthropic",
                                           "target": {"model": "claude-haiku-4-5"}}}]}},
        "rate_limits": [
            {"key": "RATE_LIMIT_KEY_SERVICE", "renewal_period": "RATE_LIMIT_RENEWAL_PERIOD_HOUR", "requests": 1000},
            {"key": "RATE_LIMIT_KEY_USER_DEFAULT", "renewal_period": "RATE_LIMIT_RENEWAL_PERIOD_MINUTE",
             "requests": 60}],
        "inference_table": {"parent": "schemas/main.ai", "table_name_prefix": "claude_code",
                            "table": "tables/main.ai.claude_code_payload"}}}


def _compare(params, read):
    desired = msc.desired_paths(params, "claude_code")
    return desired, msc.fill_server_defaults(desired, msc.actual_paths(read, "claude_code"))


def test_server_managed_fields_and_order_are_not_drift():
    desired, actual = _compare(PARAMS, READ)
    assert mask_update(desired, actual) == ([], {})


def test_a_lone_destination_without_percentage_equals_one_with_100():
    params = dict(PARAMS, destinations=[{"model": "system.ai.databricks-claude-sonnet-4-5"}])
    read = {"config": {"routing": {"destinations": [dict(READ["config"]["routing"]["destinations"][1],
                                                         traffic_percentage=100)]}}}
    desired = msc.desired_paths(dict(params, comment=None, fallback_destinations=None, rate_limits=None,
                                     inference_table=None), "claude_code")
    assert mask_update(desired, msc.actual_paths(read, "claude_code")) == ([], {})


def test_only_the_paths_that_differ_are_written():
    params = dict(PARAMS, rate_limits=PARAMS["rate_limits"][:1], fallback_destinations=[])
    desired, actual = _compare(params, READ)
    paths, body = mask_update(desired, actual)
    assert paths == ["config.rate_limits", "config.routing.fallback.destinations"]
    # the fallback is cleared by naming its path and leaving it out of the body
    assert body == {"config": {"rate_limits": [{"key": "RATE_LIMIT_KEY_USER_DEFAULT", "requests": 60,
                                                "renewal_period": "RATE_LIMIT_RENEWAL_PERIOD_MINUTE"}]}}


def test_unmanaged_parts_are_left_alone():
    params = dict(PARAMS, comment=None, fallback_destinations=None, rate_limits=None, inference_table=None)
    desired, actual = _compare(params, dict(READ, comment="someone else's"))
    assert set(desired) == {"config.routing.destinations"} and mask_update(desired, actual) == ([], {})


def test_a_changed_traffic_split_rewrites_the_destinations():
    params = dict(PARAMS, destinations=[dict(PARAMS["destinations"][0], traffic_percentage=50),
                                        dict(PARAMS["destinations"][1], traffic_percentage=50)])
    desired, actual = _compare(params, READ)
    paths, body = mask_update(desired, actual)
    assert paths == ["config.routing.destinations"]
    assert [d["traffic_percentage"] for d in body["config"]["routing"]["destinations"]] == [50, 50]


def test_destination_problems_name_the_option():
    assert msc.destination_problems([{"model_provider_service": "main.ai.x"}], "destinations") == [
        "destinations[0] (type external_model) needs model"]
    assert "take no traffic_percentage" in msc.destination_problems(
        [{"model": "m", "traffic_percentage": 10}], "fallback_destinations")[0]


def test_rate_limit_keys_and_periods_in_the_apis_words():
    assert rate_limits_body([{"key": "user_group", "principal": "devs", "renewal_period": "hour", "tokens": 5,
                              "requests": None}]) == [
        {"key": "RATE_LIMIT_KEY_USER_GROUP", "principal": "devs", "renewal_period": "RATE_LIMIT_RENEWAL_PERIOD_HOUR",
         "tokens": 5}]
    assert rate_limit_problems([{"key": "service", "principal": "x"}, {"key": "user"}]) == [
        "rate_limits[0]: key service takes no principal",
        "rate_limits[1]: key user needs a principal"]


PROVIDER_PARAMS = {"provider": "anthropic", "api_key_secret": "main.ai.key", "service_credential": None,
                   "region": None, "provider_config": None, "comment": None,
                   "targets": [{"model": "claude-sonnet-4-5", "native_api_types": ["anthropic/v1/messages"]}],
                   "allow_all_targets": None, "rate_limits": None, "inference_table": None}


def test_provider_block_and_its_mask_location():
    desired = mpc.desired_paths(PROVIDER_PARAMS, "anthropic")
    body = mpc.create_body(desired, "anthropic")
    assert body["config"]["anthropic"] == {"direct": {"api_key": {"secret_reference": {"name": "secrets/main.ai.key"}}}}
    assert body["config"]["provider_type"] == "EXTERNAL_MODEL_PROVIDER_TYPE_ANTHROPIC"
    read = {"config": dict(body["config"], anthropic={"direct": {"api_key": {
        "secret_reference": {"name": "secrets/main.ai.key"}}, "server_added": True}})}
    actual = mpc.fill_provider(desired, mpc.actual_paths(read, "anthropic"))
    assert mask_update(desired, actual, mpc.LOCATIONS["anthropic"]) == ([], {})
    rotated = mpc.desired_paths(dict(PROVIDER_PARAMS, api_key_secret="main.ai.key2"), "anthropic")
    paths, body = mask_update(rotated, mpc.fill_provider(rotated, mpc.actual_paths(read, "anthropic")),
                              mpc.LOCATIONS["anthropic"])
    assert paths == ["config.provider"] and "anthropic" in body["config"]


def test_provider_problems():
    assert mpc.provider_problems(dict(PROVIDER_PARAMS, service_credential="r"))[0].startswith(
        "service_credential: provider anthropic takes no service credential")
    assert "not as plaintext" in mpc.provider_problems(dict(PROVIDER_PARAMS, provider_config={
        "direct": {"api_key": {"plaintext": "sk"}}}))[0]
    assert mpc.provider_problems(dict(PROVIDER_PARAMS, provider="amazon_bedrock", api_key_secret=None,
                                      service_credential="role", region="us-east-1")) == []


def test_grants_named_principals_exactly_others_alone_unless_exclusive():
    actual = direct_grants({"privilege_assignments": [{"principal": "devs", "privileges": ["EXECUTE", "MANAGE"]},
                                                      {"principal": "bob", "privileges": ["EXECUTE"]}]})
    desired = desired_grants([{"principal": "devs", "privileges": ["execute"]},
                              {"principal": "ops", "privileges": ["MANAGE"]}])
    assert grant_changes(desired, actual) == [{"principal": "devs", "remove": ["MANAGE"]},
                                              {"principal": "ops", "add": ["MANAGE"]}]
    changes = grant_changes(desired, actual, exclusive=True)
    assert {"principal": "bob", "remove": ["EXECUTE"]} in changes
    assert apply_changes(actual, changes) == {"devs": {"EXECUTE"}, "ops": {"MANAGE"}}
    assert grant_changes({"devs": {"EXECUTE", "MANAGE"}, "bob": {"EXECUTE"}}, actual, exclusive=True) == []
    assert revoke_changes({"devs": {"MANAGE", "USE_SCHEMA"}}, actual) == [{"principal": "devs", "remove": ["MANAGE"]}]


class _Client:
    """Answers PATCH from a script; GET returns the next stored read."""

    def __init__(self, patch_answers, reads):
        self.patch_answers, self.reads, self.calls = list(patch_answers), list(reads), []

    def patch(self, path, body, query=None):
        self.calls.append(("PATCH", path, query))
        answer = self.patch_answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, path, missing_ok=False, query=None):
        self.calls.append(("GET", path, query))
        return self.reads.pop(0)


def _stale():
    return DatabricksApiError(409, "ABORTED", "etag mismatch")


def test_update_with_etag_rereads_once_and_replans():
    client = _Client([_stale(), {"etag": "C"}], [{"etag": "B", "comment": "x"}])
    plans = []

    def plan(current):
        plans.append(current["etag"])
        return ["comment"], {"comment": "y"}
    result, paths = update_with_etag(client, MODEL_SERVICE, "main.ai.s", {"etag": "A"}, plan)
    assert result == {"etag": "C"} and paths == ["comment"] and plans == ["A", "B"]
    assert [c[2].get("etag") if c[2] else None for c in client.calls] == ["A", None, "B"]
    assert client.calls[1][1] == service_path(MODEL_SERVICE, "main.ai.s") == \
        "/api/2.1/unity-catalog/model-services/main.ai.s"


def test_update_with_etag_stops_after_a_second_conflict_and_when_nothing_is_left():
    client = _Client([_stale(), _stale()], [{"etag": "B"}])
    with pytest.raises(OperationFailed, match="second etag conflict"):
        update_with_etag(client, MODEL_SERVICE, "main.ai.s", {"etag": "A"}, lambda c: (["comment"], {}))
    client = _Client([_stale()], [{"etag": "B", "done": True}])
    result, paths = update_with_etag(client, MODEL_SERVICE, "main.ai.s", {"etag": "A"},
                                     lambda c: None if c.get("done") else (["comment"], {}))
    assert paths == [] and result["etag"] == "B"
    client = _Client([DatabricksApiError(409, "RESOURCE_CONFLICT", "busy")], [])
    with pytest.raises(DatabricksApiError):  # only a stale etag is re-read
        update_with_etag(client, MODEL_SERVICE, "main.ai.s", {"etag": "A"}, lambda c: (["comment"], {}))
