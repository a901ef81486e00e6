"""Each webhook's own durable JetStream consumer over the event stream.

The consumer starts after the webhook's position (BY_START_SEQUENCE), acknowledges explicitly
and holds at most one unacknowledged event: however many gateway replicas pull from it, events
go out one at a time, in stream order. Being durable and named after the webhook, it keeps the
position across gateway restarts and NATS reconnects.

The consumers read ``WEBHOOK_STREAM``, the gateway's mirror of the event stream (same messages,
same sequence numbers), on which only the gateway's NATS user has rights: the observer, which may
make consumers of its own on the event stream, cannot delete, change, pull from or acknowledge a
webhook's (NATS permissions cannot tell consumers apart by a prefix of their names).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from shipyard.kit.bus import EventBus
from shipyard.kit.bus_access import WEBHOOK_STREAM
from shipyard.kit.errors import Unavailable
from shipyard.kit.events import STREAM, SUBJECT_PREFIX

log = logging.getLogger(__name__)

FETCH_WAIT_S = 1.0
# Longer than one attempt (the sender's 10 s timeout) plus the keep-alive interval of a backoff.
ACK_WAIT_S = 60.0

ResumeAfter = Callable[[], Awaitable[int | None]]


def consumer_name(webhook_id: str) -> str:
    """The durable consumer of a webhook."""
    return f"webhook-{webhook_id}"


class JetStreamMessage:
    """A fetched message as the StreamMessage port."""

    def __init__(self, msg: Any) -> None:
        self._msg = msg
        self.headers: Mapping[str, str] = dict(msg.headers or {})
        self.data: bytes = msg.data
        self.sequence: int = msg.metadata.sequence.stream

    async def ack(self) -> None:
        """Acknowledge: the consumer hands out the next event."""
        await self._msg.ack()

    async def in_progress(self) -> None:
        """Reset the ack wait."""
        await self._msg.in_progress()


def webhook_stream_config(replicas: int = 1) -> StreamConfig:
    """The gateway's mirror of the event stream, which its webhooks' consumers read."""
    return StreamConfig(name=WEBHOOK_STREAM, mirror=StreamSource(name=STREAM), storage=StorageType.FILE,
                        retention=RetentionPolicy.LIMITS, num_replicas=replicas)


class JetStreamEvents:
    """The event stream over the bus's NATS connection."""

    def __init__(self, bus: EventBus, replicas: int = 1) -> None:
        self._bus = bus
        self._replicas = replicas

    def _js(self) -> JetStreamContext:
        return self._bus.broker.connection.jetstream()

    async def last_sequence(self) -> int:
        """The newest event's stream sequence; Unavailable while the bus is down."""
        if not self._bus.connected:
            raise Unavailable("the event bus is not connected; retry shortly")
        info = await self._js().stream_info(STREAM)
        return int(info.state.last_seq) if info.state else 0

    async def messages(self, webhook_id: str,
                       resume_after: ResumeAfter) -> AsyncGenerator[JetStreamMessage, None]:
        """The webhook's events, one at a time, forever; survives NATS restarts.

        ``resume_after`` gives the sequence to continue after when the consumer has to be made
        (first use, or NATS lost it), or None when the webhook is gone: then the messages end.
        """
        name = consumer_name(webhook_id)
        subscription: Any = None
        delay = 0.1
        try:
            while True:
                try:
                    if subscription is None:
                        after = await resume_after()
                        if after is None:
                            return
                        subscription = await self._subscribe(name, after)
                    batch = await subscription.fetch(1, timeout=FETCH_WAIT_S)
                except TimeoutError:  # nothing new (nats.errors.TimeoutError is one too)
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("webhook consumer %s: %s; retrying in %.1fs", name, exc, delay)
                    await _unsubscribe(subscription)
                    subscription = None  # subscribe again: the consumer may be gone (NATS lost it)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                delay = 0.1
                for msg in batch:
                    yield JetStreamMessage(msg)
        finally:
            await _unsubscribe(subscription)

    async def _subscribe(self, name: str, after: int) -> Any:
        """The webhook's consumer on the mirror (made on first use); its consumer on the event stream
        itself, where earlier versions kept it, is deleted: the webhook's position is its own record's."""
        await self._ensure_mirror()
        subscription = await self._js().pull_subscribe(f"{SUBJECT_PREFIX}.>", durable=name,
                                                       stream=WEBHOOK_STREAM, config=_config(after))
        with contextlib.suppress(NotFoundError):
            await self._js().delete_consumer(STREAM, name)
        return subscription

    async def _ensure_mirror(self) -> None:
        config = webhook_stream_config(self._replicas)
        try:
            await self._js().add_stream(config)
        except BadRequestError:  # there already: bring its settings up to date
            await self._js().update_stream(config)

    async def forget(self, webhook_id: str) -> None:
        """Delete the webhook's consumer (nothing if it is gone already).

        The webhook is deleted by then: if NATS cannot be told now, the deletion still stands and
        the idle consumer is left behind (logged), holding nothing but its position."""
        try:
            await self._js().delete_consumer(WEBHOOK_STREAM, consumer_name(webhook_id))
        except NotFoundError:
            pass
        except Exception as exc:
            log.warning("webhook consumer %s not deleted: %s", consumer_name(webhook_id), exc)


def _config(after: int) -> ConsumerConfig:
    return ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                          opt_start_seq=after + 1, max_ack_pending=1, ack_wait=ACK_WAIT_S)


async def _unsubscribe(subscription: Any) -> None:
    if subscription is not None:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
