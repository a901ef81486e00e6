"""Blob transfer over HTTP: ``PUT /api/blobs/<sha256>`` and ``GET /api/blobs/<sha256>``.

File contents travel here rather than through gRPC: a plain streamed HTTP body is the fastest
way to move gigabytes through Python, and it is the same shape as a presigned S3 URL, which a
production deployment may hand out instead. The blob store verifies every upload against its
digest before it becomes visible, so a client can only ever add content that matches its name;
blobs no version references are garbage (see README).

A new blob counts against its uploader's quota of pending uploads (bytes no version of theirs
names yet), which repo-svc keeps: the gateway reserves room there before reading the body, and
answers 413 RESOURCE_EXHAUSTED, storing nothing, past it (507 is the platform's disk being full).
"""

from __future__ import annotations

import errno
import re
from collections.abc import AsyncIterator

import grpc
from aiohttp import web

from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.kit import errors
from shipyard.kit.blob.port import BlobNotFound, BlobStore, DigestMismatch
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import status_of
from shipyard_gateway.domain.policy import GET_BLOB, PUT_BLOB
from shipyard_gateway.entrypoints.api import PublicApi, RelayedError
from shipyard_gateway.entrypoints.http_problems import relayed_error

_DIGEST = re.compile(r"[0-9a-f]{64}")
_RANGE = re.compile(r"bytes=(\d+)-$")
STORAGE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
RESERVE_UPLOAD = "/shipyard.repo.v1.RepoService/ReserveUpload"


def _problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


class BlobEdge:
    """The blob endpoints, authenticated and authorized like any public method."""

    def __init__(self, api: PublicApi, blobs: BlobStore) -> None:
        self._api = api
        self._blobs = blobs

    @property
    def store(self) -> BlobStore:
        """The blob store behind the endpoints (the console stores its uploads there too)."""
        return self._blobs

    def add_routes(self, app: web.Application) -> None:
        """Register the routes on the gateway's HTTP application."""
        app.router.add_put("/api/blobs/{digest}", self.put)
        app.router.add_get("/api/blobs/{digest}", self.get, allow_head=False)
        app.router.add_head("/api/blobs/{digest}", self.head)

    async def _allowed(self, request: web.Request, method: str) -> tuple[Caller, str] | web.Response:
        digest = request.match_info["digest"]
        try:
            caller = await self._api.caller(method, request.headers.get("Authorization"))
        except errors.ShipyardError as exc:
            code = status_of(exc).name
            return _problem(401 if code == "UNAUTHENTICATED" else 403, code, exc.message)
        if not _DIGEST.fullmatch(digest):
            return _problem(400, "INVALID_ARGUMENT", "digest: must be a lowercase hex sha256 (64 characters)")
        return caller, digest

    async def _reserve(self, caller: Caller, digest: str, size: int) -> web.Response | None:
        """Room for a new blob under the caller's quota of pending uploads, or the refusal."""
        request = repos_pb2.ReserveUploadRequest(digest=digest, size_bytes=size)
        try:
            await self._api.call(self._api.routes[RESERVE_UPLOAD], caller, request.SerializeToString())
        except RelayedError as exc:
            if exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                # 413: this content is refused (the caller's quota); 429 would invite a retry.
                return _problem(413, exc.code.name, exc.details)
            return relayed_error(exc)
        return None

    async def put(self, request: web.Request) -> web.Response:
        """Store the body under its digest (201), or 400 when the bytes do not match it; a blob not
        stored yet first takes room in the caller's quota of pending uploads (413 past it)."""
        allowed = await self._allowed(request, PUT_BLOB)
        if isinstance(allowed, web.Response):
            return allowed
        caller, digest = allowed
        if not await self._blobs.exists(digest):
            if request.content_length is None:
                return _problem(411, "INVALID_ARGUMENT",
                                "Content-Length: required (an upload counts against a quota by its size)")
            if (refused := await self._reserve(caller, digest, request.content_length)) is not None:
                return refused

        async def body() -> AsyncIterator[bytes]:
            # Whatever arrived, as it arrived: the store batches it for hashing and writing.
            async for chunk in request.content.iter_any():
                yield chunk

        try:
            size = await self._blobs.put(digest, body(), request.content_length)
        except DigestMismatch as exc:
            return _problem(400, "INVALID_ARGUMENT", f"blob {digest}: {exc}")
        except OSError as exc:
            if exc.errno not in STORAGE_FULL:
                raise
            # 507 Insufficient Storage (RFC 4918): the server cannot store it, the request was fine.
            return _problem(507, "RESOURCE_EXHAUSTED",
                            f"blob {digest}: no space left on device on the platform's blob store; "
                            "nothing was stored (ask an operator to free space)")
        return web.json_response({"digest": digest, "size": size}, status=201)

    async def head(self, request: web.Request) -> web.Response:
        """200 with the size when stored, 404 otherwise."""
        allowed = await self._allowed(request, GET_BLOB)
        if isinstance(allowed, web.Response):
            return allowed
        digest = allowed[1]
        try:
            size = await self._blobs.size(digest)
        except BlobNotFound:
            return web.Response(status=404)
        return web.Response(headers={"Content-Length": str(size), "Accept-Ranges": "bytes"})

    async def get(self, request: web.Request) -> web.StreamResponse:
        """Stream the blob; ``Range: bytes=N-`` resumes a download from byte N."""
        allowed = await self._allowed(request, GET_BLOB)
        if isinstance(allowed, web.Response):
            return allowed
        digest = allowed[1]
        offset = 0
        if (wanted := request.headers.get("Range")) is not None:
            match = _RANGE.fullmatch(wanted.strip())
            if match is None:
                return _problem(416, "OUT_OF_RANGE", "only Range: bytes=N- is supported")
            offset = int(match.group(1))
        try:
            size = await self._blobs.size(digest)
        except BlobNotFound:
            return _problem(404, "NOT_FOUND", f"blob {digest} is not stored")
        if offset > size:
            return _problem(416, "OUT_OF_RANGE", f"blob {digest} has {size} bytes")
        response = web.StreamResponse(
            status=206 if offset else 200,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size - offset),
                "Accept-Ranges": "bytes",
            },
        )
        await response.prepare(request)
        async for chunk in self._blobs.get(digest, offset):
            await response.write(chunk)
        await response.write_eof()
        return response
