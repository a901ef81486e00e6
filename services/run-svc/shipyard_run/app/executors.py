"""Which executor runs a run: the local one, or the executor of the cluster the run named, opened
from the cluster's record the first time one of its runs needs it and kept while the record stays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from shipyard.kit.errors import FailedPrecondition
from shipyard_run.app.clusters import must_get_cluster
from shipyard_run.app.ports import ClusterExecutors, Executor, Units
from shipyard_run.domain.clusters import LOCAL, Cluster
from shipyard_run.domain.runs import Run


@dataclass
class Executors:
    """The local executor and the clusters' executors, by cluster name."""

    local: Executor
    uow: Units
    clusters: ClusterExecutors | None = None  # None: only the local executor runs runs
    _open: dict[str, tuple[datetime | None, Executor]] = field(default_factory=dict)
    _on_exit: Callable[[], None] = lambda: None

    @property
    def on_exit(self) -> Callable[[], None]:
        """Called when any executor's job exits (the scheduler's wake)."""
        return self._on_exit

    @on_exit.setter
    def on_exit(self, callback: Callable[[], None]) -> None:
        self._on_exit = callback
        self.local.on_exit = callback
        for _, executor in self._open.values():
            executor.on_exit = callback

    def supports(self, cluster: Cluster) -> str:
        """Why runs cannot go to ``cluster`` ("" when they can)."""
        if self.clusters is None:
            return "this run-svc sends runs to no cluster"
        return self.clusters.unsupported(cluster)

    async def missing_login(self, cluster: Cluster, user: str) -> str:
        """Why ``user`` cannot send runs to ``cluster`` without signing in to it first ("" if they can)."""
        return "" if self.clusters is None else await self.clusters.missing_login(cluster, user)

    async def of(self, run: Run) -> Executor:
        """The executor of the run's cluster (the local one when it names none)."""
        return await self.of_cluster(run.spec.cluster)

    async def of_cluster(self, name: str) -> Executor:
        """The executor of the cluster named ``name``; NotFound when it was deleted,
        FailedPrecondition when no executor of its kind exists here."""
        if name in ("", LOCAL):
            return self.local
        async with self.uow() as uow:
            cluster = await must_get_cluster(uow, name)
        opened = self._open.get(name)
        if opened is not None and opened[0] == cluster.create_time:
            return opened[1]
        if refusal := self.supports(cluster):
            raise FailedPrecondition(f"cluster {name!r}: {refusal}", field="run.cluster")
        assert self.clusters is not None
        executor = self.clusters.open(cluster)
        executor.on_exit = self._on_exit
        if opened is not None:  # the cluster was deleted and added again: its old connection goes
            await opened[1].close()
        self._open[name] = (cluster.create_time, executor)
        return executor

    async def close(self) -> None:
        """Close every cluster's executor (their connections)."""
        for _, executor in self._open.values():
            await executor.close()
        self._open.clear()
