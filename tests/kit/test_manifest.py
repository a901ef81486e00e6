"""Version manifests: scanning a directory, the canonical digest, paths, symlinks and the hash cache."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.kit import manifest as manifest_module
from shipyard.kit.manifest import (
    CACHE_NAME,
    HashCache,
    Manifest,
    ManifestEntry,
    copy_tree_reference,
    hash_file,
    scan,
    validate_path,
)

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(root: Path, path: str, data: bytes, mode: int = 0o644) -> Path:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    file.chmod(mode)
    return file


def entry(path: str, data: bytes, mode: int = 0o644) -> ManifestEntry:
    return ManifestEntry(path, len(data), sha(data), mode)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small tree: nested directories, an empty file, executables, unicode and dot names."""
    root = tmp_path / "tree"
    write(root, "README.md", b"# hello\n")
    write(root, "data/train/part-0.csv", b"a,b\n1,2\n" * 1000)
    write(root, "data/train/part-1.csv", b"a,b\n3,4\n" * 3)
    write(root, "data/empty.bin", b"")
    write(root, "bin/run.sh", b"#!/bin/sh\necho hi\n", 0o700)
    write(root, "bin/group-exec-only", b"x", 0o654)
    write(root, "données/naïve 日本.txt", "ünïcode\n".encode())
    write(root, ".hidden/.git/config", b"[core]\n")
    write(root, "big.bin", os.urandom(3 * manifest_module.CHUNK_SIZE + 17))
    return root


def expected_entries(root: Path) -> list[ManifestEntry]:
    """What the tree fixture's manifest must be, computed here with hashlib."""
    executable = {"bin/run.sh"}
    paths = ["README.md", "data/train/part-0.csv", "data/train/part-1.csv", "data/empty.bin", "bin/run.sh",
             "bin/group-exec-only", "données/naïve 日本.txt", ".hidden/.git/config", "big.bin"]
    return sorted((entry(p, (root / p).read_bytes(), 0o755 if p in executable else 0o644) for p in paths),
                  key=lambda e: e.path)


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust hashes of files written just before the scan, as the cache tests write and scan at once."""
    monkeypatch.setattr(manifest_module, "RACY_WINDOW_NS", 0)
    monkeypatch.setattr(manifest_module, "COARSE_RACY_WINDOW_NS", 0)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source path of every file that scan reads and hashes, in order."""
    calls: list[str] = []
    original = manifest_module._hash_and_stat

    def counting(source: str, on_read: Callable[[int], None]) -> tuple[str, os.stat_result]:
        calls.append(source)
        return original(source, on_read)

    monkeypatch.setattr(manifest_module, "_hash_and_stat", counting)
    return calls


# --- scanning ---------------------------------------------------------------------------------


def test_scan_describes_every_regular_file(tree: Path) -> None:
    result = scan(tree)

    assert list(result.entries) == expected_entries(tree)
    assert result.file_count == 9
    assert result.size == sum((tree / e.path).stat().st_size for e in result.entries)
    by_path = {e.path: e for e in result.entries}
    assert by_path["data/empty.bin"] == ManifestEntry("data/empty.bin", 0, EMPTY_SHA, 0o644)
    assert by_path["bin/run.sh"].mode == 0o755
    assert by_path["bin/group-exec-only"].mode == 0o644


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_scan_is_the_same_with_any_number_of_workers(tree: Path, workers: int) -> None:
    for i in range(30):
        write(tree, f"many/f{i:02}", os.urandom(i * 5000))
    assert scan(tree, workers=workers) == scan(tree, workers=1)


def test_scan_skips_only_the_cache_at_the_root(tree: Path) -> None:
    write(tree, f"{CACHE_NAME}/hashes.json", b"{}")
    write(tree, f"nested/{CACHE_NAME}", b"kept")
    paths = [e.path for e in scan(tree).entries]
    assert f"nested/{CACHE_NAME}" in paths
    assert not any(p.startswith(CACHE_NAME) for p in paths)
    assert ".hidden/.git/config" in paths


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_scan_skips_fifos(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    assert "pipe" not in [e.path for e in scan(tree).entries]


def test_scan_of_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty" / "nested").mkdir(parents=True)
    result = scan(tmp_path / "empty")
    assert result.entries == ()
    assert result.digest == EMPTY_SHA


def test_scan_refuses_a_file_root(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        scan(write(tmp_path, "file", b"x"))


def test_scan_refuses_names_that_are_not_manifest_paths(tmp_path: Path) -> None:
    write(tmp_path, "ok/bad\\name", b"x")
    with pytest.raises(ValueError, match="backslash"):
        scan(tmp_path)


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes as names")
def test_scan_refuses_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with open(os.path.join(os.fsencode(tmp_path / "dir"), b"bad\xffname"), "wb"):
        pass
    with pytest.raises(ValueError, match="not valid UTF-8"):
        scan(tmp_path)


def test_scan_refuses_bad_worker_counts(tree: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        scan(tree, workers=0)


def test_scan_raises_a_read_error(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = manifest_module._hash_and_stat

    def failing(source: str, on_read: Callable[[int], None]) -> tuple[str, os.stat_result]:
        if source.endswith("part-1.csv"):
            raise PermissionError(13, "Permission denied", source)
        return original(source, on_read)

    monkeypatch.setattr(manifest_module, "_hash_and_stat", failing)
    with pytest.raises(PermissionError):
        scan(tree)


def test_scan_refuses_a_file_changed_while_it_is_hashed(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = manifest_module._hash_and_stat

    def growing(source: str, on_read: Callable[[int], None]) -> tuple[str, os.stat_result]:
        if source.endswith("README.md"):
            with open(source, "ab") as file:
                file.write(b"more\n")
        return original(source, on_read)

    monkeypatch.setattr(manifest_module, "_hash_and_stat", growing)
    with pytest.raises(ValueError, match=r"'README.md' changed while it was being scanned"):
        scan(tree)


def test_hash_file(tree: Path) -> None:
    assert hash_file(tree / "big.bin") == sha((tree / "big.bin").read_bytes())
    assert hash_file(tree / "data/empty.bin") == EMPTY_SHA


# --- symlinks ---------------------------------------------------------------------------------


def test_symlink_to_a_file_inside_is_hashed_as_that_file(tree: Path) -> None:
    (tree / "links").mkdir()
    (tree / "links/readme").symlink_to("../README.md")
    (tree / "links/absolute").symlink_to(tree / "data/train/part-1.csv")

    by_path = {e.path: e for e in scan(tree).entries}

    assert by_path["links/readme"] == entry("links/readme", b"# hello\n")
    assert by_path["links/absolute"].sha256 == by_path["data/train/part-1.csv"].sha256


def test_symlink_to_an_executable_keeps_the_mode(tree: Path) -> None:
    (tree / "run").symlink_to("bin/run.sh")
    assert {e.path: e for e in scan(tree).entries}["run"].mode == 0o755


@pytest.mark.parametrize("target", ["../outside.txt", "ABSOLUTE"])
def test_symlink_escaping_the_root_is_refused(tree: Path, target: str) -> None:
    outside = write(tree.parent, "outside.txt", b"secret")
    (tree / "data/escape").symlink_to(outside if target == "ABSOLUTE" else Path("..") / target)
    with pytest.raises(ValueError, match=r"symlink 'data/escape' points outside"):
        scan(tree)


def test_symlink_into_a_sibling_with_the_same_prefix_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    write(tmp_path, "tree-other/file", b"x")
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "tree-other/file")
    with pytest.raises(ValueError, match="points outside"):
        scan(root)


def test_broken_symlink_and_directory_symlink_are_refused(tree: Path) -> None:
    (tree / "dangling").symlink_to("nowhere")
    with pytest.raises(ValueError, match="'dangling' is broken"):
        scan(tree)
    (tree / "dangling").unlink()
    (tree / "dirlink").symlink_to("data")
    with pytest.raises(ValueError, match="'dirlink' points to a directory"):
        scan(tree)


def test_scan_through_a_symlinked_root(tree: Path) -> None:
    link = tree.parent / "alias"
    link.symlink_to(tree)
    assert scan(link) == scan(tree)


# --- the manifest -----------------------------------------------------------------------------


def canonical_digest(entries: list[ManifestEntry]) -> str:
    """The documented encoding, re-implemented here."""
    ordered = sorted(entries, key=lambda e: e.path)
    lines = "".join(f"{e.sha256} {e.mode:o} {e.size} {e.path}\n" for e in ordered)
    return sha(lines.encode("utf-8"))


SAMPLE = [entry("b.txt", b"bee"), entry("a dir/x y.bin", b"", 0o755), entry("é.txt", b"accent")]


def test_digest_is_the_documented_encoding() -> None:
    manifest = Manifest(tuple(SAMPLE))
    assert manifest.digest == canonical_digest(SAMPLE)
    # Pinned so that an accidental change of the encoding (which would change every version's
    # identity) fails here.
    assert manifest.digest == "2b059b11d264ba03c8bf8a0a74557303b24a1956ff3d0f37cd6b4be5ebb45289"
    assert Manifest().digest == EMPTY_SHA


def test_digest_is_stable(tree: Path) -> None:
    first = scan(tree)
    assert scan(tree).digest == first.digest
    assert Manifest(tuple(reversed(first.entries))).digest == first.digest
    assert Manifest.from_json(json.loads(json.dumps(first.to_json()))).digest == first.digest


@pytest.mark.parametrize("change", [
    lambda e: ManifestEntry("c.txt", e.size, e.sha256, e.mode),
    lambda e: ManifestEntry(e.path, e.size + 1, e.sha256, e.mode),
    lambda e: ManifestEntry(e.path, e.size, sha(b"other"), e.mode),
    lambda e: ManifestEntry(e.path, e.size, e.sha256, 0o755),
], ids=["path", "size", "content", "mode"])
def test_digest_changes_with_any_field(change: Callable[[ManifestEntry], ManifestEntry]) -> None:
    before = Manifest(tuple(SAMPLE))
    after = Manifest((change(SAMPLE[0]), *SAMPLE[1:]))
    assert after.digest != before.digest


def test_digest_changes_when_a_scanned_file_changes(tree: Path) -> None:
    before = scan(tree).digest
    (tree / "bin/run.sh").chmod(0o644)
    after_mode = scan(tree).digest
    write(tree, "README.md", b"# hellO\n")
    after_content = scan(tree).digest
    (tree / "README.md").rename(tree / "README.txt")
    after_rename = scan(tree).digest
    assert len({before, after_mode, after_content, after_rename}) == 4


def test_entries_are_sorted_by_code_point() -> None:
    names = ["b", "a/b", "a.txt", "A", "é", "a-b/c", "z"]
    manifest = Manifest(tuple(entry(n, n.encode()) for n in names))
    assert [e.path for e in manifest.entries] == ["A", "a-b/c", "a.txt", "a/b", "b", "z", "é"]
    assert [e.path for e in manifest.entries] == sorted(names, key=lambda n: n.encode("utf-8"))


def test_manifest_rejects_duplicates_and_file_directory_clashes() -> None:
    with pytest.raises(ValueError, match="duplicate manifest path 'a'"):
        Manifest((entry("a", b"1"), entry("a", b"2")))
    with pytest.raises(ValueError, match="'a' is both a file and a directory"):
        Manifest((entry("a", b"1"), entry("a/b", b"2")))


def test_entries_are_validated() -> None:
    with pytest.raises(ValueError, match="absolute"):
        ManifestEntry("/etc/passwd", 1, EMPTY_SHA, 0o644)
    with pytest.raises(ValueError, match="invalid sha256"):
        ManifestEntry("a", 1, EMPTY_SHA.upper(), 0o644)
    with pytest.raises(ValueError, match="invalid size"):
        ManifestEntry("a", -1, EMPTY_SHA, 0o644)
    with pytest.raises(ValueError, match="invalid mode"):
        ManifestEntry("a", 1, EMPTY_SHA, 0o600)


def test_blobs_are_distinct_in_first_seen_order(tree: Path) -> None:
    write(tree, "copy/of/readme", b"# hello\n")
    write(tree, "another-empty", b"")
    blobs = scan(tree).blobs()
    assert len(blobs) == len(set(blobs)) == 9
    # Path order: ".hidden/.git/config", "README.md", "another-empty", … "copy/of/readme", "data/empty.bin"
    assert blobs[:3] == [sha(b"[core]\n"), sha(b"# hello\n"), EMPTY_SHA]
    manifest = Manifest((entry("x", b"same"), entry("y", b"other"), entry("z", b"same")))
    assert manifest.blobs() == [sha(b"same"), sha(b"other")]


def test_json_round_trip(tree: Path) -> None:
    manifest = scan(tree)
    data = manifest.to_json()
    assert data[0] == {"path": ".hidden/.git/config", "size": 7, "sha256": sha(b"[core]\n"), "mode": 0o644}
    assert Manifest.from_json(json.loads(json.dumps(data))) == manifest


@pytest.mark.parametrize("bad", [
    {"path": "a", "size": 1, "sha256": EMPTY_SHA},
    {"path": "a", "size": 1, "sha256": EMPTY_SHA, "mode": 420, "extra": 1},
    {"path": "../a", "size": 1, "sha256": EMPTY_SHA, "mode": 420},
    {"path": "a", "size": "1", "sha256": EMPTY_SHA, "mode": 420},
    {"path": "a", "size": True, "sha256": EMPTY_SHA, "mode": 420},
    {"path": "a", "size": 1, "sha256": "abc", "mode": 420},
    {"path": "a", "size": 1, "sha256": EMPTY_SHA, "mode": 0o777},
    "a",
])
def test_from_json_rejects_bad_entries(bad: object) -> None:
    with pytest.raises(ValueError):
        Manifest.from_json([bad])  # type: ignore[list-item]


def test_from_json_rejects_a_non_list() -> None:
    with pytest.raises(ValueError, match="list"):
        Manifest.from_json("[]")  # type: ignore[arg-type]


def test_diff() -> None:
    old = Manifest((entry("same", b"1"), entry("edited", b"old"), entry("chmod", b"x"), entry("gone", b"g")))
    new = Manifest((entry("same", b"1"), entry("edited", b"new"), entry("chmod", b"x", 0o755),
                    entry("new/b", b"b"), entry("new/a", b"a")))
    diff = old.diff(new)
    assert diff.added == ["new/a", "new/b"]
    assert diff.removed == ["gone"]
    assert diff.changed == ["chmod", "edited"]
    assert diff
    assert not old.diff(old)
    assert new.diff(old).added == ["gone"]


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "problem"), [
    ("", "empty"),
    ("/abs/file", "absolute"),
    ("../up", "'..' component"),
    ("a/../b", "'..' component"),
    ("a/./b", "'.' component"),
    ("a//b", "empty component"),
    ("a/", "empty component"),
    ("a\x00b", "control character U\\+0000"),
    ("a\nb", "control character U\\+000A"),
    ("a\x7fb", "control character U\\+007F"),
    ("a\x85b", "control character U\\+0085"),
    ("a\\b", "backslash"),
    ("bad\udcffname", "not valid UTF-8"),
    ("a/" * 2048 + "b", "4097 bytes long"),
    ("d/" + "n" * 256, "component is 256 bytes long"),
    ("d/" + "é" * 128, "component is 256 bytes long"),
])
def test_validate_path_rejects(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_path(path)


@pytest.mark.parametrize("path", ["a", "a/b/c.txt", ".hidden", "..dots..", "a b/c d", "日本/ü",
                                  "n" * 255, "/".join(["d" * 200] * 20) + "/x"])
def test_validate_path_accepts(path: str) -> None:
    assert validate_path(path) == path


def test_the_fast_check_agrees_with_the_explained_one() -> None:
    """validate_path trusts a fast check for valid paths; it must accept exactly what the detailed
    check (which words the errors) accepts."""
    rng = random.Random(1234)
    alphabet = ["a", "é", ".", "..", "/", "\\", "\x00", "\x9f", " ", "\udcff", "日", "n" * 120]
    for _ in range(20_000):
        path = "".join(rng.choices(alphabet, k=rng.randint(0, 8)))
        assert manifest_module._looks_valid(path) == (manifest_module._problem(path) is None), repr(path)


def test_validate_path_message_names_the_path() -> None:
    with pytest.raises(ValueError, match=r"invalid path '\.\./secret': '\.\.' component"):
        validate_path("../secret")


# --- the hash cache ---------------------------------------------------------------------------


def scan_cached(root: Path, cache_path: Path | None = None) -> Manifest:
    cache = HashCache(cache_path or root / CACHE_NAME)
    result = scan(root, cache=cache)
    cache.save()
    return result


@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_tree_is_not_rehashed(tree: Path, hashed: list[str]) -> None:
    first = scan_cached(tree)
    assert len(hashed) == 9
    hashed.clear()

    second = scan_cached(tree)

    assert hashed == []
    assert second == first
    assert (tree / CACHE_NAME).is_file()


@pytest.mark.usefixtures("no_racy_window")
def test_modified_file_is_rehashed(tree: Path, hashed: list[str]) -> None:
    scan_cached(tree)
    hashed.clear()
    target = tree / "data/train/part-1.csv"
    before = target.stat()
    target.write_bytes(b"A,B\n3,4\n" * 3)  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))

    result = scan_cached(tree)

    assert hashed == [str(target)]
    assert {e.path: e for e in result.entries}["data/train/part-1.csv"].sha256 == sha(target.read_bytes())


@pytest.mark.usefixtures("no_racy_window")
def test_restored_mtime_does_not_hide_a_change(tree: Path, hashed: list[str]) -> None:
    """``touch -m`` back to the old mtime: same size and mtime, but the ctime moved."""
    scan_cached(tree)
    hashed.clear()
    target = tree / "README.md"
    before = target.stat()
    ctime_ns = before.st_ctime_ns
    while target.stat().st_ctime_ns == ctime_ns:  # wait out the file system's timestamp tick
        target.write_bytes(b"# HELLO\n")
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    result = scan_cached(tree)

    assert hashed == [str(target)]
    assert {e.path: e for e in result.entries}["README.md"].sha256 == sha(b"# HELLO\n")


@pytest.mark.usefixtures("no_racy_window")
def test_replaced_file_is_rehashed(tree: Path, hashed: list[str]) -> None:
    scan_cached(tree)
    hashed.clear()
    write(tree, "new-readme", b"# HELLO\n")
    os.replace(tree / "new-readme", tree / "README.md")  # a new inode
    scan_cached(tree)
    assert sorted(hashed) == [str(tree / "README.md")]


def test_recently_written_files_are_not_trusted(tree: Path, hashed: list[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A file written within the racy window of its hashing is hashed again next time."""
    monkeypatch.setattr(manifest_module, "RACY_WINDOW_NS", 3600 * 10**9)
    scan_cached(tree)
    hashed.clear()
    scan_cached(tree)
    assert len(hashed) == 9


@pytest.mark.parametrize("content", [
    b"\x00\xff garbage",
    b'{"format": "shipyard-hash-cache", "version": 1, "entries": {"/x": [1, 2',
    b"[]",
    b'{"format": "other", "version": 1, "entries": {}}',
    b'{"format": "shipyard-hash-cache", "version": 1, "entries": []}',
], ids=["binary", "truncated", "list", "foreign", "bad-entries"])
@pytest.mark.usefixtures("no_racy_window")
def test_corrupt_cache_is_ignored(tree: Path, hashed: list[str], content: bytes) -> None:
    cache_path = tree / CACHE_NAME
    cache_path.write_bytes(content)
    expected = scan(tree)
    hashed.clear()

    assert scan_cached(tree) == expected

    assert len(hashed) == 9
    hashed.clear()
    scan_cached(tree)
    assert hashed == []  # the cache was rewritten in good order


@pytest.mark.usefixtures("no_racy_window")
def test_bad_cache_entries_are_skipped_one_by_one(tree: Path, hashed: list[str]) -> None:
    cache_path = tree / CACHE_NAME
    scan_cached(tree)
    document = json.loads(cache_path.read_bytes())
    readme = str(tree.resolve() / "README.md")
    document["entries"][readme][4] = "not a digest"
    document["entries"]["/elsewhere"] = [1, 2, 3]
    cache_path.write_text(json.dumps(document))
    hashed.clear()

    scan_cached(tree)

    assert hashed == [readme]


@pytest.mark.usefixtures("no_racy_window")
def test_save_drops_vanished_files(tree: Path, tmp_path: Path) -> None:
    cache_path = tmp_path / "caches" / "hashes.json"  # outside the tree, parent created on save
    scan_cached(tree, cache_path)
    (tree / "big.bin").unlink()
    scan_cached(tree, cache_path)

    keys = json.loads(cache_path.read_bytes())["entries"].keys()
    assert len(keys) == 8
    assert str(tree.resolve() / "big.bin") not in keys
    assert not [p for p in cache_path.parent.iterdir() if p != cache_path]  # no temporary left behind


@pytest.mark.usefixtures("no_racy_window")
def test_a_cache_serves_several_roots(tmp_path: Path, hashed: list[str]) -> None:
    cache_path = tmp_path / "hashes.json"
    write(tmp_path, "one/a", b"a")
    write(tmp_path, "two/b", b"b")
    scan_cached(tmp_path / "one", cache_path)
    scan_cached(tmp_path / "two", cache_path)
    hashed.clear()
    scan_cached(tmp_path / "one", cache_path)
    scan_cached(tmp_path / "two", cache_path)
    assert hashed == []
    assert len(HashCache(cache_path)) == 2


# --- progress ---------------------------------------------------------------------------------


def test_progress_ends_at_total(tree: Path) -> None:
    calls: list[tuple[int, int]] = []
    result = scan(tree, progress=lambda done, total: calls.append((done, total)))
    assert calls
    assert calls[-1] == (result.size, result.size)
    assert all(total == result.size for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.usefixtures("no_racy_window")
def test_progress_counts_cached_files_as_done(tree: Path) -> None:
    scan_cached(tree)
    calls: list[tuple[int, int]] = []
    cache = HashCache(tree / CACHE_NAME)
    result = scan(tree, cache=cache, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (result.size, result.size)
    assert calls[-1] == (result.size, result.size)


def test_progress_on_an_empty_tree(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    scan(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (0, 0)


# --- the benchmark's baseline -----------------------------------------------------------------


def test_copy_tree_reference(tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    result = copy_tree_reference(tree, dest)
    assert result == scan(tree)
    for e in result.entries:
        assert (dest / e.path).read_bytes() == (tree / e.path).read_bytes()


def test_copy_tree_reference_refuses_a_destination_inside(tree: Path) -> None:
    with pytest.raises(ValueError, match="inside"):
        copy_tree_reference(tree, tree / "copy")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_only_the_owner_executable_bit_counts(tmp_path: Path) -> None:
    for mode in (0o600, 0o700, 0o744, 0o611, 0o4755):
        write(tmp_path, f"m{mode:o}", b"x", mode)
    modes = {e.path: e.mode for e in scan(tmp_path).entries}
    assert modes == {"m600": 0o644, "m700": 0o755, "m744": 0o755, "m611": 0o644, "m4755": 0o755}


def test_encode_and_decode_round_trip_and_the_encoding_hashes_to_the_digest() -> None:
    manifest = Manifest((ManifestEntry("b c/d.txt", 3, "a" * 64, 0o755),
                         ManifestEntry("a", 0, "b" * 64, 0o644)))
    data = manifest.encode()
    assert data == f"{'b' * 64} 644 0 a\n{'a' * 64} 755 3 b c/d.txt\n".encode()
    assert hashlib.sha256(data).hexdigest() == manifest.digest
    assert Manifest.decode(data) == manifest
    assert Manifest.decode(b"") == Manifest(())


@pytest.mark.parametrize("data", [
    b"nonsense\n",
    f"{'a' * 64} 644 x a\n".encode(),
    f"{'a' * 64} 644 1 a".encode(),
    f"{'a' * 64} 644 1 b\n{'a' * 64} 644 1 a\n".encode(),
    f"{'a' * 64} 0644 1 a\n".encode(),
    f"{'a' * 64} 600 1 a\n".encode(),
    f"{'a' * 64} 644 1 ../a\n".encode(),
    b"\xff\n",
])
def test_decode_refuses_what_is_not_a_canonical_manifest(data: bytes) -> None:
    with pytest.raises(ValueError):
        Manifest.decode(data)
