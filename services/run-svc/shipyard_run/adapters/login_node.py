"""A cluster's login node over SSH (asyncssh): one connection per cluster, opened on first use and
opened again when it drops; commands, and files in and out through SFTP on the same connection.

The login node's host key is checked on every connection: the one the operator gave, or the one the
first connection saw (pinned then through ``pin``, like OpenSSH's ``accept-new``). A login node that
shows another key is refused, naming both fingerprints.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import asyncssh

CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 120.0
# After a failed connection, calls fail at once with the same reason for this long: a login node out
# of reach must not hold up every poll of every run for the connect timeout.
RETRY_AFTER_S = 15.0


class LoginFailed(Exception):
    """The login node could not be reached or refused us; the message says which and why."""


class CommandFailed(Exception):
    """A command on the login node exited non-zero; the message holds its stderr."""

    def __init__(self, command: str, code: int, stderr: str) -> None:
        super().__init__(f"{command.split()[0]} exited with code {code}: {stderr.strip()[-500:]}")
        self.code = code
        self.stderr = stderr


class TransferFailed(OSError):
    """Files could not be copied to or from the account's (one it cannot read, a full disk …): the
    message says which and why. An OSError: a run whose outputs cannot be fetched ends saying so, rather
    than being tried again at every tick."""

    def __init__(self, command: str, code: int, stderr: str) -> None:
        super().__init__(f"{command} exited with code {code}: {stderr.strip()[-500:]}")


@dataclass(frozen=True)
class SshAccount:
    """Where and as whom run-svc signs in: ``private_key`` the key's text (OpenSSH or PEM; "" = run-svc's
    own keys in ~/.ssh), ``host_key`` the login node's public key ("" = not pinned yet)."""

    host: str
    port: int
    user: str
    private_key: str = ""
    host_key: str = ""

    @property
    def label(self) -> str:
        """user@host:port, as messages name it."""
        return f"{self.user}@{self.host}:{self.port}"


KeySource = Callable[[], Awaitable[SshAccount]]
"""Gives the account to sign in with, when a connection is made (credentials are read then)."""
HostKeyPin = Callable[[str], Awaitable[None]]
"""Keeps the host key a first connection saw."""


class LoginNode:
    """A login node reached as one account; ``key`` tells accounts apart (e.g. whose login it is)."""

    def __init__(self, account: KeySource, pin: HostKeyPin | None = None, key: str = "") -> None:
        self._account = account
        self._pin = pin
        self.key = key
        self._user = ""
        self._connection: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()
        self._pinned = ""  # the host key this node's first connection saw, when none was given
        self._failed: tuple[float, LoginFailed] | None = None  # when the last connection failed, and why
        self.label = ""

    async def _connect(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._connection is not None and not self._connection.is_closed():
                return self._connection
            if self._failed is not None and time.monotonic() - self._failed[0] < RETRY_AFTER_S:
                raise self._failed[1]
            account = await self._account()
            if not account.host_key and self._pinned:
                account = replace(account, host_key=self._pinned)
            self.label, self._user = account.label, account.user
            try:
                self._connection = await _open(account)
            except LoginFailed as exc:
                self._failed = (time.monotonic(), exc)
                raise
            self._failed = None
            self._sftp = None
            if not account.host_key:
                seen = self._connection.get_server_host_key()
                if seen is not None:
                    self._pinned = seen.export_public_key().decode().strip()
                    if self._pin is not None:
                        await self._pin(self._pinned)
            return self._connection

    async def user(self) -> str:
        """The account's user name on the cluster."""
        if not self._user:
            self._user = (await self._account()).user
        return self._user

    async def run(self, command: str, stdin: bytes | None = None) -> str:
        """Run ``command`` (a shell line) on the login node; its stdout, or CommandFailed."""
        connection = await self._connect()
        try:
            done = await connection.run(command, input=stdin, encoding=None, timeout=COMMAND_TIMEOUT_S,
                                        check=False)
        except (OSError, asyncssh.Error) as exc:
            await self.close()
            raise LoginFailed(f"the login node {self.label} dropped the connection: {exc}") from exc
        out = _text(done.stdout)
        if done.exit_status != 0:
            raise CommandFailed(command, done.exit_status or -1, _text(done.stderr))
        return out

    async def _files(self) -> asyncssh.SFTPClient:
        connection = await self._connect()
        if self._sftp is None:
            self._sftp = await connection.start_sftp_client()
        return self._sftp

    async def put_tree(self, local: Path, remote: str) -> None:
        """Copy the directory ``local`` to ``remote`` (which must not exist yet)."""
        sftp = await self._files()
        try:
            await sftp.put(str(local), remote, recurse=True, preserve=True)
        except asyncssh.SFTPError as exc:
            raise TransferFailed(f"sftp put {remote}", exc.code, exc.reason) from exc

    async def get_tree(self, remote: str, local: Path) -> None:
        """Copy the directory ``remote`` to ``local`` (which must not exist yet)."""
        sftp = await self._files()
        try:
            await sftp.get(remote, str(local), recurse=True)
        except asyncssh.SFTPError as exc:
            raise TransferFailed(f"sftp get {remote}", exc.code, exc.reason) from exc

    async def get_file(self, remote: str, local: Path) -> bool:
        """Copy the file ``remote`` to ``local``; False when it does not exist."""
        sftp = await self._files()
        try:
            await sftp.get(remote, str(local))
        except asyncssh.SFTPNoSuchFile:
            return False
        return True

    async def read(self, path: str, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the file from ``offset`` (empty when it does not exist)."""
        sftp = await self._files()
        try:
            async with sftp.open(path, "rb") as handle:
                await handle.seek(offset)
                data = await handle.read(max_bytes)
        except asyncssh.SFTPNoSuchFile:
            return b""
        return data if isinstance(data, bytes) else data.encode()

    async def exists(self, path: str) -> bool:
        """Whether ``path`` exists there."""
        sftp = await self._files()
        return bool(await sftp.exists(path))

    async def close(self) -> None:
        """Close the connection (the next call opens another)."""
        connection, self._connection, self._sftp = self._connection, None, None
        if connection is not None:
            connection.close()
            await connection.wait_closed()


async def _open(account: SshAccount) -> asyncssh.SSHClientConnection:
    try:
        keys = [asyncssh.import_private_key(account.private_key)] if account.private_key else ()
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise LoginFailed(f"the SSH key for {account.label} cannot be read: {exc}") from exc
    # Pinned: only that key is trusted; not pinned yet: any key, which the caller then pins.
    trusted: tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]] | None = (
        ([asyncssh.import_public_key(account.host_key)], [], []) if account.host_key else None)
    try:
        return await asyncio.wait_for(asyncssh.connect(
            account.host, account.port, username=account.user, client_keys=keys or None,
            known_hosts=trusted, config=None, agent_path=None, password=None,
            keepalive_interval=30, preferred_auth="publickey"), CONNECT_TIMEOUT_S)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise LoginFailed(f"the login node {account.label} showed a host key other than the one pinned "
                          f"for it ({_fingerprint(account.host_key)}): refused; {exc.reason}") from exc
    except asyncssh.PermissionDenied as exc:
        raise LoginFailed(f"the login node {account.label} refused the key: {exc.reason}") from exc
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        raise LoginFailed(f"the login node {account.label} could not be reached: {exc or type(exc).__name__}"
                          ) from exc


def _fingerprint(public_key: str) -> str:
    try:
        return str(asyncssh.import_public_key(public_key).get_fingerprint())
    except (asyncssh.KeyImportError, ValueError):
        return "unreadable"


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return str(data or "")


def quoted(*words: str) -> str:
    """A shell line of ``words``, each quoted."""
    return " ".join(shlex.quote(word) for word in words)
