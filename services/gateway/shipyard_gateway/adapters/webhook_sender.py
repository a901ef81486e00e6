"""POSTing webhook requests with aiohttp, only to addresses webhooks may reach.

A URL's host was checked when the webhook was made, but a name can resolve anywhere (and
change what it resolves to later), so the addresses are checked again each time they are
resolved. Redirects are not followed: a redirect could point anywhere.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from shipyard.kit.addresses import address_problem
from shipyard_gateway.domain.webhooks import ALLOW_PRIVATE_ENV

TIMEOUT_S = 10.0


class _CheckedResolver(ThreadedResolver):
    """Resolves names, keeping only the addresses webhooks may reach."""

    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        problems = [address_problem(ipaddress.ip_address(r["host"]), self._allow_private, ALLOW_PRIVATE_ENV)
                    for r in found]
        allowed = [r for r, problem in zip(found, problems, strict=True) if problem is None]
        if not allowed:
            raise OSError(f"{host} resolves to no address webhooks may reach ({problems[0]})")
        return allowed


def _reason(error: OSError) -> str:
    """Why a connection failed, in words."""
    if error.errno is not None and error.errno > 0:
        return os.strerror(error.errno).lower()  # asyncio words a refusal "Connect call failed (…)"
    if error.strerror:
        return error.strerror.lower()  # the resolver's (negative codes)
    return str(error)  # our resolver's refusal


class HttpSender:
    """The Sender port over one aiohttp session (opened on first use, in the running loop)."""

    def __init__(self, allow_private: bool, timeout_s: float = TIMEOUT_S) -> None:
        self._allow_private = allow_private
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> str | None:
        problem = self._literal_problem(url)
        if problem:
            return problem
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=_CheckedResolver(self._allow_private))
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        try:
            async with self._session.post(url, data=body, headers=dict(headers),
                                          allow_redirects=False) as reply:
                await reply.read()  # the connection is reused only once the answer is read
                return None if 200 <= reply.status < 300 else f"HTTP {reply.status}"
        except TimeoutError:
            return f"no answer within {self._timeout.total:.0f}s"
        except aiohttp.ClientConnectorError as exc:
            return f"cannot connect to {exc.host}:{exc.port}: {_reason(exc.os_error)}"
        except (aiohttp.ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def _literal_problem(self, url: str) -> str | None:
        """An address in the URL itself is never resolved: check it here (the operator may have
        turned SHIPYARD_WEBHOOK_ALLOW_PRIVATE off since the webhook was made)."""
        try:
            ip = ipaddress.ip_address(urlsplit(url).hostname or "")
        except ValueError:
            return None
        return address_problem(ip, self._allow_private, ALLOW_PRIVATE_ENV)

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
