"""Rules for names and text fields that every repo-svc resource shares."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlparse

from shipyard.kit.errors import InvalidArgument

NAME_MAX = 63
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(field: str, name: str) -> str:
    """A resource name: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not name:
        raise InvalidArgument(field, "must not be empty")
    if len(name) > NAME_MAX:
        raise InvalidArgument(field, f"must be at most {NAME_MAX} characters (got {len(name)})")
    if "/" in name:
        raise InvalidArgument(field, "must not contain '/'")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidArgument(field, "must not contain control characters")
    if not _NAME.fullmatch(name):
        raise InvalidArgument(field, "may contain only letters, digits, '.', '_' and '-', "
                                     "and must start with a letter or digit")
    return name


def check_text(field: str, text: str, limit: int, multiline: bool = True) -> str:
    """Free text: bounded length, no control characters except newlines and tabs."""
    if len(text) > limit:
        raise InvalidArgument(field, f"must be at most {limit} characters (got {len(text)})")
    allowed = {"\n", "\t", "\r"} if multiline else set()
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in text):
        raise InvalidArgument(field, "must not contain control characters")
    return text


def check_url(field: str, url: str) -> str:
    """An optional http(s) URL."""
    if not url:
        return url
    check_text(field, url, 2048, multiline=False)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidArgument(field, f"must be an http:// or https:// URL with a host (got {url!r})")
    if any(c.isspace() for c in url):
        raise InvalidArgument(field, "must not contain spaces (percent-encode them)")
    return url


def check_mask(paths: list[str], editable: tuple[str, ...]) -> list[str]:
    """An update mask's paths, each one of the ``editable`` fields; duplicates dropped."""
    if not paths:
        raise InvalidArgument("update_mask", f"name at least one field to change: {', '.join(editable)}")
    for path in paths:
        if path not in editable:
            raise InvalidArgument("update_mask", f"unknown or read-only field {path!r}; "
                                                 f"editable: {', '.join(editable)}")
    return list(dict.fromkeys(paths))
