"""The login node run-svc itself runs on: a cluster's commands run here, with no SSH, as the local account
the cluster names (its ``ssh_user``), the way sshd would run them for that account.

Each command is ``/bin/sh -c`` in the account's home with a login's variables (HOME, USER, LOGNAME,
SHELL, PATH) and the scheduler's own that run-svc has (SLURM_CONF, LSF_ENVDIR …), and nothing else of
run-svc's environment, in a session of its own and with none of run-svc's open files. Where run-svc runs as
root it switches to the account for each command (``setpriv``: the account's uid, gid and groups, no
capabilities left); where it runs as that account already it runs the command directly; any other case,
and an account that is root, is refused. Files move as the account too: ``tar`` here piped into ``tar``
run as the account, and back, unpacked here by Python's ``tarfile`` with its ``data`` filter (what an
account sends is untrusted: no links out, no devices, no set-id bits). A job's files are read here
directly, only when they are regular files the account owns (what it could read itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shlex
import signal
import stat
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shipyard.kit.errors import FailedPrecondition
from shipyard_run.adapters.login_node import COMMAND_TIMEOUT_S, CommandFailed, TransferFailed

SWITCH_USER = "/usr/bin/setpriv"  # util-linux, on every Debian; no PAM session, unlike runuser
LOGIN_PATH = "/usr/local/bin:/usr/bin:/bin"
# The scheduler's variables a login gets from the node's configuration (sshd's, or the profile).
SCHEDULER_VARIABLES = ("SLURM_CONF", "LSF_ENVDIR", "LSF_SERVERDIR", "LSF_BINDIR", "LSF_LIBDIR", "LANG")
MISSING = 66  # what the account's side exits with when the file asked for is not there (EX_NOINPUT)
UMASK = 0o077  # what the account makes is its own


@dataclass(frozen=True)
class LocalAccount:
    """The account a cluster's commands run as here, and whether run-svc switches to it for each."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str
    switch: bool


def account_refusal(user: str) -> str:
    """Why run-svc cannot run commands here as the local account ``user`` ("" when it can)."""
    try:
        _account(user)
    except FailedPrecondition as exc:
        return exc.problem
    return ""


def _account(user: str) -> LocalAccount:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise FailedPrecondition(f"this login node has no local account {user!r} for jobs to run as",
                                 field="cluster.ssh_user") from None
    if entry.pw_uid == 0:
        raise FailedPrecondition(f"the account {user!r} is root (uid 0): jobs must not run as root; name an "
                                 "unprivileged account", field="cluster.ssh_user")
    here = os.geteuid()
    if here not in (0, entry.pw_uid):
        raise FailedPrecondition(f"run-svc runs as {_name_of(here)}, so it can run commands only as that "
                                 f"account, not as {user!r} (or, running as root, as any unprivileged one)",
                                 field="cluster.ssh_user")
    return LocalAccount(user, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell or "/bin/sh",
                        switch=here == 0)


def _name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


class LocalNode:
    """The login node run-svc runs on, reached as the local account ``user`` (a cluster's ``ssh_user``)."""

    def __init__(self, user: str, key: str = "") -> None:
        self._user = user
        self.key = key

    async def user(self) -> str:
        """The account's user name."""
        return self._user

    def _as_account(self, command: str) -> tuple[list[str], dict[str, str], str]:
        """The argv, environment and working directory that run ``command`` as the account."""
        account = _account(self._user)
        argv = ["/bin/sh", "-c", command]
        if account.switch:
            argv = [SWITCH_USER, f"--reuid={account.uid}", f"--regid={account.gid}", "--init-groups",
                    "--inh-caps=-all", "--", *argv]
        path = LOGIN_PATH + (f":{os.environ['LSF_BINDIR']}" if os.environ.get("LSF_BINDIR") else "")
        env = {name: os.environ[name] for name in SCHEDULER_VARIABLES if name in os.environ}
        env |= {"HOME": account.home, "USER": account.name, "LOGNAME": account.name, "SHELL": account.shell,
                "PATH": path}
        return argv, env, account.home if os.path.isdir(account.home) else "/"

    async def _spawn(self, command: str, stdin: int | None, stdout: int | None) -> asyncio.subprocess.Process:
        argv, env, cwd = self._as_account(command)
        return await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=stdout, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
            start_new_session=True, umask=UMASK)

    async def run(self, command: str, stdin: bytes | None = None) -> str:
        """Run ``command`` (a shell line) as the account; its stdout, or CommandFailed."""
        process = await self._spawn(command, asyncio.subprocess.PIPE if stdin is not None else
                                    asyncio.subprocess.DEVNULL, asyncio.subprocess.PIPE)
        out, err = await _finished(process, command, stdin)
        if process.returncode != 0:
            raise CommandFailed(command, process.returncode or -1, err.decode(errors="replace"))
        return out.decode(errors="replace")

    async def put_tree(self, local: Path, remote: str) -> None:
        """Copy the directory ``local`` to ``remote`` (which must not exist yet), written by the account."""
        unpack = f"mkdir -- {(to := shlex.quote(remote))} && exec tar -x -p --no-same-owner -f - -C {to}"
        read_end, write_end = os.pipe()
        try:
            packer = await asyncio.create_subprocess_exec(
                "tar", "-c", "-f", "-", "-C", str(local), ".", stdin=asyncio.subprocess.DEVNULL,
                stdout=write_end, stderr=asyncio.subprocess.PIPE)
            try:
                unpacker = await self._spawn(unpack, read_end, asyncio.subprocess.DEVNULL)
            except BaseException:
                packer.kill()
                await packer.wait()
                raise
        finally:
            os.close(read_end)
            os.close(write_end)
        # No time limit: a run's inputs may take long to copy (as over SFTP).
        (_, unpacked), (_, packed) = await asyncio.gather(_finished(unpacker, unpack, limit_s=None),
                                                          _finished(packer, "tar -c", limit_s=None))
        if unpacker.returncode != 0:
            raise TransferFailed(unpack, unpacker.returncode or -1, unpacked.decode(errors="replace"))
        if packer.returncode != 0:
            raise TransferFailed("tar -c", packer.returncode or -1, packed.decode(errors="replace"))

    async def get_tree(self, remote: str, local: Path) -> None:
        """Copy the directory ``remote`` to ``local`` (which must not exist yet), read as the account; links
        there are followed as the account follows them."""
        pack = f"exec tar -c -h -f - -C {shlex.quote(remote)} ."
        argv, env, cwd = self._as_account(pack)
        await asyncio.to_thread(_unpack_from, argv, env, cwd, local, pack)

    async def get_file(self, remote: str, local: Path) -> bool:
        """Copy the file ``remote`` to ``local``, read as the account; False when it does not exist."""
        command = f"[ -e {shlex.quote(remote)} ] || exit {MISSING}; exec cat -- {shlex.quote(remote)}"
        argv, env, cwd = self._as_account(command)
        return await asyncio.to_thread(_copy_out, argv, env, cwd, local, command)

    async def read(self, path: str, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the file from ``offset`` (empty when it does not exist). Read here, not
        by a command (a running job's files are read every second): only a regular file the account owns,
        which it could read itself, and never through a link at its end."""
        return await asyncio.to_thread(_read_owned, path, _account(self._user).uid, offset, max_bytes)

    async def exists(self, path: str) -> bool:
        """Whether ``path`` exists, as the account sees it."""
        try:
            await self.run(f"[ -e {shlex.quote(path)} ]")
        except CommandFailed as exc:
            if exc.code == 1:
                return False
            raise
        return True

    async def close(self) -> None:
        """Nothing is held open between commands."""


async def _finished(process: asyncio.subprocess.Process, command: str, stdin: bytes | None = None,
                    limit_s: float | None = COMMAND_TIMEOUT_S) -> tuple[bytes, bytes]:
    """The process's stdout and stderr once it exits; after ``limit_s`` it is killed, its session with it,
    and CommandFailed says so."""
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), limit_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise CommandFailed(command, 124, f"timed out after {COMMAND_TIMEOUT_S:.0f} s") from None
    return out or b"", err or b""


def _unpack_from(argv: list[str], env: dict[str, str], cwd: str, local: Path, command: str) -> None:
    """Unpack into ``local`` the tar stream the account's ``argv`` writes (untrusted: the data filter)."""
    local.mkdir()
    with tempfile.TemporaryFile() as errors, subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=cwd,
            start_new_session=True, umask=UMASK) as process:
        assert process.stdout is not None
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                archive.extractall(local, filter="data")
        except tarfile.TarError as exc:
            process.kill()
            code = process.wait()
            raise TransferFailed(command, code or -1, f"{_told(errors)} {exc}".strip()) from exc
        if process.wait() != 0:
            raise TransferFailed(command, process.returncode, _told(errors))


def _copy_out(argv: list[str], env: dict[str, str], cwd: str, local: Path, command: str) -> bool:
    """Write to ``local`` what the account's ``argv`` prints; False when it said the file is missing."""
    with open(local, "wb") as out:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, env=env,
                              cwd=cwd, start_new_session=True, umask=UMASK, check=False)
    if done.returncode == MISSING:
        local.unlink()
        return False
    if done.returncode != 0:
        raise TransferFailed(command, done.returncode, done.stderr.decode(errors="replace"))
    return True


def _told(errors: IO[bytes]) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace")


def _read_owned(path: str, uid: int, offset: int, max_bytes: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_uid != uid:
            raise PermissionError(f"{path} is not a regular file of the cluster's account: not read")
        handle.seek(offset)
        return handle.read(max_bytes)
