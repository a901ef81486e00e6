#!/usr/bin/env bash
# Re-resolves every Python package Shipyard and its tests need (pyproject.toml: the platform and
# the dev, examples and tensorboard extras) in a fresh virtual environment and writes the exact
# versions to requirements.lock, which `make test` installs from, and the part of them running needs
# (the platform with its model-server and examples extras, tools/runtime_lock.py) to
# requirements-run.lock, which `make up` installs from: one resolution, so their versions agree.
# Run it on purpose (`make lock`), then `make protos` and `make test`: a new grpcio-tools stamps the
# generated code.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
PIP_VERSION="$(sed -n 's/^# pip==//p' "$ROOT/requirements.lock" 2>/dev/null || true)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PYTHON" -m venv "$TMP/venv"
"$TMP/venv/bin/python" -m pip install --quiet --upgrade "pip${PIP_VERSION:+==$PIP_VERSION}"
"$TMP/venv/bin/python" -m pip install --quiet "$ROOT[dev,examples,tensorboard]"
{
  echo "# Exact versions of every Python package Shipyard and its tests install (tools/lock.sh writes it)."
  echo "# Resolved $(date -u +%Y-%m-%d) with $("$TMP/venv/bin/python" --version) on $(uname -m); installed by make test."
  echo "# pip==$("$TMP/venv/bin/python" -m pip --version | cut -d' ' -f2)"
  "$TMP/venv/bin/python" -m pip freeze --exclude-editable | grep -v '^shipyard[= @]' | LC_ALL=C sort -f
} > "$ROOT/requirements.lock"
echo "wrote $ROOT/requirements.lock"
"$TMP/venv/bin/python" "$ROOT/tools/runtime_lock.py"
