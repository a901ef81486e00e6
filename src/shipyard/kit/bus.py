"""The event bus: NATS JetStream.

FastStream's broker holds the connection (reconnects, drain on stop) and documents the
catalog (see asyncapi.py); publishing and consuming go through nats-py's JetStream API on
that connection, where we need control of pipelining and batches.

One stream, SHIPYARD_EVENTS, holds every event (file storage, limits retention, a
duplicate window so a republished event id is stored once). Publishing is pipelined (all
publishes of a batch go out before the acks are awaited, in order). Consumers are durable
pull consumers with explicit acks, batched; a message that cannot be decoded goes to the
dead-letter subject with the error, and one whose handler keeps failing does too once its
deliveries run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faststream.nats import NatsBroker
from faststream.nats.security import NatsUserPassword
from nats.aio.client import DEFAULT_INBOX_PREFIX
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NoStreamResponseError, NotFoundError

from shipyard.kit.bus_access import DEAD_LETTER_PREFIX, inbox_prefix
from shipyard.kit.events import STREAM, SUBJECT_PREFIX, Event, EventDecodeError, decode

log = logging.getLogger(__name__)

EventHandler = Callable[[list[Event]], Awaitable[None]]
PLACEHOLDER = "CHANGE-ME"  # what deploy/'s Secret holds until the operator sets real passwords
MAX_DELIVER = 8
DUPLICATE_WINDOW_S = 120.0
PUBLISH_ACK_TIMEOUT_S = 5.0
ACK_WAIT_S = 30.0
FETCH_WAIT_S = 1.0


def stream_config(replicas: int = 1) -> StreamConfig:
    """The SHIPYARD_EVENTS stream as every service declares it."""
    return StreamConfig(name=STREAM, subjects=[f"{SUBJECT_PREFIX}.>"], storage=StorageType.FILE,
                        retention=RetentionPolicy.LIMITS, duplicate_window=DUPLICATE_WINDOW_S,
                        num_replicas=replicas)


async def ensure_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the stream, or bring an existing one's settings up to date (idempotent)."""
    config = stream_config(replicas)
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


@dataclass
class _Consumer:
    durable: str
    handler: EventHandler
    subjects: str
    batch_size: int
    from_start: bool = False  # drop the durable's position first: deliver the stream from its start


class EventBus:
    """A service's connection to the bus: publish events, consume them durably."""

    def __init__(self, url: str, source: str, stream_replicas: int = 1, user: str = "",
                 password: str = "") -> None:
        """``user``/``password``: the bus credential (a NATS user of shipyard.kit.bus_access);
        none for a server without authorization."""
        if password.startswith(PLACEHOLDER):
            raise ValueError(f"the NATS password of {user!r} is still the manifests' placeholder "
                             f"{password!r}: set it in the Secret (deploy/README.md)")
        self.source = source
        self._replicas = stream_replicas
        # A user's replies come to its own inboxes: its permissions let it read those alone.
        security = NatsUserPassword(user, password) if user else None
        # nats-py takes float seconds; FastStream's annotation says int.
        self.broker = NatsBroker(url, name=source, allow_reconnect=True, max_reconnect_attempts=-1,
                                 reconnect_time_wait=0.25, connect_timeout=2.0,  # type: ignore[arg-type]
                                 graceful_timeout=5.0, security=security,
                                 inbox_prefix=inbox_prefix(user) if user else DEFAULT_INBOX_PREFIX)
        self._js: JetStreamContext | None = None
        self._consumers: list[_Consumer] = []
        self._tasks: list[asyncio.Task[None]] = []

    def consume(self, durable: str, handler: EventHandler, subjects: str = ">",
                batch_size: int = 256, from_start: bool = False) -> None:
        """Register a durable consumer (before ``start``); ``handler`` gets batches in stream order.

        ``from_start``: forget where the durable consumer was and deliver the whole stream again
        (a projection rebuilt from scratch at start)."""
        self._consumers.append(_Consumer(durable, handler, subjects, batch_size, from_start))

    async def replay(self, durable: str, reset: Callable[[], Awaitable[None]]) -> None:
        """Stop the consumer ``durable``, run ``reset`` (e.g. empty the projections it feeds),
        then deliver the whole stream to it again from the first event."""
        index = next(i for i, c in enumerate(self._consumers) if c.durable == durable)
        task = self._tasks[index]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await reset()
        self._consumers[index].from_start = True
        self._tasks[index] = asyncio.create_task(self._pull(self._consumers[index]))

    async def last_sequence(self) -> int:
        """The stream sequence of the newest event (0 when the stream is empty)."""
        if self._js is None:
            raise RuntimeError("bus is not started")
        info = await self._js.stream_info(STREAM)
        return int(info.state.last_seq or 0)

    async def start(self) -> None:
        """Connect, declare the stream, and start the consumers."""
        await self.broker.start()
        self._js = self.broker.connection.jetstream()
        await ensure_stream(self._js, self._replicas)
        self._tasks = [asyncio.create_task(self._pull(c)) for c in self._consumers]

    async def stop(self) -> None:
        """Stop the consumers, then drain and close the connection."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.broker.stop()
        self._js = None

    async def _pull(self, consumer: _Consumer) -> None:
        """Fetch batches and hand them over, forever; survives NATS restarts.

        Our own loop over nats-py's pull subscription rather than FastStream's batch
        subscriber: FastStream 0.7.8 drops a fetched batch when nats-py raises the builtin
        TimeoutError, which left events unacknowledged until ack_wait (30 s stalls, measured).
        """
        assert self._js is not None
        config = ConsumerConfig(durable_name=consumer.durable, ack_policy=JsAckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, max_deliver=MAX_DELIVER,
                                ack_wait=ACK_WAIT_S, max_ack_pending=consumer.batch_size * 4)
        subscription = None
        delay = 0.1
        try:
            while True:
                try:
                    if consumer.from_start:
                        await self._forget(consumer.durable)
                        consumer.from_start = False
                    if subscription is None:
                        subscription = await self._js.pull_subscribe(
                            f"{SUBJECT_PREFIX}.{consumer.subjects}", durable=consumer.durable, stream=STREAM,
                            config=config)
                    messages = await subscription.fetch(consumer.batch_size, timeout=FETCH_WAIT_S)
                except TimeoutError:  # nothing new (nats.errors.TimeoutError is one too)
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("consumer %s: fetch failed (%s); retrying in %.1fs", consumer.durable, exc,
                                delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    if isinstance(exc, NotFoundError):
                        subscription = None  # the consumer is gone (a NATS that lost its storage)
                    continue
                delay = 0.1
                await self._deliver(consumer, messages)
        finally:
            # Its inbox goes with it (the durable consumer stays): a draining connection would
            # otherwise wait on the subscription's queue until nats-py's drain timeout (30 s).
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _forget(self, durable: str) -> None:
        assert self._js is not None
        with contextlib.suppress(NotFoundError):  # never created, or already gone
            await self._js.delete_consumer(STREAM, durable)

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up right now."""
        try:
            return bool(self.broker.connection.is_connected)
        except Exception:
            return False

    async def round_trip(self, wait_s: float) -> None:
        """Ask the server something (JetStream's account info) and wait at most ``wait_s`` seconds
        for the answer; raises when none comes. A frozen server (SIGSTOP, a hung disk) keeps the
        connection open, so ``connected`` stays true: only a question tells."""
        await self.broker.connection.jetstream(timeout=wait_s).account_info()

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish ``events`` in order and wait until JetStream has stored every one."""
        await self.publish_encoded([(e.nats_subject, e.headers(), e.payload()) for e in events])

    async def publish_encoded(self, messages: Sequence[tuple[str, dict[str, str], bytes]]) -> None:
        """Publish already encoded (subject, headers, body) messages, as the outbox keeps them."""
        if self._js is None:
            raise RuntimeError("bus is not started")
        futures = [await self._js.publish_async(subject, body, headers=dict(headers))
                   for subject, headers, body in messages]
        try:
            # Acks of publishes buffered during a disconnect may never come: give up after a
            # while; the caller retries and JetStream drops what it had already stored.
            await asyncio.wait_for(asyncio.gather(*futures), timeout=PUBLISH_ACK_TIMEOUT_S)
        except NoStreamResponseError:
            # The stream is gone (a NATS server that lost its storage): declare it again.
            await ensure_stream(self._js, self._replicas)
            raise
        finally:
            for future in futures:
                future.cancel()

    async def _deliver(self, consumer: _Consumer, messages: list[Any]) -> None:
        events: list[Event] = []
        readable: list[Any] = []
        for msg in messages:
            try:
                events.append(decode(msg.headers or {}, msg.data, msg.metadata.sequence.stream))
                readable.append(msg)
            except EventDecodeError as exc:
                await self._dead_letter(consumer, msg, str(exc))
        if not events:
            return
        try:
            await consumer.handler(events)
        except Exception as exc:
            log.exception("consumer %s failed on a batch of %d events", consumer.durable, len(events))
            for msg in readable:
                if msg.metadata.num_delivered >= MAX_DELIVER:
                    await self._dead_letter(consumer, msg, f"{type(exc).__name__}: {exc}")
                else:
                    await msg.nak(delay=min(0.25 * 2 ** msg.metadata.num_delivered, 5.0))
            return
        await asyncio.gather(*(msg.ack() for msg in readable))

    async def _dead_letter(self, consumer: _Consumer, msg: Any, error: str) -> None:
        """Park a poison message on the dead-letter subject (with why) and stop redelivering it."""
        headers = {**(msg.headers or {}), "shipyard-error": error[:1000],
                   "shipyard-consumer": consumer.durable, "shipyard-subject": msg.subject}
        headers.pop("Nats-Msg-Id", None)
        await self.broker.connection.publish(f"{DEAD_LETTER_PREFIX}.{consumer.durable}", msg.data,
                                             headers=headers)
        log.error("dead-lettered message on %s for %s: %s", msg.subject, consumer.durable, error)
        await msg.term()


__all__ = ["DEAD_LETTER_PREFIX", "EventBus", "EventHandler", "ensure_stream", "stream_config"]
