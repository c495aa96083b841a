"""The pieces of `claude-db-token serve`: LISTEN_FDS, the /proc/net/tcp owner check, the client key file."""

import json
import os
import socket
import stat

import pytest

from claude_db import service, service_client, service_key
from claude_db.config import load_config
from claude_db.errors import AuthError, ConfigError

CONFIG = {
    "databricks_host": "https://adb-123.4.azuredatabricks.net",
    "endpoint_name": "claude-code-gateway",
    "azure_ad": {"tenant_id": "tid-1", "client_id": "cid-1"},
}


@pytest.fixture
def state(tmp_path, monkeypatch):
    directory = tmp_path / "state"
    monkeypatch.setenv("CLAUDE_DB_HOME", str(directory))
    return directory


# -- LISTEN_PID / LISTEN_FDS (sd_listen_fds(1)) ------------------------------------------------------------

@pytest.mark.parametrize("environ, expected", [
    ({"LISTEN_PID": "42", "LISTEN_FDS": "1"}, 1),
    ({"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}, 2),
    ({"LISTEN_PID": "41", "LISTEN_FDS": "1"}, 0),  # meant for another process (our parent)
    ({"LISTEN_FDS": "1"}, 0),
    ({"LISTEN_PID": "42", "LISTEN_FDS": "x"}, 0),
    ({"LISTEN_PID": "42", "LISTEN_FDS": "-1"}, 0),
    ({"LISTEN_PID": "42"}, 0),
    ({}, 0),
])
def test_listen_fds_counts_only_sockets_passed_to_us_and_unsets_the_variables(environ, expected):
    environ = dict(environ, PATH="/bin")
    assert service.listen_fds(environ, 42) == expected
    assert environ == {"PATH": "/bin"}


def test_a_passed_socket_that_is_not_tcp_is_a_config_error():
    left, right = socket.socketpair()
    try:
        with pytest.raises(ConfigError, match="not a TCP socket"):
            service._checked(left)
    finally:
        left.close()
        right.close()


# -- who listens: /proc/net/tcp{,6} ----------------------------------------------------------------------

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0 100 0 0 10 0
   1: 00000000:4E21 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 112 1 0 100 0 0 10 0
   2: 0100007F:4E20 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1002        0 113 1 0 100 0 0 10 0
   3: 0200007F:4E22 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1003        0 114 1 0 100 0 0 10 0
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:4E22 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1004        0 115 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:4E22 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1005        0 116 1 0 100 0 0 10 0
"""


@pytest.mark.skipif(socket.htonl(1) == 1, reason="the sample rows are a little-endian machine's")
def test_listening_uids_from_sample_rows():
    uids = service_client.listening_uids
    assert uids(TCP, socket.AF_INET, 0x4E20) == {1000}  # the established row (st 01) does not count
    assert uids(TCP, socket.AF_INET, 0x4E21) == {1001}  # 0.0.0.0 also takes connections to 127.0.0.1
    assert uids(TCP, socket.AF_INET, 0x4E22) == set()  # 127.0.0.2 is another address
    assert uids(TCP6, socket.AF_INET6, 0x4E22) == {1004}  # [::] (dual stack); [::1] is not 127.0.0.1
    assert uids("garbage\n1: x\n", socket.AF_INET, 0x4E20) == set()


def test_listener_owners_finds_our_own_listener_in_the_real_table():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert service_client.listener_owners(port) in (set(), None)  # bound, not listening: nobody
        s.listen(1)
        owners = service_client.listener_owners(port)
    if owners is None:
        pytest.skip("no /proc/net/tcp on this system")
    assert owners == {os.geteuid()}


def test_listener_owners_is_none_where_the_tables_are_missing(tmp_path):
    assert service_client.listener_owners(1, {str(tmp_path / "none"): socket.AF_INET}) is None


def test_check_listener_refuses_another_uid_and_an_invisible_listener(tmp_path, monkeypatch):
    config = _config(tmp_path)
    monkeypatch.setattr(service_client, "listener_owners", lambda port: {os.geteuid(), 4242})
    with pytest.raises(AuthError, match=r"^127.0.0.1:20001 is held by uid 4242, not by your claude-db-token serve"):
        service_client.check_listener(20001, config)
    monkeypatch.setattr(service_client, "listener_owners", lambda port: set())
    with pytest.raises(AuthError, match="a socket this system does not show"):
        service_client.check_listener(20001, config)
    monkeypatch.setattr(service_client, "listener_owners", lambda port: None)  # not Linux: no check
    service_client.check_listener(20001, config)


def _config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    return load_config(str(path))


# -- the client key file ---------------------------------------------------------------------------------

def test_the_key_is_0600_in_a_0700_directory_and_rotation_replaces_it(state):
    first = service_key.ensure_key()
    path = state / "service-key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert len(first) >= 40 and service_key.ensure_key() == first
    second = service_key.rotate_key()
    assert second != first and service_key.read_key() == second
    assert os.listdir(state) == ["service-key"]  # no temp file left


def test_a_symlinked_key_file_is_neither_read_nor_written_through(state, tmp_path):
    os.makedirs(state, mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_text(json.dumps({"key": "planted-key-0123456789"}))
    os.symlink(target, state / "service-key")
    assert service_key.read_key() is None
    made = service_key.ensure_key()
    assert made != "planted-key-0123456789"
    assert not os.path.islink(state / "service-key")
    assert json.loads(target.read_text()) == {"key": "planted-key-0123456789"}  # untouched


def test_a_symlinked_state_directory_is_refused(tmp_path, monkeypatch):
    real = tmp_path / "real"
    os.makedirs(real, mode=0o700)
    os.symlink(real, tmp_path / "link")
    monkeypatch.setenv("CLAUDE_DB_HOME", str(tmp_path / "link"))
    with pytest.raises(ConfigError, match="is a symbolic link"):
        service_key.ensure_key()


def test_client_key_follows_rotation_and_reports_it(state):
    key = service_key.ensure_key()
    seen = []
    check = service.ClientKey(changed=lambda: seen.append(1))
    assert check.accepts(b"Bearer " + key.encode())
    assert not check.accepts(b"Bearer wrong") and not check.accepts(b"") and seen == []
    new = service_key.rotate_key()
    assert not check.accepts(b"Bearer " + key.encode())
    assert seen == [1] and check.accepts(b"Bearer " + new.encode()) and seen == [1]
    os.remove(state / "service-key")
    assert not check.accepts(b"Bearer " + new.encode())  # no file: nobody gets in
