"""Git sources: a repository (or a folder of it) at a branch or commit, given as a clone URL or as a
GitHub, GitLab or Bitbucket page URL, which becomes a clone URL, a branch or commit and a path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from shipyard.kit.errors import InvalidArgument
from shipyard.kit.rules import check_abs_path

from ..names import check_text
from .common import ALLOW_PRIVATE_ENV, check_credential, check_host, check_subpath, required, source_field
from .urls import URL_MAX, check_web_url, split_url

BRANCH_MAX = 255


@dataclass(frozen=True)
class GitSource:
    """A git repository, or a folder of one (``path``), at a branch or commit.

    ``branch`` empty means the repository's default branch; ``commit`` empty means the branch's
    latest commit. ``credential`` names a stored credential (token, SSH key or user + password).
    """

    KIND: ClassVar[str] = "git"
    url: str
    branch: str = ""
    commit: str = ""
    path: str = ""
    credential: str = ""


_GIT = "git"
_GIT_URL = source_field(_GIT, "url")
_GIT_BRANCH = source_field(_GIT, "branch")
_GIT_COMMIT = source_field(_GIT, "commit")
_GIT_PATH = source_field(_GIT, "path")
_GIT_CREDENTIAL = source_field(_GIT, "credential")
_GIT_FORMS = "an https://, http://, ssh://, git://, user@host:path or file:/// URL"
_SCP = re.compile(r"(?P<user>[^@/:\s]+)@(?P<host>\[[^\]/]+\]|[^:/\[\]@]+):(?P<path>.*)")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,40}|[0-9a-fA-F]{64}")
_FULL_COMMIT = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_REF_FORBIDDEN = frozenset(" ~^:?*[\\\x7f")
_GITHUB_HOSTS = frozenset({"github.com", "www.github.com"})
_BITBUCKET_HOSTS = frozenset({"bitbucket.org", "www.bitbucket.org"})
_USER = re.compile(r"[A-Za-z0-9._~][A-Za-z0-9._~-]*")


def check_git(source: GitSource, allow_private: bool) -> GitSource:
    """A git source checked and normalized: a clone URL of a known form (page URLs normalized), a
    branch or commit, a folder, and the name of a credential."""
    url = required(_GIT_URL, source.url)
    check_text(_GIT_URL, url, URL_MAX, multiline=False)
    lower = url.lower()
    if lower.startswith(("http://", "https://")):
        check_web_url(_GIT_URL, url, allow_private, credential_field=_GIT_CREDENTIAL, user_ok=True)
        _check_repo_path(urlsplit(url).path.lstrip("/"))
    elif lower.startswith("ssh://"):
        _check_git_ssh(url, allow_private)
    elif lower.startswith("git://"):
        _check_git_daemon(url, source.credential, allow_private)
    elif lower.startswith("file:"):
        _check_git_file(url, allow_private)
    elif "://" not in url and (scp := _SCP.fullmatch(url)):
        _check_git_user(scp["user"])
        check_host(f"{_GIT_URL}.host", scp["host"], allow_private)
        _check_repo_path(scp["path"])
    else:
        raise InvalidArgument(_GIT_URL, f"must be {_GIT_FORMS} (got {url!r})")
    normal = normalize_git(source)
    return GitSource(
        url=normal.url,
        branch=check_branch(_GIT_BRANCH, normal.branch),
        commit=check_commit(_GIT_COMMIT, normal.commit),
        path=check_subpath(_GIT_PATH, normal.path),
        credential=check_credential(_GIT_CREDENTIAL, normal.credential),
    )


def _check_git_daemon(url: str, credential: str, allow_private: bool) -> None:
    """git:// (a git daemon): read-only and unauthenticated, so a credential makes no sense."""
    parts = split_url(_GIT_URL, url)
    if parts.username or parts.password:
        raise InvalidArgument(_GIT_URL, "a git:// URL has no user; the git protocol does not authenticate")
    if credential:
        raise InvalidArgument(
            _GIT_CREDENTIAL, "the git:// protocol does not authenticate; use https:// or ssh://"
        )
    check_host(f"{_GIT_URL}.host", parts.hostname or "", allow_private)
    _check_repo_path(parts.path.lstrip("/"))


def _check_git_user(user: str) -> None:
    # ssh would read a user name starting with '-' as an option (CVE-2017-1000117).
    if not _USER.fullmatch(user):
        raise InvalidArgument(
            _GIT_URL,
            f"user {user!r} may contain only letters, digits, '.', '_', '~' "
            "and '-', and must not start with '-'",
        )


def _check_repo_path(path: str) -> None:
    if not path.strip("/"):
        raise InvalidArgument(_GIT_URL, "must name a repository after the host")
    if path.startswith("-"):
        raise InvalidArgument(_GIT_URL, "the repository path must not start with '-'")


def _check_git_ssh(url: str, allow_private: bool) -> None:
    parts = split_url(_GIT_URL, url)
    if parts.password is not None:
        raise InvalidArgument(
            _GIT_URL,
            f"must not embed a password; store an SSH key as a credential and name it in {_GIT_CREDENTIAL}",
        )
    if parts.username is not None:
        _check_git_user(parts.username)
    check_host(f"{_GIT_URL}.host", parts.hostname or "", allow_private)
    _check_repo_path(parts.path.lstrip("/"))
    if parts.query or parts.fragment:
        raise InvalidArgument(_GIT_URL, "an ssh:// URL must not have a query or fragment")


def _check_git_file(url: str, allow_private: bool) -> None:
    if not allow_private:
        raise InvalidArgument(
            _GIT_URL,
            f"file:// URLs read the server's own disk; an operator can allow them ({ALLOW_PRIVATE_ENV})",
        )
    parts = split_url(_GIT_URL, url)
    if not url.startswith("file:///") or parts.netloc or parts.query or parts.fragment:
        raise InvalidArgument(_GIT_URL, "a file URL must be file:///ABSOLUTE/PATH")
    check_abs_path(_GIT_URL, parts.path)


def check_branch(field: str, branch: str) -> str:
    """A branch (or tag) name by ``git check-ref-format`` rules; empty means the default branch.

    Also refuses a leading '-', which git would read as an option.
    """
    if not branch:
        return ""
    if len(branch) > BRANCH_MAX:
        raise InvalidArgument(field, f"must be at most {BRANCH_MAX} characters (got {len(branch)})")
    if branch == "@":
        raise InvalidArgument(field, "must not be '@'")
    if branch.startswith("-"):
        raise InvalidArgument(field, "must not start with '-'")
    bad = next((c for c in branch if c < " " or c in _REF_FORBIDDEN), None)
    if bad is not None:
        shown = "a space" if bad == " " else "control characters" if bad < " " or bad == "\x7f" else repr(bad)
        raise InvalidArgument(field, f"must not contain {shown}")
    for seq in ("..", "@{", "//"):
        if seq in branch:
            raise InvalidArgument(field, f"must not contain {seq!r}")
    if branch.startswith("/") or branch.endswith("/"):
        raise InvalidArgument(field, "must not start or end with '/'")
    if branch.endswith("."):
        raise InvalidArgument(field, "must not end with '.'")
    for component in branch.split("/"):
        if component.startswith("."):
            raise InvalidArgument(field, "no part between '/' may start with '.'")
        if component.endswith(".lock"):
            raise InvalidArgument(field, "no part between '/' may end with '.lock'")
    return branch


def check_commit(field: str, commit: str) -> str:
    """A commit id: 7 to 40 hexadecimal digits, or 64 in a SHA-256 repository; lower case. Empty
    means the branch's latest commit."""
    if not commit:
        return ""
    if not _COMMIT.fullmatch(commit):
        raise InvalidArgument(field, "must be 7 to 40 hexadecimal digits (64 in a SHA-256 repository)")
    return commit.lower()


@dataclass(frozen=True)
class _WebRef:
    """What a web page URL of a git host says: clone URL, and a ref possibly followed by a path."""

    clone: str
    ref_and_path: str = ""  # still percent-encoded
    ref_only: bool = False  # archive URLs: the whole of ref_and_path is the ref
    path: str = ""  # a path given apart from the ref (GitLab archive ?path=)
    branch: str = ""  # a branch given apart from the ref (Bitbucket ?at=)


def normalize_git(source: GitSource) -> GitSource:
    """The source with a clone URL.

    GitHub (``/tree/<ref>/<path>``, ``/blob/<ref>/<file>``, ``/raw/...``,
    ``/archive/refs/heads|tags/<ref>.zip|.tar.gz``), GitLab (``/-/tree/``, ``/-/blob/``, ``/-/raw/``,
    ``/-/archive/<ref>/<name>.<ext>?path=``, on any host) and Bitbucket (``/src/<ref>/<path>?at=``,
    ``/raw/...``, ``/get/<ref>.<ext>``) page URLs become the repository's ``.git`` URL,
    a branch (or a commit, when the ref is a full commit id) and a path. A ref in the URL is
    ambiguous when the branch has '/' in it; an explicit ``branch`` that the URL starts with
    settles it. Fields given explicitly must agree with the URL; other URLs are returned as they are.
    """
    url = source.url
    if not url.lower().startswith(("http://", "https://")):
        return source
    web = _web_ref(split_url(_GIT_URL, url))
    if web is None:
        return source
    ref, path = _split_ref(web, source.branch)
    branch_found, commit_found = ("", ref) if _FULL_COMMIT.fullmatch(ref) else (ref, "")
    if web.branch:
        branch_found = _agree(_GIT_BRANCH, web.branch, branch_found, "branch")
    return GitSource(
        url=web.clone,
        branch=_agree(_GIT_BRANCH, source.branch, branch_found, "branch"),
        commit=_agree_commit(source.commit, commit_found),
        path=_agree(_GIT_PATH, source.path.strip("/"), path.strip("/"), "path"),
        credential=source.credential,
    )


def _agree(field: str, given: str, found: str, what: str) -> str:
    if given and found and given != found:
        raise InvalidArgument(
            field,
            f"is {given!r} but the URL names {what} {found!r}; leave the field empty or make them agree",
        )
    return given or found


def _agree_commit(given: str, found: str) -> str:
    a, b = given.lower(), found.lower()
    if a and b and not (a.startswith(b) or b.startswith(a)):
        raise InvalidArgument(
            _GIT_COMMIT,
            f"is {given!r} but the URL names commit {found!r}; leave the field empty or make them agree",
        )
    return max(a, b, key=len)  # a short id the URL confirms becomes the full one


def _split_ref(web: _WebRef, branch: str) -> tuple[str, str]:
    """The ref and the path in ``ref_and_path``; a branch the user gave settles where the ref ends."""
    text = web.ref_and_path
    if web.ref_only or not text:
        return unquote(text), web.path
    decoded = unquote(text)
    if branch and (decoded == branch or decoded.startswith(branch + "/")):
        return branch, decoded[len(branch) + 1 :]
    # Split before decoding: a '%2F' belongs to the branch name, a '/' ends it.
    ref, _, path = text.partition("/")
    return unquote(ref), unquote(path)


def _web_ref(parts: SplitResult) -> _WebRef | None:
    host = parts.hostname or ""
    segments = parts.path.split("/")[1:]  # percent-encoded: names are decoded where they are cut out
    while segments and not segments[-1]:
        segments.pop()
    base = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if host in _GITHUB_HOSTS:
        return _github(f"{parts.scheme}://github.com", segments)
    if host in _BITBUCKET_HOSTS:
        return _bitbucket(f"{parts.scheme}://bitbucket.org", segments, parts.query)
    if "-" in segments:
        return _gitlab(base, segments, parts.query)
    return None


def _repo_name(segment: str, example: str) -> str:
    name = unquote(segment).removesuffix(".git")
    if not name:
        raise InvalidArgument(_GIT_URL, f"must name a repository: {example}")
    return name


def _owner_repo(segments: list[str], example: str) -> tuple[str, str]:
    if len(segments) < 2 or not segments[0]:
        raise InvalidArgument(_GIT_URL, f"must name a repository: {example}")
    return unquote(segments[0]), _repo_name(segments[1], example)


def _strip_archive(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    raise InvalidArgument(_GIT_URL, f"an archive URL must end in one of {', '.join(suffixes)}")


def _github(base: str, segments: list[str]) -> _WebRef:
    owner, repo = _owner_repo(segments, "https://github.com/OWNER/REPO")
    clone = f"{base}/{owner}/{repo}.git"
    verb, args = (segments[2], segments[3:]) if len(segments) > 2 else ("", [])
    if not verb:
        return _WebRef(clone)
    if verb in ("tree", "blob", "raw") and args:
        return _WebRef(clone, "/".join(args))
    if verb == "archive" and args:
        name = _strip_archive("/".join(args), (".zip", ".tar.gz"))
        if name.startswith(("refs/heads/", "refs/tags/")):
            name = name.split("/", 2)[2]
        return _WebRef(clone, name, ref_only=True)
    raise InvalidArgument(_GIT_URL, "is a GitHub page, not a repository, tree, blob or archive URL")


def _gitlab(base: str, segments: list[str], query: str) -> _WebRef:
    cut = segments.index("-")
    project, rest = segments[:cut], segments[cut + 1 :]
    verb, args = (rest[0], rest[1:]) if rest else ("", [])
    if len(project) < 2 or not all(project):
        raise InvalidArgument(_GIT_URL, "must name a project: https://gitlab.com/GROUP/PROJECT")
    project = [*map(unquote, project[:-1]), _repo_name(project[-1], "https://gitlab.com/GROUP/PROJECT")]
    clone = f"{base}/{'/'.join(project)}.git"
    if verb in ("tree", "blob", "raw") and args:
        return _WebRef(clone, "/".join(args))
    if verb == "archive" and len(args) >= 2:
        _strip_archive(args[-1], (".tar.gz", ".tar.bz2", ".tar", ".zip"))
        path = parse_qs(query).get("path", [""])[0]
        return _WebRef(clone, "/".join(args[:-1]), ref_only=True, path=path)
    raise InvalidArgument(_GIT_URL, "is a GitLab page, not a project, tree, blob or archive URL")


def _bitbucket(base: str, segments: list[str], query: str) -> _WebRef:
    workspace, repo = _owner_repo(segments, "https://bitbucket.org/WORKSPACE/REPO")
    clone = f"{base}/{workspace}/{repo}.git"
    verb, args = (segments[2], segments[3:]) if len(segments) > 2 else ("", [])
    at = parse_qs(query).get("at", [""])[0].removeprefix("refs/heads/")
    if not verb:
        return _WebRef(clone, branch=at)
    if verb in ("src", "raw") and args:
        return _WebRef(clone, "/".join(args), branch=at)
    if verb == "get" and args:
        return _WebRef(clone, _strip_archive("/".join(args), (".tar.gz", ".tar.bz2", ".zip")), ref_only=True)
    raise InvalidArgument(_GIT_URL, "is a Bitbucket page, not a repository, source or download URL")
