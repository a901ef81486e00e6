"""What every kind of repo source shares: how its fields are named in errors, the operator's
setting for private addresses and the host rule it relaxes, names of stored credentials, and
folders inside a repository, bucket or volume."""

from __future__ import annotations

from shipyard.kit import addresses
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.rules import PATH_MAX

from ..names import check_name, check_text

ALLOW_PRIVATE_ENV = "SHIPYARD_ALLOW_PRIVATE_SOURCES"
SOURCE_FIELD = "repo.source"


def source_field(source_kind: str, name: str) -> str:
    """How errors name a field of one kind of source, e.g. ``repo.source.s3.bucket``."""
    return f"{SOURCE_FIELD}.{source_kind}.{name}"


def check_credential(field: str, credential: str) -> str:
    """The name of a stored credential, or empty for none."""
    return check_name(field, credential) if credential else ""


def required(field: str, value: str) -> str:
    """``value``, refused when empty."""
    if not value:
        raise InvalidArgument(field, "must not be empty")
    return value


def check_host(field: str, host: str, allow_private: bool) -> str:
    """A server's host: an IPv4/IPv6 literal or a DNS name; returns its canonical spelling.

    Private, loopback and internal hosts need the operator's SHIPYARD_ALLOW_PRIVATE_SOURCES; the
    cloud metadata service, unspecified, broadcast and multicast addresses are never allowed. NFS
    servers and SQL hosts are usually private; they follow the same rule and need the operator's
    flag. The rules are the kit's (shipyard.kit.addresses); the check is syntactic: the fetchers
    check the resolved addresses again.
    """
    return addresses.check_host(field, host, allow_private, ALLOW_PRIVATE_ENV)


def check_subpath(field: str, path: str, limit: int = PATH_MAX) -> str:
    """A folder inside a repository, bucket or volume; leading and trailing '/' are dropped."""
    check_text(field, path, limit, multiline=False)
    inner = path.strip("/")
    if not inner:
        return ""
    segments = inner.split("/")
    if "" in segments:
        raise InvalidArgument(field, "must not contain '//'")
    if ".." in segments:
        raise InvalidArgument(field, "must not contain '..'")
    if "." in segments:
        raise InvalidArgument(field, "must not contain '.' as a path segment")
    return inner
