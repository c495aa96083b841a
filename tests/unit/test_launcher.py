"""claude-db's launcher without Claude Code: what the child gets (settings, env, argv) and how bad input ends."""

import json
import os
import subprocess
import sys

import pytest

from tests.support.launcher_fixtures import CLAUDE_DB, cached_token_home, token

from claude_db import launcher
from claude_db.config import load_config

RECORDER = """#!/bin/sh
# Stands in for Claude Code: records its argv, env and settings file, then exits with $RECORDER_EXIT.
python3 - "$@" <<'EOF'
import json, os, sys
args = sys.argv[1:]
settings = json.load(open(args[args.index("--settings") + 1]))
json.dump({"argv": args, "env": dict(os.environ), "settings": settings}, open(os.environ["RECORD"], "w"))
EOF
exit "${RECORDER_EXIT:-0}"
"""


@pytest.fixture
def home(tmp_path):
    """A workstation with a cached token and a stand-in Claude Code; run(*args, **env) -> (result, record)."""
    env = cached_token_home(str(tmp_path / "home"))
    recorder = tmp_path / "claude"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    env.update(CLAUDE_DB_CLAUDE_COMMAND=str(recorder), RECORD=str(tmp_path / "record.json"))

    def run(*args, **extra):
        result = subprocess.run([sys.executable, CLAUDE_DB, *args], env=dict(env, **extra), capture_output=True,
                                text=True, timeout=60, check=False)
        record = None
        if os.path.exists(env["RECORD"]):
            with open(env["RECORD"]) as f:
                record = json.load(f)
            os.remove(env["RECORD"])
        return result, record

    run.env = env
    return run


def _config(home, **changes):
    with open(home.env["CLAUDE_DB_CONFIG"]) as f:
        raw = json.load(f)
    raw.update(changes)
    with open(home.env["CLAUDE_DB_CONFIG"], "w") as f:
        json.dump(raw, f)
    return load_config(home.env["CLAUDE_DB_CONFIG"])


def test_every_argument_reaches_claude_code_unchanged_after_our_settings(home):
    args = ["-p", "a b", "--", "$HOME", "--settings", "mine.json", "--claude-db-help", "--version", ""]
    result, record = home(*args)
    assert result.returncode == 0, result.stderr
    assert record["argv"][:1] == ["--settings"] and record["argv"][2:] == args


def test_proxy_mode_gives_claude_code_the_loopback_url_and_a_session_key_only(home):
    result, record = home("-p", "hi", DATABRICKS_TOKEN="dapi-secret", DATABRICKS_CLIENT_SECRET="s3cret",
                          ANTHROPIC_API_KEY="sk-ant-x", CLAUDE_CODE_OAUTH_TOKEN="oauth-x", DATABRICKS_HOST="https://h")
    assert result.returncode == 0, result.stderr
    env, settings = record["env"], record["settings"]
    assert settings["env"]["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    assert settings["env"]["ANTHROPIC_BASE_URL"].endswith("/serving-endpoints/anthropic")
    assert len(settings["env"]["ANTHROPIC_AUTH_TOKEN"]) >= 40
    assert list(settings["permissions"]) == ["deny"] and "WebSearch" in settings["permissions"]["deny"]
    assert settings["env"]["ANTHROPIC_CUSTOM_HEADERS"] == "x-databricks-use-coding-agent-mode: true"
    for slot in ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
                 "ANTHROPIC_DEFAULT_HAIKU_MODEL"):
        assert settings["env"][slot] == "databricks-claude-sonnet-4-5"
    for name, value in settings["env"].items():  # the environment carries the same, for whatever reads it
        assert env[name] == value
    for name in ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"):
        assert name not in env
    assert env["DATABRICKS_HOST"] == "https://h"  # not a secret
    assert "cached-" not in json.dumps(record)  # the cached Databricks token


def test_helper_mode_points_claude_code_at_the_workspace_with_claude_db_token(home):
    result, record = home("-p", "hi", CLAUDE_DB_MODE="helper", ANTHROPIC_AUTH_TOKEN="would-win-over-the-helper")
    assert result.returncode == 0, result.stderr
    settings = record["settings"]
    assert settings["env"]["ANTHROPIC_BASE_URL"] == "https://127.0.0.1:9/serving-endpoints/anthropic"
    assert "ANTHROPIC_AUTH_TOKEN" not in record["env"] and "ANTHROPIC_AUTH_TOKEN" not in settings["env"]
    helper = settings["apiKeyHelper"]
    assert "claude-db-token" in helper and " --raw --config " in helper and home.env["CLAUDE_DB_CONFIG"] in helper
    assert "cached-" not in json.dumps(record)


def test_env_mode_is_the_seeds_static_token(home):
    result, record = home("-p", "hi", CLAUDE_DB_MODE="env")
    assert result.returncode == 0, result.stderr
    assert record["env"]["ANTHROPIC_AUTH_TOKEN"].startswith("cached-")
    assert record["settings"]["env"]["ANTHROPIC_BASE_URL"].startswith("https://127.0.0.1:9/")


def test_the_ai_gateway_route_sends_model_service_names_never_the_endpoint_name(home):
    # The config still names a serving endpoint (databricks-claude-sonnet-4-5): /ai-gateway must never see it.
    config = _config(home, route="ai-gateway", model="main.ai.claude_code",
                     models={"opus": "system.ai.claude-opus-4-6", "haiku": "main.ai.claude_haiku"})
    for mode, base in (("proxy", "http://127.0.0.1:4242"), ("helper", "https://127.0.0.1:9")):
        settings = launcher.claude_settings(config, mode, 4242, "key", token("t", 3600))
        assert settings["env"]["ANTHROPIC_BASE_URL"] == base + "/ai-gateway/anthropic"
        assert settings["env"]["ANTHROPIC_MODEL"] == "main.ai.claude_code"
        assert [settings["env"]["ANTHROPIC_DEFAULT_%s_MODEL" % s] for s in ("OPUS", "SONNET", "HAIKU")] == \
            ["system.ai.claude-opus-4-6", "main.ai.claude_code", "main.ai.claude_haiku"]
        assert "databricks-claude-sonnet-4-5" not in json.dumps(settings)


def test_every_mode_denies_the_agent_the_state_directory_and_claude_db_token(home):
    """Claude Code rules, not a sandbox: `//` makes the path absolute; the real Claude Code is tested in
    test_claude_db_confinement."""
    for mode in ("proxy", "helper", "env"):
        result, record = home("-p", "hi", CLAUDE_DB_MODE=mode)
        assert result.returncode == 0, result.stderr
        deny = record["settings"]["permissions"]["deny"]
        assert "Read(/%s/**)" % os.path.abspath(home.env["CLAUDE_DB_HOME"]) in deny
        assert "Bash(claude-db-token:*)" in deny and "WebSearch" in deny


def test_claude_codes_exit_code_and_a_missing_claude_code(home):
    result = home("-p", "hi", RECORDER_EXIT="42")[0]
    assert result.returncode == 42
    result = home("-p", "hi", CLAUDE_DB_CLAUDE_COMMAND="/nonexistent/claude")[0]
    assert result.returncode == 2
    assert result.stderr.startswith("claude-db: cannot run Claude Code (/nonexistent/claude)")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("extra, message", [
    ({"CLAUDE_DB_MODE": "proxyy"}, "CLAUDE_DB_MODE must be one of proxy, helper, env"),
    ({"CLAUDE_DB_UPSTREAM_TIMEOUT": "soon"}, "CLAUDE_DB_UPSTREAM_TIMEOUT must be a number of seconds"),
    ({"CLAUDE_DB_CLAUDE_COMMAND": "claude 'unbalanced"}, "is not a command"),
    ({"CLAUDE_DB_CONFIG": "/nonexistent.json"}, "does not exist"),
])
def test_bad_knobs_end_with_one_line_and_exit_2(home, extra, message):
    result, record = home("-p", "hi", **extra)
    assert result.returncode == 2 and record is None
    assert message in result.stderr and len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_our_own_help_needs_no_config(tmp_path):
    result = subprocess.run([sys.executable, CLAUDE_DB, "--claude-db-help"], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, timeout=30, check=False)
    assert result.returncode == 0
    for knob in ("CLAUDE_DB_CONFIG", "CLAUDE_DB_MODE", "CLAUDE_DB_CLAUDE_COMMAND", "CLAUDE_DB_UPSTREAM_TIMEOUT",
                 "ai-gateway", "catalog.schema.name"):
        assert knob in result.stdout


def test_experimental_betas_are_disabled_on_serving_endpoints_only(home):
    """Databricks' first Claude Code configs set the flag on /serving-endpoints; ucode dropped it on /ai-gateway."""
    serving = launcher.claude_settings(_config(home), "helper", 0, "key", token("t", 3600))
    assert serving["env"]["CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS"] == "1"
    gateway = launcher.claude_settings(_config(home, route="ai-gateway", model="main.ai.claude_code"), "proxy", 4242, "key", token("t", 3600))
    assert "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS" not in gateway["env"]
    kept = launcher.claude_settings(_config(home, route="serving-endpoints", betas={"disable_experimental": False}),
                                    "proxy", 4242, "key", token("t", 3600))
    assert "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS" not in kept["env"]
