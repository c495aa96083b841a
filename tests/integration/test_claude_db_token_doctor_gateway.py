"""`claude-db-token doctor` on route ai-gateway: each slot's model service exists and the user may query it."""

import pytest

from tests.support.fake_databricks.gateway import add_model_service, grant

pytestmark = pytest.mark.slow

UC = "/api/2.1/unity-catalog"


def lines_by_check(stdout):
    """{check name: (mark, detail)} of doctor's output (`mark name detail`, the name 2 words or 1)."""
    out = {}
    for line in stdout.splitlines():
        mark, rest = line.split(None, 1)
        words = rest.split()
        size = 3 if words[:2] == ["model", "service"] else 2 if words[:2] == ["databricks", "user"] else 1
        out[" ".join(words[:size])] = (mark, " ".join(words[size:]))
    return out


def test_names_the_slot_and_the_missing_privilege_then_passes_once_granted(workstation):
    fake = workstation.fake
    add_model_service(fake, "main.ai.claude_code")  # USE_CATALOG, USE_SCHEMA, EXECUTE for the developers group
    add_model_service(fake, "main.ai.claude_haiku", endpoint="databricks-claude-haiku-4-5", executors=())
    workstation.write_config(route="ai-gateway", model="main.ai.claude_code", endpoint_name=None,
                             models={"opus": "system.ai.claude-opus-4-6[1m]", "haiku": "main.ai.claude_haiku"})
    workstation.run("login", check=0)
    fake.reset_log()
    result = workstation.run("doctor", check=1)
    checks = lines_by_check(result.stdout)
    assert checks["databricks user"] == ("ok", "alice@example.test (groups: claude-code-developers)")
    mark, detail = checks["model service main.ai.claude_code"]
    assert mark == "ok" and detail.startswith("slots model, sonnet: may query it")
    assert "EXECUTE via claude-code-developers" in detail
    mark, detail = checks["model service system.ai.claude-opus-4-6"]  # Claude Code's [1m] suffix is no part of it
    assert mark == "ok" and "EXECUTE via account users from schema system.ai" in detail
    assert checks["model service main.ai.claude_haiku"] == (
        "FAIL", "slot haiku: alice@example.test may not query model service main.ai.claude_haiku: no EXECUTE on "
                "model service main.ai.claude_haiku; fix: an admin grants EXECUTE on model service "
                "main.ai.claude_haiku (or its schema or catalog) to you or a group you are in")
    # Exactly the SDK's paths (GrantsAPI.get_effective, AiGatewayAPI.get_model_service, CurrentUserAPI.me).
    assert fake.calls(UC + "/model-services/main.ai.claude_haiku$", "GET")
    assert fake.calls(UC + "/effective-permissions/MODEL_SERVICE/main.ai.claude_haiku$", "GET")
    assert fake.calls(UC + "/effective-permissions/SCHEMA/main.ai$", "GET")
    assert fake.calls(UC + "/effective-permissions/CATALOG/main$", "GET")
    assert fake.calls("^/api/2.0/preview/scim/v2/Me$", "GET")
    assert fake.writes("^/api/") == []  # a check, not a change

    # Inherited from the schema, granted to the user alone: that counts too.
    grant(fake, "SCHEMA", "main.ai", "alice@example.test", "EXECUTE")
    result = workstation.run("doctor", check=0)
    mark, detail = lines_by_check(result.stdout)["model service main.ai.claude_haiku"]
    assert mark == "ok" and "EXECUTE from schema main.ai" in detail


def test_a_model_service_that_does_not_exist(workstation):
    workstation.write_config(route="ai-gateway", model="system.ai.claude-sonnet-4-5",
                             models={"haiku": "main.ai.no_such_service"})
    workstation.run("login", check=0)
    result = workstation.run("doctor", check=1)
    mark, detail = lines_by_check(result.stdout)["model service main.ai.no_such_service"]
    assert mark == "FAIL" and detail.startswith("slot haiku: no model service main.ai.no_such_service")
    assert "admin.yml" in detail and "gateway_kind: unity" in detail
    assert lines_by_check(result.stdout)["model service system.ai.claude-sonnet-4-5"][0] == "ok"
