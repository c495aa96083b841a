"""The workstation role: the molecule scenario end to end, and the refusals that must come before any write.

`molecule test -s workstation` installs the real package into a real venv (pip) and the pinned Claude Code
(npm), writes the managed settings into the sandbox, runs the role twice
(the second run must change nothing) and runs the installed tools (extensions/molecule/workstation/
verify.yml: --help, --check, a config the package rejects never replaces the installed one, pip runs
only when the requirements changed), all inside molecule's ephemeral dir under a tmp HOME. The faster tests run the role with
ansible-playbook on a fresh sandbox and assert that bad variables, an old Python, a root install and
check mode leave that sandbox untouched.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PYTHON_38 = Path("/root/.pyenv/versions/3.8.18/bin/python3.8")
PLAY = """
- name: Workstation role
  hosts: localhost
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: databricks_claude.gateway.workstation
"""


def test_molecule_scenario(tmp_path, ansible_collections_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_", "DATABRICKS_"))}
    # Ansible expands its remote temp dir from the passwd entry, not $HOME: point both temp dirs at tmp_path.
    env.update(HOME=str(home), PATH="%s:%s" % (VENV_BIN, env.get("PATH", "")),
               ANSIBLE_COLLECTIONS_PATH=ansible_collections_path, ANSIBLE_NOCOLOR="1", NO_COLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
               MOLECULE_WORKSTATION_CLAUDE_CODE="1")  # the optional Claude Code install too (npm registry)
    # Its own process group, so that a timeout also ends the ansible-playbook molecule started (which
    # would otherwise outlive the test, orphaned). The bound is generous: xdist runs this beside other tests.
    proc = subprocess.Popen([str(VENV_BIN / "molecule"), "test", "-s", "workstation"], cwd=str(REPO / "extensions"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output = proc.communicate(timeout=2400)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0]
    assert proc.returncode == 0, output[-8000:]
    for action in ("converge", "idempotence", "verify"):
        assert "%s: Executed: Successful" % action in output, output[-8000:]


@pytest.fixture
def sandbox(tmp_path):
    return tmp_path / "sandbox"


def role_vars(sandbox, **overrides):
    home = sandbox / "home"
    values = {
        "workstation_databricks_host": "https://adb-123.4.azuredatabricks.net",
        "workstation_endpoint_name": "claude-code-gateway",
        "workstation_azure_ad": {"tenant_id": "t-1", "client_id": "c-1"},
        "workstation_prefix": str(home / ".local/share/databricks-claude-gateway"),
        "workstation_bin_dir": str(home / ".local/bin"),
        "workstation_config_dir": str(home / ".databricks-claude-gateway"),
        "workstation_allow_root": True,
        "workstation_managed_settings": True,
        "workstation_managed_settings_path": str(sandbox / "etc/claude-code/managed-settings.json"),
        "workstation_managed_settings_become": False,
    }
    values.update(overrides)
    return values


def test_check_mode_on_a_fresh_machine_writes_nothing(ansible, sandbox):
    """Through the collection's playbook, as a platform team runs it."""
    extra = role_vars(sandbox, workstation_hosts="localhost", workstation_claude_code_install=True)
    run = ansible.play("databricks_claude.gateway.workstation", extra_vars=extra, check=True)
    run.assert_ok()
    assert run.changed > 0  # it does predict the install
    assert not sandbox.exists()


@pytest.mark.parametrize("overrides, message", [
    ({"workstation_azure_ad": {"tenant_id": "t-1"}},
     "missing required arguments: client_id found in workstation_azure_ad"),
    ({"workstation_route": "anthropic"}, "workstation_route must be one of: serving-endpoints, ai-gateway"),
    ({"workstation_launcher": {"mode": "proxyy"}}, "mode must be one of: proxy, helper, env"),
    # The config rules are the package's own (claude-db-token config check, on the controller).
    ({"workstation_databricks_host": "http://adb-123.4.azuredatabricks.net"},
     "key databricks_host in config file <stdin> must use https://"),
    ({"workstation_databricks_host": "https://adb-123.4.azuredatabricks.net/serving-endpoints"},
     "key databricks_host in config file <stdin> must be the workspace URL without a path"),
    ({"workstation_azure_ad": {"tenant_id": "t-1", "client_id": "c-1", "authority": "http://idp.example"}},
     "key azure_ad.authority in config file <stdin> must be an https URL with a path"),
    ({"workstation_endpoint_name": ""}, "missing required key endpoint_name in config file <stdin>"),
    ({"workstation_python": str(REPO / "no-such-python")}, "claude-db needs Python 3.9 or newer"),
])
def test_bad_variables_fail_before_any_write(ansible, sandbox, overrides, message):
    run = ansible.play(PLAY, extra_vars=role_vars(sandbox, **overrides))
    assert run.rc != 0
    assert message in " ".join(run.output.split()), run.output[-3000:]
    assert not sandbox.exists()


@pytest.mark.skipif(not PYTHON_38.exists(), reason="needs pyenv's Python 3.8")
def test_python_older_than_3_9_is_refused(ansible, sandbox):
    run = ansible.play(PLAY, extra_vars=role_vars(sandbox, workstation_python=str(PYTHON_38)))
    assert run.rc != 0
    assert "claude-db needs Python 3.9 or newer; `%s` on this machine is 3.8" % PYTHON_38 in " ".join(
        run.output.split()), run.output[-3000:]
    assert not sandbox.exists()


def test_python_without_venv_support_is_refused(ansible, sandbox, tmp_path):
    """Debian/Ubuntu's python3 without the python3-venv package: no ensurepip module."""
    blocked = tmp_path / "no-ensurepip"
    blocked.mkdir()
    (blocked / "ensurepip.py").write_text("raise ModuleNotFoundError(\"No module named 'ensurepip'\")\n")
    python = tmp_path / "python3"
    python.write_text("#!/bin/sh\nPYTHONPATH=%s exec %s \"$@\"\n" % (blocked, sys.executable))
    python.chmod(0o755)
    run = ansible.play(PLAY, extra_vars=role_vars(sandbox, workstation_python=str(python)))
    assert run.rc != 0
    output = " ".join(run.output.split())
    assert "cannot create a venv (no venv/ensurepip module: ModuleNotFoundError: No module named 'ensurepip')" in output
    assert "apt-get install python3-venv" in output, run.output[-3000:]
    assert not sandbox.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is for root")
def test_root_install_is_refused_unless_allowed(ansible, sandbox):
    run = ansible.play(PLAY, extra_vars=role_vars(sandbox, workstation_allow_root=False))
    assert run.rc != 0
    assert "set workstation_allow_root: true" in " ".join(run.output.split()), run.output[-3000:]
    assert not sandbox.exists()


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory):
    """The lock file's wheels for this machine, downloaded once (hash-checked): the role installs from it
    offline, the way README "Offline or mirrored fleets" describes."""
    path = tmp_path_factory.mktemp("wheelhouse")
    python = shutil.which("python3")  # the role's default workstation_python: its version picks the wheels
    subprocess.run([python, "-m", "pip", "download", "--quiet", "--require-hashes", "--only-binary", ":all:",
                    "-r", str(REPO / "requirements-workstation-lock.txt"), "-d", str(path)],
                   check=True, capture_output=True, timeout=600)
    return path


SLOW = 1800  # seconds for one play on a loaded machine (pip, many tasks); a quiet one needs well under a minute

# The config's network section comes with issue 8's schema; until then the role leaves an empty one out.
NETWORK = {"proxy": "http://proxy.corp.example:3128"}


def offline(wheelhouse):
    """The role's venv from the wheelhouse, with the Python the wheels were picked for."""
    return {"workstation_pip_extra_args": "--no-index --find-links %s" % wheelhouse,
            "workstation_python": shutil.which("python3")}


def test_system_scope_then_absent(ansible, sandbox, wheelhouse):
    """An all-users install (paths sandboxed), then absent: check mode first, then for real, then again."""
    etc = sandbox / "etc"
    managed = etc / "claude-code" / "managed-settings.json"
    managed.parent.mkdir(parents=True)
    organisation = {"cleanupPeriodDays": 7, "permissions": {"deny": ["Bash(curl:*)"]}}
    managed.write_text(json.dumps(organisation))
    extra = role_vars(sandbox, workstation_scope="system", workstation_become=False,
                      workstation_prefix=str(sandbox / "opt/databricks-claude-gateway"),
                      workstation_bin_dir=str(sandbox / "usr/local/bin"),
                      workstation_config_dir=str(etc / "databricks-claude-gateway"),
                      workstation_network=NETWORK, **offline(wheelhouse))
    del extra["workstation_allow_root"]  # system scope installs as root without it
    ansible.play(PLAY, extra_vars=extra, timeout=SLOW).assert_ok()

    config = etc / "databricks-claude-gateway" / "config.json"
    assert oct(config.stat().st_mode & 0o777) == "0o644" and oct(config.parent.stat().st_mode & 0o777) == "0o755"
    assert json.loads(config.read_text()).get("network") == NETWORK
    wrapper = sandbox / "usr/local/bin/claude-db-token"
    assert "CLAUDE_DB_CONFIG=" not in wrapper.read_text()
    merged = json.loads(managed.read_text())
    assert merged["cleanupPeriodDays"] == 7
    assert merged["permissions"]["deny"] == ["Bash(curl:*)", "WebSearch", "Read(~/.databricks-claude-gateway/**)",
                                             "Bash(%s:*)" % wrapper, "Bash(claude-db-token:*)"]
    assert merged["apiKeyHelper"] == "%s --raw" % wrapper

    # Each user: the machine's config unless they have their own, which wins; their secrets in their home.
    user_home = sandbox / "home" / "dev"
    env = {"HOME": str(user_home), "PATH": os.environ["PATH"]}
    uses = subprocess.run([str(wrapper), "config", "check"], env=env, capture_output=True, text=True, timeout=60,
                          cwd=str(sandbox), check=False)
    assert uses.stderr.strip() == "claude-db-token: config %s is valid" % config
    own = user_home / ".databricks-claude-gateway" / "config.json"
    own.parent.mkdir(parents=True)
    own.write_text(json.dumps({"databricks_host": "https://other.example", "endpoint_name": "e",
                               "azure_ad": {"tenant_id": "t", "client_id": "c"}}))
    uses = subprocess.run([str(wrapper), "config", "check"], env=env, capture_output=True, text=True, timeout=60,
                          cwd=str(sandbox), check=False)
    assert uses.stderr.strip() == "claude-db-token: config %s is valid" % own

    before = sorted(str(p) for p in sandbox.rglob("*"))
    absent = dict(extra, workstation_state="absent")
    predicted = ansible.play(PLAY, extra_vars=absent, check=True, timeout=SLOW).assert_ok()
    assert predicted.changed > 0
    assert sorted(str(p) for p in sandbox.rglob("*")) == before

    ansible.play(PLAY, extra_vars=absent, timeout=SLOW).assert_ok()
    left = sorted(str(p.relative_to(sandbox)) for p in sandbox.rglob("*") if not p.is_dir())
    backups = [p for p in left if p.startswith("etc/claude-code/managed-settings.json.") and p.endswith("~")]
    assert len(backups) == 2, left  # the organisation's file before our merge, and before absent took our keys out
    assert sorted(set(left) - set(backups)) == ["etc/claude-code/managed-settings.json",
                                                "home/dev/.databricks-claude-gateway/config.json"]
    assert json.loads(managed.read_text()) == organisation
    assert not (sandbox / "opt").exists() or not any((sandbox / "opt").iterdir())

    again = ansible.play(PLAY, extra_vars=absent, timeout=SLOW).assert_ok()
    assert again.changed == 0


def test_pull_mode_from_a_clone(tmp_path, sandbox, ansible_collections_path, wheelhouse):
    """ansible-pull of playbooks/workstation.yml from a git clone, as the invoking user (README "Pull mode")."""
    origin = tmp_path / "origin"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(origin)], check=True, timeout=120)
    root = tmp_path / "pull"
    checkout = root / "ansible_collections" / "databricks_claude" / "gateway"
    vars_file = tmp_path / "workstation.json"
    vars_file.write_text(json.dumps(dict(role_vars(sandbox, workstation_hosts="localhost"), **offline(wheelhouse))))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "DATABRICKS_"))}
    env.update(HOME=str(home), PATH="%s:%s" % (VENV_BIN, env["PATH"]), ANSIBLE_COLLECTIONS_PATH=str(root),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    pull = [str(VENV_BIN / "ansible-pull"), "--url", "file://%s" % origin, "--directory", str(checkout),
            "--only-if-changed", "-e", "@%s" % vars_file, "playbooks/workstation.yml"]
    first = subprocess.run(pull, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert first.returncode == 0, (first.stdout + first.stderr)[-6000:]
    assert "failed=0" in first.stdout
    tool = sandbox / "home/.local/bin/claude-db-token"
    check = subprocess.run([str(tool), "--check"], env=dict(env, CLAUDE_DB_HOME=str(sandbox / "state")),
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 1 and json.loads(check.stdout) == {"valid": False, "expires_in": 0}, check.stderr
    # The scheduled rerun: nothing new in the repository, so nothing runs.
    second = subprocess.run(pull, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0 and "Repository has not changed, quitting" in second.stdout, second.stdout[-3000:]


ROLE = "databricks_claude.gateway.workstation : "  # how a task of the role is named in the results


def no_user_manager(tmp_path):
    """An environment in which `systemctl --user` reaches no manager, whatever runs on this machine: the role
    must install the units and say it did not start them (and the test never touches a real user session)."""
    return {"XDG_RUNTIME_DIR": str(tmp_path / "no-user-manager"),
            "DBUS_SESSION_BUS_ADDRESS": "unix:path=%s" % (tmp_path / "no-user-manager" / "bus")}


def test_the_users_service_then_absent(ansible, sandbox, wheelhouse, tmp_path):
    """workstation_service: the package's unit files, the service settings merged into the user's own
    ~/.claude/settings.json (their keys stay), the skip when no user manager is reachable, a second run and
    check mode that change nothing, then absent: the units and our keys go, the user's stay."""
    from claude_db.managed_settings import merged
    from claude_db.service_units import unit_files
    from claude_db.config import load_config

    home = sandbox / "home"
    units = home / ".config/systemd/user"
    settings = home / ".claude/settings.json"
    settings.parent.mkdir(parents=True)
    users_own = {"theme": "dark", "env": {"MY_VAR": "1"}, "permissions": {"allow": ["Bash(ls:*)"]}}
    settings.write_text(json.dumps(users_own))
    extra = role_vars(sandbox, workstation_managed_settings=False, workstation_service=True,
                      workstation_service_units_dir=str(units), workstation_user_settings_path=str(settings),
                      **offline(wheelhouse))
    env = no_user_manager(tmp_path)
    before = sorted(str(p) for p in sandbox.rglob("*"))
    predicted = ansible.play(PLAY, extra_vars=extra, env=env, check=True, timeout=SLOW).assert_ok()
    assert predicted.changed > 0
    assert sorted(str(p) for p in sandbox.rglob("*")) == before and json.loads(settings.read_text()) == users_own

    run = ansible.play(PLAY, extra_vars=extra, env=env, timeout=SLOW).assert_ok()
    tool = home / ".local/bin/claude-db-token"
    config = home / ".databricks-claude-gateway/config.json"
    want = unit_files("systemd", load_config(str(config)), str(tool), str(config), os.getuid())
    assert {p.name: p.read_text() for p in units.iterdir()} == want
    skipped = run.result(ROLE + "Say that the service manager will not start the service")
    assert "No systemd user manager is reachable here" in skipped["msg"], skipped
    assert "claude-db-token --service-key starts the service when plain claude needs it" in skipped["msg"]
    ours = json.loads(subprocess.run(
        [sys.executable, str(REPO / "bin/claude-db-token"), "settings", "--managed", "--service",
         "--uid", str(os.getuid()), "--config", str(config),
         "--api-key-helper", "%s --service-key --config %s" % (tool, config)],
        capture_output=True, text=True, timeout=60, check=True).stdout)
    assert json.loads(settings.read_text()) == merged(users_own, ours)
    assert ours["env"]["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:%d/" % (20000 + os.getuid() % 10000))
    assert json.loads((home / ".claude/settings.json.databricks-claude-gateway").read_text()) == ours
    assert not (sandbox / "etc").exists()  # the managed settings stay untouched

    again = ansible.play(PLAY, extra_vars=extra, env=env, timeout=SLOW).assert_ok()
    assert again.changed == 0, [t["task"] for t in again.tasks if t["result"].get("changed")]

    absent = dict(extra, workstation_state="absent")
    after_install = sorted(str(p) for p in sandbox.rglob("*"))
    ansible.play(PLAY, extra_vars=absent, env=env, check=True, timeout=SLOW).assert_ok()
    assert sorted(str(p) for p in sandbox.rglob("*")) == after_install
    ansible.play(PLAY, extra_vars=absent, env=env, timeout=SLOW).assert_ok()
    assert list(units.iterdir()) == []
    assert json.loads(settings.read_text()) == users_own
    assert not (home / ".claude/settings.json.databricks-claude-gateway").exists()
    assert ansible.play(PLAY, extra_vars=absent, env=env, timeout=SLOW).assert_ok().changed == 0


def test_the_users_service_in_an_install_for_all_users_is_refused(ansible, sandbox):
    extra = role_vars(sandbox, workstation_scope="system", workstation_become=False, workstation_service=True)
    run = ansible.play(PLAY, extra_vars=extra)
    assert run.rc != 0
    assert ("workstation_service needs workstation_scope: user - each user's service has its own port and client key"
            in run.output), run.output[-3000:]  # on one line
    assert not sandbox.exists()
