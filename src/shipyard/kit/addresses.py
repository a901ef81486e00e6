"""May this host be reached? The rules every service applies to a host a user gives it (a repo
source's server, a webhook's receiver): its syntax, and whether it is aimed inside the platform.

Loopback, private, link-local, carrier-grade NAT and reserved addresses, and the names for them
(localhost, single-label names, site-internal domains), are refused unless the operator allows
private addresses; each service names its own setting for that (``allow_env``). Unspecified,
broadcast and multicast addresses and the cloud metadata service are refused even then.

Pure: no I/O and no DNS. A public name may still resolve to a private address, so whatever
connects goes through ``shipyard.kit.egress``, which resolves the name once, checks every address
with ``address_problem`` and connects only to those.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TypeAlias

from shipyard.kit.errors import InvalidArgument

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_Net: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOST_MAX = 253
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# Names for the cloud metadata service (GCP answers to both): it hands out the host's credentials.
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata"})
# Special-use domains that only ever resolve inside a site (RFC 6762, RFC 8375, ICANN .internal).
_INTERNAL_SUFFIXES = (".local", ".localdomain", ".internal", ".home.arpa")
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)


def _nets(*cidrs: str) -> tuple[_Net, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# (description, may an operator allow it?, ranges); first match wins.
_RANGES: tuple[tuple[str, bool, tuple[_Net, ...]], ...] = (
    ("an unspecified", False, _nets("0.0.0.0/32", "::/128")),
    ("a broadcast", False, _nets("255.255.255.255/32")),
    ("a multicast", False, _nets("224.0.0.0/4", "ff00::/8")),
    ("a loopback", True, _nets("127.0.0.0/8", "::1/128")),
    ("a link-local", True, _nets("169.254.0.0/16", "fe80::/10")),
    ("a private", True, _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    ("a shared (carrier-grade NAT)", True, _nets("100.64.0.0/10")),
    (
        "a reserved",
        True,
        _nets(
            "0.0.0.0/8",
            "240.0.0.0/4",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "2001:db8::/32",
            "100::/64",
            "fec0::/10",
        ),
    ),
)
_NAT64 = _nets("64:ff9b::/96", "64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")
_HOST_WITH_PORT = re.compile(r"[^:\[\]]+:[0-9]+")


def check_host(field: str, host: str, allow_private: bool, allow_env: str) -> str:
    """A host: an IPv4/IPv6 literal (bracketed or not) or a DNS name; returns its canonical spelling.

    Unless ``allow_private`` (the operator's setting ``allow_env``), refuses loopback, private,
    link-local, carrier-grade NAT and reserved addresses, the same hidden in IPv6 (IPv4-mapped,
    IPv4-compatible, NAT64, 6to4), localhost names, single-label names and site-internal domains
    (.local, .internal, .home.arpa). IPv4 is read the way ``inet_aton`` reads it, so
    ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` are all 127.0.0.1. Unspecified,
    broadcast and multicast addresses and the cloud metadata service are refused even then.

    The check is syntactic: a public name may still resolve to a private address, so the adapter
    that connects must connect through ``shipyard.kit.egress`` (which checks the resolved addresses).
    """
    if not host:
        raise InvalidArgument(field, "must not be empty")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    ip = parse_ip(field, bare)
    if ip is None:
        name = _check_hostname(field, bare)
        _check_name_safety(field, host, name, allow_private, allow_env)
        return name
    problem = _ip_problem(bare, ip, allow_private, allow_env)
    if problem:
        raise InvalidArgument(field, problem)
    return str(ip)


def address_problem(ip: IPAddress, allow_private: bool, allow_env: str) -> str | None:
    """Why ``ip`` (a resolved address) may not be reached, in words; None when it may."""
    return _ip_problem(str(ip), ip, allow_private, allow_env)


def parse_ip(field: str, host: str) -> IPAddress | None:
    """The address ``host`` spells (unbracketed), None for a DNS name; a host that only looks like
    an address is refused. An IPv6 zone (``fe80::1%eth0``) is dropped: it does not change what
    kind of address it is."""
    if ":" in host:
        try:
            v6 = ipaddress.IPv6Address(host)
        except ValueError:
            if _HOST_WITH_PORT.fullmatch(host):
                raise InvalidArgument(
                    field, f"{host!r} is not a host name; give the port in its own field"
                ) from None
            raise InvalidArgument(field, f"{host!r} is not a valid IPv6 address") from None
        return ipaddress.IPv6Address(int(v6))
    name = host.removesuffix(".")
    last = name.rsplit(".", 1)[-1]
    # As in the WHATWG URL standard: a host whose last label is a number is an IPv4 address or nothing.
    if not (last.isdecimal() and last.isascii()) and not _HEX.fullmatch(last):
        return None
    v4 = _inet_aton(name)
    if v4 is None:
        raise InvalidArgument(field, f"{host!r} looks like an IPv4 address but is not a valid one")
    return v4


def _check_hostname(field: str, host: str) -> str:
    """A DNS name, lower case, without its trailing dot."""
    name = host.lower().removesuffix(".")
    if not name.isascii():
        raise InvalidArgument(field, f"{host!r} is not ASCII; write the name in its punycode (xn--) form")
    if len(name) > _HOST_MAX:
        raise InvalidArgument(field, f"must be at most {_HOST_MAX} characters (got {len(name)})")
    if not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidArgument(
            field,
            f"{host!r} is not a valid host name (labels of 1-63 letters, digits and "
            "'-', not starting or ending with '-')",
        )
    return name


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """IPv4 as ``inet_aton`` reads it: 1-4 parts, each decimal, octal (0...) or hex (0x...)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_ATON_PART.fullmatch(p) for p in parts):
        return None
    numbers = [_aton_number(p) for p in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _aton_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries, and how it carries it."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if any(ip in net for net in _NAT64):
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(int(ip))
    return None


def _classify(ip: IPAddress) -> tuple[str, bool] | None:
    """What kind of non-public address ``ip`` is ("a loopback", "a private", …) and whether an
    operator may allow it; None for a public address. IPv4 carried in IPv6 is not looked into."""
    if ip in _METADATA_ADDRESSES:
        return "the cloud metadata service's", False
    for description, allowable, nets in _RANGES:
        if any(net.version == ip.version and ip in net for net in nets):
            return description, allowable
    # Anything else IANA does not call global (the tables above name the common cases).
    return None if ip.is_global else ("a reserved", True)


def _ip_problem(written: str, ip: IPAddress, allow_private: bool, allow_env: str) -> str | None:
    """Why ``ip``, written ``written``, may not be reached; None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(int(ip))
    shown = written if written.lower() == str(ip) else f"{written} ({ip})"
    checked: IPAddress = ip
    if isinstance(ip, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(ip)) is not None:
        how, checked = embedded
        shown = f"{written} ({how} {checked})"
    problem = _classify(checked)
    if problem is None:
        return None
    description, allowable = problem
    if not allowable:
        return f"{shown} is {description} address and is never allowed"
    if allow_private:
        return None
    return f"{shown} is {description} address; an operator can allow private addresses ({allow_env})"


def _check_name_safety(field: str, host: str, name: str, allow_private: bool, allow_env: str) -> None:
    if name in _METADATA_NAMES:
        raise InvalidArgument(field, f"{host} is the cloud metadata service and is never allowed")
    if allow_private:
        return
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        what = "a loopback name"
    elif "." not in name:
        what = "a single-label (internal) host name"
    elif name.endswith(_INTERNAL_SUFFIXES):
        what = "an internal host name"
    else:
        return
    raise InvalidArgument(field, f"{host} is {what}; an operator can allow private addresses ({allow_env})")
