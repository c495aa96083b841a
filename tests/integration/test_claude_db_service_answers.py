"""claude-db with the real Claude Code against the service's less friendly answers (issue 8).

The fake refuses `anthropic-beta` values off its allow list on /serving-endpoints (400, as gateways
do), answers count_tokens there with Databricks' 404, and logs the headers each request arrived with.
"""

import json

import pytest

from tests.support.fake_databricks import messages, serving

pytestmark = pytest.mark.slow

ALLOWED = messages.SERVING_ENDPOINT_BETAS


def betas(request):
    return {v.strip() for v in request.headers.get("anthropic-beta", "").split(",") if v.strip()}


def test_the_default_beta_policy_keeps_a_session_alive_on_serving_endpoints(claude_db):
    """Without it Claude Code 2.1 sends context-management-2025-06-27 and three more: the gateway's 400."""
    claude_db.fake.anthropic.script(messages.text("still here"))
    result = claude_db.run("-p", "say hi", "--output-format", "json")
    assert result.returncode == 0, result.stderr + result.stdout
    assert json.loads(result.stdout)["result"] == "still here"
    [request] = claude_db.fake.anthropic.requests()
    assert betas(request) and betas(request) <= ALLOWED
    assert "context_management" not in request.json()  # the flag also kept the beta-only body field out

    claude_db.workstation.write_config(betas={"allow": ["*"], "disable_experimental": False})  # no policy
    refused = json.loads(claude_db.run("-p", "say hi", "--output-format", "json").stdout)
    assert refused["is_error"] is True and "for the `anthropic-beta` header" in refused["result"]


def test_a_beta_claude_code_sends_despite_the_flag_is_dropped_by_the_proxy(claude_db):
    """As claude-code issues 70563 / 53855 report: the flag does not stop every beta. Helper mode has no proxy."""
    env = {"ANTHROPIC_BETAS": "advisor-tool-2026-03-01"}  # Claude Code adds these to every request
    result = claude_db.run("-p", "say hi", "--output-format", "json", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert all(betas(r) <= ALLOWED for r in claude_db.fake.anthropic.requests())

    helper = claude_db.run("-p", "say hi", "--output-format", "json", env=dict(env, CLAUDE_DB_MODE="helper"))
    answer = json.loads(helper.stdout)
    assert answer["is_error"] is True and "`advisor-tool-2026-03-01` for the `anthropic-beta` header" in answer["result"]


def test_count_tokens_is_404_on_serving_endpoints_and_the_session_survives(claude_db):
    """Claude Code 2.1 asks count_tokens for /context only (not for a prompt); the 404 does not end the session."""
    result = claude_db.run("-p", "/context", "--output-format", "json")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Context Usage" in json.loads(result.stdout)["result"]
    counts = claude_db.fake.anthropic.requests(r"/count_tokens$")
    assert counts, "Claude Code did not ask count_tokens"
    assert claude_db.fake.calls(r"/count_tokens$") == counts  # each answered 404 by the fake, none retried
    assert claude_db.run("-p", "say hi").returncode == 0
    assert len(claude_db.fake.anthropic.requests(r"/count_tokens$")) == len(counts)  # a prompt asks none


def test_the_workspace_id_goes_with_every_prompt_but_not_with_the_token_exchange(claude_db):
    """Unified hosts route by X-Databricks-Workspace-Id; the SDK sends it on serving queries, not to /oidc."""
    claude_db.workstation.write_config(workspace_id=claude_db.fake.workspace_id)
    result = claude_db.run("-p", "say hi")
    assert result.returncode == 0, result.stderr
    [request] = claude_db.fake.anthropic.requests()
    assert request.headers["x-databricks-workspace-id"] == claude_db.fake.workspace_id
    exchanges = claude_db.fake.calls("/oidc/v1/token")
    assert exchanges and all("x-databricks-workspace-id" not in r.headers for r in exchanges)


def test_doctor_reaches_the_endpoint_on_a_unified_host_with_the_configured_workspace_id(workstation):
    serving.add_workspace(workstation.fake, "2222")  # now the host refuses workspace calls that name none
    workstation.write_config(endpoint_name="databricks-claude-sonnet-4-5", workspace_id=workstation.fake.workspace_id)
    workstation.run("login", check=0)
    result = workstation.run("doctor", check=0)
    assert "endpoint databricks-claude-sonnet-4-5" in result.stdout.splitlines()[-1], result.stdout
