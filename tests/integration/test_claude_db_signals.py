"""Ctrl-C and kill: a signal to claude-db ends Claude Code too, and claude-db then exits with Claude Code's code."""

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import termios
import threading
import time

import pytest

from tests.support.fake_databricks import messages
from tests.support.launcher_fixtures import children, wait_for

pytestmark = pytest.mark.slow


def _slow_answer(claude_db):
    claude_db.fake.anthropic.script(messages.text("slow " * 60, event_delay=0.5))  # 30 s if nobody stops it


def _proxy_port(pid: int) -> int:
    with open("/proc/%d/environ" % pid, "rb") as f:
        environ = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    return int(environ[b"ANTHROPIC_BASE_URL"].split(b":")[2].split(b"/")[0])


def _assert_both_ended(claude_db_proc, claude: int, port: int) -> None:
    assert not os.path.exists("/proc/%d/cmdline" % claude) or _is_zombie(claude)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), 2).close()


def _is_zombie(pid: int) -> bool:
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def _in_a_terminal(claude_db, *args):
    """claude-db [args] as the foreground job of a new pseudo-terminal: (process, master fd, output chunks)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

    def take_terminal():  # runs in the child after setsid: the pty becomes its controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = claude_db.popen(*args, env={"TERM": "xterm-256color"}, stdin=slave, stdout=slave, stderr=slave,
                           start_new_session=True, preexec_fn=take_terminal)
    os.close(slave)
    output = []
    threading.Thread(target=_drain, args=(master, output), daemon=True).start()
    return proc, master, output


def test_ctrl_c_at_the_terminal_ends_claude_code_and_claude_db(claude_db):
    _slow_answer(claude_db)
    proc, master, output = _in_a_terminal(claude_db, "-p", "count slowly")
    try:
        wait_for(claude_db.fake.anthropic.requests, timeout=60)  # the answer is streaming
        [claude] = children(proc.pid)
        port = _proxy_port(claude)
        os.write(master, b"\x03")  # Ctrl-C: the kernel sends SIGINT to the terminal's foreground job
        proc.wait(20)  # Claude Code 2.1.197 itself exits 0 after a Ctrl-C in -p mode; claude-db passes that on
    finally:
        proc.kill()
    assert claude_db.fake.anthropic.streams_finished == []  # stopped mid-answer, not after it
    _assert_both_ended(proc, claude, port)


def _drain(fd: int, sink: list) -> None:
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        if not data:
            return
        sink.append(data)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_sent_to_claude_db_alone_reaches_claude_code(claude_db, signum):
    _slow_answer(claude_db)
    proc = claude_db.popen("-p", "count slowly", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        wait_for(claude_db.fake.anthropic.requests, timeout=60)
        [claude] = children(proc.pid)
        port = _proxy_port(claude)
        proc.send_signal(signum)  # to claude-db only, as `kill` or a supervisor would
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    # Claude Code's own code: 2.1.197 exits 0 on SIGINT and dies of SIGTERM/SIGHUP (128 + signal).
    assert proc.returncode in (0, 128 + signum), (proc.returncode, err)
    assert "Traceback" not in err
    assert claude_db.fake.anthropic.streams_finished == []
    _assert_both_ended(proc, claude, port)


def test_interactive_claude_code_answers_and_quits_on_a_double_ctrl_c(claude_db):
    """The TUI reads Ctrl-C as a key (raw mode): one clears the prompt, two quit; claude-db stays out of the way."""
    claude_db.fake.anthropic.script(messages.text("interactive-answer"))
    home = claude_db.workstation.home
    with open(os.path.join(home, ".claude.json"), "w") as f:  # skip the first-run dialogs (facts §5)
        json.dump({"hasCompletedOnboarding": True, "projects": {home: {"hasTrustDialogAccepted": True}}}, f)
    proc, master, output = _in_a_terminal(claude_db)
    try:
        wait_for(lambda: b"Welcome" in b"".join(output), timeout=60)  # the TUI is up
        time.sleep(1)
        os.write(master, b"hi")
        time.sleep(0.5)
        os.write(master, b"\r")
        wait_for(lambda: b"interactive-answer" in b"".join(output), timeout=60)
        os.write(master, b"\x03")
        time.sleep(2)
        assert proc.poll() is None  # one Ctrl-C does not quit
        os.write(master, b"\x03")
        time.sleep(0.2)
        os.write(master, b"\x03")
        assert proc.wait(20) == 0
    finally:
        proc.kill()
    [request] = claude_db.fake.anthropic.requests()
    assert request.json()["messages"][-1]["content"][-1]["text"] == "hi"
