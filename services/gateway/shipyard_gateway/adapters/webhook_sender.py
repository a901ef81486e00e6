"""POSTing webhook requests with aiohttp, only to addresses webhooks may reach.

A URL's host was checked when the webhook was made, but a name can resolve anywhere (and change
what it resolves to later), so every connection goes through the kit's egress: the name is resolved
once, every address checked, and the connection made to a checked address. Redirects are not
followed: a redirect could point anywhere.

What went wrong is said in fixed words (``egress.failure``) — the status code, "connection
refused", "not an HTTP response" — never with what the receiver sent: a webhook aimed at some port
must not read back that port's banner (a port scanner with read-back).
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from shipyard.kit.egress import Egress, EgressRefused, failure, private_policy
from shipyard_gateway.domain.webhooks import ALLOW_PRIVATE_ENV

TIMEOUT_S = 10.0


def webhook_egress(allow_private: bool) -> Egress:
    """Where webhooks may connect: public addresses, and private ones if the operator allows them."""
    return Egress(private_policy(allow_private, ALLOW_PRIVATE_ENV))


class HttpSender:
    """The Sender port over one aiohttp session (opened on first use, in the running loop)."""

    def __init__(
        self, allow_private: bool, timeout_s: float = TIMEOUT_S, egress: Egress | None = None
    ) -> None:
        self._egress = egress or webhook_egress(allow_private)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> str | None:
        if self._session is None:
            self._session = self._egress.session(self._timeout)
        try:
            async with self._session.post(url, data=body, headers=dict(headers),
                                          allow_redirects=False) as reply:
                await reply.read()  # the connection is reused only once the answer is read
                return None if 200 <= reply.status < 300 else f"HTTP {reply.status}"
        except TimeoutError:
            return f"no answer within {self._timeout.total:.0f}s"
        except (EgressRefused, aiohttp.ClientError, OSError) as exc:
            return failure(exc)

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
