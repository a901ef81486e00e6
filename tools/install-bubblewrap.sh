#!/usr/bin/env bash
# `make up`: bubblewrap isolates each run and shows it its inputs and outputs at their mount paths
# (/mnt/data, ...). Installs it where it can (root with apt-get); elsewhere says what its absence
# means and how to fix it. `shipyard up` says it again, at the top of its banner. Never fails:
# Shipyard runs without it, with less.
set -uo pipefail
command -v bwrap >/dev/null && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing bubblewrap (Debian package), which isolates runs"
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       bubblewrap >/dev/null; then
    exit 0
  fi
  why="apt-get could not install it"
elif command -v apt-get >/dev/null; then
  why="make up installs it only as root"
else
  why="make up installs it only with apt-get"
fi
{
  echo "bubblewrap is not installed ($why): runs will not be isolated and will not see their"
  echo "inputs at their mount paths (with --dataset digits@2:/mnt/data, a run finds nothing at"
  echo "/mnt/data), and only operators' runs will start. Install it (sudo apt-get install bubblewrap,"
  echo "or your system's bubblewrap package) and run make up again."
} >&2
