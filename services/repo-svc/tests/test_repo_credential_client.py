"""The kit's CredentialClient against repo-svc itself (composed as production composes it, served over
gRPC with assertions checked): run-svc opens a stored key, the gateway cannot, and repo-svc's
refusals come back as the kit's domain errors. The kit's FakeCredentialClient, which run-svc's unit
tests use, answers as the real one does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from repo_world import repo_world
from shipyard_repo.domain.credentials import CredentialFields, CredentialType

from shipyard.contracts.repo.v1 import credentials_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.clients.credentials import CredentialClient, OpenedSecret
from shipyard.kit.clients.repos import REPO_SVC
from shipyard.kit.errors import InvalidArgument, NotFound, PermissionDenied, ShipyardError
from shipyard.kit.grpcio import Authentication, assertion_authenticator, new_server
from shipyard.kit.testing import ALICE, BOB
from shipyard.kit.testing.credentials import FakeCredentialClient

KEY = ed25519.Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
# What run-svc asks, in words: each is asked of the real client and of the fake.
CALLS: dict[str, Callable[[Any], Awaitable[OpenedSecret]]] = {
    "a stored key": lambda c: c.open(BOB, "alice", "hpc-key"),
    "a name the owner has none of": lambda c: c.open(BOB, "alice", "ghost"),
    "another owner's name": lambda c: c.open(BOB, "bob", "hpc-key"),
    "no owner": lambda c: c.open(BOB, "", "hpc-key"),
    "no name": lambda c: c.open(BOB, "alice", ""),
}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, bytes]]:
    """repo-svc's CredentialService holding alice's cluster key: its address and the internal key."""
    world = await repo_world(tmp_path)
    await world.app.credentials.save(
        ALICE, CredentialFields("hpc-key", CredentialType.SSH_KEY, "login.hpc.example", "svc"), KEY)
    key = new_key()
    server = new_server(tracing=False, authentication=Authentication(
        assertion_authenticator(CallerAssertions(key, REPO_SVC))))
    credentials_pb2_grpc.add_CredentialServiceServicer_to_server(world.app.credential_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", key
    finally:
        await server.stop(None)


@pytest.fixture
async def signed_as(served: tuple[str, bytes]) -> AsyncIterator[dict[str, CredentialClient]]:
    """The client as run-svc holds it, and the same client signing as the gateway."""
    address, key = served
    clients = {signer: CredentialClient(address, CallerAssertions(key, signer)) for signer in ("run-svc",
                                                                                                "gateway")}
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.close()


async def test_run_svc_opens_the_key_and_its_repr_hides_it(signed_as: dict[str, CredentialClient]) -> None:
    opened = await signed_as["run-svc"].open(BOB, "alice", "hpc-key")
    assert opened == OpenedSecret("hpc-key", "ssh-key", "login.hpc.example", "svc", KEY)
    assert "PRIVATE KEY" not in repr(opened)


async def test_the_gateway_may_not_open_it_even_for_its_owner(signed_as: dict[str, CredentialClient]) -> None:
    with pytest.raises(PermissionDenied, match="only run-svc"):
        await signed_as["gateway"].open(ALICE, "alice", "hpc-key")


async def test_a_missing_credential_and_an_empty_name_are_the_kits_errors(
        signed_as: dict[str, CredentialClient]) -> None:
    client = signed_as["run-svc"]
    with pytest.raises(NotFound, match="'ghost' of 'alice'"):
        await client.open(BOB, "alice", "ghost")
    with pytest.raises(InvalidArgument) as refused:
        await client.open(BOB, "alice", "")
    assert refused.value.field == "name"


async def _answer(call: Callable[[Any], Awaitable[OpenedSecret]], client: Any) -> object:
    try:
        return await call(client)
    except ShipyardError as exc:
        return type(exc).__name__, exc.message


@pytest.mark.parametrize("asked", CALLS)
async def test_the_fake_answers_as_repo_svc_does(signed_as: dict[str, CredentialClient], asked: str) -> None:
    fake = FakeCredentialClient()
    fake.add("alice", "hpc-key", KEY, "ssh-key", "login.hpc.example", "svc")
    assert await _answer(CALLS[asked], fake) == await _answer(CALLS[asked], signed_as["run-svc"])
    assert len(fake.calls) == 1
