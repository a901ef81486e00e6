"""Fakes of repo-svc's ports other than its store (the unit tests run the real store adapters on the
kit's in-memory store; the kit's TickingClock and SequentialIds serve for its clock and ids): manifests
and blobs a test "uploaded", and a tree uploader."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shipyard_repo.app.ports import BlobUploader, ManifestStore, UserDirectory

from shipyard.kit.caller import Caller
from shipyard.kit.errors import NotFound, Unavailable
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER

PRODUCTION = Caller("pat", frozenset({"production-engineer"}))


class FakeManifests(ManifestStore):
    """Manifests and blobs "uploaded" by a test."""

    def __init__(self) -> None:
        self.manifests: dict[str, Manifest] = {}
        self.blobs: set[str] = set()
        self.syncs = 0
        self.touched: list[str] = []

    def upload(self, manifest: Manifest) -> str:
        """Store the manifest and every blob it names; its digest."""
        self.manifests[manifest.digest] = manifest
        self.blobs.update(manifest.blobs())
        self.blobs.add(manifest.digest)
        return manifest.digest

    async def read(self, digest: str) -> Manifest:
        if digest not in self.manifests:
            raise NotFound(f"manifest {digest} is not stored")
        return self.manifests[digest]

    async def missing(self, digests: list[str]) -> list[str]:
        return [d for d in digests if d not in self.blobs]

    async def touch(self, digests: list[str]) -> list[str]:
        self.touched.extend(d for d in digests if d in self.blobs)
        return await self.missing(digests)

    async def sync(self) -> None:
        self.syncs += 1


class FakeUploader(BlobUploader):
    """Stores a flat directory's files as a manifest in FakeManifests; remembers each call."""

    def __init__(self, manifests: FakeManifests) -> None:
        self.manifests = manifests
        self.calls: list[tuple[Path, bool]] = []

    async def store_tree(self, root: Path, remember: bool = False) -> Manifest:
        self.calls.append((root, remember))
        manifest = Manifest(
            tuple(
                ManifestEntry(p.name, p.stat().st_size, _sha256(p.path), 0o644)
                for p in sorted(os.scandir(root), key=lambda e: e.name)
            )
        )
        self.manifests.upload(manifest)
        return manifest


def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class FakeUsers(UserDirectory):
    """The gateway's users as a test sets them: alice, bob and olga (the operator) with the roles
    kit.testing gives them, until the test changes ``roles`` (None: disabled or deleted)."""

    def __init__(self) -> None:
        self.roles: dict[str, frozenset[str] | None] = {
            c.user: c.roles for c in (ALICE, BOB, OPERATOR_CALLER)}
        self.asked: list[str] = []
        self.unavailable = False

    async def roles_now(self, user: str) -> frozenset[str] | None:
        self.asked.append(user)
        if self.unavailable:
            raise Unavailable("the roles of user: the gateway cannot be reached")
        return self.roles.get(user)
