"""Two users on one machine (root and `nobody`), each with their own `claude-db-token serve`, port and key."""

import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from tests.support.credential_fixtures import TOKEN_HELPER
from tests.support.launcher_fixtures import REPO, message_body, wait_for
from tests.support.user_service import UserService, accepting, free_port, service_pids

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a second user's service (nobody)")]

NOBODY = {"user": "nobody", "group": "nogroup"}


@pytest.fixture(scope="session")
def nobody_python():
    """A workstation install (requirements-workstation-lock.txt) that `nobody` can run (ours lives where it cannot)."""
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is None:
        pytest.skip("no /usr/bin/python3 for user nobody")
    top = tempfile.mkdtemp(prefix="claude-db-nobody-venv-")
    os.chmod(top, 0o755)
    venv = os.path.join(top, "venv")
    try:
        subprocess.run([system, "-m", "venv", venv], check=True, capture_output=True, timeout=300)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check", "-r",
                        os.path.join(REPO, "requirements-workstation-lock.txt")], check=True, capture_output=True,
                       timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(top, ignore_errors=True)
        pytest.skip("cannot make a workstation venv for nobody: %s" % e)
    yield os.path.join(venv, "bin", "python")
    shutil.rmtree(top, ignore_errors=True)


class NobodysWorkstation:
    """`nobody`'s HOME, state directory and config (a copy of root's, its own port) with a cached token."""

    def __init__(self, root_workstation, python: str):
        self.python = python
        self.top = tempfile.mkdtemp(prefix="claude-db-nobody-")
        os.chmod(self.top, 0o755)
        self.home = os.path.join(self.top, "home")
        self.state_dir = os.path.join(self.home, ".databricks-claude-gateway")
        self.config_path = os.path.join(self.top, "config.json")
        self.port = free_port()
        ca = os.path.join(self.top, "ca.pem")
        shutil.copy(root_workstation.pki.ca_pem, ca)
        config = dict(root_workstation.config, serve={"port": self.port}, token_cache={"method": "file"})
        with open(self.config_path, "w") as f:
            json.dump(config, f)
        self.env = {"PATH": "/usr/bin:/bin", "HOME": self.home, "LANG": "C.UTF-8", "CLAUDE_DB_CONFIG": self.config_path,
                    "REQUESTS_CA_BUNDLE": ca, "SSL_CERT_FILE": ca, "PYTHONDONTWRITEBYTECODE": "1"}
        os.makedirs(self.home)
        self._seed_token(root_workstation, config)
        subprocess.run(["chown", "-R", "nobody:nogroup", self.top], check=True)

    def _seed_token(self, root_workstation, config) -> None:
        """Root's Databricks token in nobody's cache (the same person, signed in twice, is not the point here)."""
        from claude_db.config import parse_config
        from claude_db.store import Store
        token = max(root_workstation.fake.tokens, key=lambda t: root_workstation.fake.tokens[t].expires_at)
        previous = os.environ.get("CLAUDE_DB_HOME")
        os.environ["CLAUDE_DB_HOME"] = self.state_dir
        try:
            Store(parse_config(json.dumps(config).encode(), self.config_path)).write_token(
                token, root_workstation.fake.tokens[token].expires_at)
        finally:
            if previous is None:
                del os.environ["CLAUDE_DB_HOME"]
            else:
                os.environ["CLAUDE_DB_HOME"] = previous

    def run(self, *args, check=None, **changes):
        result = subprocess.run([self.python, TOKEN_HELPER, *args], env=dict(self.env, **changes), capture_output=True,
                                text=True, timeout=90, stdin=subprocess.DEVNULL, check=False, **NOBODY)
        if check is not None:
            assert result.returncode == check, (result.returncode, result.stdout, result.stderr)
        return result

    def close(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)


def _try_read_as_nobody(python: str, path: str) -> str:
    return subprocess.run([python, "-c", "import sys\ntry:\n    open(sys.argv[1]).read()\n    print('read')\n"
                                         "except OSError as e:\n    print(type(e).__name__)", path],
                          capture_output=True, text=True, check=True, **NOBODY).stdout.strip()


def test_two_users_two_services_two_ports_two_keys(workstation, nobody_python):
    workstation.run(check=0)
    root = UserService(workstation)
    nobody = NobodysWorkstation(workstation, nobody_python)
    try:
        root.start()
        root_key = root.key()
        # nobody's service, started by its own apiKeyHelper call.
        nobody_key = nobody.run("--service-key", check=0).stdout.strip()
        assert accepting(nobody.port), open(os.path.join(nobody.state_dir, "service.log")).read()
        assert nobody.port != root.port and nobody_key != root_key
        as_nobody = UserService.__new__(UserService)
        as_nobody.port = nobody.port

        assert root.request(root_key)[0] == 200
        assert root.request(nobody_key)[0] == 401
        assert as_nobody.request(root_key)[0] == 401
        status, body = as_nobody.request(nobody_key, message_body(stream=False))
        assert status == 200, body

        root_key_file = os.path.join(workstation.state_dir, "service-key")
        nobody_key_file = os.path.join(nobody.state_dir, "service-key")
        for path in (root_key_file, nobody_key_file):
            assert os.stat(path).st_mode & 0o777 == 0o600
            assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
        assert _try_read_as_nobody(nobody_python, root_key_file) == "PermissionError"
        assert os.stat(nobody_key_file).st_uid != 0  # nobody's own; only root (who can read anything) could

        # Each user's helper pointed at the other's port refuses and prints no key.
        workstation.write_config(serve={"port": nobody.port})
        refused = workstation.run("--service-key", check=1)
        assert refused.stdout == "" and "is held by uid %d" % os.stat(nobody_key_file).st_uid in refused.stderr
        nobody_config = json.load(open(nobody.config_path))
        nobody_config["serve"]["port"] = root.port
        with open(nobody.config_path, "w") as f:
            json.dump(nobody_config, f)
        refused = nobody.run("--service-key", check=1)
        assert refused.stdout == "" and "is held by uid 0," in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and len(refused.stderr.splitlines()) == 1
    finally:
        workstation.write_config(serve={"port": root.port})
        root.stop()
        for pid in service_pids(nobody.config_path):  # started by nobody's --service-key
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not accepting(nobody.port), timeout=10)
        nobody.close()
