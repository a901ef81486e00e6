"""The bus and the outbox against a real nats-server: order, dedup, dead letters, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import nats
import pytest

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit import bus as bus_module
from shipyard.kit.bus import DEAD_LETTER_PREFIX, EventBus
from shipyard.kit.events import Event, new_event
from shipyard.kit.inbox import INBOX
from shipyard.kit.outbox import OUTBOX, OutboxRelay, add_to_outbox
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from tests.support.nats import NatsServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "js").start()
    try:
        yield server
    finally:
        server.stop()


async def eventually(condition: Callable[[], Awaitable[bool] | bool], deadline_s: float = 20.0) -> None:
    """Wait for a condition with a deadline (never a blind sleep)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result = condition()
        if await result if asyncio.iscoroutine(result) else result:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met in time")


def created(name: str) -> Event:
    return new_event(events_pb2.ProjectCreated(project=projects_pb2.Project(name=name)),
                     source="test", subject=f"projects/{name}", project=name)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteDocumentStore]:
    db = SQLiteDocumentStore(tmp_path / "svc.db")
    await db.open([OUTBOX, INBOX])
    yield db
    await db.close()


async def test_published_events_arrive_in_order_once(nats_server: NatsServer) -> None:
    received: list[Event] = []

    async def handler(events: list[Event]) -> None:
        received.extend(events)

    bus = EventBus(nats_server.url, "test")
    bus.consume("order-test", handler)
    await bus.start()
    try:
        events = [created(f"p{i:03d}") for i in range(300)]
        await bus.publish(events)
        await bus.publish(events[:50])  # republished ids are dropped by JetStream's duplicate window
        await eventually(lambda: len(received) >= 300)
        assert [e.id for e in received] == [e.id for e in events]
        assert [e.sequence for e in received] == list(range(1, 301))
        assert received[0].data == events[0].data and received[0].project == "p000"
    finally:
        await bus.stop()


async def test_undecodable_message_goes_to_dead_letter(nats_server: NatsServer) -> None:
    received: list[Event] = []

    async def handler(events: list[Event]) -> None:
        received.extend(events)

    bus = EventBus(nats_server.url, "test")
    bus.consume("poison-test", handler)
    await bus.start()
    raw = await nats.connect(nats_server.url)
    dead = await raw.subscribe(f"{DEAD_LETTER_PREFIX}.poison-test")
    try:
        js = raw.jetstream()
        await js.publish("shipyard.events.project.created", b"\xff\xfe not protobuf",
                         headers={"ce-type": "io.shipyard.project.created.v1", "ce-id": "bad-1"})
        good = created("after-poison")
        await bus.publish([good])
        await eventually(lambda: [e.id for e in received] == [good.id])
        parked = await dead.next_msg(timeout=10)
        assert parked.headers is not None
        error = parked.headers["shipyard-error"]
        assert "unreadable" in error or "missing" in error
        assert parked.headers["shipyard-consumer"] == "poison-test"
    finally:
        await raw.close()
        await bus.stop()


async def test_failing_handler_is_retried_then_succeeds(nats_server: NatsServer) -> None:
    attempts: list[int] = []
    done: list[Event] = []

    async def flaky(events: list[Event]) -> None:
        attempts.append(len(events))
        if len(attempts) < 3:
            raise RuntimeError("database briefly unavailable")
        done.extend(events)

    bus = EventBus(nats_server.url, "test")
    bus.consume("flaky-test", flaky)
    await bus.start()
    try:
        event = created("retried")
        await bus.publish([event])
        await eventually(lambda: len(done) == 1)
        assert done[0].id == event.id and len(attempts) >= 3
    finally:
        await bus.stop()


async def test_outbox_holds_events_while_nats_is_down(nats_server: NatsServer,
                                                      store: SQLiteDocumentStore) -> None:
    bus = EventBus(nats_server.url, "test")
    await bus.start()
    relay = OutboxRelay(store, bus, batch_size=50)
    task = asyncio.create_task(relay.run())
    try:
        nats_server.kill()
        events = [created(f"outage-{i}") for i in range(120)]
        async with store.transaction() as txn:
            await add_to_outbox(txn, events)
        relay.notify()

        async def pending() -> int:
            async with store.transaction() as txn:
                return await txn.count(OUTBOX.name)

        assert await pending() == 120  # nothing can leave while NATS is down
        nats_server.start()  # same port, same storage
        await eventually(lambda: relay.published >= 120, deadline_s=30)
        assert await pending() == 0
    finally:
        task.cancel()
        await bus.stop()
    raw = await nats.connect(nats_server.url)
    try:
        info = await raw.jetstream().stream_info("SHIPYARD_EVENTS")
        assert info.state.messages == 120
    finally:
        await raw.close()


async def test_rolled_back_transaction_leaves_no_event(store: SQLiteDocumentStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as txn:
            await add_to_outbox(txn, [created("never")])
            raise RuntimeError("the use case failed after staging its event")
    async with store.transaction() as txn:
        assert await txn.count(OUTBOX.name) == 0


async def test_stop_does_not_wait_on_an_idle_consumer(nats_server: NatsServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_module, "FETCH_WAIT_S", 0.05)
    bus = EventBus(nats_server.url, "test")
    bus.consume("stop-test", _ignore)
    await bus.start()
    # The scenario is an idle consumer: its fetches expire for a while. nats-py leaves the expired
    # requests' replies on the subscription's queue, and a draining connection used to wait on that
    # queue until nats-py's 30 s drain timeout (then failed). Idle time is the condition itself.
    await asyncio.sleep(0.5)
    stopping = asyncio.create_task(bus.stop())
    done, _ = await asyncio.wait({stopping}, timeout=20)  # a deadline on the hang, not a speed figure
    if not done:
        stopping.cancel()
    assert stopping in done, "stop() hung on the idle consumer's subscription"
    assert not bus.connected


async def _ignore(events: list[Event]) -> None:
    del events


async def test_replay_delivers_the_whole_stream_again(nats_server: NatsServer) -> None:
    received: list[str] = []
    resets: list[int] = []

    async def handler(events: list[Event]) -> None:
        received.extend(e.id for e in events)

    async def reset() -> None:
        resets.append(len(received))
        received.clear()

    bus = EventBus(nats_server.url, "test")
    bus.consume("replay-test", handler)
    await bus.start()
    try:
        events = [created(f"r{i}") for i in range(5)]
        await bus.publish(events)
        await eventually(lambda: len(received) == 5)
        await bus.replay("replay-test", reset)
        await eventually(lambda: len(received) == 5)
        assert resets == [5] and received == [e.id for e in events]
        assert await bus.last_sequence() == 5
    finally:
        await bus.stop()
