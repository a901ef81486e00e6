"""The activity feed: one entry per event, in words a person reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message

from shipyard.kit.events import Event


@dataclass(frozen=True)
class Activity:
    """One thing that happened."""

    event_id: str
    type: str
    subject: str
    project: str
    actor: str
    time: datetime
    summary: str
    sequence: int

    @property
    def area(self) -> str:
        """The resource area of the event type (io.shipyard.<area>.<event>.v1)."""
        return area_of(self.type)


def area_of(ce_type: str) -> str:
    """``project`` for ``io.shipyard.project.created.v1``."""
    parts = ce_type.split(".")
    return parts[2] if len(parts) > 3 else ""


CATALOG_TYPES = frozenset({"io.shipyard.model.published.v1", "io.shipyard.model.unpublished.v1"})
CATALOG_AREAS = frozenset({"deployment", "catalog"})


def about_catalog(ce_type: str) -> bool:
    """Whether an event is about the model catalog or deployments, which a data scientist may
    not see (REFERENCE.md)."""
    return ce_type in CATALOG_TYPES or area_of(ce_type) in CATALOG_AREAS


def _actor_of(data: Message) -> str:
    actor = getattr(data, "actor", None)
    return str(getattr(actor, "user", "")) if actor is not None else ""


def _what(event: Event) -> str:
    parts = event.type.split(".")
    area, verb = (parts[2], parts[3].replace("_", " ")) if len(parts) > 4 else ("event", event.type)
    target = event.subject.rsplit("/", 1)[-1] if event.subject else ""
    return f"{verb} {area} {target}".strip()


def activity_of(event: Event) -> Activity:
    """The activity entry an event makes."""
    actor = _actor_of(event.data)
    summary = f"{actor or 'someone'} {_what(event)}"
    changed = list(getattr(event.data, "changed_fields", []) or [])
    if changed:
        summary += f" ({', '.join(changed)})"
    return Activity(event_id=event.id, type=event.type, subject=event.subject, project=event.project,
                    actor=actor, time=event.time, summary=summary, sequence=event.sequence)
