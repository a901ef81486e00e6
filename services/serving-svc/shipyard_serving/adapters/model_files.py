"""A model version's files laid out as plain objects on S3, where a cluster's KServe reads them.

KServe's storage initializer downloads every object under a prefix (``storage_uri``, ``s3://bucket/
…/serving/models/<manifest digest>/``) with the S3 credentials of the ServiceAccount the model servers
run as. Each file of the version is copied there from its blob on the server (no bytes pass through
serving-svc), once per manifest: a marker object written last says the layout is whole, so a copy cut
short (serving-svc stopped, S3 refused) is done again by the next ensure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit

from shipyard.kit.blob.checkout import read_manifest
from shipyard.kit.blob.s3 import S3BlobStore

COMPLETE = ".shipyard-complete"  # the marker: the object KServe also downloads, harmlessly


class S3ModelFiles:
    """Lays model versions out beside the blobs of the S3 blob store, at the URIs ``storage_of`` names."""

    def __init__(self, blobs: S3BlobStore, storage_of: Callable[[str], str]) -> None:
        self._blobs = blobs
        self._storage_of = storage_of
        self._locks: dict[str, asyncio.Lock] = {}

    async def lay_out(self, manifest_digest: str) -> str:
        """The storage URI of the version's files, laid out there first unless they are already."""
        uri = self._storage_of(manifest_digest)
        prefix = _key_prefix(uri, self._blobs.bucket)
        async with self._locks.setdefault(manifest_digest, asyncio.Lock()):
            if await self._blobs.object_exists(prefix + COMPLETE):
                return uri
            manifest = await read_manifest(self._blobs, manifest_digest)
            for entry in manifest.entries:
                if entry.size == 0:  # an empty file's blob may never have been stored
                    await self._blobs.put_object(prefix + entry.path, b"")
                else:
                    await self._blobs.copy_blob(entry.sha256, prefix + entry.path)
            await self._blobs.put_object(prefix + COMPLETE, manifest_digest.encode())
        return uri


def _key_prefix(uri: str, bucket: str) -> str:
    """``s3://bucket/a/b/`` → ``a/b/``; ValueError for a URI of another bucket or scheme."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or parts.netloc != bucket or not parts.path.endswith("/"):
        raise ValueError(f"{uri!r} is not a folder of the blob store's bucket {bucket!r}")
    return parts.path.lstrip("/")
