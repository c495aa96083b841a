"""credentials.get_token called in-process, as the proxy of claude-db does (threads, `rejected`, no prompts)."""

import threading

import pytest

from claude_db.config import load_config
from claude_db.credentials import cached_token, get_token
from claude_db.errors import AuthError

pytestmark = pytest.mark.slow


@pytest.fixture
def config(workstation, monkeypatch, trust_test_ca):
    monkeypatch.setenv("CLAUDE_DB_HOME", workstation.state_dir)
    monkeypatch.setenv("CLAUDE_DB_LOGIN_TIMEOUT", "30")
    for name in ("SSH_CONNECTION", "SSH_TTY"):
        monkeypatch.delenv(name, raising=False)
    workstation.write_config(token_cache={"method": "file"})
    return load_config(workstation.config_path)


def exchanges(workstation):
    return len(workstation.fake.calls(r"^/oidc/v1/token$", "POST"))


def test_not_interactive_and_not_signed_in(config, workstation):
    with pytest.raises(AuthError) as e:
        get_token(config, interactive=False)
    assert "not signed in; run `claude-db-token login`" in str(e.value)
    assert workstation.idp.stats()["auth"] == 0


def test_threads_of_one_process_refresh_once(config, workstation, browser):
    results = [None] * 8
    barrier = threading.Barrier(8)

    def worker(i):
        barrier.wait(10)
        results[i] = get_token(config, method="browser")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len({r.access_token for r in results}) == 1
    assert len(browser.urls) == 1 and exchanges(workstation) == 1


def test_a_rejected_token_is_replaced_without_a_sign_in(config, workstation, browser):
    first = get_token(config, method="browser")
    assert cached_token(config) == first
    second = get_token(config, interactive=False, rejected=first.access_token)
    assert second.access_token != first.access_token and second.expires_in > 3000
    assert exchanges(workstation) == 2 and len(browser.urls) == 1
    assert workstation.idp.stats()["token"].get("refresh_token") is None  # the cached ID token sufficed
    # Someone else already refreshed: the caller gets the new token, no third exchange.
    assert get_token(config, interactive=False, rejected=first.access_token) == second
    assert exchanges(workstation) == 2
