"""claude-db with the real Claude Code, the real IdP sign-in and the fake workspace: answers and token freshness."""

import json

import pytest

from tests.support.fake_databricks import messages
from tests.support.launcher_fixtures import BASE_PATH, USER

pytestmark = pytest.mark.slow


def test_print_mode_answers_through_the_proxy_after_a_real_sign_in(claude_db):
    claude_db.fake.anthropic.script(messages.text("hello from the workspace"))
    result = claude_db.run("-p", "say hi", "--output-format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == "hello from the workspace"
    assert any("approve" in line for line in claude_db.workstation.browser_log_lines())  # signed in at the IdP

    [request] = claude_db.fake.anthropic.requests()
    assert request.path == BASE_PATH + "/v1/messages" and request.query == {"beta": ["true"]}
    assert claude_db.fake.tokens[claude_db.bearer(request)].subject == USER
    assert "x-api-key" not in request.headers
    assert request.headers["x-databricks-use-coding-agent-mode"] == "true"
    assert request.json()["model"] == claude_db.endpoint
    assert "WebSearch" not in [tool.get("name") for tool in request.json().get("tools", [])]
    assert claude_db.fake.calls(method="HEAD") == []  # the preconnect stayed on the proxy


def test_a_prompt_after_the_token_expired_still_succeeds(claude_db):
    """The idle scenario: the Databricks token dies between two turns of one session."""
    claude_db.fake.exchange_ttl = 36  # the workspace refuses the last 30 s: good for 6 s
    session = claude_db.session()
    first = session.turn("one")
    assert first["is_error"] is False, first
    [turn1] = claude_db.fake.anthropic.requests()
    claude_db.wait_until_refused(claude_db.bearer(turn1))

    second = session.turn("two")
    assert second["is_error"] is False, second
    assert session.close() == 0
    turns = [r for r in claude_db.fake.anthropic.requests() if r.headers.get("authorization")]
    assert claude_db.bearer(turns[-1]) != claude_db.bearer(turn1)


def test_with_mode_helper_the_prompt_after_expiry_fails_with_403(claude_db):
    """Documented limitation of launcher.mode=helper: Claude Code sends its cached (now dead) token
    first and neither retries a 403 nor re-runs its apiKeyHelper (facts/claude-code.md §4)."""
    claude_db.fake.exchange_ttl = 45  # good for 15 s: Claude Code's first turn must get in before that
    session = claude_db.session(env={"CLAUDE_DB_MODE": "helper"})
    first = session.turn("one")
    assert first["is_error"] is False, first
    [turn1] = claude_db.fake.anthropic.requests()
    assert "x-api-key" in turn1.headers  # Claude Code itself talked to the workspace, with the helper's token
    claude_db.wait_until_refused(claude_db.bearer(turn1))

    second = session.turn("two")
    assert second["is_error"] is True and second["api_error_status"] == 403, second
    assert "Invalid Token" in second["result"]
    session.close()
    refused = claude_db.fake.anthropic.requests()[1:]
    assert refused and all(claude_db.bearer(r) == claude_db.bearer(turn1) for r in refused)


def test_a_token_the_workspace_revoked_is_replaced_and_the_request_replayed(claude_db):
    assert claude_db.run("-p", "one").returncode == 0
    [turn1] = claude_db.fake.anthropic.requests()
    revoked = claude_db.bearer(turn1)
    del claude_db.fake.tokens[revoked]  # still cached on the workstation with most of an hour to go

    result = claude_db.run("-p", "two", "--output-format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["is_error"] is False
    refused, replayed = claude_db.fake.anthropic.requests()[1:]
    assert claude_db.bearer(refused) == revoked and claude_db.bearer(replayed) != revoked
    assert replayed.body == refused.body


def test_claude_codes_exit_code_is_returned(claude_db):
    del claude_db.fake.serving.endpoints[claude_db.endpoint]  # the workspace answers 404
    result = claude_db.run("-p", "hi")
    assert result.returncode == 1, (result.stdout, result.stderr)
    result = claude_db.run("-p", "hi", env={"CLAUDE_DB_CLAUDE_COMMAND": "sh -c 'exit 7'"})
    assert result.returncode == 7, result.stderr
