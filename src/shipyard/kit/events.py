"""Events as CloudEvents in NATS binary mode.

The envelope travels in headers (``ce-id``, ``ce-type``, ``ce-source``, ``ce-time``,
``ce-subject``, ``ce-dataschema``, ``traceparent``, and the ``project`` extension); the body is
the protobuf message. The NATS message id is the event id, so JetStream drops a republished copy.
Every event carries a ``traceparent``: the trace of the call that caused it, or a trace of its own
(an event no call caused, such as a run ending).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import DecodeError, Message

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.ids import new_id

STREAM = "SHIPYARD_EVENTS"
SUBJECT_PREFIX = "shipyard.events"
SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/protobuf"
MSG_ID_HEADER = "Nats-Msg-Id"
# CloudEvents' dataschema is an absolute URI: this prefix and the message's full protobuf name
# (urn:shipyard:protobuf:shipyard.events.v1.ProjectCreated), the message in proto/shipyard/events.
DATA_SCHEMA_PREFIX = "urn:shipyard:protobuf:"


def data_schema(message: Message) -> str:
    """The CloudEvents ``dataschema`` of an event whose data is ``message``."""
    return DATA_SCHEMA_PREFIX + message.DESCRIPTOR.full_name


def new_traceparent() -> str:
    """A W3C traceparent that starts a new trace (random trace and parent ids, sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def _words(name: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Z][a-z0-9]*", name)]


@dataclass(frozen=True)
class EventKind:
    """Where an event message type goes: its CloudEvent type and its NATS subject."""

    message: type[Message]
    ce_type: str
    subject: str

    @classmethod
    def of(cls, message: type[Message]) -> EventKind:
        """ProjectCreated → io.shipyard.project.created.v1 on shipyard.events.project.created."""
        area, *rest = _words(message.DESCRIPTOR.name)
        event = "_".join(rest)
        return cls(message, f"io.shipyard.{area}.{event}.v1", f"{SUBJECT_PREFIX}.{area}.{event}")


CATALOG: dict[str, EventKind] = {
    kind.ce_type: kind
    for kind in (EventKind.of(getattr(events_pb2, name))
                 for name in events_pb2.DESCRIPTOR.message_types_by_name)
}
_BY_MESSAGE = {kind.message.DESCRIPTOR.full_name: kind for kind in CATALOG.values()}


class EventDecodeError(ValueError):
    """A message on the bus is not a Shipyard event we can read (a poison message)."""


@dataclass(frozen=True)
class Event:
    """One CloudEvent whose data is a message of the events catalog."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: Message
    project: str = ""
    traceparent: str = ""
    sequence: int = 0  # JetStream stream sequence, once received
    extras: Mapping[str, str] = field(default_factory=dict)

    @property
    def nats_subject(self) -> str:
        """The NATS subject the event is published on."""
        return CATALOG[self.type].subject

    def headers(self) -> dict[str, str]:
        """The CloudEvents binary-mode headers (plus the NATS message id)."""
        headers = {
            "ce-specversion": SPEC_VERSION,
            "ce-id": self.id,
            "ce-type": self.type,
            "ce-source": self.source,
            "ce-subject": self.subject,
            "ce-time": self.time.isoformat().replace("+00:00", "Z"),
            "ce-dataschema": data_schema(self.data),
            "content-type": CONTENT_TYPE,
            MSG_ID_HEADER: self.id,
        }
        if self.project:
            headers["ce-project"] = self.project
        if self.traceparent:  # only an event decoded from an older publisher lacks one
            headers["traceparent"] = self.traceparent
        return headers

    def payload(self) -> bytes:
        """The protobuf-encoded data."""
        return self.data.SerializeToString()


def new_event(data: Message, *, source: str, subject: str, project: str = "",
              traceparent: str = "") -> Event:
    """A new event with a fresh id and the current time, in the trace ``traceparent`` (a new
    trace when it is "")."""
    kind = _BY_MESSAGE.get(data.DESCRIPTOR.full_name)
    if kind is None:
        raise ValueError(f"{data.DESCRIPTOR.full_name} is not in the events catalog")
    return Event(id=new_id(), type=kind.ce_type, source=source, subject=subject,
                 time=datetime.now(UTC), data=data, project=project,
                 traceparent=traceparent or new_traceparent())


def decode(headers: Mapping[str, str], payload: bytes, sequence: int = 0) -> Event:
    """Read an event back from NATS headers and body."""
    try:
        ce_type = headers["ce-type"]
        kind = CATALOG[ce_type]
        data = kind.message.FromString(payload)
        time = datetime.fromisoformat(headers["ce-time"].replace("Z", "+00:00"))
        return Event(id=headers["ce-id"], type=ce_type, source=headers.get("ce-source", ""),
                     subject=headers.get("ce-subject", ""), time=time, data=data,
                     project=headers.get("ce-project", ""), traceparent=headers.get("traceparent", ""),
                     sequence=sequence)
    except KeyError as exc:
        raise EventDecodeError(f"missing or unknown CloudEvent attribute: {exc}") from None
    except (DecodeError, ValueError) as exc:
        raise EventDecodeError(f"unreadable event: {exc}") from None


def actor_of(user: str, roles: Iterable[str]) -> common_pb2.Actor:
    """Who did what an event tells, as its ``actor`` field."""
    return common_pb2.Actor(user=user, roles=sorted(roles))


def caller_actor(caller: Caller) -> common_pb2.Actor:
    """The ``actor`` field of an event that ``caller`` caused (the domain events hold the Caller)."""
    return actor_of(caller.user, caller.roles)
