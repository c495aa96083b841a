"""Benchmark of claude-db-token's cached path (prints numbers; not a pass/fail test).

Median wall time of 20 runs each of `claude-db-token --check` and `--raw` with a valid cached
token, beside `python -c pass` on the same interpreter in the same run, interleaved so that load
from other processes hits all three alike. Target (issue 2): at most 3x the bare interpreter.

The helper runs from a scratch copy of bin/ with its bytecode compiled, as an installed copy
has it (this machine sets PYTHONDONTWRITEBYTECODE=1, so a run from the work tree may compile
every module from source each time; that figure is printed too, from a copy with no bytecode). Then `-X importtime` shows what
the cached path imports. `--service-key` (the apiKeyHelper in service mode, issue 12) is timed against a
listener of ours on its port: connect, the /proc/net/tcp owner check, the key file.

    .venv/bin/python tests/benchmarks/bench_token_helper.py [--runs 20] [--python /path/to/python3]
"""

import argparse
import compileall
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = {"databricks_host": "https://adb-123.4.azuredatabricks.net", "endpoint_name": "claude-code-gateway",
          "azure_ad": {"tenant_id": "tid", "client_id": "cid", "scopes": ["openid", "profile", "email"]}}


def wall_ms(command, env):
    start = time.perf_counter()
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        sys.exit("benchmark: %s failed: %s" % (" ".join(command), result.stderr.decode()))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--python", default=sys.executable, help="interpreter for the helper and the baseline")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="bench-token-")
    try:
        installed = os.path.join(scratch, "bin")
        shutil.copytree(os.path.join(REPO, "bin"), installed, ignore=shutil.ignore_patterns("__pycache__"))
        compileall.compile_dir(os.path.join(installed, "claude_db"), quiet=1)
        config = os.path.join(scratch, "config.json")
        service = socket.socket()  # stands in for the running service: --service-key only connects
        service.bind(("127.0.0.1", 0))
        service.listen(1024)
        with open(config, "w") as f:
            json.dump(dict(CONFIG, serve={"port": service.getsockname()[1]}), f)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": scratch, "CLAUDE_DB_HOME": os.path.join(scratch, "state"),
               "CLAUDE_DB_CONFIG": config}
        sys.path.insert(0, installed)
        os.environ.update(env)
        from claude_db.config import load_config
        from claude_db.store import Store
        Store(load_config(config)).write_token("dkea" + "0" * 32, time.time() + 3600)

        helper = os.path.join(installed, "claude-db-token")
        uncompiled = os.path.join(scratch, "uncompiled")
        shutil.copytree(os.path.join(REPO, "bin"), uncompiled, ignore=shutil.ignore_patterns("__pycache__"))
        from_source = os.path.join(uncompiled, "claude-db-token")
        cases = [
            ("python -c pass", [args.python, "-c", "pass"], env),
            ("claude-db-token --check", [args.python, helper, "--check"], env),
            ("claude-db-token --raw", [args.python, helper, "--raw"], env),
            ("claude-db-token --service-key", [args.python, helper, "--service-key"], env),
            ("  --raw, no bytecode", [args.python, from_source, "--raw"], dict(env, PYTHONDONTWRITEBYTECODE="1")),
        ]
        for _name, command, case_env in cases:  # warm the page cache
            wall_ms(command, case_env)
        times = {name: [] for name, _command, _env in cases}
        for _round in range(args.runs):
            for name, command, case_env in cases:
                times[name].append(wall_ms(command, case_env))
        version = subprocess.run([args.python, "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip()
        print("%s, median of %d runs (interleaved), %d CPUs" % (version, args.runs, os.cpu_count()))
        base = statistics.median(times["python -c pass"])
        for name in times:
            median = statistics.median(times[name])
            print("  %-30s %6.1f ms  %4.2fx" % (name, median, median / base))

        baseline = subprocess.run([args.python, "-X", "importtime", "-c", "pass"], env=env,
                                  capture_output=True, text=True, check=True).stderr
        seen = {line.rsplit("|", 1)[1].strip() for line in baseline.splitlines() if "|" in line}
        for flag in ("--raw", "--service-key"):
            trace = subprocess.run([args.python, "-X", "importtime", helper, flag], env=env,
                                   capture_output=True, text=True, check=True).stderr
            extra = [line.rsplit("|", 1)[1].strip() for line in trace.splitlines()
                     if "|" in line and line.rsplit("|", 1)[1].strip() not in seen and "imported" not in line]
            heavy = sorted({m.split(".")[0] for m in extra} & {"msal", "requests", "keyring", "argparse", "typing",
                                                               "dataclasses", "urllib", "subprocess"})
            print("  %s imports beyond `-c pass`: %s" % (flag, ", ".join(sorted(set(extra)))))
            print("    of which heavy (msal/requests/keyring/argparse/typing/dataclasses/urllib/subprocess): %s"
                  % (heavy or "none"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
