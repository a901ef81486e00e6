"""Test inference use cases: create (validate, pin the model, start its servers), read, list,
delete, and following what the model servers do."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from shipyard.kit.bubblewrap import unisolated_refusal
from shipyard.kit.caller import Caller
from shipyard.kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard_serving.app.messages import actor, inference_created, inference_deleted, inference_updated
from shipyard_serving.app.ports import (
    Endpoint,
    ModelReader,
    ModelServers,
    Observation,
    UnitOfWork,
    UnitOfWorkFactory,
)
from shipyard_serving.domain.serving import Inference, ModelPin, ServingSpec, ServingStatus

PAGE_DEFAULT = 50
PAGE_MAX = 1000
OPERATOR = "operator"
SYSTEM = actor("serving-svc", frozenset())


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


def subject(inference: Inference) -> str:
    """The CloudEvents subject of an inference's events."""
    return f"inferences/{inference.name}"


async def name_is_free(uow: UnitOfWork, name: str) -> None:
    """AlreadyExists if a test inference or a deployment has the name: they share the gateway's
    /serving/<name>/ paths."""
    if await uow.inferences.get(name) is not None or await uow.deployments.get(name) is not None:
        raise AlreadyExists(f"an endpoint named {name!r} exists already (a test inference or a deployment)")


def check_isolated(servers: ModelServers, caller: Caller, single_user: bool) -> None:
    """Where model servers cannot be isolated, the model's code (a custom predictor, a transformer,
    a pickled model) would act as the platform: only operators may start them, unless the operator
    chose single-user mode (run-svc's rule for runs)."""
    refusal = unisolated_refusal(
        servers.isolation_missing(), caller.roles, single_user, what="model servers",
        danger="a model server that is not isolated runs the model's code as the platform", start="one",
        whose="models")
    if refusal:
        raise FailedPrecondition(refusal)


def endpoint_of(inference: Inference) -> Endpoint:
    """What its model servers serve."""
    return Endpoint(inference.name, inference.model, inference.spec)


@dataclass
class Inferences:
    """What users do with test inferences."""

    uow: UnitOfWorkFactory
    models: ModelReader
    servers: ModelServers
    clock: Callable[[], datetime] = utc_now
    # The operator's choice to let anyone's model servers share the machine when they cannot be isolated.
    single_user: bool = False

    async def create(
        self,
        caller: Caller,
        name: str,
        model: ModelPin,
        spec: ServingSpec,
        project: str = "",
        description: str = "",
        request_id: str = "",
    ) -> Inference:
        """Pin the model (and the transformer's code), store the inference, start its servers."""
        spec = spec.checked()
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
        )
        if request_id and (made := await self._made_by(caller, request_id)) is not None:
            return made
        pinned = await self.models.pin(caller, model.model, model.version)
        if spec.transformer.code:
            code = await self.models.snapshot_code(caller, spec.transformer.code, spec.transformer.commit)
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
            uow.emit(
                inference_created(inference, actor(caller.user, caller.roles)), subject(inference), project
            )
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
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        limit = min(page_size or PAGE_DEFAULT, PAGE_MAX)
        async with self.uow() as uow:
            found = await uow.inferences.page(project or None, decode_token(page_token), limit)
        token = encode_token(found[-1].name) if len(found) == limit else ""
        return found, token

    async def delete(self, caller: Caller, name: str) -> None:
        """Stop its servers and forget it (its owner or an operator)."""
        inference = await self.get(name)
        if caller.user != inference.owner and not caller.has(OPERATOR):
            raise PermissionDenied(
                f"only {inference.owner} (its owner) or an operator may delete test inference {name!r}"
            )
        await self.servers.remove(name)
        async with self.uow() as uow:
            current = await uow.inferences.get(name)
            if current is None:
                return
            await uow.inferences.remove(current)
            uow.emit(
                inference_deleted(current, actor(caller.user, caller.roles)),
                subject(current),
                current.project,
            )

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
            uow.emit(inference_updated(changed, ["status"], SYSTEM, seen), subject(changed), changed.project)

    async def recover(self) -> None:
        """After a restart: start the servers of every inference that should be serving."""
        async with self.uow() as uow:
            live = await uow.inferences.live()
        for inference in live:
            await self.servers.ensure(endpoint_of(inference))


def _status_of(inference: Inference, seen: Observation) -> tuple[ServingStatus, str]:
    if seen.failure:
        return ServingStatus.FAILED, seen.failure
    if seen.ready >= inference.spec.min_replicas:
        return ServingStatus.RUNNING, ""
    lost = inference.status is ServingStatus.RUNNING
    return ServingStatus.STARTING, ("replicas restarting: " + _exits(seen)) if lost else ""


def _exits(seen: Observation) -> str:
    return "; ".join(f"{r.address} {r.last_exit}" for r in seen.replicas if r.last_exit) or "not ready"


def _request_key(caller: Caller, request_id: str) -> str:
    return f"inference:{caller.user}:{request_id}"


def encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(f"n:{name}".encode()).decode()


def decode_token(token: str) -> str | None:
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text.startswith("n:"):
        raise InvalidArgument("page_token", "is not a token this API returned")
    return text[2:]
