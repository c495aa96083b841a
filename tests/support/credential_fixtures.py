"""Fixtures for the credential helper: a workstation signed in against the local IdP and the fake workspace.

`workstation` is what a developer's machine looks like to `claude-db-token`: a
config file whose authority is the local IdP and whose databricks_host is the
fake workspace, an account federation policy trusting that IdP, an isolated
HOME/CLAUDE_DB_HOME, the test CA, and BROWSER=scripted-browser. `run()` starts the
real bin/claude-db-token in a subprocess with exactly that environment.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.support.fake_databricks import Request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "bin")
TOKEN_HELPER = os.path.join(BIN, "claude-db-token")
SCRIPTED_BROWSER = os.path.join(REPO, "tests", "support", "scripted-browser")
TEST_KEYRING = "tests.support.keyring_backend.FileKeyring"
NO_KEYRING = "keyring.backends.fail.Keyring"
# The interpreter that runs bin/claude-db-token: this one, or e.g. a Python 3.9 venv with
# requirements-workstation.txt (the oldest python3 a Mac ships) to check that bin/ still runs there.
HELPER_PYTHON = os.environ.get("CLAUDE_DB_TEST_PYTHON") or sys.executable

if BIN not in sys.path:
    sys.path.insert(0, BIN)


def add_federation_policy(fake, issuer, audiences, subject_claim="preferred_username", sp_id=None, subject=None,
                          policy_id=None, jwks_json=None):
    """Create a federation policy through the fake's own account API (so it is validated like one)."""
    path = "/api/2.0/accounts/%s" % fake.account_id
    if sp_id is not None:
        path += "/servicePrincipals/%d" % sp_id
    path += "/federationPolicies"
    oidc = {"issuer": issuer, "audiences": list(audiences), "subject_claim": subject_claim}
    if subject is not None:
        oidc["subject"] = subject
    if jwks_json is not None:
        oidc["jwks_json"] = jwks_json  # the policy's own keys: Databricks then never calls the IdP
    query = {"policy_id": [policy_id]} if policy_id else {}
    admin = fake.issue_token("account-admin@example.test", 60)
    response = fake.dispatch(Request("POST", path, query, {"content-type": "application/json",
                                                           "authorization": "Bearer " + admin},
                                     json.dumps({"oidc_policy": oidc}).encode()))
    fake.reset_log()
    assert response.status == 200, response.body
    return json.loads(response.body)


class Workstation:
    """A developer machine for claude-db-token: config, HOME, state dir, env; see the module docstring."""

    def __init__(self, idp, fake, pki, tmp_path):
        self.idp, self.fake, self.pki = idp, fake, pki
        self.home = str(tmp_path / "home")
        self.state_dir = os.path.join(self.home, ".databricks-claude-gateway")
        self.config_path = str(tmp_path / "config.json")
        self.browser_log = str(tmp_path / "browser.log")
        self.keyring_file = str(tmp_path / "keyring.json")
        os.makedirs(self.home, exist_ok=True)
        self.config = {
            "databricks_host": fake.url,
            "endpoint_name": "claude-code-gateway",
            "model": "claude-sonnet-4-20250514",
            "route": "serving-endpoints",
            "azure_ad": {"tenant_id": idp.tenant, "client_id": idp.client_id,
                         "scopes": ["openid", "profile", "email"], "authority": idp.authority},
            "federation": {"service_principal_client_id": None},
            "token_cache": {"method": "keyring", "fallback": "file"},
        }
        self.write_config()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "LANG": "C.UTF-8",
            "CLAUDE_DB_HOME": self.state_dir,
            "CLAUDE_DB_CONFIG": self.config_path,
            "CLAUDE_DB_LOGIN_TIMEOUT": "30",
            "BROWSER": SCRIPTED_BROWSER,
            "SCRIPTED_BROWSER_LOG": self.browser_log,
            "PYTHON_KEYRING_BACKEND": NO_KEYRING,  # the file fallback, unless a test selects TEST_KEYRING
            "PYTHONPATH": REPO,  # only for TEST_KEYRING; bin/claude-db-token finds its package itself
            "TEST_KEYRING_FILE": self.keyring_file,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.update(pki.client_env())
        fake.issuer_ca = pki.ca_pem
        add_federation_policy(fake, idp.issuer, [idp.client_id])

    def write_config(self, **changes):
        """Rewrite the config file; `azure_ad={...}` etc. are merged one level deep."""
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(self.config.get(key), dict):
                self.config[key] = {**self.config[key], **value}
            else:
                self.config[key] = value
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)

    def command(self, *args):
        return [HELPER_PYTHON, TOKEN_HELPER, *args]

    def run(self, *args, timeout=90, env=None, check=None):
        """Run claude-db-token; returns the CompletedProcess (text). `check`: the expected exit code."""
        result = subprocess.run(self.command(*args), env={**self.env, **(env or {})}, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        if check is not None:
            assert result.returncode == check, (result.returncode, result.stdout, result.stderr)
        return result

    def popen(self, *args, env=None, **kwargs):
        return subprocess.Popen(self.command(*args), env={**self.env, **(env or {})}, text=True,
                                stdin=subprocess.DEVNULL, **kwargs)

    def secrets(self):
        """Every secret this workstation holds now: the Databricks token, the IdP's ID/access/refresh tokens."""
        found = set(self.fake.tokens)
        for name in os.listdir(self.state_dir) if os.path.isdir(self.state_dir) else []:
            if name.endswith(".json"):
                with open(os.path.join(self.state_dir, name)) as f:
                    found.update(_secret_values(json.load(f)))
        if os.path.exists(self.keyring_file):
            with open(self.keyring_file) as f:
                for entries in json.load(f).values():
                    for value in entries.values():
                        found.update(_secret_values(json.loads(value)))
        return {s for s in found if s and len(s) >= 16}

    def browser_log_lines(self):
        if not os.path.exists(self.browser_log):
            return []
        with open(self.browser_log) as f:
            return f.read().splitlines()


def _secret_values(data):
    """Token values inside a token file or an MSAL cache (its "secret" fields)."""
    values = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("secret", "access_token") and isinstance(value, str):
                values.append(value)
            else:
                values.extend(_secret_values(value))
    return values


@pytest.fixture
def workstation(idp, fake_databricks, pki, tmp_path):
    """A workstation for the default IdP (shared, reset per test) and a fresh fake workspace."""
    return Workstation(idp, fake_databricks, pki, tmp_path)


@pytest.fixture
def workstation_factory(idp_factory, fake_databricks, pki, tmp_path):
    """make(**IDP_knobs) -> a Workstation against a private IdP started with those knobs."""
    def make(**idp_env):
        return Workstation(idp_factory(**idp_env), fake_databricks, pki, tmp_path)
    return make
