"""What the workstation role writes, built by the package: managed settings (and their merge into an
organisation's file), the config check, the all-users config, and the role's argument spec against SCHEMA."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from claude_db import config as config_module
from claude_db.config import SCHEMA, find_config, parse_config
from claude_db.launcher import claude_settings
from claude_db.managed_settings import managed_settings, merged, without

REPO = Path(__file__).resolve().parents[2]
TOKEN_TOOL = str(REPO / "bin" / "claude-db-token")
CONFIG = {
    "databricks_host": "https://adb-123.4.azuredatabricks.net",
    "endpoint_name": "claude-code-gateway",
    "route": "ai-gateway",
    "model": "system.ai.claude-sonnet-4-5",
    "models": {"haiku": "system.ai.claude-haiku-4-5"},
    "azure_ad": {"tenant_id": "t-1", "client_id": "c-1"},
}
ORG = {"env": {"HTTPS_PROXY": "http://proxy.corp:3128"}, "permissions": {"deny": ["Bash(curl:*)"]},
       "cleanupPeriodDays": 7}


def token_tool(*args, stdin="", python=sys.executable, flags=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDE_DB_")}
    return subprocess.run([python, *flags, TOKEN_TOOL, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_managed_settings_are_the_helper_modes_settings():
    config = parse_config(json.dumps(CONFIG).encode(), "c.json")
    ours = managed_settings(config, "'/usr/local/bin/claude-db-token' --raw")
    helper = claude_settings(config, "helper", 0, "", None)
    assert ours["env"] == helper["env"]
    assert ours["env"]["ANTHROPIC_BASE_URL"] == "https://adb-123.4.azuredatabricks.net/ai-gateway/anthropic"
    assert ours["env"]["ANTHROPIC_MODEL"] == "system.ai.claude-sonnet-4-5"
    # For every user of the machine: their own state directory, and the tool the helper runs, not the controller's.
    assert ours["permissions"] == {"deny": ["WebSearch", "Read(~/.databricks-claude-gateway/**)",
                                            "Bash(/usr/local/bin/claude-db-token:*)", "Bash(claude-db-token:*)"]}
    assert helper["permissions"]["deny"][0] == "WebSearch"
    assert ours["apiKeyHelper"] == "'/usr/local/bin/claude-db-token' --raw"


def test_service_settings_point_plain_claude_at_the_users_service(tmp_path):
    """`settings --managed --service --uid N`: the user's loopback port, the client key as apiKeyHelper, and
    otherwise exactly the helper mode's env and deny rules."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    result = token_tool("settings", "--managed", "--service", "--uid", "1000", "--config", str(path))
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    helper = managed_settings(parse_config(path.read_bytes(), str(path)))
    assert ours["env"].pop("ANTHROPIC_BASE_URL") == "http://127.0.0.1:21000/ai-gateway/anthropic"
    assert ours["env"] == {k: v for k, v in helper["env"].items() if k != "ANTHROPIC_BASE_URL"}
    assert "ANTHROPIC_AUTH_TOKEN" not in ours["env"] and ours["permissions"] == helper["permissions"]
    assert ours["apiKeyHelper"].endswith("claude-db-token --service-key --config %s" % path)
    alone = token_tool("settings", "--service", "--config", str(path))
    assert alone.returncode == 2 and "--service goes with --managed" in alone.stderr


def test_merge_keeps_the_organisations_keys_and_is_idempotent():
    config = parse_config(json.dumps(CONFIG).encode(), "c.json")
    ours = managed_settings(config, "helper --raw")
    once = merged(ORG, ours)
    assert once["cleanupPeriodDays"] == 7 and once["env"]["HTTPS_PROXY"] == "http://proxy.corp:3128"
    assert once["permissions"]["deny"] == ["Bash(curl:*)"] + ours["permissions"]["deny"]
    again = merged(once, ours, ours)
    assert json.dumps(again) == json.dumps(once)  # same keys in the same order: the file does not change
    assert without(once, ours) == ORG
    # The organisation edits the file after us: a rerun rewrites nothing (no reordering, no new backup).
    edited = dict(once, companyAnnouncements=["Use claude-db"])
    assert json.dumps(merged(edited, ours, ours)) == json.dumps(edited)


def test_previous_takes_out_what_is_no_longer_ours():
    first = {"env": {"A": "1", "B": "1"}, "permissions": {"deny": ["WebSearch", "X"]}}
    second = {"env": {"A": "2"}, "permissions": {"deny": ["WebSearch"]}}
    out = merged(merged(ORG, first), second, first)
    assert out == merged(ORG, second)


def test_more_settings_merge_in_order(tmp_path):
    """The role's workstation_managed_settings_env, then _extra: objects merge, lists append, later wins."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    result = token_tool("settings", "--managed", "--config", str(config), "--api-key-helper", "h",
                        "--add", '{"env": {"CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "60000"}}',
                        "--add", '{"env": {"ANTHROPIC_MODEL": "other"}, "permissions": {"deny": ["Bash(curl:*)"]}}')
    settings = json.loads(result.stdout)
    assert settings["env"]["CLAUDE_CODE_API_KEY_HELPER_TTL_MS"] == "60000"
    assert settings["env"]["ANTHROPIC_MODEL"] == "other"
    assert settings["permissions"]["deny"] == ["WebSearch", "Read(~/.databricks-claude-gateway/**)",
                                               "Bash(claude-db-token:*)", "Bash(h:*)", "Bash(curl:*)"]


def test_without_leaves_what_someone_else_changed_and_drops_what_only_we_filled():
    ours = {"apiKeyHelper": "ours", "permissions": {"deny": ["WebSearch"]}}
    current = {"apiKeyHelper": "theirs now", "permissions": {"deny": ["WebSearch"]}}
    assert without(current, ours) == {"apiKeyHelper": "theirs now"}


def test_settings_and_config_check_run_on_the_standard_library_alone(tmp_path):
    """The role runs them with the controller's Python, which may have no venv: -S -I hides site-packages."""
    flags = ("-S", "-I", "-X", "importtime")
    result = token_tool("settings", "--managed", "--config", "-", "--api-key-helper", "h --raw",
                        stdin=json.dumps(CONFIG), flags=flags)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["apiKeyHelper"] == "h --raw"
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines()}
    assert not imported & {"msal", "requests", "keyring", "jwt", "cryptography", "uvloop", "httptools"}
    check = token_tool("config", "check", "-", stdin=json.dumps(CONFIG), flags=("-S", "-I"))
    assert check.returncode == 0 and check.stdout == "", check.stderr


def test_merge_into_an_existing_file(tmp_path):
    target = tmp_path / "managed-settings.json"
    target.write_text(json.dumps(ORG))
    ours = {"permissions": {"deny": ["WebSearch"]}}
    result = token_tool("settings", "--merge-into", str(target), "--ours", json.dumps(ours))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == merged(ORG, ours)
    removed = token_tool("settings", "--merge-into", "-", "--ours", "{}", "--previous", json.dumps(ours),
                         stdin=result.stdout)
    assert json.loads(removed.stdout) == ORG
    missing = token_tool("settings", "--merge-into", str(tmp_path / "none.json"), "--ours", json.dumps(ours))
    assert json.loads(missing.stdout) == ours


@pytest.mark.parametrize("args, stdin, message", [
    (["config", "check", "-"], json.dumps(dict(CONFIG, databricks_host="http://adb.example")),
     "key databricks_host in config file <stdin> must use https://"),
    (["config", "check", "-"], "{", "config file <stdin> is not valid JSON"),
    (["settings", "--managed", "--config", "-"], json.dumps(CONFIG), "with --config - pass --api-key-helper"),
    (["settings", "--merge-into", "-", "--ours", "[1]"], "{}", "--ours must be a JSON object"),
    (["settings", "--merge-into", "-", "--ours", "{}"], "[]", "settings file - must be a JSON object"),
    (["settings"], "", "settings needs --managed or --ours JSON"),
])
def test_bad_input_is_one_line_and_exit_2(args, stdin, message):
    result = token_tool(*args, stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_the_all_users_config_is_read_after_the_users_own(tmp_path, monkeypatch):
    system = tmp_path / "etc" / "config.json"
    system.parent.mkdir()
    system.write_text("{}")
    monkeypatch.setattr(config_module.ENVIRONMENT["CLAUDE_DB_SYSTEM_CONFIG"], "default", str(system))
    monkeypatch.delenv("CLAUDE_DB_SYSTEM_CONFIG", raising=False)
    monkeypatch.delenv("CLAUDE_DB_CONFIG", raising=False)
    monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert find_config() == str(system)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.json").write_text("{}")
    assert find_config() == str(tmp_path / "home" / "config.json")


def _argument_specs():
    yaml = pytest.importorskip("yaml")  # .venv has it (ansible-core); .venv39 (bin/'s libraries only) does not
    path = REPO / "roles" / "workstation" / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


SPEC_TYPE = {"string": "str", "list of strings": "list", "object": "dict", "boolean": "bool", "port": "int",
             "seconds": "float"}


def _compare(spec_options: dict, schema: dict, where: str):
    assert set(spec_options) == set(schema), where
    for key, want in schema.items():
        option = spec_options[key]
        name = where + key
        assert option.get("type") == SPEC_TYPE[want.kind], name
        if want.kind == "list of strings":
            assert option.get("elements") == "str", name
        assert bool(option.get("required")) == want.required, name
        assert tuple(option.get("choices") or ()) == tuple(want.choices or ()), name
        if want.kind == "object":
            _compare(option.get("options") or {}, want.children, name + ".")


def test_the_roles_argument_spec_matches_the_config_schema():
    options = _argument_specs()
    for key, want in SCHEMA.items():
        assert "workstation_" + key in options, "argument_specs.yml has no workstation_%s" % key
        _compare({key: options["workstation_" + key]}, {key: want}, "workstation_")
