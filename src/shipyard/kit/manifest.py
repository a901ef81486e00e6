"""Describe a directory as a version manifest, fast.

A dataset or model *version* is an immutable :class:`Manifest`: one :class:`ManifestEntry`
``(path, size, sha256, mode)`` per regular file. The contents live in the content-addressed blob
store (keyed by lowercase hex sha256), shared across versions, so a client uploads only the blobs
the server lacks.

:func:`scan` builds a manifest from a local directory: ``os.scandir`` walk, sha256 in a thread pool
(hashlib releases the GIL while hashing), and a :class:`HashCache` so that re-versioning a tree
re-hashes only the files that changed. :func:`copy_tree_reference` is the benchmark's baseline.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import queue
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from shipyard.kit.blob.digest import thread_buffer

CACHE_NAME = ".shipyard-cache"
"""The one name :func:`scan` skips, and only directly under the root: where the hash cache (file or
directory) conventionally lives, e.g. ``HashCache(root / CACHE_NAME)``."""

CHUNK_SIZE = 1 << 20
"""Bytes per read while hashing. Measured on this project's CI machine (page cache warm, SHA-NI):
1 MiB ``readinto`` chunks, 256 KiB chunks and ``hashlib.file_digest`` are within 1 % of each other
for small and large files, so one loop serves all sizes and keeps per-chunk progress and
cancellation. (mmap was ~9 % faster but dies with SIGBUS when a file shrinks under it.)"""

MODE_FILE = 0o644
MODE_EXECUTABLE = 0o755

MAX_PATH_BYTES = 4096
MAX_COMPONENT_BYTES = 255

PROGRESS_INTERVAL = 0.05
"""Seconds between progress calls at most: 20 a second is smooth for a bar and costs nothing."""

RACY_WINDOW_NS = 20_000_000
"""A hash is cached only when the file's ctime is older than the moment hashing began by this much.

File timestamps come from a coarse clock (one kernel tick, <= 10 ms), so a write just after we read
a file can carry the same mtime and ctime as the version we hashed; git calls this "racy clean".
Such a file is simply re-hashed by the next scan, by which time it is old enough to be cached."""

COARSE_RACY_WINDOW_NS = 2_000_000_000
"""The window for file systems with whole-millisecond-or-coarser timestamps (FAT: 2 s, HFS+: 1 s)."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CACHE_FORMAT = "shipyard-hash-cache"
_CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Paths


def validate_path(path: str) -> str:
    """Return ``path`` if it is a valid manifest path; raise ValueError naming the problem otherwise.

    A manifest path is relative and POSIX (``/`` separators), with no empty, ``.`` or ``..``
    components, no backslash, no control character (C0, DEL, C1; NUL and newline included), valid
    UTF-8, at most 4096 bytes in all and 255 bytes per component: a name that every client can
    materialize on any operating system without escaping the version's directory.
    """
    if not isinstance(path, str):
        raise ValueError(f"invalid path {path!r}: not a string")
    if not _looks_valid(path):
        raise ValueError(f"invalid path {_shorten(path)!r}: {_problem(path) or 'invalid'}")
    return path


def _looks_valid(path: str) -> bool:
    """Whether :func:`_problem` finds nothing, as a few C-speed string operations: scan validates
    every name it meets, and almost all are valid."""
    if not path or path[0] == "/" or "\\" in path or _CONTROL.search(path):
        return False
    if path in (".", "..") or path.startswith(("../", "./")) or path.endswith(("/..", "/.", "/")):
        return False
    if "//" in path or "/../" in path or "/./" in path:
        return False
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    if size <= MAX_COMPONENT_BYTES:
        return True
    components = path.split("/")
    return size <= MAX_PATH_BYTES and all(len(c.encode("utf-8")) <= MAX_COMPONENT_BYTES for c in components)


def _problem(path: str) -> str | None:
    """What is wrong with ``path`` as a manifest path, in words; None if nothing."""
    if not path:
        return "empty"
    control = _CONTROL.search(path)
    if control:
        return f"contains control character U+{ord(control.group()):04X}"
    if "\\" in path:
        return "contains a backslash (separate components with '/')"
    if path.startswith("/"):
        return "absolute (must be relative to the version's root)"
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if size > MAX_PATH_BYTES:
        return f"{size} bytes long (at most {MAX_PATH_BYTES})"
    return next(filter(None, map(_component_problem, path.split("/"))), None)


def _component_problem(component: str) -> str | None:
    if not component:
        return "empty component (leading, trailing or doubled '/')"
    if component in (".", ".."):
        return f"'{component}' component"
    size = len(component.encode("utf-8"))
    if size > MAX_COMPONENT_BYTES:
        return f"a component is {size} bytes long (at most {MAX_COMPONENT_BYTES})"
    return None


def _shorten(path: str) -> str:
    return path if len(path) <= 80 else path[:77] + "..."


# ---------------------------------------------------------------------------------------------
# Manifest


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One regular file of a version: its path, size in bytes, sha256 (lowercase hex) and mode.

    ``path`` passes :func:`validate_path`; ``mode`` is ``0o644``, or ``0o755`` when the owner may
    execute the file (no other permission bit is kept). Checked on construction.
    """

    path: str
    size: int
    sha256: str
    mode: int

    def __post_init__(self) -> None:
        validate_path(self.path)
        if type(self.size) is not int or self.size < 0:
            raise ValueError(f"{self.path}: invalid size {self.size!r}")
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"{self.path}: invalid sha256 {self.sha256!r} (64 lowercase hex characters)")
        if type(self.mode) is not int or self.mode not in (MODE_FILE, MODE_EXECUTABLE):
            raise ValueError(f"{self.path}: invalid mode {self.mode!r} (0o644 or 0o755)")

    def canonical_line(self) -> str:
        """This entry's line in the canonical encoding (see :attr:`Manifest.digest`)."""
        return f"{self.sha256} {self.mode:o} {self.size} {self.path}\n"


@dataclass(frozen=True)
class ManifestDiff:
    """What changed from one manifest to another: sorted paths added, removed, and changed (same
    path, different size, content or mode)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class Manifest:
    """An immutable version: its entries, sorted by path, with unique paths.

    The constructor accepts entries in any order and sorts them by path (code point order, which
    is also UTF-8 byte order). It rejects duplicate paths and a path that is also another entry's
    directory (``a`` and ``a/b``), since such a version could not be materialized.
    """

    entries: tuple[ManifestEntry, ...] = ()

    def __post_init__(self) -> None:
        entries = tuple(sorted(self.entries, key=lambda entry: entry.path))
        _check_tree(entries)
        object.__setattr__(self, "entries", entries)

    @cached_property
    def digest(self) -> str:
        """The version's identity: sha256 (lowercase hex) of the canonical encoding.

        The canonical encoding is, for each entry in path order, the UTF-8 line
        ``f"{sha256} {mode:o} {size} {path}\\n"`` (e.g. ``"<64 hex> 644 1024 data/a.csv\\n"``),
        all concatenated; an empty manifest encodes as no bytes. The path comes last so that it may
        contain spaces; it cannot contain a newline (:func:`validate_path`). The encoding depends
        on nothing but the entries, so the digest is the same on every run and machine.
        """
        hasher = hashlib.sha256()
        for entry in self.entries:
            hasher.update(entry.canonical_line().encode("utf-8"))
        return hasher.hexdigest()

    def encode(self) -> bytes:
        """The canonical encoding itself (see :attr:`digest`): how a manifest is stored as a blob."""
        return "".join(entry.canonical_line() for entry in self.entries).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """The manifest whose canonical encoding is ``data``; ValueError naming the bad line."""
        entries = []
        for number, line in enumerate(data.decode("utf-8").split("\n")[:-1] if data else [], start=1):
            sha256, mode, size, path = [*line.split(" ", 3), "", "", ""][:4]
            if not (mode.isdigit() and size.isdigit()):
                raise ValueError(f"line {number}: expected '<sha256> <mode octal> <size> <path>'")
            entries.append(ManifestEntry(path, int(size), sha256, int(mode, 8)))
        if data and not data.endswith(b"\n"):
            raise ValueError("the last line does not end with a newline")
        manifest = cls(tuple(entries))
        if manifest.encode() != data:
            raise ValueError("not in canonical form (entries out of path order, or numbers not canonical)")
        return manifest

    @property
    def size(self) -> int:
        """Total bytes of all files."""
        return sum(entry.size for entry in self.entries)

    @property
    def file_count(self) -> int:
        """Number of files."""
        return len(self.entries)

    def blobs(self) -> list[str]:
        """The distinct sha256 digests of the files, in the order first seen (path order)."""
        return list(dict.fromkeys(entry.sha256 for entry in self.entries))

    def to_json(self) -> list[dict[str, Any]]:
        """JSON-ready data: a list of ``{"path", "size", "sha256", "mode"}`` objects in path order
        (``mode`` as an integer: 420 for 0o644, 493 for 0o755)."""
        return [{"path": e.path, "size": e.size, "sha256": e.sha256, "mode": e.mode} for e in self.entries]

    @classmethod
    def from_json(cls, data: Sequence[Mapping[str, Any]]) -> Manifest:
        """The manifest that :meth:`to_json` produced (parsed JSON); every entry is validated, and
        an object with missing or extra keys is rejected with ValueError."""
        if not isinstance(data, Sequence) or isinstance(data, str | bytes):
            raise ValueError("a manifest is a JSON list of entries")
        return cls(tuple(_entry_from_json(item) for item in data))

    def diff(self, other: Manifest) -> ManifestDiff:
        """What changed from this manifest (the older one) to ``other``."""
        old = {entry.path: entry for entry in self.entries}
        new = {entry.path: entry for entry in other.entries}
        return ManifestDiff(
            added=sorted(new.keys() - old.keys()),
            removed=sorted(old.keys() - new.keys()),
            changed=sorted(path for path in old.keys() & new.keys() if old[path] != new[path]))


_ENTRY_KEYS = frozenset(("path", "size", "sha256", "mode"))


def _entry_from_json(item: Mapping[str, Any]) -> ManifestEntry:
    if not isinstance(item, Mapping) or set(item) != _ENTRY_KEYS:
        raise ValueError(f"invalid manifest entry {item!r}: "
                         "expected exactly the keys path, size, sha256, mode")
    return ManifestEntry(path=item["path"], size=item["size"], sha256=item["sha256"], mode=item["mode"])


def _check_tree(entries: tuple[ManifestEntry, ...]) -> None:
    """Reject duplicate paths and files that are also directories of other files."""
    paths = {entry.path for entry in entries}
    if len(paths) != len(entries):
        duplicate = next(a.path for a, b in itertools.pairwise(entries) if a.path == b.path)
        raise ValueError(f"duplicate manifest path {duplicate!r}")
    directories: set[str] = set()
    for parent in {path.rpartition("/")[0] for path in paths}:
        while parent and parent not in directories:  # each directory is climbed from once
            directories.add(parent)
            parent = parent.rpartition("/")[0]
    clash = paths & directories
    if clash:
        raise ValueError(f"manifest path {min(clash)!r} is both a file and a directory")


# ---------------------------------------------------------------------------------------------
# Hash cache


_Signature = tuple[int, int, int, int]
"""What must not have changed for a cached hash to still describe the file:
size, mtime_ns, inode, ctime_ns."""

_CacheEntry = tuple[int, int, int, int, str]
"""A signature and the sha256, as stored (a JSON array)."""


def _signature(st: os.stat_result) -> _Signature:
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


class HashCache:
    """Remembers ``(path, size, mtime_ns, inode, ctime_ns) -> sha256`` so that :func:`scan` does not
    re-hash unchanged files.

    ``path`` is where the cache is stored: one JSON file, written to a temporary file next to it
    and then renamed over it, so a crash never leaves half a cache. A missing, unreadable or
    corrupt cache file is treated as empty, never as an error. Keys are absolute paths of the
    scanned files (the root resolved, links inside it not), so one cache may serve several roots.

    ctime is part of the key because ``touch -m`` (or any tool restoring an mtime) cannot restore
    it; a hash is cached only once the file is older than :data:`RACY_WINDOW_NS` at hashing time.
    :func:`scan` loads the cache on first use; call :meth:`save` afterwards. Not thread-safe: use
    one cache per scan at a time.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, _CacheEntry] = {}
        self._verified: set[str] = set()  # keys known valid this session: save() need not stat them
        self._loaded = False

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)

    def load(self) -> None:
        """Read the cache file, replacing what is in memory; an unusable file means an empty cache."""
        self._entries = _read_cache(self.path)
        self._verified.clear()
        self._loaded = True

    def save(self) -> None:
        """Write the cache, dropping entries for files that vanished or changed since they were cached.

        Creates the parent directory if needed; raises OSError if the cache cannot be written (the
        caller may only warn: the next scan is merely slower)."""
        self._ensure_loaded()
        self._entries = {key: value for key, value in self._entries.items()
                         if key in self._verified or _still_matches(key, value)}
        document = {"format": _CACHE_FORMAT, "version": _CACHE_VERSION, "entries": self._entries}
        _write_atomically(self.path, json.dumps(document, separators=(",", ":")).encode("utf-8"))

    def lookup(self, key: str, st: os.stat_result) -> str | None:
        """The cached sha256 of the file ``key`` if ``st`` still matches it; a stale entry is dropped."""
        self._ensure_loaded()
        cached = self._entries.get(key)
        if cached is None:
            return None
        if cached[:4] != _signature(st) or not _SHA256.fullmatch(cached[4]):
            del self._entries[key]
            self._verified.discard(key)
            return None
        self._verified.add(key)
        return cached[4]

    def store(self, key: str, st: os.stat_result, sha256: str, hashed_at_ns: int) -> None:
        """Remember that the file ``key`` with stat ``st`` hashed to ``sha256`` when read from
        ``hashed_at_ns`` (``time.time_ns()`` before the first read) on; racy-clean files are not kept."""
        self._ensure_loaded()
        if _racy(st.st_ctime_ns, hashed_at_ns):
            self._entries.pop(key, None)
            self._verified.discard(key)
            return
        self._entries[key] = (*_signature(st), sha256)
        self._verified.add(key)

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()


def _racy(ctime_ns: int, hashed_at_ns: int) -> bool:
    """Whether a change made after we read the file could still carry this ctime (see RACY_WINDOW_NS)."""
    coarse = ctime_ns % 1_000_000 == 0  # whole milliseconds: a file system with coarse timestamps
    window = COARSE_RACY_WINDOW_NS if coarse else RACY_WINDOW_NS
    return ctime_ns > hashed_at_ns - window


def _still_matches(key: str, cached: _CacheEntry) -> bool:
    try:
        return _signature(os.stat(key)) == cached[:4]
    except (OSError, ValueError):
        return False


def _read_cache(path: Path) -> dict[str, _CacheEntry]:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):  # missing, unreadable, truncated, not JSON, not UTF-8
        return {}
    if (not isinstance(document, dict) or document.get("format") != _CACHE_FORMAT
            or document.get("version") != _CACHE_VERSION or not isinstance(document.get("entries"), dict)):
        return {}
    # Only the shape is checked here, cheaply: a wrong number never equals a stat (a miss), and the
    # sha256 of an entry is checked when it is used.
    return {key: tuple(value) for key, value in document["entries"].items()
            if type(value) is list and len(value) == 5 and type(value[4]) is str}


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename it over ``path``.

    No fsync: a cache lost to a crash only costs re-hashing, and a damaged one is ignored on load.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# ---------------------------------------------------------------------------------------------
# Walking


class FoundFile(NamedTuple):
    """A regular file found by the walk: its manifest path, the path to open, and its stat."""

    path: str
    source: str
    st: os.stat_result


def file_mode(st: os.stat_result) -> int:
    """The manifest mode of a file: executable by its owner or not."""
    return MODE_EXECUTABLE if st.st_mode & stat.S_IXUSR else MODE_FILE


def walk_files(root: Path) -> list[FoundFile]:
    """Every regular file under the directory ``root``, by the rules of :func:`scan` (which uses it)."""
    base = os.path.realpath(root)
    if not os.path.isdir(base):
        raise NotADirectoryError(f"not a directory: {root}")
    return _walk(base)


def unchanged(before: os.stat_result, after: os.stat_result) -> bool:
    """Whether a file's stat shows no change between two looks (size, mtime, inode, ctime)."""
    return _signature(before) == _signature(after)


def _walk(root: str) -> list[FoundFile]:
    """Every regular file under ``root`` (a resolved directory path), with the rules of :func:`scan`."""
    files: list[FoundFile] = []
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as listing:
            for entry in listing:
                if not prefix and entry.name == CACHE_NAME:
                    continue
                path = validate_path(prefix + entry.name)
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, path + "/"))
                elif entry.is_symlink():
                    linked = _linked_file(root, entry.path, path)
                    if linked is not None:
                        files.append(FoundFile(path, entry.path, linked))
                elif entry.is_file(follow_symlinks=False):
                    files.append(FoundFile(path, entry.path, entry.stat(follow_symlinks=False)))
                # Anything else (FIFO, socket, device) is not data: reading a FIFO would even block.
    return files


def _linked_file(root: str, link: str, path: str) -> os.stat_result | None:
    """The stat of the file a symlink inside ``root`` points to; None for a non-regular file."""
    target = os.path.realpath(link)
    if os.path.commonpath([root, target]) != root:
        raise ValueError(f"symlink {path!r} points outside the scanned directory, to {target}")
    try:
        st = os.stat(link)
    except OSError as error:
        raise ValueError(f"symlink {path!r} is broken: {error.strerror} ({target})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"symlink {path!r} points to a directory ({target}); "
                         "only links to files are supported")
    return st if stat.S_ISREG(st.st_mode) else None


# ---------------------------------------------------------------------------------------------
# Hashing


class _Cancelled(Exception):
    """Raised inside a hashing worker once the scan has failed, to stop reading early."""


def _hash_and_stat(source: str, on_read: Callable[[int], None]) -> tuple[str, os.stat_result]:
    """sha256 (lowercase hex) of the file at ``source`` in CHUNK_SIZE reads, calling ``on_read(n)``
    after each, and the file's fstat once read (to detect a change made while we read it)."""
    buffer = thread_buffer()
    view = memoryview(buffer)
    hasher = hashlib.sha256()
    with open(source, "rb", buffering=0) as file:
        while count := file.readinto(buffer):
            hasher.update(view[:count])
            on_read(count)
        return hasher.hexdigest(), os.fstat(file.fileno())


def hash_file(path: str | os.PathLike[str]) -> str:
    """sha256 (lowercase hex) of one file, read in CHUNK_SIZE chunks into a reused buffer."""
    return _hash_and_stat(os.fspath(path), lambda _: None)[0]


class _Meter:
    """Bytes hashed so far, shared by the workers; reported to ``progress`` by the scanning thread."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._last_report = float("-inf")

    def add(self, count: int) -> None:
        if self._cancelled.is_set():
            raise _Cancelled
        with self._lock:
            self.done += count

    def cancel(self) -> None:
        self._cancelled.set()

    def report(self, final: bool = False) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if final or now - self._last_report >= PROGRESS_INTERVAL:
            self._last_report = now
            self._progress(self.total if final else self.done, self.total)


def _hash_checked(file: FoundFile, meter: _Meter) -> tuple[str, int]:
    """The file's sha256 and when hashing began; ValueError if it changed since the walk stat it."""
    started_ns = time.time_ns()
    sha, after = _hash_and_stat(file.source, meter.add)
    if _signature(after) != _signature(file.st):
        raise ValueError(f"{file.path!r} changed while it was being scanned; scan again once it is written")
    return sha, started_ns


_Hashing = Future[tuple[str, int]]
"""One file being hashed: its sha256 and when hashing began, once done."""


def _hash_all(files: list[FoundFile], workers: int, meter: _Meter) -> Iterator[tuple[FoundFile, str, int]]:
    """Hash ``files`` in a pool, largest first so no worker is left with a big file at the end;
    yield ``(file, sha256, hashed_at_ns)`` as they finish, reporting progress in between."""
    # Finished futures arrive on a queue: O(1) per file, where concurrent.futures.wait() would walk
    # every pending future each time it is called (measured: +15 % on 2,000 files).
    finished: queue.SimpleQueue[_Hashing] = queue.SimpleQueue()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shipyard-hash")
    try:
        submitted: dict[_Hashing, FoundFile] = {}
        for file in sorted(files, key=lambda file: file.st.st_size, reverse=True):
            future = pool.submit(_hash_checked, file, meter)
            submitted[future] = file
            future.add_done_callback(finished.put)
        for _ in range(len(submitted)):
            future = _next_finished(finished, meter)
            sha, started_ns = future.result()
            yield submitted.pop(future), sha, started_ns
            meter.report()
    finally:
        meter.cancel()  # stops running workers at their next chunk if we are leaving on an error
        pool.shutdown(wait=True, cancel_futures=True)


def _next_finished(finished: queue.SimpleQueue[_Hashing], meter: _Meter) -> _Hashing:
    while True:
        try:
            return finished.get(timeout=PROGRESS_INTERVAL)
        except queue.Empty:
            meter.report()  # a large file is still being read: keep the bar moving


# ---------------------------------------------------------------------------------------------
# Scanning


def default_workers() -> int:
    """Hashing threads by default: one per CPU, at most 8 (beyond that the disk is the limit)."""
    return min(8, os.cpu_count() or 1)


def scan(root: Path, *, cache: HashCache | None = None, workers: int | None = None,
         progress: Callable[[int, int], None] | None = None) -> Manifest:
    """The manifest of the directory ``root``: every regular file under it, at any depth.

    - Walked with ``os.scandir``. Every file and directory is included, dot files, ``.git`` and
      ``.shipyard`` too; the only exclusion is an entry named ``.shipyard-cache`` (file or
      directory, :data:`CACHE_NAME`) directly under ``root``, where the hash cache lives.
    - Symlinks: a link to a regular file inside ``root`` is hashed as that file and recorded under
      the link's path; a link whose target lies outside ``root``, a broken link and a link to a
      directory raise ValueError naming the link. Entries that are not regular files (FIFOs,
      sockets, devices) are skipped; empty directories are not recorded.
    - A name that is not a valid manifest path (:func:`validate_path`) raises ValueError.
    - Files are hashed by ``workers`` threads (default :func:`default_workers`), largest first.
      With a ``cache``, files whose size, mtime, inode and ctime are unchanged are not re-read,
      and new hashes are added to it; the cache is loaded on first use, call ``cache.save()``.
    - A file that changes while it is being hashed raises ValueError (scan again); an unreadable
      one raises its OSError. Either way the other workers stop at their next chunk.
    - ``progress(done_bytes, total_bytes)``, if given, is called from this thread at most every
      :data:`PROGRESS_INTERVAL` seconds and last with ``done_bytes == total_bytes``; total is the
      size of all files, and cached files count as done at once.

    Blocking: run it in a thread from async code.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    files = walk_files(root)
    hashes: dict[str, str] = {}
    to_hash: list[FoundFile] = []
    for file in files:
        cached = cache.lookup(file.source, file.st) if cache is not None else None
        if cached is None:
            to_hash.append(file)
        else:
            hashes[file.path] = cached
    meter = _Meter(sum(file.st.st_size for file in files), progress)
    meter.done = meter.total - sum(file.st.st_size for file in to_hash)
    meter.report()
    for file, sha, hashed_at_ns in _hash_all(to_hash, workers or default_workers(), meter):
        hashes[file.path] = sha
        if cache is not None:
            cache.store(file.source, file.st, sha, hashed_at_ns)
    meter.report(final=True)
    return Manifest(tuple(ManifestEntry(file.path, file.st.st_size, hashes[file.path], file_mode(file.st))
                          for file in files))


def copy_tree_reference(root: Path, dest: Path) -> Manifest:
    """The benchmark's baseline for "create a version": sha256 every file, then copy it into ``dest``.

    Deliberately plain: the same walk and chunked hashing as :func:`scan`, but one thread and no
    cache, then ``shutil.copyfile`` of each file to the same relative path under ``dest`` (created
    as needed; it must not lie inside ``root``). Returns the manifest, equal to ``scan(root)``'s.
    It lives here, next to what it measures, so both always share the walk and the hashing.
    """
    base = os.path.realpath(root)
    target = os.path.realpath(dest)
    if os.path.commonpath([base, target]) == base:
        raise ValueError(f"destination {dest} lies inside the scanned directory {root}")
    entries: list[ManifestEntry] = []
    for file in _walk(base):
        sha, _ = _hash_and_stat(file.source, lambda _: None)
        copy = os.path.join(target, *file.path.split("/"))
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        shutil.copyfile(file.source, copy)
        entries.append(ManifestEntry(file.path, file.st.st_size, sha, file_mode(file.st)))
    return Manifest(tuple(entries))
