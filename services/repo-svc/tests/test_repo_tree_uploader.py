"""BlobTreeUploader against a real local blob store: one read per file, the manifest scan() makes,
and with the hash cache only changed files read again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from shipyard_repo.adapters.tree import BlobTreeUploader, HostDirectories

from shipyard.kit import manifest as manifest_module
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.tree import FileChanged
from shipyard.kit.manifest import Manifest, scan


class CountingStore(LocalBlobStore):
    """A local store that notes which files it was given, and can change one as it reads it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.read: list[str] = []
        self.change_while_reading: Path | None = None

    def _ingest(self, source: Path) -> tuple[str, int]:
        self.read.append(source.name)
        if source == self.change_while_reading:
            source.write_bytes(b"edited by someone else meanwhile")
        return super()._ingest(source)


@pytest.fixture
async def store(tmp_path: Path) -> CountingStore:
    blobs = CountingStore(tmp_path / "blobs")
    await blobs.open()
    return blobs


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache hashes of files just written (normally only of files older than a few ms)."""
    monkeypatch.setattr(manifest_module, "RACY_WINDOW_NS", 0)
    monkeypatch.setattr(manifest_module, "COARSE_RACY_WINDOW_NS", 0)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "train").mkdir(parents=True)
    for index in range(5):
        (root / "train" / f"part-{index}.bin").write_bytes(os.urandom(1000 + index))
    (root / "same-as-part-0.bin").write_bytes((root / "train" / "part-0.bin").read_bytes())
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    return root


async def _stored(store: LocalBlobStore, manifest: Manifest) -> bool:
    return await store.missing([*manifest.blobs(), manifest.digest]) == []


async def test_the_manifest_is_scans_and_every_blob_is_stored(store: CountingStore, tree: Path) -> None:
    manifest = await BlobTreeUploader(store).store_tree(tree)
    assert manifest == scan(tree)
    assert await _stored(store, manifest)
    assert sorted(store.read) == sorted(["part-0.bin", "part-1.bin", "part-2.bin", "part-3.bin",
                                         "part-4.bin", "same-as-part-0.bin", "run.sh"])
    assert os.listdir(store.root / "tmp") == []


@pytest.mark.usefixtures("no_racy_window")
async def test_with_the_hash_cache_only_changed_files_are_read_again(
    store: CountingStore, tree: Path, tmp_path: Path
) -> None:
    uploader = BlobTreeUploader(store, cache_dir=tmp_path / "caches")
    first = await uploader.store_tree(tree, remember=True)
    store.read.clear()
    await uploader.store_tree(tree, remember=True)
    assert store.read == []
    (tree / "train" / "part-3.bin").write_bytes(b"new content")
    second = await uploader.store_tree(tree, remember=True)
    assert store.read == ["part-3.bin"]
    assert second == scan(tree) and second != first
    assert await _stored(store, second)


@pytest.mark.usefixtures("no_racy_window")
async def test_a_cached_file_whose_blob_is_gone_is_stored_again(
    store: CountingStore, tree: Path, tmp_path: Path
) -> None:
    uploader = BlobTreeUploader(store, cache_dir=tmp_path / "caches")
    await uploader.store_tree(tree, remember=True)
    gone = scan(tree).entries[0]
    await store.delete(gone.sha256)
    store.read.clear()
    manifest = await uploader.store_tree(tree, remember=True)
    assert store.read == [Path(gone.path).name]
    assert await _stored(store, manifest)


async def test_a_file_changed_while_it_is_read_fails_the_tree(store: CountingStore, tree: Path) -> None:
    store.change_while_reading = tree / "train" / "part-2.bin"
    with pytest.raises(FileChanged, match=r"'train/part-2\.bin' changed while it was being stored"):
        await BlobTreeUploader(store).store_tree(tree)


async def test_a_link_out_of_the_tree_is_refused_before_anything_is_read(
    store: CountingStore, tree: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("not yours")
    (tree / "innocent.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ValueError, match=r"symlink 'innocent\.txt' points outside"):
        await BlobTreeUploader(store).store_tree(tree)
    assert store.read == []


async def test_host_directories_resolve_links_and_know_files_are_not_directories(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("x")
    found = await HostDirectories().look_up(str(tmp_path / "link"))
    assert found is not None and found.real_path == str((tmp_path / "real").resolve())
    real = (tmp_path / "real").stat()
    assert (found.device, found.inode) == (real.st_dev, real.st_ino)
    assert await HostDirectories().look_up(str(tmp_path / "file")) is None
    assert await HostDirectories().look_up(str(tmp_path / "nothing")) is None
