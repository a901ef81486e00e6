"""File system sources, used in place by runs: a Kubernetes volume claim, an NFS export, a folder on
every node, an FSx for Lustre file system; and where a run may see a mounted path."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import ClassVar

from shipyard.kit import addresses
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.rules import check_abs_path, refuse_under

from .common import check_host, check_subpath, required, source_field

# Where a run must never see the host's files: kernel interfaces, devices and system configuration.
MOUNT_FORBIDDEN = ("/proc", "/sys", "/dev", "/etc")
# A host path is mounted into runs; these would hand over the node (container runtime sockets,
# kubelet credentials, boot files) even read-only.
HOSTPATH_FORBIDDEN = (
    *MOUNT_FORBIDDEN,
    "/boot",
    "/run",
    "/var/run",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
)


@dataclass(frozen=True)
class VolumeSource:
    """A Kubernetes persistent volume claim, optionally one folder of it."""

    KIND: ClassVar[str] = "volume"
    volume: str
    subpath: str = ""


@dataclass(frozen=True)
class NfsSource:
    """An export of an NFS server."""

    KIND: ClassVar[str] = "nfs"
    server: str
    path: str


@dataclass(frozen=True)
class HostPathSource:
    """A folder on every node's file system (shared storage mounted on all of them)."""

    KIND: ClassVar[str] = "hostpath"
    path: str


@dataclass(frozen=True)
class FsxSource:
    """An Amazon FSx for Lustre file system."""

    KIND: ClassVar[str] = "fsx"
    dns_name: str
    mount_name: str
    volume_handle: str


_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_FSX_MOUNT_NAME = re.compile(r"[A-Za-z0-9_-]{1,8}")
_FSX_ID = re.compile(r"fs-(?:[0-9a-f]{8}|[0-9a-f]{17})")


def check_mount_path(field: str, path: str) -> str:
    """Where a run sees an input or output: an absolute, normalized POSIX path of at most 4096
    characters, not '/' and not inside /proc, /sys, /dev or /etc."""
    check_abs_path(field, path)
    refuse_under(field, path, MOUNT_FORBIDDEN)
    return path


def check_volume(source: VolumeSource) -> VolumeSource:
    """A volume source checked: a volume claim's name and a folder of it; the folder normalized."""
    field = source_field("volume", "volume")
    required(field, source.volume)
    if len(source.volume) > 253:
        raise InvalidArgument(field, f"must be at most 253 characters (got {len(source.volume)})")
    if not _DNS1123_SUBDOMAIN.fullmatch(source.volume):
        raise InvalidArgument(
            field,
            "must be a Kubernetes volume claim name: lower-case letters, digits, "
            "'-' and '.', starting and ending with a letter or digit",
        )
    return replace(source, subpath=check_subpath(source_field("volume", "subpath"), source.subpath))


def check_nfs(source: NfsSource, allow_private: bool) -> NfsSource:
    """An NFS source checked: a server that passes the address rule and an absolute export path."""
    check_host(source_field("nfs", "server"), source.server, allow_private)
    check_abs_path(source_field("nfs", "path"), source.path, allow_root=True)  # NFSv4 exports a root '/'
    return source


def check_hostpath(source: HostPathSource) -> HostPathSource:
    """A host path checked: absolute, and nowhere that would hand the node over (HOSTPATH_FORBIDDEN)."""
    field = source_field("hostpath", "path")
    check_abs_path(field, source.path)
    refuse_under(field, source.path, HOSTPATH_FORBIDDEN)
    return source


def check_fsx(source: FsxSource, allow_private: bool) -> FsxSource:
    """An FSx source checked: the file system's DNS name, mount name and id."""
    dns_field = source_field("fsx", "dns_name")
    required(dns_field, source.dns_name)
    if addresses.parse_ip(dns_field, source.dns_name.strip("[]")) is not None:
        raise InvalidArgument(dns_field, "must be the file system's DNS name, not an IP address")
    check_host(dns_field, source.dns_name, allow_private)
    name_field = source_field("fsx", "mount_name")
    if not _FSX_MOUNT_NAME.fullmatch(source.mount_name):
        raise InvalidArgument(
            name_field, "must be the file system's mount name: 1 to 8 letters, digits, '_' or '-'"
        )
    if not _FSX_ID.fullmatch(source.volume_handle):
        raise InvalidArgument(
            source_field("fsx", "volume_handle"),
            "must be a file system id: 'fs-' and 8 or 17 lower-case hexadecimal digits",
        )
    return source
