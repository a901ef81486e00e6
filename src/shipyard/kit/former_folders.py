"""A service's folder in the data directory, carried over from the name an older version gave it.

Older versions kept a service's files under a shorter name (``repo/`` for repo-svc); each service
now has one name everywhere, its folder included. At start, before anything opens its files, a
service moves them from the former folder to its own, once (``kit.service.serve`` does it, so it
happens wherever a service runs: under ``shipyard up`` or on its own volume in Kubernetes).
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shipyard.kit.health import store_dir
from shipyard.kit.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FormerFolder:
    """Where an older version kept a service's files, under the data directory."""

    name: str
    # The entries (glob patterns) that are the service's; empty: all of the folder.
    entries: tuple[str, ...] = ()


FORMER_FOLDERS: Mapping[str, FormerFolder] = {
    "repo-svc": FormerFolder("repo"),
    # run/ is also the embedded supervisor's (its lock, its state, the NATS configuration): only
    # run-svc's store and its runs' workspaces move.
    "run-svc": FormerFolder("run", ("store.db*", "workspaces")),
    "serving-svc": FormerFolder("serving"),
    "lineage-svc": FormerFolder("lineage"),
}


class FolderConflict(RuntimeError):
    """The service's files are in both its former folder and its own: which to keep is not ours
    to guess."""


def _theirs(folder: Path, former: FormerFolder) -> list[Path]:
    if not folder.is_dir():
        return []
    found = sorted(folder.iterdir())
    if not former.entries:
        return found
    return [entry for entry in found if any(fnmatch.fnmatchcase(entry.name, p) for p in former.entries)]


def move_former_folder(settings: Settings) -> list[Path]:
    """Move the service's files from its former folder in the data directory into its own
    (``settings.service_dir()``), and say where they are now; nothing to move: ``[]``.

    An entry already in the new folder is never replaced, nor is a store that SHIPYARD_STORE_URL
    names in the former folder moved away from under it: ``FolderConflict`` says what to do. A
    move cut short (the process killed between two entries) goes on at the next start.
    """
    service = settings.service
    former = FORMER_FOLDERS.get(service)
    if former is None or former.name == service:
        return []
    old, new = settings.data_dir / former.name, settings.service_dir()
    entries = _theirs(old, former)
    if not entries:
        return []
    named = store_dir(settings.store_url)
    if named is not None and named.resolve() == old.resolve():
        raise FolderConflict(f"SHIPYARD_STORE_URL names a file in {old}, where older versions kept "
                             f"{service}'s files: point it into {new} (the service moves them there "
                             "at start)")
    clashes = [entry.name for entry in entries if (new / entry.name).exists()]
    if clashes:
        raise FolderConflict(
            f"{service}'s files are in both {old} (from an older version) and {new}: "
            f"{', '.join(clashes)}; keep one of them (move the other away) and start again")
    new.mkdir(mode=0o700, parents=True, exist_ok=True)
    moved = []
    for entry in entries:
        try:
            entry.rename(new / entry.name)
        except OSError as exc:
            raise FolderConflict(f"could not move {entry} to {new}: {exc}; move it there by hand "
                                 "and start again") from None
        moved.append(new / entry.name)
    if not former.entries:
        with contextlib.suppress(OSError):  # something new in it since: it stays
            old.rmdir()
    log.warning("%s: moved %s from %s to %s (the folder now has the service's name)", service,
                ", ".join(entry.name for entry in entries), old, new)
    return moved


__all__ = ["FORMER_FOLDERS", "FolderConflict", "FormerFolder", "move_former_folder"]
