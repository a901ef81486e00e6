"""Times on the wire: a datetime as the contracts' protobuf Timestamp, and back (always in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from google.protobuf.timestamp_pb2 import Timestamp


@overload
def timestamp(when: datetime) -> Timestamp: ...


@overload
def timestamp(when: None) -> None: ...


@overload
def timestamp(when: datetime | None) -> Timestamp | None: ...


def timestamp(when: datetime | None) -> Timestamp | None:
    """``when`` as a protobuf Timestamp (None stays None: the field is left unset)."""
    if when is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def datetime_of(stamp: Timestamp) -> datetime:
    """The time a protobuf Timestamp holds, as an aware datetime in UTC."""
    return stamp.ToDatetime(tzinfo=UTC)
