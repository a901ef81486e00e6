"""Fixtures for kit tests: a real S3 server (SeaweedFS) and both blob store adapters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.s3 import S3BlobStore
from tests.support.seaweed import S3Server, SeaweedS3

CONFORMANCE_BUCKET = "shipyard-conformance"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server shared by the session: endpoint, access key and secret key."""
    weed = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    try:
        yield weed.start()
    finally:
        weed.stop()


def new_s3_store(server: S3Server, bucket: str = CONFORMANCE_BUCKET) -> S3BlobStore:
    """An S3 store under a prefix no other test uses, so tests can share the server's bucket."""
    return S3BlobStore(server.endpoint, server.access_key, server.secret_key, bucket,
                       prefix=f"test-{uuid.uuid4().hex}/")


@pytest.fixture(params=["local", "s3"])
async def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    """An opened, empty blob store of each adapter."""
    store: BlobStore
    if request.param == "local":
        store = LocalBlobStore(tmp_path / "blobs")
    else:
        # Looked up lazily so that running only the local cases never starts weed.
        store = new_s3_store(request.getfixturevalue("s3_server"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()
