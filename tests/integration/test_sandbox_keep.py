"""`tests/sandbox --keep`: after the journey the IdP and the fake workspace stay up, the printed commands
work as printed, and Ctrl-C stops everything cleanly (exit 0, both ports closed)."""

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def port_open(url):
    host, port = re.match(r"https://([\d.]+):(\d+)", url).groups()
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except OSError:
        return False


def read_until(proc, marker, timeout):
    """stdout lines up to and including the one containing `marker` (a reader thread keeps it bounded)."""
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert proc.poll() is None, "the sandbox exited early (rc %s):\n%s" % (proc.returncode, "".join(seen))
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("no %r within %d s:\n%s" % (marker, timeout, "".join(seen)))


def test_keep_leaves_the_services_running_and_ctrl_c_stops_them(tmp_path):
    log = open(tmp_path / "sandbox-stderr.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.sandbox", "--keep", "--workdir",
                             str(tmp_path / "work")], cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
                            start_new_session=True)  # its own process group, as a terminal's foreground job
    try:
        printed = read_until(proc, "Press Ctrl-C to stop the sandbox.", timeout=2400)  # the journey: 20 min on a loaded 2-core box
        issuer = re.search(r"IdP issuer:\s+(\S+)", printed).group(1)
        workspace = re.search(r"workspace:\s+(\S+)", printed).group(1)
        config = re.search(r"config:\s+(\S+)", printed).group(1)
        assert port_open(issuer) and port_open(workspace)
        assert os.path.isfile(config)

        # The printed export line and status command work as pasted (here without a shell).
        exports = dict(item.split("=", 1) for item in shlex.split(re.search(r"export (.*)", printed).group(1)))
        assert exports["CLAUDE_DB_CONFIG"] == config
        status_cmd = shlex.split(re.search(r"^\s+(\S+claude-db-token) status$", printed, re.M).group(0))
        status = subprocess.run(status_cmd, env=dict(exports, PATH=os.environ["PATH"]), capture_output=True,
                                text=True, timeout=60, check=False)
        assert status.returncode == 0, status.stderr

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground group
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    errors = (tmp_path / "sandbox-stderr.log").read_text()
    assert "stopping the IdP and the fake workspace" in errors and "Traceback" not in errors
    assert not port_open(issuer) and not port_open(workspace)
