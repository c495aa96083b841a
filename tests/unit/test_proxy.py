"""The auth proxy in front of the fake workspace: what it forwards, what it refuses, how it keeps the token good."""

import json
import threading
import time

from tests.support.launcher_fixtures import BASE_PATH, USER, message_body, read_events, run_in_threads, token


def test_forwards_messages_with_the_databricks_token_instead_of_the_session_key(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    # Odd spacing and key order: the proxy must pass the bytes through, never re-serialise them.
    body = b'{"stream": true,   "model":"databricks-claude-sonnet-4-5","max_tokens":64,' \
           b'"messages":[{"role":"user","content":"hi \\u00e9"}]}'
    resp = proxy.request(body=body, headers={"x-api-key": proxy.session_key, "anthropic-beta": "claude-code-20250219",
                                             "x-databricks-use-coding-agent-mode": "true"})
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    kinds = [e["type"] for e in read_events(resp)]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]

    [seen] = fake_databricks.anthropic.requests()
    assert seen.path == BASE_PATH + "/v1/messages" and seen.query == {"beta": ["true"]}
    assert seen.body == body
    bearer = seen.headers["authorization"][len("Bearer "):]
    assert fake_databricks.tokens[bearer].subject == USER
    assert "x-api-key" not in seen.headers
    assert proxy.session_key not in json.dumps(seen.headers)
    assert seen.headers["anthropic-beta"] == "claude-code-20250219"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["x-databricks-use-coding-agent-mode"] == "true"


def test_forwards_count_tokens_and_passes_upstream_errors_through(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    resp = proxy.request(path=BASE_PATH + "/v1/messages/count_tokens", body=message_body(stream=False))
    assert resp.status == 404  # what Databricks answers there (claude-code issue 14007), passed on as it is
    assert json.loads(resp.read())["message"] == "Path must be of form /serving-endpoints/<endpoint_name>/invocations"
    assert [r.path for r in fake_databricks.calls("count_tokens")] == [BASE_PATH + "/v1/messages/count_tokens"]
    resp = proxy.request(body=message_body(model="claude-haiku-4-5-20251001"))
    assert resp.status == 404
    assert json.loads(resp.read())["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_the_ai_gateway_route_forwards_its_own_paths_only(auth_proxy, fake_databricks):
    proxy = auth_proxy(base_path="/ai-gateway/anthropic")
    resp = proxy.request(path="/ai-gateway/anthropic/v1/messages?beta=true",
                         body=message_body(model="system.ai.claude-sonnet-4-5"))
    assert resp.status == 200 and read_events(resp)[-1]["type"] == "message_stop"
    resp = proxy.request(path=BASE_PATH + "/v1/messages", body=message_body())
    resp.read()
    assert resp.status == 404
    assert [r.path for r in fake_databricks.calls()] == ["/ai-gateway/anthropic/v1/messages"]


def test_answers_the_preconnect_itself(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    for path in (BASE_PATH, BASE_PATH + "/"):
        resp = proxy.request("HEAD", path, key="")
        resp.read()
        assert resp.status == 200
    assert fake_databricks.calls() == []


def test_refuses_a_wrong_or_missing_session_key_without_reaching_the_workspace(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    for key in ("", "not-the-key", proxy.session_key[:-1] + "x"):
        resp = proxy.request(body=message_body(), key=key)
        error = json.loads(resp.read())
        assert resp.status == 401 and error["error"]["type"] == "authentication_error"
    # The session key belongs in Authorization; Claude Code's x-api-key alone does not count.
    resp = proxy.request(body=message_body(), key="", headers={"x-api-key": proxy.session_key})
    resp.read()
    assert resp.status == 401
    assert fake_databricks.calls() == [] and proxy.fetches == []


def test_refuses_every_other_path_and_method_without_reaching_the_workspace(auth_proxy, fake_databricks):
    proxy = auth_proxy()
    for method, path in [("GET", "/api/2.0/clusters/list"), ("POST", "/api/2.0/token/create"),
                         ("POST", "/serving-endpoints/databricks-claude-sonnet-4-5/invocations"),
                         ("POST", "/ai-gateway/anthropic/v1/messages"), ("GET", BASE_PATH + "/v1/models"),
                         ("POST", BASE_PATH + "/v1/messages/../../../api/2.0/clusters/list"),
                         ("POST", BASE_PATH + "/v1/messages/batches"), ("GET", BASE_PATH + "/v1/messages"),
                         ("HEAD", "/api/2.0/clusters/list")]:
        resp = proxy.request(method, path, body=None if method in ("GET", "HEAD") else message_body())
        body = resp.read()
        assert resp.status in (404, 405), (method, path, resp.status)
        if method != "HEAD":
            assert "claude-db proxy" in json.loads(body)["error"]["message"]
    assert fake_databricks.calls() == [] and proxy.fetches == []


def test_refreshes_once_and_replays_when_the_workspace_rejects_the_token(auth_proxy, fake_databricks):
    # The proxy believes the token is good for an hour; the workspace says 403 "Invalid Token".
    stale = token(fake_databricks.issue_token(USER, 5), 3600)
    proxy = auth_proxy(first=stale)
    resp = proxy.request(body=message_body())
    assert resp.status == 200 and read_events(resp)[-1]["type"] == "message_stop"
    assert proxy.fetches == [stale.access_token]
    first, replay = fake_databricks.anthropic.requests()
    assert first.headers["authorization"] == "Bearer " + stale.access_token
    assert replay.headers["authorization"] != first.headers["authorization"]
    assert replay.body == first.body
    # The fresh token is kept: the next request needs no refresh.
    proxy.request(body=message_body()).read()
    assert proxy.fetches == [stale.access_token]


def test_a_second_rejection_reaches_the_client_instead_of_looping(auth_proxy, fake_databricks):
    proxy = auth_proxy(fetch=lambda rejected: token("never-valid-" + str(time.time()), 3600))
    resp = proxy.request(body=message_body())
    assert resp.status == 403
    assert json.loads(resp.read()) == {"error_code": "403", "message": "Invalid Token"}
    assert len(fake_databricks.anthropic.requests()) == 2
    assert len(proxy.fetches) == 2  # the first token, then one refresh


def test_refreshes_ahead_of_expiry_instead_of_sending_a_dying_token(auth_proxy, fake_databricks):
    dying = token(fake_databricks.issue_token(USER, 3600), 20)  # the proxy's view: 20 s left
    proxy = auth_proxy(first=dying)
    assert proxy.request(body=message_body()).status == 200
    assert proxy.fetches == [None]
    [seen] = fake_databricks.anthropic.requests()
    assert seen.headers["authorization"] != "Bearer " + dying.access_token


def test_concurrent_requests_share_one_refresh(auth_proxy, fake_databricks):
    gate = threading.Event()

    def slow_fetch(rejected):
        gate.wait(10)
        return token(fake_databricks.issue_token(USER, 3600), 3600)

    proxy = auth_proxy(fetch=slow_fetch)
    threading.Timer(0.5, gate.set).start()
    statuses = run_in_threads(8, lambda i: proxy.request(body=message_body()).status)
    assert statuses == [200] * 8
    assert proxy.fetches == [None]


def test_a_sign_in_that_needs_the_user_becomes_a_clear_401(auth_proxy, fake_databricks):
    def signed_out(rejected):
        raise RuntimeError("not signed in; run `claude-db-token login`")

    proxy = auth_proxy(fetch=signed_out)
    resp = proxy.request(body=message_body())
    error = json.loads(resp.read())["error"]
    assert resp.status == 401 and error["type"] == "authentication_error"
    assert "claude-db-token login" in error["message"]
    assert fake_databricks.calls() == []


def test_beta_values_off_the_allow_list_are_dropped_and_the_workspace_id_added(auth_proxy, fake_databricks):
    proxy = auth_proxy(allowed_betas=frozenset(["claude-code-20250219"]), workspace_id="2222")
    resp = proxy.request(body=message_body(), headers={
        "anthropic-beta": "claude-code-20250219, context-management-2025-06-27",
        "X-Databricks-Workspace-Id": "spoofed"})
    assert resp.status == 200, resp.read()
    resp.read()
    resp = proxy.request(body=message_body(), headers={"anthropic-beta": "advisor-tool-2026-03-01"})
    assert resp.status == 200, resp.read()  # the fake's /serving-endpoints would have refused it with 400
    resp.read()
    first, second = fake_databricks.anthropic.requests()
    assert first.headers["anthropic-beta"] == "claude-code-20250219"
    assert "anthropic-beta" not in second.headers
    assert first.headers["x-databricks-workspace-id"] == second.headers["x-databricks-workspace-id"] == "2222"
