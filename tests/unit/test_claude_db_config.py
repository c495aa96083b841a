"""claude_db.config: the seed's format, defaults, the search order, and one clear exit-2 line per mistake."""

import json
import os
import re
import stat
import subprocess
import sys

import pytest

from claude_db import cli
from claude_db.config import ENVIRONMENT, SYSTEM_CONFIG, environment, load_config, msal_scopes, state_dir
from claude_db.errors import ConfigError

SEED = {
    "databricks_host": "https://adb-123.4.azuredatabricks.net/",
    "endpoint_name": "claude-code-gateway",
    "model": "claude-sonnet-4-20250514",
    "azure_ad": {"tenant_id": "tid-1", "client_id": "cid-1", "scopes": ["openid", "profile", "email"]},
}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("CLAUDE_DB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def write(tmp_path, data, name="config.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_the_seed_config_and_its_defaults(tmp_path):
    config = load_config(write(tmp_path, SEED))
    assert config.databricks_host == "https://adb-123.4.azuredatabricks.net"
    assert config.scopes == ("email",)  # MSAL adds openid/profile/offline_access itself
    assert config.authority == "https://login.microsoftonline.com/tid-1"
    assert config.route == "serving-endpoints" and config.launcher_mode == "proxy"
    assert config.claude_command == "claude"
    assert config.models == {"opus": "claude-code-gateway", "sonnet": "claude-code-gateway",
                             "haiku": "claude-code-gateway"}
    assert config.service_principal_client_id is None
    assert (config.token_cache_method, config.token_cache_fallback) == ("keyring", "file")
    with pytest.raises(AttributeError):
        config.databricks_host = "https://elsewhere"


def test_nulls_mean_not_set_and_loopback_http_is_allowed(tmp_path):
    data = dict(SEED, databricks_host="http://127.0.0.1:8443", model=None, federation=None,
                models={"opus": "big", "haiku": None},
                azure_ad=dict(SEED["azure_ad"], authority="https://127.0.0.1:9/t1/", scopes=None))
    config = load_config(write(tmp_path, data))
    assert config.databricks_host == "http://127.0.0.1:8443"
    assert config.models == {"opus": "big", "sonnet": "claude-code-gateway", "haiku": "claude-code-gateway"}
    assert config.authority == "https://127.0.0.1:9/t1" and config.scopes == ("email",)
    assert config.model is None


def test_the_ai_gateway_route_takes_model_service_names_and_needs_no_endpoint(tmp_path):
    data = dict(SEED, route="ai-gateway", model="main.ai.claude_code",
                models={"opus": "system.ai.claude-opus-4-6[1m]", "haiku": "system.ai.claude-haiku-4-5"})
    del data["endpoint_name"]
    config = load_config(write(tmp_path, data))
    assert config.main_model == "main.ai.claude_code" and config.endpoint_name is None
    # An unset slot is the main model service, never a serving endpoint name.
    assert config.models == {"opus": "system.ai.claude-opus-4-6[1m]", "sonnet": "main.ai.claude_code",
                             "haiku": "system.ai.claude-haiku-4-5"}
    assert load_config(write(tmp_path, SEED)).main_model == "claude-code-gateway"  # the seed's model is unused


def test_reserved_scopes_are_left_to_msal():
    assert msal_scopes(["openid", "Profile", "offline_access"]) == ("email",)
    assert msal_scopes(["User.Read", "openid"]) == ("User.Read",)


def test_search_order(tmp_path, monkeypatch):
    home = write(tmp_path, SEED, "home.json")
    os.makedirs(str(tmp_path / "state"))
    os.replace(home, str(tmp_path / "state" / "config.json"))
    assert load_config().path == str(tmp_path / "state" / "config.json")
    cwd = write(tmp_path, SEED)
    assert load_config().path == cwd
    env = write(tmp_path, SEED, "env.json")
    monkeypatch.setenv("CLAUDE_DB_CONFIG", env)
    assert load_config().path == env
    explicit = write(tmp_path, SEED, "explicit.json")
    assert load_config(explicit).path == explicit


def test_nothing_found_says_where_it_looked(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config()
    assert "no config file found" in str(e.value) and str(tmp_path / "config.json") in str(e.value)
    assert e.value.exit_code == 2


def nested(**changes):
    data = json.loads(json.dumps(SEED))
    for dotted, value in changes.items():
        keys = dotted.split("__")
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return data


BAD = [
    (nested(databricks_hots="x"), "unknown key databricks_hots"),
    (nested(azure_ad__tenant="x"), "unknown key azure_ad.tenant"),
    (nested(token_cache={"methd": "file"}), "unknown key token_cache.methd"),
    (nested(databricks_host=KeyError), "missing required key databricks_host"),
    (nested(endpoint_name=""), "missing required key endpoint_name"),
    (nested(azure_ad__client_id=KeyError), "missing required key azure_ad.client_id"),
    (nested(azure_ad=KeyError), "missing required key azure_ad"),
    (nested(azure_ad__tenant_id=None), "missing required key azure_ad.tenant_id"),
    (nested(endpoint_name=7), "key endpoint_name in config file {path} must be a string, got a number"),
    (nested(azure_ad__scopes="email"), "key azure_ad.scopes in config file {path} must be a list of strings"),
    (nested(azure_ad__scopes=["email", 1]), "key azure_ad.scopes"),
    (nested(azure_ad=["x"]), "azure_ad in config file {path} must be a JSON object, got a list"),
    (nested(federation__service_principal_client_id=True), "key federation.service_principal_client_id"),
    (nested(route="serving"), "key route in config file {path} must be one of serving-endpoints, ai-gateway"),
    (nested(launcher__mode="tmux"), "key launcher.mode"),
    (nested(token_cache__method="vault"), "key token_cache.method"),
    (nested(databricks_host="http://adb-1.azuredatabricks.net"), "key databricks_host in config file {path} "
                                                                 "must use https://"),
    (nested(databricks_host="adb-1.azuredatabricks.net"), "key databricks_host"),
    (nested(databricks_host="https://adb-1.azuredatabricks.net/?o=1"), "without a path or query"),
    (nested(azure_ad__authority="http://login.example/t"), "key azure_ad.authority"),
    (nested(azure_ad__authority="https://login.example"), "key azure_ad.authority"),
    (nested(route="ai-gateway", model="claude-sonnet-4-20250514"),
     'key model in config file {path} must be a model service\'s full name catalog.schema.name on route ai-gateway '
     '(e.g. system.ai.claude-sonnet-4-5), got "claude-sonnet-4-20250514"; fix the name, or set route to '
     'serving-endpoints'),
    (nested(route="ai-gateway", model=None), "route ai-gateway in config file {path} needs key model"),
    (nested(route="ai-gateway", model="main.ai.claude_code", models={"haiku": "databricks-claude-haiku-4-5"}),
     "key models.haiku in config file {path} must be a model service's full name"),
    (nested(route="ai-gateway", model="main.ai.claude_code", models={"opus": "main..opus"}), "key models.opus"),
    (nested(route="ai-gateway", model="main.ai.claude code"), "key model in config file"),
    (nested(route="ai-gateway", model="main.ai.x.y"), "key model in config file"),
    (nested(models={"sonnet": "system.ai.claude-sonnet-4-5"}),
     "key models.sonnet in config file {path} is a model service name (system.ai.claude-sonnet-4-5), which only "
     "route ai-gateway serves; set route to ai-gateway"),
    (nested(endpoint_name="main.ai.claude_code"), "key endpoint_name in config file {path} is a model service name"),
    (nested(endpoint_name=KeyError, route="serving-endpoints"), "missing required key endpoint_name"),
    ([1, 2], "the top level in config file {path} must be a JSON object"),
    ('{"databricks_host": "https://x",}', "config file {path} is not valid JSON (line 1, column"),
]


@pytest.mark.parametrize("data,expected", BAD, ids=[expected.split(" in ")[0][:40] for _data, expected in BAD])
def test_bad_config_is_one_line_naming_key_and_file_exit_2(tmp_path, capsys, data, expected):
    path = write(tmp_path, data)
    code = cli.main(["--check", "--config", path])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("claude-db-token: ")
    assert expected.format(path=path) in line
    assert path in line


def test_missing_explicit_file_and_bad_env_knob(tmp_path, capsys, monkeypatch):
    assert cli.main(["--config", str(tmp_path / "nope.json")]) == 2
    assert "nope.json (from --config) does not exist" in capsys.readouterr().err
    monkeypatch.setenv("CLAUDE_DB_CONFIG", str(tmp_path / "gone.json"))
    assert cli.main(["status"]) == 2
    assert "gone.json (from $CLAUDE_DB_CONFIG) does not exist" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path, capsys):
    path = write(tmp_path, SEED)
    with pytest.raises(SystemExit) as e:
        cli.main(["--raw", "--check", "--config", path])
    assert e.value.code == 2
    assert cli.main(["--raw", "--config", path, "status"]) == 2
    assert "--raw/--check/--service-key go without a subcommand" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2


def test_state_dir_is_created_0700_and_tightened(tmp_path):
    path = state_dir()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    os.chmod(path, 0o755)
    state_dir()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700


def test_identity_separates_configs(tmp_path):
    a = load_config(write(tmp_path, SEED, "a.json"))
    b = load_config(write(tmp_path, nested(databricks_host="https://adb-2.azuredatabricks.net"), "b.json"))
    c = load_config(write(tmp_path, nested(model="claude-opus"), "c.json"))
    assert a.identity != b.identity
    assert a.identity == c.identity  # the same sign-in and workspace: the cached secrets stay valid


def test_the_beta_policy_defaults_per_route_and_can_be_set(tmp_path):
    serving = load_config(write(tmp_path, SEED))
    assert serving.disable_experimental_betas is True
    assert serving.allowed_betas == {"claude-code-20250219", "interleaved-thinking-2025-05-14"}
    gateway = load_config(write(tmp_path, dict(SEED, route="ai-gateway", model="main.ai.claude_code")))
    assert gateway.disable_experimental_betas is False and gateway.allowed_betas is None  # every value passes
    mine = load_config(write(tmp_path, dict(SEED, betas={"allow": ["*"], "disable_experimental": False})))
    assert mine.allowed_betas is None and mine.disable_experimental_betas is False
    assert load_config(write(tmp_path, dict(SEED, betas={"allow": []}))).allowed_betas == frozenset()
    assert serving.workspace_id is None
    assert load_config(write(tmp_path, dict(SEED, workspace_id="1234567890"))).workspace_id == "1234567890"


def test_a_mistyped_beta_policy_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="key betas.disable_experimental in config file .* must be a boolean, "
                                          "got a string"):
        load_config(write(tmp_path, dict(SEED, betas={"disable_experimental": "yes"})))


def test_the_service_keys_take_a_port_and_seconds(tmp_path):
    from claude_db import user_service
    config = load_config(write(tmp_path, dict(SEED, serve={"port": 24567, "idle_stop": 90})))
    assert (user_service.port(config), user_service.idle_stop(config)) == (24567, 90)
    default = load_config(write(tmp_path, SEED))
    assert user_service.port(default, uid=1000) == 21000 and user_service.port(default, uid=11000) == 21000
    assert user_service.idle_stop(default) == user_service.DEFAULT_IDLE_STOP
    wrong = [
        ({"port": 80}, "key serve.port in config file %s must be a port number from 1024 to 65535, got 80"),
        ({"idle_stop": 0}, "key serve.idle_stop in config file %s must be a number of seconds > 0, got 0"),
        ({"port": "x"}, "key serve.port in config file %s must be a port number from 1024 to 65535, got a string"),
    ]
    for service, text in wrong:
        path = write(tmp_path, dict(SEED, serve=service))
        with pytest.raises(ConfigError) as raised:
            load_config(path)
        assert str(raised.value) == text % path


def test_every_variable_bin_reads_is_declared_once_and_read_through_the_declaration():
    """A CLAUDE_DB_* variable read with os.environ would skip the declaration (and the --help made from it)."""
    package = os.path.dirname(cli.__file__)
    read = set()
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name)) as f:
                source = f.read()
            assert not re.search(r"environ(\.get\(|\[)\s*[\"']CLAUDE_DB_", source), name
            read |= set(re.findall(r"environment\(\"([A-Z_]+)\"", source))
    declared = {name for name, v in ENVIRONMENT.items() if v.kind != "standard"}
    assert read == declared


@pytest.mark.parametrize("program", ["claude-db", "claude-db-token"])
def test_the_help_lists_every_variable_the_program_reads(program):
    tool = os.path.join(os.path.dirname(os.path.dirname(cli.__file__)), program)
    flag = "--claude-db-help" if program == "claude-db" else "--help"
    out = subprocess.run([sys.executable, tool, flag], capture_output=True, text=True, check=True).stdout
    for variable in ENVIRONMENT.values():
        assert (variable.name in out) == (program in variable.programs), variable.name
    assert "CLAUDE_DB_SYSTEM_CONFIG" in out and SYSTEM_CONFIG in out  # a declared default is shown
    assert "(default 600)" in out  # CLAUDE_DB_UPSTREAM_TIMEOUT: claude-db's proxy and claude-db-token serve


def test_a_variable_is_checked_as_declared():
    assert environment("CLAUDE_DB_LOGIN_TIMEOUT", {}) == 300
    assert environment("CLAUDE_DB_LOGIN_TIMEOUT", {"CLAUDE_DB_LOGIN_TIMEOUT": ""}) == 300  # empty = unset
    assert environment("CLAUDE_DB_UPSTREAM_TIMEOUT", {"CLAUDE_DB_UPSTREAM_TIMEOUT": "1.5"}) == 1.5
    assert environment("CLAUDE_DB_MODE", {}) is None  # launcher.mode decides
    assert environment("CLAUDE_DB_DEBUG", {}) is False and environment("CLAUDE_DB_DEBUG", {"CLAUDE_DB_DEBUG": "1"})
    for name, text, message in [("CLAUDE_DB_MODE", "proxyy", "must be one of proxy, helper, env, got 'proxyy'"),
                                ("CLAUDE_DB_LOGIN_TIMEOUT", "0", "must be a whole number of seconds, got '0'"),
                                ("CLAUDE_DB_UPSTREAM_TIMEOUT", "nan", "must be a number of seconds > 0, got 'nan'")]:
        with pytest.raises(ConfigError) as e:
            environment(name, {name: text})
        assert str(e.value).startswith(name + " " + message)
