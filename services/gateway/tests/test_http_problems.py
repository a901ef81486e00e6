"""The HTTP/JSON edge's error documents: the code and message as always, and the field a bad request
got wrong as RFC 9457's ``invalid-params`` — from the service's status details, not its message."""

from __future__ import annotations

import json

import grpc
from aiohttp import web
from google.rpc import error_details_pb2, status_pb2
from shipyard_gateway.entrypoints.api import RelayedError
from shipyard_gateway.entrypoints.http_problems import domain_error, relayed_error

from shipyard.kit import errors
from shipyard.kit.rpc_errors import status_message


def _body(response: web.Response) -> dict[str, object]:
    assert response.text is not None
    body: dict[str, object] = json.loads(response.text)
    return body


def test_a_bad_request_names_its_field_and_reason() -> None:
    response = domain_error(errors.InvalidArgument("project.name", "may contain only letters"))

    assert response.status == 400
    assert _body(response) == {
        "code": "INVALID_ARGUMENT", "message": "project.name: may contain only letters",
        "invalid-params": [{"name": "project.name", "reason": "may contain only letters"}]}


def test_other_errors_name_no_field() -> None:
    response = domain_error(errors.NotFound("no project named 'x'"))

    assert response.status == 404
    assert _body(response) == {"code": "NOT_FOUND", "message": "no project named 'x'"}


def test_a_relayed_bad_request_keeps_the_field_the_service_named() -> None:
    status = status_message(errors.InvalidArgument("repo.name", "must be 1 to 63 characters"),
                            grpc.StatusCode.INVALID_ARGUMENT)

    response = relayed_error(RelayedError(grpc.StatusCode.INVALID_ARGUMENT, status.message, status))

    assert response.status == 400
    assert _body(response)["invalid-params"] == [
        {"name": "repo.name", "reason": "must be 1 to 63 characters"}]


def test_a_relayed_message_that_only_looks_like_a_field_names_none() -> None:
    response = relayed_error(RelayedError(grpc.StatusCode.INVALID_ARGUMENT, "repo.name: must be short"))

    assert "invalid-params" not in _body(response)


def test_a_relay_that_rewords_the_message_keeps_the_details_consistent() -> None:
    sent = status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message="busy")
    sent.details.add().Pack(error_details_pb2.ErrorInfo(reason="UNAVAILABLE", domain="shipyard"))

    relayed = RelayedError(grpc.StatusCode.UNAVAILABLE, "repo-svc is not answering: busy", sent)

    assert relayed.status is not None and relayed.status.message == "repo-svc is not answering: busy"
    assert relayed.failure.reason == "UNAVAILABLE"
    assert list(relayed.status.details) == list(sent.details)
