"""The gateway's internal UserDirectory: a user's roles now, answered to repo-svc alone.

It shares the gateway's gRPC port with the public API, so the edge authenticates its calls apart: by
the signed caller assertion (as every internal service does), never by a user's token — a user's call
is refused before its request is read, and no role's policy names the method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from shipyard.contracts.gateway.v1 import users_pb2, users_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.errors import PermissionDenied
from shipyard.kit.grpcio import Authenticator, Metadata, assertion_authenticator, caller_of

USER_DIRECTORY = f"/{users_pb2.DESCRIPTOR.services_by_name['UserDirectory'].full_name}/"
# The one service that asks: it decides a finished run's writes with its owner's roles now.
ASKERS = frozenset({"repo-svc"})

RolesOf = Callable[[str], Awaitable[frozenset[str] | None]]


def edge_authenticator(public: Authenticator, assertions: CallerAssertions) -> Authenticator:
    """``public`` (users' tokens) for the public API; the signed caller assertion for the directory."""
    internal = assertion_authenticator(assertions)

    async def authenticate(method: str, metadata: Metadata) -> Caller:
        if method.startswith(USER_DIRECTORY):
            return await internal(method, metadata)
        return await public(method, metadata)
    return authenticate


class UserDirectoryServicer(users_pb2_grpc.UserDirectoryServicer):
    """Answers a user's roles now, from the gateway's own store (no token cache in between)."""

    def __init__(self, roles_of: RolesOf) -> None:
        self._roles_of = roles_of

    async def GetUserRoles(self, request: users_pb2.GetUserRolesRequest,
                           context: grpc.aio.ServicerContext) -> users_pb2.GetUserRolesResponse:
        caller = caller_of(context)
        if caller.via not in ASKERS:
            raise PermissionDenied(f"the user directory answers {', '.join(sorted(ASKERS))} only, "
                                   f"not {caller.via or 'a user'}")
        roles = await self._roles_of(request.user) if request.user else None
        if roles is None:
            return users_pb2.GetUserRolesResponse(active=False)
        return users_pb2.GetUserRolesResponse(active=True, roles=sorted(roles))
