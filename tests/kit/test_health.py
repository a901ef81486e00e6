"""A service's own health: disks with too little room, NATS that does not answer, and writes on a
full disk that fail as RESOURCE_EXHAUSTED ("no space left on device …"), leaving nothing behind
(issue 14, item 13 and the disk-full Low items)."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from shipyard.kit import errors
from shipyard.kit.blob import local as local_blobs
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.bus import EventBus
from shipyard.kit.grpcio import status_of
from shipyard.kit.health import Check, Report, blob_dir, disk_checks, store_dir
from shipyard.kit.service import BUS_TIMEOUT_S, _bus_check, disk_paths
from shipyard.kit.settings import Settings
from shipyard.kit.store.port import Collection
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.local.harness import wait_for
from tests.support.nats import NatsServer
from tests.support.tiny_disk import fill, tiny_disk

MiB = 1 << 20


def _space(free: int, total: int = 100 * MiB) -> os.statvfs_result:
    # f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_flag, f_namemax
    return os.statvfs_result((4096, 4096, total // 4096, free // 4096, free // 4096, 0, 0, 0, 0, 255))


# --- disk checks ------------------------------------------------------------------------------


def test_a_disk_below_the_minimum_is_unhealthy_naming_the_path_and_what_is_free(tmp_path: Path) -> None:
    [check] = disk_checks([tmp_path], 256 * MiB, statvfs=lambda _: _space(12 * MiB))
    assert not check.healthy
    assert check.name == f"disk {tmp_path}"
    assert "12.0 MiB free of 100.0 MiB" in check.detail and "below the 256.0 MiB minimum" in check.detail
    assert "SHIPYARD_MIN_FREE_BYTES" in check.detail


def test_a_disk_with_room_is_healthy(tmp_path: Path) -> None:
    [check] = disk_checks([tmp_path], 256 * MiB, statvfs=lambda _: _space(512 * MiB, 1024 * MiB))
    assert check.healthy and check.detail == "512.0 MiB free of 1.0 GiB"


def test_paths_on_one_file_system_are_checked_once_and_missing_ones_by_their_folder(tmp_path: Path) -> None:
    looked_at: list[str] = []

    def statvfs(path: str) -> os.statvfs_result:
        looked_at.append(path)
        return _space(MiB)

    checks = disk_checks([tmp_path / "not-yet" / "store", tmp_path], 0, statvfs=statvfs)
    assert [c.name for c in checks] == [f"disk {tmp_path / 'not-yet' / 'store'}"]
    assert looked_at[0] == str(tmp_path)


def test_a_report_says_what_is_wrong_check_by_check() -> None:
    report = Report((Check("store", True, "answering"), Check("bus", False, "NATS not answering (x)"),
                     Check("disk /d", False, "1 B free")))
    assert not report.healthy
    assert report.summary == "bus: NATS not answering (x); disk /d: 1 B free"
    assert Report((Check("store", True, "answering"),)).summary == "SERVING"


def test_a_service_checks_its_store_folder_the_blob_folder_and_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(service="repo-svc", data_dir=tmp_path)
    assert disk_paths(settings) == [tmp_path.resolve() / "repo-svc", tmp_path.resolve() / "blobs",
                                    tmp_path.resolve()]
    elsewhere = Settings(service="repo-svc", data_dir=tmp_path, store_url="mongodb://db/x",
                         blob_url="s3://k:s@host:9000/bucket")
    assert disk_paths(elsewhere) == [tmp_path.resolve()]
    assert store_dir("mongodb://db/x") is None and blob_dir("s3://k:s@h/b") is None


def test_a_real_full_disk_is_unhealthy(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        assert disk_checks([disk], MiB)[0].healthy
        fill(disk)
        [check] = disk_checks([disk], MiB)
        assert not check.healthy and "0 B free" in check.detail


# --- the bus ----------------------------------------------------------------------------------


def _stopped(pid: int) -> bool:
    """Whether every thread of the process is stopped (a signal takes effect on each in its time)."""
    return all(stat.read_text().rsplit(")", 1)[1].split()[0] == "T"
               for stat in Path(f"/proc/{pid}/task").glob("*/stat"))


async def test_a_frozen_nats_is_not_answering_though_still_connected(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats").start()
    bus = EventBus(server.url, source="shipyard/test")
    try:
        await bus.start()
        assert (await _bus_check(bus)).healthy
        assert server.process is not None
        pid = server.process.pid
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: _stopped(pid), 10, "nats-server to stop")
        try:
            check = await _bus_check(bus)
            assert bus.connected  # what the old health check looked at
            assert not check.healthy
            assert check.detail.startswith(f"NATS not answering within {BUS_TIMEOUT_S:g}s (")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert (await _bus_check(bus)).healthy
    finally:
        await bus.stop()
        server.stop()


# --- writes on a full disk ---------------------------------------------------------------------


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MiB):
        yield data[start:start + MiB]


def _left_in(store: LocalBlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()]


def _assert_no_space(exc: errors.ResourceExhausted, writing: str) -> None:
    assert exc.message.startswith("no space left on device while writing ") and writing in exc.message
    assert status_of(exc) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Still the OSError it stands for: the HTTP edge answers 507 to a full disk's OSError.
    assert str(exc) == exc.message
    assert isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


async def test_a_blob_put_on_a_full_disk_is_resource_exhausted_and_leaves_nothing(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        store = LocalBlobStore(disk / "blobs")
        await store.open()
        data = os.urandom(6 * MiB)  # more than the disk holds
        digest = hashlib.sha256(data).hexdigest()
        with pytest.raises(errors.ResourceExhausted) as raised:
            await store.put(digest, _chunks(data), len(data))
        _assert_no_space(raised.value, f"blob {digest}")
        assert _left_in(store) == [] and not await store.exists(digest)


async def test_a_file_stored_on_a_full_disk_is_resource_exhausted_and_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(6 * MiB))
    with tiny_disk(tmp_path / "disk") as disk:
        store = LocalBlobStore(disk / "blobs")
        await store.open()
        with pytest.raises(errors.ResourceExhausted) as raised:
            await store.put_files([source], workers=2)
        _assert_no_space(raised.value, str(source))
        assert _left_in(store) == []


async def test_a_quota_error_while_copying_is_resource_exhausted_and_the_temp_file_goes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.open()
    source = tmp_path / "a.txt"
    source.write_bytes(b"hello")

    def over_quota(src: Path, out: object) -> tuple[str, int]:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(local_blobs, "copy_file_hashed", over_quota)
    with pytest.raises(errors.ResourceExhausted) as raised:
        await store.put_file(source)
    _assert_no_space(raised.value, str(source))
    assert _left_in(store) == []


async def test_other_write_errors_stay_what_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.open()
    source = tmp_path / "a.txt"
    source.write_bytes(b"hello")

    def broken(src: Path, out: object) -> tuple[str, int]:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(local_blobs, "copy_file_hashed", broken)
    with pytest.raises(OSError, match="Input/output error"):
        await store.put_file(source)
    assert _left_in(store) == []


THINGS = Collection("things")


async def test_a_store_write_on_a_full_disk_is_resource_exhausted_and_changes_nothing(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        store = SQLiteDocumentStore(disk / "store.db")
        await store.open([THINGS])
        async with store.transaction() as tx:
            await tx.insert("things", {"_id": "kept", "n": 1})
        fill(disk)
        with pytest.raises(errors.ResourceExhausted) as raised:
            async with store.transaction() as tx:
                await tx.insert("things", {"_id": "big", "blob": "x" * (2 * MiB)})
        assert raised.value.message.startswith("no space left on device while writing the store ")
        assert str(disk / "store.db") in raised.value.message
        async with store.transaction() as tx:  # the store still works, and holds what it held
            assert [d["_id"] for d in await tx.find("things")] == ["kept"]
        await store.close()
