"""Which executor runs a run: the local one, or the executor of the cluster the run named, opened
from the cluster's record the first time one of its runs needs it and kept while the record stays the
same. An operator's change to the record (UpdateCluster) opens it again from the new record for what
comes next; the host key the first connection pins is no change (the executor that pinned it knows it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

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
    _open: dict[str, tuple[Cluster, Executor]] = field(default_factory=dict)
    # Executors of records since changed: a call begun on one (a submit, a poll) finishes on it; they are
    # closed with the rest.
    _retired: list[Executor] = field(default_factory=list)
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
        for executor in self._retired:
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
        if opened is not None and _same(opened[0], cluster):
            return opened[1]
        if refusal := self.supports(cluster):
            raise FailedPrecondition(f"cluster {name!r}: {refusal}", field="run.cluster")
        assert self.clusters is not None
        executor = self.clusters.open(cluster)
        executor.on_exit = self._on_exit
        if opened is not None and opened[0].create_time != cluster.create_time:
            await opened[1].close()  # the cluster was deleted and added again: no run is left on the old one
        elif opened is not None:
            self._retired.append(opened[1])
        self._open[name] = (cluster, executor)
        return executor

    async def close(self) -> None:
        """Close every cluster's executor (their connections)."""
        for executor in [*self._retired, *(executor for _, executor in self._open.values())]:
            await executor.close()
        self._open.clear()
        self._retired.clear()


def _same(opened: Cluster, current: Cluster) -> bool:
    """Whether an executor opened from ``opened`` serves ``current``: the same record but for its store
    revision, and but for the host key its first connection pinned (an operator's new key, or a key
    cleared to be pinned again, opens it again)."""
    pinned = not opened.ssh_host_key
    return replace(opened, revision=0, ssh_host_key="") == replace(current, revision=0, ssh_host_key="") \
        and (pinned or opened.ssh_host_key == current.ssh_host_key)
