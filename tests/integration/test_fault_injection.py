"""Fault injection (issue 7): bad input, broken files, a hung IdP, a full disk, a killed launcher.

Every case runs the real bin/claude-db-token or bin/claude-db and asserts the exit code, that stderr
is ONE line without a traceback, that no secret is printed, and, where the sign-in should survive,
that it still works afterwards. Cases are grouped by class (the first word of each test's name and
the `CLASS_*` lists), so `pytest --collect-only -q tests/integration/test_fault_injection.py` counts
them per class. Cases that need a second local user run the tools as `nobody` when the tests run as
root (with /usr/bin/python3: nothing they reach imports more than the standard library) and are
skipped otherwise.
"""

import fcntl
import json
import os
import pwd
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from tests.support.credential_fixtures import HELPER_PYTHON, TOKEN_HELPER, add_federation_policy
from tests.support.launcher_fixtures import CLAUDE_DB, cached_token_home, children, wait_for

from claude_db.config import load_config
from claude_db.store import Store

pytestmark = pytest.mark.slow

SYSTEM_PYTHON = "/usr/bin/python3"


def one_line(result, code, program="claude-db-token", secrets=()):
    """The single stderr line of a failed run, after checking exit code, no traceback, no secret."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(program + ": "), result.stderr
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr
    return lines[0]


class Home:
    """A workstation with a cached Databricks token and no IdP (cached_token_home)."""

    def __init__(self, directory):
        self.dir = directory
        self.env = cached_token_home(directory)
        self.env.update(PYTHONDONTWRITEBYTECODE="1", LANG="C.UTF-8")
        self.config_path = self.env["CLAUDE_DB_CONFIG"]
        self.state = self.env["CLAUDE_DB_HOME"]
        with open(self.config_path) as f:
            self.config = json.load(f)
        self.store = self._store()
        with open(self.store.token_path) as f:
            self.token = json.load(f)["access_token"]

    def _store(self):
        saved = os.environ.get("CLAUDE_DB_HOME")
        os.environ["CLAUDE_DB_HOME"] = self.state
        try:
            return Store(load_config(self.config_path))
        finally:
            os.environ.pop("CLAUDE_DB_HOME") if saved is None else os.environ.update(CLAUDE_DB_HOME=saved)

    def write_config(self, text=None, **changes):
        if text is None:
            self.config.update(changes)
            text = json.dumps(self.config)
        with open(self.config_path, "w") as f:
            f.write(text)

    def run(self, *args, program=TOKEN_HELPER, python=HELPER_PYTHON, user=None, timeout=30, **env):
        return subprocess.run([python, program, *args], env=dict(self.env, **env), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False, user=user, cwd=self.dir)

    def still_works(self):
        result = self.run("--raw")
        assert result.returncode == 0 and result.stdout.strip() == self.token, result.stderr


@pytest.fixture
def home(tmp_path):
    return Home(str(tmp_path / "home"))


def _nobody():
    if os.geteuid() != 0:
        pytest.skip("needs a second local user: runs the tools as `nobody` only when the tests run as root")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip("needs %s for the `nobody` user" % SYSTEM_PYTHON)
    return pwd.getpwnam("nobody")


@pytest.fixture
def shared_home():
    """A Home that `nobody` can reach (under a 0755 directory in /tmp, not pytest's 0700 one), owned by
    nobody except where a test says."""
    nobody = _nobody()
    path = tempfile.mkdtemp(prefix="fault-injection-")
    os.chmod(path, 0o755)
    yield _owned_by(nobody, Home(os.path.join(path, "home")))
    shutil.rmtree(path)


def _owned_by(nobody, home):
    for root, dirs, files in os.walk(home.dir):
        for name in dirs + files:
            os.chown(os.path.join(root, name), nobody.pw_uid, nobody.pw_gid)
    os.chown(home.dir, nobody.pw_uid, nobody.pw_gid)
    os.chmod(home.dir, 0o755)
    os.chmod(home.config_path, 0o644)
    return home


# -- security: a secret never goes over plain http to another host -------------------------------

CLASS_HOSTILE_HOST = [
    "http://127.0.0.1.evil.example", "http://127.0.0.1@evil.example", "http://evil.example\\@127.0.0.1",
    "http://[::1].evil.example", "http://127.0.0.1%2eevil.example", "http://evil.example%40127.0.0.1",
    "http://localhost.evil.example", "http://127.0.0.1:80@evil.example", "http://127.0.0.1 .evil.example",
    "http://evil.example#@127.0.0.1", "http://127.1", "http://0x7f000001", "http://2130706433",
    "HTTP://127.0.0.1.evil.example:443", "http://127.0.0.1\t.evil.example", "http://[::1]@evil.example",
]


@pytest.mark.parametrize("url", CLASS_HOSTILE_HOST)
def test_security_hostile_databricks_host(home, url):
    home.write_config(databricks_host=url)
    line = one_line(home.run("--raw"), 2, secrets=[home.token])
    assert "key databricks_host in config file %s" % home.config_path in line


CLASS_HOSTILE_AUTHORITY = [
    "https://login.microsoftonline.com@evil.example/t", "https://evil.example\\@login.microsoftonline.com/t",
    "https://login.microsoftonline.com%2f@evil.example/t", "http://127.0.0.1:9/t", "https://[::1].evil/t",
    "https://login.microsoftonline.com/t?x=@evil.example", "https://log in.example/t",
]


@pytest.mark.parametrize("url", CLASS_HOSTILE_AUTHORITY)
def test_security_hostile_authority(home, url):
    home.write_config(azure_ad=dict(home.config["azure_ad"], authority=url))
    line = one_line(home.run("--raw"), 2, secrets=[home.token])
    assert "key azure_ad.authority in config file %s" % home.config_path in line


# -- state files -----------------------------------------------------------------------------------

def test_state_directory_is_a_symlink(home, tmp_path):
    os.rename(home.state, str(tmp_path / "real-state"))
    os.symlink(str(tmp_path / "real-state"), home.state)
    line = one_line(home.run("--raw"), 2, secrets=[home.token])
    assert "the state directory %s is a symbolic link" % home.state in line


def test_state_directory_of_another_user_is_refused_and_not_chmodded(home):
    nobody = _nobody()
    os.chmod(home.state, 0o755)
    os.chown(home.state, nobody.pw_uid, nobody.pw_gid)
    line = one_line(home.run("--raw"), 2, secrets=[home.token])
    assert "the state directory %s belongs to nobody, not to you" % home.state in line and "chown" in line
    assert stat.S_IMODE(os.stat(home.state).st_mode) == 0o755  # never chmod a directory we do not own


def test_state_lock_file_is_a_symlink(home, tmp_path):
    os.remove(home.store.token_path)  # so a refresh (and its lock) is needed
    os.symlink(str(tmp_path / "elsewhere"), home.store.lock_path)
    line = one_line(home.run("--raw"), 2)
    assert "lock file %s (it is a symbolic link)" % home.store.lock_path in line
    assert not os.path.exists(str(tmp_path / "elsewhere"))


def test_state_secret_file_readable_by_others_is_fixed_and_still_works(home):
    os.chmod(home.store.token_path, 0o644)
    result = home.run("--raw")
    assert result.returncode == 0 and result.stdout.strip() == home.token
    assert "made it 0600" in result.stderr and len(result.stderr.splitlines()) == 1
    assert stat.S_IMODE(os.stat(home.store.token_path).st_mode) == 0o600


# -- filesystem faults: one line naming the path and the fix, in both tools -------------------------

TOOLS = [pytest.param(TOKEN_HELPER, "claude-db-token", id="token"), pytest.param(CLAUDE_DB, "claude-db", id="db")]


@pytest.mark.parametrize("program,name", TOOLS)
def test_filesystem_claude_db_home_is_a_file(home, tmp_path, program, name):
    path = str(tmp_path / "a-file")
    open(path, "w").close()
    line = one_line(home.run("--raw", program=program, CLAUDE_DB_HOME=path), 2, name, [home.token])
    assert "the state directory %s is not a directory" % path in line


@pytest.mark.parametrize("program,name", TOOLS)
def test_filesystem_config_path_is_a_directory(home, tmp_path, program, name):
    line = one_line(home.run(program=program, CLAUDE_DB_CONFIG=str(tmp_path)), 2, name)
    assert "config file %s (from $CLAUDE_DB_CONFIG) is a directory" % tmp_path in line


@pytest.mark.parametrize("program,name", TOOLS)
def test_filesystem_config_path_is_a_fifo_and_nothing_hangs(home, tmp_path, program, name):
    fifo = str(tmp_path / "config.fifo")
    os.mkfifo(fifo)
    line = one_line(home.run(program=program, CLAUDE_DB_CONFIG=fifo, timeout=20), 2, name)
    assert "%s (from $CLAUDE_DB_CONFIG) is not a regular file" % fifo in line


@pytest.mark.parametrize("program,name", TOOLS)
def test_filesystem_deeply_nested_config(home, program, name):
    home.write_config(text="[" * 100000 + "]" * 100000)
    line = one_line(home.run(program=program), 2, name)
    assert "config file %s is nested too deeply" % home.config_path in line


def test_filesystem_tmpdir_missing(home, tmp_path):
    missing = str(tmp_path / "no-such-tmp")
    line = one_line(home.run(program=CLAUDE_DB, TMPDIR=missing, CLAUDE_DB_MODE="helper",
                             CLAUDE_DB_CLAUDE_COMMAND="true"), 2, "claude-db", [home.token])
    assert "cannot create a private directory in %s" % missing in line and "TMPDIR" in line


def test_filesystem_state_directory_of_root_after_sudo_login(shared_home):
    nobody = _nobody()
    os.chown(shared_home.state, 0, 0)
    os.chmod(shared_home.state, 0o700)
    for program, name in ((TOKEN_HELPER, "claude-db-token"), (CLAUDE_DB, "claude-db")):
        result = shared_home.run("--raw", program=program, python=SYSTEM_PYTHON, user=nobody.pw_uid,
                                 CLAUDE_DB_MODE="helper")  # the system python has no httptools for the proxy
        line = one_line(result, 2, name, [shared_home.token])
        assert "the state directory %s belongs to root, not to you" % shared_home.state in line
        assert "sudo chown -R %d %s" % (nobody.pw_uid, shared_home.state) in line


def test_filesystem_read_only_home(shared_home):
    nobody = _nobody()
    os.chown(shared_home.dir, 0, 0)  # nobody cannot create ~/.databricks-claude-gateway there
    env = {k: v for k, v in shared_home.env.items() if k != "CLAUDE_DB_HOME"}
    result = subprocess.run([SYSTEM_PYTHON, TOKEN_HELPER, "--raw"], env=env, capture_output=True, text=True,
                            timeout=30, user=nobody.pw_uid, stdin=subprocess.DEVNULL, check=False)
    state = os.path.join(shared_home.dir, ".databricks-claude-gateway")
    line = one_line(result, 2)
    assert "cannot create the state directory %s (Permission denied)" % state in line


def test_filesystem_unreadable_config(shared_home):
    nobody = _nobody()
    os.chown(shared_home.config_path, 0, 0)
    os.chmod(shared_home.config_path, 0o600)
    line = one_line(shared_home.run("--raw", python=SYSTEM_PYTHON, user=nobody.pw_uid), 2)
    assert "cannot read config file %s: Permission denied" % shared_home.config_path in line


# -- numbers that are not numbers, blank required values -------------------------------------------

@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", '"soon"', "true", "1e300"])
def test_numbers_expires_at_not_a_time(home, value):
    with open(home.store.token_path) as f:
        data = json.load(f)
    text = json.dumps(data).replace(json.dumps(data["expires_at"]), value)
    with open(home.store.token_path, "w") as f:
        f.write(text)
    os.chmod(home.store.token_path, 0o600)
    result = home.run("--check")
    line = one_line(result, 1, secrets=[home.token])
    assert "ignoring the damaged cached Databricks token %s" % home.store.token_path in line
    assert json.loads(result.stdout) == {"valid": False, "expires_in": 0}


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon"])
def test_numbers_upstream_timeout(home, value):
    line = one_line(home.run(program=CLAUDE_DB, CLAUDE_DB_UPSTREAM_TIMEOUT=value), 2, "claude-db", [home.token])
    assert "CLAUDE_DB_UPSTREAM_TIMEOUT must be a number of seconds > 0, got %r" % value in line


@pytest.mark.parametrize("key", ["databricks_host", "endpoint_name", "azure_ad.tenant_id", "azure_ad.client_id"])
def test_numbers_blank_required_value(home, key):
    if "." in key:
        home.write_config(azure_ad=dict(home.config["azure_ad"], **{key.split(".")[1]: " \t "}))
    else:
        home.write_config(**{key: "   "})
    line = one_line(home.run("--raw"), 2, secrets=[home.token])
    assert "missing required key %s in config file %s; add it (it is blank)" % (key, home.config_path) in line


# -- the launcher killed with SIGKILL ---------------------------------------------------------------

def test_child_kill_9_leaves_no_claude_code_and_no_settings_file(home, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only (see launcher.spawn)")
    tmp = str(tmp_path / "tmp")
    os.mkdir(tmp)
    stand_in = str(tmp_path / "claude")  # stands in for Claude Code: runs until killed, whatever its arguments
    with open(stand_in, "w") as f:
        f.write("#!/bin/sh\nexec sleep 300\n")
    os.chmod(stand_in, 0o755)
    env = dict(home.env, TMPDIR=tmp, CLAUDE_DB_MODE="helper", CLAUDE_DB_CLAUDE_COMMAND=stand_in)
    proc = subprocess.Popen([HELPER_PYTHON, CLAUDE_DB], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    claude = wait_for(lambda: children(proc.pid), timeout=30)[0]
    stale = wait_for(lambda: os.listdir(tmp))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    try:
        wait_for(lambda: not os.path.exists("/proc/%d" % claude) or _zombie(claude), timeout=10)
    finally:
        if os.path.exists("/proc/%d" % claude) and not _zombie(claude):
            os.kill(claude, signal.SIGKILL)  # the orphan this test is about: do not leave it running
    # The next launch removes what the killed one left behind, and leaves nothing of its own.
    result = home.run(program=CLAUDE_DB, TMPDIR=tmp, CLAUDE_DB_MODE="helper", CLAUDE_DB_CLAUDE_COMMAND="true")
    assert result.returncode == 0, result.stderr
    assert stale and os.listdir(tmp) == []


def test_child_settings_of_a_live_launch_are_kept(home, tmp_path):
    tmp = str(tmp_path / "tmp")
    live = os.path.join(tmp, "claude-db-%d-00" % os.getpid())  # this test's pid: alive
    os.makedirs(live)
    result = home.run(program=CLAUDE_DB, TMPDIR=tmp, CLAUDE_DB_MODE="helper", CLAUDE_DB_CLAUDE_COMMAND="true")
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp) == [os.path.basename(live)]


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# -- waiting for the lock says so -------------------------------------------------------------------

@pytest.mark.parametrize("args,waiting", [
    (["logout"], "waiting for a sign-in or refresh in progress to finish before signing out"),
    (["--raw"], "waiting for another claude-db or claude-db-token of yours to finish signing in or refreshing"),
], ids=["logout", "refresh"])
def test_lock_wait_says_what_it_waits_for(home, args, waiting):
    if args == ["--raw"]:
        os.remove(home.store.token_path)  # a refresh is needed (its IdP, 127.0.0.1:9, then is unreachable)
    fd = os.open(home.store.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    proc = subprocess.Popen([HELPER_PYTHON, TOKEN_HELPER, *args], env=home.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        assert first == "claude-db-token: %s (lock %s)\n" % (waiting, home.store.lock_path)
        assert proc.poll() is None
    finally:
        os.close(fd)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and home.token not in out + err
    if args == ["logout"]:
        assert proc.returncode == 0 and "signed out" in err and not os.path.exists(home.store.token_path)
    else:
        assert proc.returncode == 1 and "cannot reach the identity provider" in err


# -- the IdP: hung, or its cache damaged; the CA bundle missing --------------------------------------

def test_idp_hung_while_the_cached_id_token_is_valid(workstation_factory):
    workstation = workstation_factory()
    # The workspace verifies with keys kept in the policy (jwks_json), as it may: only the client is under test.
    context = ssl.create_default_context(cafile=workstation.pki.ca_pem)
    with urllib.request.urlopen(workstation.idp.jwks_uri, context=context, timeout=10) as response:
        jwks = response.read().decode()
    workstation.fake.federation_policies.clear()
    add_federation_policy(workstation.fake, workstation.idp.issuer, [workstation.idp.client_id], jwks_json=jwks)
    workstation.run("login", "--browser", check=0)
    os.remove(_token_file(workstation))  # the Databricks token is gone; the ID token still has ~1 h
    os.kill(workstation.idp._process.pid, signal.SIGSTOP)  # its socket still accepts, nothing answers
    try:
        start = time.monotonic()
        result = workstation.run("--raw", timeout=120)
        elapsed = time.monotonic() - start
    finally:
        os.kill(workstation.idp._process.pid, signal.SIGCONT)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert workstation.fake.tokens[result.stdout.strip()].subject == "alice@example.test"
    assert elapsed < 15, elapsed  # MSAL's discovery alone waited 2 x 30 s; the exchange needs no IdP call


CLASS_DAMAGED_MSAL_CACHE = [
    {"Account": "not an object"}, {"Account": {"k": "not an entry"}}, {"Account": []},
    {"IdToken": {"k": {"secret": 5, "client_id": "c", "home_account_id": "h"}}},
    {"AccessToken": {"k": {"expires_on": "soon", "client_id": "c"}}},
    {"Account": {"k": {"home_account_id": ["h"], "environment": "e", "authority_type": "MSSTS"}}},
]


@pytest.mark.parametrize("cache", CLASS_DAMAGED_MSAL_CACHE, ids=range(len(CLASS_DAMAGED_MSAL_CACHE)))
def test_idp_damaged_msal_cache_means_sign_in_again(workstation, cache):
    workstation.run("login", "--browser", check=0)
    msal_file = _token_file(workstation).replace("token-", "msal-cache-")
    os.remove(_token_file(workstation))  # so that only the damaged cache could say "signed in"
    with open(msal_file, "w") as f:
        json.dump(cache, f)
    line = one_line(workstation.run("status"), 1, secrets=workstation.secrets())
    assert line == "claude-db-token: warning: ignoring the damaged MSAL token cache; you will be asked to sign in"
    workstation.run("login", "--browser", check=0)
    workstation.run("status", check=0)


def test_idp_ca_bundle_that_does_not_exist(workstation, tmp_path):
    missing = str(tmp_path / "no-such-ca.pem")
    line = one_line(workstation.run(env={"REQUESTS_CA_BUNDLE": missing}), 2)
    assert line == "claude-db-token: the CA bundle %s (from REQUESTS_CA_BUNDLE) does not exist; fix the path or " \
                   "remove that setting" % missing
    assert workstation.idp.stats()["auth"] == 0


def _token_file(workstation):
    names = [n for n in os.listdir(workstation.state_dir) if n.startswith("token-")]
    assert len(names) == 1, names
    return os.path.join(workstation.state_dir, names[0])


# -- a full disk during a refresh (in-process: the atomic write is made to fail) ----------------------

def test_disk_full_during_a_refresh_returns_the_token_and_keeps_the_old_sign_in(
        workstation, monkeypatch, trust_test_ca, browser, capsys):
    from claude_db import identity, store as store_module
    from claude_db.credentials import get_token

    monkeypatch.setenv("CLAUDE_DB_HOME", workstation.state_dir)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.delenv("SSH_TTY", raising=False)
    workstation.write_config(token_cache={"method": "file"})
    config = load_config(workstation.config_path)
    first = get_token(config, method="browser")
    store = Store(config)
    with open(store.msal_path, "rb") as f:
        saved_sign_in = f.read()
    capsys.readouterr()

    def disk_full(path, text):
        raise OSError(28, os.strerror(28), path + ".tmp")  # ENOSPC, as the temp file's write would fail

    monkeypatch.setattr(store_module, "_write_private", disk_full)
    monkeypatch.setattr(identity, "ID_TOKEN_MARGIN", 10 ** 9)  # the cached ID token counts as expiring: refresh
    token = get_token(config, interactive=False, rejected=first.access_token)
    assert workstation.idp.stats()["token"].get("refresh_token") == 1
    assert token.access_token != first.access_token and token.access_token in workstation.fake.tokens
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "the sign-in could not be saved to %s.tmp (No space left on device)" % store.msal_path \
        in err[0], err
    with open(store.msal_path, "rb") as f:
        assert f.read() == saved_sign_in  # the working sign-in was not discarded

    monkeypatch.undo()
    monkeypatch.setenv("CLAUDE_DB_HOME", workstation.state_dir)
    again = get_token(config, interactive=False, rejected=token.access_token)  # space again: it still works
    assert again.access_token in workstation.fake.tokens and len(browser.urls) == 1


# -- the per-user service (claude-db-token serve, --service-key) ------------------------------------

def _service_port(home):
    from tests.support.user_service import free_port
    port = free_port()
    home.write_config(serve={"port": port})
    return port


def test_service_key_when_serve_cannot_start_names_the_log(home):
    port = _service_port(home)
    line = one_line(home.run("--service-key", CLAUDE_DB_UPSTREAM_TIMEOUT="soon"), 1, secrets=[home.token])
    log = os.path.join(home.state, "service.log")
    assert line == "claude-db-token: claude-db-token serve on 127.0.0.1:%d exited with 2; see %s" % (port, log)
    with open(log) as f:
        assert "CLAUDE_DB_UPSTREAM_TIMEOUT must be a number" in f.read()
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600


def test_service_key_file_damaged_is_replaced_with_one_warning(home):
    from tests.support.user_service import service_pids
    _service_port(home)
    os.makedirs(home.state, exist_ok=True)
    with os.fdopen(os.open(os.path.join(home.state, "service-key"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("{not json")
    try:
        result = home.run("--service-key")
    finally:
        for pid in service_pids(home.config_path):  # the service it started
            os.kill(pid, signal.SIGTERM)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) == 64 and home.token not in result.stdout
    assert len(result.stderr.splitlines()) == 1, result.stderr
    warning = result.stderr.strip()
    assert "ignoring the damaged service client key" in warning and "it will be replaced" in warning


def test_service_passed_a_socket_that_is_not_tcp(home):
    import socket
    _service_port(home)
    left, right = socket.socketpair()
    try:
        result = subprocess.run(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", HELPER_PYTHON, TOKEN_HELPER,
                                 "serve"], env=home.env, capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL, preexec_fn=lambda: os.dup2(left.fileno(), 3), pass_fds=(3,),
                                check=False)
    finally:
        left.close()
        right.close()
    assert "the socket the service manager passed is not a TCP socket" in one_line(result, 2)


@pytest.mark.parametrize("value", ["80", "\"20000\"", "0", "70000"])
def test_service_port_not_a_port(home, value):
    home.write_config(text=json.dumps(dict(home.config, serve={"port": json.loads(value)})))
    line = one_line(home.run("serve"), 2)
    assert "serve.port" in line and "a port number from 1024 to 65535" in line, line


def test_serve_with_a_subcommand_flag_mix_is_usage(home):
    assert "--raw/--check/--service-key go without a subcommand" in one_line(home.run("--service-key", "serve"), 2)
