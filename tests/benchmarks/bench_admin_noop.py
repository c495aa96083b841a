"""Benchmark of playbooks/admin.yml against the fake Databricks (prints numbers; not a pass/fail test).

Runs `ansible-playbook databricks_claude.gateway.admin` with the example vars file pointed at a
fresh fake workspace + account: a first run that creates everything, then `--rounds` no-op runs;
once per gateway kind - `serving_endpoint` (playbooks/vars/admin.example.yml) and `unity`
(playbooks/vars/admin.unity.example.yml) - and prints their wall times side by side.
Prints the wall time of each and, per resource (task), the HTTP calls it made: reads, writes,
and the SDK's /.well-known/databricks-config host-metadata probe, which every module process
sends once when it builds its client.

    .venv/bin/python tests/benchmarks/bench_admin_noop.py [--rounds 3] [--update-seconds 0.2] [--kind unity]

Target (issues 4, 11): on the no-op run one read per resource and zero writes, for both kinds.
Calls are attributed to tasks by that probe: each module process sends it first, so the request
log splits into one segment per Databricks task (per loop item), in task order.
"""

import argparse
import collections
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.integration.test_admin_playbook import ADMIN, EXAMPLE, example_vars  # noqa: E402
from tests.support.ansible_fixtures import AnsibleRunner  # noqa: E402
from tests.support.fake_databricks import make_fake  # noqa: E402

PROBE = "/.well-known/databricks-config"
EXAMPLES = {"serving_endpoint": EXAMPLE, "unity": REPO / "playbooks" / "vars" / "admin.unity.example.yml"}
Row = collections.namedtuple("Row", "task probes reads writes calls")


def collections_dir(root: Path) -> str:
    namespace = root / "collections" / "ansible_collections" / "databricks_claude"
    namespace.mkdir(parents=True)
    (namespace / "gateway").symlink_to(REPO, target_is_directory=True)
    return str(root / "collections")


def per_task_calls(fake, run):
    """A Row per task that talked to Databricks, in order."""
    segments = []
    for req in fake.calls():
        if req.path == PROBE:
            segments.append([])
        if segments:
            segments[-1].append(req)
    tasks = []
    for t in run.tasks:
        if t["status"] == "skipped" or not t["action"].startswith("databricks_claude.gateway."):
            continue
        items = [r for r in t["result"].get("results") or [] if not r.get("skipped")]
        tasks += ["%s [%s]" % (t["task"], r.get("_ansible_item_label", r.get("item"))) for r in items] or [t["task"]]
    if len(tasks) != len(segments):
        tasks = ["module process %d" % (i + 1) for i in range(len(segments))]
    rows = []
    for task, calls in zip(tasks, segments):
        api = [r for r in calls if r.path != PROBE]
        rows.append(Row(task, len(calls) - len(api), sum(not r.is_write for r in api), sum(r.is_write for r in api),
                        ["%s %s" % (r.method, re.sub(r"/api/2\.0", "", r.path)) for r in api]))
    return rows


def play(runner, fake, vars_path, token, label):
    fake.reset_log()
    start = time.perf_counter()
    run = runner.play(ADMIN, args=["-e", "@%s" % vars_path], env={"DATABRICKS_TOKEN": token})
    elapsed = time.perf_counter() - start
    run.assert_ok()
    rows = per_task_calls(fake, run)
    return {"label": label, "seconds": elapsed, "changed": run.changed, "rows": rows}


def report(result, show_calls):
    rows = result["rows"]
    print("\n%s: %.2f s wall, changed=%d, %d HTTP calls (%d writes)" % (
        result["label"], result["seconds"], result["changed"],
        sum(row.probes + row.reads + row.writes for row in rows), sum(row.writes for row in rows)))
    print("  %-56s %6s %6s %6s" % ("resource (task)", "probe", "reads", "writes"))
    for row in rows:
        print("  %-56s %6d %6d %6d" % (row.task[:56], row.probes, row.reads, row.writes))
        if show_calls:
            for call in row.calls:
                print("      %s" % call)


def bench(kind, rounds, update_seconds):
    """First run and `rounds` no-op runs of one gateway kind on a fresh fake; prints the calls per resource."""
    root = Path(tempfile.mkdtemp(prefix="bench-admin-"))
    fake = make_fake()
    fake.start()
    try:
        fake.serving.update_seconds = update_seconds
        runner = AnsibleRunner(root, collections_dir(root), {})
        token = fake.issue_token("admin@example.test", 3600)
        vars_path = root / "admin-vars.yml"
        vars_path.write_text(example_vars(fake.url, EXAMPLES[kind]))

        print("\n=== gateway_kind: %s ===" % kind)
        first = play(runner, fake, vars_path, token, "first run (creates everything)")
        report(first, show_calls=True)
        noops = [play(runner, fake, vars_path, token, "no-op run %d" % (i + 1)) for i in range(rounds)]
        report(noops[-1], show_calls=True)
        times = [r["seconds"] for r in noops]
        print("\nno-op runs: %d, wall time median %.2f s (min %.2f, max %.2f); first run %.2f s" % (
            len(times), statistics.median(times), min(times), max(times), first["seconds"]))
        extra = [(row.task, row.reads, row.writes) for run in noops for row in run["rows"]
                 if row.reads != 1 or row.writes]
        print("target (one read and no write per resource on a no-op run): %s" % (
            "met" if not extra else "NOT met: %s" % sorted(set(extra))))
        return {"kind": kind, "first": first["seconds"], "noop": statistics.median(times),
                "resources": len(noops[-1]["rows"]), "met": not extra}
    finally:
        fake.stop()
        shutil.rmtree(root, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="no-op runs after the first run (default 3)")
    parser.add_argument("--update-seconds", type=float, default=0.2,
                        help="how long the fake keeps a create/config update IN_PROGRESS (default 0.2)")
    parser.add_argument("--kind", choices=["both"] + sorted(EXAMPLES), default="both",
                        help="which gateway kind to run (default both)")
    args = parser.parse_args()
    kinds = sorted(EXAMPLES) if args.kind == "both" else [args.kind]
    results = [bench(kind, args.rounds, args.update_seconds) for kind in kinds]
    print("\n%-18s %10s %14s %10s %8s" % ("gateway_kind", "first run", "no-op median", "resources", "target"))
    for r in results:
        print("%-18s %9.2fs %13.2fs %10d %8s" % (r["kind"], r["first"], r["noop"], r["resources"],
                                                 "met" if r["met"] else "NOT met"))


if __name__ == "__main__":
    main()
