"""Moving version content between a workstation and the platform.

Push: scan the directory into a manifest (hashes cached between pushes, so only changed
files are hashed again), ask which blobs the platform lacks, PUT only those over HTTP (a few
at a time), PUT the manifest itself, then create the version with one RPC. An interrupted
push resumes where it stopped: the blobs already sent are no longer missing.

Pull: read the manifest, GET every blob whose file is not already there with the right
content, write each through a temporary file renamed into place.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from shipyard.client.connection import Client, ClientError, TransferError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.kit.archive import ArchiveEntry, write_tar_gz
from shipyard.kit.manifest import HashCache, Manifest, ManifestEntry, scan

# CreateVersionFromPath's refusals begin with this (repos.proto): upload the directory instead.
PATH_IMPORT_REFUSED = "path import refused"
PATH_IMPORT_TIMEOUT_S = 3600.0
PARALLEL = 16  # uploads in flight: keeps the gateway busy while each blob is hashed and written
CHUNK = 1 << 20
Progress = Callable[[int], None]  # bytes just moved


@dataclass(frozen=True)
class Pushed:
    """What a push did."""

    version: repos_pb2.Version
    uploaded_blobs: int  # file contents the platform did not have (the manifest not counted)
    uploaded_bytes: int
    read_by_platform: bool = False  # the platform read the directory itself: nothing was uploaded


def cache_for(root: Path) -> HashCache:
    """The hash cache of a directory, kept outside it (in the user's cache directory)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shipyard" / "hashes"
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
    return HashCache(base / f"{key}.json")


def blob_url(client: Client) -> str:
    """Where this gateway takes and gives blobs."""
    reply = client.call(client.platform.GetStatus, gateway_pb2.GetStatusRequest())
    if not reply.blob_url:
        raise TransferError("the gateway did not say where blobs go (an older gateway?)")
    return reply.blob_url.rstrip("/")


def scan_tree(root: Path, progress: Callable[[int, int], None] | None = None) -> Manifest:
    """The manifest of a directory, reusing the hashes of files unchanged since the last scan."""
    cache = cache_for(root)
    cache.load()
    manifest = scan(root, cache=cache, progress=progress)
    cache.save()
    return manifest


def import_path(
    client: Client,
    kind: repos_pb2.RepoKind,
    repo: str,
    root: Path,
    *,
    message: str = "",
    parent_version: int = 0,
) -> Pushed | None:
    """Have the platform read the directory ``root`` itself (CreateVersionFromPath), when it runs
    where it can: the embedded stack on this machine. None when it may not or cannot (the
    directory is not under its import roots, it sees another directory at that path, an older
    gateway): upload instead.
    """
    st = root.stat()
    request = repos_pb2.CreateVersionFromPathRequest(
        kind=kind,
        repo=repo,
        path=str(root.resolve()),
        device=st.st_dev,
        inode=st.st_ino,
        parent_version=parent_version,
        message=message,
        request_id=str(uuid.uuid4()),
    )
    try:
        version = client.call(client.repos.CreateVersionFromPath, request, timeout=PATH_IMPORT_TIMEOUT_S)
    except ClientError as exc:
        if exc.message.startswith(PATH_IMPORT_REFUSED) or "is not a public method" in exc.message:
            return None
        raise
    return Pushed(version, 0, 0, read_by_platform=True)


def push(
    client: Client,
    kind: repos_pb2.RepoKind,
    repo: str,
    root: Path,
    manifest: Manifest,
    *,
    message: str = "",
    parent_version: int = 0,
    progress: Progress | None = None,
    plan: Callable[[int], None] | None = None,
) -> Pushed:
    """Upload what the platform lacks of ``manifest`` (files under ``root``) and create the version.

    ``plan`` hears the bytes about to be uploaded, ``progress`` each chunk as it goes.
    """
    encoded = manifest.encode()
    wanted = [*manifest.blobs(), manifest.digest]
    missing: set[str] = set()
    for start in range(0, len(wanted), 50_000):
        reply = client.call(
            client.repos.FindMissingBlobs,
            repos_pb2.FindMissingBlobsRequest(digests=wanted[start : start + 50_000]),
        )
        missing.update(reply.missing)
    first_path: dict[str, str] = {}
    for entry in manifest.entries:
        first_path.setdefault(entry.sha256, entry.path)
    sources: dict[str, Path | bytes] = {d: root / first_path[d] for d in manifest.blobs() if d in missing}
    files = len(sources)
    if manifest.digest in missing:
        sources[manifest.digest] = encoded
    if plan:
        plan(sum(_size(source) for source in sources.values()))
    sent = asyncio.run(_put_all(blob_url(client), client.credentials.token, sources, progress))
    version = client.call(
        client.repos.CreateVersion,
        repos_pb2.CreateVersionRequest(
            kind=kind,
            repo=repo,
            manifest_digest=manifest.digest,
            parent_version=parent_version,
            message=message,
            request_id=str(uuid.uuid4()),
        ),
    )
    return Pushed(version, files, sent)


async def _put_all(base: str, token: str, sources: dict[str, Path | bytes], progress: Progress | None) -> int:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for digest in sorted(sources, key=lambda d: -_size(sources[d])):
        queue.put_nowait(digest)
    sent = 0
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal sent
            while not queue.empty():
                digest = queue.get_nowait()
                moved = await _put_one(session, f"{base}/{digest}", sources[digest], progress)
                sent += moved

        await asyncio.gather(*(worker() for _ in range(PARALLEL)))
    return sent


def _problem(status: int, text: str) -> tuple[str, str]:
    """The gateway's error code and message from an error body, or the status and text as they came."""
    try:
        body = json.loads(text)
        return str(body["code"]), f"{body['message']} (HTTP {status})"
    except (ValueError, KeyError, TypeError):
        return "UNAVAILABLE", f"HTTP {status} {text[:500]}"


def _size(source: Path | bytes) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


async def _put_one(
    session: aiohttp.ClientSession, url: str, source: Path | bytes, progress: Progress | None
) -> int:
    size = _size(source)
    body: bytes | aiohttp.AsyncIterablePayload
    if isinstance(source, bytes):
        body = source
    else:
        body = aiohttp.AsyncIterablePayload(_read_chunks(source, progress))
    async with session.put(url, data=body, headers={"Content-Length": str(size)}) as reply:
        if reply.status != 201:
            code, why = _problem(reply.status, await reply.text())
            raise TransferError(
                f"uploading {source if isinstance(source, Path) else 'the manifest'} failed: {why}", code
            )
    if isinstance(source, bytes) and progress:
        progress(size)
    return size


async def _read_chunks(path: Path, progress: Progress | None) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            if progress:
                progress(len(chunk))
            yield chunk


def read_manifest(client: Client, digest: str) -> Manifest:
    """A version's manifest, read from the blob store."""
    if digest == hashlib.sha256(b"").hexdigest():
        return Manifest(entries=())
    data = b"".join(_get_chunks(blob_url(client), client.credentials.token, digest))
    return Manifest.decode(data)


def pull(client: Client, manifest: Manifest, dest: Path, progress: Progress | None = None) -> int:
    """Write the version's files under ``dest``; files already there with the right content stay.

    Returns the bytes downloaded.
    """
    dest.mkdir(parents=True, exist_ok=True)
    have = scan(dest) if any(dest.iterdir()) else Manifest(entries=())
    present = {e.path: e for e in have.entries}
    todo = [e for e in manifest.entries if present.get(e.path) != e]
    base, token = blob_url(client), client.credentials.token
    return asyncio.run(_get_all(base, token, todo, dest, progress))


def download(client: Client, entries: Sequence[ManifestEntry], dest: Path,
             progress: Progress | None = None) -> int:
    """Write each file under ``dest`` at its path (replacing what is there), its bytes checked
    against its sha256; the bytes downloaded. Files whose content the blob store lacks, or that
    cannot be written, raise TransferError naming them."""
    base = blob_url(client)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_get_all(base, client.credentials.token, list(entries), dest, progress))
    except aiohttp.ClientError as exc:  # before OSError: a refused connection is both
        raise TransferError(f"downloading from {base} failed: {exc}") from None
    except OSError as exc:
        raise TransferError(f"writing into {dest} failed: {exc}") from None


async def _get_all(
    base: str,
    token: str,
    todo: list[ManifestEntry],
    dest: Path,
    progress: Progress | None,
) -> int:
    queue: asyncio.Queue[ManifestEntry] = asyncio.Queue()
    for entry in todo:
        queue.put_nowait(entry)
    got = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    ) as session:

        async def worker() -> None:
            nonlocal got
            while not queue.empty():
                entry = queue.get_nowait()
                moved = await _get_one(session, base, entry, dest, progress)
                got += moved

        await asyncio.gather(*(worker() for _ in range(PARALLEL)))
    return got


async def _get_one(
    session: aiohttp.ClientSession,
    base: str,
    entry: ManifestEntry,
    dest: Path,
    progress: Progress | None,
) -> int:
    target = dest / entry.path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            async with session.get(f"{base}/{entry.sha256}") as reply:
                if reply.status != 200:
                    raise TransferError(
                        f"downloading {entry.path} failed: HTTP {reply.status} {await reply.text()}"
                    )
                async for chunk in reply.content.iter_chunked(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
        if digest.hexdigest() != entry.sha256:
            raise TransferError(f"{entry.path}: the downloaded bytes do not match sha256 {entry.sha256}")
        os.chmod(temp, entry.mode)
        os.replace(temp, target)
    except BaseException:
        os.unlink(temp)
        raise
    return entry.size


def _get_chunks(base: str, token: str, digest: str) -> Iterator[bytes]:
    request = urllib.request.Request(f"{base}/{digest}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as reply:
            while chunk := reply.read(CHUNK):
                yield chunk
    except OSError as exc:
        raise TransferError(f"reading blob {digest} failed: {exc}") from None


def export(client: Client, manifest: Manifest, out: Path, progress: Progress | None = None) -> None:
    """Write the version as a .tar.gz, streaming each file from the blob store."""
    base, token = blob_url(client), client.credentials.token

    def chunks_of(digest: str) -> Callable[[], Iterator[bytes]]:
        def read() -> Iterator[bytes]:
            for chunk in _get_chunks(base, token, digest):
                if progress:
                    progress(len(chunk))
                yield chunk

        return read

    entries = [ArchiveEntry(e.path, e.size, e.mode, chunks_of(e.sha256)) for e in manifest.entries]
    fd, temp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            write_tar_gz(entries, handle)
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
