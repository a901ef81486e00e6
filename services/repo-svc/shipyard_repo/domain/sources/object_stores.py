"""Object store sources: a bucket and folder on AWS S3 (or an S3-compatible server such as MinIO)
or on Google Cloud Storage."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import ClassVar

from shipyard.kit.errors import InvalidArgument

from .common import check_credential, check_subpath, required, source_field
from .urls import check_web_url

S3_PREFIX_MAX = 1024


@dataclass(frozen=True)
class S3Source:
    """A bucket (and folder ``prefix``) on AWS S3 or an S3-compatible server such as MinIO."""

    KIND: ClassVar[str] = "s3"
    bucket: str
    prefix: str = ""
    endpoint: str = ""
    aws: bool = False
    region: str = ""
    credential: str = ""


@dataclass(frozen=True)
class GcsSource:
    """A Google Cloud Storage bucket and folder ``prefix``."""

    KIND: ClassVar[str] = "gcs"
    bucket: str
    prefix: str = ""
    credential: str = ""


_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_AWS_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]+")
_OTHER_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_DOTTED_QUAD = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_GCS_GOOGLE = re.compile(r"g[o0][o0]g[l1]e")


def _check_s3_bucket(field: str, bucket: str) -> str:
    """An S3 bucket name (general purpose bucket rules; MinIO applies the same)."""
    required(field, bucket)
    if not 3 <= len(bucket) <= 63:
        raise InvalidArgument(field, f"must be 3 to 63 characters (got {len(bucket)})")
    if not _S3_BUCKET.fullmatch(bucket):
        raise InvalidArgument(
            field,
            "may contain only lower-case letters, digits, '.' and '-', and must "
            "start and end with a letter or digit",
        )
    for seq in ("..", ".-", "-."):
        if seq in bucket:
            raise InvalidArgument(field, f"must not contain {seq!r}")
    if _DOTTED_QUAD.fullmatch(bucket):
        raise InvalidArgument(field, "must not look like an IP address")
    if bucket.startswith(_S3_RESERVED_PREFIXES) or bucket.endswith(_S3_RESERVED_SUFFIXES):
        raise InvalidArgument(field, f"{bucket!r} uses a prefix or suffix that S3 reserves")
    return bucket


def check_s3(source: S3Source, allow_private: bool) -> S3Source:
    """An S3 source checked: bucket name, folder, an endpoint unless on AWS, region; the prefix normalized."""
    _check_s3_bucket(source_field("s3", "bucket"), source.bucket)
    prefix = check_subpath(source_field("s3", "prefix"), source.prefix, S3_PREFIX_MAX)
    endpoint_field = source_field("s3", "endpoint")
    if source.endpoint:
        check_web_url(
            endpoint_field,
            source.endpoint,
            allow_private,
            credential_field=source_field("s3", "credential"),
            endpoint=True,
        )
    elif not source.aws:
        raise InvalidArgument(
            endpoint_field, "is required unless aws is set (e.g. https://minio.example.com:9000)"
        )
    _check_region(source_field("s3", "region"), source.region, source.aws)
    check_credential(source_field("s3", "credential"), source.credential)
    return replace(source, prefix=prefix)


def _check_region(field: str, region: str, aws: bool) -> None:
    if not region:
        return
    pattern, example = (_AWS_REGION, "us-east-1") if aws else (_OTHER_REGION, "us-east-1 or site-a")
    if not pattern.fullmatch(region):
        raise InvalidArgument(field, f"{region!r} is not a region name (e.g. {example})")


def _check_gcs_bucket(field: str, bucket: str) -> str:
    """A Cloud Storage bucket name."""
    required(field, bucket)
    limit = 222 if "." in bucket else 63
    if not 3 <= len(bucket) <= limit:
        raise InvalidArgument(field, f"must be 3 to {limit} characters (got {len(bucket)})")
    if not _GCS_BUCKET.fullmatch(bucket):
        raise InvalidArgument(
            field,
            "may contain only lower-case letters, digits, '-', '_' and '.', and "
            "must start and end with a letter or digit",
        )
    if any(not 1 <= len(part) <= 63 for part in bucket.split(".")):
        raise InvalidArgument(field, "each dot-separated part must be 1 to 63 characters")
    if _DOTTED_QUAD.fullmatch(bucket):
        raise InvalidArgument(field, "must not look like an IP address")
    if bucket.startswith("goog") or _GCS_GOOGLE.search(bucket):
        raise InvalidArgument(field, "must not start with 'goog' or contain 'google' or a look-alike")
    return bucket


def check_gcs(source: GcsSource) -> GcsSource:
    """A GCS source checked: bucket name and folder; the prefix normalized."""
    _check_gcs_bucket(source_field("gcs", "bucket"), source.bucket)
    prefix = check_subpath(source_field("gcs", "prefix"), source.prefix, S3_PREFIX_MAX)
    check_credential(source_field("gcs", "credential"), source.credential)
    return replace(source, prefix=prefix)
