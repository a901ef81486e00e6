"""The rules every repo source shares (domain/sources: common, matrix): every address field obeys
the address rule, which source each kind of repo may have, how runs get its content, redaction."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from repo_source_checks import FSX_DNS, dataset, refused
from shipyard_repo.domain.sources import (
    FsxSource,
    GcsSource,
    GitSource,
    HostPathSource,
    NfsSource,
    NoSource,
    RedshiftSource,
    RepoKind,
    S3Source,
    Source,
    SqlSource,
    UploadSource,
    UrlSource,
    Versioning,
    VolumeSource,
    access,
    check_source,
)
from shipyard_repo.domain.sources.common import ALLOW_PRIVATE_ENV, check_host
from shipyard_repo.domain.sources.matrix import redacted

HOST = "repo.source.url.url.host"
OPERATOR_HINT = f"an operator can allow private addresses ({ALLOW_PRIVATE_ENV})"


# The rules themselves are the kit's (tests/kit/test_addresses.py); here, that every address field
# of every source obeys them and names the repo service's setting.


@pytest.mark.parametrize(("host", "problem"), [
    ("10.0.0.5", f"10.0.0.5 is a private address; {OPERATOR_HINT}"),
    ("2130706433", f"2130706433 (127.0.0.1) is a loopback address; {OPERATOR_HINT}"),
    ("nas.home.arpa", f"nas.home.arpa is an internal host name; {OPERATOR_HINT}"),
])
def test_private_hosts_name_the_private_sources_setting(host: str, problem: str) -> None:
    err = refused(check_host, "x.host", host, False)
    assert (err.field, err.problem) == ("x.host", problem)


@pytest.mark.parametrize("host", ["169.254.169.254", "metadata.google.internal", "0.0.0.0", "224.0.0.1"])
def test_metadata_and_the_like_are_never_a_source(host: str) -> None:
    err = refused(check_host, "x.host", host, True)
    assert err.problem.endswith("is never allowed") and ALLOW_PRIVATE_ENV not in err.problem


def test_hosts_come_back_canonical() -> None:
    assert check_host("x.host", "0x7f.1", True) == "127.0.0.1"
    assert check_host("x.host", "Example.COM.", False) == "example.com"


def test_a_loopback_url_names_the_host_field_and_the_operator_flag() -> None:
    err = refused(dataset, UrlSource("http://127.0.0.1/data.csv"))
    assert str(err) == (f"{HOST}: 127.0.0.1 is a loopback address; an operator can allow private addresses "
                        "(SHIPYARD_ALLOW_PRIVATE_SOURCES)")


@pytest.mark.parametrize(("make", "field"), [
    pytest.param(lambda h: UrlSource(f"https://{h}/data.zip"), "repo.source.url.url.host", id="url"),
    pytest.param(lambda h: GitSource(f"https://{h}/o/r.git"), "repo.source.git.url.host", id="git-https"),
    pytest.param(lambda h: GitSource(f"ssh://git@{h}/o/r.git"), "repo.source.git.url.host", id="git-ssh"),
    pytest.param(lambda h: GitSource(f"git@{h}:o/r.git"), "repo.source.git.url.host", id="git-scp"),
    pytest.param(lambda h: S3Source("data", endpoint=f"http://{h}:9000"), "repo.source.s3.endpoint.host",
                 id="s3-endpoint"),
    pytest.param(lambda h: RedshiftSource(endpoint=f"https://{h}:5439", database="dev"),
                 "repo.source.redshift.endpoint.host", id="redshift-endpoint"),
    pytest.param(lambda h: SqlSource("mysql", host=h, database="sales"), "repo.source.sql.host", id="sql"),
    pytest.param(lambda h: NfsSource(h, "/exports"), "repo.source.nfs.server", id="nfs"),
])
@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]", "169.254.169.254",
                                  "10.0.0.5", "localhost"])
def test_every_address_field_is_checked(make: object, field: str, host: str) -> None:
    assert callable(make)
    source = make(host)
    in_place = isinstance(source, SqlSource | NfsSource | RedshiftSource)
    versioning = Versioning.NONE if in_place else Versioning.DVS
    err = refused(dataset, source, versioning)
    assert err.field == field
    if host == "169.254.169.254":
        refused(dataset, source, versioning, allow_private=True)
    else:
        assert ALLOW_PRIVATE_ENV in err.problem
        dataset(source, versioning, allow_private=True)


SAMPLES: dict[str, Source] = {
    "git": GitSource("https://github.com/o/r.git"),
    "s3": S3Source("my-bucket", aws=True),
    "gcs": GcsSource("my-bucket"),
    "volume": VolumeSource("data"),
    "nfs": NfsSource("nfs.example.com", "/exports/data"),
    "hostpath": HostPathSource("/mnt/shared/data"),
    "redshift": RedshiftSource(database="dev"),
    "sql": SqlSource("mysql", host="db.example.com", port=3306, database="sales"),
    "fsx": FsxSource(FSX_DNS, "abcdef12", "fs-0123456789abcdef0"),
    "url": UrlSource("https://example.com/data.zip", extract=True),
    "upload": UploadSource("data.zip", extract=True),
    "none": NoSource(),
}
DVS, NONE = Versioning.DVS, Versioning.NONE
WITHOUT = "without versioning use one of nfs, redshift, volume, hostpath, sql, fsx, s3"
ALLOWED = {
    (RepoKind.CODE, NONE): {"git"},
    (RepoKind.CODE, DVS): set(),
    (RepoKind.FEATURESET, DVS): {"none", "upload"},
    (RepoKind.FEATURESET, NONE): set(),
    **{(k, DVS): {"git", "gcs", "url", "upload", "s3", "none"} for k in (RepoKind.DATASET, RepoKind.MODEL)},
    **{(k, NONE): {"nfs", "redshift", "volume", "hostpath", "sql", "fsx", "s3"}
       for k in (RepoKind.DATASET, RepoKind.MODEL)},
}
MATRIX = list(itertools.product(RepoKind, Versioning, SAMPLES))


def test_the_samples_cover_every_source_kind() -> None:
    assert {type(s) for s in SAMPLES.values()} == set(Source.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("kind", "versioning", "name"),
                         [m for m in MATRIX if m[2] in ALLOWED[m[0], m[1]]])
def test_allowed_combinations(kind: RepoKind, versioning: Versioning, name: str) -> None:
    assert check_source(kind, versioning, SAMPLES[name]) == SAMPLES[name]


@pytest.mark.parametrize(("kind", "versioning", "name"),
                         [m for m in MATRIX if m[2] not in ALLOWED[m[0], m[1]]])
def test_refused_combinations(kind: RepoKind, versioning: Versioning, name: str) -> None:
    err = refused(check_source, kind, versioning, SAMPLES[name])
    assert err.field in ("repo.source", "repo.versioning")
    if err.field == "repo.source":
        assert f"(got {name})" in err.problem or "use one of" in err.problem


@pytest.mark.parametrize(("kind", "versioning", "name", "message"), [
    (RepoKind.DATASET, DVS, "hostpath", "repo.source: a hostpath source is referenced in place and cannot be "
                                        "versioned; with DVS use one of git, gcs, s3, url, upload, none"),
    (RepoKind.MODEL, DVS, "nfs", "repo.source: an nfs source is referenced in place and cannot be versioned; "
                                 "with DVS use one of git, gcs, s3, url, upload, none"),
    (RepoKind.DATASET, NONE, "git", "repo.source: a git source is downloaded into versioned storage and "
                                    f"needs DVS versioning; {WITHOUT}"),
    (RepoKind.MODEL, NONE, "upload", "repo.source: an upload source is downloaded into versioned storage "
                                     f"and needs DVS versioning; {WITHOUT}"),
    (RepoKind.DATASET, NONE, "none", "repo.source: a none source is a placeholder for versioned run outputs "
                                     f"and needs DVS versioning; {WITHOUT}"),
    (RepoKind.CODE, DVS, "git", "repo.versioning: code repos are versioned by git, not DVS; use versioning "
                                "NONE"),
    (RepoKind.CODE, NONE, "s3", "repo.source: a code repo's source must be git (got s3)"),
    (RepoKind.FEATURESET, NONE, "none", "repo.versioning: featuresets are always versioned with DVS"),
    (RepoKind.FEATURESET, DVS, "git", "repo.source: a featureset starts empty or from an uploaded file (its "
                                      "spec is uploaded separately); use one of none, upload (got git)"),
])
def test_refusals_say_what_is_allowed(kind: RepoKind, versioning: Versioning, name: str,
                                      message: str) -> None:
    assert str(refused(check_source, kind, versioning, SAMPLES[name])) == message


def test_the_combination_is_checked_before_the_fields() -> None:
    err = refused(check_source, RepoKind.DATASET, DVS, HostPathSource("relative"))
    assert err.field == "repo.source"


@pytest.mark.parametrize(("name", "versioning", "expected"), [
    *[(n, DVS, "downloaded") for n in ("git", "gcs", "s3", "url", "upload")],
    ("git", NONE, "downloaded"),  # code repos: cloned at the run's commit, never referenced
    *[(n, NONE, "referenced") for n in ("nfs", "redshift", "volume", "hostpath", "sql", "fsx", "s3")],
    ("none", DVS, "placeholder"),
])
def test_access(name: str, versioning: Versioning, expected: str) -> None:
    assert access(SAMPLES[name], versioning) == expected


def test_check_source_refuses_what_is_not_a_source() -> None:
    with pytest.raises(TypeError):
        check_source(RepoKind.DATASET, DVS, "s3://bucket")  # type: ignore[arg-type]


def test_sources_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SAMPLES["git"].url = "https://evil.example.com/o/r"  # type: ignore[union-attr,misc]


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param(GitSource("https://user:secret@github.com/o/r.git"), GitSource("https://github.com/o/r.git"),
                 id="git-https-password"),
    pytest.param(GitSource("https://ghp_token@github.com/o/r.git"), GitSource("https://github.com/o/r.git"),
                 id="git-https-token"),
    pytest.param(GitSource("https://a:b@c@example.com/o/r"), GitSource("https://example.com/o/r"),
                 id="git-https-at-in-password"),
    pytest.param(GitSource("ssh://git:secret@github.com/o/r.git"), GitSource("ssh://git@github.com/o/r.git"),
                 id="git-ssh-keeps-user"),
    pytest.param(GitSource("git@github.com:o/r.git"), GitSource("git@github.com:o/r.git"), id="git-scp"),
    pytest.param(GitSource("https://github.com/o/r.git", credential="gh"),
                 GitSource("https://github.com/o/r.git", credential="gh"), id="git-clean"),
    pytest.param(S3Source("b", endpoint="https://key:secret@minio.example.com:9000"),
                 S3Source("b", endpoint="https://minio.example.com:9000"), id="s3-endpoint"),
    pytest.param(RedshiftSource(endpoint="https://u:p@cluster.example.com:5439", database="dev"),
                 RedshiftSource(endpoint="https://cluster.example.com:5439", database="dev"), id="redshift"),
    pytest.param(UrlSource("https://u:p@example.com/d.zip?sig=1"), UrlSource("https://example.com/d.zip?sig=1"),
                 id="url"),
    pytest.param(SqlSource("mysql", connection="odbc", dsn="Server=db;UID=bob;PWD=secret;Database=x"),
                 SqlSource("mysql", connection="odbc", dsn="Server=db;UID=bob;PWD=***;Database=x"),
                 id="odbc"),
    pytest.param(SqlSource("mssql", connection="odbc", dsn="Server=db;Password={a;b};X=1"),
                 SqlSource("mssql", connection="odbc", dsn="Server=db;Password=***;X=1"), id="odbc-braces"),
    pytest.param(SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://bob:pw@db/x?password=pw&ssl=1"),
                 SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/x?password=***&ssl=1"),
                 id="jdbc"),
    pytest.param(SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:scott/tiger@db:1521:orcl"),
                 SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:scott@db:1521:orcl"),
                 id="jdbc-oracle"),
    pytest.param(NoSource(), NoSource(), id="none"),
    pytest.param(HostPathSource("/data"), HostPathSource("/data"), id="hostpath"),
])
def test_redacted_strips_secrets_from_urls_and_dsns(source: Source, expected: Source) -> None:
    assert redacted(source) == expected


@pytest.mark.parametrize("name", list(SAMPLES))
def test_checked_sources_need_no_redaction(name: str) -> None:
    assert redacted(SAMPLES[name]) == SAMPLES[name]
