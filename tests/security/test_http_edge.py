"""Attacks on the gateway's HTTP side from the network: reading where the platform's parts are
before signing in, framing or sniffing its pages, planting a TensorBoard cookie with a link, raw
bytes in the Authorization header, a megabyte echoed into an error. Every one is refused."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from urllib.parse import urlsplit

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.local.harness import Stack

ADDRESS = re.compile(r"\b(?:127\.0\.0\.1|localhost|0\.0\.0\.0):\d+")


def _get(stack: Stack, path: str, headers: dict[str, str] | None = None,
         method: str = "GET", body: bytes | None = None) -> tuple[int, http.client.HTTPMessage, str]:
    port = urlsplit(stack.http_url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read().decode(errors="replace")
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/api/status", "/login", "/healthz"])
def test_before_sign_in_nothing_says_where_the_platforms_parts_are(stack: Stack, path: str) -> None:
    status, _, body = _get(stack, path)

    assert status == 200
    assert "nats://" not in body and "/api/blobs" not in body and "s3://" not in body
    assert not ADDRESS.search(body), ADDRESS.search(body)
    nats_port = str(urlsplit(stack.nats_url).port)
    grpc_port = stack.grpc_address.rsplit(":", 1)[1]
    assert f":{nats_port}" not in body and f":{grpc_port}" not in body
    if path == "/api/status":
        assert json.loads(body) == {"healthy": True}


def test_a_signed_in_operator_still_sees_every_part(stack: Stack) -> None:
    status, _, body = _get(stack, "/api/status", {"Authorization": f"Bearer {stack.admin_token()}"})

    assert status == 200
    found = json.loads(body)
    assert found["healthy"] is True and found["blobUrl"].endswith("/api/blobs")
    assert {s["name"] for s in found["services"]} == {"nats", "gateway", "repo-svc", "run-svc", "serving-svc",
                                                      "lineage-svc"}


def test_a_made_up_token_learns_nothing_from_status(stack: Stack) -> None:
    status, _, body = _get(stack, "/api/status", {"Authorization": "Bearer sy_made.up"})
    assert status == 401 and not ADDRESS.search(body)


@pytest.mark.parametrize(("path", "method"), [
    ("/login", "GET"),  # a console page
    ("/api/status", "GET"),  # an API answer
    ("/api/shipyard.repo.v1.ProjectService/NoSuchMethod", "POST"),  # an error
    ("/projects", "GET"),  # a redirect to sign in
])
def test_no_page_can_be_framed_sniffed_or_given_foreign_scripts(stack: Stack, path: str, method: str) -> None:
    _, headers, _ = _get(stack, path, method=method, body=b"{}" if method == "POST" else None)

    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_a_tensorboard_link_cannot_plant_a_cookie(stack: Stack) -> None:
    status, headers, body = _get(stack, "/tensorboard/any-run/?token=sy_planted.by-a-link")

    assert status == 401, body
    assert headers.get_all("Set-Cookie") is None


def test_a_real_token_for_a_run_it_cannot_open_gets_no_cookie_either(stack: Stack) -> None:
    status, headers, _ = _get(stack, f"/tensorboard/no-such-run/?token={stack.admin_token()}")

    assert status == 404
    assert headers.get_all("Set-Cookie") is None


async def _raw(stack: Stack, request: bytes) -> bytes:
    port = urlsplit(stack.http_url).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/shipyard.gateway.v1.IdentityService/WhoAmI", b"{}"),
    ("GET", "/api/status", b""),
    ("PUT", "/api/blobs/" + "0" * 64, b"x"),
    ("GET", "/api/events", b""),
])
def test_raw_bytes_in_the_authorization_header_are_refused_not_a_crash(stack: Stack, method: str, path: str,
                                                                      body: bytes) -> None:
    request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               f"Content-Length: {len(body)}\r\n").encode()
    request += b"Authorization: Bearer sy_\xff\xfe.\xc3\x28\x80\r\n\r\n" + body

    answer = asyncio.run(_raw(stack, request))

    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
    assert b"printable ASCII" in answer


def test_a_megabyte_name_echoed_into_an_error_comes_back_clipped(admin: Client) -> None:
    name = "n" * 1_000_000

    with pytest.raises(ClientError) as caught:
        admin.call(admin.projects.GetProject, projects_pb2.GetProjectRequest(name=name))

    assert caught.value.code == "NOT_FOUND"
    assert len(caught.value.message) < 1000
    assert "characters left out" in caught.value.message


def test_a_data_scientist_cannot_count_everyones_event_streams(stack: Stack, admin: Client) -> None:
    made = admin.call(admin.identity.CreateUser, pb.CreateUserRequest(
        user=pb.User(name="counting-dana", roles=[pb.ROLE_DATA_SCIENTIST])))

    status, _, _ = _get(stack, "/api/watches", {"Authorization": f"Bearer {made.token}"})

    assert status == 403
