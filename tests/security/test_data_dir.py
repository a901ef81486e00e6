"""Issue 14, item 2 (data directory): run/stack.json was world-readable, and so was much else.

Every file and folder under the data directory must be the platform's alone: another local user
(here uid 65534, "nobody") can read none of it — not the stack's addresses, not a key.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.local.datadir import DataDir
from shipyard.local.harness import Stack

NOBODY = "65534"


def too_open(root: Path) -> list[str]:
    """Every path under ``root`` (itself included) with group or other permission bits. The stack
    is running: a file that went between the listing and the look (NATS's temporary files and
    consumers) is skipped; os.walk skips a folder that went likewise."""
    found = []
    walked = [Path(top) / name for top, dirs, files in os.walk(root) for name in (*dirs, *files)]
    for path in [root, *walked]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {stat.filemode(mode)}")
    return found


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
                          capture_output=True, text=True, timeout=30, check=False)


def test_nothing_in_the_data_directory_is_open_to_others(stack: Stack, admin: Client) -> None:
    admin.call(admin.projects.CreateProject, projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name="written-down")))
    root = stack.data.root
    assert {"run", "logs", "internal.key", "admin-token"} <= {p.name for p in root.iterdir()}
    assert too_open(root) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="switching to another user needs root and setpriv (util-linux)")
@pytest.mark.parametrize("name", ["run/stack.json", "internal.key", "admin-token"])
def test_another_user_cannot_read_the_stack_state_or_keys(stack: Stack, name: str) -> None:
    path = stack.data.root / name
    assert path.exists()
    read = as_nobody("cat", str(path))
    assert read.returncode != 0 and "Permission denied" in read.stderr, read.stdout[:200]
    listing = as_nobody("ls", str(stack.data.root))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr


def test_stack_json_is_written_private_even_with_an_open_umask(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.prepare()
    old = os.umask(0o022)
    try:
        data.write_state({"grpc": "127.0.0.1:1"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.state_file.stat().st_mode) == 0o600
    assert json.loads(data.state_file.read_text()) == {"grpc": "127.0.0.1:1"}


def test_a_data_directory_made_before_is_tightened_at_start(tmp_path: Path) -> None:
    """An install from before this rule: 0755 folders, a 0644 stack.json."""
    root = tmp_path / "data"
    (root / "run").mkdir(parents=True)
    (root / "logs").mkdir()
    (root / "run" / "stack.json").write_text("{}")
    for path, mode in ((root, 0o755), (root / "run", 0o755), (root / "logs", 0o775),
                       (root / "run" / "stack.json", 0o644)):
        path.chmod(mode)
    DataDir(root).prepare()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "run").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "logs").stat().st_mode) == 0o700
