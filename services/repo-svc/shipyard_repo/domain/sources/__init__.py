"""Repo sources: where a repo's content comes from, and the rules each kind of source obeys.

A source is either *downloaded* into versioned storage (git, GCS, public URL, workstation upload,
S3 when versioned), *referenced* in place at run time (NFS, Redshift, Kubernetes volume, host path,
SQL, FSx, S3 when not versioned), or a *placeholder* (none) that a run's output fills.

Pure: no I/O and no DNS. Secrets are never part of a source: a source names a stored credential,
and URLs that embed a password or token are refused.

One module per family of sources (``git``, ``object_stores``, ``file_systems``, ``databases``,
``files``), ``matrix`` for which source each kind of repo may have and for checking any source,
``common`` and ``urls`` for the rules they share. This package exports the sources and the repo's
kind and versioning; the rules of one family are imported from its module.
"""

from __future__ import annotations

from .databases import RedshiftSource, SqlSource
from .file_systems import FsxSource, HostPathSource, NfsSource, VolumeSource
from .files import UploadSource, UrlSource
from .git import GitSource
from .matrix import NoSource, RepoKind, Source, Versioning, access, check_source
from .object_stores import GcsSource, S3Source

__all__ = [
    "FsxSource",
    "GcsSource",
    "GitSource",
    "HostPathSource",
    "NfsSource",
    "NoSource",
    "RedshiftSource",
    "RepoKind",
    "S3Source",
    "Source",
    "SqlSource",
    "UploadSource",
    "UrlSource",
    "Versioning",
    "VolumeSource",
    "access",
    "check_source",
]
