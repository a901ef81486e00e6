"""`make up` installs what running needs (requirements-run.lock) and bubblewrap where it can, and
says what runs lose where it cannot; `make test` installs everything (requirements.lock)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUBBLEWRAP = ROOT / "tools" / "install-bubblewrap.sh"
BASH = shutil.which("bash") or "/bin/bash"


def planned(target: str, venv: Path) -> str:
    """The commands `make TARGET` would run for a fresh virtual environment (nothing is run)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "-C", str(ROOT), "-n", target, f"VENV={venv}"],
                          capture_output=True, text=True, check=True)
    return done.stdout


def test_make_up_installs_the_runtime_lock_only(tmp_path: Path) -> None:
    commands = planned("up", tmp_path / "venv")
    assert "-r requirements-run.lock" in commands
    assert "-r requirements.lock" not in commands, "make up installs the test tools too"
    assert "tools/install-bubblewrap.sh" in commands


def test_make_test_installs_the_full_lock(tmp_path: Path) -> None:
    commands = planned("test", tmp_path / "venv")
    assert "-r requirements.lock" in commands and "-r requirements-run.lock" not in commands


def fake_system(tmp_path: Path, *, uid: int, apt_get: int | None, bwrap: bool) -> Path:
    """A PATH of stand-ins: `id -u` says uid; apt-get (absent when None) logs its arguments and
    exits with the given status; bwrap present or not."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {"id": f"echo {uid}"}
    if apt_get is not None:
        scripts["apt-get"] = f'echo "$@" >> {tmp_path / "apt-get.log"}\nexit {apt_get}'
    if bwrap:
        scripts["bwrap"] = "exit 0"
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def install_bubblewrap(
    tmp_path: Path, *, uid: int, apt_get: int | None, bwrap: bool
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the script on a fake system; its result and what apt-get was asked to do."""
    bin_dir = fake_system(tmp_path, uid=uid, apt_get=apt_get, bwrap=bwrap)
    done = subprocess.run([BASH, str(BUBBLEWRAP)], env={"PATH": str(bin_dir)}, capture_output=True, text=True)
    log = tmp_path / "apt-get.log"
    return done, log.read_text() if log.exists() else ""


def test_as_root_with_apt_bubblewrap_is_installed(tmp_path: Path) -> None:
    done, apt = install_bubblewrap(tmp_path, uid=0, apt_get=0, bwrap=False)
    assert done.returncode == 0 and "install" in apt and "bubblewrap" in apt
    assert done.stderr == ""


@pytest.mark.parametrize(("uid", "apt_get", "why"), [
    (1000, 0, "make up installs it only as root"),
    (1000, None, "make up installs it only with apt-get"),
    (0, 100, "apt-get could not install it"),
])
def test_without_bubblewrap_it_says_what_runs_lose_and_the_fix(
    tmp_path: Path, uid: int, apt_get: int | None, why: str
) -> None:
    done, apt = install_bubblewrap(tmp_path, uid=uid, apt_get=apt_get, bwrap=False)
    said = " ".join(done.stderr.split())
    assert done.returncode == 0, "make up goes on without bubblewrap"
    assert f"bubblewrap is not installed ({why})" in said
    assert "will not see their inputs at their mount paths" in said and "/mnt/data" in said
    assert "sudo apt-get install bubblewrap" in said
    assert bool(apt) == (uid == 0 and apt_get is not None), "only root runs apt-get"


def test_with_bubblewrap_it_does_nothing(tmp_path: Path) -> None:
    done, apt = install_bubblewrap(tmp_path, uid=0, apt_get=0, bwrap=True)
    assert (done.returncode, done.stdout, done.stderr, apt) == (0, "", "", "")
