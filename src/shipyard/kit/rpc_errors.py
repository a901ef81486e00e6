"""Errors on the wire: a domain error as a ``google.rpc.Status`` (the status code, the message, and
what a program needs without parsing the message — a ``BadRequest`` field violation naming the
field and the problem, an ``ErrorInfo`` naming the error), and the same read back from a failed
call by the services, the gateway, the Python client, the CLI and the console.

A client that ignores the details sees the status code and message it always saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from shipyard.kit import errors

# ErrorInfo.domain of every error the platform raises.
DOMAIN = "shipyard"
# Characters of a field name and of a problem in a field violation. The status travels in the
# trailers beside grpc-message (the message percent-encoded: 12 bytes a 4-byte character), and holds
# the message again (4 bytes a character): gRPC refuses trailers past 8 KiB now and then (past its
# soft limit, at random), so the field and the problem share what is left with room to spare. Echoed
# 4-byte characters at these limits take about 7.5 KiB (tests/kit/test_rpc_errors measures it).
MAX_FIELD = errors.MAX_MESSAGE // 5
MAX_PROBLEM = errors.MAX_MESSAGE * 2 // 5


@dataclass(frozen=True)
class RpcFailure:
    """What a failed call said: its ``code`` and ``message`` and, when the server sent them, the
    ``field`` and ``problem`` of a bad request (or of a field the state refuses) and the ``reason``
    (``NOT_FOUND``, ``NO_SPACE``…)."""

    code: grpc.StatusCode
    message: str
    field: str = ""
    problem: str = ""
    reason: str = ""


def reason_of(exc: errors.ShipyardError) -> str:
    """The error's class name in UPPER_SNAKE case: ``NoSpace`` → ``NO_SPACE``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(exc).__name__).upper()


def status_message(exc: errors.ShipyardError, code: grpc.StatusCode) -> status_pb2.Status:
    """The ``google.rpc.Status`` of domain error ``exc`` (``code`` its status code): its message,
    ErrorInfo naming it, and for an InvalidArgument a BadRequest with its field and problem."""
    status = status_pb2.Status(code=code.value[0], message=exc.message)
    if isinstance(exc, errors.InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=errors.clipped(exc.field, MAX_FIELD), description=errors.clipped(exc.problem, MAX_PROBLEM))
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    elif isinstance(exc, errors.FailedPrecondition) and exc.field:
        # The problem is the state, not the value's form: a precondition violation whose subject is the field.
        failure = error_details_pb2.PreconditionFailure.Violation(
            type="FIELD", subject=errors.clipped(exc.field, MAX_FIELD),
            description=errors.clipped(exc.problem, MAX_PROBLEM))
        status.details.add().Pack(error_details_pb2.PreconditionFailure(violations=[failure]))
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason_of(exc), domain=DOMAIN))
    return status


def status_of_error(exc: errors.ShipyardError, code: grpc.StatusCode) -> grpc.Status:
    """What a server aborts a call with for domain error ``exc`` (``code`` its status code):
    ``context.abort_with_status(status_of_error(exc, code))``."""
    return rpc_status.to_status(status_message(exc, code))


def rich_status(call: grpc.Call | grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` a failed call's trailers carry, or None when they carry none (or one
    that does not match the call's code and message: a proxy rewrote them)."""
    try:
        return rpc_status.from_call(call)
    except (ValueError, DecodeError):
        return None


def failure_of(exc: grpc.RpcError) -> RpcFailure:
    """What a failed call said, its field and problem from the status details (never the message text)."""
    # A synchronous call's error is also its grpc.Call; an aio call's error is an AioRpcError.
    if not isinstance(exc, grpc.Call | grpc.aio.AioRpcError):
        return RpcFailure(grpc.StatusCode.UNKNOWN, str(exc))
    return failure_in(exc.code(), exc.details() or "", rich_status(exc))


def failure_in(code: grpc.StatusCode, message: str, status: status_pb2.Status | None) -> RpcFailure:
    """The failure a status code, message and (when sent) ``google.rpc.Status`` tell."""
    field = problem = reason = ""
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            if request.field_violations:
                field = request.field_violations[0].field
                problem = request.field_violations[0].description
        elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            precondition = error_details_pb2.PreconditionFailure()
            detail.Unpack(precondition)
            if precondition.violations and precondition.violations[0].type == "FIELD":
                field = precondition.violations[0].subject
                problem = precondition.violations[0].description
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason if info.domain == DOMAIN else ""
    return RpcFailure(code, message, field, problem, reason)


def with_message(status: status_pb2.Status, message: str) -> status_pb2.Status:
    """``status`` with another message (a relay that says more than the service did), its details kept."""
    relayed = status_pb2.Status()
    relayed.CopyFrom(status)
    relayed.message = message
    return relayed

