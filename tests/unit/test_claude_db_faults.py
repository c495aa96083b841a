"""Unit-level faults of issue 7: what Databricks answers, state files, numbers (cheaper than a subprocess)."""

import json
import os
import time
import types

import pytest

from claude_db import exchange as exchange_module
from claude_db.config import load_config
from claude_db.credentials import cached_token
from claude_db.errors import AuthError, ConfigError
from claude_db.store import Store

NOT_A_JWT = "x.e30.y"


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "state"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"databricks_host": "https://adb-1.azuredatabricks.net", "endpoint_name": "e",
                                "azure_ad": {"tenant_id": "t", "client_id": "c"}, "token_cache": {"method": "file"}}))
    return load_config(str(path))


def answer(monkeypatch, status=200, body=None, headers=None):
    response = types.SimpleNamespace(status_code=status, headers=headers or {}, json=lambda: body, text="")
    monkeypatch.setattr(exchange_module, "_post_with_retries", lambda url, form, config: response)


@pytest.mark.parametrize("expires_in", [0, -5, float("nan"), float("inf"), "soon", None, True, 1e300])
def test_an_exchange_lifetime_that_is_not_a_positive_number_is_refused(config, monkeypatch, expires_in):
    answer(monkeypatch, body={"access_token": "dkea-0123456789abcdef", "expires_in": expires_in})
    with pytest.raises(AuthError) as e:
        exchange_module.exchange(config, NOT_A_JWT)
    assert "expires_in" in str(e.value) and "dkea-0123456789abcdef" not in str(e.value)


def test_a_numeric_string_lifetime_is_accepted(config, monkeypatch):
    answer(monkeypatch, body={"access_token": "dkea-0123456789abcdef", "expires_in": "3600"})
    assert exchange_module.exchange(config, NOT_A_JWT) == ("dkea-0123456789abcdef", 3600)


def test_a_redirect_from_the_exchange_blames_databricks_host(config, monkeypatch):
    answer(monkeypatch, status=302, headers={"Location": "https://login.example/sso?x=1"})
    with pytest.raises(AuthError) as e:
        exchange_module.exchange(config, NOT_A_JWT)
    assert "answered with a redirect (HTTP 302 to https://login.example/sso?x=1)" in str(e.value)
    assert "databricks_host in %s" % config.path in str(e.value) and "federation policy" not in str(e.value)


def test_a_ca_bundle_that_does_not_exist_is_named(config, monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    monkeypatch.setattr(exchange_module.requests.Session, "request", pytest.fail)  # nothing is sent
    with pytest.raises(ConfigError) as e:
        exchange_module.exchange(config, NOT_A_JWT)
    assert str(e.value).startswith("the CA bundle %s (from REQUESTS_CA_BUNDLE) does not exist"
                                   % (tmp_path / "missing.pem"))


def _token_file(config, text):
    store = Store(config)
    os.makedirs(os.path.dirname(store.token_path), mode=0o700, exist_ok=True)
    with open(store.token_path, "w") as f:
        f.write(text)
    os.chmod(store.token_path, 0o600)
    return store


def test_a_symlinked_token_file_is_not_followed(config, tmp_path, capsys):
    store = _token_file(config, "")
    real = tmp_path / "planted.json"
    real.write_text(json.dumps({"identity": config.identity, "access_token": "planted-0123456789",
                                "expires_at": time.time() + 3600}))
    os.remove(store.token_path)
    os.symlink(str(real), store.token_path)
    assert cached_token(config) is None
    assert "(it is a symbolic link); ignoring it" in capsys.readouterr().err


def test_a_deeply_nested_token_file_counts_as_damaged(config, capsys):
    store = _token_file(config, "[" * 100000 + "]" * 100000)
    assert store.read_token() is None
    assert "ignoring the damaged cached Databricks token" in capsys.readouterr().err


def test_a_fifo_in_place_of_the_token_file_does_not_block(config, capsys):
    store = _token_file(config, "")
    os.remove(store.token_path)
    os.mkfifo(store.token_path, 0o600)
    assert store.read_token() is None
    assert "not a regular file" in capsys.readouterr().err


def test_doctor_fixes_and_reports_loose_secret_files(config, capsys):
    from claude_db.doctor import _check_store
    store = _token_file(config, "{}")
    os.chmod(store.token_path, 0o644)
    detail = _check_store(config)
    assert "fixed: %s was 644" % store.token_path in detail
    assert os.stat(store.token_path).st_mode & 0o777 == 0o600
    assert "fixed" not in _check_store(config)


def test_a_blank_authority_tenant_is_refused_with_the_key(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"databricks_host": "https://h.example", "endpoint_name": "e",
                                "azure_ad": {"tenant_id": "t", "client_id": "c", "authority": " "}}))
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    assert "azure_ad.authority" in str(e.value)
