"""Benchmark of the claude-db auth proxy (prints numbers; not a pass/fail test).

Side by side in one run, against one local upstream that streams 100 SSE events
for an 80 KB request: direct, through the claude-db proxy, through the claude-db
proxy whose upstream pool tunnels through a forward proxy (`+egress`: proxy.py,
as behind a corporate egress proxy), and through nginx (the yardstick), at 1 and
32 concurrent streams: p50/p99 of time to first event
and total time, CPU seconds per streamed request of each proxy, proxy RSS. Then
claude-db start-up (exec -> Claude Code spawned, cached token) beside
`python3 -c pass`.

    .venv/bin/python tests/benchmarks/bench_proxy.py [--requests 400] [--rounds 30]

Targets (issue 3): added p50 <= 0.5 ms and p99 <= 2 ms; CPU <= 2x nginx; start-up
overhead <= 100 ms; RSS <= 60 MB. nginx comes from Debian's nginx-light; without
it that column is skipped.
"""

import argparse
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
from importlib.metadata import version

import aiohttp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "bin")
sys.path.insert(0, REPO)
from tests.support.proxy_process import rss_mb, start_proxy  # noqa: E402  (needs REPO on the path)

BASE = "/serving-endpoints/anthropic"
KEY = "bench-session-key"
EVENT = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
         b'"delta":{"type":"text_delta","text":"0123456789 abcdefghij klmnopqrst"}}\n\n')

UPSTREAM = r'''
import asyncio, sys
from aiohttp import web
import uvloop
EVENT = %r
async def messages(request):
    await request.read()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for _i in range(100):
        await resp.write(EVENT)
        await asyncio.sleep(0)
    await resp.write_eof()
    return resp
async def main():
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("%s/v1/messages", messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
uvloop.run(main())
''' % (EVENT, BASE)

NGINX = """
worker_processes 1; daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream workspace {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 64m; client_body_buffer_size 1m;
    location {base}/v1/messages {{
      proxy_pass http://workspace; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer bench-databricks-token"; proxy_buffering off;
    }}
  }}
}}
"""


def start(args, **kw):
    """Start a server process that prints its port on the first line."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, **kw)
    return proc, int(proc.stdout.readline())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_stream(session, url, body):
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers={"Authorization": "Bearer " + KEY,
                                                     "Content-Type": "application/json"}) as resp:
        assert resp.status == 200, resp.status
        first = None
        received = 0
        async for chunk in resp.content.iter_any():
            if first is None:
                first = time.perf_counter()
            received += len(chunk)
    end = time.perf_counter()
    assert received == 100 * len(EVENT), received
    return first - t0, end - t0


async def measure(targets, concurrency, total, rounds, body):
    """Alternate the targets round by round so drift on a shared machine hits them alike."""
    results = {name: ([], []) for name in targets}
    cpu = {name: 0.0 for name in targets}
    per_round = max(concurrency, total // rounds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for url, _pid in targets.values():  # warm connections on every hop
            await asyncio.gather(*(one_stream(session, url, body) for _i in range(concurrency)))
        for _i in range(rounds):
            for name, (url, pid) in targets.items():
                before = cpu_seconds(pid) if pid else 0.0
                done = 0
                while done < per_round:
                    batch = await asyncio.gather(*(one_stream(session, url, body) for _i in range(concurrency)))
                    for ttfb, whole in batch:
                        results[name][0].append(ttfb)
                        results[name][1].append(whole)
                    done += concurrency
                if pid:
                    cpu[name] += cpu_seconds(pid) - before
    return results, cpu


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def report_streams(results, cpu, concurrency):
    direct_ttfb, direct_total = results["direct"]
    print("\n%d concurrent stream(s), %d requests per target" % (concurrency, len(direct_ttfb)))
    print("  %-9s %9s %9s %9s %9s | %10s %10s %10s %10s | %s" % (
        "target", "ttfb p50", "ttfb p99", "total p50", "total p99",
        "+ttfb p50", "+ttfb p99", "+total p50", "+total p99", "CPU ms/request"))
    for name, (ttfb, total) in results.items():
        ms = [1000 * pct(v, p) for v in (ttfb, total) for p in (50, 99)]
        added = [1000 * (pct(v, p) - pct(d, p)) for v, d in ((ttfb, direct_ttfb), (total, direct_total))
                 for p in (50, 99)]
        per_req = "%.3f" % (1000 * cpu[name] / len(ttfb)) if name != "direct" else "-"
        row = (name,) + tuple(ms) + tuple(added) + (per_req,)
        print("  %-9s %9.3f %9.3f %9.3f %9.3f | %10.3f %10.3f %10.3f %10.3f | %s" % row)


def bench_startup(tmp, n):
    """exec -> Claude Code spawned with a cached token, beside `python3 -c pass`."""
    from tests.support.launcher_fixtures import cached_token_home  # the same setup the tests use

    env = cached_token_home(os.path.join(tmp, "startup"))
    stamp = os.path.join(tmp, "spawned")
    recorder = os.path.join(tmp, "record-spawn")
    with open(recorder, "w") as f:
        f.write("#!/bin/sh\nexec date +%%s.%%N > %s\n" % stamp)
    os.chmod(recorder, 0o755)
    env["CLAUDE_DB_CLAUDE_COMMAND"] = recorder

    def spawn_delay(argv, run_env):
        t0 = time.time()
        subprocess.run(argv, env=run_env, check=True, stdout=subprocess.DEVNULL)
        with open(stamp) as f:
            return float(f.read()) - t0

    def wall(argv):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True)
        return time.perf_counter() - t0

    python = sys.executable
    launcher = [python, os.path.join(BIN, "claude-db"), "-p", "hi"]
    for _i in range(3):  # warm the page cache
        spawn_delay(launcher, env)
    recorder_alone = statistics.median(spawn_delay([recorder], env) for _i in range(n))
    via_launcher = statistics.median(spawn_delay(launcher, env) for _i in range(n))
    bare_python = statistics.median(wall([python, "-c", "pass"]) for _i in range(n))
    print("\nclaude-db start-up, median of %d (%s)" % (n, python))
    print("  exec claude-db -> claude spawned:      %7.1f ms" % (1000 * (via_launcher - recorder_alone)))
    print("  python3 -c pass (whole run):           %7.1f ms" % (1000 * bare_python))
    print("  overhead beyond a bare interpreter:    %7.1f ms" % (1000 * (via_launcher - recorder_alone - bare_python)))


def load_arguments(description: str) -> argparse.ArgumentParser:
    """--requests and --rounds, for this benchmark and the ones built on its harness (bench_service.py)."""
    parser = argparse.ArgumentParser(description=description.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per target and concurrency")
    parser.add_argument("--rounds", type=int, default=20, help="how often the targets take turns")
    return parser


def streamed_request_body() -> bytes:
    """The 80 KB streamed request every target gets; says so on stdout."""
    body = json.dumps({"model": "databricks-claude-sonnet-4-5", "stream": True,
                       "messages": [{"role": "user", "content": "x" * (80 * 1024 - 120)}]}).encode()
    print("request body %d bytes; 100 SSE events of %d bytes; python %s"
          % (len(body), len(EVENT), sys.version.split()[0]))
    return body


def main():
    parser = load_arguments(__doc__)
    parser.add_argument("--startup-runs", type=int, default=20, help="0 skips the start-up measurement")
    opts = parser.parse_args()
    body = streamed_request_body()
    procs = []
    tmp = tempfile.mkdtemp(prefix="bench-proxy-")
    egress = None
    try:
        upstream, up_port = start([sys.executable, "-c", UPSTREAM])
        procs.append(upstream)
        proxy, proxy_port = start_proxy("http://127.0.0.1:%d" % up_port, BASE, KEY, "bench-databricks-token")
        procs.append(proxy)
        path = BASE + "/v1/messages?beta=true"
        targets = {"direct": ("http://127.0.0.1:%d%s" % (up_port, path), None),
                   "claude-db": ("http://127.0.0.1:%d%s" % (proxy_port, path), proxy.pid)}
        sys.path.insert(0, REPO)
        from tests.support.forward_proxy_fixtures import ForwardProxy  # the tests' forward proxy

        egress = ForwardProxy(os.path.join(tmp, "egress"), upstream_ca="", idle_timeout=600)
        tunnelled, tunnelled_port = start_proxy("http://127.0.0.1:%d" % up_port, BASE, KEY, "bench-databricks-token",
                                                env=dict(os.environ, HTTP_PROXY=egress.url, NO_PROXY=""))
        procs.append(tunnelled)
        targets["+egress"] = ("http://127.0.0.1:%d%s" % (tunnelled_port, path), tunnelled.pid)
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if nginx:
            port = free_port()
            conf = os.path.join(tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX.format(d=tmp, up=up_port, port=port, base=BASE))
            ngx = subprocess.Popen([nginx, "-c", conf, "-p", tmp])
            procs.append(ngx)
            for _i in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            targets["nginx"] = ("http://127.0.0.1:%d%s" % (port, path), ngx.pid)
        else:
            print("nginx not found (apt-get install -y nginx-light): no yardstick column")
        for concurrency in (1, 32):
            results, cpu = asyncio.run(measure(targets, concurrency, opts.requests, opts.rounds, body))
            report_streams(results, cpu, concurrency)
        print("\nclaude-db proxy RSS: %.1f MB now, %.1f MB peak" % (rss_mb(proxy.pid), rss_mb(proxy.pid, "VmHWM")))
        print("+egress: HTTP_PROXY=%s (proxy.py %s); tunnels it opened for all those requests: %d"
              % (egress.url, version("proxy.py"), len(egress.upstreams())))
        if opts.startup_runs:
            bench_startup(tmp, opts.startup_runs)
    finally:
        if egress is not None:
            egress.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
