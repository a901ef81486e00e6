"""The model catalog and deployments: publish a model version with its serving defaults, deploy
a catalog entry behind a stable endpoint, swap the model behind it, follow its servers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.kit.paging import PAGE_MAX, page_limit
from shipyard_serving.app.endpoints import (
    Placement,
    after_name,
    check_isolated,
    name_is_free,
    next_token,
    pin,
    restart_refusal,
)
from shipyard_serving.app.ports import Endpoint, ModelServers, RepoReader, UnitOfWork, Units
from shipyard_serving.domain.events import (
    SYSTEM,
    DeploymentCreated,
    DeploymentDeleted,
    DeploymentUpdated,
    ModelPublished,
    ModelUnpublished,
)
from shipyard_serving.domain.serving import (
    CatalogEntry,
    Deployment,
    ModelPin,
    Observation,
    ServingSpec,
    ServingStatus,
    after_restart,
    overlay,
)

CATALOG_PAGES = "catalog"  # the tags of the lists' page tokens
DEPLOYMENT_PAGES = "deployments"


@dataclass
class Catalog:
    """Publishing model versions (ML engineers) and reading the catalog."""

    uow: Units
    repos: RepoReader
    clock: Clock = utc_now

    async def publish(
        self,
        caller: Caller,
        name: str,
        model: ModelPin,
        defaults: ServingSpec,
        project: str = "",
        description: str = "",
    ) -> CatalogEntry:
        """Copy a model version into the catalog with its serving defaults; ModelPublished."""
        defaults = defaults.checked()
        draft = CatalogEntry(
            id=uuid.uuid4().hex,
            name=name,
            model=model,
            defaults=defaults,
            owner=caller.user,
            create_time=self.clock(),
            project=project,
            description=description,
        )
        pinned, metrics = await pin(self.repos, caller, model)
        entry = replace(draft, model=pinned, metrics=metrics)
        async with self.uow() as uow:
            entry = await uow.catalog.add(entry)
            uow.record(ModelPublished(entry, caller))
        return entry

    async def get(self, name: str) -> CatalogEntry:
        """The entry; NotFound otherwise."""
        async with self.uow() as uow:
            found = await uow.catalog.get(name)
        if found is None:
            raise NotFound(f"no catalog entry named {name!r}")
        return found

    async def list_page(
        self, project: str, model: str, page_size: int, token: str
    ) -> tuple[list[CatalogEntry], str]:
        """One page of entries by name, and the token of the next."""
        limit = page_limit(page_size)
        async with self.uow() as uow:
            found = await uow.catalog.page(project or None, model or None, after_name(CATALOG_PAGES, token),
                                           limit)
        return found, next_token(CATALOG_PAGES, found, limit)

    async def unpublish(self, caller: Caller, name: str) -> None:
        """Remove an entry no deployment uses; ModelUnpublished."""
        async with self.uow() as uow:
            entry = await uow.catalog.get(name)
            if entry is None:
                raise NotFound(f"no catalog entry named {name!r}")
            users = await uow.deployments.using(name)
            if users:
                raise FailedPrecondition(
                    f"catalog entry {name!r} is deployed as {', '.join(d.name for d in users)}; "
                    "delete or change those deployments first"
                )
            await uow.catalog.remove(entry)
            uow.record(ModelUnpublished(entry, caller))


@dataclass
class Deployments:
    """What production engineers do with deployments, and following their servers."""

    uow: Units
    servers: ModelServers
    clock: Clock = utc_now
    # The operator's choice to let anyone's model servers share the machine when they cannot be isolated.
    single_user: bool = False
    placement: Placement = field(default_factory=Placement)

    async def create(
        self,
        caller: Caller,
        name: str,
        catalog_entry: str,
        given: ServingSpec,
        fields: frozenset[str],
        project: str = "",
        description: str = "",
        cluster: str = "",
    ) -> Deployment:
        """Deploy a catalog entry: its defaults with ``fields`` of ``given`` over them; here, or on
        ``cluster``'s KServe (for the deployment's life)."""
        cluster = await self.placement.cluster_for(caller, cluster, "deployment.cluster")
        if not cluster:  # a cluster's pods isolate the model's code from the platform
            check_isolated(self.servers, caller, self.single_user)
        now = self.clock()
        async with self.uow() as uow:
            entry = await _entry(uow, catalog_entry)
            spec = overlay(entry.defaults, given, fields).checked()
            deployment = Deployment(
                id=uuid.uuid4().hex,
                name=name,
                catalog_entry=entry.name,
                model=entry.model,
                spec=spec,
                owner=caller.user,
                create_time=now,
                update_time=now,
                project=project or entry.project,
                description=description,
                cluster=cluster,
                owner_roles=caller.roles,
            )
            await name_is_free(uow, name)
            deployment = await uow.deployments.add(deployment)
            uow.record(DeploymentCreated(deployment, caller))
        await self.servers.ensure(_endpoint(deployment))
        return deployment

    async def get(self, name: str) -> Deployment:
        """The deployment; NotFound otherwise."""
        async with self.uow() as uow:
            found = await uow.deployments.get(name)
        if found is None:
            raise NotFound(f"no deployment named {name!r}")
        return found

    async def list_page(self, project: str, page_size: int, token: str) -> tuple[list[Deployment], str]:
        """One page of deployments by name, and the token of the next."""
        limit = page_limit(page_size)
        async with self.uow() as uow:
            found = await uow.deployments.page(project or None, after_name(DEPLOYMENT_PAGES, token), limit)
        return found, next_token(DEPLOYMENT_PAGES, found, limit)

    async def update(
        self,
        caller: Caller,
        name: str,
        catalog_entry: str,
        model: ModelPin | None,
        given: ServingSpec,
        fields: frozenset[str],
        revision: int = 0,
    ) -> Deployment:
        """Swap the model (another catalog entry, or the entry of another version of the model) and/or
        change the spec; the new servers start beside the old ones and take over once ready. The
        deployment stays where it was created."""
        async with self.uow() as uow:
            current = await uow.deployments.get(name)
            if current is None:
                raise NotFound(f"no deployment named {name!r}")
            if not current.cluster:
                check_isolated(self.servers, caller, self.single_user)
            if revision and revision != current.revision:
                raise FailedPrecondition(
                    f"deployment {name!r} is at revision {current.revision}, not {revision}"
                )
            entry = await _target_entry(uow, current, catalog_entry, model)
            spec = overlay(
                current.spec if entry.name == current.catalog_entry else entry.defaults, given, fields
            ).checked()
            if entry.name == current.catalog_entry and spec == current.spec and entry.model == current.model:
                return current
            changed = await uow.deployments.save(current.swapped_to(entry, spec, self.clock()))
            uow.record(DeploymentUpdated(changed, ("model", "spec"), caller))
        await self.servers.ensure(_endpoint(changed))
        return changed

    async def delete(self, caller: Caller, name: str) -> None:
        """Stop its servers and delete it."""
        found = await self.get(name)
        await self.servers.remove(name, found.cluster)
        async with self.uow() as uow:
            current = await uow.deployments.get(name)
            if current is None:
                return
            await uow.deployments.remove(current)
            uow.record(DeploymentDeleted(current, caller))

    async def follow(self, name: str, seen: Observation) -> None:
        """Move the status with what the servers do. A swap whose model cannot load is undone: the
        record goes back to what served before (model, spec, catalog entry) and shows failed with why,
        and the servers are asked for that again, so that a cluster's InferenceService stops rolling
        the failing spec out (KServe would keep retrying it, beside the revision that still serves)."""
        async with self.uow() as uow:
            d = await uow.deployments.get(name)
            if d is None or (not d.status.live and d.status is not ServingStatus.FAILED):
                return
            changed = _followed(d, seen, self.clock())
            if changed is None:
                return
            saved = await uow.deployments.save(changed)
            uow.record(DeploymentUpdated(saved, ("status",), SYSTEM, seen))
        if saved.model != d.model:
            await self.servers.ensure(_endpoint(saved))

    async def recover(self) -> None:
        """After a restart: start the servers of every deployment that still serves — the live ones, and
        those whose failed swap went back to what served before (on a cluster KServe kept that revision
        serving, which the gateway routes to again; here its servers start again). The record points at
        what served, so the spec that failed is never rolled out again. Those the platform could not
        serve before (``error``) start again too. One whose servers may not start unsandboxed where they
        cannot be isolated (the rule it was created under) goes to ``error`` instead, saying why."""
        async with self.uow() as uow:
            live = await uow.deployments.live()
            failed = await uow.deployments.failed()
            in_error = await uow.deployments.in_error()
        for d in [*live, *(f for f in failed if f.still_serves), *in_error]:
            refusal = restart_refusal(self.servers, d.cluster, d.owner_roles, self.single_user)
            await self._restarted(d, refusal)
            if not refusal:
                await self.servers.ensure(_endpoint(d))

    async def _restarted(self, d: Deployment, refusal: str) -> None:
        """Its status as serving-svc starts, with ``refusal`` of its servers ("" if they start)."""
        moved = after_restart(d.status, d.status_reason, refusal)
        if moved is None:
            return
        async with self.uow() as uow:
            current = await uow.deployments.get(d.name)
            if current is None or current.id != d.id:
                return
            changed = await uow.deployments.save(current.moved_to(*moved, self.clock()))
            uow.record(DeploymentUpdated(changed, ("status",), SYSTEM))


def _endpoint(d: Deployment) -> Endpoint:
    """What the deployment's model servers serve, and where."""
    return Endpoint(d.name, d.model, d.spec, d.cluster)


def _followed(d: Deployment, seen: Observation, now: datetime) -> Deployment | None:
    """The deployment after ``seen``, or None when nothing changes."""
    if (
        seen.failure
        and d.status is ServingStatus.UPDATING
        and d.previous_model is not None
        and seen.serving == d.previous_model.label
    ):
        reason = (
            f"{d.model.label} could not be served ({seen.failure}); {d.previous_model.label} still serves"
        )
        return d.swapped_back(reason, now)
    if seen.failure and d.status is not ServingStatus.FAILED:
        return d.moved_to(ServingStatus.FAILED, seen.failure, now)
    if seen.failure or d.status is ServingStatus.FAILED:
        return None
    if seen.ready >= d.spec.min_replicas and seen.serving == d.model.label:
        return d.moved_to(ServingStatus.RUNNING, "", now) if d.status is not ServingStatus.RUNNING else None
    if d.status is ServingStatus.RUNNING:
        return d.moved_to(ServingStatus.STARTING, "replicas restarting", now)
    waiting = d.status in (ServingStatus.QUEUED, ServingStatus.STARTING)
    if waiting and seen.waiting and seen.waiting != d.status_reason:  # what the cluster says it waits for
        return d.moved_to(ServingStatus.STARTING, seen.waiting, now)
    return None


async def _entry(uow: UnitOfWork, name: str) -> CatalogEntry:
    if not name:
        raise InvalidArgument("deployment.catalog_entry", "is required: the catalog entry to deploy")
    entry = await uow.catalog.get(name)
    if entry is None:
        raise NotFound(f"no catalog entry named {name!r}")
    return entry


async def _target_entry(
    uow: UnitOfWork, current: Deployment, catalog_entry: str, model: ModelPin | None
) -> CatalogEntry:
    """The catalog entry an update moves to: named, found by model version, or the current one."""
    if catalog_entry:
        return await _entry(uow, catalog_entry)
    if model is None or not model.model:
        return await _entry(uow, current.catalog_entry)
    for entry in await uow.catalog.page(None, model.model, None, PAGE_MAX):
        if entry.model.version == model.version:
            return entry
    raise FailedPrecondition(
        f"{model.label} is not in the model catalog: an ML engineer publishes it first "
        f"(shipyard model publish {model.label} --name …)"
    )
