"""EventService.Watch: CloudEvents from the JetStream stream, filtered, resumable by sequence."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit.bus import EventBus
from shipyard.kit.errors import Unavailable
from shipyard.kit.events import STREAM, SUBJECT_PREFIX, EventDecodeError, data_schema, decode
from shipyard.kit.timestamps import timestamp
from shipyard_gateway.domain.event_types import any_matches, check_type_pattern, may_see


def _consumer(request: pb.WatchRequest) -> tuple[DeliverPolicy, ConsumerConfig]:
    if request.from_start:
        return DeliverPolicy.ALL, ConsumerConfig()
    if request.start_sequence:
        return (DeliverPolicy.BY_START_SEQUENCE,
                ConsumerConfig(opt_start_seq=request.start_sequence + 1))
    return DeliverPolicy.NEW, ConsumerConfig()


def to_cloud_event(headers: dict[str, str], data: bytes, sequence: int) -> pb.CloudEvent:
    """The wire form of a stored event."""
    event = decode(headers, data, sequence)
    return pb.CloudEvent(id=event.id, source=event.source, spec_version=headers.get("ce-specversion", "1.0"),
                         type=event.type, subject=event.subject, time=timestamp(event.time),
                         data_content_type=headers.get("content-type", ""),
                         data_schema=data_schema(event.data), data=data, sequence=sequence,
                         traceparent=event.traceparent)


async def watch(bus: EventBus, request: pb.WatchRequest,
                roles: frozenset[str]) -> AsyncIterator[pb.CloudEvent]:
    """Stream the matching events that a user holding ``roles`` may see, until the client goes away."""
    async with contextlib.aclosing(watch_or_beat(bus, request, roles, None)) as events:
        async for event in events:
            if event is not None:
                yield event


async def watch_or_beat(bus: EventBus, request: pb.WatchRequest, roles: frozenset[str],
                        beat_s: float | None) -> AsyncGenerator[pb.CloudEvent | None]:
    """As ``watch``, and None after every ``beat_s`` seconds without a matching event: a stream
    whose filter never matches still gets to find out that its client went away."""
    for pattern in request.types:
        check_type_pattern("types", pattern)
    if not bus.connected:
        raise Unavailable("the event bus is not connected; retry shortly")
    policy, config = _consumer(request)
    js = bus.broker.connection.jetstream()
    sub = await js.subscribe(f"{SUBJECT_PREFIX}.>", stream=STREAM, ordered_consumer=True,
                             deliver_policy=policy, config=config)
    messages = aiter(sub.messages)
    waiting: asyncio.Future[Msg] | None = None
    try:
        while True:
            # One pending read across beats: cancelling it would end the subscription's iterator.
            waiting = waiting or asyncio.ensure_future(anext(messages))
            done, _ = await asyncio.wait({waiting}, timeout=beat_s)
            if not done:
                yield None
                continue
            msg, waiting = waiting.result(), None
            event = _matching(request, roles, msg)
            if event is not None:
                yield event
    except StopAsyncIteration:
        return
    finally:
        if waiting is not None:
            waiting.cancel()
        await sub.unsubscribe()


def _matching(request: pb.WatchRequest, roles: frozenset[str], msg: Msg) -> pb.CloudEvent | None:
    """The message as a CloudEvent if the watch wants it and its user may see it."""
    headers = dict(msg.headers or {})
    ce_type = headers.get("ce-type", "")
    if not any_matches(request.types, ce_type) or not may_see(roles, ce_type):
        return None
    if request.subject_prefix and not headers.get("ce-subject", "").startswith(request.subject_prefix):
        return None
    try:
        return to_cloud_event(headers, msg.data, msg.metadata.sequence.stream)
    except EventDecodeError:
        return None
