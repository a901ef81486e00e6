"""Rules for names and text fields that every repo-svc resource shares (the platform-wide ones
live in ``shipyard.kit.rules``)."""

from __future__ import annotations

from urllib.parse import urlparse

from shipyard.kit.errors import InvalidArgument
from shipyard.kit.rules import NAME_MAX, check_name, check_text

__all__ = ["NAME_MAX", "check_mask", "check_name", "check_text", "check_url"]

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
