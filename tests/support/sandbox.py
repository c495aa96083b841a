"""The main job, end to end, against a local sandbox (run by tests/sandbox).

1. start the local IdP (real OpenID provider) and the fake Databricks workspace + account,
2. admin: `ansible-playbook playbooks/admin.yml` creates the endpoint, AI Gateway config,
   permissions and the federation policy trusting the IdP; a second run must change nothing,
3. developer: `claude-db-token login` signs in through the browser flow (a scripted browser
   plays the user), then `claude-db -p ...` runs the real Claude Code through the auth proxy.

Everything listens on 127.0.0.1 and lives in a temporary directory (or --workdir). No secret
is printed: the admin token reaches ansible-playbook through the environment, never argv.
"""

import argparse
import json
import os
import shutil
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--workdir", help="keep the sandbox's files here (default: a temporary dir, removed)")
    parser.add_argument("--prompt", default="Say hello to the sandbox.", help="what to ask Claude Code")
    args = parser.parse_args()
    work = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="claude-db-sandbox-")
    os.makedirs(work, exist_ok=True)
    try:
        sandbox(work, args.prompt)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def sandbox(work, prompt):
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
        admin(work, pki, fake, idp)
        developer(work, pki, fake, idp, prompt)
    finally:
        idp.stop()
        fake.stop()


def admin(work, pki, fake, idp):
    collections = os.path.join(work, "collections", "ansible_collections", "databricks_claude")
    os.makedirs(collections, exist_ok=True)
    if not os.path.exists(os.path.join(collections, "gateway")):
        os.symlink(REPO, os.path.join(collections, "gateway"))
    vars_file = os.path.join(work, "admin-vars.yml")
    write_vars_file(vars_file, admin_vars(fake, idp))
    env = dict(os.environ, **pki.client_env())
    env.update({"PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""), "HOME": os.path.join(work, "admin-home"),
                "ANSIBLE_COLLECTIONS_PATH": os.path.join(work, "collections"), "ANSIBLE_NOCOLOR": "1",
                "DATABRICKS_TOKEN": fake.issue_token("admin@example.test", 3600)})
    for name in ("DATABRICKS_HOST", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        env.pop(name, None)
    playbook = ["ansible-playbook", "databricks_claude.gateway.admin", "-e", "@" + vars_file]
    step("admin: ansible-playbook databricks_claude.gateway.admin (first run creates the gateway)")
    run(playbook, env)
    writes = len(fake.writes())
    step("admin: the same playbook again (must change nothing and write nothing)")
    out = run(playbook, env)
    if "changed=0" not in out or len(fake.writes()) != writes:
        raise SystemExit("sandbox: the second admin.yml run was not a no-op")


def developer(work, pki, fake, idp, prompt):
    home = os.path.join(work, "developer-home")
    os.makedirs(home, exist_ok=True)
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump({"databricks_host": fake.url, "endpoint_name": ENDPOINT, "model": ENDPOINT,
                   "azure_ad": {"tenant_id": idp.tenant, "client_id": idp.client_id,
                                "scopes": ["openid", "profile", "email"], "authority": idp.authority}}, f, indent=2)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
           "CLAUDE_DB_CONFIG": config, "BROWSER": os.path.join(REPO, "tests", "support", "scripted-browser"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # the sandbox's secrets stay in its dir
           "CLAUDE_DB_CLAUDE_COMMAND": CLAUDE, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    env.update(pki.client_env())
    python = sys.executable  # the venv has msal/aiohttp; a workstation would use its own python3
    step("developer: claude-db-token login (browser sign-in with PKCE, played by a scripted browser)")
    run([python, os.path.join(REPO, "bin", "claude-db-token"), "login", "--browser"], env)
    run([python, os.path.join(REPO, "bin", "claude-db-token"), "status"], env)
    step("developer: claude-db -p %r (real Claude Code through the loopback auth proxy)" % prompt)
    started = time.time()
    answer = run([python, os.path.join(REPO, "bin", "claude-db"), "-p", prompt], env, cwd=home)
    if "Hello from the sandbox" not in answer:
        raise SystemExit("sandbox: Claude Code did not print the workspace's answer")
    exchanges = len(fake.calls("/oidc/v1/token", "POST"))
    messages = len(fake.calls("/anthropic/v1/messages", "POST"))
    step("done in %.1f s: Claude Code answered %r; the workspace saw %d token exchange(s) and %d Messages "
         "request(s), all with short-lived OAuth tokens" % (time.time() - started, answer.strip(), exchanges, messages))


if __name__ == "__main__":
    main()
