"""The module_utils client against the fake workspace over HTTPS: auth sources, errors, retries, waits."""

import pytest

from ansible_collections.databricks_claude.gateway.plugins.module_utils import client as client_mod
from ansible_collections.databricks_claude.gateway.plugins.module_utils.client import (
    RETRIES,
    DatabricksClient,
    backoff_delays,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.errors import (
    DatabricksApiError,
    DatabricksAuthError,
    OperationFailed,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.serving_api import (
    endpoint_path,
    wait_not_updating,
    when_not_updating,
)
from tests.support.fake_databricks import Response

CLAUDE = {"name": "claude", "config": {"served_entities": [{"external_model": {
    "provider": "anthropic", "name": "claude-sonnet-4-5", "task": "llm/v1/chat",
    "anthropic_config": {"anthropic_api_key": "{{secrets/s/k}}"}}}]}}


@pytest.fixture
def env(monkeypatch, tmp_path, pki):
    """A clean environment: no DATABRICKS_* from the caller, HOME in tmp, the test CA trusted."""
    import os
    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    for key, value in pki.client_env().items():
        monkeypatch.setenv(key, value)
    return monkeypatch


@pytest.fixture
def token(fake_databricks):
    return fake_databricks.issue_token("admin@example.test", 3600)


def make_client(fake, token, sleeps=None, **options):
    options = dict({"host": fake.url, "token": token}, **options)
    return DatabricksClient(options, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def failure_message(error, action, resource, name):
    """The `msg` DatabricksModule.api_errors fails the task with when `error` is raised inside it."""
    failed = {}

    class Task:
        def fail_json(self, **result):
            failed.update(result)

    with DatabricksModule.api_errors(Task(), action, resource, name):
        raise error
    return failed["msg"]


def test_explicit_options(env, fake_databricks, token):
    c = make_client(fake_databricks, token)
    assert c.get(endpoint_path("databricks-claude-sonnet-4-5"))["name"] == "databricks-claude-sonnet-4-5"
    assert fake_databricks.calls("/serving-endpoints/")[-1].headers["authorization"] == "Bearer " + token


def test_environment_variables(env, fake_databricks, token):
    env.setenv("DATABRICKS_HOST", fake_databricks.url)
    env.setenv("DATABRICKS_TOKEN", token)
    assert DatabricksClient({}).get(endpoint_path("databricks-claude-haiku-4-5"))["id"]


def test_databrickscfg_profile(env, fake_databricks, token, tmp_path):
    (tmp_path / ".databrickscfg").write_text("[admin]\nhost = %s\ntoken = %s\n" % (fake_databricks.url, token))
    assert DatabricksClient({"profile": "admin"}).get(endpoint_path("databricks-claude-haiku-4-5"))["id"]


def test_explicit_token_wins_over_environment(env, fake_databricks, token):
    env.setenv("DATABRICKS_HOST", fake_databricks.url)
    env.setenv("DATABRICKS_TOKEN", "dkea-not-valid")
    assert DatabricksClient({"token": token}).get(endpoint_path("databricks-claude-haiku-4-5"))["id"]


def test_no_configuration_is_an_auth_error(env):
    with pytest.raises(DatabricksAuthError) as e:
        DatabricksClient({})
    assert "DATABRICKS_HOST" in str(e.value) and "~/.databrickscfg" in str(e.value)


def test_account_client_needs_account_id(env, fake_databricks, token):
    fake_databricks.account_id = None  # the host metadata probe then names no account either
    with pytest.raises(DatabricksAuthError, match="account_id"):
        DatabricksClient({"host": fake_databricks.url, "token": token}, account=True)
    assert DatabricksClient({"host": fake_databricks.url, "token": token, "account_id": "acc-1"},
                            account=True).account_id == "acc-1"


def test_service_error_keeps_status_code_and_message(env, fake_databricks, token):
    with pytest.raises(DatabricksApiError) as e:
        make_client(fake_databricks, token).get(endpoint_path("nope"))
    assert (e.value.status, e.value.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert failure_message(e.value, "get", "serving endpoint", "nope") == \
        "get serving endpoint nope: Endpoint with name 'nope' does not exist."
    assert make_client(fake_databricks, token).get(endpoint_path("nope"), missing_ok=True) is None


def test_expired_token_is_403_not_retried(env, fake_databricks):
    stale = fake_databricks.issue_token("admin@example.test", 10)
    sleeps = []
    with pytest.raises(DatabricksApiError) as e:
        make_client(fake_databricks, stale, sleeps).get(endpoint_path("databricks-claude-haiku-4-5"))
    assert (e.value.status, e.value.message, sleeps) == (403, "Invalid Token", [])


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_are_retried_with_backoff(env, fake_databricks, token, status):
    fake_databricks.fail(r"/serving-endpoints/databricks-claude-haiku-4-5", status=status, times=3)
    sleeps = []
    assert make_client(fake_databricks, token, sleeps).get(endpoint_path("databricks-claude-haiku-4-5"))["id"]
    assert len(sleeps) == 3 and len(fake_databricks.calls("/serving-endpoints/databricks-claude-haiku")) == 4


def test_retries_are_bounded(env, fake_databricks, token):
    fake_databricks.fail(r"/serving-endpoints/databricks-claude-haiku-4-5", status=429, times=-1)
    sleeps = []
    with pytest.raises(DatabricksApiError) as e:
        make_client(fake_databricks, token, sleeps).get(endpoint_path("databricks-claude-haiku-4-5"))
    assert (e.value.status, e.value.error_code) == (429, "REQUEST_LIMIT_EXCEEDED")
    assert len(sleeps) == RETRIES


def test_retry_after_is_honoured(env, fake_databricks, token):
    fake_databricks.fail(r"/serving-endpoints/databricks-claude-haiku-4-5", times=1, body=Response(
        429, b'{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}', {"Retry-After": "7"}))
    sleeps = []
    make_client(fake_databricks, token, sleeps).get(endpoint_path("databricks-claude-haiku-4-5"))
    assert sleeps == [7.0]


def test_other_errors_are_not_retried(env, fake_databricks, token):
    fake_databricks.fail(r"/serving-endpoints/databricks-claude-haiku-4-5", status=500, times=1)
    sleeps = []
    with pytest.raises(DatabricksApiError):
        make_client(fake_databricks, token, sleeps).get(endpoint_path("databricks-claude-haiku-4-5"))
    assert sleeps == []


def test_backoff_is_full_jitter_and_capped():
    highs = list(backoff_delays(retries=8, base=1.0, cap=20.0, rand=lambda lo, hi: hi))
    assert highs == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    assert all(0 <= d <= 20 for d in backoff_delays())


def test_missing_sdk_is_reported_by_the_module_helper(monkeypatch):
    monkeypatch.setattr(client_mod, "HAS_DATABRICKS_SDK", False)
    from ansible_collections.databricks_claude.gateway.plugins.module_utils import module as module_mod
    monkeypatch.setattr(module_mod, "HAS_DATABRICKS_SDK", False)
    failures = []

    class Stub(module_mod.DatabricksModule):
        def __init__(self):
            self._clients = {}

        def fail_json(self, **kwargs):
            failures.append(kwargs)
            raise SystemExit(1)

    with pytest.raises(SystemExit):
        Stub().client()
    assert "databricks-sdk" in failures[0]["msg"] and "required" in failures[0]["msg"]


# -- waiting for config updates ------------------------------------------------------------------

def test_wait_until_not_updating(env, fake_databricks, token):
    fake_databricks.serving.update_seconds = 0.3
    c = make_client(fake_databricks, token)
    assert c.post("/api/2.0/serving-endpoints", CLAUDE)["state"]["config_update"] == "IN_PROGRESS"
    endpoint = wait_not_updating(c, "claude", 30, sleep=lambda s: __import__("time").sleep(0.05))
    assert endpoint["state"]["config_update"] == "NOT_UPDATING" and endpoint["config"]["served_entities"]


@pytest.mark.parametrize("outcome", ["UPDATE_FAILED", "UPDATE_CANCELED"])
def test_failed_update_fails_clearly(env, fake_databricks, token, outcome):
    fake_databricks.serving.update_seconds = 0
    fake_databricks.serving.fail_next_update = outcome
    c = make_client(fake_databricks, token)
    c.post("/api/2.0/serving-endpoints", CLAUDE)
    with pytest.raises(OperationFailed) as e:
        wait_not_updating(c, "claude", 30)
    assert e.value.error_code == outcome and "ended %s" % outcome in e.value.message


def test_wait_times_out(env, fake_databricks, token):
    fake_databricks.serving.update_seconds = 3600
    c = make_client(fake_databricks, token)
    c.post("/api/2.0/serving-endpoints", CLAUDE)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(OperationFailed) as e:
        wait_not_updating(c, "claude", 60, sleep=sleep, clock=lambda: now[0])
    assert e.value.error_code == "TIMEOUT" and 60 <= now[0] <= 61


def test_update_refused_with_409_waits_for_the_running_one(env, fake_databricks, token):
    fake_databricks.serving.update_seconds = 0.5
    c = make_client(fake_databricks, token)
    c.post("/api/2.0/serving-endpoints", CLAUDE)

    def put():
        return c.put(endpoint_path("claude", "/config"), CLAUDE["config"])

    with pytest.raises(DatabricksApiError) as e:
        put()
    assert (e.value.status, e.value.error_code) == (409, "RESOURCE_CONFLICT")
    result = when_not_updating(c, "claude", 30, put, sleep=lambda s: __import__("time").sleep(0.05))
    assert result["state"]["config_update"] == "IN_PROGRESS"
    assert len(fake_databricks.calls("/serving-endpoints/claude/config", "PUT")) == 3  # refused, refused, accepted


@pytest.mark.parametrize("code", ["INVALID_STATE", None])
def test_a_409_with_any_error_code_waits_for_the_running_update(env, fake_databricks, token, code):
    """The 409's error_code is not documented: RESOURCE_CONFLICT must not be what the retry hangs on."""
    fake_databricks.serving.update_seconds = 0.5
    c = make_client(fake_databricks, token)
    c.post("/api/2.0/serving-endpoints", CLAUDE)
    body = Response.json({"message": "Endpoint claude is being updated"} if code is None else
                         {"error_code": code, "message": "Endpoint claude is being updated"}, 409)
    fake_databricks.fail("/serving-endpoints/claude/ai-gateway$", method="PUT", body=body)
    result = when_not_updating(c, "claude", 30, lambda: c.put(endpoint_path("claude", "/ai-gateway"), {}),
                               sleep=lambda s: __import__("time").sleep(0.05))
    assert result == {}
    assert len(fake_databricks.calls("/serving-endpoints/claude/ai-gateway", "PUT")) == 2


def test_workspace_calls_carry_the_workspace_id_and_a_unified_host_routes_by_it(env, fake_databricks, token):
    from tests.support.fake_databricks import serving
    make_client(fake_databricks, token).get(endpoint_path("databricks-claude-haiku-4-5"))
    classic = fake_databricks.calls("/serving-endpoints/")[-1]
    assert classic.headers["x-databricks-workspace-id"] == fake_databricks.workspace_id  # from host metadata

    other = serving.add_workspace(fake_databricks, "2222")
    make_client(fake_databricks, token, workspace_id="2222").post("/api/2.0/serving-endpoints", CLAUDE)
    assert "claude" in other.endpoints and "claude" not in fake_databricks.serving.endpoints
    with pytest.raises(DatabricksApiError) as e:  # the unified host announces no workspace id
        make_client(fake_databricks, token).get(endpoint_path("claude"))
    assert e.value.status == 400 and "X-Databricks-Workspace-Id" in e.value.message


def test_account_calls_carry_no_workspace_id(env, fake_databricks, token):
    c = DatabricksClient({"host": fake_databricks.url, "token": token, "account_id": fake_databricks.account_id,
                          "workspace_id": "1234567890"}, account=True)
    c.get("/api/2.0/accounts/%s/federationPolicies" % fake_databricks.account_id)
    assert "x-databricks-workspace-id" not in fake_databricks.calls("/federationPolicies")[-1].headers


def test_unreachable_host_fails_fast_with_the_cause(env, monkeypatch):
    monkeypatch.setattr(client_mod, "SDK_RETRY_TIMEOUT", 1)  # production: 30 s instead of the SDK's 300 s
    import socket
    import time
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    c = DatabricksClient({"host": "https://127.0.0.1:%d" % port, "token": "x"})
    with pytest.raises(DatabricksApiError) as e:
        c.get("/api/2.0/serving-endpoints/x")
    assert e.value.error_code == "CONNECTION_ERROR" and "cannot reach https://127.0.0.1:%d" % port in e.value.message
    assert time.monotonic() - start < 20
