"""The fake's Messages routes answer by `model` as the real ones do: model services on /ai-gateway only."""

import pytest
import requests

from tests.support.fake_databricks.gateway import add_model_service, grant

ALICE, BOB = "alice@example.test", "bob@example.test"
AI_GATEWAY, SERVING = "/ai-gateway/anthropic/v1/messages", "/serving-endpoints/anthropic/v1/messages"
HOURLY = "RATE_LIMIT_RENEWAL_PERIOD_HOUR"  # an hour window: a test never straddles two


@pytest.fixture
def fake(fake_databricks, pki, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki.ca_pem)  # requests trusts the test CA
    return fake_databricks


def ask(fake, path, model, token=None, count_tokens=False):
    token = token or fake.issue_token(ALICE, 3600)
    body = {"model": model, "max_tokens": 8, "stream": False, "messages": [{"role": "user", "content": "hi"}]}
    return requests.post(fake.url + path + ("/count_tokens" if count_tokens else ""), json=body, timeout=10,
                         headers={"Authorization": "Bearer " + token})


def test_each_route_serves_its_own_kind_of_name_only(fake):
    # Databricks-provided model services: every account user may query them (EXECUTE on system.ai).
    answer = ask(fake, AI_GATEWAY, "system.ai.claude-sonnet-4-5")
    assert answer.status_code == 200 and answer.json()["model"] == "system.ai.claude-sonnet-4-5"
    assert ask(fake, AI_GATEWAY, "system.ai.claude-haiku-4-5", count_tokens=True).status_code == 200
    # A serving endpoint's name is not a model service; a model service name is not a serving endpoint.
    refused = ask(fake, AI_GATEWAY, "databricks-claude-sonnet-4-5")
    assert refused.status_code == 404 and "databricks-claude-sonnet-4-5" in refused.json()["message"]
    assert ask(fake, SERVING, "system.ai.claude-sonnet-4-5").status_code == 404
    assert ask(fake, SERVING, "databricks-claude-sonnet-4-5").status_code == 200
    assert ask(fake, AI_GATEWAY, "main.ai.no_such_service").status_code == 404


def test_querying_needs_every_privilege_and_the_answer_names_the_missing_one(fake):
    add_model_service(fake, "main.ai.claude_code", executors=())
    refused = ask(fake, AI_GATEWAY, "main.ai.claude_code")
    assert refused.status_code == 403
    assert refused.json() == {"error_code": "PERMISSION_DENIED", "message": "User does not have USE CATALOG on "
                                                                            "Catalog 'main'."}
    grant(fake, "CATALOG", "main", "claude-code-developers", "USE_CATALOG")
    grant(fake, "SCHEMA", "main.ai", "claude-code-developers", "USE_SCHEMA")
    assert "EXECUTE on Model Service 'main.ai.claude_code'" in ask(fake, AI_GATEWAY, "main.ai.claude_code").text
    grant(fake, "SCHEMA", "main.ai", ALICE, "EXECUTE")  # inherited from the schema, granted to the user
    assert ask(fake, AI_GATEWAY, "main.ai.claude_code").status_code == 200


def test_a_spent_rate_limit_is_429_for_that_user_only(fake):
    add_model_service(fake, "main.ai.claude_code", rate_limits=[
        {"key": "RATE_LIMIT_KEY_USER_DEFAULT", "renewal_period": HOURLY, "requests": 2},
        {"key": "RATE_LIMIT_KEY_USER", "principal": BOB, "renewal_period": HOURLY, "requests": 3}])
    alice = fake.issue_token(ALICE, 3600)
    assert [ask(fake, AI_GATEWAY, "main.ai.claude_code", alice).status_code for _try in range(3)] == [200, 200, 429]
    assert ask(fake, AI_GATEWAY, "main.ai.claude_code", alice).json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    bob = fake.issue_token(BOB, 3600)  # his own limit replaces the default one
    assert [ask(fake, AI_GATEWAY, "main.ai.claude_code", bob).status_code for _try in range(4)] == [200, 200, 200, 429]
    assert ask(fake, AI_GATEWAY, "system.ai.claude-sonnet-4-5", alice).status_code == 200  # per model service


def test_a_token_of_another_workspace_is_400_invalid_token_on_the_gateway(fake):
    foreign = fake.issue_token(ALICE, 3600, workspace_id="999")
    refused = ask(fake, AI_GATEWAY, "system.ai.claude-sonnet-4-5", foreign)
    assert refused.status_code == 400 and refused.text == "Invalid Token"
    assert ask(fake, SERVING, "databricks-claude-sonnet-4-5", foreign).status_code == 403
    expired = fake.issue_token(ALICE, 10)  # the usual 403 "Invalid Token" for a token past its life
    assert ask(fake, AI_GATEWAY, "system.ai.claude-sonnet-4-5", expired).status_code == 403
