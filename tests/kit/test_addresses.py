"""May this host be reached? The shared rules (shipyard.kit.addresses): host syntax, the odd ways
to write an address, what kind of address it is, and which names point inside a site."""

from __future__ import annotations

import ipaddress

import pytest

from shipyard.kit.addresses import address_problem, check_host, parse_ip
from shipyard.kit.errors import InvalidArgument

FIELD = "x.host"
ENV = "SHIPYARD_TEST_ALLOW_PRIVATE"
OPERATOR_HINT = f"an operator can allow private addresses ({ENV})"


def check(host: str, allow_private: bool) -> str:
    return check_host(FIELD, host, allow_private, ENV)


def refused(host: str, allow_private: bool) -> InvalidArgument:
    """The InvalidArgument that checking ``host`` raises."""
    with pytest.raises(InvalidArgument) as info:
        check(host, allow_private)
    assert info.value.field == FIELD
    return info.value


# --- check_host ----------------------------------------------------------------------------

# (host as typed, what it is, the address it really is when spelled oddly)
PRIVATE_HOSTS = [
    pytest.param("127.0.0.1", "a loopback address", "", id="loopback"),
    pytest.param("127.255.255.254", "a loopback address", "", id="loopback-top"),
    pytest.param("::1", "a loopback address", "", id="ipv6-loopback"),
    pytest.param("[::1]", "a loopback address", "", id="ipv6-loopback-brackets"),
    pytest.param("10.1.2.3", "a private address", "", id="10/8"),
    pytest.param("172.16.0.1", "a private address", "", id="172.16/12-low"),
    pytest.param("172.31.255.255", "a private address", "", id="172.16/12-high"),
    pytest.param("192.168.200.1", "a private address", "", id="192.168/16"),
    pytest.param("fc00::1", "a private address", "", id="ula-fc"),
    pytest.param("fd12:3456::1", "a private address", "", id="ula-fd"),
    pytest.param("169.254.1.1", "a link-local address", "", id="link-local"),
    pytest.param("fe80::1", "a link-local address", "", id="ipv6-link-local"),
    pytest.param("fe80::1%eth0", "a link-local address", "fe80::1", id="ipv6-link-local-zone"),
    pytest.param("100.64.0.1", "a shared (carrier-grade NAT) address", "", id="cgnat"),
    pytest.param("0.1.2.3", "a reserved address", "", id="this-network"),
    pytest.param("240.0.0.1", "a reserved address", "", id="class-e"),
    pytest.param("192.0.2.1", "a reserved address", "", id="documentation"),
    pytest.param("198.18.0.1", "a reserved address", "", id="benchmarking"),
    pytest.param("2001:db8::1", "a reserved address", "", id="ipv6-documentation"),
    pytest.param("fec0::1", "a reserved address", "", id="ipv6-site-local"),
    # odd IPv4 spellings, read the way inet_aton reads them
    pytest.param("2130706433", "a loopback address", "127.0.0.1", id="decimal"),
    pytest.param("0177.0.0.1", "a loopback address", "127.0.0.1", id="octal"),
    pytest.param("017700000001", "a loopback address", "127.0.0.1", id="octal-whole"),
    pytest.param("0x7f.1", "a loopback address", "127.0.0.1", id="hex-short"),
    pytest.param("0x7f000001", "a loopback address", "127.0.0.1", id="hex-whole"),
    pytest.param("0X7F.0.0.1", "a loopback address", "127.0.0.1", id="hex-upper"),
    pytest.param("127.1", "a loopback address", "127.0.0.1", id="short"),
    pytest.param("127.0.1", "a loopback address", "127.0.0.1", id="three-parts"),
    pytest.param("0x7f.0.0.0x1", "a loopback address", "127.0.0.1", id="hex-parts"),
    pytest.param("127.0.0.1.", "a loopback address", "127.0.0.1", id="trailing-dot"),
    pytest.param("012.0x1.1", "a private address", "10.1.0.1", id="mixed-octal-hex"),
    pytest.param("3232235521", "a private address", "192.168.0.1", id="decimal-private"),
    # IPv4 hidden in IPv6
    pytest.param("::ffff:127.0.0.1", "a loopback address", "IPv4-mapped 127.0.0.1", id="mapped-dotted"),
    pytest.param("::ffff:7f00:1", "a loopback address", "IPv4-mapped 127.0.0.1", id="mapped-hex"),
    pytest.param("[::ffff:10.0.0.1]", "a private address", "IPv4-mapped 10.0.0.1", id="mapped-private"),
    pytest.param("::ffff:169.254.1.1", "a link-local address", "IPv4-mapped 169.254.1.1", id="mapped-link"),
    pytest.param("::127.0.0.1", "a loopback address", "IPv4-compatible 127.0.0.1", id="compatible"),
    pytest.param("64:ff9b::7f00:1", "a loopback address", "NAT64 127.0.0.1", id="nat64"),
    pytest.param("2002:c0a8:1::", "a private address", "6to4 192.168.0.1", id="6to4"),
]

PRIVATE_NAMES = [
    pytest.param("localhost", "a loopback name", id="localhost"),
    pytest.param("LOCALHOST.", "a loopback name", id="localhost-upper-dot"),
    pytest.param("localhost.localdomain", "a loopback name", id="localdomain"),
    pytest.param("ip6-localhost", "a loopback name", id="ip6-localhost"),
    pytest.param("minio.localhost", "a loopback name", id="dot-localhost"),
    pytest.param("minio", "a single-label (internal) host name", id="single-label"),
    pytest.param("printer.local", "an internal host name", id="mdns"),
    pytest.param("db.svc.cluster.local", "an internal host name", id="cluster-local"),
    pytest.param("vault.internal", "an internal host name", id="internal"),
    pytest.param("nas.home.arpa", "an internal host name", id="home-arpa"),
]

NEVER_HOSTS = [
    pytest.param("169.254.169.254", "the cloud metadata service's address", id="metadata"),
    pytest.param("2852039166", "the cloud metadata service's address", id="metadata-decimal"),
    pytest.param("0xa9fea9fe", "the cloud metadata service's address", id="metadata-hex"),
    pytest.param("0251.0376.0251.0376", "the cloud metadata service's address", id="metadata-octal"),
    pytest.param("169.254.43518", "the cloud metadata service's address", id="metadata-short"),
    pytest.param("::ffff:169.254.169.254", "the cloud metadata service's address", id="metadata-mapped"),
    pytest.param("169.254.170.2", "the cloud metadata service's address", id="ecs-credentials"),
    pytest.param("fd00:ec2::254", "the cloud metadata service's address", id="aws-ipv6-metadata"),
    pytest.param("100.100.100.200", "the cloud metadata service's address", id="alibaba-metadata"),
    pytest.param("metadata.google.internal", "the cloud metadata service", id="gcp-metadata-name"),
    pytest.param("metadata", "the cloud metadata service", id="gcp-metadata-short-name"),
    pytest.param("0.0.0.0", "an unspecified address", id="unspecified"),
    pytest.param("0", "an unspecified address", id="unspecified-zero"),
    pytest.param("::", "an unspecified address", id="ipv6-unspecified"),
    pytest.param("::ffff:0.0.0.0", "an unspecified address", id="mapped-unspecified"),
    pytest.param("255.255.255.255", "a broadcast address", id="broadcast"),
    pytest.param("224.0.0.1", "a multicast address", id="multicast"),
    pytest.param("239.255.255.250", "a multicast address", id="multicast-ssdp"),
    pytest.param("ff02::1", "a multicast address", id="ipv6-multicast"),
]


@pytest.mark.parametrize(("host", "what", "really"), PRIVATE_HOSTS)
def test_private_addresses_are_refused_with_the_operator_hint(host: str, what: str, really: str) -> None:
    err = refused(host, False)
    shown = host.strip("[]")
    expected = f"{shown} ({really}) is {what}" if really else f"{shown} is {what}"
    assert err.field == FIELD
    assert err.problem == f"{expected}; {OPERATOR_HINT}"


@pytest.mark.parametrize(("host", "what", "really"), PRIVATE_HOSTS)
def test_the_operator_flag_lets_private_addresses_through(host: str, what: str, really: str) -> None:
    bare = host.strip("[]").split("%")[0].removesuffix(".")
    try:
        canonical = str(ipaddress.ip_address(bare))
    except ValueError:  # an odd IPv4 spelling comes back as the address it is
        canonical = really
    assert check(host, True) == canonical


@pytest.mark.parametrize(("host", "what"), PRIVATE_NAMES)
def test_local_and_internal_names_are_refused_unless_allowed(host: str, what: str) -> None:
    assert refused(host, False).problem == f"{host} is {what}; {OPERATOR_HINT}"
    assert check(host, True) == host.lower().rstrip(".")


@pytest.mark.parametrize(("host", "what"), NEVER_HOSTS)
@pytest.mark.parametrize("allow_private", [False, True])
def test_metadata_unspecified_broadcast_and_multicast_are_never_allowed(host: str, what: str,
                                                                        allow_private: bool) -> None:
    err = refused(host, allow_private)
    assert f"is {what}" in err.problem
    assert err.problem.endswith("is never allowed")
    assert ENV not in err.problem


@pytest.mark.parametrize(("host", "canonical"), [
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("example.com.", "example.com"),
    ("s3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com"),
    ("under_score.example.com", "under_score.example.com"),
    ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("123.example.com", "123.example.com"),
    ("8.8.8.8", "8.8.8.8"),
    ("134744072", "8.8.8.8"),
    ("0x8.0x8.0x8.0x8", "8.8.8.8"),
    ("2606:4700::1111", "2606:4700::1111"),
    ("[2606:4700::1111]", "2606:4700::1111"),
    ("::ffff:8.8.8.8", "::ffff:808:808"),
    ("64:ff9b::808:808", "64:ff9b::808:808"),
    ("172.32.0.1", "172.32.0.1"),
    ("100.128.0.1", "100.128.0.1"),
])
def test_public_hosts_pass_and_come_back_canonical(host: str, canonical: str) -> None:
    assert check(host, False) == canonical


@pytest.mark.parametrize(("host", "problem"), [
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("1.2.3.999", "looks like an IPv4 address but is not a valid one", id="octet-too-big"),
    pytest.param("256.1.1.1", "looks like an IPv4 address but is not a valid one", id="first-too-big"),
    pytest.param("1.2.3.4.5", "looks like an IPv4 address but is not a valid one", id="five-parts"),
    pytest.param("08.1.1.1", "looks like an IPv4 address but is not a valid one", id="bad-octal"),
    pytest.param("4294967296", "looks like an IPv4 address but is not a valid one", id="decimal-too-big"),
    pytest.param("127.16777216", "looks like an IPv4 address but is not a valid one", id="short-too-big"),
    pytest.param("example.123", "looks like an IPv4 address but is not a valid one", id="numeric-tld"),
    pytest.param("db:5432", "is not a host name; give the port in its own field", id="host-with-port"),
    pytest.param("::g", "is not a valid IPv6 address", id="bad-ipv6"),
    pytest.param("b\u00fccher.de", "punycode", id="non-ascii"),
    pytest.param("-bad.example.com", "is not a valid host name", id="leading-hyphen"),
    pytest.param("bad-.example.com", "is not a valid host name", id="trailing-hyphen"),
    pytest.param("a..example.com", "is not a valid host name", id="empty-label"),
    pytest.param("a%2e.example.com", "is not a valid host name", id="percent"),
    pytest.param("a" * 64 + ".com", "is not a valid host name", id="label-64"),
    pytest.param(".".join(["a" * 60] * 5), "must be at most 253 characters", id="name-254"),
])
def test_malformed_hosts_are_refused(host: str, problem: str) -> None:
    assert problem in refused(host, True).problem


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.Google.Internal.", "metadata"])
@pytest.mark.parametrize("allow_private", [False, True])
def test_the_metadata_names_are_refused_as_typed(host: str, allow_private: bool) -> None:
    problem = refused(host, allow_private).problem
    assert problem == f"{host} is the cloud metadata service and is never allowed"


@pytest.mark.parametrize("env", ["SHIPYARD_ALLOW_PRIVATE_SOURCES", "SHIPYARD_WEBHOOK_ALLOW_PRIVATE"])
@pytest.mark.parametrize("host", ["10.0.0.1", "localhost", "ci"])
def test_the_message_names_the_setting_that_would_allow_it(env: str, host: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_host(FIELD, host, False, env)
    assert info.value.problem.startswith(f"{host} is ")
    assert info.value.problem.endswith(f"; an operator can allow private addresses ({env})")


# --- parse_ip --------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "ip"), [
    ("example.com", None),
    ("123.example.com", None),
    ("0x7f.example.com", None),
    ("192.0.2.7", "192.0.2.7"),
    ("127.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("8.8.8.8.", "8.8.8.8"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ("fe80::1%eth0", "fe80::1"),
])
def test_parse_ip_reads_what_a_resolver_would(host: str, ip: str | None) -> None:
    assert parse_ip(FIELD, host) == (None if ip is None else ipaddress.ip_address(ip))


# --- address_problem: addresses a name resolved to ------------------------------------------


@pytest.mark.parametrize(("address", "problem"), [
    ("127.0.0.1", f"127.0.0.1 is a loopback address; {OPERATOR_HINT}"),
    ("10.1.2.3", f"10.1.2.3 is a private address; {OPERATOR_HINT}"),
    ("fe80::1", f"fe80::1 is a link-local address; {OPERATOR_HINT}"),
    ("fe80::1%eth0", f"fe80::1%eth0 (fe80::1) is a link-local address; {OPERATOR_HINT}"),
    ("100.64.0.1", f"100.64.0.1 is a shared (carrier-grade NAT) address; {OPERATOR_HINT}"),
    ("::ffff:192.168.0.1", f"::ffff:c0a8:1 (IPv4-mapped 192.168.0.1) is a private address; {OPERATOR_HINT}"),
    ("64:ff9b::a00:1", f"64:ff9b::a00:1 (NAT64 10.0.0.1) is a private address; {OPERATOR_HINT}"),
])
def test_private_resolved_addresses_are_refused_unless_allowed(address: str, problem: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_problem(ip, False, ENV) == problem
    assert address_problem(ip, True, ENV) is None


@pytest.mark.parametrize(("address", "what"), [
    ("169.254.169.254", "the cloud metadata service's"),
    ("fd00:ec2::254", "the cloud metadata service's"),
    ("fd00:ec2::254%eth0", "the cloud metadata service's"),
    ("::ffff:169.254.169.254", "the cloud metadata service's"),
    ("169.254.170.2", "the cloud metadata service's"),
    ("100.100.100.200", "the cloud metadata service's"),
    ("0.0.0.0", "an unspecified"),
    ("::", "an unspecified"),
    ("255.255.255.255", "a broadcast"),
    ("239.1.2.3", "a multicast"),
    ("ff02::1", "a multicast"),
])
@pytest.mark.parametrize("allow_private", [False, True])
def test_metadata_and_the_like_are_never_reachable(address: str, what: str, allow_private: bool) -> None:
    problem = address_problem(ipaddress.ip_address(address), allow_private, ENV)
    assert problem is not None
    assert problem.endswith(f"is {what} address and is never allowed")
    assert ENV not in problem


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_resolved_addresses_are_fine(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), False, ENV) is None
