"""claude-db with the real Claude Code on the Unity AI Gateway route: model service names, slot by slot."""

import json

import pytest

from tests.support.fake_databricks import messages
from tests.support.fake_databricks.gateway import add_model_service

pytestmark = pytest.mark.slow

MAIN, HAIKU = "main.ai.claude_code", "main.ai.claude_haiku"
AI_GATEWAY = "/ai-gateway/anthropic/v1/messages"


@pytest.fixture
def gateway_claude_db(claude_db):
    """claude_db on route ai-gateway: the main model and the haiku slot are two model services of main.ai."""
    add_model_service(claude_db.fake, MAIN)
    add_model_service(claude_db.fake, HAIKU, endpoint="databricks-claude-haiku-4-5")
    # endpoint_name (a serving endpoint) stays in the config: on this route it must not reach the gateway.
    claude_db.workstation.write_config(route="ai-gateway", model=MAIN,
                                       models={"opus": MAIN, "sonnet": MAIN, "haiku": HAIKU})
    claude_db.fake.reset_log()
    return claude_db


def models_asked(fake):
    """Each Messages request's model, in order (the fake's request log per model service)."""
    return [r.json()["model"] for r in fake.anthropic.requests()]


def test_answers_on_the_gateway_with_the_model_service_name(gateway_claude_db):
    fake = gateway_claude_db.fake
    fake.anthropic.script(messages.text("hello from the gateway"))
    result = gateway_claude_db.run("-p", "say hi", "--output-format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == "hello from the gateway"
    [request] = fake.anthropic.requests()
    assert request.path == AI_GATEWAY and request.json()["model"] == MAIN


def test_an_explore_subagent_asks_the_haiku_model_service(gateway_claude_db):
    # Claude Code's built-in Explore agent runs on the haiku slot (facts/claude-code.md §3; its bundle:
    # agentType "Explore", model "haiku"); the main model launches it with the Agent tool.
    fake = gateway_claude_db.fake
    fake.anthropic.script(
        messages.tool_use("Agent", {"description": "Look around", "subagent_type": "Explore",
                                    "prompt": "List the files here and report back."}),
        messages.text("Explored: nothing here."),  # the subagent's whole turn
        messages.text("The explorer found nothing."))  # the main model, given the subagent's report
    result = gateway_claude_db.run("-p", "explore this directory", "--output-format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == "The explorer found nothing."
    asked = models_asked(fake)
    assert asked[0] == MAIN and asked[-1] == MAIN, asked
    assert HAIKU in asked[1:-1], asked
    assert set(asked) == {MAIN, HAIKU}, asked  # no claude-haiku-... id, no serving endpoint name
    assert {r.path for r in fake.anthropic.requests()} == {AI_GATEWAY}
