"""File sources, downloaded into versioned storage: a file at a public URL or one uploaded from the
user's workstation, either unpacked when it is an archive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shipyard.kit.errors import InvalidArgument

from ..names import check_text
from .common import required, source_field
from .urls import check_web_url

FILENAME_MAX = 255
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")


@dataclass(frozen=True)
class UrlSource:
    """A file at a public http(s) URL; ``extract`` unpacks it when it is an archive."""

    KIND: ClassVar[str] = "url"
    url: str
    extract: bool = False


@dataclass(frozen=True)
class UploadSource:
    """A file uploaded from the user's workstation; ``extract`` unpacks an archive."""

    KIND: ClassVar[str] = "upload"
    filename: str
    extract: bool = False


def check_url_source(source: UrlSource, allow_private: bool) -> UrlSource:
    """A public URL. ``extract`` is not checked against the name: many download URLs hide it."""
    check_web_url(source_field("url", "url"), source.url, allow_private, credential_field=None)
    return source


def check_upload(source: UploadSource) -> UploadSource:
    """An upload checked: a file name, not a path, and an archive when it is to be extracted."""
    field = source_field("upload", "filename")
    required(field, source.filename)
    check_text(field, source.filename, FILENAME_MAX, multiline=False)
    if "/" in source.filename or "\\" in source.filename or source.filename in (".", ".."):
        raise InvalidArgument(field, "must be a file name, not a path")
    if source.extract and not source.filename.lower().endswith(ARCHIVE_SUFFIXES):
        raise InvalidArgument(
            source_field("upload", "extract"),
            f"only an archive can be extracted: {', '.join(ARCHIVE_SUFFIXES)}",
        )
    return source
