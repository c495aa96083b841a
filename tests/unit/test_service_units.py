"""The files that start `claude-db-token serve` on demand (service_units.py, `settings --units`): the user's
port, the command quoted so that systemd runs exactly it (checked by systemd-analyze when it is installed),
the launchd agent's socket, and the command's bad input."""

import json
import plistlib
import shutil
import subprocess

import pytest

from claude_db import user_service
from claude_db.config import parse_config
from claude_db.errors import ConfigError
from claude_db.service_units import unit_files

from test_workstation_files import CONFIG, token_tool  # the same config and runner as the settings tests

ODD_DIR = "a b/50%h $HOME;"  # a blank, a specifier, a variable, a command separator
ODDER_DIR = ODD_DIR + " \"q\" 'x' back\\slash"  # and quotes and a backslash, which only an argument may have


def config(**keys):
    return parse_config(json.dumps(dict(CONFIG, **keys)).encode(), "/etc/c.json")


def sections(text: str) -> dict:
    """{section: [lines]} of a unit file."""
    out, current = {}, None
    for line in text.splitlines():
        if line.startswith("["):
            current = out.setdefault(line.strip("[]"), [])
        elif line:
            current.append(line)
    return out


def test_the_systemd_socket_listens_on_the_users_loopback_port_and_starts_the_service():
    files = unit_files("systemd", config(), "/home/dev/.local/bin/claude-db-token", "/home/dev/c.json", uid=1000)
    assert sorted(files) == ["claude-db-token.service", "claude-db-token.socket"]
    socket = sections(files["claude-db-token.socket"])
    assert "ListenStream=127.0.0.1:%d" % user_service.port(config(), 1000) in socket["Socket"]
    assert "ListenStream=127.0.0.1:21000" in socket["Socket"] and not any("Accept=yes" in x for x in socket["Socket"])
    assert socket["Install"] == ["WantedBy=sockets.target"]
    service = sections(files["claude-db-token.service"])
    assert "Install" not in service  # socket-activated only: enabling the socket is what starts it
    assert "Requires=claude-db-token.socket" in service["Unit"]
    assert "ExecStart=/home/dev/.local/bin/claude-db-token serve --config /home/dev/c.json" in service["Service"]
    assert "NoNewPrivileges=yes" in service["Service"]
    assert not [line for line in service["Service"] if line.startswith(("Restart=", "PrivateTmp", "ProtectSystem"))]


def test_serve_port_wins_over_the_uids_port():
    files = unit_files("systemd", config(serve={"port": 24567}), "/b/claude-db-token", "/c.json", uid=1000)
    assert "ListenStream=127.0.0.1:24567" in files["claude-db-token.socket"]
    agent = plistlib.loads(unit_files("launchd", config(serve={"port": 24567}), "/b/t", "/c.json")[
        user_service.LAUNCHD_LABEL + ".plist"].encode())
    assert agent["Sockets"]["Listeners"]["SockServiceName"] == "24567"


def test_odd_paths_are_quoted_for_systemd():
    files = unit_files("systemd", config(), "/opt/%s/claude-db-token" % ODD_DIR, "/home/%s/c.json" % ODDER_DIR)
    exec_start = [x for x in files["claude-db-token.service"].splitlines() if x.startswith("ExecStart=")]
    # systemd.service(5): %% is a literal %, $$ a literal $ in an argument (the program's path expands no
    # variables); in double quotes \\ and \" are a backslash and a quote.
    program = '"/opt/a b/50%%h $HOME;/claude-db-token"'
    config_path = '"/home/a b/50%%h $$HOME; \\"q\\" \'x\' back\\\\slash/c.json"'
    assert exec_start == ["ExecStart=%s serve --config %s" % (program, config_path)]


def test_a_program_path_systemd_refuses_is_a_usage_error():
    with pytest.raises(ConfigError, match="systemd runs no program whose path has a quote or a backslash"):
        unit_files("systemd", config(), "/opt/%s/claude-db-token" % ODDER_DIR, "/c.json")
    agent = unit_files("launchd", config(), "/opt/%s/claude-db-token" % ODDER_DIR, "/c.json")  # launchd: an array
    assert "/opt/%s/claude-db-token" % ODDER_DIR in plistlib.loads(agent["com.databricks.claude-db-token.plist"]
                                                                   .encode())["ProgramArguments"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze (systemd installed)")
def test_systemd_analyze_finds_the_program_behind_an_odd_path(tmp_path):
    """systemd-analyze verify parses the units as the manager does and checks the program exists: a path
    quoted wrongly (split at the blank, % expanded) names a file that does not."""
    program = tmp_path / ODD_DIR / "claude-db-token"
    program.parent.mkdir(parents=True)
    shutil.copy("/bin/true", str(program))
    units = tmp_path / "units"
    units.mkdir()
    for name, content in unit_files("systemd", config(), str(program), str(tmp_path / ODDER_DIR / "c")).items():
        (units / name).write_text(content)
    names = [str(units / name) for name in ("claude-db-token.socket", "claude-db-token.service")]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no"] + names, capture_output=True, text=True,
                            timeout=120, check=False, cwd=str(units))
    assert result.returncode == 0, result.stderr
    program.unlink()
    missing = subprocess.run(["systemd-analyze", "verify", "--man=no"] + names, capture_output=True, text=True,
                             timeout=120, check=False, cwd=str(units))
    assert missing.returncode != 0 and str(program) in missing.stderr, missing.stderr


def test_the_launchd_agent_listens_on_the_port_and_runs_serve_without_keepalive():
    files = unit_files("launchd", config(), "/Users/a b/.local/bin/claude-db-token", "/Users/a b/c.json", uid=501)
    assert list(files) == ["com.databricks.claude-db-token.plist"]
    agent = plistlib.loads(files["com.databricks.claude-db-token.plist"].encode())
    assert agent == {
        "Label": user_service.LAUNCHD_LABEL,
        "ProgramArguments": ["/Users/a b/.local/bin/claude-db-token", "serve", "--config", "/Users/a b/c.json"],
        "Sockets": {"Listeners": {"SockNodeName": "127.0.0.1", "SockServiceName": "20501", "SockType": "stream",
                                  "SockFamily": "IPv4"}},
    }


def test_the_command_prints_the_modules_files_on_the_standard_library_alone(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    result = token_tool("settings", "--units", "systemd", "--command", "/b/claude-db-token", "--config", str(path),
                        "--uid", "1000", flags=("-S", "-I"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == unit_files("systemd", config(), "/b/claude-db-token", str(path), 1000)
    stdin = token_tool("settings", "--units", "launchd", "--command", "/b/claude-db-token", "--config", "-",
                       "--unit-config", "/home/dev/c.json", stdin=json.dumps(CONFIG))
    assert stdin.returncode == 0, stdin.stderr
    assert json.loads(stdin.stdout) == unit_files("launchd", config(), "/b/claude-db-token", "/home/dev/c.json")


@pytest.mark.parametrize("args, message", [
    (["--units", "systemd"], "--units needs --command CMD"),
    (["--units", "systemd", "--command", "claude-db-token", "--unit-config", "/c.json"],
     "--command must be an absolute path on one line"),
    (["--units", "systemd", "--command", "/b/t\n", "--unit-config", "/c.json"],
     "--command must be an absolute path on one line"),
    (["--units", "systemd", "--command", "/b'/t", "--unit-config", "/c.json"], "systemd runs no program whose path"),
    (["--units", "launchd", "--command", "/b/t", "--unit-config", "c.json"],
     "--unit-config must be an absolute path on one line"),
    (["--units", "launchd", "--command", "/b/t"], "with --config - pass --unit-config PATH"),
])
def test_bad_unit_arguments_are_one_line_and_exit_2(args, message):
    result = token_tool("settings", "--config", "-", *args, stdin=json.dumps(CONFIG))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""
