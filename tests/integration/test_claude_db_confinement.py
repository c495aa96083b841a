"""What the agent can reach: Claude Code and its tools hold only a session key that works on two proxy paths."""

import http.client
import json
import os
import subprocess

import pytest

from tests.support.fake_databricks import messages
from tests.support.launcher_fixtures import BASE_PATH, BIN, children, wait_for

pytestmark = pytest.mark.slow

LEAKS = {"DATABRICKS_TOKEN": "dapi-leaked-personal-access-token-0001",
         "DATABRICKS_CLIENT_SECRET": "dose-leaked-client-secret-0002",
         "ANTHROPIC_API_KEY": "sk-ant-leaked-api-key-0003"}


def _proc_text(pid: int, name: str) -> str:
    with open("/proc/%d/%s" % (pid, name), "rb") as f:
        return f.read().replace(b"\0", b"\n").decode()


def _environ(pid: int) -> dict:
    return dict(line.split("=", 1) for line in _proc_text(pid, "environ").splitlines() if "=" in line)


def test_neither_claude_code_nor_its_bash_tool_sees_a_databricks_token(claude_db):
    fake = claude_db.fake
    fake.anthropic.script(messages.tool_use("Bash", {"command": "env", "description": "Print the environment"}),
                          messages.text("done " * 12, event_delay=0.25))  # slow: time to look at the process
    proc = claude_db.popen("-p", "print your environment", "--allowedTools", "Bash", env=LEAKS,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(fake.anthropic.requests()) >= 2, timeout=60)  # the tool_result is back
        [claude] = children(proc.pid)
        environ, argv = _environ(claude), _proc_text(claude, "cmdline")
        settings_path = argv.split("--settings\n", 1)[1].split("\n", 1)[0]
        with open(settings_path) as f:
            settings_file = f.read()
        assert os.stat(settings_path).st_mode & 0o777 == 0o600
        assert os.stat(os.path.dirname(settings_path)).st_mode & 0o777 == 0o700
        refusals = _try_the_proxy_with(environ)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err

    [env_output] = fake.anthropic.tool_results()
    secrets = claude_db.workstation.secrets() | set(fake.tokens) | set(LEAKS.values())
    assert secrets  # the workstation did sign in: there is something to leak
    for text in (env_output, "\n".join("%s=%s" % kv for kv in environ.items()), argv, settings_file, out, err):
        leaked = [s for s in secrets if s in text]
        assert leaked == []
    # What the agent does see: the loopback proxy and a per-launch session key.
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:" in env_output
    assert "ANTHROPIC_AUTH_TOKEN=%s" % environ["ANTHROPIC_AUTH_TOKEN"] in env_output
    assert not any(name in env_output for name in LEAKS)
    assert not os.path.exists(settings_path)  # removed when claude-db exits

    assert refusals == {"wrong key": 401, "no key": 401, "workspace API": 404, "other endpoint": 404}
    assert [r.path for r in fake.calls() if not r.path.startswith("/oidc/")] == [BASE_PATH + "/v1/messages"] * 2


def _try_the_proxy_with(environ: dict) -> dict:
    """What the agent could try with what it has: the proxy's URL and the session key."""
    port = int(environ["ANTHROPIC_BASE_URL"].split(":")[2].split("/")[0])
    key = environ["ANTHROPIC_AUTH_TOKEN"]
    body = json.dumps({"model": "databricks-claude-sonnet-4-5", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "x"}]})
    attempts = {"wrong key": ("POST", BASE_PATH + "/v1/messages", key[:-2] + "xx"),
                "no key": ("POST", BASE_PATH + "/v1/messages", None),
                "workspace API": ("GET", "/api/2.0/clusters/list", key),
                "other endpoint": ("POST", "/serving-endpoints/other/invocations", key)}
    statuses = {}
    for name, (method, path, bearer) in attempts.items():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": "Bearer " + bearer} if bearer else {}
        conn.request(method, path, body=body if method == "POST" else None, headers=headers)
        response = conn.getresponse()
        response.read()
        statuses[name] = response.status
        conn.close()
    return statuses


def test_the_agent_reading_the_token_cache_or_running_claude_db_token_is_denied(claude_db):
    """An innocent look at the state directory or at `claude-db-token --raw` must not put a token in the transcript.

    Claude Code's own permission rules from claude-db's settings deny it, even with Bash and Read allowed.
    """
    workstation, fake = claude_db.workstation, claude_db.fake
    workstation.run("login", check=0)
    [cache] = [os.path.join(workstation.state_dir, n) for n in os.listdir(workstation.state_dir)
               if n.startswith("token-")]
    token_tool = os.path.join(BIN, "claude-db-token")
    attempts = [("Bash", {"command": "cat %s" % cache, "description": "Show the cached token"}),
                ("Read", {"file_path": cache}),
                ("Bash", {"command": "claude-db-token --raw", "description": "Print a token"}),
                ("Bash", {"command": "%s --raw" % token_tool, "description": "Print a token"})]
    fake.anthropic.script(*[messages.tool_use(name, tool_input) for name, tool_input in attempts],
                          messages.text("done"))
    result = claude_db.run("-p", "show me the token", "--allowedTools", "Bash", "Read",
                           env={"PATH": BIN + os.pathsep + claude_db.env["PATH"]})
    assert result.returncode == 0, result.stderr

    results = fake.anthropic.tool_results()
    assert len(fake.anthropic.requests()) == len(attempts) + 1
    assert len(results) == len(attempts), results
    assert all("denied" in r for r in results), results  # not "command not found": the tool is on PATH
    transcript = json.dumps(fake.anthropic.bodies()) + result.stdout + result.stderr
    secrets = workstation.secrets()
    assert secrets and [s for s in secrets if s in transcript] == []
