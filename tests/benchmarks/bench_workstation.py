"""Benchmark of playbooks/workstation.yml (prints numbers; not a pass/fail test).

1. one fresh host: the wall time of the first run (venv + pip) and of a no-op rerun;
2. the same play against 1, 5 and 20 hosts (the hosts are seeded from the fresh one and converged, then
   no-op runs are timed),
   next to a trivial play (facts + one ping) against the same hosts. Every host is an
   `ansible_connection=local` inventory host with its own home (prefix, bin dir, config dir) under one
   temporary directory, so the controller does all of Ansible's per-host work and nothing leaves the box.

    .venv/bin/python tests/benchmarks/bench_workstation.py [--hosts 20] [--forks 5]

pip installs from a local wheelhouse (`--no-index --find-links`) built once before any timing; the
workspace URL is a loopback one the role never contacts. The question it answers (issue 10): does the
controller's time per host grow with the number of hosts beyond Ansible's own per-host cost? Compare
the marginal seconds per extra host of the no-op workstation play with the trivial play's.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_admin_noop import collections_dir  # noqa: E402
from tests.support.ansible_fixtures import AnsibleRunner  # noqa: E402

WORKSTATION = "databricks_claude.gateway.workstation"
TRIVIAL = """- name: Trivial play (Ansible's own per-host cost)
  hosts: bench
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def wheelhouse(root: Path, python: str) -> Path:
    """The workstation libraries as wheels for `python`, fetched once so the timed runs never use the network."""
    path = root / "wheelhouse"
    subprocess.run([python, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", str(path),
                    "-r", str(REPO / "requirements-workstation.txt")], check=True, timeout=600)
    return path


def inventory(root: Path, count: int, python: str) -> Path:
    """`count` local hosts, each with its own sandbox home."""
    lines = ["[bench]"]
    for n in range(1, count + 1):
        home = root / "homes" / ("host%02d" % n)
        lines.append("host%02d ansible_connection=local ansible_python_interpreter=%s workstation_prefix=%s "
                     "workstation_bin_dir=%s workstation_config_dir=%s" % (
                         n, python, home / "share", home / "bin", home / ".databricks-claude-gateway"))
    path = root / ("inventory-%d.ini" % count)
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(runner, playbook, inventory_path, vars_path, forks, expect_changed=None):
    args = ["-i", str(inventory_path), "-f", str(forks)] + (["-e", "@%s" % vars_path] if vars_path else [])
    start = time.perf_counter()
    run = runner.play(playbook, args=args, env={"ANSIBLE_HOST_KEY_CHECKING": "0"}, timeout=3600)
    elapsed = time.perf_counter() - start
    run.assert_ok()
    if expect_changed is not None:
        assert (run.changed == 0) == (expect_changed == 0), "changed=%d" % run.changed
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, default=20, help="the largest inventory (default 20)")
    parser.add_argument("--forks", type=int, default=5, help="ansible-playbook -f (default 5, Ansible's default)")
    args = parser.parse_args()
    sizes = sorted({1, min(5, args.hosts), args.hosts})

    python = shutil.which("python3")
    root = Path(tempfile.mkdtemp(prefix="bench-workstation-"))
    try:
        runner = AnsibleRunner(root, collections_dir(root), {})
        vars_path = root / "workstation-vars.yml"
        vars_path.write_text(
            "workstation_hosts: bench\nworkstation_allow_root: true\n"
            "workstation_databricks_host: https://127.0.0.1:9\nworkstation_endpoint_name: claude-code-gateway\n"
            "workstation_azure_ad:\n  tenant_id: 11111111-1111-1111-1111-111111111111\n"
            "  client_id: 22222222-2222-2222-2222-222222222222\n"
            "workstation_pip_extra_args: --no-index --find-links %s\n" % wheelhouse(root, python))
        trivial = root / "trivial.yml"
        trivial.write_text(TRIVIAL)

        one = inventory(root, 1, python)
        fresh = timed(runner, WORKSTATION, one, vars_path, args.forks, expect_changed=1)
        rerun = timed(runner, WORKSTATION, one, vars_path, args.forks, expect_changed=0)
        print("workstation.yml, one fresh host: %.2f s; no-op rerun: %.2f s" % (fresh, rerun))

        # The other hosts start as copies of host01 (its venv included), so that installing them costs no
        # pip runs; the converging run below rewrites what is host-specific (wrappers, config, paths).
        seed = root / "homes" / "host01"
        for n in range(2, args.hosts + 1):
            shutil.copytree(seed, root / "homes" / ("host%02d" % n), symlinks=True)
        big = inventory(root, args.hosts, python)
        converge = timed(runner, WORKSTATION, big, vars_path, args.forks, expect_changed=1)
        print("workstation.yml converging %d hosts seeded from host01 (forks %d): %.2f s" % (
            args.hosts, args.forks, converge))

        noop, plain = {}, {}
        for size in sizes:
            path = inventory(root, size, python)
            noop[size] = timed(runner, WORKSTATION, path, vars_path, args.forks, expect_changed=0)
            plain[size] = timed(runner, str(trivial), path, None, args.forks)
        print("\n%6s %22s %22s" % ("hosts", "workstation no-op (s)", "trivial play (s)"))
        for size in sizes:
            print("%6d %22.2f %22.2f" % (size, noop[size], plain[size]))
        print("\nseconds per extra host (marginal)   workstation no-op   trivial play   ratio")
        for low, high in zip(sizes, sizes[1:]):
            ours = (noop[high] - noop[low]) / (high - low)
            theirs = (plain[high] - plain[low]) / (high - low)
            ratio = ours / theirs if theirs > 0 else 0
            print("  %2d -> %2d hosts                   %10.3f %14.3f %8.1f" % (low, high, ours, theirs, ratio))
        print("controller time per host at %d hosts: workstation no-op %.2f s, trivial %.2f s" % (
            args.hosts, noop[args.hosts] / args.hosts, plain[args.hosts] / args.hosts))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
