"""One behaviour for every blob store adapter: the same tests run against local files and S3."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.kit.blob.checkout import DamagedBlob, check_out, read_manifest
from shipyard.kit.blob.factory import BlobStoreURLError, open_blob_store
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.port import BlobNotFound, BlobStore, DigestMismatch
from shipyard.kit.blob.s3 import S3BlobStore
from shipyard.kit.manifest import Manifest, ManifestEntry
from tests.support.seaweed import S3Server

MiB = 1 << 20
UNKNOWN = "0" * 64
BAD_DIGESTS = ["A" * 64, "a" * 63, "a" * 65, "g" * 64, f"sha256:{'a' * 64}", ""]

Leftovers = Callable[[], Awaitable[list[str]]]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def from_list(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def read_all(store: BlobStore, digest: str, offset: int = 0) -> bytes:
    return b"".join([chunk async for chunk in store.get(digest, offset)])


async def put_bytes(store: BlobStore, data: bytes, size: int | None = None) -> str:
    digest = sha(data)
    assert await store.put(digest, chunked(data), size) == len(data)
    return digest


@pytest.fixture
def leftovers(blob_store: BlobStore, request: pytest.FixtureRequest) -> Leftovers:
    """Everything the store has written: files under the local root, objects under the S3 prefix."""
    if isinstance(blob_store, LocalBlobStore):
        root = blob_store.root

        def listing() -> list[str]:
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    else:
        assert isinstance(blob_store, S3BlobStore)
        client = request.getfixturevalue("s3_server").client()
        s3 = blob_store

        def listing() -> list[str]:
            objects = client.list_objects(s3.bucket, prefix=s3.prefix, recursive=True)
            return sorted(str(o.object_name) for o in objects)

    async def collect() -> list[str]:
        return await asyncio.to_thread(listing)

    return collect


async def test_put_then_get_round_trips(blob_store: BlobStore) -> None:
    data = b"the quick brown fox " * 5000
    digest = await put_bytes(blob_store, data, size=len(data))
    assert await read_all(blob_store, digest) == data
    assert await blob_store.size(digest) == len(data)
    assert await blob_store.exists(digest)


async def test_sync_after_puts_keeps_every_blob_readable(blob_store: BlobStore) -> None:
    digests = [await put_bytes(blob_store, f"blob {i}".encode()) for i in range(3)]
    await blob_store.sync()
    assert await blob_store.missing(digests) == []
    assert [await read_all(blob_store, d) for d in digests] == [f"blob {i}".encode() for i in range(3)]


async def test_a_deleted_blob_is_missing_again(blob_store: BlobStore) -> None:
    digest = await put_bytes(blob_store, b"short-lived")
    assert await blob_store.missing([digest]) == []  # seen stored (and remembered, on S3)
    assert await blob_store.delete(digest)
    assert await blob_store.missing([digest]) == [digest]


async def test_empty_blob_round_trips(blob_store: BlobStore) -> None:
    digest = await put_bytes(blob_store, b"")
    assert await blob_store.exists(digest)
    assert await blob_store.size(digest) == 0
    assert await read_all(blob_store, digest) == b""


async def test_get_from_offset(blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 40
    digest = await put_bytes(blob_store, data)
    assert await read_all(blob_store, digest, 1000) == data[1000:]
    assert await read_all(blob_store, digest, len(data) - 1) == data[-1:]


async def test_get_at_or_past_the_end_yields_nothing(blob_store: BlobStore) -> None:
    data = b"short blob"
    digest = await put_bytes(blob_store, data)
    assert await read_all(blob_store, digest, len(data)) == b""
    assert await read_all(blob_store, digest, len(data) + 100) == b""


async def test_negative_offset_is_rejected(blob_store: BlobStore) -> None:
    digest = await put_bytes(blob_store, b"abc")
    with pytest.raises(ValueError, match="offset"):
        blob_store.get(digest, -1)


async def test_missing_keeps_the_given_order(blob_store: BlobStore) -> None:
    stored = [await put_bytes(blob_store, f"blob {i}".encode()) for i in range(3)]
    absent = [sha(f"absent {i}".encode()) for i in range(3)]
    asked = [absent[0], stored[0], absent[1], stored[1], absent[2], stored[2], absent[0]]
    assert await blob_store.missing(asked) == [absent[0], absent[1], absent[2], absent[0]]
    assert await blob_store.missing(stored) == []
    assert await blob_store.missing([]) == []


async def test_exists_is_false_for_unknown_blob(blob_store: BlobStore) -> None:
    assert not await blob_store.exists(UNKNOWN)


async def test_delete_removes_the_blob_once(blob_store: BlobStore, leftovers: Leftovers) -> None:
    keep = await put_bytes(blob_store, b"keep me")
    digest = await put_bytes(blob_store, b"delete me")
    assert await blob_store.delete(digest) is True
    assert not await blob_store.exists(digest)
    assert await blob_store.delete(digest) is False
    with pytest.raises(BlobNotFound):
        await read_all(blob_store, digest)
    assert await read_all(blob_store, keep) == b"keep me"
    assert len(await leftovers()) == 1


async def test_put_of_a_stored_blob_is_idempotent(blob_store: BlobStore) -> None:
    data = os.urandom(100_000)
    digest = await put_bytes(blob_store, data)
    assert await blob_store.put(digest, chunked(data), len(data)) == len(data)
    assert await blob_store.put(digest, chunked(data)) == len(data)
    assert await read_all(blob_store, digest) == data


async def test_put_of_a_stored_blob_with_another_size_is_rejected(blob_store: BlobStore) -> None:
    data = b"twelve bytes"
    digest = await put_bytes(blob_store, data)
    with pytest.raises(DigestMismatch):
        await blob_store.put(digest, chunked(data), len(data) + 1)
    assert await read_all(blob_store, digest) == data


async def test_wrong_bytes_store_nothing(blob_store: BlobStore, leftovers: Leftovers) -> None:
    claimed = sha(b"what the writer promised")
    with pytest.raises(DigestMismatch):
        await blob_store.put(claimed, chunked(b"what the writer sent instead"))
    assert not await blob_store.exists(claimed)
    assert await blob_store.missing([claimed]) == [claimed]
    assert await leftovers() == []


@pytest.mark.parametrize("declared", [5, 50])
async def test_wrong_size_stores_nothing(blob_store: BlobStore, leftovers: Leftovers,
                                         declared: int) -> None:
    data = b"nineteen bytes long"
    digest = sha(data)
    with pytest.raises(DigestMismatch):
        await blob_store.put(digest, chunked(data, 4), declared)
    assert not await blob_store.exists(digest)
    assert await leftovers() == []


async def test_cancelled_put_stores_nothing(blob_store: BlobStore, leftovers: Leftovers) -> None:
    asked_for_more = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"the first chunk"
        asked_for_more.set()
        await asyncio.Event().wait()  # a writer that hangs until cancelled
        yield b"never sent"

    task = asyncio.create_task(blob_store.put(sha(b"never complete"), stalls()))
    await asyncio.wait_for(asked_for_more.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await leftovers() == []


async def test_put_file_stores_the_file_under_its_digest(blob_store: BlobStore, tmp_path: Path,
                                                         leftovers: Leftovers) -> None:
    data = os.urandom(3 * MiB + 17)  # more than one read
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    assert await blob_store.put_file(source) == (sha(data), len(data))
    assert await read_all(blob_store, sha(data)) == data
    assert await blob_store.put_file(source) == (sha(data), len(data))  # again: nothing new but a touch
    prefix = getattr(blob_store, "prefix", "")
    assert await leftovers() in ([f"sha256/{sha(data)[:2]}/{sha(data)[2:4]}/{sha(data)}"],
                                 [f"{prefix}sha256/{sha(data)}", f"{prefix}touched/{sha(data)}"])


async def test_put_file_of_an_empty_file(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.touch()
    assert await blob_store.put_file(source) == (sha(b""), 0)
    assert await read_all(blob_store, sha(b"")) == b""


async def test_put_file_of_a_missing_file_stores_nothing(blob_store: BlobStore, tmp_path: Path,
                                                          leftovers: Leftovers) -> None:
    with pytest.raises(FileNotFoundError):
        await blob_store.put_file(tmp_path / "not-there")
    assert await leftovers() == []


async def test_unknown_blob_is_not_found(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await read_all(blob_store, UNKNOWN)
    with pytest.raises(BlobNotFound):
        await read_all(blob_store, UNKNOWN, 10)
    with pytest.raises(BlobNotFound):
        await blob_store.size(UNKNOWN)


@pytest.mark.parametrize("bad", BAD_DIGESTS)
async def test_invalid_digests_are_rejected(blob_store: BlobStore, bad: str) -> None:
    pattern = "invalid blob digest"
    with pytest.raises(ValueError, match=pattern) as raised:
        await blob_store.put(bad, chunked(b"x"))
    assert repr(bad) in str(raised.value)
    with pytest.raises(ValueError, match=pattern):
        blob_store.get(bad)
    with pytest.raises(ValueError, match=pattern):
        await blob_store.exists(bad)
    with pytest.raises(ValueError, match=pattern):
        await blob_store.missing([UNKNOWN, bad])
    with pytest.raises(ValueError, match=pattern):
        await blob_store.size(bad)
    with pytest.raises(ValueError, match=pattern):
        await blob_store.delete(bad)


async def test_large_blob_round_trips_in_bounded_chunks(blob_store: BlobStore) -> None:
    parts = [os.urandom(MiB) for _ in range(21)] + [os.urandom(12345)]
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part)
    digest, total = hasher.hexdigest(), sum(map(len, parts))

    assert await blob_store.put(digest, from_list(parts), total) == total
    assert await blob_store.size(digest) == total

    read = hashlib.sha256()
    sizes = []
    async for chunk in blob_store.get(digest):
        read.update(chunk)
        sizes.append(len(chunk))
    assert read.hexdigest() == digest
    assert sum(sizes) == total
    assert len(sizes) > 1
    assert max(sizes) <= MiB

    offset = 20 * MiB + 7
    tail = await read_all(blob_store, digest, offset)
    assert tail == b"".join(parts)[offset:]


async def test_concurrent_puts_of_one_blob_both_succeed(blob_store: BlobStore,
                                                        leftovers: Leftovers) -> None:
    data = os.urandom(3 * MiB + 1)
    digest = sha(data)
    sizes = await asyncio.gather(*(blob_store.put(digest, chunked(data, MiB // 4)) for _ in range(2)))
    assert sizes == [len(data), len(data)]
    assert await read_all(blob_store, digest) == data
    assert len(await leftovers()) == 1


# Adapter layouts that other code relies on.

async def test_local_layout_fans_out_twice(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    await store.open()
    digest = await put_bytes(store, b"laid out")
    path = store.path_of(digest)
    assert path == tmp_path / "sha256" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == b"laid out"
    assert not path.stat().st_mode & 0o222, "blobs are read-only so hard links cannot edit them"
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_s3_open_creates_the_bucket_and_keys_by_digest(s3_server: S3Server) -> None:
    bucket = "shipyard-fresh-bucket"
    client = s3_server.client()
    assert not await asyncio.to_thread(client.bucket_exists, bucket)
    store = S3BlobStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket,
                        prefix="models/")
    await store.open()
    await store.open()  # a second open finds the bucket and leaves it be
    digest = await put_bytes(store, b"keyed")
    stat = await asyncio.to_thread(client.stat_object, bucket, f"models/sha256/{digest}")
    assert stat.size == 5
    await store.close()


# open_blob_store: URLs in, stores out, and errors that say what is wrong.

async def test_file_url_opens_a_local_store(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/blobs")
    assert isinstance(store, LocalBlobStore)
    assert (store.root, store.durable) == (tmp_path / "blobs", True)


async def test_file_url_may_leave_write_back_to_the_os(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/blobs?sync=off")
    assert isinstance(store, LocalBlobStore) and not store.durable
    await store.open()
    digest = await put_bytes(store, b"written back later")
    await store.sync()  # a no-op, and no error
    assert await read_all(store, digest) == b"written back later"


async def test_s3_url_opens_a_working_store(s3_server: S3Server) -> None:
    url = (f"s3://{s3_server.access_key}:{s3_server.secret_key}@{s3_server.endpoint}"
           "/shipyard-url-bucket/team/models/?secure=false")
    store = open_blob_store(url)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("shipyard-url-bucket", "team/models/")
    await store.open()
    digest = await put_bytes(store, b"via url")
    assert await read_all(store, digest) == b"via url"
    await store.close()


def test_s3_url_defaults() -> None:
    store = open_blob_store("s3://ak:sk@minio.internal/artifacts")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("artifacts", "blobs/")


def test_s3_url_decodes_percent_encoded_keys() -> None:
    store = open_blob_store("s3://ak:s%2Fk%40x@localhost:9000/artifacts?secure=true&region=eu-west-1")
    assert isinstance(store, S3BlobStore)


@pytest.mark.parametrize(("url", "names"), [
    ("gs://bucket/x", "scheme is 'gs'"),
    ("/just/a/path", "scheme is missing"),
    ("file://host/var/blobs", "take no host"),
    ("file:relative/blobs", "absolute"),
    ("file:///var/blobs?x=1", "unknown option(s) x; file URLs take sync"),
    ("file:///var/blobs?sync=sometimes", "sync='sometimes' is not 'version' or 'off'"),
    ("file:///var/blobs#part", "no fragment"),
    ("s3://ak:sk@/bucket", "host is missing"),
    ("s3://ak:sk@localhost:notaport/bucket", "port is not a number"),
    ("s3://ak:sk@localhost:0/bucket", "port is not a number"),
    ("s3://ak:sk@localhost:9000/bucket#part", "no fragment"),
    ("s3://localhost:9000/bucket", "access key is missing"),
    ("s3://ak@localhost:9000/bucket", "secret key is missing"),
    ("s3://ak:sk@localhost:9000", "bucket is missing"),
    ("s3://ak:sk@localhost:9000/", "bucket is missing"),
    ("s3://ak:sk@localhost:9000/Bad_Bucket", "'Bad_Bucket' is not a valid S3 bucket name"),
    ("s3://ak:sk@localhost:9000/bucket?secure=maybe", "secure='maybe'"),
    ("s3://ak:sk@localhost:9000/bucket?secure=true&secure=false", "secure is given 2 times"),
    ("s3://ak:sk@localhost:9000/bucket?region=", "region is empty"),
    ("s3://ak:sk@localhost:9000/bucket?tls=1", "unknown option(s) tls"),
])
def test_bad_urls_name_the_problem(url: str, names: str) -> None:
    with pytest.raises(BlobStoreURLError) as raised:
        open_blob_store(url)
    assert names in str(raised.value)


def test_url_errors_never_show_the_secret_key() -> None:
    with pytest.raises(ValueError, match="unknown option") as raised:
        open_blob_store("s3://ak:topsecret@localhost:9000/bucket?tls=1")
    assert "topsecret" not in str(raised.value)
    assert "ak:***@localhost" in str(raised.value)


async def test_check_out_lays_a_version_out_linked_or_copied(blob_store: BlobStore, tmp_path: Path) -> None:
    files = {"model.joblib": (b"weights", 0o644), "bin/serve.sh": (b"#!/bin/sh\necho hi\n", 0o755)}
    entries = []
    for path, (data, mode) in files.items():
        entries.append(ManifestEntry(path, len(data), await put_bytes(blob_store, data), mode))
    manifest = Manifest(tuple(sorted(entries, key=lambda e: e.path)))
    encoded = manifest.encode()
    await blob_store.put(manifest.digest, from_list([encoded]), len(encoded))

    read = await read_manifest(blob_store, manifest.digest)
    assert read == manifest
    linked, copied = tmp_path / "linked", tmp_path / "copied"
    await check_out(blob_store, read, linked)
    await check_out(blob_store, read, copied, link=False)
    for root in (linked, copied):
        assert {p: (root / p).read_bytes() for p in files} == {p: d for p, (d, _) in files.items()}
    assert os.access(copied / "bin" / "serve.sh", os.X_OK)
    if isinstance(blob_store, LocalBlobStore):  # the same inode as the store's read-only blob: no copy
        blob = blob_store.path_of(entries[0].sha256)
        assert (linked / "model.joblib").stat().st_ino == blob.stat().st_ino
        assert (copied / "model.joblib").stat().st_ino != blob.stat().st_ino
    assert (await read_manifest(blob_store, "")).entries == ()
    # An empty version (a repo's first, before anything was uploaded) stores no blob for its manifest.
    assert (await read_manifest(blob_store, Manifest(entries=()).digest)).entries == ()


async def damage(blob_store: BlobStore, digest: str, request: pytest.FixtureRequest) -> None:
    """Overwrite a stored blob's bytes behind the store's back (what a run that reached a hard-linked
    blob writably, or a failing disk, would do)."""
    if isinstance(blob_store, LocalBlobStore):
        blob = blob_store.path_of(digest)
        blob.chmod(0o644)
        blob.write_bytes(b"tampered")
        blob.chmod(0o444)
    else:
        assert isinstance(blob_store, S3BlobStore)
        client = request.getfixturevalue("s3_server").client()
        client.put_object(blob_store.bucket, blob_store.key_of(digest), io.BytesIO(b"tampered"), 8)


@pytest.mark.parametrize("link", [True, False], ids=["linked", "copied"])
async def test_a_damaged_blob_is_quarantined_never_served_and_repaired_by_the_next_put(
        blob_store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest, link: bool) -> None:
    data = b"model weights " * 100
    entry = ManifestEntry("model.bin", len(data), await put_bytes(blob_store, data), 0o644)
    manifest = Manifest((entry,))
    await check_out(blob_store, manifest, tmp_path / "first", link=link)  # verified once, remembered
    await damage(blob_store, entry.sha256, request)

    with pytest.raises(DamagedBlob, match=r"'model\.bin'.*damaged.*quarantined") as raised:
        await check_out(blob_store, manifest, tmp_path / "second", link=link)
    assert raised.value.digest == entry.sha256
    assert await blob_store.missing([entry.sha256]) == [entry.sha256]  # out of service
    with pytest.raises(BlobNotFound):  # and never served: the next check-out finds it gone
        await check_out(blob_store, manifest, tmp_path / "third", link=link)

    await put_bytes(blob_store, data)  # pushing the bytes again repairs the store
    await check_out(blob_store, manifest, tmp_path / "fourth", link=link)
    assert (tmp_path / "fourth" / "model.bin").read_bytes() == data


async def test_local_quarantine_keeps_the_damaged_bytes_aside(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.open()
    digest = await put_bytes(store, b"evidence")
    assert await store.quarantine(digest)
    assert (tmp_path / "blobs" / "quarantine" / digest).read_bytes() == b"evidence"
    assert not await store.exists(digest)
    assert not await store.quarantine(digest)


async def test_a_verified_linked_blob_is_not_hashed_again_until_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.kit.blob import checkout
    store = LocalBlobStore(tmp_path / "blobs")
    await store.open()
    data = b"dataset bytes"
    entry = ManifestEntry("data.csv", len(data), await put_bytes(store, data), 0o644)
    hashed: list[Path] = []
    real = checkout.copy_file_hashed

    def counted(source: Path, out: Any) -> tuple[str, int]:
        hashed.append(source)
        return real(source, out)
    monkeypatch.setattr(checkout, "copy_file_hashed", counted)
    for n in range(3):  # each link changes the blob's ctime: the check-out itself must not count as a change
        await check_out(store, Manifest((entry,)), tmp_path / f"run{n}")
    assert len(hashed) == 1
    store.path_of(entry.sha256).chmod(0o644)  # a real change (as a write would be) is hashed again
    await check_out(store, Manifest((entry,)), tmp_path / "after")
    assert len(hashed) == 2


# --- what the garbage collector needs: listing with times, touch, delete if untouched ------


async def listed(store: BlobStore) -> dict[str, tuple[int, float]]:
    return {b.digest: (b.size, b.modified) async for b in store.list_blobs()}


async def test_list_blobs_names_every_blob_with_its_size(blob_store: BlobStore) -> None:
    assert await listed(blob_store) == {}
    small = await put_bytes(blob_store, b"small")
    empty = await put_bytes(blob_store, b"")
    gone = await put_bytes(blob_store, b"deleted")
    await blob_store.delete(gone)
    found = await listed(blob_store)
    assert {d: size for d, (size, _) in found.items()} == {small: 5, empty: 0}
    assert all(modified > 0 for _, modified in found.values())


async def test_touch_reports_the_missing_in_order_and_never_moves_time_back(blob_store: BlobStore) -> None:
    stored = await put_bytes(blob_store, b"stored")
    before = (await listed(blob_store))[stored][1]
    assert await blob_store.touch([UNKNOWN, stored, "1" * 64]) == [UNKNOWN, "1" * 64]
    assert (await listed(blob_store))[stored][1] >= before
    assert await blob_store.missing([UNKNOWN]) == [UNKNOWN]  # touching stores nothing
    with pytest.raises(ValueError):
        await blob_store.touch(["A" * 64])


async def test_delete_if_untouched_keeps_a_blob_used_since(blob_store: BlobStore,
                                                           leftovers: Leftovers) -> None:
    digest = await put_bytes(blob_store, b"collect me")
    await blob_store.touch([digest])
    touched = (await listed(blob_store))[digest][1]
    assert await blob_store.delete_if_untouched(digest, touched) is False  # used at, not before
    assert await blob_store.delete_if_untouched(digest, 0.0) is False
    assert await read_all(blob_store, digest) == b"collect me"
    assert await blob_store.delete_if_untouched(digest, touched + 3600) is True
    assert await blob_store.missing([digest]) == [digest]
    assert await blob_store.delete_if_untouched(digest, touched + 3600) is False  # idempotent
    assert await blob_store.delete_if_untouched(UNKNOWN, touched + 3600) is False
    assert await leftovers() == []  # no marker, nothing set aside


async def test_a_collected_blob_is_put_again_by_the_next_upload(blob_store: BlobStore,
                                                                tmp_path: Path) -> None:
    digest = await put_bytes(blob_store, b"comes back")
    assert await blob_store.missing([digest]) == []  # seen stored (remembered, on S3)
    assert await blob_store.delete_if_untouched(digest, 2e9 + 3600)
    source = tmp_path / "again"
    source.write_bytes(b"comes back")
    assert await blob_store.put_file(source) == (digest, 10)
    assert await read_all(blob_store, digest) == b"comes back"


async def test_local_put_of_a_stored_blob_touches_it(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.open()
    digest = await put_bytes(store, b"old")
    os.utime(store.path_of(digest), (1000.0, 1000.0))
    await put_bytes(store, b"old")
    assert (await listed(store))[digest][1] > 1000.0
    source = tmp_path / "f"
    source.write_bytes(b"old")
    os.utime(store.path_of(digest), (1000.0, 1000.0))
    await store.put_file(source)
    assert (await listed(store))[digest][1] > 1000.0


async def test_local_blob_left_aside_by_a_killed_collector_is_put_back_on_open(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.open()
    digest = await put_bytes(store, b"aside")
    os.rename(store.path_of(digest), store.root / "tmp" / f"{digest}.collecting")
    assert await store.missing([digest]) == [digest]
    await LocalBlobStore(tmp_path / "blobs").open()
    assert await read_all(store, digest) == b"aside"
    assert list((store.root / "tmp").iterdir()) == []
