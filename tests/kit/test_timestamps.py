"""Times on the wire: one conversion between datetimes and protobuf Timestamps for every service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from shipyard.kit.caller import Caller
from shipyard.kit.events import caller_actor
from shipyard.kit.timestamps import datetime_of, timestamp


def test_a_datetime_goes_on_the_wire_and_comes_back_in_utc() -> None:
    when = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
    stamp = timestamp(when)
    assert (stamp.seconds, stamp.nanos) == (int(when.timestamp()), 891_000_000)
    assert datetime_of(stamp) == when and datetime_of(stamp).tzinfo is UTC
    later = datetime(2026, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    assert datetime_of(timestamp(later)) == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_no_time_leaves_the_field_unset() -> None:
    assert timestamp(None) is None
    assert datetime_of(Timestamp()) == datetime(1970, 1, 1, tzinfo=UTC)


def test_an_events_actor_is_the_caller_with_its_roles_in_order() -> None:
    actor = caller_actor(Caller("alice", frozenset({"ml-engineer", "data-scientist"})))
    assert (actor.user, list(actor.roles)) == ("alice", ["data-scientist", "ml-engineer"])
