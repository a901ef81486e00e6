"""The pure rules of repo sources (domain/sources.py)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from shipyard_repo.domain.sources import (
    ALLOW_PRIVATE_ENV,
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
    check_branch,
    check_commit,
    check_host,
    check_mount_path,
    check_source,
    normalize_git,
    redacted,
    sql_config,
)

from shipyard.kit.errors import InvalidArgument

HOST = "repo.source.url.url.host"
OPERATOR_HINT = f"an operator can allow private addresses ({ALLOW_PRIVATE_ENV})"
SHA1 = "0123456789abcdef0123456789abcdef01234567"
SHA256 = "0123456789abcdef" * 4
VPCE = "bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com"
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def refused(fn: object, *args: object, **kwargs: object) -> InvalidArgument:
    """The InvalidArgument that calling ``fn`` raises."""
    assert callable(fn)
    with pytest.raises(InvalidArgument) as info:
        fn(*args, **kwargs)
    return info.value


def dataset(source: Source, versioning: Versioning = Versioning.DVS, allow_private: bool = False) -> Source:
    return check_source(RepoKind.DATASET, versioning, source, allow_private=allow_private)


def referenced(source: Source, allow_private: bool = False) -> Source:
    return dataset(source, Versioning.NONE, allow_private)


def code(source: GitSource, allow_private: bool = False) -> Source:
    return check_source(RepoKind.CODE, Versioning.NONE, source, allow_private=allow_private)


# ---------------------------------------------------------------------------------------------
# Address safety

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


# ---------------------------------------------------------------------------------------------
# Git


@pytest.mark.parametrize("url", [
    "https://github.com/owner/repo",
    "https://github.com/owner/repo.git",
    "https://gitlab.example.com:8443/group/sub/project.git",
    "http://git.example.com/team/repo.git",
    "https://alice@bitbucket.org/ws/repo.git",
    "https://dev.azure.com/org/project/_git/repo",
    "git@github.com:owner/repo.git",
    "git@gitlab.com:group/sub/project",
    "git@[2606:4700::1111]:owner/repo.git",
    "ssh://git@github.com/owner/repo.git",
    "ssh://git@git.example.com:2222/owner/repo.git",
    "ssh://git.example.com/srv/git/repo.git",
])
def test_good_git_urls(url: str) -> None:
    assert isinstance(code(GitSource(url)), GitSource)


@pytest.mark.parametrize(("url", "problem"), [
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("ftp://example.com/repo.git", "must be an https://", id="ftp"),
    pytest.param("git://user@github.com/owner/repo.git", "the git protocol does not authenticate",
                 id="git-protocol-with-user"),
    pytest.param("git://127.0.0.1/repo.git", "loopback", id="git-protocol-loopback"),
    pytest.param("ext::sh -c touch% /tmp/pwned", "must be an https://", id="ext-transport"),
    pytest.param("/srv/git/repo.git", "must be an https://", id="bare-path"),
    pytest.param("C:\\repos\\r", "must be an https://", id="windows-path"),
    pytest.param("github.com:owner/repo", "must be an https://", id="scp-without-user"),
    pytest.param("https://github.com/", "must name a repository", id="no-repo"),
    pytest.param("https://github.com/owner", "must name a repository", id="owner-only"),
    pytest.param("https://example.com", "must name a repository", id="host-only"),
    pytest.param("https://example.com/-upload-pack", "must not start with '-'", id="dash-path"),
    pytest.param("https://github.com/owner/repo with space", "must not contain spaces", id="space"),
    pytest.param("https://github.com/owner/repo\\x", "must not contain '\\'", id="backslash"),
    pytest.param("https://evil.example\\@github.com/o/r", "must not contain '\\'", id="backslash-userinfo"),
    pytest.param("https://github.com:99999/o/r", "is not a valid URL", id="port-too-big"),
    pytest.param("https://github.com:0/o/r", "port must be between 1 and 65535", id="port-zero"),
    pytest.param("https://[::1/o/r", "is not a valid URL", id="broken-bracket"),
    pytest.param("https://github.com/o/r\n", "control characters", id="newline"),
    pytest.param("https://user:secret@github.com/o/r.git", "must not embed a password", id="password"),
    pytest.param("https://user:@github.com/o/r.git", "must not embed a password", id="empty-password"),
    pytest.param("https://x-access-token:ghs_abc@github.com/o/r", "must not embed a password",
                 id="app-token"),
    pytest.param("https://ghp_0123456789abcdef@github.com/o/r", "must not embed an access token",
                 id="token-user"),
    pytest.param("https://glpat-xyz@gitlab.com/g/p.git", "must not embed an access token",
                 id="gitlab-token"),
    pytest.param("https://" + "a" * 40 + "@example.com/o/r", "must not embed an access token",
                 id="long-user"),
    pytest.param("ssh://git:secret@github.com/o/r.git", "must not embed a password", id="ssh-password"),
    pytest.param("-oProxyCommand=touch@host:o/r", "must not start with '-'", id="scp-option-user"),
    pytest.param("ssh://-oProxyCommand=x@host/o/r", "must not start with '-'", id="ssh-option-user"),
    pytest.param("git@github.com:-upload-pack", "must not start with '-'", id="scp-option-path"),
    pytest.param("git@github.com:", "must name a repository", id="scp-no-path"),
    pytest.param("ssh://git@github.com/", "must name a repository", id="ssh-no-path"),
    pytest.param("ssh://git@github.com/o/r?x=1", "must not have a query", id="ssh-query"),
    pytest.param("https://127.0.0.1/o/r.git", "is a loopback address", id="loopback"),
    pytest.param("git@localhost:o/r.git", "is a loopback name", id="scp-localhost"),
    pytest.param("ssh://git@[::1]/o/r.git", "is a loopback address", id="ssh-ipv6-loopback"),
    pytest.param("https://github.com/owner/repo/issues/3", "is a GitHub page", id="github-issue"),
    pytest.param("https://github.com/owner/repo/tree", "is a GitHub page", id="github-tree-no-ref"),
    pytest.param("https://github.com/owner/repo/archive/refs/heads/main.7z", "an archive URL must end",
                 id="github-archive-7z"),
    pytest.param("https://gitlab.com/group/project/-/issues/3", "is a GitLab page", id="gitlab-issue"),
    pytest.param("https://gitlab.com/project/-/tree/main", "must name a project", id="gitlab-no-group"),
    pytest.param("https://gitlab.com/g/p/-/archive/main", "is a GitLab page", id="gitlab-archive-no-file"),
    pytest.param("https://bitbucket.org/ws/repo/pull-requests/1", "is a Bitbucket page", id="bitbucket-pr"),
    pytest.param("https://bitbucket.org/ws/repo/get/main.rar", "an archive URL must end", id="bitbucket-rar"),
])
def test_bad_git_urls(url: str, problem: str) -> None:
    err = refused(code, GitSource(url))
    assert err.field.startswith("repo.source.git.url")
    assert problem in err.problem


@pytest.mark.parametrize("url", ["https://user:secret@github.com/o/r.git", "ssh://git:pw@github.com/o/r.git",
                                 "https://ghp_0123456789abcdef@github.com/o/r"])
def test_embedded_secrets_point_to_the_credential_field(url: str) -> None:
    assert "store" in refused(code, GitSource(url)).problem
    assert "repo.source.git.credential" in refused(code, GitSource(url)).problem


@pytest.mark.parametrize("url", ["file:///srv/git/repo.git", "file:///tmp/r"])
def test_file_urls_need_the_operator_flag(url: str) -> None:
    err = refused(code, GitSource(url))
    assert err.field == "repo.source.git.url"
    assert "server's own disk" in err.problem and ALLOW_PRIVATE_ENV in err.problem
    assert code(GitSource(url), allow_private=True) == GitSource(url)


@pytest.mark.parametrize(("url", "problem"), [
    ("file://host/srv/repo.git", "must be file:///ABSOLUTE/PATH"),
    ("file:/srv/repo.git", "must be file:///ABSOLUTE/PATH"),
    ("file:///srv/../etc/repo", "must not contain '..'"),
    ("file:///srv//repo", "must not contain '//'"),
    ("file:///srv/repo/", "must not end with '/'"),
    ("file:///", "must not be '/'"),
    ("file:///srv/repo?x", "must be file:///ABSOLUTE/PATH"),
])
def test_bad_file_urls(url: str, problem: str) -> None:
    assert problem in refused(code, GitSource(url), allow_private=True).problem


# (url, explicit branch, expected url, branch, commit, path)
NORMALIZED = [
    pytest.param("https://github.com/o/r", "", "https://github.com/o/r.git", "", "", "", id="github-plain"),
    pytest.param("https://github.com/o/r.git/", "", "https://github.com/o/r.git", "", "", "",
                 id="github-dot-git-slash"),
    pytest.param("https://www.github.com/o/r?tab=readme#top", "", "https://github.com/o/r.git", "", "", "",
                 id="github-www-query-fragment"),
    pytest.param("http://github.com/o/r", "", "http://github.com/o/r.git", "", "", "", id="github-http"),
    pytest.param("https://alice@github.com/o/r", "", "https://github.com/o/r.git", "", "", "",
                 id="github-drops-user"),
    pytest.param("https://github.com/o/r/tree/main", "", "https://github.com/o/r.git", "main", "", "",
                 id="github-tree"),
    pytest.param("https://github.com/o/r/tree/main/", "", "https://github.com/o/r.git", "main", "", "",
                 id="github-tree-slash"),
    pytest.param("https://github.com/o/r/tree/main/mnist/data", "", "https://github.com/o/r.git", "main", "",
                 "mnist/data", id="github-tree-path"),
    pytest.param("https://github.com/o/r/tree/feature/x/data", "feature/x", "https://github.com/o/r.git",
                 "feature/x", "", "data", id="github-tree-slash-branch"),
    pytest.param("https://github.com/o/r/tree/feature/x", "feature/x", "https://github.com/o/r.git",
                 "feature/x", "", "", id="github-tree-slash-branch-only"),
    pytest.param("https://github.com/o/r/tree/feature%2Fx/data", "", "https://github.com/o/r.git",
                 "feature/x", "", "data", id="github-tree-encoded-branch"),
    pytest.param("https://github.com/o/r/tree/main/my%20data", "", "https://github.com/o/r.git", "main", "",
                 "my data", id="github-tree-encoded-path"),
    pytest.param(f"https://github.com/o/r/tree/{SHA1}/src", "", "https://github.com/o/r.git", "", SHA1, "src",
                 id="github-tree-commit"),
    pytest.param("https://github.com/o/r/blob/main/train.py", "", "https://github.com/o/r.git", "main", "",
                 "train.py", id="github-blob"),
    pytest.param("https://github.com/o/r/blob/dev/src/train.py#L10-L20", "", "https://github.com/o/r.git",
                 "dev", "", "src/train.py", id="github-blob-fragment"),
    pytest.param("https://github.com/o/r/raw/main/data/x.csv", "", "https://github.com/o/r.git", "main", "",
                 "data/x.csv", id="github-raw"),
    pytest.param("https://gitlab.com/g/p/-/raw/main/x.csv", "", "https://gitlab.com/g/p.git", "main", "",
                 "x.csv", id="gitlab-raw"),
    pytest.param("https://bitbucket.org/ws/r/raw/main/x.csv", "", "https://bitbucket.org/ws/r.git", "main",
                 "", "x.csv", id="bitbucket-raw"),
    pytest.param("https://github.com/o/r/archive/refs/heads/main.zip", "", "https://github.com/o/r.git",
                 "main", "", "", id="github-archive-zip"),
    pytest.param("https://github.com/o/r/archive/refs/heads/feature/x.tar.gz", "",
                 "https://github.com/o/r.git", "feature/x", "", "", id="github-archive-targz-slash"),
    pytest.param("https://github.com/o/r/archive/refs/tags/v1.2.0.zip", "", "https://github.com/o/r.git",
                 "v1.2.0", "", "", id="github-archive-tag"),
    pytest.param("https://github.com/o/r/archive/main.zip", "", "https://github.com/o/r.git", "main", "", "",
                 id="github-archive-old"),
    pytest.param(f"https://github.com/o/r/archive/{SHA1}.tar.gz", "", "https://github.com/o/r.git", "", SHA1,
                 "", id="github-archive-commit"),
    pytest.param("https://gitlab.com/g/p", "", "https://gitlab.com/g/p", "", "", "", id="gitlab-plain-as-is"),
    pytest.param("https://gitlab.com/g/sub/p/-/tree/main/data?ref_type=heads", "",
                 "https://gitlab.com/g/sub/p.git", "main", "", "data", id="gitlab-tree"),
    pytest.param("https://gitlab.com/g/p/-/tree/feature/x/data", "feature/x", "https://gitlab.com/g/p.git",
                 "feature/x", "", "data", id="gitlab-tree-slash-branch"),
    pytest.param("https://gitlab.com/g/p/-/blob/main/src/train.py", "", "https://gitlab.com/g/p.git", "main",
                 "", "src/train.py", id="gitlab-blob"),
    pytest.param("https://gitlab.com/g/p/-/archive/main/p-main.zip", "", "https://gitlab.com/g/p.git", "main",
                 "", "", id="gitlab-archive-zip"),
    pytest.param("https://gitlab.com/g/p/-/archive/main/p-main.tar.gz?path=data/train", "",
                 "https://gitlab.com/g/p.git", "main", "", "data/train", id="gitlab-archive-path"),
    pytest.param("https://gitlab.com/g/p/-/archive/feature/x/p-feature-x.tar.bz2", "",
                 "https://gitlab.com/g/p.git", "feature/x", "", "", id="gitlab-archive-slash-branch"),
    pytest.param("https://git.example.com:8443/team/p/-/tree/main/d", "", "https://git.example.com:8443/team/p.git",
                 "main", "", "d", id="gitlab-self-hosted"),
    pytest.param("https://bitbucket.org/ws/r", "", "https://bitbucket.org/ws/r.git", "", "", "",
                 id="bitbucket-plain"),
    pytest.param("https://bitbucket.org/ws/r/src/main/data/", "", "https://bitbucket.org/ws/r.git", "main",
                 "", "data", id="bitbucket-src"),
    pytest.param("https://bitbucket.org/ws/r/src/main/train.py", "", "https://bitbucket.org/ws/r.git", "main",
                 "", "train.py", id="bitbucket-src-file"),
    pytest.param(f"https://bitbucket.org/ws/r/src/{SHA1}/data?at=main", "", "https://bitbucket.org/ws/r.git",
                 "main", SHA1, "data", id="bitbucket-src-commit-at"),
    pytest.param("https://bitbucket.org/ws/r/src/dev/?at=refs%2Fheads%2Fdev", "",
                 "https://bitbucket.org/ws/r.git", "dev", "", "", id="bitbucket-at-refs-heads"),
    pytest.param("https://bitbucket.org/ws/r/get/main.zip", "", "https://bitbucket.org/ws/r.git", "main", "",
                 "", id="bitbucket-archive-zip"),
    pytest.param("https://bitbucket.org/ws/r/get/v1.0.tar.gz", "", "https://bitbucket.org/ws/r.git", "v1.0",
                 "", "", id="bitbucket-archive-targz"),
    pytest.param("https://git.example.com/o/r.git", "", "https://git.example.com/o/r.git", "", "", "",
                 id="unknown-host-as-is"),
    pytest.param("git@github.com:o/r.git", "", "git@github.com:o/r.git", "", "", "", id="scp-as-is"),
    pytest.param("ssh://git@github.com/o/r.git", "", "ssh://git@github.com/o/r.git", "", "", "",
                 id="ssh-as-is"),
]


@pytest.mark.parametrize(("url", "given", "clone", "branch", "commit", "path"), NORMALIZED)
def test_git_web_urls_normalize_to_clone_url_branch_and_path(url: str, given: str, clone: str, branch: str,
                                                             commit: str, path: str) -> None:
    expected = GitSource(clone, branch=branch or given, commit=commit, path=path, credential="ci-token")
    assert normalize_git(GitSource(url, branch=given, credential="ci-token")) == expected
    assert code(GitSource(url, branch=given, credential="ci-token")) == expected


@pytest.mark.parametrize(("source", "field"), [
    pytest.param(GitSource("https://github.com/o/r/tree/main/data", branch="dev"), "repo.source.git.branch",
                 id="branch"),
    pytest.param(GitSource("https://gitlab.com/g/p/-/blob/main/a.py", branch="master"),
                 "repo.source.git.branch", id="gitlab-branch"),
    pytest.param(GitSource("https://bitbucket.org/ws/r/src/main/?at=dev"), "repo.source.git.branch",
                 id="bitbucket-at"),
    pytest.param(GitSource(f"https://github.com/o/r/tree/{SHA1}", commit="fedcba9"), "repo.source.git.commit",
                 id="commit"),
    pytest.param(GitSource("https://github.com/o/r/tree/main/data", path="models"), "repo.source.git.path",
                 id="path"),
])
def test_fields_that_disagree_with_the_url_are_refused(source: GitSource, field: str) -> None:
    err = refused(normalize_git, source)
    assert err.field == field
    assert "the URL names" in err.problem


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param(GitSource("https://github.com/o/r/tree/main/data", branch="main", path="/data/"),
                 GitSource("https://github.com/o/r.git", branch="main", path="data"),
                 id="same-branch-and-path"),
    pytest.param(GitSource(f"https://github.com/o/r/tree/{SHA1}", commit=SHA1[:7].upper()),
                 GitSource("https://github.com/o/r.git", commit=SHA1), id="short-commit-prefix"),
    pytest.param(GitSource(f"https://github.com/o/r/tree/{SHA1}", branch="main"),
                 GitSource("https://github.com/o/r.git", branch="main", commit=SHA1), id="branch-and-commit"),
    pytest.param(GitSource("https://github.com/o/r/tree/main", commit="ABCDEF0"),
                 GitSource("https://github.com/o/r.git", branch="main", commit="abcdef0"),
                 id="commit-lowered"),
])
def test_fields_that_agree_with_the_url_are_kept(source: GitSource, expected: GitSource) -> None:
    assert code(source) == expected


@pytest.mark.parametrize("branch", ["main", "master", "feature/x", "release-2024.01", "v1.0", "users/a/b",
                                    "a@b", "fix_123", "caf\u00e9", "refs/heads/main", "x" * 255])
def test_good_branches(branch: str) -> None:
    assert check_branch("b", branch) == branch
    assert code(GitSource("https://github.com/o/r", branch=branch)) == GitSource(
        "https://github.com/o/r.git", branch=branch)


@pytest.mark.parametrize(("branch", "problem"), [
    pytest.param("a..b", "'..'", id="double-dot"),
    pytest.param("a b", "a space", id="space"),
    pytest.param("a~1", "'~'", id="tilde"),
    pytest.param("a^", "'^'", id="caret"),
    pytest.param("a:b", "':'", id="colon"),
    pytest.param("a?", "'?'", id="question"),
    pytest.param("a*", "'*'", id="star"),
    pytest.param("a[b", "'['", id="bracket"),
    pytest.param("a\\b", "'\\\\'", id="backslash"),
    pytest.param("a\x00b", "control characters", id="nul"),
    pytest.param("a\tb", "control characters", id="tab"),
    pytest.param("a\x7fb", "control characters", id="del"),
    pytest.param("a/", "start or end with '/'", id="trailing-slash"),
    pytest.param("/a", "start or end with '/'", id="leading-slash"),
    pytest.param("a//b", "'//'", id="double-slash"),
    pytest.param("a.lock", "'.lock'", id="dot-lock"),
    pytest.param("a.lock/b", "'.lock'", id="dot-lock-component"),
    pytest.param("a.", "end with '.'", id="trailing-dot"),
    pytest.param(".a", "start with '.'", id="leading-dot"),
    pytest.param("a/.b", "start with '.'", id="component-dot"),
    pytest.param("a@{1}", "'@{'", id="at-brace"),
    pytest.param("@", "must not be '@'", id="at"),
    pytest.param("-b", "must not start with '-'", id="option"),
    pytest.param("x" * 256, "at most 255", id="too-long"),
])
def test_bad_branches(branch: str, problem: str) -> None:
    assert problem in refused(check_branch, "b", branch).problem
    err = refused(code, GitSource("https://github.com/o/r", branch=branch))
    assert err.field == "repo.source.git.branch"


@pytest.mark.parametrize(("commit", "expected"), [
    ("", ""), ("abcdef0", "abcdef0"), ("ABCDEF0", "abcdef0"), (SHA1, SHA1), (SHA1.upper(), SHA1),
    (SHA1[:20], SHA1[:20]), (SHA256, SHA256),
])
def test_good_commits(commit: str, expected: str) -> None:
    assert check_commit("c", commit) == expected


@pytest.mark.parametrize("commit", ["abcdef", SHA1 + "a", SHA256[:63], SHA256 + "a", "ghijklm", "abc def0",
                                    "-abcdef0", "HEAD", "main"])
def test_bad_commits(commit: str) -> None:
    assert "hexadecimal" in refused(check_commit, "c", commit).problem
    assert refused(code, GitSource("https://github.com/o/r", commit=commit)).field == "repo.source.git.commit"


@pytest.mark.parametrize(("path", "expected"), [("", ""), ("data", "data"), ("/data/train/", "data/train"),
                                                ("a b/c", "a b/c")])
def test_git_paths_are_relative(path: str, expected: str) -> None:
    assert code(GitSource("https://github.com/o/r", path=path)) == GitSource("https://github.com/o/r.git",
                                                                             path=expected)


@pytest.mark.parametrize(("path", "problem"), [("a/../b", "'..'"), ("..", "'..'"), ("a//b", "'//'"),
                                               ("./a", "'.'"), ("a\nb", "control characters")])
def test_bad_git_paths(path: str, problem: str) -> None:
    err = refused(code, GitSource("https://github.com/o/r", path=path))
    assert err.field == "repo.source.git.path"
    assert problem in err.problem


@pytest.mark.parametrize("credential", ["bad/name", "-x", "a" * 64, "with space"])
def test_credentials_are_names(credential: str) -> None:
    err = refused(code, GitSource("https://github.com/o/r", credential=credential))
    assert err.field == "repo.source.git.credential"


# ---------------------------------------------------------------------------------------------
# S3 and GCS


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


# ---------------------------------------------------------------------------------------------
# Volumes, NFS, host paths, FSx


@pytest.mark.parametrize(("source", "expected"), [
    (VolumeSource("data"), VolumeSource("data")),
    (VolumeSource("team-a.datasets", subpath="/mnist/"), VolumeSource("team-a.datasets", subpath="mnist")),
    (VolumeSource("a" * 253), VolumeSource("a" * 253)),
    (VolumeSource("0pvc9"), VolumeSource("0pvc9")),
])
def test_good_volumes(source: VolumeSource, expected: VolumeSource) -> None:
    assert referenced(source) == expected


@pytest.mark.parametrize(("source", "field"), [
    (VolumeSource(""), "volume"), (VolumeSource("Data"), "volume"), (VolumeSource("-data"), "volume"),
    (VolumeSource("data-"), "volume"), (VolumeSource("da_ta"), "volume"), (VolumeSource("a..b"), "volume"),
    (VolumeSource("a" * 254), "volume"), (VolumeSource("data", subpath="a/../../etc"), "subpath"),
    (VolumeSource("data", subpath="a//b"), "subpath"),
])
def test_bad_volumes(source: VolumeSource, field: str) -> None:
    assert refused(referenced, source).field == f"repo.source.volume.{field}"


@pytest.mark.parametrize(("source", "allow_private"), [
    (NfsSource("nfs.example.com", "/mnt/dkube/mnist"), False),
    (NfsSource("192.168.200.1", "/mnt/dkube/mnist"), True),
    (NfsSource("fd00::5", "/"), True),
    (NfsSource("nas", "/exports/data"), True),
])
def test_good_nfs(source: NfsSource, allow_private: bool) -> None:
    assert referenced(source, allow_private) == source


@pytest.mark.parametrize(("source", "field", "problem"), [
    (NfsSource("192.168.200.1", "/mnt/data"), "server", "is a private address"),
    (NfsSource("", "/mnt/data"), "server", "must not be empty"),
    (NfsSource("nfs.example.com:2049", "/mnt/data"), "server", "give the port in its own field"),
    (NfsSource("nfs.example.com", ""), "path", "must not be empty"),
    (NfsSource("nfs.example.com", "mnt/data"), "path", "absolute"),
    (NfsSource("nfs.example.com", "/mnt/../etc"), "path", "'..'"),
    (NfsSource("nfs.example.com", "/mnt//data"), "path", "'//'"),
])
def test_bad_nfs(source: NfsSource, field: str, problem: str) -> None:
    err = refused(referenced, source)
    assert err.field == f"repo.source.nfs.{field}"
    assert problem in err.problem


@pytest.mark.parametrize("path", ["/mnt/shared/data", "/data", "/home/alice/mnist", "/var/lib/data",
                                  "/etcetera/data", "/srv/a b", "/procedures"])
def test_good_host_paths(path: str) -> None:
    assert referenced(HostPathSource(path)) == HostPathSource(path)


@pytest.mark.parametrize(("path", "problem"), [
    ("", "must not be empty"), ("data", "absolute"), ("./data", "absolute"), ("/", "whole file system"),
    ("/data/", "must not end with '/' (write '/data')"), ("//data", "'//'"), ("/a//b", "'//'"),
    ("/a/../b", "'..'"), ("/a/./b", "'.'"), ("/a\x00b", "control characters"),
    ("/a\nb", "control characters"),
    ("/" + "a" * 4096, "at most 4096"), ("/etc", "/etc"), ("/etc/passwd", "/etc"), ("/proc/1", "/proc"),
    ("/sys", "/sys"), ("/dev/sda", "/dev"), ("/run/containerd", "/run"), ("/var/run/docker.sock", "/var/run"),
    ("/boot", "/boot"), ("/var/lib/kubelet/pods", "/var/lib/kubelet"), ("/var/lib/docker", "/var/lib/docker"),
])
def test_bad_host_paths(path: str, problem: str) -> None:
    err = refused(referenced, HostPathSource(path))
    assert err.field == "repo.source.hostpath.path"
    assert problem in err.problem


FSX_DNS = "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com"


@pytest.mark.parametrize("source", [
    FsxSource(FSX_DNS, "abcdef12", "fs-0123456789abcdef0"),
    FsxSource(FSX_DNS, "fsx", "fs-01234567"),
    FsxSource(FSX_DNS + ".", "a_b-c", "fs-0123456789abcdef0"),
])
def test_good_fsx(source: FsxSource) -> None:
    assert referenced(source) == source


@pytest.mark.parametrize(("source", "field"), [
    (FsxSource("", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource("10.0.0.4", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource("203.0.113.9", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource("fsx_.example.com-", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource("localhost", "fsx", "fs-01234567"), "dns_name"),
    (FsxSource(FSX_DNS, "", "fs-01234567"), "mount_name"),
    (FsxSource(FSX_DNS, "abcdefghi", "fs-01234567"), "mount_name"),
    (FsxSource(FSX_DNS, "a/b", "fs-01234567"), "mount_name"),
    (FsxSource(FSX_DNS, "fsx", ""), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs-0123456"), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs-0123456789abcdef"), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs-0123456789ABCDEF0"), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs0123456789abcdef0"), "volume_handle"),
    (FsxSource(FSX_DNS, "fsx", "fs-0123456789abcdefg"), "volume_handle"),
])
def test_bad_fsx(source: FsxSource, field: str) -> None:
    assert refused(referenced, source).field == f"repo.source.fsx.{field}"


# ---------------------------------------------------------------------------------------------
# Databases


@pytest.mark.parametrize("source", [
    RedshiftSource(database="dev"),
    RedshiftSource(endpoint="https://examplecluster.abc123.us-west-2.redshift.amazonaws.com:5439",
                   database="dev", credential="redshift", ca_cert=CERT),
    RedshiftSource(endpoint="http://52.1.2.3:5439", database="_sales$2024"),
    RedshiftSource(database="d" * 127),
])
def test_good_redshift(source: RedshiftSource) -> None:
    assert referenced(source) == source


@pytest.mark.parametrize(("source", "field", "problem"), [
    (RedshiftSource(), "database", "must not be empty"),
    (RedshiftSource(database="1dev"), "database", "starting with a letter"),
    (RedshiftSource(database="dev-db"), "database", "letters, digits"),
    (RedshiftSource(database="d" * 128), "database", "1 to 127"),
    (RedshiftSource(endpoint="cluster.example.com:5439", database="dev"), "endpoint", "http:// or https://"),
    (RedshiftSource(endpoint="https://cluster.example.com:5439/dev", database="dev"), "endpoint",
     "only scheme, host"),
    (RedshiftSource(endpoint="https://u:p@cluster.example.com:5439", database="dev"), "endpoint",
     "must not embed a password"),
    (RedshiftSource(endpoint="https://10.0.0.8:5439", database="dev"), "endpoint.host", "private address"),
    (RedshiftSource(database="dev", credential="a b"), "credential", "letters"),
    (RedshiftSource(database="dev", ca_cert="not a cert"), "ca_cert", "PEM certificate"),
    (RedshiftSource(database="dev", ca_cert=CERT + "-----BEGIN PRIVATE KEY-----\n"), "ca_cert",
     "private key"),
    (RedshiftSource(database="dev", ca_cert=CERT + "\x00"), "ca_cert", "control characters"),
])
def test_bad_redshift(source: RedshiftSource, field: str, problem: str) -> None:
    err = refused(referenced, source)
    assert err.field == f"repo.source.redshift.{field}"
    assert problem in err.problem


@pytest.mark.parametrize(("source", "expected"), [
    (SqlSource("mysql", host="db.example.com", database="sales"),
     SqlSource("mysql", host="db.example.com", port=3306, database="sales")),
    (SqlSource("mssql", host="db.example.com", database="Sales-2024"),
     SqlSource("mssql", host="db.example.com", port=1433, database="Sales-2024")),
    (SqlSource("oracle", host="db.example.com", database="orclpdb1.example.com", credential="ora"),
     SqlSource("oracle", host="db.example.com", port=1521, database="orclpdb1.example.com",
               credential="ora")),
    (SqlSource("mysql", host="db.example.com", port=13306, database="sales"),
     SqlSource("mysql", host="db.example.com", port=13306, database="sales")),
    (SqlSource("mssql", connection="odbc", dsn="SalesDSN"),
     SqlSource("mssql", connection="odbc", dsn="SalesDSN")),
    (SqlSource("mysql", connection="odbc", dsn="Driver={MySQL ODBC 8.0};Server=db;Database=sales;UID=bob"),
     SqlSource("mysql", connection="odbc", dsn="Driver={MySQL ODBC 8.0};Server=db;Database=sales;UID=bob")),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db.example.com:3306/sales"),
     SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db.example.com:3306/sales")),
    (SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db:1433;databaseName=sales"),
     SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db:1433;databaseName=sales")),
    (SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:@//db:1521/orclpdb1", credential="ora"),
     SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:@//db:1521/orclpdb1", credential="ora")),
])
def test_good_sql(source: SqlSource, expected: SqlSource) -> None:
    assert referenced(source) == expected


def test_sql_on_a_private_host_needs_the_operator_flag() -> None:
    source = SqlSource("mysql", host="10.0.0.7", database="sales")
    assert refused(referenced, source).field == "repo.source.sql.host"
    assert referenced(source, allow_private=True) == dataclasses.replace(source, port=3306)


@pytest.mark.parametrize(("source", "field", "problem"), [
    (SqlSource("postgres", host="db.example.com", database="x"), "provider", "mysql, mssql, oracle"),
    (SqlSource("MySQL", host="db.example.com", database="x"), "provider", "mysql, mssql, oracle"),
    (SqlSource("mysql", host="db.example.com", database="x", connection="http"), "connection",
     "direct, odbc"),
    (SqlSource("mysql", database="x"), "host", "must not be empty"),
    (SqlSource("mysql", host="db.example.com:3306", database="x"), "host", "give the port in its own field"),
    (SqlSource("mysql", host="db.example.com"), "database", "must not be empty"),
    (SqlSource("mysql", host="db.example.com", database="a" * 65), "database", "at most 64"),
    (SqlSource("mssql", host="db.example.com", database="a" * 129), "database", "at most 128"),
    (SqlSource("mysql", host="db.example.com", database="x;drop"), "database", "may contain only"),
    (SqlSource("mysql", host="db.example.com", database="-x"), "database", "must start"),
    (SqlSource("mysql", host="db.example.com", database="x", port=70000), "port", "between 1 and 65535"),
    (SqlSource("mysql", host="db.example.com", database="x", port=-1), "port", "between 1 and 65535"),
    (SqlSource("mysql", host="db.example.com", database="x", dsn="MyDSN"), "dsn", "only for odbc and jdbc"),
    (SqlSource("mysql", host="db.example.com", database="x", credential="a:b"), "credential", "letters"),
    (SqlSource("mysql", connection="odbc"), "dsn", "must not be empty"),
    (SqlSource("mysql", connection="jdbc"), "dsn", "must not be empty"),
    (SqlSource("mysql", connection="odbc", dsn="D", host="db"), "host", "must be empty with odbc"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/x", database="x"), "database",
     "must be empty with jdbc"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/x", port=3306), "port", "must be empty"),
    (SqlSource("mysql", connection="odbc", dsn="Server=db;UID=bob;PWD=secret"), "dsn",
     "must not contain a password"),
    (SqlSource("mssql", connection="odbc", dsn="Server=db;Password={a;b}"), "dsn",
     "must not contain a password"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/x?user=bob&password=s"), "dsn",
     "must not contain a password"),
    (SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db;user=bob;password=s"), "dsn",
     "must not contain a password"),
    (SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db;trustStorePassword=s"), "dsn",
     "must not contain a password"),
    (SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:scott/tiger@db:1521:orcl"), "dsn",
     "must not contain a password"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://bob:s@db/x"), "dsn", "must not embed"),
    (SqlSource("mysql", connection="jdbc", dsn="jdbc:sqlserver://db"), "dsn",
     "must start with 'jdbc:mysql:'"),
    (SqlSource("mssql", connection="jdbc", dsn="jdbc:mysql://db/x"), "dsn",
     "must start with 'jdbc:sqlserver:'"),
    (SqlSource("oracle", connection="jdbc", dsn="JDBC:ORACLE:thin:@db"), "dsn",
     "must start with 'jdbc:oracle:'"),
    (SqlSource("mysql", connection="jdbc", dsn="mysql://db/x"), "dsn", "must start with 'jdbc:mysql:'"),
    (SqlSource("mysql", connection="odbc", dsn="D\nSN"), "dsn", "control characters"),
])
def test_bad_sql(source: SqlSource, field: str, problem: str) -> None:
    err = refused(referenced, source)
    assert err.field == f"repo.source.sql.{field}"
    assert problem in err.problem


@pytest.mark.parametrize(("source", "config"), [
    pytest.param(SqlSource("mysql", host="db.example.com", database="sales", credential="sql-ro"),
                 {"provider": "mysql", "connection": "direct", "host": "db.example.com", "port": 3306,
                  "database": "sales", "credential": "sql-ro"}, id="mysql-direct"),
    pytest.param(SqlSource("mssql", host="db.example.com", database="sales"),
                 {"provider": "mssql", "connection": "direct", "host": "db.example.com", "port": 1433,
                  "database": "sales", "credential": ""}, id="mssql-direct"),
    pytest.param(SqlSource("oracle", host="db.example.com", port=1522, database="orcl", credential="ora"),
                 {"provider": "oracle", "connection": "direct", "host": "db.example.com", "port": 1522,
                  "database": "orcl", "credential": "ora"}, id="oracle-direct-port"),
    pytest.param(SqlSource("oracle", host="db.example.com", database="orcl"),
                 {"provider": "oracle", "connection": "direct", "host": "db.example.com", "port": 1521,
                  "database": "orcl", "credential": ""}, id="oracle-direct"),
    pytest.param(SqlSource("mysql", connection="odbc", dsn="SalesDSN", credential="sql-ro"),
                 {"provider": "mysql", "connection": "odbc", "dsn": "SalesDSN", "credential": "sql-ro"},
                 id="mysql-odbc"),
    pytest.param(SqlSource("mssql", connection="odbc", dsn="Driver={ODBC Driver 18};Server=db"),
                 {"provider": "mssql", "connection": "odbc", "dsn": "Driver={ODBC Driver 18};Server=db",
                  "credential": ""}, id="mssql-odbc"),
    pytest.param(SqlSource("oracle", connection="odbc", dsn="OracleDSN", credential="ora"),
                 {"provider": "oracle", "connection": "odbc", "dsn": "OracleDSN", "credential": "ora"},
                 id="oracle-odbc"),
    pytest.param(SqlSource("mysql", connection="jdbc", dsn="jdbc:mysql://db/sales"),
                 {"provider": "mysql", "connection": "jdbc", "dsn": "jdbc:mysql://db/sales",
                  "credential": ""}, id="mysql-jdbc"),
    pytest.param(SqlSource("mssql", connection="jdbc", dsn="jdbc:sqlserver://db;databaseName=s",
                           credential="c"),
                 {"provider": "mssql", "connection": "jdbc", "dsn": "jdbc:sqlserver://db;databaseName=s",
                  "credential": "c"}, id="mssql-jdbc"),
    pytest.param(SqlSource("oracle", connection="jdbc", dsn="jdbc:oracle:thin:@//db:1521/orcl"),
                 {"provider": "oracle", "connection": "jdbc", "dsn": "jdbc:oracle:thin:@//db:1521/orcl",
                  "credential": ""}, id="oracle-jdbc"),
])
def test_sql_config_has_the_connection_and_only_the_credential_name(source: SqlSource,
                                                                    config: dict[str, str | int]) -> None:
    assert sql_config(source) == config
    checked = referenced(source, allow_private=True)
    assert isinstance(checked, SqlSource)
    assert sql_config(checked) == config  # checking changes nothing in it


# ---------------------------------------------------------------------------------------------
# URLs and uploads


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


# ---------------------------------------------------------------------------------------------
# The kind x versioning matrix

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


# ---------------------------------------------------------------------------------------------
# Mount paths


@pytest.mark.parametrize("path", ["/mnt/data", "/mnt/model", "/model", "/opt/dkube/input",
                                  "/opt/dkube/output", "/data", "/home/user/x y", "/etcetera", "/devices",
                                  "/a" * 2048])
def test_good_mount_paths(path: str) -> None:
    assert check_mount_path("run.inputs[0].mount_path", path) == path


@pytest.mark.parametrize(("path", "problem"), [
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("mnt/data", "absolute", id="relative"),
    pytest.param("/", "whole file system", id="root"),
    pytest.param("/mnt/../etc", "'..'", id="dotdot"),
    pytest.param("/..", "'..'", id="root-dotdot"),
    pytest.param("/mnt/./data", "'.'", id="dot"),
    pytest.param("//mnt", "'//'", id="leading-double-slash"),
    pytest.param("/mnt//data", "'//'", id="double-slash"),
    pytest.param("/mnt/data/", "must not end with '/'", id="trailing-slash"),
    pytest.param("/mnt/da\x00ta", "control characters", id="nul"),
    pytest.param("/mnt/da\nta", "control characters", id="newline"),
    pytest.param("/mnt/\x1b[31m", "control characters", id="escape"),
    pytest.param("/" + "a" * 4096, "at most 4096", id="too-long"),
    pytest.param("/proc", "/proc", id="proc"),
    pytest.param("/proc/self/environ", "/proc", id="proc-inside"),
    pytest.param("/sys/kernel", "/sys", id="sys"),
    pytest.param("/dev", "/dev", id="dev"),
    pytest.param("/dev/shm", "/dev", id="dev-inside"),
    pytest.param("/etc", "/etc", id="etc"),
    pytest.param("/etc/shipyard", "/etc", id="etc-shipyard"),
    pytest.param("/etc/dkube/sql.conf", "/etc", id="etc-inside"),
])
def test_bad_mount_paths(path: str, problem: str) -> None:
    err = refused(check_mount_path, "run.inputs[0].mount_path", path)
    assert err.field == "run.inputs[0].mount_path"
    assert problem in err.problem


# ---------------------------------------------------------------------------------------------
# Redaction


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


def test_git_protocol_urls_from_a_git_daemon_are_accepted() -> None:
    source = check_source(RepoKind.DATASET, Versioning.DVS, GitSource("git://git.example.org/data.git"))
    assert source.url == "git://git.example.org/data.git"
    with pytest.raises(InvalidArgument, match="does not authenticate"):
        check_source(RepoKind.DATASET, Versioning.DVS,
                     GitSource("git://git.example.org/d.git", credential="c"))
