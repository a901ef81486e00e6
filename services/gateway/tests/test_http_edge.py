"""The gateway's HTTP edge on its own: security headers, unreadable credentials, a full disk, the
per-user bounds on event streams and upload spools. (Against a real stack: tests/security.)"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from shipyard_gateway.entrypoints.api import PublicApi
from shipyard_gateway.entrypoints.blobs_http import RESERVE_UPLOAD, BlobEdge
from shipyard_gateway.entrypoints.console.spools import Spools
from shipyard_gateway.entrypoints.http_guards import add_security_headers, readable_credentials
from shipyard_gateway.entrypoints.sse import Watches

from shipyard.kit.blob.port import BlobStore
from shipyard.kit.caller import Caller
from shipyard.kit.errors import MAX_MESSAGE, NotFound, ResourceExhausted, clipped

DIGEST = "0" * 64


class AnyoneApi:
    """Lets every caller in (authentication is not what these tests are about)."""

    routes = {RESERVE_UPLOAD: None}

    async def caller(self, method: str, authorization: str | None) -> Caller:
        return Caller("alice", frozenset({"data-scientist"}))

    async def call(self, route: object, caller: Caller, payload: bytes) -> bytes:
        return b""  # every upload fits alice's quota


class FullDisk:
    """A blob store whose disk is full."""

    async def exists(self, digest: str) -> bool:
        return False

    async def put(self, digest: str, chunks: AsyncIterator[bytes], size: int | None) -> int:
        async for _ in chunks:
            pass
        raise OSError(errno.ENOSPC, "No space left on device")


async def _ok(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def _app() -> web.Application:
    app = web.Application(middlewares=[readable_credentials])
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/api/thing", _ok)
    app.router.add_get("/tensorboard/r/", _ok)
    BlobEdge(cast(PublicApi, AnyoneApi()), cast(BlobStore, FullDisk())).add_routes(app)
    return app


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(_app())) as running:
        yield running


@pytest.mark.parametrize("path", ["/api/thing", "/no/such/page"])
async def test_every_response_carries_the_security_headers(client: TestClient[Any, Any], path: str) -> None:
    reply = await client.get(path)
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"] == "same-origin"
    policy = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


async def test_tensorboard_keeps_its_own_frames_and_scripts(client: TestClient[Any, Any]) -> None:
    reply = await client.get("/tensorboard/r/")
    assert reply.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert reply.headers["Content-Security-Policy"] == "frame-ancestors 'self'"


async def test_raw_bytes_in_the_authorization_header_are_refused_with_401(
        client: TestClient[Any, Any]) -> None:
    assert client.port is not None
    raw = (b"GET /api/thing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sy_\xff\xfe.\xc3\x28\r\n"
           b"Connection: close\r\n\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(raw)
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"printable ASCII" in answer


async def test_a_full_disk_answers_507_resource_exhausted(client: TestClient[Any, Any]) -> None:
    reply = await client.put(f"/api/blobs/{DIGEST}", data=b"x" * 1000, headers={"Authorization": "Bearer t"})
    body = await reply.json()
    assert reply.status == 507
    assert body["code"] == "RESOURCE_EXHAUSTED" and "no space left on device" in body["message"]


def test_one_user_holds_at_most_so_many_event_streams() -> None:
    watches = Watches(per_user=2, heartbeat_s=15)
    with watches.claim("alice"), watches.claim("alice"), watches.claim("bob"):
        assert watches.live == 3
        with pytest.raises(ResourceExhausted, match="SHIPYARD_WATCHES_PER_USER=2"):
            watches.claim("alice")
    assert watches.live == 0
    with watches.claim("alice"):
        assert watches.live == 1


def test_upload_spools_are_bounded_per_user_in_bytes_and_number() -> None:
    spools = Spools(max_bytes=100, per_user=1)
    spools.begin("alice")
    with pytest.raises(ResourceExhausted, match="SHIPYARD_UPLOADS_PER_USER=1"):
        spools.begin("alice")
    spools.spend("alice", 60)
    with pytest.raises(ResourceExhausted, match="SHIPYARD_UPLOAD_MAX_BYTES"):
        spools.spend("alice", 41)
    spools.begin("bob")
    spools.spend("bob", 100)
    spools.end("alice", 60)
    spools.begin("alice")
    assert spools.left("alice") == 100


def test_an_echoed_megabyte_is_clipped_saying_how_long_it_was() -> None:
    name = "n" * 1_000_000
    error = NotFound(f"no project named {name!r}")
    assert len(error.message) <= MAX_MESSAGE + 60
    assert error.message.startswith("no project named 'nnn") and error.message.endswith("nnn'")
    assert "of 1000019 characters left out" in error.message
    assert clipped("short") == "short"
