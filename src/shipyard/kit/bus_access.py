"""Who may do what on the event bus: the one table of which service publishes which events.

Each event area (the first word of an event's name: ``ProjectCreated`` is in ``project``) has one
owning service, the only one that may publish it; each service pulls from its own durable
consumers and may dead-letter only their messages. The embedded supervisor and the Kubernetes
manifests turn this table into NATS users with per-user permissions, so a credential of one
service cannot put another service's events on the stream, and nothing without a credential
reaches the bus at all.

The ``observer`` is for the operator's own tools: it reads the stream (its own consumers) and
publishes nothing. The gateway's webhooks read ``WEBHOOK_STREAM``, its mirror of the stream, which
no other user may touch: NATS permissions name consumers by whole subject tokens only, so the
webhooks' consumers (named at run time) could not be kept from the observer on the stream itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shipyard.kit.events import STREAM, SUBJECT_PREFIX

DEAD_LETTER_PREFIX = "shipyard.deadletter"
WEBHOOK_STREAM = "SHIPYARD_WEBHOOKS"  # the gateway's mirror of STREAM: its webhooks' consumers read it

# Event area -> the service that owns it (and alone publishes its events). A service's bus user
# is its one name (SHIPYARD_SERVICE).
AREA_OWNERS: Mapping[str, str] = {
    "project": "repo-svc",
    "repo": "repo-svc",
    "version": "repo-svc",
    "image": "repo-svc",
    "run": "run-svc",
    "build": "run-svc",
    "study": "run-svc",
    "trial": "run-svc",
    "cluster": "run-svc",
    "model": "serving-svc",
    "inference": "serving-svc",
    "deployment": "serving-svc",
}

# Service -> its durable consumers (their names in JetStream, and their dead-letter subjects).
DURABLES: Mapping[str, tuple[str, ...]] = {
    "repo-svc": ("repo-runs", "repo-builds"),
    "run-svc": ("run-refusals",),
    "lineage-svc": ("lineage",),
}

SERVICE_USERS = ("repo-svc", "run-svc", "serving-svc", "lineage-svc", "gateway")
OBSERVER = "observer"
USERS = (*SERVICE_USERS, OBSERVER)

# Users with ordered consumers (watches), which answer the server's flow control.
_ORDERED_CONSUMERS = ("gateway", OBSERVER)

_JS = "$JS.API"
# Declaring the stream: every service does it at start (whichever comes first creates it).
_STREAM_RIGHTS = (f"{_JS}.INFO", f"{_JS}.STREAM.INFO.{STREAM}", f"{_JS}.STREAM.CREATE.{STREAM}",
                  f"{_JS}.STREAM.UPDATE.{STREAM}")
# Reading the stream: its state, and messages by sequence.
_READ_RIGHTS = (f"{_JS}.INFO", f"{_JS}.STREAM.INFO.{STREAM}", f"{_JS}.STREAM.NAMES",
                f"{_JS}.STREAM.MSG.GET.{STREAM}", f"{_JS}.DIRECT.GET.{STREAM}",
                f"{_JS}.DIRECT.GET.{STREAM}.>")


class UnknownBusUser(ValueError):
    """A NATS user name that is not in the table."""


@dataclass(frozen=True)
class BusPermissions:
    """The subjects one NATS user may publish to and subscribe to (deny wins over allow)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    deny_publish: tuple[str, ...] = ()


def inbox_prefix(user: str) -> str:
    """The reply subjects of ``user``'s connection: its own, so no other user can read them."""
    return f"_INBOX_{user}"


def event_subjects(service: str) -> tuple[str, ...]:
    """The event subjects ``service`` may publish."""
    return tuple(f"{SUBJECT_PREFIX}.{area}.*" for area, owner in AREA_OWNERS.items() if owner == service)


def owner_of(subject: str) -> str:
    """The service that may publish on an event subject (``shipyard.events.<area>.<event>``)."""
    area = subject.removeprefix(f"{SUBJECT_PREFIX}.").split(".", 1)[0]
    if not subject.startswith(f"{SUBJECT_PREFIX}.") or area not in AREA_OWNERS:
        raise ValueError(f"{subject!r} is no event subject of an area in the table")
    return AREA_OWNERS[area]


def _consumer_rights(durable: str) -> tuple[str, ...]:
    # CREATE/INFO/DELETE.<stream>.<name>[.<filter>], and the two-word DURABLE.CREATE and MSG.NEXT.
    return (f"{_JS}.CONSUMER.*.{STREAM}.{durable}", f"{_JS}.CONSUMER.*.{STREAM}.{durable}.>",
            f"{_JS}.CONSUMER.*.*.{STREAM}.{durable}", f"$JS.ACK.{STREAM}.{durable}.>")


def _any_consumer_rights() -> tuple[str, ...]:
    return (f"{_JS}.CONSUMER.*.{STREAM}", f"{_JS}.CONSUMER.*.{STREAM}.>",
            f"{_JS}.CONSUMER.*.*.{STREAM}.*", f"$JS.ACK.{STREAM}.>")


def _webhook_rights() -> tuple[str, ...]:
    # The gateway declares the mirror and makes, reads, deletes and acknowledges its consumers.
    return (f"{_JS}.STREAM.INFO.{WEBHOOK_STREAM}", f"{_JS}.STREAM.CREATE.{WEBHOOK_STREAM}",
            f"{_JS}.STREAM.UPDATE.{WEBHOOK_STREAM}", f"{_JS}.CONSUMER.*.{WEBHOOK_STREAM}.*",
            f"{_JS}.CONSUMER.*.{WEBHOOK_STREAM}.*.>", f"{_JS}.CONSUMER.*.*.{WEBHOOK_STREAM}.*",
            f"$JS.ACK.{WEBHOOK_STREAM}.>")


def _tool_consumer_rights() -> tuple[str, ...]:
    # Consumers of its own (durable or ephemeral), and reading any consumer's state (its lag).
    return (f"{_JS}.CONSUMER.CREATE.{STREAM}", f"{_JS}.CONSUMER.CREATE.{STREAM}.>",
            f"{_JS}.CONSUMER.DURABLE.CREATE.{STREAM}.*", f"{_JS}.CONSUMER.INFO.{STREAM}.*",
            f"{_JS}.CONSUMER.DELETE.{STREAM}.*", f"{_JS}.CONSUMER.MSG.NEXT.{STREAM}.*",
            f"{_JS}.CONSUMER.NAMES.{STREAM}", f"{_JS}.CONSUMER.LIST.{STREAM}", f"$JS.ACK.{STREAM}.>")


def _platform_consumers_untouched() -> tuple[str, ...]:
    # The observer must not create, change, delete or pull from the services' own consumers.
    return tuple(right for durables in DURABLES.values() for durable in durables
                 for right in (f"{_JS}.CONSUMER.CREATE.{STREAM}.{durable}",
                               f"{_JS}.CONSUMER.CREATE.{STREAM}.{durable}.>",
                               f"{_JS}.CONSUMER.DURABLE.CREATE.{STREAM}.{durable}",
                               f"{_JS}.CONSUMER.DELETE.{STREAM}.{durable}",
                               f"{_JS}.CONSUMER.MSG.NEXT.{STREAM}.{durable}",
                               f"$JS.ACK.{STREAM}.{durable}.>"))


def permissions(user: str) -> BusPermissions:
    """What ``user`` (a service, or the observer) may do on the bus."""
    if user not in USERS:
        raise UnknownBusUser(f"no bus user {user!r}: one of {', '.join(USERS)}")
    durables = DURABLES.get(user, ())
    publish = [*(_READ_RIGHTS if user == OBSERVER else _STREAM_RIGHTS), *event_subjects(user),
               *(f"{DEAD_LETTER_PREFIX}.{durable}" for durable in durables)]
    for durable in durables:
        publish.extend(_consumer_rights(durable))
    if user == "gateway":
        # Its consumers are made at run time (one per watch; one per webhook, on the mirror).
        publish.extend(_any_consumer_rights())
        publish.extend(_webhook_rights())
    if user == OBSERVER:
        publish.extend(_tool_consumer_rights())
    if user in _ORDERED_CONSUMERS:
        publish.append(f"$JS.FC.{STREAM}.>")
    subscribe = [f"{inbox_prefix(user)}.>"]
    deny: tuple[str, ...] = ()
    if user == OBSERVER:
        # Tools use nats-py's default inboxes and may watch events as they pass.
        subscribe.extend(["_INBOX.>", f"{SUBJECT_PREFIX}.>"])
        deny = _platform_consumers_untouched()
    return BusPermissions(tuple(dict.fromkeys(publish)), tuple(subscribe), deny)


__all__ = ["AREA_OWNERS", "DEAD_LETTER_PREFIX", "DURABLES", "OBSERVER", "SERVICE_USERS", "USERS",
           "WEBHOOK_STREAM", "BusPermissions", "UnknownBusUser", "event_subjects", "inbox_prefix", "owner_of",
           "permissions"]
