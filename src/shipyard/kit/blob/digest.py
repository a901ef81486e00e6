"""Digest checks and the hash-while-writing copy that every blob store adapter shares."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Protocol

from shipyard.kit.blob.port import DigestMismatch

CHUNK_SIZE = 1 << 20
"""Bytes per blocking read or write: large enough that the hop to a worker thread is cheap
next to the I/O, small enough that memory stays flat and the event loop stays responsive."""

_DIGEST = re.compile(r"[0-9a-f]{64}")


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a lowercase hex sha256 digest; raise ValueError otherwise."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ValueError(f"invalid blob digest {digest!r}: expected 64 lowercase hex characters")
    return digest


def check_offset(offset: int) -> int:
    """Return ``offset`` if it can start a read; raise ValueError otherwise."""
    if offset < 0:
        raise ValueError(f"invalid blob offset {offset}: must be >= 0")
    return offset


def check_stored_size(digest: str, stored: int, declared: int | None) -> int:
    """The size of an already stored blob, after checking it against the size a writer declared."""
    if declared is not None and declared != stored:
        raise DigestMismatch(f"blob {digest} is stored with {stored} bytes, not the declared {declared}")
    return stored


def _write_hashed(hasher: hashlib._Hash, out: IO[bytes], data: bytes | bytearray) -> int:
    hasher.update(data)
    out.write(data)
    return len(data)


async def copy_verified(chunks: AsyncIterator[bytes], out: IO[bytes], digest: str,
                        size: int | None = None) -> int:
    """Write ``chunks`` to ``out`` while hashing them; return the byte count.

    Raises DigestMismatch when the bytes do not hash to ``digest`` or their count is not
    ``size`` (when given); the caller then discards ``out``. Writing and hashing run in a
    worker thread, batched to CHUNK_SIZE, so the event loop never waits on the disk.
    """
    hasher = hashlib.sha256()
    written = 0
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        if size is not None and written + len(pending) > size:
            # Stop reading a stream that already broke its promise instead of spooling all of it.
            raise DigestMismatch(f"blob {digest}: got more than the declared {size} bytes")
        if len(pending) >= CHUNK_SIZE:
            batch, pending = pending, bytearray()
            written += await asyncio.to_thread(_write_hashed, hasher, out, batch)
    if pending:
        written += await asyncio.to_thread(_write_hashed, hasher, out, pending)
    if size is not None and written != size:
        raise DigestMismatch(f"blob {digest}: got {written} bytes, not the declared {size}")
    actual = hasher.hexdigest()
    if actual != digest:
        raise DigestMismatch(f"blob {digest}: the bytes hash to {actual}")
    return written


_buffers = threading.local()


def thread_buffer() -> bytearray:
    """A CHUNK_SIZE buffer per thread, reused for every file that thread reads."""
    buffer: bytearray | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = bytearray(CHUNK_SIZE)
    return buffer


class Sink(Protocol):
    """Where :func:`copy_file_hashed` writes: a binary file (a temporary file, a spool)."""

    def write(self, data: memoryview, /) -> object: ...


def copy_file_hashed(source: Path, out: Sink) -> tuple[str, int]:
    """Copy the file at ``source`` into ``out`` in one pass, hashing the bytes as they go;
    return their sha256 (lowercase hex) and count. Blocking: run it in a worker thread.

    The digest is of the bytes written, so it stays right even if the file changes meanwhile.
    """
    buffer = thread_buffer()
    view = memoryview(buffer)
    hasher = hashlib.sha256()
    count = 0
    with open(source, "rb", buffering=0) as file:
        while read := file.readinto(buffer):
            hasher.update(view[:read])
            out.write(view[:read])
            count += read
    return hasher.hexdigest(), count
