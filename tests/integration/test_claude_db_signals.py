"""Ctrl-C and kill: a signal to claude-db ends Claude Code too, and claude-db then exits with Claude Code's code."""

import fcntl
import os
import signal
import socket
import subprocess
import termios
import threading

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


def test_ctrl_c_at_the_terminal_ends_claude_code_and_claude_db(claude_db):
    _slow_answer(claude_db)
    master, slave = os.openpty()

    def take_terminal():  # runs in the child after setsid: the pty becomes its controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = claude_db.popen("-p", "count slowly", stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                           preexec_fn=take_terminal)
    os.close(slave)
    output = []
    reader = threading.Thread(target=_drain, args=(master, output), daemon=True)
    reader.start()
    try:
        wait_for(lambda: claude_db.fake.anthropic.requests(), timeout=60)  # the answer is streaming
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
        wait_for(lambda: claude_db.fake.anthropic.requests(), timeout=60)
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
