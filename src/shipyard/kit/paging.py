"""Pages of a list RPC: how many items a page holds, and opaque page tokens carrying the cursor."""

from __future__ import annotations

import base64
import binascii

from shipyard.kit.errors import InvalidArgument

PAGE_DEFAULT = 50
PAGE_MAX = 1000


def page_limit(page_size: int, default: int = PAGE_DEFAULT, most: int = PAGE_MAX) -> int:
    """How many items a page of ``page_size`` (0: the default) holds; InvalidArgument when negative."""
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return min(page_size or default, most)


def encode_token(tag: str, *parts: str) -> str:
    """An opaque page token carrying the cursor ``parts``; ``tag`` names the list it belongs to."""
    return base64.urlsafe_b64encode("\x1f".join((tag, *parts)).encode()).decode()


def decode_token(tag: str, token: str, count: int) -> tuple[str, ...] | None:
    """The cursor of a token made by ``encode_token(tag, …)`` with ``count`` parts; None for no token."""
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
