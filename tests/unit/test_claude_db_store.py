"""claude_db.store and the cached path of claude_db.credentials: files, modes, keyring choice, damage, imports."""

import json
import os
import stat
import subprocess
import sys
import time

import keyring
import pytest
from keyring.backends import fail

from claude_db.config import load_config
from claude_db.credentials import DatabricksToken, cached_token, get_token
from claude_db.errors import AuthError
from claude_db.store import KEYRING_SERVICE, Store
from tests.support.credential_fixtures import BIN, REPO, TOKEN_HELPER
from tests.support.keyring_backend import FileKeyring

CONFIG = {
    "databricks_host": "https://adb-123.4.azuredatabricks.net",
    "endpoint_name": "claude-code-gateway",
    "azure_ad": {"tenant_id": "tid-1", "client_id": "cid-1", "scopes": ["email"]},
}
MSAL_CACHE = json.dumps({"RefreshToken": {"k": {"secret": "refresh-secret-0123456789"}}})


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TEST_KEYRING_FILE", str(tmp_path / "keyring.json"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    return load_config(str(path))


@pytest.fixture
def backend(monkeypatch):
    """Select a keyring backend for this test: backend(FileKeyring()) or backend(fail.Keyring())."""
    previous = keyring.get_keyring()

    def select(kr):
        keyring.set_keyring(kr)
        return kr

    yield select
    keyring.set_keyring(previous)


def test_token_round_trip_is_0600_in_0700_and_atomic(config):
    store = Store(config)
    store.write_token("dkea-0123456789abcdef", time.time() + 600)
    assert stat.S_IMODE(os.stat(store.token_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(store.token_path)).st_mode) == 0o700
    assert os.listdir(os.path.dirname(store.token_path)) == [os.path.basename(store.token_path)]
    token = cached_token(config)
    assert token.access_token == "dkea-0123456789abcdef" and 590 < token.expires_in <= 600
    assert "dkea" not in repr(token) and "hidden" in repr(token)


def test_tokens_inside_the_safety_margin_count_as_expired(config):
    Store(config).write_token("dkea-0123456789abcdef", time.time() + 59)
    assert cached_token(config) is None
    Store(config).write_token("dkea-0123456789abcdef", time.time() + 61)
    assert cached_token(config) is not None


def test_the_rejected_token_is_not_handed_out_again(config):
    Store(config).write_token("dkea-rejected-0123456789", time.time() + 600)
    assert get_token(config, rejected="dkea-some-other-token").access_token == "dkea-rejected-0123456789"
    # Refreshing needs the IdP; with none configured for real, the attempt itself proves the token was skipped.
    with pytest.raises(AuthError):
        get_token(config, interactive=False, rejected="dkea-rejected-0123456789")


@pytest.mark.parametrize("content", ["", "{", "\x00\x01", "[1]", '{"identity": 1}'])
def test_a_damaged_token_file_is_missing_with_one_warning(config, capsys, content):
    store = Store(config)
    os.makedirs(os.path.dirname(store.token_path), exist_ok=True)
    with open(store.token_path, "w") as f:
        f.write(content)
    os.chmod(store.token_path, 0o600)  # a loose mode is warned about too (test_claude_db_state_files.py)
    assert store.read_token() is None
    assert store.read_token() is None
    err = capsys.readouterr().err
    if content == '{"identity": 1}':
        assert err == ""  # a well-formed file of another config is simply not ours
    else:
        assert err.count("warning: ignoring the damaged") == 1 and store.token_path in err


def test_a_token_file_of_another_config_is_not_used(config, tmp_path):
    Store(config).write_token("dkea-0123456789abcdef", time.time() + 3600)
    other = dict(CONFIG, databricks_host="https://adb-999.azuredatabricks.net")
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert cached_token(load_config(str(tmp_path / "other.json"))) is None


def test_msal_cache_goes_to_a_usable_keyring_and_leaves_no_file(config, backend, tmp_path):
    backend(FileKeyring())
    store = Store(config)
    os.makedirs(os.path.dirname(store.msal_path), exist_ok=True)
    with open(store.msal_path, "w") as f:
        f.write(MSAL_CACHE)  # left over from a time without a keyring
    store.write_msal_cache(MSAL_CACHE)
    assert not os.path.exists(store.msal_path)
    with open(str(tmp_path / "keyring.json")) as f:
        assert json.load(f)[KEYRING_SERVICE][store.keyring_user] == MSAL_CACHE
    assert store.read_msal_cache() == MSAL_CACHE
    assert store.msal_cache_location().startswith("OS keyring")
    assert "OS keyring entry" in " ".join(store.forget())
    assert store.read_msal_cache() is None


def test_without_a_usable_keyring_the_cache_is_a_0600_file(config, backend):
    backend(fail.Keyring())
    store = Store(config)
    store.write_msal_cache(MSAL_CACHE)
    assert stat.S_IMODE(os.stat(store.msal_path).st_mode) == 0o600
    assert json.loads(store.read_msal_cache()) == json.loads(MSAL_CACHE)
    assert store.msal_cache_location() == store.msal_path


def test_fallback_none_refuses_to_write_secrets_to_disk(tmp_path, monkeypatch, backend):
    backend(fail.Keyring())
    monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "state"))
    path = tmp_path / "strict.json"
    path.write_text(json.dumps(dict(CONFIG, token_cache={"method": "keyring", "fallback": "none"})))
    store = Store(load_config(str(path)))
    with pytest.raises(AuthError) as e:
        store.write_msal_cache(MSAL_CACHE)
    assert "token_cache.fallback" in str(e.value) and str(path) in str(e.value)
    assert not os.path.exists(store.msal_path)


def test_a_failing_keyring_falls_back_to_the_file_with_a_warning(config, backend, capsys):
    class LockedKeyring(FileKeyring):
        def set_password(self, service, username, password):
            raise keyring.errors.KeyringLocked("locked")

    backend(LockedKeyring())
    store = Store(config)
    store.write_msal_cache(MSAL_CACHE)
    assert os.path.exists(store.msal_path)
    assert "OS keyring failed (KeyringLocked)" in capsys.readouterr().err


def test_method_file_never_touches_the_keyring(tmp_path, monkeypatch, backend):
    class Exploding(FileKeyring):
        def get_password(self, service, username):
            raise AssertionError("keyring used")

        set_password = get_password

    backend(Exploding())
    monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "state"))
    path = tmp_path / "file.json"
    path.write_text(json.dumps(dict(CONFIG, token_cache={"method": "file"})))
    store = Store(load_config(str(path)))
    store.write_msal_cache(MSAL_CACHE)
    assert store.read_msal_cache() is not None


def test_the_cached_path_imports_no_heavy_module(config, tmp_path):
    """--raw/--check with a valid cached token: no msal, requests, keyring, argparse, typing, dataclasses."""
    Store(config).write_token("dkea-0123456789abcdef", time.time() + 3600)
    probe = ("import sys\n"
             "sys.argv = [%r, %r, '--config', %r]\n"
             "path = %r\n"
             "try:\n    exec(compile(open(path).read(), path, 'exec'), {'__name__': '__main__', '__file__': path})\n"
             "except SystemExit as e:\n    assert e.code == 0, e.code\n"
             "heavy = {'msal', 'requests', 'keyring', 'argparse', 'typing', 'dataclasses', 'urllib.parse',\n"
             "         'claude_db.identity', 'claude_db.exchange'} & set(sys.modules)\n"
             "print(sorted(heavy), file=sys.stderr)\n")
    env = {"PATH": os.environ["PATH"], "CLAUDE_DB_HOME": os.environ["CLAUDE_DB_HOME"], "HOME": str(tmp_path)}
    for mode in ("--raw", "--check"):
        result = subprocess.run([sys.executable, "-S", "-c", probe % (TOKEN_HELPER, mode, config.path, TOKEN_HELPER)],
                                env=env, capture_output=True, text=True, cwd=REPO, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "[]", (mode, result.stderr)
    assert BIN  # the helper found its package by itself


def test_databricks_token_equality_and_expiry():
    a = DatabricksToken("dkea-x", 100.0)
    assert a == DatabricksToken("dkea-x", 100.0) and a != DatabricksToken("dkea-y", 100.0)
    assert a.expires_in == 0
