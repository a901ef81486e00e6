"""The shared test doubles of ``kit.testing`` that the services' unit tests import: the clocks, the
ids and the fake of repo-svc's client (which services/repo-svc/tests/test_repo_client_contract.py
holds to the real client against repo-svc itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.clients.repos import CodeSnapshot, RepoVersion
from shipyard.kit.errors import FailedPrecondition, NotFound, PermissionDenied
from shipyard.kit.inbox import INBOX
from shipyard.kit.outbox import OUTBOX
from shipyard.kit.store.port import Collection
from shipyard.kit.store.unit_of_work import StoreUnitOfWork
from shipyard.kit.testing import (
    ALICE,
    BOB,
    FakeRepoClient,
    FixedClock,
    FixedSeconds,
    RecordingUnitOfWorkFactory,
    SequentialIds,
    TickingClock,
    digest_of,
    memory_store,
    sqlite_store,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
THINGS = Collection("things")


def test_a_ticking_clock_moves_a_step_on_each_reading_and_as_far_as_the_test_says() -> None:
    clock = TickingClock()
    assert [clock(), clock()] == [START + timedelta(seconds=1), START + timedelta(seconds=2)]
    assert clock.advance(60) == START + timedelta(seconds=62)
    minutes = TickingClock(datetime(2030, 5, 1, tzinfo=UTC), step=timedelta(minutes=1))
    assert minutes() == datetime(2030, 5, 1, 0, 1, tzinfo=UTC)


def test_a_fixed_clock_stands_still_until_moved() -> None:
    clock = FixedClock()
    assert clock() == clock() == START
    assert clock.advance(5) == clock() == START + timedelta(seconds=5)
    seconds = FixedSeconds()
    seconds.now += 30
    assert seconds() == seconds() == 1030.0


def test_sequential_ids_count_up_after_their_prefix() -> None:
    ids = SequentialIds("tok")
    assert [ids(), ids()] == ["tok0001", "tok0002"]
    assert SequentialIds()() == "id-0001"
    assert SequentialIds("r", digits=2)() == "r01"


async def test_the_fake_repo_client_answers_from_what_the_test_added() -> None:
    repos = FakeRepoClient()
    repos.add("dataset", "digits", latest=3, digest="sha256:latest")
    latest = await repos.version(ALICE, "dataset", "digits", 0)
    assert latest == RepoVersion(3, "sha256:latest", "id-dataset-digits")
    assert (await repos.version(ALICE, "dataset", "digits", 2)).manifest_digest == digest_of("digits", 2)
    repos.add("model", "mnist", latest=0, repo_id="m-1")
    repos.add_version("model", "mnist", RepoVersion(4, "sha256:m4", "m-1", {"accuracy": 0.9}))
    assert (await repos.version(BOB, "model", "mnist", 0)).metrics == {"accuracy": 0.9}
    repos.add_code("trainer", "a" * 40, "b" * 40)
    repos.add_snapshot("trainer", CodeSnapshot("c" * 40, "sha256:c"))
    assert await repos.snapshot_code(ALICE, "trainer", "") == CodeSnapshot("c" * 40, "sha256:c")
    older = await repos.snapshot_code(ALICE, "trainer", "aaaa")
    assert older == CodeSnapshot("a" * 40, digest_of("trainer", 1))
    assert [call[0] for call in repos.calls] == ["version"] * 3 + ["snapshot_code"] * 2


async def test_the_fake_repo_client_refuses_as_repo_svc_does() -> None:
    repos = FakeRepoClient()
    repos.add("model", "mnist")
    repos.add_unversioned("dataset", "logs")
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await repos.check_write(BOB, "model", "mnist")
    repos.repo("model", "mnist").owner = "bob"
    assert await repos.check_write(BOB, "model", "mnist") == "id-model-mnist"
    with pytest.raises(FailedPrecondition, match="'logs' is not versioned"):
        await repos.check_write(ALICE, "dataset", "logs")
    with pytest.raises(NotFound, match="model 'mnist' has no version 2"):
        await repos.version(ALICE, "model", "mnist", 2)
    with pytest.raises(NotFound, match="code 'ghost' not found"):
        await repos.snapshot_code(ALICE, "ghost", "")


async def test_a_test_sqlite_store_opens_what_a_service_opens_and_is_closed_after(tmp_path: Path) -> None:
    async with sqlite_store(tmp_path / "store.db", [THINGS, INBOX]) as store:
        async with store.transaction() as txn:
            for collection in (THINGS, OUTBOX, INBOX):
                await txn.insert(collection.name, {"_id": "one"})
        await store.ping()
    with pytest.raises(RuntimeError, match="store is closed"):
        await store.ping()


async def test_the_recording_units_tell_the_committed_events_by_type_and_subject() -> None:
    units = RecordingUnitOfWorkFactory(await memory_store([THINGS]), lambda txn: StoreUnitOfWork(txn, "test"))
    async with units() as uow:
        uow.emit(events_pb2.RunStarted(name="a"), "runs/a", "")
        uow.emit(events_pb2.RunStopped(name="b"), "runs/b", "")
    with pytest.raises(RuntimeError):
        async with units() as uow:
            uow.emit(events_pb2.RunStarted(name="c"), "runs/c", "")
            raise RuntimeError("rolled back: its event is never published")
    assert [m.name for m in units.messages(events_pb2.RunStarted)] == ["a"]
    assert units.message_names() == ["RunStarted", "RunStopped"]
    assert units.message_names("runs/b") == ["RunStopped"]
    assert (units.commits, units.rollbacks) == (1, 1)
