"""The S3 blob store's staging area: objects by name beside the blobs, reached by whoever holds a
presigned URL (a Kubernetes run's pod, which holds no S3 keys), against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from shipyard.kit.blob.s3 import S3BlobStore, StagedPart
from tests.kit.conftest import new_s3_store
from tests.support.seaweed import S3Server

HOUR = timedelta(hours=1)


@pytest.fixture
async def store(s3_server: S3Server) -> AsyncIterator[S3BlobStore]:
    opened = new_s3_store(s3_server)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def put(url: str, data: bytes) -> int:
    request = urllib.request.Request(url, data=data, method="PUT",
                                     headers={"Content-Type": "application/x-tar"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


async def test_a_presigned_put_then_get_moves_bytes_without_keys(store: S3BlobStore, tmp_path: Path) -> None:
    name = "runs/01jq3run/outputs/0.tar"
    assert put(await store.presign_put(name, HOUR), b"tar bytes") == 200
    assert get(await store.presign_get(name, HOUR)) == b"tar bytes"
    await store.get_staged(name, tmp_path / "back.tar")
    assert (tmp_path / "back.tar").read_bytes() == b"tar bytes"


async def test_staged_objects_live_under_the_prefix_apart_from_blobs(store: S3BlobStore, s3_server: S3Server,
                                                                     tmp_path: Path) -> None:
    source = tmp_path / "inputs.tar"
    source.write_bytes(b"inputs")
    await store.put_staged("runs/r1/inputs.tar", source)
    client = s3_server.client()
    keys = [o.object_name for o in client.list_objects(store.bucket, prefix=store.prefix, recursive=True)]
    assert keys == [f"{store.prefix}staging/runs/r1/inputs.tar"]
    assert get(await store.presign_get("runs/r1/inputs.tar", HOUR)) == b"inputs"
    assert [blob async for blob in store.list_blobs()] == []


async def test_a_presigned_url_grants_only_its_object_and_method(store: S3BlobStore, tmp_path: Path) -> None:
    url = await store.presign_get("runs/r1/inputs.tar", HOUR)
    with pytest.raises(urllib.error.HTTPError) as refused:
        put(url, b"overwrite")
    assert refused.value.code == 403
    forged = url.replace("inputs.tar", "other.tar")
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(forged)
    assert refused.value.code == 403


async def test_deleting_a_folder_removes_its_objects_only(store: S3BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    for name in ("runs/r1/inputs.tar", "runs/r1/outputs/0.tar", "runs/r10/inputs.tar"):
        await store.put_staged(name, source)
    await store.delete_staged("runs/r1/")
    with pytest.raises(FileNotFoundError, match=r"runs/r1/inputs\.tar"):
        await store.get_staged("runs/r1/inputs.tar", tmp_path / "gone")
    await store.get_staged("runs/r10/inputs.tar", tmp_path / "kept")
    await store.delete_staged("runs/r1/")  # nothing left: nothing to do


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "runs//x", "back\\slash", "x" * 900])
async def test_a_staged_name_that_could_leave_the_staging_area_is_refused(store: S3BlobStore,
                                                                         name: str) -> None:
    with pytest.raises(ValueError, match="staged object name"):
        await store.presign_get(name, HOUR)


async def test_a_url_lives_at_most_seven_days(store: S3BlobStore) -> None:
    with pytest.raises(ValueError, match="7 days"):
        await store.presign_put("runs/r1/x.tar", timedelta(days=8))


async def test_a_staged_object_is_read_by_range_with_its_whole_size(store: S3BlobStore) -> None:
    name = "runs/r1/log"
    assert put(await store.presign_put(name, HOUR), b"0123456789") == 200
    assert await store.read_staged(name, 0, 4) == StagedPart(b"0123", 10)
    assert await store.read_staged(name, 4, 100) == StagedPart(b"456789", 10)
    assert await store.read_staged(name, 10, 100) == StagedPart(b"", 10)  # at the end: nothing new
    assert put(await store.presign_put(name, HOUR), b"abc") == 200  # sent anew, shorter
    assert await store.read_staged(name, 10, 100) == StagedPart(b"", 3)  # past the end: the size tells
    assert await store.read_staged(name, 0, 100) == StagedPart(b"abc", 3)


async def test_an_empty_or_missing_staged_object_read_by_range(store: S3BlobStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    await store.put_staged("runs/r1/empty", empty)
    assert await store.read_staged("runs/r1/empty", 0, 10) == StagedPart(b"", 0)
    with pytest.raises(FileNotFoundError, match="runs/r1/none"):
        await store.read_staged("runs/r1/none", 0, 10)
    with pytest.raises(FileNotFoundError, match="runs/r1/none"):
        await store.read_staged("runs/r1/none", 5, 10)
    with pytest.raises(ValueError, match="staged object name"):
        await store.read_staged("runs/../x", 0, 10)
    with pytest.raises(ValueError):
        await store.read_staged("runs/r1/empty", -1, 10)
