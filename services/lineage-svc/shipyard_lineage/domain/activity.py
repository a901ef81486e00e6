"""The activity feed: one entry per event, in words a person reads. A run's metrics are kept
(an entry records that its event was applied) but left out of the feed, of which they would be
most of the rows: the run's page shows them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


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
    not see (docs/architecture.md, roles)."""
    return ce_type in CATALOG_TYPES or area_of(ce_type) in CATALOG_AREAS


METRICS_TYPE = "io.shipyard.run.metrics_logged.v1"


def in_feed(ce_type: str, asked_type: str = "") -> bool:
    """Whether an entry is shown in the feed: a run's metrics only when asked for by their type."""
    return ce_type != METRICS_TYPE or asked_type == METRICS_TYPE


def actor_or_service(actor: str, source: str) -> str:
    """Who an entry names: the user who acted, else the service that did it by itself (a run
    ending: ``run-svc``), from the event's source ``shipyard/<service>``."""
    return actor or source.rsplit("/", 1)[-1] or "shipyard"


def _what(ce_type: str, subject: str) -> str:
    parts = ce_type.split(".")
    area, verb = (parts[2], parts[3].replace("_", " ")) if len(parts) > 4 else ("event", ce_type)
    target = subject.rsplit("/", 1)[-1] if subject else ""
    return f"{verb} {area} {target}".strip()


def summary_of(ce_type: str, subject: str, actor: str, changed: Sequence[str] = ()) -> str:
    """``alice updated project mnist (description)``: who did what to which, and what changed."""
    summary = f"{actor or 'someone'} {_what(ce_type, subject)}"
    if changed:
        summary += f" ({', '.join(changed)})"
    return summary
