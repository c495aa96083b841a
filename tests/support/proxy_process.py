"""The auth proxy in a process of its own, so that its RSS and CPU are its alone (stress tests, benchmarks).

The session key and the Databricks token go to the process on stdin, never in its argv.
"""

import json
import os
import signal
import subprocess
import sys
from typing import Optional, Tuple

BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bin")

_SCRIPT = r'''
import json, signal, sys, time, types
sys.path.insert(0, sys.argv[1])
from claude_db import proxy
from claude_db.connections import ClientLimits
from claude_db.launcher import listen_on_loopback
spec = json.loads(sys.stdin.readline())
token = types.SimpleNamespace(access_token=spec["token"], expires_at=time.time() + 86400)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # for sigwait below; threads inherit the mask
sock = listen_on_loopback()
print(sock.getsockname()[1], flush=True)
thread = proxy.ProxyThread(sock, spec["upstream"], spec["base_path"], spec["session_key"], lambda rejected: token,
                           token, limits=ClientLimits(**spec["limits"]))
thread.start()
signal.sigwait({signal.SIGTERM})
thread.stop()
'''


_FLOOD = r'''
import socket, sys, threading, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
target = b"POST /serving-endpoints/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\n"
deadline = time.time() + seconds
counts = {"bodies": 0, "heads": 0, "idle": 0}

def connect():
    s = socket.create_connection(("127.0.0.1", port), 2)
    s.settimeout(1)
    return s

def big_bodies():  # 64 MB bodies without the key
    chunk = b"x" * 65536
    while time.time() < deadline:
        try:
            s = connect()
            s.sendall(target + b"Content-Length: %d\r\n\r\n" % (64 << 20))
            for _i in range(1024):
                s.sendall(chunk)
            s.close()
        except OSError:
            pass
        counts["bodies"] += 1

def header_floods():  # headers without end
    while time.time() < deadline:
        try:
            s = connect()
            s.sendall(target)
            for _i in range(4096):
                s.sendall(b"X-Flood: " + b"h" * 4000 + b"\r\n")
            s.close()
        except OSError:
            pass
        counts["heads"] += 1

def idle_connections():  # hold as many connections as it can, reopen the closed ones
    held = []
    while time.time() < deadline:
        try:
            held.append(connect())
            counts["idle"] += 1
        except OSError:
            time.sleep(0.05)
        if len(held) >= 400:
            held.pop(0).close()

threads = [threading.Thread(target=f) for f in [big_bodies] * 4 + [header_floods] * 2 + [idle_connections]]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(counts, flush=True)
'''


def start_flood(port: int, seconds: float, python: str = sys.executable, **popen) -> subprocess.Popen:
    """A client without the key that floods `port` for `seconds`: 64 MB bodies, endless headers, idle connections.

    Stdlib only, so that any interpreter runs it (`nobody` may not be able to read ours); its stdout ends
    with the count of connections of each kind.
    """
    return subprocess.Popen([python, "-c", _FLOOD, str(port), str(seconds)], stdout=subprocess.PIPE, text=True,
                            **popen)


def start_proxy(upstream: str, base_path: str, session_key: str, access_token: str, limits: Optional[dict] = None,
                env: Optional[dict] = None) -> Tuple[subprocess.Popen, int]:
    """A proxy process in front of `upstream` that always sends `access_token`; (process, port)."""
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    proc.stdin.write(json.dumps({"upstream": upstream, "base_path": base_path, "session_key": session_key,
                                 "token": access_token, "limits": limits or {}}) + "\n")
    proc.stdin.close()
    return proc, int(proc.stdout.readline())


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process (VmHWM: its peak so far), from /proc."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")
