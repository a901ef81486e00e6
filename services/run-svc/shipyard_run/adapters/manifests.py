"""Manifests stored in the blob store (the file lists of versions run-svc registers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from shipyard.kit.blob.port import BlobStore
from shipyard.kit.manifest import Manifest


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class BlobManifests:
    """Puts manifests into ``blobs``."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    async def put_manifest(self, manifest: Manifest) -> str:
        """Store the manifest; its digest."""
        encoded = manifest.encode()
        await self._blobs.put(manifest.digest, _once(encoded), len(encoded))
        await self._blobs.sync()
        return manifest.digest
