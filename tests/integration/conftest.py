"""The whole stack over real NATS and real processes, started as `make up` starts it."""

from __future__ import annotations

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
