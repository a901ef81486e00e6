"""Connecting to a host a user named (a source's server, a webhook's receiver): resolve the name
once, check every address it resolves to, and connect only to those addresses.

``addresses`` says which addresses may be reached; this module applies it where the connection is
made, so that a name cannot be checked as one address and connected to as another (DNS
rebinding: the check and the connection each asking DNS), and so that every hop of a redirect is
checked like the first. The host name itself is kept for TLS (SNI and the certificate) and for
the ``Host`` header: only where the socket goes is pinned.

- ``Egress.resolve``: the checked addresses, for tools that take them (git's
  ``http.curloptResolve``, ssh's ``HostName``).
- ``Egress.session``: an aiohttp session whose every connection is checked (names through its
  resolver, addresses written in a URL on each request, redirects included).
- ``Egress.pool_manager``: the same for urllib3 (the MinIO SDK's HTTP client).

``failure`` says what went wrong with a request in fixed words — never with what the other end
sent: a URL aimed at some internal port must not read that port's banner back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeAlias, cast

import aiohttp
import urllib3
from aiohttp.abc import AbstractResolver, ResolveResult
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from shipyard.kit.addresses import IPAddress, address_problem, parse_ip
from shipyard.kit.errors import InvalidArgument

Policy: TypeAlias = Callable[[IPAddress], str | None]
"""Why an address may not be reached, in words; None when it may."""

Lookup: TypeAlias = Callable[[str, int], Sequence[str]]
"""The addresses a name resolves to (blocking, like ``getaddrinfo``); raises OSError when none."""


class EgressRefused(Exception):
    """A host may not be reached; the message says why, in the platform's own words.

    Not an OSError on purpose: HTTP clients retry OSErrors and reword them; a refusal is final
    and reaches the caller as it is."""


def private_policy(allow_private: bool, allow_env: str) -> Policy:
    """The platform's rule (``addresses.address_problem``) under the operator's setting ``allow_env``."""
    return partial(address_problem, allow_private=allow_private, allow_env=allow_env)


def system_lookup(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (TCP)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class Egress:
    """Where connections to user-named hosts may go (``policy``), and how names are looked up."""

    policy: Policy
    lookup: Lookup = field(default=system_lookup)

    def literal(self, host: str) -> IPAddress | None:
        """The address ``host`` spells (bracketed or not), checked; None for a DNS name."""
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            ip = parse_ip("host", bare)
        except InvalidArgument as exc:
            raise EgressRefused(exc.problem) from None
        if ip is not None and (problem := self.policy(ip)):
            raise EgressRefused(problem)
        return ip

    def resolve_blocking(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` resolves to, once, each one allowed; a name aimed even partly
        where it may not go is refused as a whole (EgressRefused). OSError when it does not
        resolve."""
        ip = self.literal(host)
        if ip is not None:
            return [ip]
        found: list[IPAddress] = []
        for written in self.lookup(host, port):
            address = ipaddress.ip_address(written)
            if (problem := self.policy(address)) is not None:
                raise EgressRefused(f"{host} resolves to {written}: {problem}")
            if address not in found:
                found.append(address)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} resolves to no address")
        return found

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """``resolve_blocking`` off the event loop."""
        return await asyncio.to_thread(self.resolve_blocking, host, port)

    def session(self, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        """An aiohttp session that connects only where this egress allows: names through a
        resolver that checks what it returns, addresses written in a URL (which aiohttp never
        resolves) on every request it sends, each redirect hop included."""
        connector = aiohttp.TCPConnector(resolver=_CheckedResolver(self))
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, middlewares=(partial(_check_literal, self),)
        )

    def pool_manager(self, **settings: Any) -> urllib3.PoolManager:
        """A urllib3 pool manager (``settings`` as ``urllib3.PoolManager`` takes them) whose every
        connection is resolved and checked here, and made to a checked address."""
        manager = urllib3.PoolManager(**settings)
        # The pools hand their extra keywords to each connection they make: the egress with them.
        manager.pool_classes_by_scheme = {
            "http": cast(type[HTTPConnectionPool], partial(_CheckedHTTPPool, egress=self)),
            "https": cast(type[HTTPConnectionPool], partial(_CheckedHTTPSPool, egress=self)),
        }
        return manager


def _reason(error: OSError | None) -> str:
    """Why a connection could not be made, in the system's fixed words."""
    if error is not None and error.errno is not None and error.errno > 0:
        return os.strerror(error.errno).lower()  # asyncio words a refusal "Connect call failed (…)"
    return "no connection"


def failure(error: BaseException) -> str:
    """What went wrong with an aiohttp request, in words that carry nothing the other end sent
    (aiohttp's own messages quote a bad status line: the banner of whatever answered)."""
    if isinstance(error, EgressRefused):
        return str(error)  # the platform's own words
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return "TLS error: the server's certificate is not valid"
    if isinstance(error, (aiohttp.ClientSSLError, ssl.SSLError)):
        return "TLS error"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {error.host}"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect to {error.host}:{error.port}: {_reason(error.os_error)}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "an incomplete HTTP response"
    if isinstance(error, aiohttp.ClientResponseError):
        return "not an HTTP response"
    if isinstance(error, OSError):
        return f"the connection failed: {_reason(error)}"
    return f"the request failed ({type(error).__name__})"


class _CheckedResolver(AbstractResolver):
    """aiohttp's resolver port: answers only with checked addresses."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        wanted = {socket.AF_INET: 4, socket.AF_INET6: 6}.get(family)
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in await self._egress.resolve(host, port)
            if wanted is None or ip.version == wanted
        ]

    async def close(self) -> None:
        """Nothing to release."""


async def _check_literal(
    egress: Egress, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    egress.literal(request.url.raw_host or "")
    return await handler(request)


def _connect(connection: HTTPConnection, egress: Egress) -> socket.socket:
    """A socket to one of the checked addresses of ``connection``'s host (urllib3's ``_new_conn``)."""
    try:
        addresses = egress.resolve_blocking(connection.host, connection.port or 0)
    except socket.gaierror as exc:
        raise NameResolutionError(connection.host, connection, exc) from exc
    error: OSError | None = None
    for ip in addresses:
        try:
            return urllib3_connection.create_connection(
                (str(ip), connection.port or 0),
                connection.timeout,
                source_address=connection.source_address,
                socket_options=connection.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(connection, f"connection to {connection.host} timed out") from exc
        except OSError as exc:
            error = exc
    raise NewConnectionError(connection, f"Failed to establish a new connection: {error}") from error


class _CheckedHTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, egress: Egress, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._egress = egress

    def _new_conn(self) -> socket.socket:
        return _connect(self, self._egress)


class _CheckedHTTPSConnection(HTTPSConnection):
    def __init__(self, *args: Any, egress: Egress, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._egress = egress

    def _new_conn(self) -> socket.socket:
        return _connect(self, self._egress)


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection
