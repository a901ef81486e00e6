"""Fetching downloaded sources into a directory, one module per family of sources as in
``shipyard_repo.domain.sources``: ``git`` (the git CLI), ``files`` (public URLs, aiohttp),
``object_stores`` (S3, the MinIO SDK; GCS is ``adapters/gcs.py``), and ``dispatch``, the
``SourceFetcher`` that picks one by the kind of source.
"""

from __future__ import annotations

from .dispatch import Fetchers, source_egress

__all__ = ["Fetchers", "source_egress"]
