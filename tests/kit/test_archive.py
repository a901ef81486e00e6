"""Safe archive extraction and streaming tar.gz export (shipyard.kit.archive)."""

from __future__ import annotations

import io
import os
import pickle
import re
import stat
import struct
import tarfile
import threading
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from shipyard.kit.archive import (
    ArchiveEntry,
    ArchiveError,
    ArchiveTooLarge,
    _Budget,
    _copy,
    _Entry,
    _Limit,
    archive_kind,
    extract,
    write_tar_gz,
)

Member = tuple[tarfile.TarInfo, bytes]


# --- builders -----------------------------------------------------------------------------------


def tar_file(name: str, data: bytes = b"", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def tar_link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def tar_special(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, b""


def tar_dir(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, b""


def make_tar(path: Path, members: list[Member]) -> Path:
    mode = "w:gz" if archive_kind(path.name) == "tar.gz" else "w"
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def zip_info(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.create_system = 3  # Unix, so the mode bits count
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": duplicates are what some tests want
        for name, data in members:
            zf.writestr(name, data)
    return path


def build(path: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    """A tar, tar.gz or zip (by suffix) holding regular files {name: (data, mode)}."""
    if archive_kind(path.name) == "zip":
        return make_zip(path, [(zip_info(name, stat.S_IFREG | mode), data)
                               for name, (data, mode) in files.items()])
    return make_tar(path, [tar_file(name, data, mode) for name, (data, mode) in files.items()])


@pytest.fixture
def into(tmp_path: Path) -> Path:
    """The destination: not created yet, in a directory of its own so leftovers show."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "dest"


def assert_untouched(into: Path) -> None:
    assert not into.exists() or list(into.iterdir()) == []
    assert [p.name for p in into.parent.iterdir() if p != into] == []  # no temporary directory left


def refused(archive: Path, into: Path, match: str, **limits: float) -> ArchiveError:
    with pytest.raises(ArchiveError, match=match) as caught:
        extract(archive, into, **limits)  # type: ignore[arg-type]
    assert_untouched(into)
    return caught.value


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- archive_kind, round trips ------------------------------------------------------------------


def test_archive_kind_from_name() -> None:
    assert archive_kind("data.tar") == "tar"
    assert archive_kind("DATA.TAR.GZ") == "tar.gz"
    assert archive_kind("model.TGZ") == "tar.gz"
    assert archive_kind("x.Zip") == "zip"
    assert archive_kind("x.gz") is None
    assert archive_kind("tar") is None


def test_archive_error_names_the_entry_and_survives_pickling() -> None:
    error = ArchiveError("dev/null", "device files are not allowed")
    assert isinstance(error, ValueError)
    assert str(error) == "dev/null: device files are not allowed"
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.entry, copy.problem) == (str(error), error.entry, error.problem)


@pytest.mark.parametrize("name", ["a.tar", "a.tar.gz", "a.tgz", "a.zip"])
def test_round_trip_keeps_content_and_exec_bit(tmp_path: Path, into: Path, name: str) -> None:
    big = os.urandom(300_000)
    archive = build(tmp_path / name, {
        "data/train.csv": (b"x,y\n1,2\n", 0o600),
        "data/deep/er/weights.bin": (big, 0o644),
        "run.sh": (b"#!/bin/sh\n", 0o755),
        "suid": (b"", 0o4777),
        "./dot/slash//name.txt": (b"n", 0o644),
    })
    files = extract(archive, into)
    assert files == [Path("data/deep/er/weights.bin"), Path("data/train.csv"), Path("dot/slash/name.txt"),
                     Path("run.sh"), Path("suid")]
    assert (into / "data/train.csv").read_bytes() == b"x,y\n1,2\n"
    assert (into / "data/deep/er/weights.bin").read_bytes() == big
    assert mode_of(into / "data/train.csv") == 0o644
    assert mode_of(into / "run.sh") == 0o755
    assert mode_of(into / "suid") == 0o755  # no setuid, no world-write
    assert mode_of(into / "data/deep") == 0o755
    assert [p.name for p in into.parent.iterdir()] == ["dest"]


def test_empty_directory_destination_is_replaced(tmp_path: Path, into: Path) -> None:
    into.mkdir()
    archive = build(tmp_path / "a.tar", {"f": (b"1", 0o644)})
    assert extract(archive, into) == [Path("f")]
    assert (into / "f").read_bytes() == b"1"


def test_non_empty_destination_is_refused(tmp_path: Path, into: Path) -> None:
    into.mkdir()
    (into / "keep").write_bytes(b"mine")
    archive = build(tmp_path / "a.tar", {"f": (b"1", 0o644)})
    with pytest.raises(FileExistsError):
        extract(archive, into)
    assert [p.name for p in into.iterdir()] == ["keep"]
    assert [p.name for p in into.parent.iterdir()] == ["dest"]


def test_relative_symlinks_inside_are_recreated(tmp_path: Path, into: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [
        tar_file("data/a.txt", b"A"),
        tar_link("latest", "data/a.txt"),
        tar_link("data/up", ".."),  # points at the root itself: inside
        tar_dir("empty"),
    ])
    assert extract(archive, into) == [Path("data/a.txt")]  # links are not regular files
    assert os.readlink(into / "latest") == "data/a.txt"
    assert (into / "latest").read_bytes() == b"A"
    assert (into / "data/up").resolve() == into.resolve()
    assert (into / "empty").is_dir()


def test_zip_symlink_inside_is_recreated(tmp_path: Path, into: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("data/a.txt", b"A"), (zip_info("latest", stat.S_IFLNK | 0o777),
                                                                    b"data/a.txt")])
    assert extract(archive, into) == [Path("data/a.txt")]
    assert os.readlink(into / "latest") == "data/a.txt"


def test_hard_link_inside_is_extracted(tmp_path: Path, into: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_file("a.txt", b"A"),
                                            tar_link("b.txt", "./a.txt", tarfile.LNKTYPE)])
    assert extract(archive, into) == [Path("a.txt"), Path("b.txt")]
    assert (into / "b.txt").read_bytes() == b"A"


# --- refused: names -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "ok/../../../evil.txt"])
def test_zip_slip_is_refused(tmp_path: Path, into: Path, kind: str, name: str) -> None:
    archive = build(tmp_path / f"a.{kind}", {"fine.txt": (b"1", 0o644), name: (b"evil", 0o644)})
    error = refused(archive, into, "entry escapes the extraction directory")
    assert str(error) == f"{name}: entry escapes the extraction directory"


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_absolute_path_is_refused(tmp_path: Path, into: Path, kind: str) -> None:
    archive = build(tmp_path / f"a.{kind}", {"/etc/cron.d/evil": (b"x", 0o644)})
    refused(archive, into, re.escape("/etc/cron.d/evil: absolute paths are not allowed"))


@pytest.mark.parametrize(("name", "problem"), [
    ("..\\x", "backslashes are not allowed"),
    ("dir\\..\\..\\x", "backslashes are not allowed"),
    ("C:/Windows/x", "drive letters are not allowed"),
    ("c:x", "drive letters are not allowed"),
])
def test_zip_windows_path_tricks_are_refused(tmp_path: Path, into: Path, name: str, problem: str) -> None:
    archive = make_zip(tmp_path / "a.zip", [(name, b"x")])
    error = refused(archive, into, problem)
    assert error.entry == name


def test_nul_in_name_is_refused(tmp_path: Path, into: Path) -> None:
    info, data = tar_file("innocent", b"x")
    info.pax_headers = {"path": "evil\0.txt"}  # PAX carries names the ustar header cannot
    archive = make_tar(tmp_path / "a.tar", [(info, data)])
    refused(archive, into, re.escape("evil\\x00.txt: NUL character in name"))


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_duplicate_entries_are_refused(tmp_path: Path, into: Path, kind: str) -> None:
    if kind == "zip":
        archive = make_zip(tmp_path / "a.zip", [("model.bin", b"good"), ("./model.bin", b"evil")])
    else:
        archive = make_tar(tmp_path / "a.tar", [tar_file("model.bin", b"good"),
                                                tar_file("./model.bin", b"evil")])
    refused(archive, into, re.escape("./model.bin: duplicate entry (would overwrite model.bin)"))


def test_repeated_directory_entries_are_fine(tmp_path: Path, into: Path) -> None:
    members = [tar_dir("./"), tar_dir("d"), tar_file("d/f", b"1"), tar_dir("d/")]
    archive = make_tar(tmp_path / "a.tar", members)
    assert extract(archive, into) == [Path("d/f")]


def test_file_used_as_directory_is_refused(tmp_path: Path, into: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_file("a/b", b"1"), tar_file("a", b"2")])
    refused(archive, into, "^a/b: parent a is not a directory$")


# --- refused: links and special files -----------------------------------------------------------


def test_symlink_to_etc_passwd_is_refused(tmp_path: Path, into: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_link("link", "/etc/passwd")])
    error = refused(archive, into, "symbolic link")
    assert str(error) == "link: symbolic link points outside the archive (/etc/passwd)"


def test_zip_symlink_outside_is_refused(tmp_path: Path, into: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [(zip_info("link", stat.S_IFLNK | 0o777), b"../../etc/passwd")])
    refused(archive, into, re.escape("link: symbolic link points outside the archive (../../etc/passwd)"))


@pytest.mark.parametrize("target", ["/tmp", "..", "../..", "sub/../.."])
def test_symlink_to_directory_outside_then_file_through_it_is_refused(
        tmp_path: Path, into: Path, target: str) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_dir("sub"), tar_link("a", target), tar_file("a/x", b"pwned")])
    refused(archive, into, f"^a: symbolic link points outside the archive \\({re.escape(target)}\\)$")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("order", ["link first", "file first"])
def test_writing_through_any_symlink_is_refused(tmp_path: Path, into: Path, order: str) -> None:
    link, through = tar_link("a", "sub"), tar_file("a/x", b"x")
    members = [tar_dir("sub"), link, through] if order == "link first" else [tar_dir("sub"), through, link]
    archive = make_tar(tmp_path / "a.tar", members)
    refused(archive, into, "^a/x: parent a is a symbolic link$")


def test_symlink_escaping_through_another_symlink_is_refused(tmp_path: Path, into: Path) -> None:
    # "d/esc -> up/.." reads as "d", but up is the root, so it is the root's parent.
    archive = make_tar(tmp_path / "a.tar", [tar_dir("d"), tar_link("d/up", ".."), tar_link("d/esc", "up/..")])
    refused(archive, into, re.escape("d/esc: symbolic link points outside the archive (up/..)"))


def test_symlink_loop_is_refused(tmp_path: Path, into: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_link("a", "b"), tar_link("b", "a")])
    refused(archive, into, "^a: symbolic link loop$")


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside", "a/../../x", "."])
def test_hard_link_outside_is_refused(tmp_path: Path, into: Path, target: str) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_file("a/f", b"1"), tar_link("link", target, tarfile.LNKTYPE)])
    error = refused(archive, into, "hard link")
    assert str(error) == f"link: hard link points outside the archive ({target})"


def test_hard_link_to_something_not_in_the_archive_is_refused(tmp_path: Path, into: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_link("link", "etc/passwd", tarfile.LNKTYPE)])
    error = refused(archive, into, "not a regular file")
    assert str(error) == "link: hard link target is not a regular file in the archive (etc/passwd)"


@pytest.mark.parametrize(("kind", "problem"), [
    (tarfile.CHRTYPE, "device files are not allowed"),
    (tarfile.BLKTYPE, "device files are not allowed"),
    (tarfile.FIFOTYPE, "FIFOs are not allowed"),
])
def test_tar_special_files_are_refused(tmp_path: Path, into: Path, kind: bytes, problem: str) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_file("ok", b"1"), tar_special("dev/null", kind)])
    error = refused(archive, into, problem)
    assert str(error) == f"dev/null: {problem}"


def test_zip_device_entry_is_refused(tmp_path: Path, into: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [(zip_info("dev/null", stat.S_IFCHR | 0o666), b"")])
    refused(archive, into, "^dev/null: device files are not allowed$")


# --- refused: limits, corruption ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_too_many_files_are_refused(tmp_path: Path, into: Path, kind: str) -> None:
    archive = build(tmp_path / f"a.{kind}", {f"f{i}": (b"", 0o644) for i in range(5)})
    refused(archive, into, "^f3: archive has more than 3 entries$", max_files=3)
    assert len(extract(archive, into, max_files=5)) == 5


@pytest.mark.parametrize("kind", ["tar", "tgz", "zip"])
def test_too_many_bytes_are_refused(tmp_path: Path, into: Path, kind: str) -> None:
    archive = build(tmp_path / f"a.{kind}", {"a": (b"x" * 600, 0o644), "b": (b"x" * 600, 0o644)})
    refused(archive, into, "^b: archive expands to more than 1000 bytes$", max_bytes=1000)


def test_zip_header_under_declaring_the_size_is_refused(tmp_path: Path, into: Path) -> None:
    # A zip bomb whose headers claim 10 bytes for a megabyte of zeros.
    archive = make_zip(tmp_path / "bomb.zip", [("bomb.bin", bytes(1_000_000))])
    raw = bytearray(archive.read_bytes())
    struct.pack_into("<I", raw, raw.find(b"PK\x03\x04") + 22, 10)  # local header: uncompressed size
    struct.pack_into("<I", raw, raw.find(b"PK\x01\x02") + 24, 10)  # central directory: the same
    archive.write_bytes(bytes(raw))
    refused(archive, into, "^bomb.bin: ", max_bytes=1000)


def test_streaming_copy_enforces_budget_and_declared_size() -> None:
    # Reachable only when a reader yields more than its header declares; the stdlib readers truncate.
    entry = _Entry("f", "f", "file", size=10)
    with pytest.raises(ArchiveTooLarge, match=r"^f: archive expands to more than 5 bytes$"):
        _copy(io.BytesIO(b"x" * 10), io.BytesIO(), entry, _Budget(_Limit(5, "more than 5 bytes")))
    hundred = _Limit(100, "more than 100 bytes")
    with pytest.raises(ArchiveError, match=r"^f: content is larger than its declared size"):
        _copy(io.BytesIO(b"x" * 11), io.BytesIO(), entry, _Budget(hundred))
    with pytest.raises(ArchiveError, match=r"^f: content is smaller than its declared size"):
        _copy(io.BytesIO(b"x" * 9), io.BytesIO(), entry, _Budget(hundred))


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_an_archive_expanding_past_its_ratio_is_refused(tmp_path: Path, into: Path, kind: str) -> None:
    archive = build(tmp_path / f"zeros.{kind}", {"zeros.bin": (bytes(5_000_000), 0o644)})
    caught = refused(archive, into, r"^zeros.bin: archive expands to more than 100 times its size",
                     max_ratio=100)
    assert isinstance(caught, ArchiveTooLarge)
    assert len(extract(archive, into, max_ratio=100_000)) == 1


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_name_longer_than_a_file_system_takes_is_refused_by_name(tmp_path: Path, into: Path,
                                                                   kind: str) -> None:
    name = "d/" + "n" * 300
    archive = build(tmp_path / f"long.{kind}", {name: (b"x", 0o644)})
    caught = refused(archive, into, r"a name in the path is 300 bytes long; at most 255 are allowed$")
    assert str(caught).startswith("d/nnnn") and "characters left out" in str(caught)
    assert len(str(caught)) < 320


@pytest.mark.parametrize("name", ["junk.tar", "junk.tar.gz", "junk.zip"])
def test_corrupt_archive_is_refused(tmp_path: Path, into: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"this is not an archive" * 100)
    refused(tmp_path / name, into, f"^{re.escape(name)}: not a readable archive")


def test_truncated_tar_gz_is_refused(tmp_path: Path, into: Path) -> None:
    archive = build(tmp_path / "a.tar.gz", {"a": (os.urandom(100_000), 0o644)})
    archive.write_bytes(archive.read_bytes()[:50_000])
    with pytest.raises(ArchiveError):
        extract(archive, into)
    assert_untouched(into)


def test_missing_destination_parent_is_refused(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.tar", {"f": (b"1", 0o644)})
    with pytest.raises(FileNotFoundError):
        extract(archive, tmp_path / "no" / "such" / "dest")
    assert not (tmp_path / "no").exists()


def test_unknown_archive_type_is_refused(tmp_path: Path, into: Path) -> None:
    (tmp_path / "a.rar").write_bytes(b"x")
    refused(tmp_path / "a.rar", into, "^a.rar: unsupported archive type")


# --- export -------------------------------------------------------------------------------------


def entry(path: str, data: bytes, mode: int = 0o644, chunk: int = 7) -> ArchiveEntry:
    return ArchiveEntry(path, len(data), mode,
                        lambda: (data[i:i + chunk] for i in range(0, len(data), chunk)))


EXPORT = {
    "model/weights.bin": (os.urandom(200_000), 0o644),
    "model/run.sh": (b"#!/bin/sh\necho hi\n", 0o775),
    "empty.txt": (b"", 0o600),
    "deep/" * 30 + "long-name-needs-pax.txt": (b"long", 0o644),
    "ünïcode.txt": (b"u", 0o644),
}


def export_entries() -> list[ArchiveEntry]:
    return [entry(path, data, mode, chunk=4096) for path, (data, mode) in EXPORT.items()]


def check_exported(tmp_path: Path, data: bytes) -> None:
    archive = tmp_path / "export.tar.gz"
    archive.write_bytes(data)
    into = tmp_path / "unpacked"
    assert extract(archive, into) == sorted(Path(path) for path in EXPORT)
    for path, (content, mode) in EXPORT.items():
        assert (into / path).read_bytes() == content
        assert mode_of(into / path) == (0o755 if mode & 0o111 else 0o644)


def test_write_tar_gz_round_trip(tmp_path: Path) -> None:
    out = io.BytesIO()
    write_tar_gz(export_entries(), out)
    check_exported(tmp_path, out.getvalue())


class WriteOnly:
    """A pipe-like sink: write() only, no seek or tell."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def test_write_tar_gz_to_non_seekable_stream(tmp_path: Path) -> None:
    sink = WriteOnly()
    write_tar_gz(export_entries(), cast(BinaryIO, sink), compresslevel=1)
    check_exported(tmp_path, bytes(sink.data))


def test_write_tar_gz_through_a_real_pipe(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    received = bytearray()

    def drain() -> None:
        with open(read_fd, "rb") as reader:
            while chunk := reader.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with open(write_fd, "wb") as writer:
        write_tar_gz(export_entries(), writer)
    reader.join(timeout=30)
    check_exported(tmp_path, bytes(received))


def test_write_tar_gz_reads_content_lazily() -> None:
    calls: list[str] = []

    def chunks(name: str) -> Iterator[bytes]:
        calls.append(name)
        yield name.encode()

    entries = (ArchiveEntry(name, 1, 0o644, lambda name=name: chunks(name)) for name in "abc")
    write_tar_gz(entries, io.BytesIO())
    assert calls == ["a", "b", "c"]


@pytest.mark.parametrize(("data", "size", "problem"), [
    (b"12345", 6, "content is smaller than its declared size (6 bytes)"),
    (b"12345", 4, "content is larger than its declared size (4 bytes)"),
    (b"", 1, "content is smaller than its declared size (1 bytes)"),
])
def test_write_tar_gz_size_mismatch_is_refused(data: bytes, size: int, problem: str) -> None:
    bad = ArchiveEntry("x/bad.bin", size, 0o644, lambda: [data[:2], data[2:]])
    with pytest.raises(ArchiveError) as caught:
        write_tar_gz([entry("ok", b"fine"), bad], io.BytesIO())
    assert str(caught.value) == f"x/bad.bin: {problem}"


@pytest.mark.parametrize(("paths", "match"), [
    (["../x"], "^../x: entry escapes the extraction directory$"),
    (["/etc/x"], "^/etc/x: absolute paths are not allowed$"),
    (["a\\..\\x"], "backslashes are not allowed"),
    (["."], "^.: entry has no name$"),
    (["a", "./a"], "^./a: duplicate entry"),
    (["a", "a/b"], "^a/b: parent a is not a directory$"),
    (["a/b", "a"], "^a: duplicate entry"),
])
def test_write_tar_gz_refuses_bad_paths(paths: list[str], match: str) -> None:
    with pytest.raises(ArchiveError, match=match):
        write_tar_gz([entry(path, b"x") for path in paths], io.BytesIO())
