"""Feature specifications become versions of their feature set."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shipyard.kit.caller import Caller
from shipyard_repo.app.ports import BlobUploader
from shipyard_repo.app.versions import NewVersion, Versions
from shipyard_repo.domain.featurespec import FILE_NAME, parse_spec
from shipyard_repo.domain.repos import Repo
from shipyard_repo.domain.sources import RepoKind
from shipyard_repo.domain.versions import Version


@dataclass
class FeatureSets:
    """Uploading a feature specification."""

    versions: Versions
    uploader: BlobUploader

    async def set_spec(
        self, caller: Caller, name: str, text: str, parent_version: int = 0
    ) -> tuple[Repo, Version]:
        """Check the specification and make it the next version's featurespec.yaml."""
        features = parse_spec(text)
        with tempfile.TemporaryDirectory(prefix="shipyard-featurespec-") as tmp:
            await asyncio.to_thread((Path(tmp) / FILE_NAME).write_text, text)
            manifest = await self.uploader.store_tree(Path(tmp))
        selected = sum(1 for f in features if f.selected)
        message = f"feature specification: {len(features)} features, {selected} selected"
        new = NewVersion(manifest.digest, parent_version=parent_version, message=message)
        return await self.versions.create(caller, RepoKind.FEATURESET, name, new)
