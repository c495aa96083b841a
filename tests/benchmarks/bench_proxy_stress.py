"""Stress benchmark of the claude-db auth proxy: a keyed client's latency and the proxy's RSS under a flood.

An unauthenticated local client floods the proxy's port (64 MB bodies, endless headers, hundreds of idle
connections; tests/support/proxy_process.start_flood) while a keyed client streams the same SSE answers as
bench_proxy.py, through the same upstream. Printed: the keyed client's p50/p99 before and during the
flood, the proxy's CPU and RSS (now and peak), and what the flood managed. Loopback only, bounded in time.

    .venv/bin/python tests/benchmarks/bench_proxy_stress.py [--seconds 10] [--requests 200]

Expect: every keyed request answered, p99 within a few ms of the quiet one on an idle machine, peak RSS
within ~10 MB of the quiet proxy's.
"""

import argparse
import asyncio
import json
import sys
import time

import aiohttp

from bench_proxy import BASE, KEY, UPSTREAM, cpu_seconds, one_stream, pct, rss_mb, start, start_proxy
from tests.support.proxy_process import start_flood, stop  # bench_proxy put the repository on the path


async def keyed_streams(url: str, body: bytes, count: int, until=None):
    """Sequential keyed streams (one connection, as Claude Code): time to first event and total, in seconds."""
    times = ([], [])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for _i in range(count):
            if until is not None and until():
                break
            ttfb, total = await one_stream(session, url, body)
            times[0].append(ttfb)
            times[1].append(total)
    return times


def report(name: str, times) -> None:
    ttfb, total = times
    print("  %-14s %5d requests  ttfb p50 %7.3f p99 %7.3f ms   total p50 %7.3f p99 %7.3f ms" % (
        name, len(total), 1000 * pct(ttfb, 50), 1000 * pct(ttfb, 99), 1000 * pct(total, 50), 1000 * pct(total, 99)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--seconds", type=float, default=10, help="how long the flood lasts")
    parser.add_argument("--requests", type=int, default=200, help="keyed requests before the flood")
    opts = parser.parse_args()
    body = json.dumps({"model": "databricks-claude-sonnet-4-5", "stream": True,
                       "messages": [{"role": "user", "content": "x" * (80 * 1024 - 120)}]}).encode()
    upstream, up_port = start([sys.executable, "-c", UPSTREAM])
    proxy, port = start_proxy("http://127.0.0.1:%d" % up_port, BASE, KEY, "bench-databricks-token")
    url = "http://127.0.0.1:%d%s/v1/messages?beta=true" % (port, BASE)
    try:
        asyncio.run(keyed_streams(url, body, 20))  # warm-up
        quiet = asyncio.run(keyed_streams(url, body, opts.requests))
        quiet_rss = rss_mb(proxy.pid)
        cpu = cpu_seconds(proxy.pid)
        flood = start_flood(port, opts.seconds)
        started = time.time()
        flooded = asyncio.run(keyed_streams(url, body, opts.requests * 100, until=lambda: flood.poll() is not None))
        counts = flood.communicate(timeout=opts.seconds + 60)[0].strip()
        flood_cpu = cpu_seconds(proxy.pid) - cpu
        elapsed = time.time() - started
        print("keyed client: %d-byte request, 100 SSE events per answer, one connection" % len(body))
        report("quiet", quiet)
        report("under flood", flooded)
        print("flood for %.1f s: connections made %s" % (elapsed, counts))
        print("proxy CPU during the flood: %.2f s (%.0f%% of one core)" % (flood_cpu, 100 * flood_cpu / elapsed))
        now, peak = rss_mb(proxy.pid), rss_mb(proxy.pid, "VmHWM")
        print("proxy RSS: %.1f MB quiet, %.1f MB now, %.1f MB peak" % (quiet_rss, now, peak))
    finally:
        stop(proxy)
        stop(upstream)


if __name__ == "__main__":
    main()
