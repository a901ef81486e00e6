"""Attack: a huge offset to ReadRunLogs made run-svc fail with an unexpected error (UNKNOWN, an
exception escaping the service). It is refused as bad input naming the field."""

from __future__ import annotations

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.run.v1 import runs_pb2 as pb


def test_a_huge_log_offset_is_invalid_and_names_the_field(admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="chatty", command="echo hello")))
    for offset in (2**62, 2**63 - 1):
        with pytest.raises(ClientError) as refused:
            admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="chatty", offset=offset))
        assert refused.value.code == "INVALID_ARGUMENT"
        assert refused.value.message.startswith("offset:")
    read = admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="chatty", offset=1 << 30))
    assert (read.data, read.next_offset) == (b"", 1 << 30)  # past the end, within bounds: nothing more
