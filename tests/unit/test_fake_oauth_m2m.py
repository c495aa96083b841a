"""The fake answers the OAuth M2M client-credentials grant exactly as the Databricks SDK sends it.

The collection's own client (the SDK's unified auth, as a module runs it) is pointed at the fake with a
service principal's application id and OAuth secret only: it must discover the token endpoint, get a
token with HTTP Basic client authentication, and act as the service principal. A wrong secret is the
service's 401 invalid_client.
"""

import base64

import pytest
from ansible_collections.databricks_claude.gateway.plugins.module_utils.client import DatabricksClient
from ansible_collections.databricks_claude.gateway.plugins.module_utils.errors import DatabricksAuthError

from tests.support.fake_databricks import Request
from tests.support.fake_databricks.oidc import add_service_principal_secret
from tests.unit.test_databricks_client import env  # noqa: F401 # pylint: disable=unused-import

APP_ID = "6f1f3c2a-ci-deployer"


@pytest.fixture
def secret(fake_databricks):
    return add_service_principal_secret(fake_databricks, APP_ID, 5001)


def test_workspace_client_credentials_as_the_sdk_sends_them(env, fake_databricks, secret):
    fake = fake_databricks
    env.setenv("DATABRICKS_HOST", fake.url)
    env.setenv("DATABRICKS_CLIENT_ID", APP_ID)
    env.setenv("DATABRICKS_CLIENT_SECRET", secret)
    client = DatabricksClient({})
    assert client.get("/api/2.0/serving-endpoints")["endpoints"]

    grant = fake.calls("^/oidc/v1/token$", "POST")[-1]
    assert grant.form() == {"grant_type": "client_credentials", "scope": "all-apis"}  # nothing secret in the form
    assert grant.headers["authorization"] == "Basic " + base64.b64encode(
        ("%s:%s" % (APP_ID, secret)).encode()).decode()
    bearer = fake.calls("/serving-endpoints", "GET")[-1].headers["authorization"]
    assert fake.tokens[bearer[len("Bearer "):]].subject == APP_ID  # the API call acts as the service principal


def test_account_client_credentials_use_the_account_token_endpoint(env, fake_databricks, secret):
    fake = fake_databricks
    discovery = "%s/oidc/accounts/%s/.well-known/oauth-authorization-server" % (fake.url, fake.account_id)
    env.setenv("DATABRICKS_DISCOVERY_URL", discovery)  # what an account host's metadata names (oidc/accounts/{id})
    client = DatabricksClient({"host": fake.url, "account_id": fake.account_id, "client_id": APP_ID,
                               "client_secret": secret}, account=True)
    assert client.get("/api/2.0/accounts/%s/federationPolicies" % fake.account_id) is not None
    assert fake.calls("^/oidc/accounts/%s/v1/token$" % fake.account_id, "POST")
    assert not fake.calls("^/oidc/v1/token$", "POST")


def test_a_wrong_secret_is_refused_with_invalid_client(env, fake_databricks, secret):
    fake = fake_databricks
    with pytest.raises(DatabricksAuthError) as raised:
        DatabricksClient({"host": fake.url, "client_id": APP_ID, "client_secret": secret[:-1] + "x"}).get(
            "/api/2.0/serving-endpoints")
    assert "invalid_client" in str(raised.value) and "Client authentication failed" in str(raised.value)
    assert secret[:-1] not in str(raised.value)
    refused = fake.calls("^/oidc/v1/token$", "POST")[-1]
    assert refused.form()["grant_type"] == "client_credentials"
    assert not fake.calls("/serving-endpoints")  # no API call without a token


def test_an_unknown_service_principal_and_an_unknown_account_are_refused(fake_databricks, secret):
    fake = fake_databricks
    unknown = Request("POST", "/oidc/v1/token", {}, {"authorization": "Basic " + base64.b64encode(
        b"nobody:" + secret.encode()).decode()}, b"grant_type=client_credentials&scope=all-apis")
    answer = fake.dispatch(unknown)
    assert answer.status == 401 and b'"invalid_client"' in answer.body
    other = Request("POST", "/oidc/accounts/other-account/v1/token", {}, {}, b"grant_type=client_credentials")
    assert fake.dispatch(other).status == 404
