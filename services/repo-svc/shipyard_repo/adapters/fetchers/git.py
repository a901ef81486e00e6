"""Fetching git sources with the git CLI: a shallow clone of the branch (or the commit).

git is pinned to the checked addresses (curl's resolve list, ssh's HostName), follows no HTTP
redirect and may use only the transport of its URL. Secrets reach git through an askpass program or
an SSH key file readable by this process only, never through the command line or a URL.
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
from urllib.parse import urlsplit, urlunsplit

from shipyard.kit.addresses import IPAddress, parse_ip
from shipyard.kit.egress import Egress
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.domain.sources import GitSource

GIT_TIMEOUT = 600.0
_GIT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_GIT_REDIRECTED = re.compile(r"returned error: (30[0-9])")
# http.curloptResolve, which holds git's curl to the checked addresses, came with git 2.37.
_GIT_PINS_FROM = (2, 37)


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
