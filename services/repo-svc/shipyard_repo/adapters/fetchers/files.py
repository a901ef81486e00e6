"""Fetching file sources: a file at a public URL (aiohttp), following up to ``MAX_REDIRECTS``
redirects, each hop checked like the first. (Uploads arrive through the upload API, not here.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp

from shipyard.kit.archive import ArchiveError, archive_kind, extract
from shipyard.kit.egress import Egress
from shipyard.kit.errors import InvalidArgument
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.domain.sources import UrlSource
from shipyard_repo.domain.sources.common import check_host

CHUNK = 1 << 20
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class UrlFetch:
    """A public URL: one file, extracted when asked and it is an archive. Redirects are followed
    (download links often redirect, e.g. GitHub's release assets), at most ``MAX_REDIRECTS``, each
    hop checked as the URL was: its scheme, its host's name and every address it resolves to."""

    def __init__(self, egress: Egress, allow_private: bool) -> None:
        self._egress = egress
        self._allow_private = allow_private

    async def fetch(self, source: UrlSource, into: Path) -> None:
        name = Path(urlsplit(source.url).path).name or "download"
        target = into.parent / f"download-{name}"
        await self._download(source.url, target)
        if source.extract and archive_kind(name):
            try:
                await asyncio.to_thread(extract, target, into)  # into is empty: extract replaces it
            except ArchiveError as exc:
                raise FetchFailed(f"{name}: {exc}") from None
        else:
            target.replace(into / name)

    async def _download(self, url: str, target: Path) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
        async with self._egress.session(timeout) as session:
            for _ in range(MAX_REDIRECTS + 1):
                async with session.get(url, allow_redirects=False) as reply:
                    if reply.status in _REDIRECTS:
                        url = self._next_hop(url, reply.headers.get("Location", ""))
                        continue
                    if reply.status != 200:
                        raise FetchFailed(f"GET {url} answered HTTP {reply.status}")
                    with target.open("wb") as out:
                        async for chunk in reply.content.iter_chunked(CHUNK):
                            await asyncio.to_thread(out.write, chunk)
                    return
        raise FetchFailed(f"GET {url}: more than {MAX_REDIRECTS} redirects")

    def _next_hop(self, url: str, location: str) -> str:
        """Where a redirect leads, if it may be followed: http(s), never from https down to
        http, to a host that passes the same check as the URL's (its addresses are checked when
        connecting)."""
        if not location:
            raise FetchFailed(f"GET {url} redirected without saying where")
        hop = urljoin(url, location)
        parts = urlsplit(hop)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchFailed(f"GET {url} redirected to a {scheme}: URL; only http(s) is followed")
        if scheme == "http" and urlsplit(url).scheme.lower() == "https":
            raise FetchFailed(f"GET {url} redirected from https to http ({hop}); that is not followed")
        try:
            check_host("host", parts.hostname or "", self._allow_private)
        except InvalidArgument as exc:
            raise FetchFailed(f"GET {url} redirected to {hop}, which is refused: {exc.problem}") from None
        return hop
