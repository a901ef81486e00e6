"""Versions read straight from a directory on the platform's host (CreateVersionFromPath).

On a workstation running the embedded stack, uploading a directory through the gateway would
read every file twice and copy it over loopback HTTP; here repo-svc reads each file once,
hashing it while it copies it into the blob store. Only for operators (unless the operator
grants it to everyone), only directories under the operator's roots, and only the very directory
the client sees (same device and inode), so a path that means something else on the platform's
side is never read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shipyard.kit.caller import Caller
from shipyard.kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied, ShipyardError
from shipyard_repo.app.ports import BlobUploader, Directories
from shipyard_repo.app.versions import NewVersion, Versions
from shipyard_repo.domain.paths import REFUSED, Directory, outside_roots
from shipyard_repo.domain.repos import Repo
from shipyard_repo.domain.sources import RepoKind
from shipyard_repo.domain.versions import Version


@dataclass(frozen=True)
class PathVersion:
    """What CreateVersionFromPath asks for."""

    path: str
    device: int
    inode: int
    parent_version: int = 0
    message: str = ""
    request_id: str = ""


@dataclass
class PathImports:
    """Creating versions from directories under ``roots``."""

    versions: Versions
    uploader: BlobUploader
    directories: Directories
    roots: tuple[str, ...]
    everyone: bool = False  # SHIPYARD_PATH_IMPORTS_FOR=all: not only operators may ask

    async def create(
        self, caller: Caller, kind: RepoKind, name: str, wanted: PathVersion
    ) -> tuple[Repo, Version]:
        """The next version of the repo, from the files under ``wanted.path``."""
        self._check_granted(caller)
        directory = await self._directory(wanted)
        await self.versions.check_writable(caller, kind, name, wanted.parent_version)
        try:
            manifest = await self.uploader.store_tree(Path(directory.real_path), remember=True)
        except ShipyardError:
            raise  # a full disk (NoSpace) is the platform's, not a bad path
        except (ValueError, OSError) as exc:
            raise InvalidArgument("path", _reason(exc)) from None
        new = NewVersion(manifest.digest, wanted.parent_version, wanted.message or f"from {wanted.path}",
                         wanted.request_id)
        return await self.versions.create(caller, kind, name, new)

    def _check_granted(self, caller: Caller) -> None:
        # First, before the path is even looked at: a refusal tells nothing about the host's files.
        if not self.everyone and not caller.is_operator:
            raise PermissionDenied(f"{REFUSED}: on this platform only operators may have it read a "
                                   "directory itself (SHIPYARD_PATH_IMPORTS_FOR); upload the files instead")

    async def _directory(self, wanted: PathVersion) -> Directory:
        if not os.path.isabs(wanted.path):
            raise InvalidArgument("path", f"must be an absolute path, not {wanted.path!r}")
        if not self.roots:
            raise FailedPrecondition(f"{REFUSED}: this platform reads no directories of its own (the "
                                     "operator sets SHIPYARD_PATH_IMPORT_ROOTS); upload the files instead")
        directory = await self.directories.look_up(wanted.path)
        if directory is None or (directory.device, directory.inode) != (wanted.device, wanted.inode):
            raise FailedPrecondition(f"{REFUSED}: the platform does not see the directory {wanted.path} "
                                     "that you see (it runs on another host or in a container); "
                                     "upload the files instead")
        if outside_roots(directory.real_path, self.roots):
            raise PermissionDenied(f"{REFUSED}: {directory.real_path} is outside the directories the "
                                   f"platform may read ({os.pathsep.join(self.roots)}); "
                                   "upload the files instead")
        return directory


def _reason(exc: ValueError | OSError) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)
