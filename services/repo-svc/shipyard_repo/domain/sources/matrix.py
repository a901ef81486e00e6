"""The kind x versioning matrix: which sources a repo of each kind may have with or without DVS
versioning, how runs get the content of each (downloaded, referenced or a placeholder), and
checking or redacting any source by its kind."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import ClassVar, Literal, TypeAlias, get_args

from shipyard.kit.errors import InvalidArgument

from .common import SOURCE_FIELD
from .databases import RedshiftSource, SqlSource, check_redshift, check_sql, redact_dsn
from .file_systems import (
    FsxSource,
    HostPathSource,
    NfsSource,
    VolumeSource,
    check_fsx,
    check_hostpath,
    check_nfs,
    check_volume,
)
from .files import UploadSource, UrlSource, check_upload, check_url_source
from .git import GitSource, check_git
from .object_stores import GcsSource, S3Source, check_gcs, check_s3
from .urls import strip_password, strip_userinfo

Access = Literal["downloaded", "referenced", "placeholder"]
VERSIONING_FIELD = "repo.versioning"


class RepoKind(Enum):
    """What a repo holds."""

    CODE = "code"
    DATASET = "dataset"
    FEATURESET = "featureset"
    MODEL = "model"


class Versioning(Enum):
    """Whether Shipyard versions the repo's content (DVS) or leaves that to the source (NONE)."""

    NONE = "none"
    DVS = "dvs"


@dataclass(frozen=True)
class NoSource:
    """A placeholder: version 1 is empty and a run's output writes the next versions."""

    KIND: ClassVar[str] = "none"


Source: TypeAlias = (
    GitSource
    | S3Source
    | GcsSource
    | VolumeSource
    | NfsSource
    | HostPathSource
    | RedshiftSource
    | SqlSource
    | FsxSource
    | UrlSource
    | UploadSource
    | NoSource
)

_SOURCE_TYPES: tuple[type, ...] = get_args(Source)
# Message order is the order users see in the console's drop-down.
DOWNLOADED_KINDS = ("git", "gcs", "s3", "url", "upload", "none")
REFERENCED_KINDS = ("nfs", "redshift", "volume", "hostpath", "sql", "fsx", "s3")
FEATURESET_KINDS = ("none", "upload")
_AN = frozenset({"s3", "upload", "nfs", "sql", "fsx"})  # read letter by letter or vowel-first


def check_source(
    kind: RepoKind, versioning: Versioning, source: Source, *, allow_private: bool = False
) -> Source:
    """The source, checked and normalized for a repo of ``kind`` with ``versioning``.

    Normalized: git tree/blob/archive URLs become clone URL + branch/commit + path, commits are
    lower case, sub-paths lose leading and trailing '/', a direct SQL connection gets its
    provider's default port. ``allow_private`` is the operator's SHIPYARD_ALLOW_PRIVATE_SOURCES.
    """
    if not isinstance(source, _SOURCE_TYPES):
        raise TypeError(f"not a repo source: {source!r}")
    _check_combination(kind, versioning, source.KIND)
    return _check_fields(source, allow_private)


def access(source: Source, versioning: Versioning) -> Access:
    """How runs get the content: copied into versioned storage, used in place, or nothing yet."""
    if isinstance(source, NoSource):
        return "placeholder"
    if isinstance(source, S3Source):
        return "downloaded" if versioning is Versioning.DVS else "referenced"
    return "downloaded" if source.KIND in DOWNLOADED_KINDS else "referenced"


def _a(kind: str) -> str:
    return f"{'an' if kind in _AN else 'a'} {kind}"


def _check_combination(kind: RepoKind, versioning: Versioning, source_kind: str) -> None:
    if kind is RepoKind.CODE:
        if versioning is Versioning.DVS:
            raise InvalidArgument(
                VERSIONING_FIELD, "code repos are versioned by git, not DVS; use versioning NONE"
            )
        if source_kind != "git":
            raise InvalidArgument(SOURCE_FIELD, f"a code repo's source must be git (got {source_kind})")
        return
    if kind is RepoKind.FEATURESET:
        if versioning is not Versioning.DVS:
            raise InvalidArgument(VERSIONING_FIELD, "featuresets are always versioned with DVS")
        if source_kind not in FEATURESET_KINDS:
            raise InvalidArgument(
                SOURCE_FIELD,
                "a featureset starts empty or from an uploaded file (its "
                "spec is uploaded separately); use one of none, upload "
                f"(got {source_kind})",
            )
        return
    if versioning is Versioning.DVS and source_kind not in DOWNLOADED_KINDS:
        raise InvalidArgument(
            SOURCE_FIELD,
            f"{_a(source_kind)} source is referenced in place and cannot be "
            f"versioned; with DVS use one of {', '.join(DOWNLOADED_KINDS)}",
        )
    if versioning is Versioning.NONE and source_kind not in REFERENCED_KINDS:
        why = (
            "is a placeholder for versioned run outputs"
            if source_kind == "none"
            else "is downloaded into versioned storage"
        )
        raise InvalidArgument(
            SOURCE_FIELD,
            f"{_a(source_kind)} source {why} and needs DVS versioning; "
            f"without versioning use one of {', '.join(REFERENCED_KINDS)}",
        )


def _check_fields(source: Source, allow_private: bool) -> Source:
    match source:
        case GitSource():
            return check_git(source, allow_private)
        case S3Source():
            return check_s3(source, allow_private)
        case GcsSource():
            return check_gcs(source)
        case VolumeSource():
            return check_volume(source)
        case NfsSource():
            return check_nfs(source, allow_private)
        case HostPathSource():
            return check_hostpath(source)
        case RedshiftSource():
            return check_redshift(source, allow_private)
        case SqlSource():
            return check_sql(source, allow_private)
        case FsxSource():
            return check_fsx(source, allow_private)
        case UrlSource():
            return check_url_source(source, allow_private)
        case UploadSource():
            return check_upload(source)
        case NoSource():
            return source
    raise TypeError(f"not a repo source: {source!r}")


def redacted(source: Source) -> Source:
    """The source safe to show or log: no user information in URLs, no passwords in DSNs.

    Checked sources carry no secrets (they name a credential), so this changes only sources that
    never passed ``check_source``. An ssh URL keeps its user name (it is needed and not secret).
    """
    match source:
        case GitSource():
            is_ssh = source.url.lower().startswith("ssh://")
            return replace(source, url=strip_password(source.url) if is_ssh else strip_userinfo(source.url))
        case S3Source():
            return replace(source, endpoint=strip_userinfo(source.endpoint))
        case RedshiftSource():
            return replace(source, endpoint=strip_userinfo(source.endpoint))
        case UrlSource():
            return replace(source, url=strip_userinfo(source.url))
        case SqlSource():
            return replace(source, dsn=redact_dsn(source.dsn))
    return source
