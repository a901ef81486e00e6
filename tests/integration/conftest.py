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
