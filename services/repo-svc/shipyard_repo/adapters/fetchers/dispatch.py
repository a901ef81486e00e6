"""The ``SourceFetcher`` of repo imports: fetches a downloaded source with the fetcher of its kind.

Every connection goes through one ``Egress`` (shipyard.kit.egress): a host is resolved once, every
address it resolves to is checked (the domain's check is syntactic), and the connection is made to
a checked address — a name that resolves to a loopback or private address is refused unless the
operator allows private sources, one that resolves to the cloud metadata service even then.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from shipyard.kit.egress import Egress, EgressRefused, failure, private_policy
from shipyard_repo.adapters.fetchers.files import UrlFetch
from shipyard_repo.adapters.fetchers.git import GitFetch
from shipyard_repo.adapters.fetchers.object_stores import S3Fetch
from shipyard_repo.adapters.gcs import GcsFetch
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.app.ports import SourceFetcher
from shipyard_repo.domain.sources import GcsSource, GitSource, S3Source, Source, UrlSource
from shipyard_repo.domain.sources.common import ALLOW_PRIVATE_ENV


def source_egress(allow_private: bool) -> Egress:
    """Where imports may connect: public addresses, and private ones if the operator allows them."""
    return Egress(private_policy(allow_private, ALLOW_PRIVATE_ENV))


class Fetchers(SourceFetcher):
    """Dispatches on the kind of source."""

    def __init__(
        self, allow_private: bool, gcs: GcsFetch | None = None, egress: Egress | None = None
    ) -> None:
        self._allow_private = allow_private
        self._egress = egress or source_egress(allow_private)
        self._gcs = gcs or GcsFetch(egress=self._egress)

    async def fetch(self, source: Source, into: Path, secret: str | None, username: str = "") -> str:
        try:
            return await self._fetch(source, into, secret, username)
        except (EgressRefused, aiohttp.ClientError) as exc:
            raise FetchFailed(failure(exc)) from None

    async def _fetch(self, source: Source, into: Path, secret: str | None, username: str) -> str:
        if isinstance(source, GitSource):
            return await GitFetch(self._egress).fetch(source, into, secret, username)
        if isinstance(source, GcsSource):
            await self._gcs.fetch(source, into, secret)
        elif isinstance(source, UrlSource):
            await UrlFetch(self._egress, self._allow_private).fetch(source, into)
        elif isinstance(source, S3Source):
            await S3Fetch(self._egress).fetch(source, into, secret, username)
        else:
            raise FetchFailed(f"importing from a {source.KIND} source is not supported yet")
        return ""
