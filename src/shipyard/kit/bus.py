"""The event bus: NATS JetStream through FastStream.

One stream, SHIPYARD_EVENTS, holds every event (file storage, limits retention, a
duplicate window so a republished event id is stored once). Publishing is pipelined (all
publishes of a batch go out before the acks are awaited, in order). Consumers are durable
pull consumers with explicit acks, batched; a message that cannot be decoded goes to the
dead-letter subject with the error, and one whose handler keeps failing does too once its
deliveries run out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faststream import Context
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NoStreamResponseError

from shipyard.kit.events import STREAM, SUBJECT_PREFIX, Event, EventDecodeError, decode

log = logging.getLogger(__name__)

EventHandler = Callable[[list[Event]], Awaitable[None]]
DEAD_LETTER_PREFIX = "shipyard.deadletter"
MAX_DELIVER = 8
DUPLICATE_WINDOW_S = 120.0
PUBLISH_ACK_TIMEOUT_S = 5.0


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


class EventBus:
    """A service's connection to the bus: publish events, consume them durably."""

    def __init__(self, url: str, source: str, stream_replicas: int = 1) -> None:
        self.source = source
        self._replicas = stream_replicas
        # nats-py takes float seconds; FastStream's annotation says int.
        self.broker = NatsBroker(url, name=source, allow_reconnect=True, max_reconnect_attempts=-1,
                                 reconnect_time_wait=0.25, connect_timeout=2.0,  # type: ignore[arg-type]
                                 graceful_timeout=5.0)
        # Subscribers name the stream; start() declares it (every service, publishers too).
        self._stream = JStream(name=STREAM, declare=False)
        self._js: JetStreamContext | None = None

    def consume(self, durable: str, handler: EventHandler, subjects: str = ">",
                batch_size: int = 256) -> None:
        """Register a durable consumer (before ``start``); ``handler`` gets batches in stream order."""
        consumer = _Consumer(durable, handler, subjects, batch_size)
        config = ConsumerConfig(durable_name=durable, ack_policy=JsAckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, max_deliver=MAX_DELIVER,
                                ack_wait=30.0, max_ack_pending=batch_size * 4)
        subscriber = self.broker.subscriber(
            f"{SUBJECT_PREFIX}.{subjects}", stream=self._stream, durable=durable, config=config,
            pull_sub=PullSub(batch_size=batch_size, timeout=0.1, batch=True),
            ack_policy=AckPolicy.MANUAL)

        async def on_batch(_: Any, message: Any = Context("message")) -> None:  # noqa: B008 - FastStream DI
            await self._deliver(consumer, message.raw_message)

        subscriber(on_batch)

    async def start(self) -> None:
        """Connect, declare the stream, and start the consumers."""
        await self.broker.connect()
        self._js = self.broker.connection.jetstream()
        await ensure_stream(self._js, self._replicas)
        await self.broker.start()

    async def stop(self) -> None:
        """Drain and close the connection."""
        await self.broker.stop()
        self._js = None

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up right now."""
        try:
            return bool(self.broker.connection.is_connected)
        except Exception:
            return False

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish ``events`` in order and wait until JetStream has stored every one."""
        if self._js is None:
            raise RuntimeError("bus is not started")
        futures = [await self._js.publish_async(e.nats_subject, e.payload(), headers=e.headers())
                   for e in events]
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


__all__ = ["DEAD_LETTER_PREFIX", "EventBus", "EventHandler", "NatsMessage", "ensure_stream", "stream_config"]
