"""Benchmark of `claude-db-token serve`, the per-user service (prints numbers; not a pass/fail test).

The harness of bench_proxy.py (one local upstream streaming 100 SSE events for an 80 KB request, targets
taking turns round by round): direct, claude-db's per-launch proxy and the service, at 1 and 32
concurrent streams (p50/p99 time to first event and total; CPU per request). Then the service's idle RSS,
and its cold start under socket activation: the test binds the socket and queues a request in its
backlog before the process exists (the LISTEN_FDS stand-in of systemd), then measures process start ->
the answer complete.

    .venv/bin/python tests/benchmarks/bench_service.py [--requests 400] [--rounds 20] [--cold-starts 10]

The service runs the real `bin/claude-db-token serve` with a config whose workspace is the local
upstream (plain http to 127.0.0.1 is allowed) and a cached Databricks token; its client key file holds
the bench's key.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "bin")
sys.path.insert(0, REPO)
sys.path.insert(0, BIN)
from tests.benchmarks.bench_proxy import (  # noqa: E402
    BASE, KEY, UPSTREAM, load_arguments, measure, report_streams, start, streamed_request_body)
from tests.support.launcher_fixtures import cached_token_home  # noqa: E402
from tests.support.proxy_process import rss_mb, start_proxy, stop  # noqa: E402
from tests.support.user_service import accepting, free_port  # noqa: E402

TOKEN_TOOL = os.path.join(BIN, "claude-db-token")


def service_home(directory: str, upstream_port: int, port: int) -> dict:
    """cached_token_home for the local upstream, its service on `port` with the bench's key; the service's env."""
    env = cached_token_home(directory, databricks_host="http://127.0.0.1:%d" % upstream_port, serve={"port": port})
    key = os.path.join(env["CLAUDE_DB_HOME"], "service-key")
    with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        json.dump({"key": KEY}, f)
    return dict(os.environ, **env)


def start_service(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, TOKEN_TOOL, "serve"], env=env, stdin=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while not accepting(port):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit("the service did not start (exit %s)" % proc.poll())
        time.sleep(0.02)
    return proc


def cold_start(env: dict, body: bytes) -> float:
    """Seconds from spawning a socket-activated service to the end of the answer to a request already queued."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    client = socket.create_connection(listener.getsockname(), 5)
    client.sendall(b"POST %s/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: "
                   b"application/json\r\nContent-Length: %d\r\n\r\n" % (BASE.encode(), KEY.encode(), len(body)) + body)

    def on_fd_3():
        os.dup2(listener.fileno(), 3)

    t0 = time.perf_counter()
    proc = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", sys.executable, TOKEN_TOOL,
                             "serve"], env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=on_fd_3, pass_fds=(3,))
    listener.close()
    client.settimeout(30)
    answer = b""
    while not answer.endswith(b"0\r\n\r\n"):  # the chunked SSE answer's last chunk
        piece = client.recv(65536)
        if not piece:
            break
        answer += piece
    elapsed = time.perf_counter() - t0
    client.close()
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"event: content_block_delta") == 100, answer[:200]
    return elapsed


def main():
    parser = load_arguments(__doc__)
    parser.add_argument("--cold-starts", type=int, default=10, help="socket-activated starts to time")
    opts = parser.parse_args()
    body = streamed_request_body()
    procs = []
    tmp = tempfile.mkdtemp(prefix="bench-service-")
    try:
        upstream, up_port = start([sys.executable, "-c", UPSTREAM])
        procs.append(upstream)
        proxy, proxy_port = start_proxy("http://127.0.0.1:%d" % up_port, BASE, KEY, "bench-databricks-token")
        procs.append(proxy)
        port = free_port()
        env = service_home(os.path.join(tmp, "home"), up_port, port)
        service = start_service(env, port)
        procs.append(service)
        time.sleep(0.5)
        fresh_rss = rss_mb(service.pid)
        path = BASE + "/v1/messages?beta=true"
        targets = {"direct": ("http://127.0.0.1:%d%s" % (up_port, path), None),
                   "claude-db": ("http://127.0.0.1:%d%s" % (proxy_port, path), proxy.pid),
                   "service": ("http://127.0.0.1:%d%s" % (port, path), service.pid)}
        for concurrency in (1, 32):
            results, cpu = asyncio.run(measure(targets, concurrency, opts.requests, opts.rounds, body))
            report_streams(results, cpu, concurrency)
        print("\nservice RSS: %.1f MB idle after start, %.1f MB idle after the streams, %.1f MB peak "
              "(per-launch proxy: %.1f MB)" % (fresh_rss, rss_mb(service.pid), rss_mb(service.pid, "VmHWM"),
                                               rss_mb(proxy.pid)))
        if opts.cold_starts:
            times = [cold_start(env, body) for _i in range(opts.cold_starts)]
            print("cold socket-activated start -> first answer complete, %d starts: median %.1f ms, max %.1f ms"
                  % (len(times), 1000 * statistics.median(times), 1000 * max(times)))
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
