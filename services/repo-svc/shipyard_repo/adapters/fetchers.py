"""Fetching downloaded sources into a directory: git (the git CLI), public URLs (aiohttp), S3
(the MinIO SDK), GCS (its JSON API, adapters/gcs.py).

Every connection goes through one ``Egress`` (shipyard.kit.egress): a host is resolved once, every
address it resolves to is checked (the domain's check is syntactic), and the connection is made to
a checked address — a name that resolves to a loopback or private address is refused unless the
operator allows private sources, one that resolves to the cloud metadata service even then. git is
pinned to the checked addresses (curl's resolve list, ssh's HostName), follows no HTTP redirect and
may use only the transport of its URL; URL imports follow up to ``MAX_REDIRECTS`` redirects, each
hop checked like the first; S3 follows none.
Secrets reach git through an askpass program or an SSH key file readable by this process only,
never through the command line or a URL.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from shipyard.kit.addresses import IPAddress, parse_ip
from shipyard.kit.archive import ArchiveError, archive_kind, extract
from shipyard.kit.egress import Egress, EgressRefused, failure, private_policy
from shipyard.kit.errors import InvalidArgument
from shipyard_repo.adapters.gcs import GcsFetch
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.app.ports import SourceFetcher
from shipyard_repo.domain.sources import (
    ALLOW_PRIVATE_ENV,
    GcsSource,
    GitSource,
    S3Source,
    Source,
    UrlSource,
    check_host,
)

CHUNK = 1 << 20
GIT_TIMEOUT = 600.0
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GIT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_GIT_REDIRECTED = re.compile(r"returned error: (30[0-9])")
# http.curloptResolve, which holds git's curl to the checked addresses, came with git 2.37.
_GIT_PINS_FROM = (2, 37)


def source_egress(allow_private: bool) -> Egress:
    """Where imports may connect: public addresses, and private ones if the operator allows them."""
    return Egress(private_policy(allow_private, ALLOW_PRIVATE_ENV))


class Fetchers(SourceFetcher):
    """Dispatches on the kind of source."""

    def __init__(
        self, allow_private: bool, gcs: GcsFetch | None = None, egress: Egress | None = None
    ) -> None:
        self._allow_private = allow_private
        self._egress = egress or source_egress(allow_private)
        self._gcs = gcs or GcsFetch(egress=self._egress)

    async def fetch(self, source: Source, into: Path, secret: str | None, username: str = "") -> str:
        try:
            return await self._fetch(source, into, secret, username)
        except (EgressRefused, aiohttp.ClientError) as exc:
            raise FetchFailed(failure(exc)) from None

    async def _fetch(self, source: Source, into: Path, secret: str | None, username: str) -> str:
        if isinstance(source, GitSource):
            return await GitFetch(self._egress).fetch(source, into, secret, username)
        if isinstance(source, GcsSource):
            await self._gcs.fetch(source, into, secret)
        elif isinstance(source, UrlSource):
            await UrlFetch(self._egress, self._allow_private).fetch(source, into)
        elif isinstance(source, S3Source):
            await S3Fetch(self._egress).fetch(source, into, secret, username)
        else:
            raise FetchFailed(f"importing from a {source.KIND} source is not supported yet")
        return ""


@dataclass(frozen=True)
class GitTarget:
    """Where a git URL leads: git's name for its transport, the host and the port (no host for file)."""

    protocol: str
    host: str
    port: int


def git_target(url: str) -> GitTarget:
    """The transport, host and port of a git URL that passed the domain's check."""
    if url.lower().startswith("file:"):
        return GitTarget("file", "", 0)
    if "://" in url:
        parts = urlsplit(url)
        protocol = parts.scheme.lower()
        return GitTarget(protocol, parts.hostname or "", parts.port or _GIT_PORTS[protocol])
    rest = url.split("@", 1)[-1]  # user@host:path or user@[v6]:path
    host = rest[1:].split("]", 1)[0] if rest.startswith("[") else rest.split(":", 1)[0]
    return GitTarget("ssh", host.lower(), _GIT_PORTS["ssh"])


class GitFetch:
    """A shallow clone of the branch (or the commit), without the .git directory."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress

    async def fetch(self, source: GitSource, into: Path, secret: str | None, username: str) -> str:
        """Clone, keep the files; the commit checked out (its full sha)."""
        target = git_target(source.url)
        addresses = await self._addresses(target)
        with tempfile.TemporaryDirectory(prefix="shipyard-git-") as tmp:
            env = _git_env(Path(tmp), target, addresses, secret, username)
            clone = Path(tmp) / "clone"
            args = ["clone", "--quiet", "--no-tags", "--single-branch"]
            if not source.commit:
                args += ["--depth", "1"]
            if source.branch:
                args += ["--branch", source.branch]
            await _git([*args, "--", _pinned_url(source.url, target, addresses), str(clone)], env)
            if source.commit:
                await _git(["-C", str(clone), "checkout", "--quiet", "--detach", source.commit], env)
            commit = (await _git(["-C", str(clone), "rev-parse", "HEAD"], env)).strip()
            shutil.rmtree(clone / ".git")
            chosen = clone / source.path if source.path else clone
            if not chosen.is_dir():
                raise FetchFailed(f"the repository has no folder {source.path!r}")
            for item in chosen.iterdir():
                shutil.move(str(item), into / item.name)
        return commit

    async def _addresses(self, target: GitTarget) -> list[IPAddress]:
        """The checked addresses git may connect to; none for a file URL."""
        if not target.host:
            return []
        if target.protocol in ("http", "https") and _is_name(target.host):
            version = await asyncio.to_thread(git_version)
            if version < _GIT_PINS_FROM:
                raise FetchFailed(
                    f"git {'.'.join(map(str, version))} cannot be held to the address that was checked "
                    f"(that needs git {'.'.join(map(str, _GIT_PINS_FROM))} or later): the operator must "
                    "upgrade git to import over http(s)"
                )
        try:
            return await self._egress.resolve(target.host, target.port)
        except OSError as exc:
            raise FetchFailed(f"{target.host}: cannot be resolved ({exc})") from None


@functools.cache
def git_version() -> tuple[int, int]:
    """git's major and minor version (asked once)."""
    said = subprocess.run(["git", "version"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"(\d+)\.(\d+)", said)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _git_env(
    tmp: Path, target: GitTarget, addresses: list[IPAddress], secret: str | None, username: str
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C",
        **_git_config(target, addresses),
    }
    if target.protocol == "ssh":
        env["GIT_SSH_COMMAND"] = _ssh_command(tmp, target, addresses[0], _ssh_key(tmp, secret))
    elif secret is not None and target.protocol in ("http", "https"):
        askpass = tmp / "askpass.sh"
        # git asks for "Username for ..." then "Password for ...": answer from the environment.
        askpass.write_text(
            '#!/bin/sh\ncase "$1" in Username*) echo "$SHIPYARD_GIT_USER";; '
            '*) echo "$SHIPYARD_GIT_SECRET";; esac\n'
        )
        askpass.chmod(stat.S_IRWXU)
        env.update(
            GIT_ASKPASS=str(askpass),
            SHIPYARD_GIT_SECRET=secret,
            SHIPYARD_GIT_USER=username or "x-access-token",
        )
    return env


def _git_config(target: GitTarget, addresses: list[IPAddress]) -> dict[str, str]:
    """git settings (as GIT_CONFIG_* variables) that keep it on the checked route: only the URL's
    own transport (no ext::, no file:// through a submodule or a redirect), no HTTP redirect (it
    would lead to a host nobody checked), and curl resolving the name to the checked addresses."""
    settings = [
        ("protocol.allow", "never"),
        (f"protocol.{target.protocol}.allow", "always"),
        ("http.followRedirects", "false"),
    ]
    if target.protocol in ("http", "https") and addresses and _is_name(target.host):
        pinned = ",".join(f"[{ip}]" if ip.version == 6 else str(ip) for ip in addresses)
        # curl matches the name as written in the URL; a trailing dot is one more spelling of it.
        for name in dict.fromkeys((target.host, target.host.rstrip("."))):
            settings.append(("http.curloptResolve", f"{name}:{target.port}:{pinned}"))
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _is_name(host: str) -> bool:
    """Whether ``host`` is a DNS name (an address written out is never resolved: nothing to pin)."""
    return parse_ip("host", host.strip("[]")) is None


def _ssh_key(tmp: Path, secret: str | None) -> Path | None:
    if secret is None:
        return None
    key = tmp / "id_key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.strip() + "\n")
    return key


def _ssh_command(tmp: Path, target: GitTarget, address: IPAddress, key: Path | None) -> str:
    """ssh connecting to the checked address; the host key is remembered under the host's name."""
    options = [
        "-o", "BatchMode=yes",
        "-o", f"HostName={address}",
        "-o", f"HostKeyAlias={target.host}",
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", f"UserKnownHostsFile={tmp}/known_hosts",
    ]
    if key is not None:
        options = ["-i", str(key), "-o", "IdentitiesOnly=yes", *options]
    return shlex.join(["ssh", *options])


def _pinned_url(url: str, target: GitTarget, addresses: list[IPAddress]) -> str:
    """The git daemon protocol connects by itself: give it the checked address for the name."""
    if target.protocol != "git" or not addresses or not _is_name(target.host):
        return url
    ip = addresses[0]
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return urlunsplit(urlsplit(url)._replace(netloc=f"{host}:{target.port}"))


async def _git(args: list[str], env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), GIT_TIMEOUT)
    except TimeoutError:
        process.kill()
        raise FetchFailed(f"git {args[0]} took longer than {GIT_TIMEOUT:.0f} s") from None
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        if redirected := _GIT_REDIRECTED.search(text):
            raise FetchFailed(
                f"git {args[0]} failed: the server answered with a redirect (HTTP {redirected[1]}), and "
                "redirects are not followed (they could lead to any host): give the repository's final URL"
            )
        raise FetchFailed(f"git {args[0]} failed: {text[-500:]}")
    return output.decode(errors="replace")


class UrlFetch:
    """A public URL: one file, extracted when asked and it is an archive. Redirects are followed
    (download links often redirect, e.g. GitHub's release assets), at most ``MAX_REDIRECTS``, each
    hop checked as the URL was: its scheme, its host's name and every address it resolves to."""

    def __init__(self, egress: Egress, allow_private: bool) -> None:
        self._egress = egress
        self._allow_private = allow_private

    async def fetch(self, source: UrlSource, into: Path) -> None:
        name = Path(urlsplit(source.url).path).name or "download"
        target = into.parent / f"download-{name}"
        await self._download(source.url, target)
        if source.extract and archive_kind(name):
            try:
                await asyncio.to_thread(extract, target, into)  # into is empty: extract replaces it
            except ArchiveError as exc:
                raise FetchFailed(f"{name}: {exc}") from None
        else:
            target.replace(into / name)

    async def _download(self, url: str, target: Path) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
        async with self._egress.session(timeout) as session:
            for _ in range(MAX_REDIRECTS + 1):
                async with session.get(url, allow_redirects=False) as reply:
                    if reply.status in _REDIRECTS:
                        url = self._next_hop(url, reply.headers.get("Location", ""))
                        continue
                    if reply.status != 200:
                        raise FetchFailed(f"GET {url} answered HTTP {reply.status}")
                    with target.open("wb") as out:
                        async for chunk in reply.content.iter_chunked(CHUNK):
                            await asyncio.to_thread(out.write, chunk)
                    return
        raise FetchFailed(f"GET {url}: more than {MAX_REDIRECTS} redirects")

    def _next_hop(self, url: str, location: str) -> str:
        """Where a redirect leads, if it may be followed: http(s), never from https down to
        http, to a host that passes the same check as the URL's (its addresses are checked when
        connecting)."""
        if not location:
            raise FetchFailed(f"GET {url} redirected without saying where")
        hop = urljoin(url, location)
        parts = urlsplit(hop)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchFailed(f"GET {url} redirected to a {scheme}: URL; only http(s) is followed")
        if scheme == "http" and urlsplit(url).scheme.lower() == "https":
            raise FetchFailed(f"GET {url} redirected from https to http ({hop}); that is not followed")
        try:
            check_host("host", parts.hostname or "", self._allow_private)
        except InvalidArgument as exc:
            raise FetchFailed(f"GET {url} redirected to {hop}, which is refused: {exc.problem}") from None
        return hop


class S3Fetch:
    """Every object under the bucket's prefix, at its path below the prefix."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress

    async def fetch(self, source: S3Source, into: Path, secret: str | None, username: str) -> None:
        endpoint = urlsplit(source.endpoint) if source.endpoint else None
        host = endpoint.netloc if endpoint else f"s3.{source.region or 'us-east-1'}.amazonaws.com"
        client = Minio(
            host,
            access_key=username or None,
            secret_key=secret,
            secure=endpoint is None or endpoint.scheme == "https",
            region=source.region or None,
            http_client=self._http_client(),
        )
        await asyncio.to_thread(_download_prefix, client, source.bucket, source.prefix, into)

    def _http_client(self) -> urllib3.PoolManager:
        """MinIO's own client settings, connecting through the egress and following no redirect."""
        seconds = 300
        return self._egress.pool_manager(
            timeout=urllib3.Timeout(connect=seconds, read=seconds),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(
                total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504], redirect=False
            ),
        )


def _download_prefix(client: Minio, bucket: str, prefix: str, into: Path) -> None:
    base = f"{prefix.strip('/')}/" if prefix else ""
    try:
        for item in client.list_objects(bucket, prefix=base, recursive=True):
            name = str(item.object_name)
            relative = name[len(base) :]
            if not relative or name.endswith("/"):
                continue
            target = (into / relative).resolve()
            if not target.is_relative_to(into.resolve()):
                raise FetchFailed(f"object {name!r} would land outside the dataset")
            target.parent.mkdir(parents=True, exist_ok=True)
            client.fget_object(bucket, name, str(target))
    except S3Error as exc:
        raise FetchFailed(f"S3: {exc.code}: {exc.message}") from None
    except ServerError as exc:
        raise FetchFailed(f"S3: the endpoint answered HTTP {exc.status_code}") from None
    except InvalidResponseError:
        # Not an S3 document: say so, never what the server sent (it may be any service).
        raise FetchFailed("S3: the endpoint's answer is not an S3 answer") from None
    except urllib3.exceptions.HTTPError as exc:
        raise FetchFailed(f"S3: {_unreachable(exc)}") from None


def _unreachable(error: urllib3.exceptions.HTTPError) -> str:
    """Why the endpoint could not be asked, in fixed words: urllib3's own messages may quote what
    answered (a bad status line is another service's banner)."""
    reason = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "cannot resolve the endpoint's host"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return "the endpoint did not answer in time"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return "cannot connect to the endpoint"
    if isinstance(reason, urllib3.exceptions.SSLError):
        return "TLS error"
    return "the endpoint's answer is not an HTTP response"
