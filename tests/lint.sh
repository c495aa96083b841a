#!/usr/bin/env bash
# The collection's static checks, as CI runs them (needs .venv from tests/setup; shellcheck on PATH
# so ansible-test's shellcheck test runs instead of being skipped):
#   1. ansible-test sanity, all tests, controller Python 3.12
#   2. Python 3.9, the oldest target: ansible-test compile + import (it covers plugins/ only on a
#      target-only Python), a compile of every Python file under bin/, and bin/'s unit tests in .venv39
#      (tests/setup makes it from the workstation lock file); skipped when no python3.9
#   3. ansible-lint, production profile (.ansible-lint)
#   4. antsibull-changelog lint (changelog fragments)
# Every step runs even if an earlier one fails; the exit code is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PATH="$PWD/.venv/bin:$PATH"

failed=()
step() {
  local name="$1"; shift
  local start=$SECONDS
  echo "=== $name" >&2
  if "$@"; then
    echo "=== $name: ok ($((SECONDS - start)) s)" >&2
  else
    echo "=== $name: FAILED ($((SECONDS - start)) s)" >&2
    failed+=("$name")
  fi
}

command -v shellcheck >/dev/null || echo "notice: shellcheck not installed (apt-get install -y shellcheck); ansible-test skips that test" >&2

step "sanity (python 3.12)" tests/ansible-test.sh sanity --python 3.12 --local --color no
# ansible-test checks only plugins/ on a target-only Python such as 3.9; bin/ gets its own compile step.
py39=""
for candidate in /root/.pyenv/versions/3.9*/bin/python3.9 "${PYENV_ROOT:-/nonexistent}"/versions/3.9*/bin/python3.9; do
  [ -x "$candidate" ] && { py39="$candidate"; break; }
done
[ -n "$py39" ] || { python3.9 -c '' 2>/dev/null && py39=python3.9; }
if [ -n "$py39" ]; then
  step "sanity compile+import (python 3.9)" \
    tests/ansible-test.sh sanity --test compile --test import --python 3.9 --local --color no
  step "bin/ compiles on python 3.9" "$py39" - <<'PY'
import os, sys
bad = 0
for root, _, files in os.walk("bin"):
    for name in sorted(files):
        path = os.path.join(root, name)
        with open(path, "rb") as f:
            source = f.read()
        if not (name.endswith(".py") or source.startswith(b"#!") and b"python" in source.split(b"\n", 1)[0]):
            continue
        try:
            compile(source, path, "exec")
        except SyntaxError as e:
            bad += 1
            print("%s:%s: %s" % (path, e.lineno, e.msg), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
  if [ -x .venv39/bin/python ]; then
    step "bin/ unit tests (python 3.9)" env PYTHONDONTWRITEBYTECODE=1 .venv39/bin/python -m pytest -q \
      -p no:cacheprovider tests/unit/test_claude_db_*.py tests/unit/test_launcher.py tests/unit/test_proxy*.py \
      tests/unit/test_workstation_files.py
  else
    echo "notice: no .venv39 (run tests/setup); skipping bin/'s unit tests on python 3.9" >&2
  fi
else
  echo "notice: python3.9 not found; skipping the Python 3.9 checks" >&2
fi
step "ansible-lint" ansible-lint --nocolor
step "antsibull-changelog lint" antsibull-changelog lint

if [ ${#failed[@]} -gt 0 ]; then
  printf 'lint: failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "lint: all checks passed" >&2
