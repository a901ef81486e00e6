#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: Debian's Chromium for the
# browser tests (Playwright drives it; its own browser download cannot work offline).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package) for the browser tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
