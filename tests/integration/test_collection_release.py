"""The release a platform team adopts: the built tarball, installed into an empty collections path, runs
both playbooks by FQCN against the sandbox; it ships no build output; its EE requirements are the
collection's; `antsibull-changelog release` turns the fragments into a clean 1.0.0 changelog.

The collection is built from a scratch copy of this checkout (tracked and new files) with the build
outputs and tool state that .gitignore names planted in it, so a build_ignore gap shows up as a
shipped file. Nothing is released in the checkout itself.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

# One worker builds the tarball (a module fixture) and runs every test that reads it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release")]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# Outputs a working checkout accumulates (see .gitignore); none may reach the tarball.
PLANTED = [".sandbox/work/admin-vars.yml", "dist/databricks_claude-gateway-0.0.1.tar.gz", "tests/output/junit.xml",
           "plugins/modules/__pycache__/serving_endpoint.cpython-312.pyc", ".pytest_cache/v/cache/lastfailed",
           "collections/ansible_collections/x/y/galaxy.yml", ".ansible/tmp/x", "changelogs/.plugin-cache.yaml",
           "tests/support/idp/node_modules/jose/package.json", "bin/claude_db/__pycache__/cli.cpython-39.pyc"]


def run(argv, **kwargs):
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, check=False,
                          env=kwargs.pop("env", None) or dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ["PATH"])),
                          **kwargs)
    assert done.returncode == 0, "%s failed (%d):\n%s\n%s" % (argv, done.returncode, done.stdout, done.stderr)
    return done.stdout


def scratch_copy(dest: Path) -> Path:
    """This checkout's files (tracked and untracked, not ignored) at dest/ansible_collections/databricks_claude/gateway."""
    root = dest / "ansible_collections" / "databricks_claude" / "gateway"
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO).split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # skips files deleted in the work tree and the .venv / node_modules symlinks
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    return root


class Built:
    def __init__(self, base: Path):
        self.source = scratch_copy(base / "src")
        for name in PLANTED:
            (self.source / name).parent.mkdir(parents=True, exist_ok=True)
            (self.source / name).write_text("build output\n")
        venv = base / "a-venv"
        (venv / "bin").mkdir(parents=True)
        (self.source / ".venv").symlink_to(venv, target_is_directory=True)
        run(["ansible-galaxy", "collection", "build", "--output-path", base / "dist", self.source])
        (self.tarball,) = (base / "dist").glob("databricks_claude-gateway-*.tar.gz")
        with tarfile.open(self.tarball) as tar:
            self.members = {m.name: m for m in tar.getmembers()}

    def install(self, path: Path) -> Path:
        """Install the tarball into the (empty) collections path `path`; returns the installed collection."""
        assert not path.exists() or not any(path.iterdir())
        run(["ansible-galaxy", "collection", "install", "--offline", "-p", path, self.tarball])
        return path / "ansible_collections" / "databricks_claude" / "gateway"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return Built(tmp_path_factory.mktemp("release"))


def test_the_tarball_ships_no_build_output_and_one_licence(built):
    names = sorted(built.members)
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=REPO, input="\n".join(names),
                             capture_output=True, text=True, check=False).stdout.split()
    assert ignored == []
    assert not [n for n in names if n.split("/")[0] in (".venv", ".sandbox", "dist", "collections", ".ansible")]
    assert {"LICENSE", "MANIFEST.json", "FILES.json", "meta/execution-environment.yml", "requirements.txt",
            "bindep.txt", "docs/awx.md", "extensions/awx/credential-type-databricks.yml"} <= set(names)
    with tarfile.open(built.tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
        licence = tar.extractfile("LICENSE").read().decode()
        role_meta = yaml.safe_load(tar.extractfile("roles/workstation/meta/main.yml"))
    assert manifest["license"] == ["GPL-3.0-or-later"] and "GNU GENERAL PUBLIC LICENSE" in licence
    assert "Version 3, 29 June 2007" in licence and len(licence) > 30000  # the full text, not a pointer
    assert role_meta["galaxy_info"]["license"] == "GPL-3.0-or-later"
    for key in ("repository", "documentation", "homepage", "issues"):
        assert "example" not in (manifest.get(key) or "")


def test_the_tarball_holds_everything_the_role_installs_from(built):
    role_vars = yaml.safe_load((REPO / "roles" / "workstation" / "vars" / "main.yml").read_text())
    sources = [m.group(1) for value in role_vars.values() if isinstance(value, str)
               for m in [re.match(r"\{\{ role_path \}\}/\.\./\.\./(\S+)$", value)] if m]
    assert "bin" in sources  # __workstation_source: the package comes from the collection's bin/
    for source in sources:
        assert source in built.members or any(n.startswith(source + "/") for n in built.members), source
    for module in (REPO / "bin" / "claude_db").glob("*.py"):
        assert "bin/claude_db/" + module.name in built.members
    for entry_point in role_vars["__workstation_entry_points"]:
        assert built.members["bin/" + entry_point].mode & 0o111, entry_point


def test_the_installed_tarball_runs_both_playbooks_by_fqcn_against_the_sandbox(built, tmp_path):
    from tests.support import sandbox
    collections = tmp_path / "collections"
    installed = built.install(collections)
    # A marker only the installed copy has: the workstation side must come from the tarball's bin/.
    marker = "# installed from the release tarball\n"
    with open(installed / "bin" / "claude_db" / "__init__.py", "a") as f:
        f.write(marker)
    work = tmp_path / "work"
    work.mkdir()
    sandbox.sandbox(str(work), "Say hello to the sandbox.", collections=str(collections))
    assert (work / "developer-share" / "app" / "claude_db" / "__init__.py").read_text().endswith(marker)
    assert not (work / "collections").exists()  # the checkout was not linked in


def test_ansible_builder_context_gets_the_collections_requirements(built, tmp_path):
    from ansible_builder.ee_schema import validate_schema
    validate_schema(yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text()))
    context = tmp_path / "context"
    run(["ansible-builder", "create", "-f", REPO / "extensions" / "awx" / "execution-environment.yml", "-c", context,
         "--output-filename", "Containerfile"], cwd=tmp_path)
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert [c["name"] for c in galaxy["collections"]] == ["databricks_claude.gateway"]
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile and "introspect.py introspect" in containerfile

    # The image build's own steps, without a container engine: install the collection, then introspect it.
    collections = tmp_path / "collections"
    built.install(collections)
    pip, bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    run([sys.executable, context / "_build" / "scripts" / "introspect.py", "introspect", collections,
         "--write-pip", pip, "--write-bindep", bindep])

    def requirements(path):
        return [re.sub(r"\s+#.*", "", line).strip() for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert requirements(pip) == requirements(REPO / "requirements.txt")
    assert requirements(bindep) == requirements(REPO / "bindep.txt")
    assert "databricks-sdk" in requirements(pip)[0]


def test_antsibull_changelog_releases_1_0_0_from_the_fragments(tmp_path):
    root = scratch_copy(tmp_path)
    fragments = sorted((root / "changelogs" / "fragments").glob("*.yml"))
    assert fragments
    # Every entry but the trivial ones, which antsibull-changelog records and does not print.
    entries = [entry for f in fragments for name, section in yaml.safe_load(f.read_text()).items()
               if isinstance(section, list) and name != "trivial" for entry in section]
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]), HOME=str(tmp_path),
               ANSIBLE_COLLECTIONS_PATH=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    run(["antsibull-changelog", "release", "--version", "1.0.0", "--date", "2026-12-01"], cwd=root, env=env)
    changelog = yaml.safe_load((root / "changelogs" / "changelog.yaml").read_text())
    assert list(changelog["releases"]) == ["1.0.0"]
    release = changelog["releases"]["1.0.0"]
    assert sorted(release["fragments"]) == [f.name for f in fragments]
    assert not list((root / "changelogs" / "fragments").glob("*.yml"))  # consumed (keep_fragments: false)
    modules = {m["name"] for m in release.get("modules", [])}
    assert {p.stem for p in (REPO / "plugins" / "modules").glob("*.py")} <= modules
    rst = (root / "CHANGELOG.rst").read_text()
    assert "v1.0.0" in rst and "New Modules" in rst
    flat = re.sub(r"\s+", " ", rst)
    for entry in entries:
        assert " ".join(entry.split())[:60] in flat, entry[:60]
    assert "example.invalid" not in rst
    run(["antsibull-changelog", "lint"], cwd=root, env=env)
    run(["antsibull-changelog", "lint-changelog-yaml", "changelogs/changelog.yaml"], cwd=root, env=env)
