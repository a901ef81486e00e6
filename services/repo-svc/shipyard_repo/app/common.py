"""What repo-svc's use cases share: the actor of an event, the clock, page tokens."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from shipyard.contracts.common.v1 import common_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument

PAGE_DEFAULT = 50
PAGE_MAX = 1000


def actor_of(caller: Caller) -> common_pb2.Actor:
    """The caller as an event's actor."""
    return common_pb2.Actor(user=caller.user, roles=sorted(caller.roles))


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


def page_limit(page_size: int, default: int = PAGE_DEFAULT, most: int = PAGE_MAX) -> int:
    """How many items a page holds."""
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return min(page_size or default, most)


def encode_token(tag: str, *parts: str) -> str:
    """An opaque page token carrying the cursor ``parts``."""
    return base64.urlsafe_b64encode("\x1f".join((tag, *parts)).encode()).decode()


def decode_token(tag: str, token: str, count: int) -> tuple[str, ...] | None:
    """The cursor of a token made by ``encode_token(tag, …)``; None for no token."""
    if not token:
        return None
    try:
        decoded = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    found, *parts = decoded.split("\x1f")
    if found != tag or len(parts) != count:
        raise InvalidArgument("page_token", "is not a token this API returned (or it is for another list)")
    return tuple(parts)
