"""The document store a URL names: SQLite (embedded default) or MongoDB.

* ``sqlite:///absolute/path/file.db``: that file, created when missing.
* ``sqlite:///:memory:``: an in-memory database (tests).
* ``mongodb://host[:port][,host…]/<database>[?options]`` and ``mongodb+srv://host/<database>``:
  that database; the database name is required because each service owns one.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from shipyard.kit.store.mongo import MongoDocumentStore
from shipyard.kit.store.port import DocumentStore
from shipyard.kit.store.sqlite import SQLiteDocumentStore

_SCHEMES = "sqlite:///…, mongodb://…/<database> or mongodb+srv://…/<database>"
# MongoDB refuses these in database names (and the name must be under 64 bytes).
_BAD_DATABASE_CHARS = re.compile(r'[/\\. "$\x00]')


def open_document_store(url: str) -> DocumentStore:
    """The store for ``url``, not yet opened; ValueError saying what is wrong with a bad URL."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ValueError(f"document store URL {_redacted(url)!r} has no scheme; expected {_SCHEMES}")
    if scheme == "sqlite":
        return SQLiteDocumentStore(_sqlite_path(url))
    if scheme in ("mongodb", "mongodb+srv"):
        return MongoDocumentStore(url, _mongo_database(url))
    raise ValueError(f"document store URL scheme {scheme!r} is not supported; expected {_SCHEMES}")


def _sqlite_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc:
        raise ValueError(f"sqlite URL {_redacted(url)!r} names a host; "
                         "write an absolute path after three slashes: sqlite:///abs/path/file.db")
    if parts.query or parts.fragment:
        raise ValueError(f"sqlite URL {_redacted(url)!r} takes no options")
    path = unquote(parts.path)
    if path == "/:memory:":
        return ":memory:"
    if not path.startswith("/") or path.endswith("/"):
        raise ValueError(f"sqlite URL {_redacted(url)!r} names no database file; "
                         "expected sqlite:///abs/path/file.db or sqlite:///:memory:")
    return path


def _mongo_database(url: str) -> str:
    # Split as PyMongo does: the host list ends at the first "/", user info at the last "@"
    # (both characters must be percent-encoded inside a user name or password).
    host_part, _, path_part = url.split("://", 1)[1].partition("/")
    hosts = host_part.rpartition("@")[2]
    if not hosts or hosts.startswith("?"):
        raise ValueError(f"MongoDB URL {_redacted(url)!r} names no host")
    database = unquote(path_part.partition("?")[0])
    if not database:
        raise ValueError(f"MongoDB URL {_redacted(url)!r} names no database; "
                         "add it after the hosts: mongodb://host:27017/<database>")
    if _BAD_DATABASE_CHARS.search(database) or len(database.encode()) >= 64:
        raise ValueError(f"MongoDB URL {_redacted(url)!r}: {database!r} is not a valid database name")
    return database


def _redacted(url: str) -> str:
    """The URL without its user info, so a password never reaches an error message or log."""
    scheme, sep, rest = url.partition("://")
    host_part, slash, path = rest.partition("/")
    if "@" not in host_part:
        return url
    return f"{scheme}{sep}***@{host_part.rpartition('@')[2]}{slash}{path}"
