"""Build a blob store from a URL: ``file:///abs/path`` or ``s3://ACCESS:SECRET@host:port/bucket/prefix``.

S3 URLs take ``?secure=true|false`` (default false) and ``?region=NAME``. File URLs take
``?sync=version|off``: ``version`` (the default) syncs the file system before a version that
names new blobs commits; ``off`` leaves write-back to the OS, as dvc and git do (faster; a power
loss may then take the last seconds' blobs with it). Characters that
are special in URLs (``/``, ``@``, ``:`` ...) must be percent-encoded in the keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.s3 import S3BlobStore

DEFAULT_S3_PREFIX = "blobs/"

# S3's bucket naming rules, less the rarely relevant ones (no "..", not an IP address).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_S3_OPTIONS = frozenset({"secure", "region"})
_FILE_OPTIONS = frozenset({"sync"})


class BlobStoreURLError(ValueError):
    """A blob store URL is malformed; the message names the part that is wrong."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"invalid blob store URL {_redacted(url)!r}: {problem}")
        self.problem = problem


def _redacted(url: str) -> str:
    """The URL with any secret key replaced, so error messages and logs never carry it."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:)[^/@]*@", r"\1***@", url)


def open_blob_store(url: str) -> BlobStore:
    """The blob store ``url`` names, not yet opened: call ``await store.open()`` before use.

    Raises BlobStoreURLError (a ValueError) naming what is wrong with the URL.
    """
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise BlobStoreURLError(url, str(e)) from None
    if parts.scheme == "file":
        return _local_store(url, parts)
    if parts.scheme == "s3":
        return _s3_store(url, parts)
    scheme = repr(parts.scheme) if parts.scheme else "missing"
    raise BlobStoreURLError(url, f"scheme is {scheme}; expected 'file' or 's3'")


def _local_store(url: str, parts: SplitResult) -> LocalBlobStore:
    if parts.netloc not in ("", "localhost"):
        raise BlobStoreURLError(
            url, f"file URLs take no host (got {parts.netloc!r}); write file:///absolute/path")
    if parts.fragment:
        raise BlobStoreURLError(url, "file URLs take no fragment")
    path = unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise BlobStoreURLError(url, "the path must be an absolute directory other than /")
    return LocalBlobStore(Path(path), durable=_sync(url, _options(url, parts, _FILE_OPTIONS)))


def _options(url: str, parts: SplitResult, allowed: frozenset[str]) -> dict[str, list[str]]:
    try:
        options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise BlobStoreURLError(url, f"the query {parts.query!r} is malformed") from None
    unknown = sorted(set(options) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed))
        names = ", ".join(unknown)
        raise BlobStoreURLError(url, f"unknown option(s) {names}; {parts.scheme} URLs take {takes}")
    return options


def _sync(url: str, options: dict[str, list[str]]) -> bool:
    value = _single(url, "sync", options.get("sync", ["version"]))
    if value not in ("version", "off"):
        raise BlobStoreURLError(url, f"option sync={value!r} is not 'version' or 'off'")
    return value == "version"


def _s3_store(url: str, parts: SplitResult) -> S3BlobStore:
    if parts.fragment:
        raise BlobStoreURLError(url, "S3 URLs take no fragment")
    endpoint = _s3_endpoint(url, parts)
    access_key, secret_key = _s3_credentials(url, parts)
    bucket, prefix = _s3_location(url, parts)
    secure, region = _s3_options(url, parts)
    try:
        return S3BlobStore(endpoint, access_key, secret_key, bucket, prefix=prefix, secure=secure,
                           region=region)
    except ValueError as e:  # the SDK's own checks of the endpoint and region
        raise BlobStoreURLError(url, str(e)) from None


def _s3_endpoint(url: str, parts: SplitResult) -> str:
    if not parts.hostname:
        raise BlobStoreURLError(url, "the host is missing; write s3://ACCESS:SECRET@host:port/bucket")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise BlobStoreURLError(url, "the port is not a number between 1 and 65535")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}" if port else host


def _s3_credentials(url: str, parts: SplitResult) -> tuple[str, str]:
    if not parts.username:
        raise BlobStoreURLError(url, "the access key is missing; write s3://ACCESS:SECRET@host/bucket")
    if not parts.password:
        raise BlobStoreURLError(url, "the secret key is missing; write s3://ACCESS:SECRET@host/bucket")
    return unquote(parts.username), unquote(parts.password)


def _s3_location(url: str, parts: SplitResult) -> tuple[str, str]:
    bucket, _, rest = parts.path.lstrip("/").partition("/")
    if not bucket:
        raise BlobStoreURLError(url, "the bucket is missing; write s3://ACCESS:SECRET@host/bucket")
    if not _BUCKET.fullmatch(bucket):
        raise BlobStoreURLError(
            url, f"bucket {bucket!r} is not a valid S3 bucket name "
                 "(3-63 characters: lowercase letters, digits, '.', '-')")
    prefix = unquote(rest).strip("/")
    return bucket, f"{prefix}/" if prefix else DEFAULT_S3_PREFIX


def _s3_options(url: str, parts: SplitResult) -> tuple[bool, str | None]:
    options = _options(url, parts, _S3_OPTIONS)
    return _secure(url, options.get("secure", ["false"])), _region(url, options.get("region"))


def _single(url: str, name: str, values: list[str]) -> str:
    if len(values) != 1:
        raise BlobStoreURLError(url, f"option {name} is given {len(values)} times")
    return values[0]


def _secure(url: str, values: list[str]) -> bool:
    value = _single(url, "secure", values)
    if value.lower() not in _BOOLEANS:
        raise BlobStoreURLError(url, f"option secure={value!r} is not true or false")
    return _BOOLEANS[value.lower()]


def _region(url: str, values: list[str] | None) -> str | None:
    if values is None:
        return None
    region = _single(url, "region", values)
    if not region:
        raise BlobStoreURLError(url, "option region is empty")
    return region
