"""The rules of public URL and upload sources (domain/sources/files.py)."""

from __future__ import annotations

import pytest
from repo_source_checks import dataset, refused
from shipyard_repo.domain.sources import (
    UploadSource,
    UrlSource,
)


@pytest.mark.parametrize("source", [
    UrlSource("https://example.com/data.csv"),
    UrlSource("http://example.com/data.tar.gz", extract=True),
    UrlSource("https://example.com/download?id=3", extract=True),
    UrlSource("https://[2606:4700::1111]:8443/d.zip"),
    UrlSource("https://8.8.8.8/d.zip"),
])
def test_good_urls(source: UrlSource) -> None:
    assert dataset(source) == source


@pytest.mark.parametrize(("url", "problem"), [
    ("", "must not be empty"),
    ("example.com/data.csv", "http:// or https://"),
    ("ftp://example.com/data.csv", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://example.com/", "http:// or https://"),
    ("https:///data.csv", "http:// or https://"),
    ("https://user:pw@example.com/d.csv", "must not embed a password; the URL must work without one"),
    ("https://user@example.com/d.csv", "must not embed a user name"),
    ("https://example.com/a b", "spaces"),
    ("https://example.com\\@127.0.0.1/", "'\\'"),
    ("https://example.com/" + "a" * 2048, "at most 2048"),
    ("http://0x7f.1/", "0x7f.1 (127.0.0.1) is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 (IPv4-mapped 127.0.0.1) is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata service"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
])
def test_bad_urls(url: str, problem: str) -> None:
    err = refused(dataset, UrlSource(url))
    assert err.field.startswith("repo.source.url.url")
    assert problem in err.problem


@pytest.mark.parametrize("source", [
    UploadSource("data.csv"), UploadSource("data.zip", extract=True), UploadSource("d.TAR", extract=True),
    UploadSource("d.tar.gz", extract=True), UploadSource("d.TGZ", extract=True), UploadSource("d.zip"),
    UploadSource("my data (1).csv"), UploadSource("x" * 255),
])
def test_good_uploads(source: UploadSource) -> None:
    assert dataset(source) == source


@pytest.mark.parametrize(("source", "field"), [
    (UploadSource(""), "filename"), (UploadSource("a/b.csv"), "filename"),
    (UploadSource("a\\b.csv"), "filename"), (UploadSource(".."), "filename"), (UploadSource("."), "filename"),
    (UploadSource("a\x00.csv"), "filename"), (UploadSource("x" * 256), "filename"),
    (UploadSource("data.csv", extract=True), "extract"), (UploadSource("data.gz", extract=True), "extract"),
    (UploadSource("data.tar.bz2", extract=True), "extract"),
])
def test_bad_uploads(source: UploadSource, field: str) -> None:
    assert refused(dataset, source).field == f"repo.source.upload.{field}"
