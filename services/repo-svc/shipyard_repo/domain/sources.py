"""Repo sources: where a repo's content comes from, and the rules each kind of source obeys.

A source is either *downloaded* into versioned storage (git, GCS, public URL, workstation upload,
S3 when versioned), *referenced* in place at run time (NFS, Redshift, Kubernetes volume, host path,
SQL, FSx, S3 when not versioned), or a *placeholder* (none) that a run's output fills.

Pure: no I/O and no DNS. Secrets are never part of a source: a source names a stored credential,
and URLs that embed a password or token are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import ClassVar, Literal, TypeAlias, get_args
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from shipyard.kit import addresses
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.rules import PATH_MAX, check_abs_path, refuse_under

from .names import check_name, check_text, check_url

ALLOW_PRIVATE_ENV = "SHIPYARD_ALLOW_PRIVATE_SOURCES"
URL_MAX = 2048
BRANCH_MAX = 255
S3_PREFIX_MAX = 1024
CA_CERT_MAX = 65536
DSN_MAX = 4096
FILENAME_MAX = 255
SQL_PROVIDERS = ("mysql", "mssql", "oracle")
SQL_CONNECTIONS = ("direct", "odbc", "jdbc")
SQL_DEFAULT_PORTS = {"mysql": 3306, "mssql": 1433, "oracle": 1521}
JDBC_PREFIXES = {"mysql": "jdbc:mysql:", "mssql": "jdbc:sqlserver:", "oracle": "jdbc:oracle:"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
# Where a run must never see the host's files: kernel interfaces, devices and system configuration.
MOUNT_FORBIDDEN = ("/proc", "/sys", "/dev", "/etc")
# A host path is mounted into runs; these would hand over the node (container runtime sockets,
# kubelet credentials, boot files) even read-only.
HOSTPATH_FORBIDDEN = (
    *MOUNT_FORBIDDEN,
    "/boot",
    "/run",
    "/var/run",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
)

Access = Literal["downloaded", "referenced", "placeholder"]


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


@dataclass(frozen=True)
class VolumeSource:
    """A Kubernetes persistent volume claim, optionally one folder of it."""

    KIND: ClassVar[str] = "volume"
    volume: str
    subpath: str = ""


@dataclass(frozen=True)
class NfsSource:
    """An export of an NFS server."""

    KIND: ClassVar[str] = "nfs"
    server: str
    path: str


@dataclass(frozen=True)
class HostPathSource:
    """A folder on every node's file system (shared storage mounted on all of them)."""

    KIND: ClassVar[str] = "hostpath"
    path: str


@dataclass(frozen=True)
class RedshiftSource:
    """An Amazon Redshift database. ``database`` is required; its default only keeps field order.

    ``endpoint`` may be empty when an API server supplies it; ``ca_cert`` is a PEM CA certificate.
    """

    KIND: ClassVar[str] = "redshift"
    endpoint: str = ""
    database: str = ""
    credential: str = ""
    ca_cert: str = ""


@dataclass(frozen=True)
class SqlSource:
    """A MySQL, MSSQL or Oracle database, reached directly or through an ODBC/JDBC ``dsn``.

    ``port`` 0 means the provider's default port.
    """

    KIND: ClassVar[str] = "sql"
    provider: str
    host: str = ""
    port: int = 0
    database: str = ""
    credential: str = ""
    connection: str = "direct"
    dsn: str = ""


@dataclass(frozen=True)
class FsxSource:
    """An Amazon FSx for Lustre file system."""

    KIND: ClassVar[str] = "fsx"
    dns_name: str
    mount_name: str
    volume_handle: str


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

SOURCE_FIELD = "repo.source"
VERSIONING_FIELD = "repo.versioning"


# ---------------------------------------------------------------------------------------------
# The kind x versioning matrix


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
            return _check_git(source, allow_private)
        case S3Source():
            return _check_s3(source, allow_private)
        case GcsSource():
            return _check_gcs(source)
        case VolumeSource():
            return _check_volume(source)
        case NfsSource():
            return _check_nfs(source, allow_private)
        case HostPathSource():
            return _check_hostpath(source)
        case RedshiftSource():
            return _check_redshift(source, allow_private)
        case SqlSource():
            return _check_sql(source, allow_private)
        case FsxSource():
            return _check_fsx(source, allow_private)
        case UrlSource():
            return _check_url_source(source, allow_private)
        case UploadSource():
            return _check_upload(source)
        case NoSource():
            return source
    raise TypeError(f"not a repo source: {source!r}")


def _field(source_kind: str, name: str) -> str:
    return f"{SOURCE_FIELD}.{source_kind}.{name}"


def _check_credential(field: str, credential: str) -> str:
    """The name of a stored credential, or empty for none."""
    return check_name(field, credential) if credential else ""


def _required(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    return value


# ---------------------------------------------------------------------------------------------
# Address safety (the rules are the kit's: shipyard.kit.addresses)


def check_host(field: str, host: str, allow_private: bool) -> str:
    """A server's host: an IPv4/IPv6 literal or a DNS name; returns its canonical spelling.

    Private, loopback and internal hosts need the operator's SHIPYARD_ALLOW_PRIVATE_SOURCES; the
    cloud metadata service, unspecified, broadcast and multicast addresses are never allowed. NFS
    servers and SQL hosts are usually private; they follow the same rule and need the operator's
    flag. The check is syntactic: the fetchers check the resolved addresses again.
    """
    return addresses.check_host(field, host, allow_private, ALLOW_PRIVATE_ENV)


# ---------------------------------------------------------------------------------------------
# URLs

_TOKEN_PREFIXES = (
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gldt-",
    "glrt-",
    "glptt-",
    "atbb",
    "atctt",
)
_USER = re.compile(r"[A-Za-z0-9._~][A-Za-z0-9._~-]*")


def _split_url(field: str, url: str) -> SplitResult:
    """``url`` parsed; whatever urllib would reject (a bad port, a broken bracket) is refused."""
    check_text(field, url, URL_MAX, multiline=False)
    if any(c.isspace() for c in url):
        raise InvalidArgument(field, "must not contain spaces (percent-encode them)")
    # Parsers disagree on '\\' (browsers read it as '/'), which hides the real host.
    if "\\" in url:
        raise InvalidArgument(field, "must not contain '\\'")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidArgument(field, f"is not a valid URL ({e})") from None
    if port == 0:
        raise InvalidArgument(field, "port must be between 1 and 65535")
    return parts


def _looks_like_token(user: str) -> bool:
    """A user name that is really an access token (GitHub and GitLab accept them there)."""
    return user.lower().startswith(_TOKEN_PREFIXES) or len(user) >= 32


def _check_userinfo(field: str, parts: SplitResult, credential_field: str | None, user_ok: bool) -> None:
    if "@" not in parts.netloc:
        return
    store = (
        f"; store it as a credential and name it in {credential_field}"
        if credential_field
        else "; the URL must work without one"
    )
    user = parts.username or ""
    if parts.password is not None:
        raise InvalidArgument(field, f"must not embed a password{store}")
    if _looks_like_token(unquote(user)):
        raise InvalidArgument(field, f"must not embed an access token{store}")
    if not user_ok:
        raise InvalidArgument(field, f"must not embed a user name{store}")


def _check_web_url(
    field: str,
    url: str,
    allow_private: bool,
    *,
    credential_field: str | None,
    user_ok: bool = False,
    endpoint: bool = False,
) -> SplitResult:
    """An http(s) URL whose host passes ``check_host``; an endpoint has no path, query or fragment."""
    _required(field, url)
    parts = _split_url(field, url)
    check_url(field, url)
    _check_userinfo(field, parts, credential_field, user_ok)
    if endpoint and (parts.path not in ("", "/") or parts.query or parts.fragment):
        raise InvalidArgument(
            field, "must be only scheme, host and port (e.g. https://minio.example.com:9000)"
        )
    check_host(f"{field}.host", parts.hostname or "", allow_private)
    return parts


def _strip_userinfo(url: str) -> str:
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1", url)


def _strip_password(url: str) -> str:
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#:@]*):[^/?#]*@", r"\1@", url)


def redacted(source: Source) -> Source:
    """The source safe to show or log: no user information in URLs, no passwords in DSNs.

    Checked sources carry no secrets (they name a credential), so this changes only sources that
    never passed ``check_source``. An ssh URL keeps its user name (it is needed and not secret).
    """
    match source:
        case GitSource():
            is_ssh = source.url.lower().startswith("ssh://")
            return replace(source, url=_strip_password(source.url) if is_ssh else _strip_userinfo(source.url))
        case S3Source():
            return replace(source, endpoint=_strip_userinfo(source.endpoint))
        case RedshiftSource():
            return replace(source, endpoint=_strip_userinfo(source.endpoint))
        case UrlSource():
            return replace(source, url=_strip_userinfo(source.url))
        case SqlSource():
            return replace(source, dsn=_redact_dsn(source.dsn))
    return source


# ---------------------------------------------------------------------------------------------
# Paths


def check_mount_path(field: str, path: str) -> str:
    """Where a run sees an input or output: an absolute, normalized POSIX path of at most 4096
    characters, not '/' and not inside /proc, /sys, /dev or /etc."""
    check_abs_path(field, path)
    refuse_under(field, path, MOUNT_FORBIDDEN)
    return path


def _check_subpath(field: str, path: str, limit: int = PATH_MAX) -> str:
    """A folder inside a repository, bucket or volume; leading and trailing '/' are dropped."""
    check_text(field, path, limit, multiline=False)
    inner = path.strip("/")
    if not inner:
        return ""
    segments = inner.split("/")
    if "" in segments:
        raise InvalidArgument(field, "must not contain '//'")
    if ".." in segments:
        raise InvalidArgument(field, "must not contain '..'")
    if "." in segments:
        raise InvalidArgument(field, "must not contain '.' as a path segment")
    return inner


# ---------------------------------------------------------------------------------------------
# Git

_GIT = "git"
_GIT_URL = _field(_GIT, "url")
_GIT_BRANCH = _field(_GIT, "branch")
_GIT_COMMIT = _field(_GIT, "commit")
_GIT_PATH = _field(_GIT, "path")
_GIT_CREDENTIAL = _field(_GIT, "credential")
_GIT_FORMS = "an https://, http://, ssh://, git://, user@host:path or file:/// URL"
_SCP = re.compile(r"(?P<user>[^@/:\s]+)@(?P<host>\[[^\]/]+\]|[^:/\[\]@]+):(?P<path>.*)")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,40}|[0-9a-fA-F]{64}")
_FULL_COMMIT = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_REF_FORBIDDEN = frozenset(" ~^:?*[\\\x7f")
_GITHUB_HOSTS = frozenset({"github.com", "www.github.com"})
_BITBUCKET_HOSTS = frozenset({"bitbucket.org", "www.bitbucket.org"})


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
    web = _web_ref(_split_url(_GIT_URL, url))
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


def _check_git(source: GitSource, allow_private: bool) -> GitSource:
    url = _required(_GIT_URL, source.url)
    check_text(_GIT_URL, url, URL_MAX, multiline=False)
    lower = url.lower()
    if lower.startswith(("http://", "https://")):
        _check_web_url(_GIT_URL, url, allow_private, credential_field=_GIT_CREDENTIAL, user_ok=True)
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
        path=_check_subpath(_GIT_PATH, normal.path),
        credential=_check_credential(_GIT_CREDENTIAL, normal.credential),
    )


def _check_git_daemon(url: str, credential: str, allow_private: bool) -> None:
    """git:// (a git daemon): read-only and unauthenticated, so a credential makes no sense."""
    parts = _split_url(_GIT_URL, url)
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
    parts = _split_url(_GIT_URL, url)
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
    parts = _split_url(_GIT_URL, url)
    if not url.startswith("file:///") or parts.netloc or parts.query or parts.fragment:
        raise InvalidArgument(_GIT_URL, "a file URL must be file:///ABSOLUTE/PATH")
    check_abs_path(_GIT_URL, parts.path)


# ---------------------------------------------------------------------------------------------
# Object stores

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
    _required(field, bucket)
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


def _check_s3(source: S3Source, allow_private: bool) -> S3Source:
    _check_s3_bucket(_field("s3", "bucket"), source.bucket)
    prefix = _check_subpath(_field("s3", "prefix"), source.prefix, S3_PREFIX_MAX)
    endpoint_field = _field("s3", "endpoint")
    if source.endpoint:
        _check_web_url(
            endpoint_field,
            source.endpoint,
            allow_private,
            credential_field=_field("s3", "credential"),
            endpoint=True,
        )
    elif not source.aws:
        raise InvalidArgument(
            endpoint_field, "is required unless aws is set (e.g. https://minio.example.com:9000)"
        )
    _check_region(_field("s3", "region"), source.region, source.aws)
    _check_credential(_field("s3", "credential"), source.credential)
    return replace(source, prefix=prefix)


def _check_region(field: str, region: str, aws: bool) -> None:
    if not region:
        return
    pattern, example = (_AWS_REGION, "us-east-1") if aws else (_OTHER_REGION, "us-east-1 or site-a")
    if not pattern.fullmatch(region):
        raise InvalidArgument(field, f"{region!r} is not a region name (e.g. {example})")


def _check_gcs_bucket(field: str, bucket: str) -> str:
    """A Cloud Storage bucket name."""
    _required(field, bucket)
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


def _check_gcs(source: GcsSource) -> GcsSource:
    _check_gcs_bucket(_field("gcs", "bucket"), source.bucket)
    prefix = _check_subpath(_field("gcs", "prefix"), source.prefix, S3_PREFIX_MAX)
    _check_credential(_field("gcs", "credential"), source.credential)
    return replace(source, prefix=prefix)


# ---------------------------------------------------------------------------------------------
# File systems

_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_FSX_MOUNT_NAME = re.compile(r"[A-Za-z0-9_-]{1,8}")
_FSX_ID = re.compile(r"fs-(?:[0-9a-f]{8}|[0-9a-f]{17})")


def _check_volume(source: VolumeSource) -> VolumeSource:
    field = _field("volume", "volume")
    _required(field, source.volume)
    if len(source.volume) > 253:
        raise InvalidArgument(field, f"must be at most 253 characters (got {len(source.volume)})")
    if not _DNS1123_SUBDOMAIN.fullmatch(source.volume):
        raise InvalidArgument(
            field,
            "must be a Kubernetes volume claim name: lower-case letters, digits, "
            "'-' and '.', starting and ending with a letter or digit",
        )
    return replace(source, subpath=_check_subpath(_field("volume", "subpath"), source.subpath))


def _check_nfs(source: NfsSource, allow_private: bool) -> NfsSource:
    check_host(_field("nfs", "server"), source.server, allow_private)
    check_abs_path(_field("nfs", "path"), source.path, allow_root=True)  # NFSv4 exports a root '/'
    return source


def _check_hostpath(source: HostPathSource) -> HostPathSource:
    field = _field("hostpath", "path")
    check_abs_path(field, source.path)
    refuse_under(field, source.path, HOSTPATH_FORBIDDEN)
    return source


def _check_fsx(source: FsxSource, allow_private: bool) -> FsxSource:
    dns_field = _field("fsx", "dns_name")
    _required(dns_field, source.dns_name)
    if addresses.parse_ip(dns_field, source.dns_name.strip("[]")) is not None:
        raise InvalidArgument(dns_field, "must be the file system's DNS name, not an IP address")
    check_host(dns_field, source.dns_name, allow_private)
    name_field = _field("fsx", "mount_name")
    if not _FSX_MOUNT_NAME.fullmatch(source.mount_name):
        raise InvalidArgument(
            name_field, "must be the file system's mount name: 1 to 8 letters, digits, '_' or '-'"
        )
    if not _FSX_ID.fullmatch(source.volume_handle):
        raise InvalidArgument(
            _field("fsx", "volume_handle"),
            "must be a file system id: 'fs-' and 8 or 17 lower-case hexadecimal digits",
        )
    return source


# ---------------------------------------------------------------------------------------------
# Databases

_REDSHIFT_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,126}")
_SQL_DATABASE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_$#@.-]*")
_SQL_DATABASE_MAX = {"mysql": 64, "mssql": 128, "oracle": 128}
_DSN_PASSWORD = re.compile(r"(?i)(pwd|passwd|password)\s*=")
_DSN_PASSWORD_VALUE = re.compile(r"(?i)((?:pwd|passwd|password)\s*=\s*)(\{[^}]*\}|[^;&]*)")
_ORACLE_USER_PASSWORD = re.compile(r"^(jdbc:oracle:[a-z0-9]+:[^@/]*)/[^@]*@")
_DSN_USERINFO = re.compile(r"(//)[^/?#;@]*@")


def _check_redshift(source: RedshiftSource, allow_private: bool) -> RedshiftSource:
    if source.endpoint:
        _check_web_url(
            _field("redshift", "endpoint"),
            source.endpoint,
            allow_private,
            credential_field=_field("redshift", "credential"),
            endpoint=True,
        )
    field = _field("redshift", "database")
    _required(field, source.database)
    if not _REDSHIFT_DATABASE.fullmatch(source.database):
        raise InvalidArgument(
            field, "must be 1 to 127 letters, digits, '_' or '$', starting with a letter or '_'"
        )
    _check_credential(_field("redshift", "credential"), source.credential)
    _check_ca_cert(_field("redshift", "ca_cert"), source.ca_cert)
    return source


def _check_ca_cert(field: str, pem: str) -> None:
    if not pem:
        return
    check_text(field, pem, CA_CERT_MAX)
    if "PRIVATE KEY" in pem:
        raise InvalidArgument(field, "contains a private key; give only the CA certificate")
    if "-----BEGIN CERTIFICATE-----" not in pem or "-----END CERTIFICATE-----" not in pem:
        raise InvalidArgument(field, "must be a PEM certificate (-----BEGIN CERTIFICATE----- ...)")


def _check_sql(source: SqlSource, allow_private: bool) -> SqlSource:
    if source.provider not in SQL_PROVIDERS:
        raise InvalidArgument(
            _field("sql", "provider"), f"must be one of {', '.join(SQL_PROVIDERS)} (got {source.provider!r})"
        )
    if source.connection not in SQL_CONNECTIONS:
        raise InvalidArgument(
            _field("sql", "connection"),
            f"must be one of {', '.join(SQL_CONNECTIONS)} (got {source.connection!r})",
        )
    _check_credential(_field("sql", "credential"), source.credential)
    if source.connection == "direct":
        return _check_sql_direct(source, allow_private)
    return _check_sql_dsn(source)


def _check_sql_direct(source: SqlSource, allow_private: bool) -> SqlSource:
    if source.dsn:
        raise InvalidArgument(_field("sql", "dsn"), "is only for odbc and jdbc connections")
    check_host(_field("sql", "host"), source.host, allow_private)
    port = source.port or SQL_DEFAULT_PORTS[source.provider]
    if not 1 <= port <= 65535:
        raise InvalidArgument(_field("sql", "port"), f"must be between 1 and 65535 (got {port})")
    field = _field("sql", "database")
    _required(field, source.database)
    limit = _SQL_DATABASE_MAX[source.provider]
    if len(source.database) > limit:
        raise InvalidArgument(field, f"must be at most {limit} characters for {source.provider}")
    if not _SQL_DATABASE.fullmatch(source.database):
        raise InvalidArgument(
            field,
            "may contain only letters, digits and '_', '$', '#', '@', '.', '-', and "
            "must start with a letter, digit or '_'",
        )
    return replace(source, port=port)


def _check_sql_dsn(source: SqlSource) -> SqlSource:
    """An ODBC or JDBC connection. Shipyard never connects through it (only the run does), so the
    server it names is not address-checked, as the platform it models does not validate it."""
    for name, value in (("host", source.host), ("database", source.database), ("port", source.port)):
        if value:
            raise InvalidArgument(
                _field("sql", name), f"must be empty with {source.connection}: the DSN names the server"
            )
    field = _field("sql", "dsn")
    _required(field, source.dsn)
    check_text(field, source.dsn, DSN_MAX, multiline=False)
    if _DSN_PASSWORD.search(source.dsn) or _ORACLE_USER_PASSWORD.match(source.dsn):
        raise InvalidArgument(
            field,
            "must not contain a password; store it as a credential and name it in "
            f"{_field('sql', 'credential')}",
        )
    if source.connection == "jdbc":
        prefix = JDBC_PREFIXES[source.provider]
        if not source.dsn.startswith(prefix):
            raise InvalidArgument(field, f"a {source.provider} JDBC URL must start with {prefix!r}")
        if _DSN_USERINFO.search(source.dsn):
            raise InvalidArgument(field, "must not embed a user name or password; store them as a credential")
    return source


def _redact_dsn(dsn: str) -> str:
    dsn = _DSN_PASSWORD_VALUE.sub(r"\1***", dsn)
    dsn = _ORACLE_USER_PASSWORD.sub(r"\1@", dsn)
    return _DSN_USERINFO.sub(r"\1", dsn)


def sql_config(source: SqlSource) -> dict[str, str | int]:
    """What a run gets as its SQL config file for a checked source: the connection details and the
    *name* of the credential, never its secret."""
    config: dict[str, str | int] = {"provider": source.provider, "connection": source.connection}
    if source.connection == "direct":
        config.update(
            host=source.host,
            port=source.port or SQL_DEFAULT_PORTS.get(source.provider, 0),
            database=source.database,
        )
    else:
        config["dsn"] = source.dsn
    config["credential"] = source.credential
    return config


# ---------------------------------------------------------------------------------------------
# Files


def _check_url_source(source: UrlSource, allow_private: bool) -> UrlSource:
    """A public URL. ``extract`` is not checked against the name: many download URLs hide it."""
    _check_web_url(_field("url", "url"), source.url, allow_private, credential_field=None)
    return source


def _check_upload(source: UploadSource) -> UploadSource:
    field = _field("upload", "filename")
    _required(field, source.filename)
    check_text(field, source.filename, FILENAME_MAX, multiline=False)
    if "/" in source.filename or "\\" in source.filename or source.filename in (".", ".."):
        raise InvalidArgument(field, "must be a file name, not a path")
    if source.extract and not source.filename.lower().endswith(ARCHIVE_SUFFIXES):
        raise InvalidArgument(
            _field("upload", "extract"), f"only an archive can be extracted: {', '.join(ARCHIVE_SUFFIXES)}"
        )
    return source
