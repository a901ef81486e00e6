"""The client of the gateway's internal UserDirectory, for repo-svc: a user's roles now (the gateway
owns users), asked as a finished run's outputs become versions."""

from __future__ import annotations

import grpc

from shipyard.contracts.gateway.v1 import users_pb2, users_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import error_of

GATEWAY = "gateway"  # its one name: the audience of the caller assertions this client signs
TIMEOUT_S = 10.0
# Who asks: the service itself, not a user (the gateway answers only assertions repo-svc signed).
ASKER = Caller("repo-svc", frozenset())


class UserDirectoryClient:
    """The gateway's UserDirectory, each call signed as this service."""

    def __init__(self, address: str, assertions: CallerAssertions) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._assertions = assertions
        self._users = users_pb2_grpc.UserDirectoryStub(self._channel)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def roles_now(self, user: str) -> frozenset[str] | None:
        """``user``'s roles now; None when there is no such user or they are disabled or deleted.
        Unavailable (or the error the gateway answered) when it cannot say: that is no answer."""
        try:
            found = await self._users.GetUserRoles(
                users_pb2.GetUserRolesRequest(user=user), metadata=self._assertions.metadata(ASKER, GATEWAY),
                timeout=TIMEOUT_S, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"the roles of user {user}") from None
        return frozenset(found.roles) if found.active else None
