"""Test inference use cases: create (validate, pin the model, start its servers), read, list,
delete, and following what the model servers do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import NotFound, PermissionDenied
from shipyard.kit.paging import page_limit
from shipyard_serving.app.endpoints import (
    Placement,
    after_name,
    check_isolated,
    name_is_free,
    next_token,
    pin,
    restart_refusal,
)
from shipyard_serving.app.ports import Endpoint, ModelServers, RepoReader, Units
from shipyard_serving.domain.events import SYSTEM, InferenceCreated, InferenceDeleted, InferenceUpdated
from shipyard_serving.domain.serving import (
    Inference,
    ModelPin,
    Observation,
    ServingSpec,
    ServingStatus,
    after_restart,
)

PAGES = "inferences"  # the tag of this list's page tokens


def endpoint_of(inference: Inference) -> Endpoint:
    """What its model servers serve."""
    return Endpoint(inference.name, inference.model, inference.spec, inference.cluster)


@dataclass
class Inferences:
    """What users do with test inferences."""

    uow: Units
    repos: RepoReader
    servers: ModelServers
    clock: Clock = utc_now
    # The operator's choice to let anyone's model servers share the machine when they cannot be isolated.
    single_user: bool = False
    placement: Placement = field(default_factory=Placement)

    async def create(
        self,
        caller: Caller,
        name: str,
        model: ModelPin,
        spec: ServingSpec,
        project: str = "",
        description: str = "",
        request_id: str = "",
        cluster: str = "",
    ) -> Inference:
        """Pin the model (and the transformer's code), store the inference, start its servers: here, or
        on ``cluster``'s KServe."""
        spec = spec.checked()
        cluster = await self.placement.cluster_for(caller, cluster, "inference.cluster")
        if not cluster:  # a cluster's pods isolate the model's code from the platform
            check_isolated(self.servers, caller, self.single_user)
        now = self.clock()
        draft = Inference(
            id=uuid.uuid4().hex,
            name=name,
            project=project,
            model=model,
            spec=spec,
            owner=caller.user,
            create_time=now,
            update_time=now,
            description=description,
            cluster=cluster,
            owner_roles=caller.roles,
        )
        if request_id and (made := await self._made_by(caller, request_id)) is not None:
            return made
        pinned, _ = await pin(self.repos, caller, model)
        if spec.transformer.code:
            code = await self.repos.snapshot_code(caller, spec.transformer.code, spec.transformer.commit)
            spec = replace(
                spec,
                transformer=replace(
                    spec.transformer, commit=code.commit, manifest_digest=code.manifest_digest
                ),
            )
        inference = replace(draft, model=pinned, spec=spec)
        async with self.uow() as uow:
            await name_is_free(uow, name)
            inference = await uow.inferences.add(inference)
            if request_id:
                await uow.requests.remember(_request_key(caller, request_id), name)
            uow.record(InferenceCreated(inference, caller))
        await self.servers.ensure(endpoint_of(inference))
        return inference

    async def _made_by(self, caller: Caller, request_id: str) -> Inference | None:
        async with self.uow() as uow:
            name = await uow.requests.resource_of(_request_key(caller, request_id))
            return None if name is None else await uow.inferences.get(name)

    async def get(self, name: str) -> Inference:
        """The inference; NotFound otherwise."""
        async with self.uow() as uow:
            found = await uow.inferences.get(name)
        if found is None:
            raise NotFound(f"no test inference named {name!r}")
        return found

    async def list_page(self, project: str, page_size: int, page_token: str) -> tuple[list[Inference], str]:
        """One page, by name, and the token of the next ("" at the end)."""
        limit = page_limit(page_size)
        async with self.uow() as uow:
            found = await uow.inferences.page(project or None, after_name(PAGES, page_token), limit)
        return found, next_token(PAGES, found, limit)

    async def delete(self, caller: Caller, name: str) -> None:
        """Stop its servers and forget it (its owner or an operator)."""
        inference = await self.get(name)
        if caller.user != inference.owner and not caller.is_operator:
            raise PermissionDenied(
                f"only {inference.owner} (its owner) or an operator may delete test inference {name!r}"
            )
        await self.servers.remove(name, inference.cluster)
        async with self.uow() as uow:
            current = await uow.inferences.get(name)
            if current is None:
                return
            await uow.inferences.remove(current)
            uow.record(InferenceDeleted(current, caller))

    def observe(self, name: str) -> Observation:
        """Its model servers now."""
        return self.servers.observe(name)

    async def follow(self, name: str, seen: Observation) -> None:
        """Move the inference's status with what its servers do: running once min_replicas are
        ready, failed when the model cannot be loaded, starting again when replicas are lost."""
        async with self.uow() as uow:
            inference = await uow.inferences.get(name)
            if inference is None or not inference.status.live:
                return
            status, reason = _status_of(inference, seen)
            if (status, reason) == (inference.status, inference.status_reason):
                return
            changed = await uow.inferences.save(inference.moved_to(status, reason, self.clock()))
            uow.record(InferenceUpdated(changed, ("status",), SYSTEM, seen))

    async def recover(self) -> None:
        """After a restart: start the servers of every inference that should be serving, and of those the
        platform could not serve before (``error``). One whose servers may not start unsandboxed where
        they cannot be isolated (the rule it was created under) goes to ``error`` instead, saying why."""
        async with self.uow() as uow:
            found = [*await uow.inferences.live(), *await uow.inferences.in_error()]
        for i in found:
            refusal = restart_refusal(self.servers, i.cluster, i.owner_roles, self.single_user)
            await self._restarted(i, refusal)
            if not refusal:
                await self.servers.ensure(endpoint_of(i))

    async def _restarted(self, inference: Inference, refusal: str) -> None:
        """Its status as serving-svc starts, with ``refusal`` of its servers ("" if they start)."""
        moved = after_restart(inference.status, inference.status_reason, refusal)
        if moved is None:
            return
        async with self.uow() as uow:
            current = await uow.inferences.get(inference.name)
            if current is None or current.id != inference.id:
                return
            changed = await uow.inferences.save(current.moved_to(*moved, self.clock()))
            uow.record(InferenceUpdated(changed, ("status",), SYSTEM))


def _status_of(inference: Inference, seen: Observation) -> tuple[ServingStatus, str]:
    if seen.failure:
        return ServingStatus.FAILED, seen.failure
    if seen.ready >= inference.spec.min_replicas:
        return ServingStatus.RUNNING, ""
    lost = inference.status is ServingStatus.RUNNING
    return ServingStatus.STARTING, ("replicas restarting: " + _exits(seen)) if lost else seen.waiting


def _exits(seen: Observation) -> str:
    return "; ".join(f"{r.address} {r.last_exit}" for r in seen.replicas if r.last_exit) or "not ready"


def _request_key(caller: Caller, request_id: str) -> str:
    return f"inference:{caller.user}:{request_id}"
