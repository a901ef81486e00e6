"""Test inferences and request ids in the kit's document store."""

from __future__ import annotations

import builtins
from dataclasses import asdict
from datetime import datetime
from typing import Any

from shipyard.kit.errors import Aborted, AlreadyExists
from shipyard.kit.outbox import OutboxRelay
from shipyard.kit.store.port import (
    Collection,
    Document,
    DocumentStore,
    DuplicateKey,
    Page,
    RevisionConflict,
    Transaction,
)
from shipyard.kit.store.unit_of_work import REQUESTS, StoredRequests, StoreUnitOfWork, StoreUnitOfWorkFactory
from shipyard_serving.app.ports import InferenceRepository
from shipyard_serving.domain.serving import Inference, ModelPin, ServingSpec, ServingStatus, Transformer

INFERENCES = Collection("inferences", unique=("name",), indexed=("project", "live"))
COLLECTIONS = (INFERENCES, REQUESTS)
SOURCE = "shipyard/serving-svc"


def _doc(inference: Inference) -> Document:
    return {
        "_id": inference.id,
        "name": inference.name,
        "project": inference.project,
        "description": inference.description,
        "model": asdict(inference.model),
        "spec": asdict(inference.spec),
        "owner": inference.owner,
        "create_time": inference.create_time.isoformat(),
        "update_time": inference.update_time.isoformat(),
        "status": inference.status.value,
        "status_reason": inference.status_reason,
        "live": inference.status.live,
    }


def _spec(doc: dict[str, Any]) -> ServingSpec:
    return ServingSpec(**{**doc, "transformer": Transformer(**doc["transformer"])})


def _inference(doc: Document) -> Inference:
    return Inference(
        id=doc["_id"],
        name=doc["name"],
        project=doc["project"],
        description=doc["description"],
        model=ModelPin(**doc["model"]),
        spec=_spec(doc["spec"]),
        owner=doc["owner"],
        create_time=datetime.fromisoformat(doc["create_time"]),
        update_time=datetime.fromisoformat(doc["update_time"]),
        status=ServingStatus(doc["status"]),
        status_reason=doc["status_reason"],
        revision=doc["_rev"],
    )


class StoredInferences(InferenceRepository):
    """Inferences keyed by id, unique by name."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, name: str) -> Inference | None:
        found = await self._txn.find(INFERENCES.name, {"name": name}, Page(limit=1))
        return _inference(found[0]) if found else None

    async def add(self, inference: Inference) -> Inference:
        try:
            return _inference(await self._txn.insert(INFERENCES.name, _doc(inference)))
        except DuplicateKey:
            raise AlreadyExists(f"a test inference named {inference.name!r} exists already") from None

    async def save(self, inference: Inference) -> Inference:
        try:
            return _inference(await self._txn.replace(INFERENCES.name, _doc(inference), inference.revision))
        except RevisionConflict:
            raise Aborted(f"test inference {inference.name!r} changed meanwhile; read it again") from None

    async def remove(self, inference: Inference) -> None:
        await self._txn.delete(INFERENCES.name, inference.id)

    async def page(self, project: str | None, after: str | None, limit: int) -> builtins.list[Inference]:
        where = {"project": project} if project is not None else None
        docs = await self._txn.find(
            INFERENCES.name,
            where,
            Page(order_by="name", after=(after, "\uffff") if after else None, limit=limit),
        )
        return [_inference(d) for d in docs]

    async def live(self) -> builtins.list[Inference]:
        return [_inference(d) for d in await self._txn.find(INFERENCES.name, {"live": True})]


class ServingUnitOfWork(StoreUnitOfWork):
    """A transaction over serving-svc's collections."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE)
        self.inferences = StoredInferences(txn)
        self.requests = StoredRequests(txn)


def unit_of_work_factory(
    store: DocumentStore, relay: OutboxRelay | None
) -> StoreUnitOfWorkFactory[ServingUnitOfWork]:
    """serving-svc's units of work on ``store``."""
    return StoreUnitOfWorkFactory(store, relay, ServingUnitOfWork)
