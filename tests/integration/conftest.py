"""The whole stack over real NATS and real processes, started as `make up` starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from shipyard.client.connection import Client
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.local.harness import Stack

pytestmark = pytest.mark.integration


def activity_subjects(client: Client, event_type: str) -> Counter[str]:
    """How many activity entries lineage-svc holds per subject, for one event type."""
    counts: Counter[str] = Counter()
    token = ""
    while True:
        reply = client.call(client.lineage.ListActivity, lineage_pb2.ListActivityRequest(
            page_size=1000, page_token=token, type_prefix=event_type))
        counts.update(a.subject for a in reply.activities)
        token = reply.next_page_token
        if not token:
            return counts


def data_dir_of(stack: Stack) -> Path:
    """The stack's data directory."""
    return stack.data.root


def cli(stack: Stack, home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the shipyard command as a user would, with its own config directory."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
           "COLUMNS": "200"}
    env.pop("SHIPYARD_TOKEN", None)
    env.pop("SHIPYARD_SERVER", None)
    result = subprocess.run([sys.executable, "-m", "shipyard", *args], env=env, capture_output=True,
                            text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"shipyard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def home(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's home with `shipyard login` done (on the module's stack)."""
    path = tmp_path_factory.mktemp("home")
    cli(stack, path, "login", "--data-dir", str(stack.data_dir))
    return path


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative path → bytes) under ``root``; ``root``."""
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def tree_contents(root: Path) -> dict[str, bytes]:
    """Every file under ``root``: relative path → bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a throwaway identity and home; its stdout."""
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
