"""The main job, end to end, against a local sandbox (run by tests/sandbox).

1. start the local IdP (real OpenID provider) and the fake Databricks workspace + account,
2. admin: `ansible-playbook databricks_claude.gateway.admin` creates the endpoint, AI Gateway
   config, permissions and the federation policy trusting the IdP; a second run must change nothing,
3. platform team: `ansible-playbook databricks_claude.gateway.workstation` installs claude-db,
   claude-db-token and their config for the sandbox's developer; a second run must change nothing,
4. developer: the installed `claude-db-token login` signs in through the browser flow (a scripted
   browser plays the user), then the installed `claude-db -p ...` runs the real Claude Code
   through the auth proxy.

`--gateway unity` takes the Unity AI Gateway path instead: admin.yml with `gateway_kind: unity` from
playbooks/vars/admin.unity.example.yml (model services per slot, the developers' grants), the
developer's config on `route: ai-gateway` with those model services' full names, and Claude Code
answered on /ai-gateway/anthropic.

Everything listens on 127.0.0.1 and lives in a temporary directory (or --workdir). No secret
is printed: the admin token reaches ansible-playbook through the environment, never argv.
With --keep the IdP and the fake workspace stay up after the journey, with the commands to try
them by hand, until Ctrl-C (or SIGTERM) stops them.
"""

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from tests.support.fake_databricks import make_fake  # noqa: E402
from tests.support.fake_databricks.messages import text  # noqa: E402
from tests.support.pki import make_pki  # noqa: E402

ENDPOINT = "claude-sonnet-4-5-gateway"  # contains the model id, so Claude Code picks the right request shape
UNITY_EXAMPLE_VARS = os.path.join(REPO, "playbooks", "vars", "admin.unity.example.yml")
GATEWAYS = ("serving_endpoint", "unity")  # admin.yml's gateway_kind
CLAUDE = os.path.join(REPO, "tests", "support", "claude-code", "node_modules", ".bin", "claude")
VENV_BIN = os.path.dirname(sys.executable)


def step(text):
    print("\n==> " + text, file=sys.stderr, flush=True)


def run(argv, env, **kwargs):
    """Run a command with `env`, echo its output, fail the sandbox when it fails."""
    shown = " ".join(os.path.relpath(a, REPO) if a.startswith(REPO) else a for a in argv)
    print("$ " + shown, file=sys.stderr, flush=True)
    done = subprocess.run(argv, env=env, cwd=kwargs.pop("cwd", REPO), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, **kwargs)
    sys.stderr.write(done.stdout)
    if done.returncode != 0:
        raise SystemExit("sandbox: `%s` failed with exit code %d" % (shown, done.returncode))
    return done.stdout


class Unsafe(str):
    """A vars-file string Ansible must not template (a Databricks secret reference): YAML's !unsafe."""


def write_vars_file(path, variables):
    import yaml
    dumper = type("VarsDumper", (yaml.SafeDumper,), {})
    dumper.add_representer(Unsafe, lambda d, value: d.represent_scalar("!unsafe", str(value)))
    with open(path, "w") as f:
        yaml.dump(variables, f, Dumper=dumper, sort_keys=False)


def admin_vars(fake, idp):
    return {
        "databricks_host": fake.url,
        "databricks_account_host": fake.url,
        "databricks_account_id": fake.account_id,
        "gateway_endpoint_name": ENDPOINT,
        "gateway_served_entities": [{
            "name": "claude-sonnet",
            "external_model": {"provider": "anthropic", "name": "claude-sonnet-4-5", "task": "llm/v1/chat",
                               "anthropic_config": {"anthropic_api_key": Unsafe("{{secrets/claude/anthropic_api_key}}")}}}],
        "gateway_tags": {"team": "platform", "purpose": "claude-code"},
        "gateway_ai_gateway": {"usage_tracking_config": {"enabled": True},
                               "rate_limits": [{"key": "user", "calls": 60, "renewal_period": "minute"}]},
        "gateway_developers_group": "claude-code-developers",
        "entra_tenant_id": idp.tenant,
        "entra_client_id": idp.client_id,
        "gateway_federation_issuer": idp.issuer,  # the sandbox IdP instead of login.microsoftonline.com
    }


def unity_admin_vars(fake, idp):
    """The Unity example vars file as a platform team would start from it, pointed at the sandbox."""
    import yaml
    with open(UNITY_EXAMPLE_VARS) as f:
        variables = yaml.safe_load(f)
    for profile in ("databricks_profile", "databricks_account_profile"):  # the sandbox's token comes by env
        variables.pop(profile, None)
    sandbox_vars = admin_vars(fake, idp)
    variables.update({k: sandbox_vars[k] for k in ("databricks_host", "databricks_account_host",
                                                   "databricks_account_id", "entra_tenant_id", "entra_client_id",
                                                   "gateway_federation_issuer")})
    return variables


def model_service_names(admin_variables):
    """{slot: catalog.schema.name} of the model services admin.yml made, for the developer's config."""
    schema = "%s.%s." % (admin_variables["gateway_unity_catalog"], admin_variables["gateway_unity_schema"])
    return {slot: schema + service["name"] for slot, service in admin_variables["gateway_model_services"].items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--workdir", help="keep the sandbox's files here (default: a temporary dir, removed)")
    parser.add_argument("--prompt", default="Say hello to the sandbox.", help="what to ask Claude Code")
    parser.add_argument("--gateway", choices=GATEWAYS, default="serving_endpoint",
                        help="serving_endpoint (default): a serving endpoint on /serving-endpoints/anthropic; "
                             "unity: Unity AI Gateway model services on /ai-gateway/anthropic")
    parser.add_argument("--keep", action="store_true",
                        help="after the journey, keep the IdP and the fake workspace running and print their "
                             "addresses and the commands to try by hand; Ctrl-C stops them")
    args = parser.parse_args()
    work = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="claude-db-sandbox-")
    os.makedirs(work, exist_ok=True)
    try:
        sandbox(work, args.prompt, args.gateway, keep=args.keep)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def sandbox(work, prompt, gateway="serving_endpoint", keep=False, collections=None):
    """The journey; `collections`: an ANSIBLE_COLLECTIONS_PATH holding the collection (default: this checkout)."""
    from tests.support.idp_fixtures import Idp  # the same IdP the tests use

    step("starting the local IdP and the fake Databricks on 127.0.0.1")
    pki = make_pki(os.path.join(work, "pki"))
    os.makedirs(os.path.join(work, "idp-home"), exist_ok=True)
    idp = Idp(pki, os.path.join(work, "idp-home"), IDP_DEVICE_INTERVAL="1")
    fake = make_fake()
    fake.issuer_ca = pki.ca_pem
    fake.anthropic.default_reply = text("Hello from the sandbox workspace: this answer came through claude-db's "
                                        "auth proxy with a short-lived OAuth token.")
    fake.start(tls=pki.server_context())
    print("IdP issuer: %s\nworkspace:  %s (account %s)" % (idp.issuer, fake.url, fake.account_id), file=sys.stderr)
    try:
        env = ansible_env(work, collections)
        admin_variables = admin_vars(fake, idp) if gateway == "serving_endpoint" else unity_admin_vars(fake, idp)
        admin(work, dict(env, **pki.client_env()), fake, admin_variables)  # the modules trust the sandbox CA
        route = route_vars(admin_variables)
        bin_dir = workstation(work, env, fake, idp, route)
        developer(work, pki, fake, bin_dir, prompt, route)
        if keep:
            keep_running(work, pki, fake, idp, bin_dir, prompt)
    finally:
        idp.stop()
        fake.stop()


def keep_running(work, pki, fake, idp, bin_dir, prompt):
    """Print how to use the running sandbox by hand, then wait for Ctrl-C (or SIGTERM) to stop it."""
    env = developer_env(work, pki)
    env["CLAUDE_DB_CONFIG"] = os.path.join(env["HOME"], ".databricks-claude-gateway", "config.json")
    exports = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(env.items()) if k != "PATH")
    print("\nThe sandbox is running (Ctrl-C stops it):\n"
          "  IdP issuer:  %s (users: %s)\n"
          "  workspace:   %s (account %s; workspace and account APIs on one host)\n"
          "  config:      %s\n"
          "Try it by hand, in another shell:\n"
          "  export %s\n"
          "  %s status\n"
          "  %s login --browser\n"
          "  %s -p %s\n"
          "Press Ctrl-C to stop the sandbox."
          % (idp.issuer, ", ".join(idp.users), fake.url, fake.account_id, env["CLAUDE_DB_CONFIG"], exports,
             *(shlex.quote(os.path.join(bin_dir, name)) for name in ("claude-db-token", "claude-db-token",
                                                                     "claude-db")), shlex.quote(prompt)),
          flush=True)
    # Ctrl-C even when started in the background by a script (which ignores SIGINT), and SIGTERM alike.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        step("stopping the IdP and the fake workspace")


def ansible_env(work, collections=None):
    """ansible-playbook's environment: the collection (this checkout by symlink), Ansible's files in the sandbox."""
    if collections is None:
        collections = os.path.join(work, "collections")
        namespace = os.path.join(collections, "ansible_collections", "databricks_claude")
        os.makedirs(namespace, exist_ok=True)
        if not os.path.exists(os.path.join(namespace, "gateway")):
            os.symlink(REPO, os.path.join(namespace, "gateway"))
    env = dict(os.environ)
    env.update({"PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""), "HOME": os.path.join(work, "admin-home"),
                "ANSIBLE_COLLECTIONS_PATH": collections, "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_LOCAL_TEMP": os.path.join(work, "ansible-tmp"),
                "ANSIBLE_REMOTE_TEMP": os.path.join(work, "ansible-tmp")})
    for name in [n for n in env if n.startswith("DATABRICKS_")]:
        del env[name]
    return env


def play_twice(env, name, vars_file, what, extra=(), writes=lambda: 0):
    """Run playbook `name` twice: the first run does `what`; the second must change and write nothing."""
    playbook = ["ansible-playbook", "databricks_claude.gateway." + name, "-e", "@" + vars_file] + list(extra)
    step("%s: ansible-playbook databricks_claude.gateway.%s (%s)" % (what[0], name, what[1]))
    run(playbook, env)
    written = writes()
    step("%s: the same playbook again (must change nothing)" % what[0])
    if "changed=0" not in run(playbook, env) or writes() != written:
        raise SystemExit("sandbox: the second %s.yml run changed something" % name)


def route_vars(admin_variables):
    """The workstation role's route and model names for what admin.yml made."""
    if admin_variables.get("gateway_kind") != "unity":
        return {"workstation_route": "serving-endpoints", "workstation_model": ENDPOINT}
    services = model_service_names(admin_variables)
    return {"workstation_route": "ai-gateway", "workstation_model": services["sonnet"], "workstation_models": services}


def admin(work, env, fake, variables):
    vars_file = os.path.join(work, "admin-vars.yml")
    write_vars_file(vars_file, variables)
    env = dict(env, DATABRICKS_TOKEN=fake.issue_token("admin@example.test", 3600))  # never argv
    play_twice(env, "admin", vars_file, ("admin", "creates the gateway"), writes=lambda: len(fake.writes()))


def workstation(work, env, fake, idp, route):
    """Install the developer tools with the workstation role, into the sandbox; returns their bin dir."""
    home = os.path.join(work, "developer-home")
    bin_dir = os.path.join(work, "developer-bin")
    vars_file = os.path.join(work, "workstation-vars.yml")
    write_vars_file(vars_file, {
        "workstation_hosts": "localhost",
        "ansible_python_interpreter": shutil.which("python3"),  # the developer's python3, not a discovered one
        "workstation_allow_root": os.geteuid() == 0,  # sandboxes often run as root (CI containers)
        "workstation_prefix": os.path.join(work, "developer-share"),
        "workstation_bin_dir": bin_dir,
        "workstation_config_dir": os.path.join(home, ".databricks-claude-gateway"),
        "workstation_databricks_host": fake.url,
        "workstation_endpoint_name": ENDPOINT,  # the role requires it; claude-db ignores it on route ai-gateway
        "workstation_azure_ad": {"tenant_id": idp.tenant, "client_id": idp.client_id,
                                 "scopes": ["openid", "profile", "email"], "authority": idp.authority},
        "workstation_launcher": {"claude_command": CLAUDE},
        **route,
    })
    play_twice(env, "workstation", vars_file, ("platform team", "installs claude-db for the developer"),
               ["-i", "localhost,", "-c", "local"])
    return bin_dir


def developer_env(work, pki):
    """The developer's environment: the sandbox home, the scripted browser, the sandbox CA trusted."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.path.join(work, "developer-home"),
           "LANG": "C.UTF-8", "BROWSER": os.path.join(REPO, "tests", "support", "scripted-browser"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # the sandbox's secrets stay in its dir
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    env.update(pki.client_env())
    return env


def developer(work, pki, fake, bin_dir, prompt, route):
    env = developer_env(work, pki)
    home = env["HOME"]
    token_helper, claude_db = os.path.join(bin_dir, "claude-db-token"), os.path.join(bin_dir, "claude-db")
    step("developer: claude-db-token login (browser sign-in with PKCE, played by a scripted browser)")
    run([token_helper, "login", "--browser"], env)
    run([token_helper, "status"], env)
    step("developer: claude-db -p %r (real Claude Code through the loopback auth proxy)" % prompt)
    started = time.time()
    answer = run([claude_db, "-p", prompt], env, cwd=home)
    if "Hello from the sandbox" not in answer:
        raise SystemExit("sandbox: Claude Code did not print the workspace's answer")
    asked = {(r.path, r.json()["model"]) for r in fake.calls("/anthropic/v1/messages$", "POST")}
    if asked != {("/%s/anthropic/v1/messages" % route["workstation_route"], route["workstation_model"])}:
        raise SystemExit("sandbox: Claude Code asked %s, not %s on /%s/anthropic"
                         % (sorted(asked), route["workstation_model"], route["workstation_route"]))
    exchanges = len(fake.calls("/oidc/v1/token", "POST"))
    messages = len(fake.calls("/anthropic/v1/messages", "POST"))
    step("done in %.1f s: Claude Code answered %r; the workspace saw %d token exchange(s) and %d Messages "
         "request(s) for %s on /%s/anthropic, all with short-lived OAuth tokens"
         % (time.time() - started, answer.strip(), exchanges, messages, route["workstation_model"],
            route["workstation_route"]))


if __name__ == "__main__":
    main()
