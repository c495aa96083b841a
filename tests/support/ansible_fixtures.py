"""Fixtures that run the collection's real modules and playbooks with `ansible-playbook`.

`ansible_collections_path` (session): a tmp dir holding ansible_collections/databricks_claude/gateway
as a symlink to this checkout, so edits are picked up without building. The same dir is put on
sys.path at pytest start, so unit tests can import
`ansible_collections.databricks_claude.gateway.plugins.module_utils...` directly.

`ansible` (per test): an `AnsibleRunner` whose `play()` runs ansible-playbook in a subprocess with
HOME, the Ansible temp dirs and the collection path in tmp dirs, the test CA trusted, no
DATABRICKS_* variable inherited, and the `results_log` callback writing every task result to a
JSON-lines file. It returns a `PlaybookRun` (rc, stdout, task results, recap stats).

    run = ansible.play(PLAYBOOK_YAML_OR_PATH, extra_vars={...}, check=True, diff=True)
    run.assert_ok()
    assert run.changed == 0
    result = run.result("create the endpoint")     # a task's result dict, by task name

Extra vars go through a 0600 JSON file (-e @file), so tokens never reach argv.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
CALLBACKS = Path(__file__).resolve().parent / "ansible_callbacks"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    tasks: List[dict] = field(default_factory=list)  # results_log records, in order
    stats: Dict[str, dict] = field(default_factory=dict)  # host -> recap counts

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def changed(self) -> int:
        return sum(s.get("changed", 0) for s in self.stats.values())

    @property
    def failed(self) -> int:
        return sum(s.get("failures", 0) + s.get("unreachable", 0) for s in self.stats.values())

    def assert_ok(self) -> "PlaybookRun":
        assert self.rc == 0 and self.failed == 0, "ansible-playbook rc=%d\n%s" % (self.rc, self.output[-6000:])
        return self

    def results(self, task: str) -> List[dict]:
        return [t["result"] for t in self.tasks if t["task"] == task]

    def result(self, task: str) -> dict:
        found = self.results(task)
        assert found, "no result for task %r; tasks run: %s" % (task, [t["task"] for t in self.tasks])
        return found[-1]


class AnsibleRunner:
    def __init__(self, workdir: Path, collections_path: str, base_env: Dict[str, str]):
        self.workdir = workdir
        self.collections_path = collections_path
        self.base_env = base_env
        self._runs = 0

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ANSIBLE_"))}
        env.update({
            "HOME": str(home),
            "ANSIBLE_COLLECTIONS_PATH": self.collections_path,
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-tmp"),
            "ANSIBLE_REMOTE_TEMP": str(self.workdir / "ansible-tmp"),
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_CALLBACKS_ENABLED": "results_log",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        })
        env.update(self.base_env)
        env.update(extra or {})
        return env

    def play(self, playbook: str, extra_vars: Optional[dict] = None, check: bool = False, diff: bool = False,
             verbosity: int = 0, env: Optional[Dict[str, str]] = None, args: Optional[List[str]] = None,
             timeout: float = 600) -> PlaybookRun:
        """Run a playbook given as YAML text, a file path, or a collection playbook FQCN."""
        self._runs += 1
        n = self._runs
        if "\n" in playbook:
            path = self.workdir / ("playbook-%d.yml" % n)
            path.write_text(playbook)
            playbook = str(path)
        log = self.workdir / ("results-%d.jsonl" % n)
        cmd = [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", playbook]
        if extra_vars:
            vars_file = self.workdir / ("vars-%d.json" % n)
            fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(extra_vars, f)
            cmd += ["-e", "@%s" % vars_file]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        cmd += args or []
        run_env = self.env(env)
        run_env["RESULTS_LOG"] = str(log)
        proc = subprocess.run(cmd, cwd=str(self.workdir), env=run_env, capture_output=True, text=True, check=False,
                              timeout=timeout)
        run = PlaybookRun(proc.returncode, proc.stdout, proc.stderr)
        if log.exists():
            for line in log.read_text().splitlines():
                record = json.loads(line)
                if record["type"] == "task":
                    run.tasks.append(record)
                else:
                    run.stats = record["stats"]
        return run


def pytest_configure(config):
    root = Path(tempfile.mkdtemp(prefix="collections-"))
    namespace = root / "ansible_collections" / "databricks_claude"
    namespace.mkdir(parents=True)
    (namespace / "gateway").symlink_to(REPO, target_is_directory=True)
    sys.path.insert(0, str(root))
    config._databricks_claude_collections = str(root)
    config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))


@pytest.fixture(scope="session")
def ansible_collections_path(pytestconfig) -> str:
    return pytestconfig._databricks_claude_collections


@pytest.fixture
def ansible(tmp_path, pki, ansible_collections_path) -> AnsibleRunner:
    """Runs ansible-playbook against this checkout; trusts the test CA (for the fake Databricks)."""
    return AnsibleRunner(tmp_path, ansible_collections_path, pki.client_env())
