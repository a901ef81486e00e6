"""The rules of S3 and GCS sources (domain/sources/object_stores.py)."""

from __future__ import annotations

import pytest
from repo_source_checks import dataset, refused
from shipyard_repo.domain.sources import (
    GcsSource,
    S3Source,
    Versioning,
)

VPCE = "bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com"


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param(S3Source("my-bucket", aws=True), S3Source("my-bucket", aws=True), id="aws"),
    pytest.param(S3Source("examples", prefix="/mnist/dataset/", aws=True, region="us-east-1",
                          credential="aws"),
                 S3Source("examples", prefix="mnist/dataset", aws=True, region="us-east-1",
                          credential="aws"),
                 id="aws-prefix-region"),
    pytest.param(S3Source("a.b-c", aws=True, region="us-gov-west-1"),
                 S3Source("a.b-c", aws=True, region="us-gov-west-1"), id="aws-gov-region"),
    pytest.param(S3Source("abc", endpoint="https://minio.example.com:9000", region="site-a"),
                 S3Source("abc", endpoint="https://minio.example.com:9000", region="site-a"), id="minio"),
    pytest.param(S3Source("abc", endpoint="http://minio.example.com/"),
                 S3Source("abc", endpoint="http://minio.example.com/"), id="minio-http-slash"),
    pytest.param(S3Source("abc", endpoint=f"https://{VPCE}", aws=True),
                 S3Source("abc", endpoint=f"https://{VPCE}", aws=True), id="aws-vpc-endpoint"),
    pytest.param(S3Source("b" * 63, aws=True), S3Source("b" * 63, aws=True), id="63-chars"),
])
@pytest.mark.parametrize("versioning", [Versioning.DVS, Versioning.NONE])
def test_good_s3_sources(source: S3Source, expected: S3Source, versioning: Versioning) -> None:
    assert dataset(source, versioning) == expected


def test_s3_on_a_private_minio_needs_the_operator_flag() -> None:
    source = S3Source("abc", endpoint="http://localhost:9000")
    assert refused(dataset, source).field == "repo.source.s3.endpoint.host"
    assert dataset(source, allow_private=True) == source


@pytest.mark.parametrize(("source", "field", "problem"), [
    pytest.param(S3Source("", aws=True), "bucket", "must not be empty", id="empty"),
    pytest.param(S3Source("ab", aws=True), "bucket", "3 to 63", id="short"),
    pytest.param(S3Source("a" * 64, aws=True), "bucket", "3 to 63", id="long"),
    pytest.param(S3Source("My-Bucket", aws=True), "bucket", "lower-case", id="upper"),
    pytest.param(S3Source("my_bucket", aws=True), "bucket", "lower-case", id="underscore"),
    pytest.param(S3Source("-bucket", aws=True), "bucket", "start and end", id="leading-dash"),
    pytest.param(S3Source("bucket.", aws=True), "bucket", "start and end", id="trailing-dot"),
    pytest.param(S3Source("a..b", aws=True), "bucket", "'..'", id="double-dot"),
    pytest.param(S3Source("a.-b", aws=True), "bucket", "'.-'", id="dot-dash"),
    pytest.param(S3Source("a-.b", aws=True), "bucket", "'-.'", id="dash-dot"),
    pytest.param(S3Source("192.168.5.4", aws=True), "bucket", "IP address", id="ip"),
    pytest.param(S3Source("xn--bucket", aws=True), "bucket", "reserves", id="xn-prefix"),
    pytest.param(S3Source("sthree-bucket", aws=True), "bucket", "reserves", id="sthree-prefix"),
    pytest.param(S3Source("amzn-s3-demo-bucket", aws=True), "bucket", "reserves", id="demo-prefix"),
    pytest.param(S3Source("bucket-s3alias", aws=True), "bucket", "reserves", id="alias-suffix"),
    pytest.param(S3Source("bucket--ol-s3", aws=True), "bucket", "reserves", id="ol-suffix"),
    pytest.param(S3Source("bucket.mrap", aws=True), "bucket", "reserves", id="mrap-suffix"),
    pytest.param(S3Source("bucket--x-s3", aws=True), "bucket", "reserves", id="express-suffix"),
    pytest.param(S3Source("bucket--table-s3", aws=True), "bucket", "reserves", id="table-suffix"),
    pytest.param(S3Source("abc"), "endpoint", "required unless aws", id="no-endpoint"),
    pytest.param(S3Source("abc", endpoint="minio.example.com:9000"), "endpoint", "http:// or https://",
                 id="endpoint-no-scheme"),
    pytest.param(S3Source("abc", endpoint="ftp://minio.example.com"), "endpoint", "http:// or https://",
                 id="endpoint-ftp"),
    pytest.param(S3Source("abc", endpoint="https://minio.example.com/abc"), "endpoint", "only scheme, host",
                 id="endpoint-path"),
    pytest.param(S3Source("abc", endpoint="https://minio.example.com?x=1"), "endpoint", "only scheme, host",
                 id="endpoint-query"),
    pytest.param(S3Source("abc", endpoint="https://key:secret@minio.example.com"), "endpoint",
                 "must not embed a password", id="endpoint-password"),
    pytest.param(S3Source("abc", endpoint="https://key@minio.example.com"), "endpoint",
                 "must not embed a user name", id="endpoint-user"),
    pytest.param(S3Source("abc", aws=True, region="US-EAST-1"), "region", "not a region",
                 id="aws-region-upper"),
    pytest.param(S3Source("abc", aws=True, region="useast1"), "region", "not a region",
                 id="aws-region-shape"),
    pytest.param(S3Source("abc", endpoint="https://m.example.com", region="a b"), "region", "not a region",
                 id="minio-region-space"),
    pytest.param(S3Source("abc", aws=True, prefix="a/../b"), "prefix", "'..'", id="prefix-dotdot"),
    pytest.param(S3Source("abc", aws=True, prefix="a" * 1025), "prefix", "at most 1024", id="prefix-long"),
    pytest.param(S3Source("abc", aws=True, credential="a/b"), "credential", "'/'", id="credential"),
])
def test_bad_s3_sources(source: S3Source, field: str, problem: str) -> None:
    err = refused(dataset, source, Versioning.NONE)
    assert err.field == f"repo.source.s3.{field}"
    assert problem in err.problem


@pytest.mark.parametrize(("source", "expected"), [
    (GcsSource("my-bucket"), GcsSource("my-bucket")),
    (GcsSource("my_bucket.example.com", prefix="/a/b/", credential="gcp-key"),
     GcsSource("my_bucket.example.com", prefix="a/b", credential="gcp-key")),
    (GcsSource("a" * 63), GcsSource("a" * 63)),
    (GcsSource(".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 30])),
     GcsSource(".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 30]))),
])
def test_good_gcs_sources(source: GcsSource, expected: GcsSource) -> None:
    assert dataset(source) == expected


@pytest.mark.parametrize(("source", "field", "problem"), [
    pytest.param(GcsSource(""), "bucket", "must not be empty", id="empty"),
    pytest.param(GcsSource("ab"), "bucket", "3 to 63", id="short"),
    pytest.param(GcsSource("a" * 64), "bucket", "3 to 63", id="long"),
    pytest.param(GcsSource("a." + "b" * 221), "bucket", "3 to 222", id="dotted-long"),
    pytest.param(GcsSource("a" * 64 + ".com"), "bucket", "1 to 63", id="dotted-part-long"),
    pytest.param(GcsSource("a..b"), "bucket", "1 to 63", id="empty-part"),
    pytest.param(GcsSource("Bucket"), "bucket", "lower-case", id="upper"),
    pytest.param(GcsSource("_bucket"), "bucket", "start and end", id="leading-underscore"),
    pytest.param(GcsSource("10.0.0.1"), "bucket", "IP address", id="ip"),
    pytest.param(GcsSource("goog-data"), "bucket", "goog", id="goog-prefix"),
    pytest.param(GcsSource("my-google-data"), "bucket", "google", id="google"),
    pytest.param(GcsSource("my-g00gle-data"), "bucket", "google", id="g00gle"),
    pytest.param(GcsSource("abc", prefix="a//b"), "prefix", "'//'", id="prefix"),
    pytest.param(GcsSource("abc", credential="bad name"), "credential", "letters", id="credential"),
])
def test_bad_gcs_sources(source: GcsSource, field: str, problem: str) -> None:
    err = refused(dataset, source)
    assert err.field == f"repo.source.gcs.{field}"
    assert problem in err.problem
