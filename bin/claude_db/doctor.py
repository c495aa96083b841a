"""`claude-db-token doctor`: each link of the chain checked in order, one pass/fail line with the fix.

config -> token store -> route to the IdP (direct or which proxy) -> route to the workspace (the auth
proxy's own tunnel + TLS code) -> IdP discovery -> cached sign-in -> token exchange -> serving endpoint(s), or on
route ai-gateway the Databricks user and each model service (model_services.py).
A failed link marks the ones that need it as skipped rather than piling up errors.
"""

import os
import sys

from . import credentials
from .errors import ClaudeDbError
from .service_client import check_service


def run_doctor(config) -> int:
    """Print the checks on stdout; exit code 0 when all pass, 1 otherwise."""
    report = _Report()
    report.ok("config", "%s (workspace %s)" % (config.path, config.databricks_host))
    report.run("token store", lambda: _check_store(config))
    report.run("IdP route", lambda: _check_idp_route(config))
    report.run("workspace route", lambda: _check_workspace_route(config))
    report.run("service", lambda: check_service(config))
    idp_ok = report.run("identity provider", lambda: _check_idp(config))
    signed_in = idp_ok and report.run("sign-in", lambda: _check_sign_in(config))
    token = None
    if signed_in:
        token = report.get("token exchange", lambda: _fresh_token(config),
                           lambda t: "got a Databricks token valid for %d min" % (t.expires_in // 60))
    else:
        report.skip("token exchange", "needs a sign-in")
    if config.route == "ai-gateway":
        _check_model_services(report, config, token)
        return 0 if report.passed else 1
    for name in sorted({config.endpoint_name} | set(config.models.values())):
        if token:
            report.run("endpoint %s" % name, lambda: _check_endpoint(config, name, token))
        else:
            report.skip("endpoint %s" % name, "needs a Databricks token")
    return 0 if report.passed else 1


class _Report:
    def __init__(self):
        self.passed = True

    def run(self, name: str, check) -> bool:
        """Run `check` (it returns the line's detail, or raises ClaudeDbError); print its line; True if it passed."""
        return self.get(name, check, str) is not None

    def get(self, name: str, fetch, describe):
        """Run `fetch` for a value that later checks need; print its line (describe(value)); the value or None."""
        try:
            value = fetch()
        except ClaudeDbError as e:
            self.fail(name, str(e))
            return None
        self.ok(name, describe(value))
        return value

    def ok(self, name: str, detail: str) -> None:
        self._line("ok", name, detail)

    def fail(self, name: str, detail: str) -> None:
        self.passed = False
        self._line("FAIL", name, detail)

    def skip(self, name: str, why: str) -> None:
        self._line("skip", name, why)

    @staticmethod
    def _line(mark: str, name: str, detail: str) -> None:
        sys.stdout.write("%-5s %-18s %s\n" % (mark, name, detail))
        sys.stdout.flush()


def _check_store(config) -> str:
    from .config import state_dir
    directory = state_dir()
    mode = os.stat(directory).st_mode & 0o777
    fixed = credentials.make_private(config)
    return "sign-in kept in %s; directory %s mode %o%s" % (
        credentials.kept_in(config), directory, mode,
        "; fixed: %s (other users could read them; now 0600)" % ", ".join(fixed) if fixed else "")


def _check_idp_route(config) -> str:
    """Direct or through which proxy (password redacted); the IdP check below goes the same way."""
    from .network import route
    return route(config, config.authority).describe()


def _check_workspace_route(config) -> str:
    """The auth proxy's own connection code (CONNECT tunnel, TLS): what `doctor` passes, prompts can use."""
    from .proxy import check_workspace_connection
    return check_workspace_connection(config)


def _check_idp(config) -> str:
    return "%s (token endpoint %s)" % (config.authority, credentials.idp_token_endpoint(config))


def _check_sign_in(config) -> str:
    from .errors import AuthError
    sign_in = credentials.cached_sign_in(config)
    if not sign_in.has_refresh_token:
        raise AuthError("not signed in; fix: run `claude-db-token login`")
    return "%s (issuer %s)" % (sign_in.user, sign_in.issuer)


def _fresh_token(config):
    """A real exchange: a cached Databricks token is passed as `rejected`, so a new one is fetched."""
    cached = credentials.cached_token(config)
    return credentials.get_token(config, interactive=False, rejected=cached.access_token if cached else None)


def _check_model_services(report: _Report, config, token) -> None:
    """One line per model service the config names: it exists and the user may query it, or what is missing."""
    from .model_services import Workspace, check, configured, signed_in_user
    workspace = Workspace(config, token) if token else None
    user = workspace and report.get("databricks user", lambda: signed_in_user(workspace), str)
    for name, slots in configured(config):
        if user:
            report.run("model service %s" % name, lambda: check(workspace, user, name, slots))
        else:
            report.skip("model service %s" % name, "needs the Databricks user" if token else "needs a Databricks token")


def _check_endpoint(config, name: str, token) -> str:
    import requests
    from .errors import AuthError
    from .network import request_failure, session
    url = "%s/api/2.0/serving-endpoints/%s" % (config.databricks_host, name)
    headers = {"Authorization": "Bearer " + token.access_token}
    if config.workspace_id:  # a unified host routes workspace calls by it, as the SDK sends it
        headers["X-Databricks-Workspace-Id"] = config.workspace_id
    try:
        with session(config) as http:
            response = http.get(url, headers=headers, timeout=(10, 30), auth=lambda r: r)
    except requests.exceptions.RequestException as e:
        raise (request_failure(config, url, e, "Databricks at %s" % config.databricks_host)
               or AuthError("cannot reach %s (%s); check your network" % (config.databricks_host, type(e).__name__)))
    if response.status_code == 404:
        raise AuthError("no serving endpoint %s in %s; fix: an admin runs playbooks/admin.yml, or fix endpoint_name/"
                        "models in %s" % (name, config.databricks_host, config.path))
    if response.status_code in (401, 403):
        raise AuthError("the signed-in user may not use serving endpoint %s (HTTP %d); fix: an admin grants "
                        "CAN_QUERY on it" % (name, response.status_code))
    if response.status_code != 200:
        raise AuthError("Databricks answered HTTP %d for serving endpoint %s; try again later"
                        % (response.status_code, name))
    state = (response.json().get("state") or {})
    if state.get("ready") != "READY":
        raise AuthError("serving endpoint %s is not ready (%s, config update %s); fix: wait for it, or check "
                        "its events in the workspace" % (name, state.get("ready"), state.get("config_update")))
    return "ready"
