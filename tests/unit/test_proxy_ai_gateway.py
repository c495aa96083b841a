"""The auth proxy on the Unity AI Gateway route: its 400 "Invalid Token" is a refused token, other 400s are not."""

import json

from tests.support.fake_databricks import Response
from tests.support.launcher_fixtures import BASE_PATH, USER, message_body, read_events, token

INVALID_TOKEN = Response(400, b"Invalid Token", {"Content-Type": "text/plain"})  # ucode's test: plain text


def test_a_400_invalid_token_is_refreshed_once_and_replayed(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    proxy.request(body=message_body()).read()  # the proxy now holds its first token
    fake_databricks.fail(r"/v1/messages$", body=INVALID_TOKEN)
    resp = proxy.request(body=message_body())
    assert resp.status == 200 and read_events(resp)[-1]["type"] == "message_stop"
    first_token = proxy.fetches[0]
    refused, replay = fake_databricks.anthropic.requests()[1:]
    assert proxy.fetches == [first_token, refused.headers["authorization"][len("Bearer "):]]
    assert replay.headers["authorization"] != refused.headers["authorization"] and replay.body == refused.body


def test_a_400_about_the_request_reaches_claude_code_whole_without_a_refresh(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    proxy.request(body=message_body()).read()
    bad_beta = {"error_code": "BAD_REQUEST", "message": "Unsupported anthropic-beta value: advisor-tool-2026-03-01"}
    fake_databricks.fail(r"/v1/messages$", body=Response.json(bad_beta, 400, {"x-request-id": "r-1"}))
    resp = proxy.request(body=message_body())
    assert resp.status == 400 and json.loads(resp.read()) == bad_beta
    assert resp.getheader("x-request-id") == "r-1" and resp.getheader("Content-Type") == "application/json"
    assert len(proxy.fetches) == 1 and len(fake_databricks.anthropic.requests()) == 2
    # The connection stays usable for the next request.
    assert proxy.request(body=message_body()).status == 200


def test_a_second_invalid_token_reaches_claude_code_instead_of_looping(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    fake_databricks.fail(r"/v1/messages$", body=INVALID_TOKEN, times=2)
    resp = proxy.request(path=BASE_PATH + "/v1/messages", body=message_body())
    assert resp.status == 400 and resp.read() == b"Invalid Token"
    assert len(fake_databricks.anthropic.requests()) == 2 and len(proxy.fetches) == 2


def test_a_token_of_another_workspace_is_replaced_on_the_real_gateway_route(auth_proxy, fake_databricks):
    # The fake's own /ai-gateway answer (not an injected one): 400 "Invalid Token" for another workspace's token.
    foreign = token(fake_databricks.issue_token(USER, 3600, workspace_id="999"), 3600)
    proxy = auth_proxy(first=foreign, base_path="/ai-gateway/anthropic")
    resp = proxy.request(path="/ai-gateway/anthropic/v1/messages",
                         body=message_body(model="system.ai.claude-sonnet-4-5"))
    assert resp.status == 200 and read_events(resp)[-1]["type"] == "message_stop"
    assert proxy.fetches == [foreign.access_token]
