"""The fake gives the answers of the real service that a friendlier sandbox would not (issue 8).

Driven with the official databricks-sdk where it has an API for the call, with requests where it has
none (the Anthropic Messages API). Each answer's public source: docs/design.md "Service behaviours we
rely on".
"""

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import BadRequest, DatabricksError
from databricks.sdk.service.serving import (
    AiGatewayRateLimit,
    AiGatewayRateLimitKey,
    AiGatewayRateLimitRenewalPeriod,
    AiGatewayUsageTrackingConfig,
    EndpointCoreConfigInput,
    EndpointTag,
    ServedEntityInput,
)

from tests.support.fake_databricks import serving
from tests.unit.test_fake_serving import fake  # noqa: F401 # pylint: disable=unused-import

USER = "alice@example.test"
PAY_PER_TOKEN = "databricks-claude-sonnet-4-5"
MODEL_SERVICE = "system.ai.claude-sonnet-4-5"  # Databricks-provided; every account user may query it


def client(fake, **kwargs) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=fake.url, token=fake.issue_token(USER, 3600), retry_timeout_seconds=5,
                                         **kwargs))


def config(name, n=1):
    entities = [ServedEntityInput(entity_name="main.models.m%d" % i, entity_version="1") for i in range(n)]
    return EndpointCoreConfigInput(name=name, served_entities=entities)


def test_an_endpoint_serves_at_most_15_entities(fake):
    w = client(fake)
    w.serving_endpoints.create("fifteen", config=config("fifteen", 15))
    with pytest.raises(BadRequest, match="at most 15"):
        w.serving_endpoints.create("sixteen", config=config("sixteen", 16))


def test_an_unnamed_entity_is_named_entity_name_dash_version(fake):
    w = client(fake)
    w.serving_endpoints.create("ep", config=config("ep", 1))
    [entity] = w.serving_endpoints.get("ep").config.served_entities
    assert entity.name == "main.models.m0-1"


def test_endpoint_url_only_for_route_optimized_endpoints(fake):
    w = client(fake)
    w.serving_endpoints.create("plain", config=config("plain", 1))
    w.serving_endpoints.create("fast", config=config("fast", 1),
                               route_optimized=True)
    assert w.serving_endpoints.get("plain").endpoint_url is None
    assert w.serving_endpoints.get("fast").endpoint_url.endswith("/serving-endpoints/fast/invocations")


@pytest.mark.parametrize("code", ["RESOURCE_CONFLICT", "INVALID_STATE"])
def test_tags_and_ai_gateway_writes_are_409_while_an_update_runs(fake, code):
    fake.serving.update_seconds = 60
    fake.serving.conflict_error_code = code
    w = client(fake)
    w.serving_endpoints.create("ep", config=config("ep", 1))
    with pytest.raises(DatabricksError) as tags:
        w.serving_endpoints.patch("ep", add_tags=[EndpointTag(key="team", value="a")])
    with pytest.raises(DatabricksError) as gateway:
        w.serving_endpoints.put_ai_gateway("ep", usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True))
    assert tags.value.error_code == gateway.value.error_code == code
    token = fake.issue_token(USER, 3600)
    assert requests.patch(fake.url + "/api/2.0/serving-endpoints/ep/tags", json={"delete_tags": ["x"]},
                          headers={"Authorization": "Bearer " + token}).status_code == 409
    fake.serving.finish_updates()
    w.serving_endpoints.patch("ep", add_tags=[EndpointTag(key="team", value="a")])


def test_a_unified_host_routes_workspace_calls_by_the_workspace_id_header(fake):
    second = serving.add_workspace(fake, "2222")
    first_client = client(fake, workspace_id=fake.workspace_id)
    second_client = client(fake, workspace_id="2222")
    second_client.serving_endpoints.create("only-in-2222", config=config("only-in-2222", 1))
    assert "only-in-2222" in second.endpoints and "only-in-2222" not in fake.serving.endpoints
    assert {e.name for e in first_client.serving_endpoints.list()} == set(fake.serving.endpoints)
    assert [r.headers["x-databricks-workspace-id"] for r in fake.calls("only-in-2222|serving-endpoints$")] \
        == ["2222", fake.workspace_id]
    with pytest.raises(BadRequest, match="X-Databricks-Workspace-Id"):
        client(fake).serving_endpoints.list()  # the unified host's metadata names no workspace


def messages(fake, route="serving-endpoints", suffix="", headers=None, model=PAY_PER_TOKEN, principal=USER):
    sent = {"Authorization": "Bearer " + fake.issue_token(principal, 3600)}
    sent.update(headers or {})
    return requests.post("%s/%s/anthropic/v1/messages%s" % (fake.url, route, suffix), headers=sent,
                         json={"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})


def test_a_rate_limit_of_0_disables_the_endpoint_for_that_key(fake):
    client(fake).serving_endpoints.put_ai_gateway(PAY_PER_TOKEN, rate_limits=[AiGatewayRateLimit(
        calls=0, key=AiGatewayRateLimitKey.USER, principal=USER, renewal_period=AiGatewayRateLimitRenewalPeriod.MINUTE)])
    refused = messages(fake)
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert messages(fake, principal="bob@example.test").status_code == 200
    assert messages(fake, route="ai-gateway", model=MODEL_SERVICE).status_code == 200  # the legacy gateway does not govern /ai-gateway


def test_count_tokens_is_404_on_serving_endpoints(fake):
    answer = messages(fake, suffix="/count_tokens")
    assert answer.status_code == 404
    assert answer.json()["message"] == "Path must be of form /serving-endpoints/<endpoint_name>/invocations"
    assert messages(fake, route="ai-gateway", model=MODEL_SERVICE, suffix="/count_tokens").status_code == 200


def test_beta_values_not_on_the_routes_allow_list_are_400_naming_the_header(fake):
    beta = {"anthropic-beta": "claude-code-20250219,context-management-2025-06-27"}
    refused = messages(fake, headers=beta)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "`context-management-2025-06-27`" in error["message"] and "`anthropic-beta` header" in error["message"]
    assert "claude-code-20250219`" not in error["message"]
    assert messages(fake, headers={"anthropic-beta": "claude-code-20250219"}).status_code == 200
    assert messages(fake, route="ai-gateway", model=MODEL_SERVICE, headers=beta).status_code == 200
    fake.anthropic.allowed_betas["ai-gateway"] = frozenset()
    assert messages(fake, route="ai-gateway", model=MODEL_SERVICE, headers=beta).status_code == 400


def test_a_policy_patched_whole_with_update_mask_oidc_policy_loses_the_fields_left_out(fake):
    """What the federation_policy module relies on, as the Terraform provider sends it."""
    from databricks.sdk import AccountClient
    from databricks.sdk.service.oauth2 import FederationPolicy, OidcFederationPolicy

    a = AccountClient(config=Config(host=fake.url, account_id=fake.account_id, retry_timeout_seconds=5,
                                    token=fake.issue_token("admin@example.test", 3600)))
    issuer = "https://idp.example.test"
    a.federation_policy.create(FederationPolicy(description="d", oidc_policy=OidcFederationPolicy(
        issuer=issuer, subject_claim="email", jwks_uri="https://idp.example.test/keys")), policy_id="p1")
    whole = OidcFederationPolicy(issuer=issuer, subject_claim="email", jwks_json='{"keys": []}')
    after = a.federation_policy.update("p1", FederationPolicy(oidc_policy=whole), update_mask="oidc_policy")
    assert after.oidc_policy.jwks_uri is None and after.oidc_policy.jwks_json == '{"keys": []}'
    assert after.oidc_policy.subject_claim == "email" and after.description == "d"  # not in the mask: kept
    assert fake.calls("/federationPolicies/p1$", "PATCH")[-1].arg("update_mask") == "oidc_policy"
