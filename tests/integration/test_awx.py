"""AWX / AAP: the custom credential type (extensions/awx/credential-type-databricks.yml) and admin.yml run
from nothing but what a credential of that type injects, with a service principal's OAuth M2M secret.

Injectors are rendered the way AWX renders them (a Jinja2 ImmutableSandboxedEnvironment over the
credential's inputs, unset inputs empty: awx/main/models/credential CredentialType.inject_credential).
"""

import re
from pathlib import Path

import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible_collections.databricks_claude.gateway.plugins.doc_fragments.connection import ModuleDocFragment
from ansible_collections.databricks_claude.gateway.plugins.module_utils.client import AUTH_OPTIONS
from tests.support.fake_databricks.oidc import add_service_principal_secret

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CREDENTIAL_TYPE = REPO / "extensions" / "awx" / "credential-type-databricks.yml"
EXAMPLE = REPO / "playbooks" / "vars" / "admin.example.yml"
ADMIN = "databricks_claude.gateway.admin"
APP_ID = "0c5e7c1e-awx-gateway-admin"
# Profiles and auth_type name a ~/.databrickscfg; an EE has none, so the credential type leaves them out.
NOT_INJECTED = {"profile", "auth_type"}


def credential_type():
    return yaml.safe_load(CREDENTIAL_TYPE.read_text())


def inject(inputs):
    """What AWX puts into the job's environment and extra vars for a credential with `inputs`."""
    kind = credential_type()
    sandbox = ImmutableSandboxedEnvironment()
    namespace = {field["id"]: inputs.get(field["id"], "") for field in kind["inputs"]["fields"]}
    render = {section: {k: sandbox.from_string(v).render(**namespace) for k, v in templates.items()}
              for section, templates in kind["injectors"].items()}
    return render["env"], render["extra_vars"]


def sdk_env_names():
    """The environment variables the SDK's unified auth reads for the options the modules take."""
    from databricks.sdk.config import Config
    return {a.name: a.env for a in Config.attributes() if a.name in AUTH_OPTIONS and a.name not in NOT_INJECTED}


def test_credential_type_injects_exactly_the_sdk_auth_variables_the_modules_document():
    kind = credential_type()
    assert kind["kind"] in ("cloud", "net")  # the only kinds AWX allows for custom types
    fields = {f["id"]: f for f in kind["inputs"]["fields"]}
    assert len(fields) == len(kind["inputs"]["fields"])
    assert set(kind["inputs"]["required"]) <= set(fields)
    assert {i for i, f in fields.items() if f.get("secret")} == {"client_secret", "token"}
    assert set(kind["injectors"]) == {"env", "extra_vars"}

    expected = sdk_env_names()
    assert set(kind["injectors"]["env"]) == set(expected.values())
    for option, env in expected.items():
        assert kind["injectors"]["env"][env] == "{{ %s }}" % option  # each variable carries its own input
        assert "C(%s)" % env in ModuleDocFragment.DOCUMENTATION, env  # the modules document it
    # Secrets reach the environment only: an extra var is stored with the job and shown to its readers.
    for template in kind["injectors"]["extra_vars"].values():
        assert not set(re.findall(r"\w+", template)) & {"client_secret", "token"}

    env, extra_vars = inject({"host": "https://w.example", "account_host": "https://a.example", "account_id": "a1",
                              "client_id": "app", "client_secret": "s3"})
    assert env == {"DATABRICKS_HOST": "https://w.example", "DATABRICKS_ACCOUNT_ID": "a1",
                   "DATABRICKS_CLIENT_ID": "app", "DATABRICKS_CLIENT_SECRET": "s3", "DATABRICKS_TOKEN": "",
                   "DATABRICKS_WORKSPACE_ID": ""}
    assert extra_vars == {"databricks_host": "https://w.example", "databricks_account_host": "https://a.example",
                          "databricks_account_id": "a1"}


def job_template_vars(tmp_path):
    """The job template's own extra vars: the example without the hosts and profiles (the credential's)."""
    text = re.sub(r"(?m)^databricks_(host|account_host|account_id|profile|account_profile):.*\n", "",
                  EXAMPLE.read_text())
    path = tmp_path / "job-template-vars.yml"
    path.write_text(text)
    return path


class AwxJob:
    """admin.yml launched as an AWX job: the credential's env and extra vars, the template's vars."""

    def __init__(self, fake, ansible, tmp_path, secret):
        self.fake, self.ansible, self.tmp_path = fake, ansible, tmp_path
        self.inputs = {"host": fake.url, "account_host": fake.url, "account_id": fake.account_id,
                       "client_id": APP_ID, "client_secret": secret}
        fake.serving.update_seconds = 0.2

    def launch(self, **inputs):
        env, extra_vars = inject(dict(self.inputs, **inputs))
        credential_vars = self.tmp_path / "credential-extra-vars.yml"
        credential_vars.write_text(yaml.safe_dump(extra_vars))
        return self.ansible.play(ADMIN, env=env, args=["-e", "@%s" % job_template_vars(self.tmp_path),
                                                       "-e", "@%s" % credential_vars])


@pytest.fixture
def job(fake_databricks, ansible, tmp_path):
    return AwxJob(fake_databricks, ansible, tmp_path, add_service_principal_secret(fake_databricks, APP_ID, 9001))


def test_admin_playbook_runs_from_injected_m2m_credentials_only(job):
    fake = job.fake
    first = job.launch().assert_ok()
    assert first.changed == 4
    assert fake.serving.record("claude-code-gateway") and fake.federation_policies
    grants = fake.calls("/oidc/(accounts/[^/]+/)?v1/token$", "POST")
    assert grants and all(g.form()["grant_type"] == "client_credentials" for g in grants)
    api_calls = fake.calls("^/api/")
    assert api_calls and {fake.tokens[c.headers["authorization"][len("Bearer "):]].subject
                          for c in api_calls} == {APP_ID}  # every call acted as the service principal
    assert job.inputs["client_secret"] not in first.output

    fake.reset_log()
    second = job.launch().assert_ok()
    assert second.changed == 0 and fake.writes("^/api/") == []


def test_a_wrong_secret_fails_the_job_with_invalid_client_and_writes_nothing(job):
    fake = job.fake
    wrong = job.inputs["client_secret"][:-2] + "xx"
    run = job.launch(client_secret=wrong)
    assert run.rc != 0
    assert "authentication failed: invalid_client: Client authentication failed" in run.output, run.output[-3000:]
    assert wrong not in run.output and job.inputs["client_secret"] not in run.output
    assert fake.writes("^/api/") == []
