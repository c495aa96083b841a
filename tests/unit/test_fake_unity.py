"""The fake's Unity AI Gateway control plane speaks what the official SDK speaks.

Driven with the real `WorkspaceClient(...).ai_gateway` and `.grants`; every object read back is
round-tripped through the SDK's from_dict/as_dict, so a field the SDK does not know (or one it
would drop) fails here.
"""

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.errors import NotFound, ResourceConflict
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service import catalog as uc

from tests.support.fake_databricks import make_fake

ADMIN = "admin@example.test"
PROVIDER = {"comment": "Anthropic, billed to the platform team", "config": {
    "provider_type": "EXTERNAL_MODEL_PROVIDER_TYPE_ANTHROPIC",
    "anthropic": {"direct": {"api_key": {"plaintext": "sk-ant-not-a-real-key"}}},
    "targets": [{"model": "claude-sonnet-4-5", "native_api_types": ["anthropic/v1/messages"]},
                {"model": "claude-haiku-4-5", "native_api_types": ["anthropic/v1/messages"]}]}}


def _service(**config):
    routing = {"destinations": [
        {"name": "ppt", "destination_type": "DESTINATION_TYPE_PAY_PER_TOKEN_FOUNDATION_MODEL",
         "pay_per_token_config": {"model": "models/system.ai.databricks-claude-sonnet-4-5"},
         "traffic_percentage": 80},
        {"name": "ext", "destination_type": "DESTINATION_TYPE_EXTERNAL_FOUNDATION_MODEL",
         "external_model_config": {"model_provider_service": "model-provider-services/main.ai.anthropic",
                                   "target": {"model": "claude-sonnet-4-5"}},
         "traffic_percentage": 20}],
        "fallback": {"destinations": [
            {"name": "haiku", "destination_type": "DESTINATION_TYPE_EXTERNAL_FOUNDATION_MODEL",
             "external_model_config": {"model_provider_service": "model-provider-services/main.ai.anthropic",
                                       "target": {"model": "claude-haiku-4-5"}}}]}}
    body = {"routing": routing, "rate_limits": [
        {"key": "RATE_LIMIT_KEY_USER_DEFAULT", "renewal_period": "RATE_LIMIT_RENEWAL_PERIOD_MINUTE",
         "requests": 60, "tokens": 400000},
        {"key": "RATE_LIMIT_KEY_USER_GROUP", "principal": "claude-code-developers",
         "renewal_period": "RATE_LIMIT_RENEWAL_PERIOD_HOUR", "tokens": 5000000}],
        "inference_table": {"parent": "schemas/main.ai"}}
    body.update(config)
    return uc.ModelService.from_dict({"comment": "Claude Code", "config": body})


@pytest.fixture
def fake():
    fake = make_fake()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def w(fake):
    return WorkspaceClient(host=fake.url, token=fake.issue_token(ADMIN, 3600))


def _roundtrip(obj):
    """The SDK object rebuilt from its own dict equals itself (nothing the SDK cannot carry)."""
    again = type(obj).from_dict(obj.as_dict())
    assert again.as_dict() == obj.as_dict()
    return obj.as_dict()


def _raw(fake, path):
    return requests.get(fake.url + path, headers={"Authorization": "Bearer " + fake.issue_token(ADMIN, 60)}).json()


def _create(w):
    provider = w.ai_gateway.create_model_provider_service(
        uc.ModelProviderService.from_dict(PROVIDER), parent="schemas/main.ai", model_provider_service_id="anthropic")
    service = w.ai_gateway.create_model_service(_service(), parent="schemas/main.ai", model_service_id="claude_code")
    return provider, service


def test_create_derives_name_and_server_fields(fake, w):
    provider, service = _create(w)
    assert service.name == "model-services/main.ai.claude_code"
    assert provider.name == "model-provider-services/main.ai.anthropic"
    for obj in (provider, service):
        assert obj.created_by == ADMIN and obj.effective_owner == ADMIN and obj.etag and obj.metastore_id
        assert obj.create_time is not None and obj.update_time is not None
    raw = _raw(fake, "/api/2.1/unity-catalog/model-services/main.ai.claude_code")
    assert raw == _roundtrip(w.ai_gateway.get_model_service("model-services/main.ai.claude_code"))
    assert raw["config"]["inference_table"]["table"] == "tables/main.ai.claude_code_payload"
    assert fake.unity.model_service("main.ai.claude_code")["config"]["rate_limits"][0]["requests"] == 60


def test_plaintext_secret_is_input_only(fake, w):
    _create(w)
    got = w.ai_gateway.get_model_provider_service("model-provider-services/main.ai.anthropic")
    assert got.config.anthropic.direct.api_key.as_dict() == {}  # the secret object stays, empty
    assert "sk-ant" not in str(_raw(fake, "/api/2.1/unity-catalog/model-provider-services/main.ai.anthropic"))
    _roundtrip(got)


def test_list_pages_and_views(fake, w):
    _create(w)
    for n in range(4):
        w.ai_gateway.create_model_service(_service(inference_table=None), parent="schemas/main.ai",
                                          model_service_id="svc%d" % n)
    full = list(w.ai_gateway.list_model_services(parent="schemas/main.ai", page_size=2,
                                                 view=uc.ListModelServicesRequestView.FULL))
    assert [s.name.split(".")[-1] for s in full] == ["claude_code", "svc0", "svc1", "svc2", "svc3"]
    assert len(fake.calls("/model-services$", "GET")) == 3  # 2 + 2 + 1
    assert full[0].config.routing.destinations
    basic = list(w.ai_gateway.list_model_services(parent="schemas/main.ai"))
    assert basic[0].config.routing is None and basic[0].config.rate_limits[1].principal is None
    for s in full + basic:
        _roundtrip(s)
    providers = list(w.ai_gateway.list_model_provider_services(parent="schemas/main.ai"))
    assert [p.name for p in providers] == ["model-provider-services/main.ai.anthropic"]


def test_granular_update_mask_and_etag(fake, w):
    service = _create(w)[1]
    change = uc.ModelService.from_dict({"config": {"rate_limits": [
        {"key": "RATE_LIMIT_KEY_SERVICE", "renewal_period": "RATE_LIMIT_RENEWAL_PERIOD_MINUTE", "requests": 5}]}})
    updated = w.ai_gateway.update_model_service(service.name, change, FieldMask(["config.rate_limits"]),
                                                etag=service.etag)
    assert updated.etag != service.etag
    assert [r.key.value for r in updated.config.rate_limits] == ["RATE_LIMIT_KEY_SERVICE"]
    assert len(updated.config.routing.destinations) == 2 and updated.config.inference_table  # siblings kept
    with pytest.raises(ResourceConflict) as stale:  # the etag of the first read
        w.ai_gateway.update_model_service(service.name, change, FieldMask(["comment"]), etag=service.etag)
    assert stale.value.error_code == "ABORTED"
    for path in ("config.routing", "config.routing.fallback"):
        with pytest.raises(DatabricksError, match="Unsupported update_mask"):
            w.ai_gateway.update_model_service(service.name, change, FieldMask([path]))
    cleared = w.ai_gateway.update_model_service(
        service.name, uc.ModelService(), FieldMask(["config.routing.fallback.destinations", "comment"]))
    assert cleared.config.routing.fallback is None and cleared.comment is None
    _roundtrip(cleared)


def test_etag_of_a_write_behind_the_back_changes(fake, w):
    service = _create(w)[1]
    fake.unity.edit("MODEL_SERVICE", "main.ai.claude_code", lambda rec: rec.update(comment="edited"))
    with pytest.raises(ResourceConflict):
        w.ai_gateway.delete_model_service(service.name, etag=service.etag)
    w.ai_gateway.delete_model_service(service.name)
    with pytest.raises(NotFound):
        w.ai_gateway.get_model_service(service.name)


def test_validation_names_the_problem(fake, w):
    _create(w)
    bad = _service()
    bad.config.routing.destinations[0].traffic_percentage = 70
    with pytest.raises(DatabricksError, match="add up to 100"):
        w.ai_gateway.create_model_service(bad, parent="schemas/main.ai", model_service_id="bad")
    with pytest.raises(NotFound, match="Schema 'main.nope'"):
        w.ai_gateway.create_model_service(_service(), parent="schemas/main.nope", model_service_id="x")
    with pytest.raises(ResourceConflict):
        w.ai_gateway.create_model_service(_service(), parent="schemas/main.ai", model_service_id="claude_code")
    with pytest.raises(DatabricksError, match="immutable"):
        w.ai_gateway.update_model_provider_service(
            "model-provider-services/main.ai.anthropic",
            uc.ModelProviderService.from_dict({"config": {"provider_type": "EXTERNAL_MODEL_PROVIDER_TYPE_OPENAI",
                                                          "openai": {"direct": {}}}}),
            FieldMask(["config"]))


def test_provider_replacement_without_auth_keeps_the_binding(fake, w):
    _create(w)
    name = "model-provider-services/main.ai.anthropic"
    w.ai_gateway.update_model_provider_service(
        name, uc.ModelProviderService.from_dict({"config": {"anthropic": {"direct": {}}}}),
        FieldMask(["config.provider"]))
    assert fake.unity.services["MODEL_PROVIDER_SERVICE"]["main.ai.anthropic"]["config"]["anthropic"] == \
        PROVIDER["config"]["anthropic"]


def test_provisioned_throughput_model_is_server_resolved(fake, w):
    fake.serving.update_seconds = 0
    requests.post(fake.url + "/api/2.0/serving-endpoints", json={"name": "pt", "config": {"served_entities": [
        {"entity_name": "system.ai.databricks-claude-opus-4-6", "entity_version": "1"}]}},
        headers={"Authorization": "Bearer " + fake.issue_token(ADMIN, 60)}).raise_for_status()
    service = uc.ModelService.from_dict({"config": {"routing": {"destinations": [
        {"name": "pt", "destination_type": "DESTINATION_TYPE_PROVISIONED_THROUGHPUT_FOUNDATION_MODEL",
         "provisioned_throughput_config": {"model_serving_endpoint": "serving-endpoints/pt"}}]}}})
    made = w.ai_gateway.create_model_service(service, parent="schemas/main.ai", model_service_id="pt")
    assert made.config.routing.destinations[0].provisioned_throughput_config.model == \
        "system.ai.databricks-claude-opus-4-6"


def test_grants_direct_effective_and_inherited(fake, w):
    _create(w)
    fake.unity.add_group("devs", ["alice@example.test"])
    w.grants.update("catalog", "main", changes=[uc.PermissionsChange(principal="devs", add=[uc.Privilege.USE_CATALOG])])
    w.grants.update("schema", "main.ai", changes=[uc.PermissionsChange(principal="devs", add=[uc.Privilege.USE_SCHEMA])])
    assert fake.unity.missing_to_query("alice@example.test", "main.ai.claude_code") == \
        ("MODEL_SERVICE", "main.ai.claude_code", "EXECUTE")
    got = w.grants.update("MODEL_SERVICE", "main.ai.claude_code",
                          changes=[uc.PermissionsChange(principal="devs", add=[uc.Privilege.EXECUTE])])
    assert [a.as_dict() for a in got.privilege_assignments] == [{"principal": "devs", "privileges": ["EXECUTE"]}]
    assert fake.unity.has_privilege("alice@example.test", "MODEL_SERVICE", "main.ai.claude_code", "EXECUTE")
    assert not fake.unity.has_privilege("bob@example.test", "MODEL_SERVICE", "main.ai.claude_code", "EXECUTE")
    assert fake.unity.missing_to_query("alice@example.test", "main.ai.claude_code") is None
    assert fake.unity.missing_to_query("bob@example.test", "main.ai.claude_code")[2] == "USE_CATALOG"
    assert fake.unity.missing_to_query("bob@example.test", "system.ai.claude-haiku-4-5") is None  # account users
    direct = w.grants.get("model_service", "main.ai.claude_code")
    assert _roundtrip(direct) == {"privilege_assignments": [{"principal": "devs", "privileges": ["EXECUTE"]}]}
    effective = w.grants.get_effective("MODEL_SERVICE", "main.ai.claude_code")
    _roundtrip(effective)
    privs = {(p.privilege.value, p.inherited_from_type.value if p.inherited_from_type else None)
             for p in effective.privilege_assignments[0].privileges}
    assert privs == {("EXECUTE", None), ("USE_SCHEMA", "SCHEMA"), ("USE_CATALOG", "CATALOG")}
    w.grants.update("MODEL_SERVICE", "main.ai.claude_code",
                    changes=[uc.PermissionsChange(principal="devs", remove=[uc.Privilege.EXECUTE])])
    assert not w.grants.get("MODEL_SERVICE", "main.ai.claude_code").privilege_assignments
    with pytest.raises(DatabricksError, match="Could not find principal with name nobody-here"):
        w.grants.update("SCHEMA", "main.ai", changes=[uc.PermissionsChange(principal="nobody-here",
                                                                           add=[uc.Privilege.USE_SCHEMA])])
    with pytest.raises(DatabricksError, match="not applicable"):
        w.grants.update("MODEL_SERVICE", "main.ai.claude_code",
                        changes=[uc.PermissionsChange(principal="devs", add=[uc.Privilege.USE_CATALOG])])


def test_sdk_sends_workspace_id_and_fake_accepts_it(fake, w):
    _create(w)
    sent = fake.calls("/unity-catalog/model-services$", "POST")[-1]
    assert sent.headers.get("x-databricks-workspace-id") == fake.workspace_id
