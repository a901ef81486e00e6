"""Every endpoint's model servers, wherever they run: those with no cluster here (``LocalModelServers``),
the others on their Kubernetes cluster's KServe (``KServeModelServers``, one per cluster, opened from
its record the first time an endpoint needs it, and closed when its last endpoint goes: the next one
opens them again from the record as it is then — run-svc changes a cluster's namespace, ServiceAccount
or kubeconfig only while it serves no endpoint, so open servers never hold an outdated record).

A cluster that cannot be opened (run-svc or repo-svc out of reach after a restart) is tried again in
the background until it opens or the endpoint goes; meanwhile the endpoint waits, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable

from shipyard.kit.errors import ShipyardError
from shipyard_serving.app.ports import Endpoint, ModelServers, Observer
from shipyard_serving.domain.serving import Observation

RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
log = logging.getLogger(__name__)

ClusterOpener = Callable[[str], Awaitable[ModelServers]]
"""The model servers of the cluster with that name; a ShipyardError when it cannot be reached."""


class EndpointServers(ModelServers):
    """Routes each endpoint to the model servers of where it is served."""

    def __init__(self, local: ModelServers, open_cluster: ClusterOpener) -> None:
        self._local = local
        self._open_cluster = open_cluster
        self._clusters: dict[str, ModelServers] = {}
        self._opening = asyncio.Lock()
        self._where: dict[str, str] = {}  # endpoint → its cluster ("" here)
        self._observers: list[Observer] = []
        self._waiting: dict[str, Observation] = {}
        self._retries: dict[str, asyncio.Task[None]] = {}

    def watch(self, observer: Observer) -> None:
        self._observers.append(observer)
        self._local.watch(observer)
        for servers in self._clusters.values():
            servers.watch(observer)

    def isolation_missing(self) -> str:
        return self._local.isolation_missing()  # a cluster's pods isolate theirs

    async def _on(self, cluster: str) -> ModelServers:
        if not cluster:
            return self._local
        async with self._opening:
            if cluster not in self._clusters:
                servers = await self._open_cluster(cluster)
                for observer in self._observers:
                    servers.watch(observer)
                self._clusters[cluster] = servers
            return self._clusters[cluster]

    async def ensure(self, endpoint: Endpoint) -> None:
        self._where[endpoint.name] = endpoint.cluster
        self._stop_retrying(endpoint.name)
        try:
            servers = await self._on(endpoint.cluster)
        except ShipyardError as exc:
            await self._wait(endpoint, exc.message)
            return
        self._waiting.pop(endpoint.name, None)
        await servers.ensure(endpoint)

    async def _wait(self, endpoint: Endpoint, why: str) -> None:
        """The endpoint waits for its cluster: say why, and try again in the background."""
        log.warning("endpoint %s: cluster %s cannot be reached: %s", endpoint.name, endpoint.cluster, why)
        seen = Observation(ready=0, waiting=f"cluster {endpoint.cluster!r} cannot be reached: {why}")
        self._waiting[endpoint.name] = seen
        for observer in self._observers:
            await observer(endpoint.name, seen)
        self._retries[endpoint.name] = asyncio.create_task(self._retry(endpoint))

    async def _retry(self, endpoint: Endpoint) -> None:
        for attempt in itertools.count():
            await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
            try:
                servers = await self._on(endpoint.cluster)
            except ShipyardError:
                continue
            self._waiting.pop(endpoint.name, None)
            self._retries.pop(endpoint.name, None)
            await servers.ensure(endpoint)
            return

    def _stop_retrying(self, name: str) -> None:
        task = self._retries.pop(name, None)
        if task is not None:
            task.cancel()

    async def remove(self, name: str, cluster: str = "") -> None:
        self._stop_retrying(name)
        self._waiting.pop(name, None)
        await (await self._on(cluster)).remove(name, cluster)
        self._where.pop(name, None)
        if cluster and cluster not in self._where.values():
            await self._close_cluster(cluster)

    async def _close_cluster(self, cluster: str) -> None:
        """Close the servers of a cluster that serves no endpoint any more."""
        async with self._opening:
            servers = self._clusters.pop(cluster, None) if cluster not in self._where.values() else None
        if servers is not None:
            await servers.close()

    def observe(self, name: str) -> Observation:
        if name in self._waiting:
            return self._waiting[name]
        cluster = self._where.get(name, "")
        servers = self._clusters.get(cluster) if cluster else self._local
        return servers.observe(name) if servers is not None else Observation(ready=0)

    async def close(self) -> None:
        for task in self._retries.values():
            task.cancel()
        for task in self._retries.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._retries.clear()
        for servers in self._clusters.values():
            await servers.close()
        await self._local.close()
