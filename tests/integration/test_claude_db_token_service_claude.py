"""Plain `claude` (the real Claude Code) under the settings `settings --managed --service` prints, through the
per-user service: what the IDE extensions get (issue 12)."""

import json
import os
import subprocess

import pytest

from tests.support.fake_databricks import messages
from tests.support.launcher_fixtures import StreamJsonSession
from tests.support.user_service import UserService, service_pids

pytestmark = pytest.mark.slow


def _proc_text(pid: int, name: str) -> str:
    with open("/proc/%d/%s" % (pid, name), "rb") as f:
        return f.read().replace(b"\0", b"\n").decode()


def test_plain_claude_survives_token_expiry_through_the_service_and_never_holds_the_token(claude_db, claude_code):
    workstation, fake = claude_db.workstation, claude_db.fake
    fake.exchange_ttl = 36  # the workspace refuses the last 30 s: good for 6 s
    workstation.run("login", check=0)
    service = UserService(workstation)
    settings = workstation.run("settings", "--managed", "--service", check=0).stdout
    os.makedirs(os.path.join(workstation.home, ".claude"), mode=0o700)
    settings_path = os.path.join(workstation.home, ".claude", "settings.json")
    with open(settings_path, "w") as f:
        f.write(settings)
    # Plain claude: no --settings, no ANTHROPIC_* and no CLAUDE_DB_* in its environment; the state directory and
    # config are found from the settings' apiKeyHelper (--config) and HOME's default state directory.
    env = {k: v for k, v in claude_db.env.items() if not k.startswith(("CLAUDE_DB_", "ANTHROPIC_"))}
    fake.anthropic.script(messages.tool_use("Bash", {"command": "env", "description": "Print the environment"}),
                          messages.text("turn one done", event_delay=0.2), messages.text("turn two done"))
    proc = subprocess.Popen([claude_code, "-p", "--input-format", "stream-json", "--output-format", "stream-json",
                             "--verbose", "--allowedTools", "Bash"], env=env, cwd=workstation.home, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    session = StreamJsonSession(proc)
    try:
        first = session.turn("one")
        assert first["is_error"] is False, first
        environ, argv = _proc_text(proc.pid, "environ"), _proc_text(proc.pid, "cmdline")
        [pid] = service_pids(workstation.config_path)  # the apiKeyHelper started it
        turn1 = fake.anthropic.requests()[-1]
        claude_db.wait_until_refused(claude_db.bearer(turn1))
        second = session.turn("two")
        assert second["is_error"] is False and second.get("api_error_status") is None, second
        assert second["result"] == "turn two done"
        assert session.close() == 0
    finally:
        proc.kill()
        proc.wait(30)
        err = proc.stderr.read()
        service.stop()
    requests = fake.anthropic.requests()
    assert len(requests) == 3
    assert claude_db.bearer(requests[-1]) != claude_db.bearer(turn1)  # the service renewed the token
    assert all(fake.tokens[claude_db.bearer(r)].subject == "alice@example.test" for r in requests)
    assert service_pids(workstation.config_path) == [] and pid  # stopped at the end, one service throughout

    [env_output] = fake.anthropic.tool_results()
    secrets = workstation.secrets() | set(fake.tokens)
    assert secrets
    for text in (env_output, environ, argv, settings, err):
        assert [s for s in secrets if s in text] == []
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:%d/serving-endpoints/anthropic" % service.port in env_output
    assert json.loads(settings)["apiKeyHelper"].endswith("--service-key --config %s" % workstation.config_path)
