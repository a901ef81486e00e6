"""Issue 14, item 6: unauthenticated 64 MiB gRPC messages.

The gateway received whole messages (up to 64 MiB) before it looked at the token: 16 clients
without one took it from 151 MiB to 3.7 GiB. Now the token is checked from the metadata before
the body is read, and no method takes more than it needs (4 MiB; FindMissingBlobs 8 MiB).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import projects_pb2, repos_pb2
from shipyard.local.harness import Stack

CREATE_PROJECT = "/shipyard.repo.v1.ProjectService/CreateProject"
FIND_MISSING = "/shipyard.repo.v1.RepoService/FindMissingBlobs"
MiB = 1024 * 1024
ATTACKERS = 16
# A memory bound, not a timing: 16 whole 60 MiB messages would be 960 MiB.
RSS_GROWTH_BOUND = 200 * MiB


def memory(pid: int, field: str) -> int:
    """A VmRSS/VmHWM figure of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> str:
    """Restart the process's peak-RSS count (VmHWM) where the kernel lets us; the field to read."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return "VmRSS"
    return "VmHWM"


Metadata = tuple[tuple[str, str], ...]


def send(address: str, method: str, body: bytes, metadata: Metadata = ()) -> grpc.StatusCode:
    """One call with ``body`` as the request bytes; the status it ends with."""
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", 16 * MiB)]
    with grpc.insecure_channel(address, options=options) as channel:
        try:
            channel.unary_unary(method)(body, metadata=metadata, timeout=120)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer sy_made.up"),)],
                         ids=["no-token", "bad-token"])
def test_sixteen_unauthenticated_60_mib_messages_do_not_bloat_the_gateway(stack: Stack,
                                                                          metadata: Metadata) -> None:
    pid = stack.pid("gateway")
    field = reset_peak(pid)
    before = memory(pid, "VmRSS")
    body = os.urandom(60 * MiB)
    with ThreadPoolExecutor(ATTACKERS) as pool:
        codes = list(pool.map(lambda _: send(stack.grpc_address, CREATE_PROJECT, body, metadata),
                              range(ATTACKERS)))
    assert set(codes) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    grown = memory(pid, field) - before
    assert grown < RSS_GROWTH_BOUND, f"the gateway grew by {grown // MiB} MiB ({field})"
    assert stack.serving()


def test_a_signed_in_user_cannot_send_more_than_a_method_takes(stack: Stack, admin: Client) -> None:
    big = projects_pb2.Project(name="big", details="x" * (5 * MiB))
    request = projects_pb2.CreateProjectRequest(project=big)
    code = send(stack.grpc_address, CREATE_PROJECT, request.SerializeToString(), admin.metadata)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    listed = admin.call(admin.projects.ListProjects, projects_pb2.ListProjectsRequest())
    assert "big" not in {p.name for p in listed.projects}


def test_find_missing_blobs_takes_its_100000_digests(stack: Stack, admin: Client) -> None:
    """The one method that needs more than 4 MiB still gets it, through the gateway and back."""
    digests = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(100_000)]
    request = repos_pb2.FindMissingBlobsRequest(digests=digests).SerializeToString()
    assert len(request) > 4 * MiB
    options = [("grpc.max_receive_message_length", 16 * MiB)]
    with grpc.insecure_channel(stack.grpc_address, options=options) as channel:
        call = channel.unary_unary(FIND_MISSING,
                                   response_deserializer=repos_pb2.FindMissingBlobsResponse.FromString)
        reply = call(request, metadata=admin.metadata, timeout=120)
    assert len(reply.missing) == 100_000
