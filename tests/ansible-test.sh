#!/usr/bin/env bash
# Runs ansible-test on this collection, offline, without touching the real $HOME.
#
#   tests/ansible-test.sh sanity --python 3.12 --local
#   tests/ansible-test.sh sanity --test compile --test import --python 3.9 --local
#
# ansible-test only works from .../ansible_collections/<namespace>/<name> and resolves
# symlinks, so the collection's git-visible files are copied to a real directory of that
# shape first. ansible-test keeps its caches and per-test venvs under $HOME, so HOME is set
# to a private directory that persists between runs (warm runs are much faster). There, an
# offline stand-in for pip's get-pip.py bootstrap (which ansible-test would otherwise
# download from ci-files.testing.ansible.com) installs pip from a wheel fetched once from
# the package index.
#
# Environment: ANSIBLE_TEST_HOME (default ${TMPDIR:-/tmp}/databricks_claude.gateway-ansible-test-$UID)
# holds the copy, the isolated HOME and the pip wheel; delete it for a cold run. Runs sharing it
# take turns (flock, where available), since each one replaces the copy.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${ANSIBLE_TEST_HOME:-${TMPDIR:-/tmp}/databricks_claude.gateway-ansible-test-$(id -u)}"
bindir="$repo/.venv/bin"
[ -x "$bindir/ansible-test" ] || bindir="$(dirname "$(command -v ansible-test || echo /nonexistent/x)")"
if [ ! -x "$bindir/ansible-test" ]; then
  echo "ansible-test not found: run tests/setup (it creates .venv) or put ansible-core on PATH" >&2
  exit 2
fi
python="$bindir/python"
[ -x "$python" ] || python="$(command -v python3)"

read -r ns name < <("$python" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print(d["namespace"], d["name"])' \
  "$repo/galaxy.yml")

mkdir -p "$work"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$work/lock"
  flock 9
fi

# 1. A private HOME with the offline get-pip stand-in for the pip version ansible-test pins.
export HOME="$work/home"
pip_version="$("$python" - <<'EOF'
import re
from ansible_test._internal import python_requirements
print(re.search(r"pip='([^']+)'", open(python_requirements.__file__).read()).group(1))
EOF
)"
wheel_dir="$work/wheels"
wheel="$wheel_dir/pip-$pip_version-py3-none-any.whl"
if [ ! -f "$wheel" ]; then
  mkdir -p "$wheel_dir"
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$wheel_dir" "pip==$pip_version" >&2
fi
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cat > "$cache/get_pip_${pip_version//./_}.py" <<EOF
# Offline stand-in for get-pip.py (written by tests/ansible-test.sh): runs pip from its wheel.
import sys
sys.path.insert(0, "$wheel")
from pip._internal.cli.main import main
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--ignore-installed"] + args))
EOF

# 2. Interpreters: ansible-test looks for pythonX.Y on PATH and needs the real binary, not a pyenv
#    shim; offer pyenv's (after the venv, so its python3.12 wins) without shadowing python3.
pydir="$work/pythons"
mkdir -p "$pydir"
for candidate in /root/.pyenv/versions/3.*/bin/python3.* "${PYENV_ROOT:-/nonexistent}"/versions/3.*/bin/python3.*; do
  base="$(basename "$candidate")"
  [[ -x "$candidate" && "$base" =~ ^python3\.[0-9]+$ ]] || continue
  ln -sfn "$candidate" "$pydir/$base"
done
export PATH="$bindir:$pydir:$PATH"

# 3. A real ansible_collections/<ns>/<name> copy of the files git would ship (tracked + new, not ignored).
dest="$work/ansible_collections/$ns/$name"
rm -rf "$dest"
mkdir -p "$dest"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard \
  | "$python" -c 'import os, sys; sys.stdout.write("".join(p + "\0" for p in sys.stdin.read().split("\0")
                  if p and os.path.lexists(p) and p.split("/")[0] != ".venv"))' \
  | tar --null -T - -cf -) | tar -C "$dest" -xf -

cd "$dest"
exec "$bindir/ansible-test" "$@"
