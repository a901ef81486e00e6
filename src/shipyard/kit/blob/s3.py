"""S3 adapter of the blob store (MinIO, SeaweedFS, AWS S3, ...), through the MinIO SDK.

The SDK is synchronous, so every call runs in a worker thread. A put is spooled to a
temporary file (memory up to 8 MiB, disk beyond) while hashing, and uploaded only once the
digest checks out: an object under ``<prefix>sha256/<digest>`` is always the right bytes.

S3 cannot change an object's time without copying it, so a touch writes an empty marker object
``<prefix>touched/<digest>``: a blob was last used at the later of its own and its marker's time.
S3 has no conditional delete, so the collector's last look and its delete are two requests: a
touch landing between them (milliseconds) is not seen. The local store has no such window.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, BinaryIO, cast

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Object
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from urllib3.response import BaseHTTPResponse

from shipyard.kit.blob.digest import (
    CHUNK_SIZE,
    check_digest,
    check_offset,
    check_stored_size,
    copy_file_hashed,
    copy_verified,
)
from shipyard.kit.blob.port import BlobNotFound, BlobStore, StoredBlob

SPOOL_IN_MEMORY = 8 << 20
PART_SIZE = 16 << 20
CONCURRENCY = 16
"""Most S3 requests one store runs at once for ``missing``; the connection pool matches it."""

STAGED_NAME_MAX = 512
PRESIGNED_MAX = timedelta(days=7)  # SigV4's longest

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
_BUCKET_TAKEN = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


def _http_client() -> urllib3.PoolManager:
    """The SDK's default pool, but with room for CONCURRENCY requests plus multipart uploads."""
    timeout = 300
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        maxsize=CONCURRENCY * 2,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


def _close_response(response: BaseHTTPResponse) -> None:
    response.close()
    response.release_conn()


class S3BlobStore(BlobStore):
    """Blobs as objects ``<prefix>sha256/<digest>`` in one bucket of an S3-compatible server."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str,
                 prefix: str = "blobs/", secure: bool = False, region: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._http = _http_client()
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key,
                             secure=secure, region=region, http_client=self._http)
        # Digests seen stored: blobs are immutable, so a HEAD per blob need not be repeated.
        # Only this process deletes through ``delete``, which forgets the digest.
        self._present: set[str] = set()

    def key_of(self, digest: str) -> str:
        """The object key of the blob; raises ValueError for a bad digest."""
        return f"{self.prefix}sha256/{check_digest(digest)}"

    def marker_of(self, digest: str) -> str:
        """The object key of the blob's touch marker."""
        return f"{self.prefix}touched/{check_digest(digest)}"

    async def open(self) -> None:
        """Create the bucket if it does not exist."""
        await asyncio.to_thread(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self.bucket):
            return
        try:
            self._client.make_bucket(self.bucket)
        except S3Error as e:
            # Another process may have created it between the check and the create.
            if e.code not in _BUCKET_TAKEN:
                raise

    async def close(self) -> None:
        """Close the pooled connections."""
        self._http.clear()

    async def put(self, digest: str, chunks: AsyncIterator[bytes], size: int | None = None) -> int:
        """Store the bytes under ``digest`` unless already stored; return the size.

        Raises DigestMismatch, uploading nothing, when the bytes do not hash to ``digest``
        or do not number ``size``.
        """
        key = self.key_of(digest)
        stored = await self._touch_one(digest)
        if stored is not None:
            return check_stored_size(digest, stored, size)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            written = await copy_verified(chunks, spool, digest, size)
            await asyncio.to_thread(self._upload, key, spool, written)
        self._present.add(digest)
        return written

    async def put_file(self, source: Path) -> tuple[str, int]:
        """Spool the file while hashing it (one read of ``source``), then upload the spool
        unless the digest is stored already; its digest and size."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            digest, size = await asyncio.to_thread(copy_file_hashed, source, spool)
            # Not the cache of digests seen: another process may have collected the blob since.
            if await self._touch_one(digest) is None:
                await asyncio.to_thread(self._upload, self.key_of(digest), spool, size)
        self._present.add(digest)
        return digest, size

    def _upload(self, key: str, spool: IO[bytes], length: int) -> None:
        spool.seek(0)
        # With the length known the SDK picks a single PUT or a multipart upload by itself.
        self._client.put_object(self.bucket, key, cast(BinaryIO, spool), length, part_size=PART_SIZE)

    def get(self, digest: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Stream the blob from ``offset`` in chunks of up to 1 MiB; raises BlobNotFound.

        A bad digest or offset raises ValueError at once; a missing blob raises BlobNotFound
        on the first iteration.
        """
        return self._read(digest, self.key_of(digest), check_offset(offset))

    async def _read(self, digest: str, key: str, offset: int) -> AsyncIterator[bytes]:
        try:
            response = await asyncio.to_thread(self._client.get_object, self.bucket, key, offset=offset)
        except S3Error as e:
            if e.code in _NOT_FOUND:
                raise BlobNotFound(digest) from None
            if e.code == "InvalidRange" and offset > 0:
                return  # the offset is at or past the end: nothing left to read
            raise
        try:
            while chunk := await asyncio.to_thread(response.read, CHUNK_SIZE):
                yield chunk
        finally:
            _close_response(response)

    async def _stat_size(self, key: str) -> int | None:
        try:
            stat = await asyncio.to_thread(self._client.stat_object, self.bucket, key)
        except S3Error as e:
            if e.code in _NOT_FOUND:
                return None
            raise
        return stat.size

    async def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        return await self._stat_size(self.key_of(digest)) is not None

    async def missing(self, digests: list[str]) -> list[str]:
        """The digests of ``digests`` that are not stored, in the given order.

        Checks run concurrently, at most CONCURRENCY at a time.
        """
        unknown = [digest for digest in digests if digest not in self._present]
        keys = [self.key_of(digest) for digest in unknown]
        limit = asyncio.Semaphore(CONCURRENCY)

        async def stored(key: str) -> bool:
            async with limit:
                return await self._stat_size(key) is not None

        present = await asyncio.gather(*(stored(key) for key in keys))
        self._present.update(digest for digest, ok in zip(unknown, present, strict=True) if ok)
        return [digest for digest in unknown if digest not in self._present]

    async def sync(self) -> None:
        """Nothing to do: S3 acknowledges a PUT once the object is durable."""

    async def size(self, digest: str) -> int:
        """The blob's size in bytes; raises BlobNotFound."""
        stored = await self._stat_size(self.key_of(digest))
        if stored is None:
            raise BlobNotFound(digest)
        return stored

    async def delete(self, digest: str) -> bool:
        """Remove the blob; whether it existed."""
        key = self.key_of(digest)
        # S3 deletes succeed for absent keys too, so ask first to report whether it existed.
        self._present.discard(digest)
        if await self._stat_size(key) is None:
            return False
        await asyncio.to_thread(self._client.remove_object, self.bucket, key)
        await asyncio.to_thread(self._client.remove_object, self.bucket, self.marker_of(digest))
        return True

    async def quarantine(self, digest: str) -> bool:
        """Copy the object to ``<prefix>quarantine/<digest>`` (server-side), then remove it."""
        key = self.key_of(digest)
        self._present.discard(digest)
        if await self._stat_size(key) is None:
            return False
        aside = f"{self.prefix}quarantine/{digest}"
        await asyncio.to_thread(self._client.copy_object, self.bucket, aside, CopySource(self.bucket, key))
        await asyncio.to_thread(self._client.remove_object, self.bucket, key)
        return True

    async def _touch_one(self, digest: str) -> int | None:
        """Write the blob's touch marker if the blob is stored; its size, or None."""
        stored = await self._stat_size(self.key_of(digest))
        if stored is not None:
            await asyncio.to_thread(self._client.put_object, self.bucket, self.marker_of(digest),
                                    io.BytesIO(b""), 0)
        return stored

    async def touch(self, digests: list[str]) -> list[str]:
        """Write the touch markers of the stored ones, at most CONCURRENCY at a time; those not
        stored, in the given order."""
        for digest in digests:
            check_digest(digest)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def touched(digest: str) -> bool:
            async with limit:
                return await self._touch_one(digest) is not None

        present = await asyncio.gather(*(touched(digest) for digest in digests))
        return [digest for digest, ok in zip(digests, present, strict=True) if not ok]

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every blob with its size and the later of its own and its touch marker's time."""
        markers = {
            os.path.basename(obj.object_name or ""): _epoch(obj.last_modified)
            for obj in await asyncio.to_thread(self._objects, "touched/")
        }
        for obj in await asyncio.to_thread(self._objects, "sha256/"):
            digest = os.path.basename(obj.object_name or "")
            modified = max(_epoch(obj.last_modified), markers.get(digest, 0.0))
            yield StoredBlob(digest, obj.size or 0, modified)

    def _objects(self, under: str) -> list[Object]:
        return list(self._client.list_objects(self.bucket, prefix=f"{self.prefix}{under}", recursive=True))

    async def delete_if_untouched(self, digest: str, before: float) -> bool:
        """Delete the blob (and its marker) if neither was written since ``before``."""
        key = self.key_of(digest)
        try:
            stat = await asyncio.to_thread(self._client.stat_object, self.bucket, key)
        except S3Error as e:
            if e.code in _NOT_FOUND:
                return False
            raise
        if _epoch(stat.last_modified) >= before or await self._marker_time(digest) >= before:
            return False
        self._present.discard(digest)
        await asyncio.to_thread(self._client.remove_object, self.bucket, key)
        await asyncio.to_thread(self._client.remove_object, self.bucket, self.marker_of(digest))
        return True

    async def _marker_time(self, digest: str) -> float:
        try:
            stat = await asyncio.to_thread(self._client.stat_object, self.bucket, self.marker_of(digest))
        except S3Error as e:
            if e.code in _NOT_FOUND:
                return 0.0
            raise
        return _epoch(stat.last_modified)

    # --- staged objects: files by name beside the blobs, for those who hold no keys but a presigned URL
    # (a Kubernetes run's pod fetches its inputs and sends its outputs this way).

    def staged_key(self, name: str, folder: bool = False) -> str:
        """The object key of the staged object ``name`` (``runs/<run id>/inputs.tar``; a ``folder`` ends
        with '/'); ValueError for a name that could reach outside the staging area."""
        parts = name.split("/")
        body = parts[:-1] if folder else parts
        if (not name or len(name) > STAGED_NAME_MAX or name.startswith("/") or "\\" in name
                or any(part in ("", ".", "..") for part in body) or folder != name.endswith("/")):
            kind = "folder" if folder else "object"
            raise ValueError(f"not a staged {kind} name: {name[:80]!r} (relative, '/'-separated, no empty, "
                             f"'.' or '..' parts, at most {STAGED_NAME_MAX} characters)")
        return f"{self.prefix}staging/{name}"

    async def presign_get(self, name: str, expires: timedelta) -> str:
        """A URL that GETs the staged object ``name`` until ``expires`` from now (at most 7 days)."""
        key, lifetime = self.staged_key(name), _lifetime(expires)
        return await asyncio.to_thread(self._client.presigned_get_object, self.bucket, key, lifetime)

    async def presign_put(self, name: str, expires: timedelta) -> str:
        """A URL that PUTs the staged object ``name`` until ``expires`` from now (at most 7 days)."""
        key, lifetime = self.staged_key(name), _lifetime(expires)
        return await asyncio.to_thread(self._client.presigned_put_object, self.bucket, key, lifetime)

    async def put_staged(self, name: str, source: Path) -> None:
        """Store the file ``source`` as the staged object ``name``."""
        await asyncio.to_thread(self._client.fput_object, self.bucket, self.staged_key(name), str(source),
                                part_size=PART_SIZE)

    async def get_staged(self, name: str, target: Path) -> None:
        """Write the staged object ``name`` to ``target``; FileNotFoundError when there is none."""
        try:
            await asyncio.to_thread(self._client.fget_object, self.bucket, self.staged_key(name), str(target))
        except S3Error as e:
            if e.code in _NOT_FOUND:
                raise FileNotFoundError(f"no staged object {name}") from None
            raise

    async def read_staged(self, name: str, offset: int, max_bytes: int) -> StagedPart:
        """At most ``max_bytes`` of the staged object ``name`` from ``offset`` (one ranged GET: nothing when
        ``offset`` is at or past its end), with the object's whole size then; FileNotFoundError when there
        is none. A follower reads only what an object it read before has gained, and tells by the size
        that it was replaced by a shorter one."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1 (got {max_bytes})")
        return await asyncio.to_thread(self._read_range, name, self.staged_key(name), check_offset(offset),
                                       max_bytes)

    def _read_range(self, name: str, key: str, offset: int, max_bytes: int) -> StagedPart:
        try:
            response = self._client.get_object(self.bucket, key, offset=offset, length=max_bytes)
        except S3Error as e:
            if e.code in _NOT_FOUND:
                raise FileNotFoundError(f"no staged object {name}") from None
            if e.code != "InvalidRange":
                raise
            size = self._stat_staged(name, key)  # the offset is at or past the end: only its size
            return StagedPart(b"", size)
        try:
            whole = response.status == 200  # a server that ignores the range sends it all, from 0
            size = _whole_size(response.headers.get("Content-Range"), response.headers.get("Content-Length"))
            skip, data = offset if whole else 0, bytearray()
            while len(data) < skip + max_bytes and (chunk := response.read(CHUNK_SIZE)):
                data += chunk
            return StagedPart(bytes(data[skip:skip + max_bytes]), size)
        finally:
            _close_response(response)

    def _stat_staged(self, name: str, key: str) -> int:
        try:
            return self._client.stat_object(self.bucket, key).size or 0
        except S3Error as e:
            if e.code in _NOT_FOUND:
                raise FileNotFoundError(f"no staged object {name}") from None
            raise

    async def delete_staged(self, folder: str) -> None:
        """Remove every staged object under ``folder`` (``runs/<run id>/``)."""
        await asyncio.to_thread(self._delete_under, self.staged_key(folder, folder=True))

    def _delete_under(self, prefix: str) -> None:
        found = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
        names = [obj.object_name for obj in found]
        errors = list(self._client.remove_objects(  # lazy: the deletes happen as it is read
            self.bucket, [DeleteObject(name) for name in names if name]))
        if errors:
            raise OSError(f"{len(errors)} staged objects under {prefix} could not be deleted: {errors[0]}")


    # --- plain objects by key beside the blobs, for readers that hold their own S3 credentials and read a
    # prefix (KServe's storage initializer reads a model version laid out under serving/models/<manifest>/).

    def plain_key(self, key: str) -> str:
        """``key`` if it names a plain object: relative, no empty, '.' or '..' parts, and outside the
        store's own objects (blobs, markers, quarantine, staging); ValueError otherwise."""
        parts = key.split("/")
        own = tuple(f"{self.prefix}{area}/" for area in ("sha256", "touched", "quarantine", "staging"))
        if (not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts)
                or key.startswith(own)):
            raise ValueError(f"not a plain object key: {key[:80]!r} (relative, outside the store's own "
                             "objects)")
        return key

    async def object_exists(self, key: str) -> bool:
        """Whether the plain object ``key`` exists."""
        return await self._stat_size(self.plain_key(key)) is not None

    async def copy_blob(self, digest: str, key: str) -> None:
        """Copy the blob ``digest`` to the plain object ``key`` on the server (no bytes pass through
        here); BlobNotFound when there is no such blob."""
        source = CopySource(self.bucket, self.key_of(digest))
        try:
            await asyncio.to_thread(self._client.copy_object, self.bucket, self.plain_key(key), source)
        except S3Error as e:
            if e.code in _NOT_FOUND:
                raise BlobNotFound(digest) from None
            raise

    async def put_object(self, key: str, data: bytes) -> None:
        """Write the plain object ``key``."""
        await asyncio.to_thread(self._client.put_object, self.bucket, self.plain_key(key), io.BytesIO(data),
                                len(data))


@dataclass(frozen=True)
class StagedPart:
    """Bytes of a staged object read from an offset, and the object's whole size when they were read."""

    data: bytes
    size: int


def _whole_size(content_range: str | None, content_length: str | None) -> int:
    """The object's size from a ranged answer's ``Content-Range: bytes 5-9/10`` (else its length)."""
    if content_range and "/" in content_range and (total := content_range.rsplit("/", 1)[1]).isdigit():
        return int(total)
    return int(content_length) if content_length and content_length.isdigit() else 0


def _epoch(when: datetime | None) -> float:
    return when.timestamp() if when is not None else 0.0


def _lifetime(expires: timedelta) -> timedelta:
    """A presigned URL's lifetime: SigV4 signs for 1 second to 7 days."""
    if not timedelta(seconds=1) <= expires <= PRESIGNED_MAX:
        raise ValueError(f"a presigned URL lives 1 second to 7 days (asked: {expires})")
    return expires
