"""A model version laid out as plain objects where a cluster's KServe reads it, against a real S3 server
(SeaweedFS): copied from its blobs once per manifest, a marker written last, a half-done layout redone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from minio import Minio
from shipyard_serving.adapters.model_files import COMPLETE, S3ModelFiles
from shipyard_serving.bootstrap import storage_for

from shipyard.kit.blob.s3 import S3BlobStore
from shipyard.kit.manifest import Manifest, ManifestEntry
from tests.support.seaweed import S3Server, SeaweedS3

BUCKET = "shipyard-serving"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    try:
        yield weed.start()
    finally:
        weed.stop()


@pytest.fixture
async def blobs(s3: S3Server) -> AsyncIterator[tuple[S3BlobStore, str]]:
    """The blob store of a stack whose SHIPYARD_BLOB_URL has a prefix of its own, and that URL."""
    prefix = f"p{uuid.uuid4().hex[:8]}"
    url = f"s3://{s3.access_key}:{s3.secret_key}@{s3.endpoint}/{BUCKET}/{prefix}"
    store = S3BlobStore(s3.endpoint, s3.access_key, s3.secret_key, BUCKET, prefix=f"{prefix}/")
    await store.open()
    try:
        yield store, url
    finally:
        await store.close()


async def version(store: S3BlobStore, tmp_path: Path) -> str:
    """A model version of two files (one empty), its manifest stored as a blob like repo-svc does."""
    (tmp_path / "model.joblib").write_bytes(b"pickled model bytes")
    (tmp_path / "empty.txt").write_bytes(b"")
    model, size = await store.put_file(tmp_path / "model.joblib")
    empty, _ = await store.put_file(tmp_path / "empty.txt")
    manifest = Manifest(entries=(ManifestEntry("model.joblib", size, model, 0o644),
                                 ManifestEntry("meta/empty.txt", 0, empty, 0o644)))
    (tmp_path / "manifest").write_bytes(manifest.encode())
    digest, _ = await store.put_file(tmp_path / "manifest")
    assert digest == manifest.digest
    return digest


def objects(client: Minio, prefix: str) -> dict[str, bytes]:
    found = client.list_objects(BUCKET, prefix=prefix, recursive=True)
    return {o.object_name[len(prefix):]: client.get_object(BUCKET, o.object_name).read() for o in found
            if o.object_name}


async def test_the_files_are_laid_out_where_kserve_reads_them_with_a_marker_last(
        blobs: tuple[S3BlobStore, str], s3: S3Server, tmp_path: Path) -> None:
    store, url = blobs
    digest = await version(store, tmp_path)
    files = S3ModelFiles(store, storage_for(url))
    uri = await files.lay_out(digest)
    prefix = url.rsplit("/", 1)[1]
    assert uri == f"s3://{BUCKET}/{prefix}/serving/models/{digest}/"
    laid = objects(s3.client(), f"{prefix}/serving/models/{digest}/")
    assert laid == {"model.joblib": b"pickled model bytes", "meta/empty.txt": b"", COMPLETE: digest.encode()}


async def test_a_whole_layout_is_not_copied_again_and_a_half_done_one_is_redone(
        blobs: tuple[S3BlobStore, str], s3: S3Server, tmp_path: Path) -> None:
    store, url = blobs
    digest = await version(store, tmp_path)
    files = S3ModelFiles(store, storage_for(url))
    await files.lay_out(digest)
    client, prefix = s3.client(), f"{url.rsplit('/', 1)[1]}/serving/models/{digest}/"
    client.remove_object(BUCKET, prefix + "model.joblib")
    await files.lay_out(digest)  # the marker says it is whole: nothing is copied
    assert "model.joblib" not in objects(client, prefix)
    client.remove_object(BUCKET, prefix + COMPLETE)  # as if serving-svc stopped before the marker
    await files.lay_out(digest)
    assert objects(client, prefix)["model.joblib"] == b"pickled model bytes"


async def test_no_plain_object_reaches_the_stores_own(blobs: tuple[S3BlobStore, str]) -> None:
    store, _ = blobs
    for key in (f"{store.prefix}sha256/abc", f"{store.prefix}staging/runs/x", "../x", "/abs", "a//b"):
        with pytest.raises(ValueError, match="not a plain object key"):
            await store.put_object(key, b"x")
