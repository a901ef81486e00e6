"""Manifests stored in the blob store (the file lists of versions run-svc registers)."""

from __future__ import annotations

from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.tree import put_manifest
from shipyard.kit.manifest import Manifest


class BlobManifests:
    """Puts manifests into ``blobs``."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    async def put_manifest(self, manifest: Manifest) -> str:
        """Store the manifest, durably (a version is about to name it); its digest."""
        digest = await put_manifest(self._blobs, manifest)
        await self._blobs.sync()
        return digest
