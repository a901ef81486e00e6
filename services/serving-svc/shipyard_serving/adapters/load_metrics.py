"""A model server's load, read from its ``/metrics`` endpoint for serving-svc's replica scaling (the
format is ``shipyard.kit.replica_load``, which the model server writes)."""

from __future__ import annotations

import aiohttp

from shipyard.kit.replica_load import ReplicaLoad, parse_load


async def fetch_load(session: aiohttp.ClientSession, address: str) -> ReplicaLoad | None:
    """The load of the model server at ``address``; None when it does not answer sensibly."""
    try:
        async with session.get(f"http://{address}/metrics") as reply:
            if reply.status != 200:
                return None
            return parse_load(await reply.text())
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None
