#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: Debian's Chromium for the
# browser tests (Playwright drives it; its own browser download cannot work offline), and
# bubblewrap, with which the local executor isolates each run (its own mount, PID and IPC
# namespaces, an unprivileged user) and shows it its inputs at their mount paths.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package) for the browser tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [ ! -x /usr/bin/bwrap ]; then
  echo "installing bubblewrap (Debian package): the local executor isolates runs with it"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null
fi
# A real single-node Slurm (munge, slurmctld, slurmd, the client commands) and OpenSSH's sshd: the Slurm
# executor's tests and benchmark start them on loopback (shipyard.local.slurm.LoopbackSlurm). Package
# scripts would start the system's own daemons; a policy-rc.d that exits 101 stops them, made for this
# install only (one that already exists is the machine's and is left alone).
if [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/slurmd ] || [ ! -x /usr/bin/sbatch ] \
    || [ ! -x /usr/sbin/munged ] || [ ! -x /usr/sbin/sshd ]; then
  echo "installing Slurm, munge and OpenSSH's server (Debian packages) for the Slurm executor's tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Removed however the install ends (a failure exits the script: set -e).
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge openssh-server >/dev/null
  if [ "$(trap -p EXIT)" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi
# Slurm's REST API and its JWT authentication (clusters with a slurmrestd URL): LoopbackSlurm starts
# slurmrestd on loopback when a test asks for it. Neither package starts a daemon of its own.
if [ ! -x /usr/sbin/slurmrestd ] || ! dpkg -s slurm-wlm-jwt-plugin >/dev/null 2>&1; then
  echo "installing slurmrestd and Slurm's JWT plugin (Debian packages) for the slurmrestd executor's tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    slurmrestd slurm-wlm-jwt-plugin >/dev/null
fi
# KServe's generated API models (kserve/models), which the serving tests validate the generated
# InferenceService against. Installed without its dependencies, into a folder of the venv that is not on
# sys.path: the SDK's runtime dependencies (fastapi, pandas, cloudevents<2, protobuf<7, …) would
# downgrade Shipyard's own, while the models need only six and the kubernetes client (both in the dev
# extra). pyproject cannot say --no-deps, hence this step; the tests import kserve.models from here.
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT_DIR/.venv"
KSERVE_VERSION=0.21.0
if [ ! -d "$VENV/kserve-sdk/kserve-$KSERVE_VERSION.dist-info" ]; then
  echo "installing KServe's SDK $KSERVE_VERSION (its API models, without dependencies) into $VENV/kserve-sdk"
  rm -rf "$VENV/kserve-sdk"
  "$VENV/bin/python" -m pip install --quiet --no-deps --target "$VENV/kserve-sdk" "kserve==$KSERVE_VERSION"
fi
# The wheels the run-environment tests build environments from (requirements-environments.lock), into
# .venv/wheelhouse: the tests' run-svcs install from that folder alone (SHIPYARD_PACKAGE_FIND_LINKS,
# SHIPYARD_PACKAGES_OFFLINE=1), never from PyPI. Downloaded again only when the lock changed.
WHEELHOUSE="$VENV/wheelhouse"
if ! cmp -s "$ROOT_DIR/requirements-environments.lock" "$WHEELHOUSE/.lock"; then
  echo "downloading the run-environment tests' wheels (requirements-environments.lock) into $WHEELHOUSE"
  mkdir -p "$WHEELHOUSE"
  # Two versions of one package (NumPy 1 and 2) in one pip call conflict: call N gets the Nth of each.
  LINES="$(grep -v '^#' "$ROOT_DIR/requirements-environments.lock")"
  PASS=1
  while WANTED="$(echo "$LINES" | awk -F'==' -v pass="$PASS" '++seen[$1] == pass')"; [ -n "$WANTED" ]; do
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip download --quiet --no-deps --only-binary=:all: -d "$WHEELHOUSE" $WANTED
    PASS=$((PASS + 1))
  done
  cp "$ROOT_DIR/requirements-environments.lock" "$WHEELHOUSE/.lock"
fi
