"""Runs' tokens, verified by run-svc (which makes them and knows when their runs end)."""

from __future__ import annotations

import grpc

from shipyard.contracts.run.v1 import runs_pb2, runs_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.errors import Unauthenticated, Unavailable
from shipyard_gateway.app.identity import RunGrant

# Who the gateway's own questions about runs' tokens come from (signed like every internal call).
GATEWAY_CALLER = Caller("gateway", frozenset())
VERIFY_TIMEOUT_S = 10.0


class GrpcRunTokens:
    """Asks run-svc's internal VerifyRunToken over the gateway's channel to it."""

    def __init__(self, channel: grpc.aio.Channel, assertions: CallerAssertions,
                 timeout_s: float = VERIFY_TIMEOUT_S) -> None:
        self._stub = runs_pb2_grpc.RunServiceStub(channel)
        self._assertions = assertions
        self._timeout_s = timeout_s

    async def verify(self, token: str) -> RunGrant:
        """Who the run's ``token`` acts for; Unauthenticated as run-svc says, Unavailable when it
        cannot be asked (that is no bad token, so it is not counted as one)."""
        try:
            reply = await self._stub.VerifyRunToken(
                runs_pb2.VerifyRunTokenRequest(token=token), timeout=self._timeout_s,
                metadata=self._assertions.metadata(GATEWAY_CALLER, "run-svc"), wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated(exc.details() or "the run token is not valid") from None
            raise Unavailable(f"run-svc could not check the run's token: {exc.code().name} "
                              f"{exc.details() or ''}".rstrip()) from None
        return RunGrant(reply.user, frozenset(reply.roles), reply.run)
