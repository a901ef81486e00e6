"""Children that ask to die with their parent (PR_SET_PDEATHSIG), without preexec_fn."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from shipyard.kit.lifetime import PARENT_ENV, die_with_parent

CHILD = ("from shipyard.kit.lifetime import die_with_parent\n"
         "import sys, time\n"
         "if not die_with_parent(): sys.exit(3)\n"
         "print('ready', flush=True)\n"
         "time.sleep(120)\n")
PARENT = ("import os, subprocess, sys\n"
          f"env = {{**os.environ, {PARENT_ENV!r}: str(os.getpid())}}\n"
          f"child = subprocess.Popen([sys.executable, '-c', {CHILD!r}], env=env, "
          "stdout=subprocess.PIPE, text=True)\n"
          "assert child.stdout.readline() == 'ready\\n'\n"
          "print(child.pid, flush=True)\n")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_dies_when_its_parent_does() -> None:
    parent = subprocess.run([sys.executable, "-c", PARENT], capture_output=True, text=True, timeout=60,
                            check=True)
    child = int(parent.stdout.strip())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the child outlived its parent"


def test_a_child_whose_parent_is_gone_already_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PARENT_ENV, str(os.getppid() + 1_000_000))
    assert die_with_parent() is False


def test_without_a_parent_named_there_is_nothing_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert die_with_parent() is True
