"""Rules every Shipyard service applies to what users name and type: resource names, free text,
absolute paths. Each raises InvalidArgument naming the field and what is wrong."""

from __future__ import annotations

import re
import unicodedata

from shipyard.kit.errors import InvalidArgument

PATH_MAX = 4096
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


def check_abs_path(field: str, path: str, *, allow_root: bool = False) -> str:
    """An absolute, normalized POSIX path."""
    if not path:
        raise InvalidArgument(field, "must not be empty")
    check_text(field, path, PATH_MAX, multiline=False)
    if not path.startswith("/"):
        raise InvalidArgument(field, f"must be an absolute path starting with '/' (got {path!r})")
    if "//" in path:
        raise InvalidArgument(field, "must not contain '//'")
    segments = path.split("/")[1:]
    if ".." in segments:
        raise InvalidArgument(field, "must not contain '..'")
    if "." in segments:
        raise InvalidArgument(field, "must not contain '.' as a path segment")
    if path == "/":
        if not allow_root:
            raise InvalidArgument(field, "must not be '/' (the whole file system)")
        return path
    if path.endswith("/"):
        raise InvalidArgument(field, f"must not end with '/' (write {path.rstrip('/')!r})")
    return path


def refuse_under(field: str, path: str, forbidden: tuple[str, ...]) -> None:
    """InvalidArgument when ``path`` is one of the ``forbidden`` directories or inside one."""
    for top in forbidden:
        if path == top or path.startswith(top + "/"):
            raise InvalidArgument(field, f"must not be {top} or inside it")
