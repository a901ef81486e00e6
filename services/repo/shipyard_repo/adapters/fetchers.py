"""Fetching downloaded sources into a directory: git (the git CLI), public URLs (aiohttp), S3
(the MinIO SDK), GCS (its JSON API, adapters/gcs.py).

Every host is checked again here, after DNS (shipyard.kit.addresses; the domain's check is
syntactic): a name that resolves to a loopback or private address is refused unless the operator
allows private sources, one that resolves to the cloud metadata service even then.
Secrets reach git through an askpass program or an SSH key file readable by this process only,
never through the command line or a URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from minio import Minio
from minio.error import S3Error

from shipyard.kit.addresses import address_problem
from shipyard.kit.archive import ArchiveError, archive_kind, extract
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
)

CHUNK = 1 << 20
GIT_TIMEOUT = 600.0


async def check_resolved(host: str, allow_private: bool) -> None:
    """Refuse a host whose addresses (after DNS) are loopback, private or link-local unless the
    operator allows private sources; the cloud metadata service (and the like) even then."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchFailed(f"{host}: cannot be resolved ({exc})") from None
    for info in infos:
        address = str(info[4][0])
        problem = address_problem(ipaddress.ip_address(address), allow_private, ALLOW_PRIVATE_ENV)
        if problem:
            raise FetchFailed(f"{host} resolves to {address}: {problem}")


class Fetchers(SourceFetcher):
    """Dispatches on the kind of source."""

    def __init__(self, allow_private: bool, gcs: GcsFetch | None = None) -> None:
        self._allow_private = allow_private
        self._gcs = gcs or GcsFetch()

    async def fetch(self, source: Source, into: Path, secret: str | None, username: str = "") -> str:
        if isinstance(source, GitSource):
            return await GitFetch(self._allow_private).fetch(source, into, secret, username)
        if isinstance(source, GcsSource):
            await self._gcs.fetch(source, into, secret)
        elif isinstance(source, UrlSource):
            await UrlFetch(self._allow_private).fetch(source, into)
        elif isinstance(source, S3Source):
            await S3Fetch(self._allow_private).fetch(source, into, secret, username)
        else:
            raise FetchFailed(f"importing from a {source.KIND} source is not supported yet")
        return ""


class GitFetch:
    """A shallow clone of the branch (or the commit), without the .git directory."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def fetch(self, source: GitSource, into: Path, secret: str | None, username: str) -> str:
        """Clone, keep the files; the commit checked out (its full sha)."""
        host = _git_host(source.url)
        if host:
            await check_resolved(host, self._allow_private)
        with tempfile.TemporaryDirectory(prefix="shipyard-git-") as tmp:
            env = _git_env(Path(tmp), source.url, secret, username)
            clone = Path(tmp) / "clone"
            args = ["clone", "--quiet", "--no-tags", "--single-branch"]
            if not source.commit:
                args += ["--depth", "1"]
            if source.branch:
                args += ["--branch", source.branch]
            await _git([*args, "--", source.url, str(clone)], env)
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


def _git_host(url: str) -> str:
    if url.startswith("file://"):
        return ""
    if "://" in url:
        return urlsplit(url).hostname or ""
    rest = url.split("@", 1)[-1]  # user@host:path or user@[v6]:path
    return rest[1:].split("]", 1)[0] if rest.startswith("[") else rest.split(":", 1)[0]


def _git_env(tmp: Path, url: str, secret: str | None, username: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C",
    }
    if secret is None:
        return env
    if url.startswith(("https://", "http://")):
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
    else:
        key = tmp / "id_key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secret.strip() + "\n")
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={tmp}/known_hosts"
        )
    return env


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
    if process.returncode != 0:
        raise FetchFailed(f"git {args[0]} failed: {output.decode(errors='replace').strip()[-500:]}")
    return output.decode(errors="replace")


class UrlFetch:
    """A public URL: one file, extracted when asked and it is an archive."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def fetch(self, source: UrlSource, into: Path) -> None:
        parts = urlsplit(source.url)
        await check_resolved(parts.hostname or "", self._allow_private)
        name = Path(parts.path).name or "download"
        target = into.parent / f"download-{name}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
        # No redirects: a redirect could lead to an address the check above never saw.
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(source.url, allow_redirects=False) as reply,
        ):
            if reply.status != 200:
                raise FetchFailed(f"GET {source.url} answered HTTP {reply.status}")
            with target.open("wb") as out:
                async for chunk in reply.content.iter_chunked(CHUNK):
                    await asyncio.to_thread(out.write, chunk)
        if source.extract and archive_kind(name):
            try:
                await asyncio.to_thread(extract, target, into)  # into is empty: extract replaces it
            except ArchiveError as exc:
                raise FetchFailed(f"{name}: {exc}") from None
        else:
            target.replace(into / name)


class S3Fetch:
    """Every object under the bucket's prefix, at its path below the prefix."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def fetch(self, source: S3Source, into: Path, secret: str | None, username: str) -> None:
        endpoint = urlsplit(source.endpoint) if source.endpoint else None
        host = endpoint.netloc if endpoint else f"s3.{source.region or 'us-east-1'}.amazonaws.com"
        await check_resolved((endpoint.hostname or "") if endpoint else host, self._allow_private)
        client = Minio(
            host,
            access_key=username or None,
            secret_key=secret,
            secure=endpoint is None or endpoint.scheme == "https",
            region=source.region or None,
        )
        await asyncio.to_thread(_download_prefix, client, source.bucket, source.prefix, into)


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
