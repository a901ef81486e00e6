"""The internal UserDirectory on the gateway's port: answered to repo-svc's signed assertions only,
never to a user's token nor to another platform process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from shipyard_gateway.bootstrap import PUBLIC_SERVICES
from shipyard_gateway.domain.identity import ROLES as IDENTITY_ROLES
from shipyard_gateway.domain.policy import POLICY, authorize
from shipyard_gateway.entrypoints.users_api import USER_DIRECTORY, UserDirectoryServicer, edge_authenticator

from shipyard.contracts.gateway.v1 import users_pb2, users_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.caller import Caller
from shipyard.kit.errors import PermissionDenied, Unauthenticated
from shipyard.kit.grpcio import Authentication, Metadata, new_server

KEY = new_key()
ROLES = {"alice": frozenset({"data-scientist"})}  # anyone else: no such user, disabled or deleted
GET = f"{USER_DIRECTORY}GetUserRoles"


async def _public(method: str, metadata: Metadata) -> Caller:
    if ("authorization", "Bearer sy_good.token") in metadata:
        return Caller("alice", ROLES["alice"])
    raise Unauthenticated("not a token of ours")


async def _roles_of(user: str) -> frozenset[str] | None:
    return ROLES.get(user)


@pytest.fixture
async def directory() -> AsyncIterator[users_pb2_grpc.UserDirectoryStub]:
    server = new_server(False, Authentication(edge_authenticator(_public, CallerAssertions(KEY, "gateway"))))
    users_pb2_grpc.add_UserDirectoryServicer_to_server(UserDirectoryServicer(_roles_of), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield users_pb2_grpc.UserDirectoryStub(channel)
    await server.stop(None)


def _signed_by(service: str, audience: str = "gateway") -> tuple[tuple[str, str]]:
    return CallerAssertions(KEY, service).metadata(Caller(service, frozenset()), audience)


async def test_repo_svc_is_told_a_users_roles_now_and_who_is_not_active(
        directory: users_pb2_grpc.UserDirectoryStub) -> None:
    found = await directory.GetUserRoles(users_pb2.GetUserRolesRequest(user="alice"),
                                         metadata=_signed_by("repo-svc"))
    assert (found.active, list(found.roles)) == (True, ["data-scientist"])
    gone = await directory.GetUserRoles(users_pb2.GetUserRolesRequest(user="bob"),
                                        metadata=_signed_by("repo-svc"))
    assert (gone.active, list(gone.roles)) == (False, [])


# Who calls: a user's token, nothing, or a service's assertion (signer, audience). The assertions are made
# in the test, not at collection: they are valid for a minute, and the suite may reach this test later.
@pytest.mark.parametrize("who, code", [
    ("token", grpc.StatusCode.UNAUTHENTICATED),  # a user's good token
    ("nothing", grpc.StatusCode.UNAUTHENTICATED),
    (("repo-svc", "run-svc"), grpc.StatusCode.UNAUTHENTICATED),  # addressed elsewhere
    (("run-svc", "gateway"), grpc.StatusCode.PERMISSION_DENIED),  # a platform process, but not the asker
    (("serving-svc", "gateway"), grpc.StatusCode.PERMISSION_DENIED),
])
async def test_anyone_but_repo_svc_is_refused(directory: users_pb2_grpc.UserDirectoryStub,
                                              who: str | tuple[str, str], code: grpc.StatusCode) -> None:
    metadata: tuple[tuple[str, str], ...] = (
        (("authorization", "Bearer sy_good.token"),) if who == "token" else () if who == "nothing"
        else _signed_by(*who))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await directory.GetUserRoles(users_pb2.GetUserRolesRequest(user="alice"), metadata=metadata)
    assert refused.value.code() == code


async def test_the_public_api_is_still_authenticated_by_users_tokens() -> None:
    authenticate = edge_authenticator(_public, CallerAssertions(KEY, "gateway"))
    method = "/shipyard.repo.v1.ProjectService/ListProjects"
    assert (await authenticate(method, (("authorization", "Bearer sy_good.token"),))).user == "alice"
    with pytest.raises(Unauthenticated):
        await authenticate(method, _signed_by("repo-svc"))  # an assertion is no token at the public edge
    assert (await authenticate(GET, _signed_by("repo-svc"))).via == "repo-svc"


def test_no_role_may_call_the_directory_through_the_public_api() -> None:
    assert not any(method.startswith(USER_DIRECTORY) for method in POLICY)
    assert not any(s.full_name == USER_DIRECTORY.strip("/") for s in PUBLIC_SERVICES)
    with pytest.raises(PermissionDenied, match="not a public method"):
        authorize(GET, Caller("olga", frozenset(IDENTITY_ROLES)))
