"""The README's main-job command (tests/sandbox) keeps working: admin, workstation and developer, end to end."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("gateway", ["serving_endpoint", "unity"])
def test_sandbox_runs_the_main_job_end_to_end(tmp_path, gateway):
    done = subprocess.run([sys.executable, "-m", "tests.support.sandbox", "--workdir", str(tmp_path),
                           "--gateway", gateway], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Hello from the sandbox workspace" in done.stderr
    route = "/ai-gateway/anthropic" if gateway == "unity" else "/serving-endpoints/anthropic"
    assert "on %s" % route in done.stderr  # the sandbox checked every Messages request's path and model
    assert done.stderr.count("changed=0") >= 2  # admin.yml and workstation.yml, second runs
    state = tmp_path / "developer-home" / ".databricks-claude-gateway"
    for path in state.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    # The sandbox signed in for real; none of what it keeps secret may appear in what it printed.
    secrets = [json.loads(p.read_text())["access_token"] for p in state.glob("token-*.json")]
    for cache in state.glob("msal-cache-*.json"):
        entries = json.loads(cache.read_text())
        secrets += [e["secret"] for kind in ("AccessToken", "RefreshToken", "IdToken")
                    for e in entries.get(kind, {}).values()]
    assert len(secrets) == 4
    assert not any(s in done.stderr + done.stdout for s in secrets)
