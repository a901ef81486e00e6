"""The ``loopback_slurm`` fixture: one real single-node Slurm cluster and sshd on loopback per test session
(shipyard.local.slurm.LoopbackSlurm), for the Slurm executor's tests. Needs root and Debian's Slurm,
munge and OpenSSH server (tools/install-test-deps.sh)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.local.slurm import LoopbackSlurm


@pytest.fixture(scope="session")
def loopback_slurm() -> Iterator[LoopbackSlurm]:
    """A started cluster, stopped (every job cancelled) after the session. Its base is a fresh directory
    under /tmp, not pytest's tmp_path: pytest's base (mode 700) would keep the job user out. The base is
    removed after a clean stop, and kept, logs and all, when starting or stopping fails."""
    base = Path(tempfile.mkdtemp(prefix="shipyard-slurm-"))
    cluster = LoopbackSlurm(base).start()
    try:
        yield cluster
    finally:
        cluster.stop()
    shutil.rmtree(base)
