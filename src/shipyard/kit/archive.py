"""Safe extraction of uploaded archives (tar, tar.gz, zip) and streaming tar.gz export.

Uploaded archives are untrusted. ``extract`` reads the archive twice: the first pass validates
every entry (names, types, links, counts and sizes) without writing anything; the second writes
the validated plan into a fresh temporary directory next to the destination, which is renamed
into place only when everything succeeded. Paths and types always come from the validated plan;
the second pass only reads file content, so a lying archive can at worst change bytes, never
where they go.

``write_tar_gz`` streams a tar.gz to a non-seekable output, pulling each file's content from a
callable so that nothing is held in memory.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal

from shipyard.kit.errors import clipped

_CHUNK = 1 << 20
_MAX_LINK_TARGET = 4096
_MAX_LINK_HOPS = 40  # as Linux's own limit on symlinks followed in one lookup
_DRIVE = re.compile(r"^[A-Za-z]:")
_SUFFIXES = ((".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar", "tar"), (".zip", "zip"))
# Stream modes only: they read forward once, so a tar.gz is never re-decompressed to seek back.
_TarMode = Literal["r|", "r|gz"]
_TAR_MODES: dict[str, _TarMode] = {"tar": "r|", "tar.gz": "r|gz"}
_TAR_FORMATS = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}
_SPECIAL = {
    stat.S_IFCHR: "device files are not allowed",
    stat.S_IFBLK: "device files are not allowed",
    stat.S_IFIFO: "FIFOs are not allowed",
    stat.S_IFSOCK: "sockets are not allowed",
}
# What the stdlib raises for a corrupt or unsupported archive (NotImplementedError: zip methods).
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError,
                NotImplementedError)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_ESCAPES = "entry escapes the extraction directory"
_NAME_MAX = 255  # bytes in one path component (Linux, macOS, Windows alike)
_PATH_MAX = 4096
_SHOWN_NAME = 200  # characters of an entry's name an error shows

_Kind = Literal["file", "dir", "symlink", "hardlink"]


class ArchiveError(ValueError):
    """An archive, or one of its entries, is unsafe or unreadable; the message names the entry and why."""

    def __init__(self, entry: str, problem: str) -> None:
        # A NUL would cut the message short in C-backed logs; a huge name would swamp it.
        shown = clipped(entry.replace("\0", "\\x00"), _SHOWN_NAME)
        super().__init__(f"{shown}: {problem}")
        self.entry = entry
        self.problem = problem

    def __reduce__(self) -> tuple[type[ArchiveError], tuple[str, str]]:
        # Rebuild from both parts (args holds only the message), e.g. across a process pool.
        return type(self), (self.entry, self.problem)


class ArchiveTooLarge(ArchiveError):
    """The archive expands past a limit (its byte budget, or its ratio to its own size)."""


@dataclass(frozen=True)
class ArchiveEntry:
    """One regular file to export: ``chunks()`` yields its ``size`` bytes, read only when written."""

    path: str
    size: int
    mode: int
    chunks: Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class _Entry:
    """A validated archive entry. ``raw`` is the name as stored; ``path`` is normalised ("" = root)."""

    raw: str
    path: str
    kind: _Kind
    size: int = 0
    executable: bool = False
    target: str = ""  # symlink: the link text; hard link: the normalised path of the target


def archive_kind(name: str) -> str | None:
    """"tar", "tar.gz" (also ``.tgz``), "zip", or None, from a file name (case-insensitive)."""
    lower = name.lower()
    return next((kind for suffix, kind in _SUFFIXES if lower.endswith(suffix)), None)


def extract(archive: Path, into: Path, *, max_files: int = 1_000_000, max_bytes: int = 1 << 40,
            max_ratio: float | None = None) -> list[Path]:
    """Extract ``archive`` into ``into``, all or nothing; return the regular files, relative and sorted.

    Every entry is validated before anything is written; an unsafe or corrupt archive raises
    ``ArchiveError`` and leaves nothing behind. An archive whose files add up to more than
    ``max_bytes``, or to more than ``max_ratio`` times the archive's own size (a zip bomb), raises
    ``ArchiveTooLarge`` — from the sizes it declares before anything is written, and from the bytes
    really written, since headers can lie. ``into`` must not exist, or be an empty directory
    (``FileExistsError`` otherwise); its parent must exist. Regular files get mode 0o644, or 0o755
    when the archive marks them executable; owners are ignored. Blocking: run it in a thread.
    """
    kind = archive_kind(archive.name)
    if kind is None:
        raise ArchiveError(archive.name, "unsupported archive type (expected .tar, .tar.gz, .tgz or .zip)")
    _check_destination(into)
    limit = _Limit.of(archive, max_bytes, max_ratio)
    with _reading(archive.name):
        with contextlib.closing(_scan(archive, kind)) as scanned:
            entries = _collect(scanned, max_files, limit)
        _check_tree(entries)
        return _extract_plan(archive, kind, entries, into, limit)


@dataclass(frozen=True)
class _Limit:
    """The bytes an archive may expand to, and how to word crossing it."""

    max_bytes: int
    reason: str

    @classmethod
    def of(cls, archive: Path, max_bytes: int, max_ratio: float | None) -> _Limit:
        if max_ratio is None:
            return cls(max_bytes, f"more than {max_bytes} bytes")
        by_ratio = int(archive.stat().st_size * max_ratio)
        if by_ratio < max_bytes:
            return cls(by_ratio, f"more than {max_ratio:g} times its size ({by_ratio} bytes)")
        return cls(max_bytes, f"more than {max_bytes} bytes")

    def crossed(self, entry: str) -> ArchiveTooLarge:
        return ArchiveTooLarge(entry, f"archive expands to {self.reason}")


def write_tar_gz(entries: Iterable[ArchiveEntry], out: BinaryIO, *, compresslevel: int = 6) -> None:
    """Write ``entries`` as a tar.gz to ``out``, which may be non-seekable (a pipe, a response body).

    Paths are validated as on extraction (relative, no ``..``, no duplicates); each file's content
    must be exactly ``size`` bytes. On ``ArchiveError`` the output is incomplete and must be discarded.
    """
    names = _ExportNames()
    mtime = int(time.time())
    # GzipFile rather than tarfile's "w|gz": in 3.11 that mode ignores compresslevel (always 9).
    # filename="" keeps the server-side file name out of the gzip header.
    with (
        gzip.GzipFile(filename="", mode="wb", compresslevel=compresslevel, fileobj=out) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for entry in entries:
            _add_to_tar(tar, names.add(entry.path), entry, mtime)


# --- validation -------------------------------------------------------------------------------


def _clean_path(raw: str) -> str:
    """The normalised relative form of an entry name; ArchiveError if it could land outside the root."""
    if "\0" in raw:
        raise ArchiveError(raw, "NUL character in name")
    if "\\" in raw:
        # A Windows separator: "..\\x" would escape wherever the tree is later unpacked on Windows.
        raise ArchiveError(raw, "backslashes are not allowed in names")
    if raw.startswith("/"):
        raise ArchiveError(raw, "absolute paths are not allowed")
    if _DRIVE.match(raw):
        raise ArchiveError(raw, "drive letters are not allowed")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(raw, _ESCAPES)
    _check_lengths(raw, parts)
    return "/".join(parts)


def _check_lengths(raw: str, parts: list[str]) -> None:
    """Names no file system takes are refused by name here, not met as an OSError while writing."""
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in parts), default=0)
    if longest > _NAME_MAX:
        raise ArchiveError(raw, f"a name in the path is {longest} bytes long; "
                                f"at most {_NAME_MAX} are allowed")
    if len(raw.encode("utf-8", "surrogateescape")) > _PATH_MAX:
        raise ArchiveError(raw, f"the path is longer than {_PATH_MAX} bytes")


def _scan(archive: Path, kind: str) -> Generator[_Entry]:
    """The archive's entries in order, each checked on its own (name and type)."""
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                yield _zip_entry(zf, info)
    else:
        with tarfile.open(archive, _TAR_MODES[kind]) as tf:
            for member in tf:
                yield _tar_entry(member)


def _tar_entry(member: tarfile.TarInfo) -> _Entry:
    raw = member.name
    path = _clean_path(raw)
    if member.isdir():
        return _Entry(raw, path, "dir")
    if not path:
        raise ArchiveError(raw, "entry has no name")
    if member.isreg():
        return _Entry(raw, path, "file", size=member.size, executable=bool(member.mode & 0o111))
    if member.issym():
        return _Entry(raw, path, "symlink", target=member.linkname)
    if member.islnk():
        return _Entry(raw, path, "hardlink", target=_hardlink_target(raw, member.linkname))
    raise ArchiveError(raw, _SPECIAL.get(_TAR_FORMATS.get(member.type, -1), "unsupported entry type"))


def _zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Entry:
    raw = info.orig_filename  # ``filename`` is cut at the first NUL, which would hide it
    path = _clean_path(raw)
    mode = info.external_attr >> 16  # Unix st_mode, 0 when made elsewhere
    if info.is_dir() or stat.S_ISDIR(mode):
        return _Entry(raw, path, "dir")
    if not path:
        raise ArchiveError(raw, "entry has no name")
    if info.flag_bits & 0x1:
        raise ArchiveError(raw, "encrypted entries are not supported")
    if stat.S_ISLNK(mode):
        return _Entry(raw, path, "symlink", target=_zip_link_target(zf, info))
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        raise ArchiveError(raw, _SPECIAL.get(stat.S_IFMT(mode), "unsupported entry type"))
    return _Entry(raw, path, "file", size=info.file_size, executable=bool(mode & 0o111))


def _zip_link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A zip symlink's target is its content."""
    if info.file_size > _MAX_LINK_TARGET:
        raise ArchiveError(info.orig_filename, "symbolic link target is too long")
    with zf.open(info) as src:
        data = src.read(_MAX_LINK_TARGET + 1)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ArchiveError(info.orig_filename, "symbolic link target is not UTF-8") from None


def _hardlink_target(raw: str, linkname: str) -> str:
    """A tar hard link names another member of the archive; normalise it like an entry name."""
    try:
        target = _clean_path(linkname)
    except ArchiveError as exc:
        outside = linkname.startswith("/") or exc.problem == _ESCAPES
        problem = "points outside the archive" if outside else f"target is not allowed: {exc.problem}"
        raise ArchiveError(raw, f"hard link {problem} ({linkname})") from None
    if not target:
        raise ArchiveError(raw, f"hard link points outside the archive ({linkname})")
    return target


def _collect(scanned: Iterable[_Entry], max_files: int, limit: _Limit) -> list[_Entry]:
    """All entries, stopping as soon as a limit is crossed or two entries would claim one path."""
    entries: list[_Entry] = []
    by_path: dict[str, _Entry] = {}
    total = 0
    for entry in scanned:
        entries.append(entry)
        if len(entries) > max_files:
            raise ArchiveError(entry.raw, f"archive has more than {max_files} entries")
        total += entry.size
        if total > limit.max_bytes:
            raise limit.crossed(entry.raw)
        seen = by_path.setdefault(entry.path, entry)
        if seen is not entry and not (seen.kind == entry.kind == "dir"):
            raise ArchiveError(entry.raw, f"duplicate entry (would overwrite {seen.raw})")
    return entries


def _check_tree(entries: list[_Entry]) -> None:
    """Checks that need the whole archive: parents, and where links lead."""
    by_path = {entry.path: entry for entry in reversed(entries)}  # first one wins, as in _collect
    links = {entry.path: entry.target for entry in entries if entry.kind == "symlink"}
    for entry in entries:
        _check_parents(entry, by_path)
        if entry.kind == "symlink":
            _check_symlink(entry, links)
        elif entry.kind == "hardlink":
            target = by_path.get(entry.target)
            if target is None or target.kind != "file":
                raise ArchiveError(entry.raw, f"hard link target is not a regular file in the archive "
                                              f"({entry.target})")


def _check_parents(entry: _Entry, by_path: Mapping[str, _Entry]) -> None:
    """Every ancestor must be a real directory: writing through a symlink is how archives escape."""
    parts = entry.path.split("/")
    for depth in range(1, len(parts)):
        parent = by_path.get("/".join(parts[:depth]))
        if parent is None or parent.kind == "dir":
            continue
        if parent.kind == "symlink":
            raise ArchiveError(entry.raw, f"parent {parent.path} is a symbolic link")
        raise ArchiveError(entry.raw, f"parent {parent.path} is not a directory")


def _check_symlink(entry: _Entry, links: Mapping[str, str]) -> None:
    """Resolve the link within the archive, following its other links, as the kernel would.

    Resolving the text alone is not enough: with ``d/up -> ..``, ``d/x -> up/..`` reads as
    ``d`` but really is the root's parent.
    """
    target = entry.target
    outside = ArchiveError(entry.raw, f"symbolic link points outside the archive ({target})")
    if not target or "\0" in target or len(target) > _MAX_LINK_TARGET:
        raise ArchiveError(entry.raw, "symbolic link target is empty, too long or has a NUL")
    if target.startswith("/"):
        raise outside
    resolved = entry.path.split("/")[:-1]  # its parents are real directories (_check_parents)
    pending = list(reversed(target.split("/")))  # a stack: next component last
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise outside
            resolved.pop()
            continue
        resolved.append(part)
        link = links.get("/".join(resolved))
        if link is None:
            continue  # a directory, a file, or a name the archive lacks: all stay inside
        hops += 1
        if hops > _MAX_LINK_HOPS:
            raise ArchiveError(entry.raw, "symbolic link loop")
        if link.startswith("/"):
            raise outside
        resolved.pop()
        pending.extend(reversed(link.split("/")))


# --- extraction -------------------------------------------------------------------------------


def _check_destination(into: Path) -> None:
    """Fail before reading the archive; the final rename checks again, atomically."""
    if into.is_symlink() or (into.exists() and not (into.is_dir() and _is_empty(into))):
        raise FileExistsError(errno.EEXIST, "extraction destination exists and is not an empty directory",
                              str(into))
    if not into.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the extraction destination's parent does not exist",
                                str(into.parent))


def _is_empty(directory: Path) -> bool:
    with os.scandir(directory) as it:
        return next(it, None) is None


def _extract_plan(archive: Path, kind: str, entries: list[_Entry], into: Path, limit: _Limit) -> list[Path]:
    """Write into a temporary sibling (same filesystem), then rename it into place; clean up on failure."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{into.name}.", suffix=".extracting", dir=into.parent))
    try:
        files = _populate(tmp, archive, kind, entries, limit)
        tmp.chmod(0o755)  # mkdtemp makes it 0o700
        try:
            os.rename(tmp, into)  # POSIX: replaces `into` only if it is an empty directory
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise
            raise FileExistsError(errno.EEXIST, "extraction destination exists and is not an empty "
                                                "directory", str(into)) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return files


def _populate(root: Path, archive: Path, kind: str, entries: list[_Entry], limit: _Limit) -> list[Path]:
    """Directories first, then file content in archive order, then links (so nothing is written through
    a link, and a hard link's target exists wherever it is in the archive)."""
    _make_dirs(root, entries)
    budget = _Budget(limit)
    files: list[str] = []
    with contextlib.closing(_contents(archive, kind, entries)) as contents:
        for entry, src in contents:
            _write_file(root / entry.path, entry, src, budget)
            files.append(entry.path)
    for entry in entries:
        if entry.kind == "hardlink":
            os.link(root / entry.target, root / entry.path, follow_symlinks=False)
            files.append(entry.path)
    for entry in entries:
        if entry.kind == "symlink":
            os.symlink(entry.target, root / entry.path)
    return sorted(Path(path) for path in files)


def _make_dirs(root: Path, entries: list[_Entry]) -> None:
    dirs = {entry.path for entry in entries if entry.kind == "dir" and entry.path}
    for entry in entries:
        parts = entry.path.split("/")
        dirs.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    for path in sorted(dirs):  # a parent sorts before its children
        os.mkdir(root / path)
        os.chmod(root / path, 0o755)  # not left to the umask


def _contents(archive: Path, kind: str, entries: list[_Entry]) -> Generator[tuple[_Entry, IO[bytes]]]:
    """Each regular file's entry with a reader of its content, in archive order (one forward pass)."""
    if kind == "zip":
        yield from _zip_contents(archive, entries)
    else:
        yield from _tar_contents(archive, _TAR_MODES[kind], entries)


def _zip_contents(archive: Path, entries: list[_Entry]) -> Generator[tuple[_Entry, IO[bytes]]]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _check_unchanged(archive, [info.orig_filename for info in infos], entries)
        for info, entry in zip(infos, entries, strict=True):
            if entry.kind == "file":
                with zf.open(info) as src:
                    yield entry, src


def _tar_contents(archive: Path, mode: _TarMode,
                  entries: list[_Entry]) -> Generator[tuple[_Entry, IO[bytes]]]:
    with tarfile.open(archive, mode) as tf:
        members = iter(tf)  # one iterator: a second iter(tf) would start over from the cached members
        names: list[str] = []
        for entry, member in zip(entries, members, strict=False):
            names.append(member.name)
            if entry.raw != member.name:
                break
            src = tf.extractfile(member) if entry.kind == "file" else None
            if src is not None:
                yield entry, src
        names.extend(member.name for member in members)  # whatever a changed archive has beyond the plan
        _check_unchanged(archive, names, entries)


def _check_unchanged(archive: Path, names: list[str], entries: list[_Entry]) -> None:
    # The plan decides every path, so a swapped archive cannot escape; still, refuse to mix two.
    if names != [entry.raw for entry in entries]:
        raise ArchiveError(archive.name, "archive changed while it was being extracted")


def _write_file(path: Path, entry: _Entry, src: IO[bytes], budget: _Budget) -> None:
    # O_EXCL and O_NOFOLLOW: never reuse or follow whatever might already be at the path.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | _NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as dst:
        os.fchmod(fd, 0o755 if entry.executable else 0o644)  # exact bits: no umask, setuid or sticky
        try:
            _copy(src, dst, entry, budget)
        except _READ_ERRORS as exc:
            raise ArchiveError(entry.raw, f"unreadable content ({exc})") from exc


class _Budget:
    """The bytes still allowed to be written; counted on real content, since zip headers can lie."""

    def __init__(self, limit: _Limit) -> None:
        self.limit = limit
        self.left = limit.max_bytes

    def spend(self, entry: str, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise self.limit.crossed(entry)


def _copy(src: IO[bytes], dst: IO[bytes], entry: _Entry, budget: _Budget) -> None:
    """Copy one file's content, holding it to its declared size and to the archive's byte budget."""
    written = 0
    while chunk := src.read(_CHUNK):
        written += len(chunk)
        if written > entry.size:
            raise ArchiveError(entry.raw, f"content is larger than its declared size ({entry.size} bytes)")
        budget.spend(entry.raw, len(chunk))
        dst.write(chunk)
    if written != entry.size:
        raise ArchiveError(entry.raw, f"content is smaller than its declared size ({entry.size} bytes)")


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """Report the stdlib's errors for a corrupt or unsupported archive as ArchiveError."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise ArchiveError(name, f"not a readable archive ({exc})") from exc


# --- export -----------------------------------------------------------------------------------


class _ExportNames:
    """Paths written so far, so that an export is always something ``extract`` accepts."""

    def __init__(self) -> None:
        self._files: set[str] = set()
        self._dirs: set[str] = set()

    def add(self, raw: str) -> str:
        path = _clean_path(raw)
        if not path:
            raise ArchiveError(raw, "entry has no name")
        if path in self._files or path in self._dirs:
            raise ArchiveError(raw, "duplicate entry (a file or directory of that name was written already)")
        parts = path.split("/")
        parents = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
        clash = next((parent for parent in parents if parent in self._files), None)
        if clash is not None:
            raise ArchiveError(raw, f"parent {clash} is not a directory")
        self._files.add(path)
        self._dirs.update(parents)
        return path


def _add_to_tar(tar: tarfile.TarFile, path: str, entry: ArchiveEntry, mtime: int) -> None:
    if entry.size < 0:
        raise ArchiveError(entry.path, "negative size")
    info = tarfile.TarInfo(path)
    info.size = entry.size
    info.mode = 0o755 if entry.mode & 0o111 else 0o644
    info.mtime = mtime
    chunks = iter(entry.chunks())
    try:
        reader = _ChunkReader(entry.path, entry.size, chunks)
        tar.addfile(info, reader)
        reader.finish()
    finally:
        close = getattr(chunks, "close", None)  # let a generator release its blob stream
        if close is not None:
            close()


class _ChunkReader:
    """A ``read``-only file over a chunk iterator, as ``TarFile.addfile`` wants; enforces the size."""

    def __init__(self, name: str, size: int, chunks: Iterator[bytes]) -> None:
        self._name = name
        self._size = size
        self._left = size
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, count: int = -1) -> bytes:
        count = self._left if count < 0 else min(count, self._left)
        while len(self._buffer) < count:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise ArchiveError(self._name,
                                   f"content is smaller than its declared size ({self._size} bytes)")
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]  # cheap: bytearray drops from the front without copying
        self._left -= count
        return data

    def finish(self) -> None:
        """Raise if the iterator holds more than the declared size."""
        if self._buffer or any(self._chunks):
            raise ArchiveError(self._name, f"content is larger than its declared size ({self._size} bytes)")
