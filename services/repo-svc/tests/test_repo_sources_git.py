"""The rules of git sources (domain/sources/git.py): URLs, page URLs normalized, branches,
commits, folders and credential names."""

from __future__ import annotations

import pytest
from repo_source_checks import code, refused
from shipyard_repo.domain.sources import (
    GitSource,
    RepoKind,
    Versioning,
    check_source,
)
from shipyard_repo.domain.sources.common import ALLOW_PRIVATE_ENV
from shipyard_repo.domain.sources.git import check_branch, check_commit, normalize_git

from shipyard.kit.errors import InvalidArgument

SHA1 = "0123456789abcdef0123456789abcdef01234567"
SHA256 = "0123456789abcdef" * 4


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


def test_git_protocol_urls_from_a_git_daemon_are_accepted() -> None:
    source = check_source(RepoKind.DATASET, Versioning.DVS, GitSource("git://git.example.org/data.git"))
    assert source.url == "git://git.example.org/data.git"
    with pytest.raises(InvalidArgument, match="does not authenticate"):
        check_source(RepoKind.DATASET, Versioning.DVS,
                     GitSource("git://git.example.org/d.git", credential="c"))
