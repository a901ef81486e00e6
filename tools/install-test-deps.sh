#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: Debian's Chromium for the
# browser tests (Playwright drives it; its own browser download cannot work offline), and
# bubblewrap, with which the local executor shows runs their inputs at their mount paths.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package) for the browser tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [ ! -x /usr/bin/bwrap ]; then
  echo "installing bubblewrap (Debian package) for the local executor's mount namespaces"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null
fi
