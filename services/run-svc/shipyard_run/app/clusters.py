"""Cluster use cases: operators add, change and delete clusters; everyone signed in sees them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from shipyard_run.app.ports import ServedEndpoints, UnitOfWork, Units
from shipyard_run.domain.clusters import WHILE_NO_RUNS, WHILE_SERVING_NOTHING, Cluster, ClusterKind, changed
from shipyard_run.domain.events import ClusterUpdated
from shipyard_run.domain.runs import RunStatus

ACTIVE_OR_WAITING = (RunStatus.QUEUED, RunStatus.WAITING_FOR_GPUS, RunStatus.STARTING, RunStatus.RUNNING,
                     RunStatus.STOPPING)


def _check_operator(caller: Caller, what: str) -> None:
    if not caller.is_operator:
        raise PermissionDenied(f"only an operator may {what} clusters; {caller.user} is not one")


async def must_get_cluster(uow: UnitOfWork, name: str) -> Cluster:
    """The cluster named ``name``; NotFound (pointing at the list) otherwise."""
    found = await uow.clusters.by_id(name)
    if found is None:
        raise NotFound(f"no cluster named {name!r} (shipyard cluster list shows them)")
    return found


def pin_host_key(uow: Units) -> Callable[[str, str], Awaitable[None]]:
    """Keeps the SSH host key a cluster's first connection saw in its record, so that every later
    connection (of any run-svc) trusts that key alone."""

    async def pin(name: str, public_key: str) -> None:
        async with uow() as tx:
            cluster = await tx.clusters.by_id(name)
            if cluster is not None and not cluster.ssh_host_key:
                await tx.clusters.save(replace(cluster, ssh_host_key=public_key))

    return pin


@dataclass
class Clusters:
    """The cluster use cases over run-svc's store."""

    uow: Units
    clock: Clock = utc_now
    served: ServedEndpoints | None = None  # serving-svc, which serves models on Kubernetes clusters

    async def _check_serves_nothing(self, caller: Caller, name: str, then: str = "delete it") -> None:
        """FailedPrecondition naming the test inferences and deployments served on a Kubernetes cluster
        (its InferenceServices would go on without a cluster record to reach them by); Unavailable when
        serving-svc cannot say."""
        async with self.uow() as uow:
            cluster = await must_get_cluster(uow, name)
        if self.served is None or cluster.kind is not ClusterKind.KUBERNETES:
            return
        found = await self.served.endpoints_on(caller, name)
        served = [*(f"test inference {n}" for n in found.inferences),
                  *(f"deployment {n}" for n in found.deployments)]
        if served:
            shown = ", ".join(served[:5]) + (" …" if len(served) > 5 else "")
            raise FailedPrecondition(f"cluster {name!r} serves {len(served)} test inferences and deployments "
                                     f"({shown}): delete them, then {then}")

    async def add(self, caller: Caller, cluster: Cluster) -> Cluster:
        """A new cluster, checked; operators only."""
        _check_operator(caller, "add")
        cluster = replace(cluster.checked(), owner=caller.user, create_time=self.clock(), revision=0)
        async with self.uow() as uow:
            if await uow.clusters.by_id(cluster.name) is not None:
                raise AlreadyExists(f"a cluster named {cluster.name!r} exists already")
            return await uow.clusters.add(cluster)

    async def get(self, name: str) -> Cluster:
        """The cluster; NotFound otherwise."""
        async with self.uow() as uow:
            return await must_get_cluster(uow, name)

    async def list(self) -> list[Cluster]:
        """Every cluster, by name."""
        async with self.uow() as uow:
            return sorted(await uow.clusters.find(), key=lambda c: c.name)

    async def update(self, caller: Caller, name: str, changes: Mapping[str, Any]) -> Cluster:
        """The cluster with ``changes`` (field name → new value), checked as at add; operators only.
        What new runs read changes any time; how runs in flight are reached only while none is queued or
        running (FailedPrecondition naming them), and a Kubernetes cluster's namespace, ServiceAccount and
        kubeconfig only while it serves no endpoint (naming them): see ``domain.clusters``."""
        _check_operator(caller, "change")
        async with self.uow() as uow:
            fields = changed(await must_get_cluster(uow, name), changes)[1]
        if serving := sorted(WHILE_SERVING_NOTHING.intersection(fields)):
            await self._check_serves_nothing(caller, name, then=f"change its {', '.join(serving)}")
        async with self.uow() as uow:
            updated, fields = changed(await must_get_cluster(uow, name), changes)
            if not fields:
                return updated
            if moved := WHILE_NO_RUNS.intersection(fields):
                await _check_no_runs(uow, name, f"change its {', '.join(sorted(moved))}")
            saved = await uow.clusters.save(updated)
            uow.record(ClusterUpdated(saved, tuple(fields), caller))
            return saved

    async def delete(self, caller: Caller, name: str) -> None:
        """Forget a cluster no run is active on and no test inference or deployment is served on;
        operators only. Runs that named it keep its name."""
        _check_operator(caller, "delete")
        await self._check_serves_nothing(caller, name)
        async with self.uow() as uow:
            cluster = await must_get_cluster(uow, name)
            await _check_no_runs(uow, name, "delete it")
            await uow.clusters.remove(cluster)


async def _check_no_runs(uow: UnitOfWork, name: str, then: str) -> None:
    """FailedPrecondition naming the runs on the cluster that are queued or running."""
    active = [run.name for run in await uow.runs.in_status(ACTIVE_OR_WAITING, 10_000)
              if run.spec.cluster == name]
    if active:
        shown = ", ".join(active[:5]) + (" …" if len(active) > 5 else "")
        raise FailedPrecondition(f"cluster {name!r} has {len(active)} runs not ended ({shown}): "
                                 f"stop them, or let them end, then {then}")
