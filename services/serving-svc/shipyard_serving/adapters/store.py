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
from shipyard_serving.app.ports import CatalogRepository, DeploymentRepository, InferenceRepository
from shipyard_serving.domain.serving import (
    CatalogEntry,
    Deployment,
    Inference,
    ModelPin,
    ServingSpec,
    ServingStatus,
    Transformer,
)

INFERENCES = Collection("inferences", unique=("name",), indexed=("project", "live"))
CATALOG = Collection("catalog", unique=("name",), indexed=("project", "model_name"))
DEPLOYMENTS = Collection("deployments", unique=("name",), indexed=("project", "live", "catalog_entry"))
COLLECTIONS = (INFERENCES, CATALOG, DEPLOYMENTS, REQUESTS)
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


def _pin(doc: dict[str, Any] | None) -> ModelPin | None:
    return ModelPin(**doc) if doc else None


def _entry_doc(entry: CatalogEntry) -> Document:
    return {
        "_id": entry.id,
        "name": entry.name,
        "project": entry.project,
        "description": entry.description,
        "model": asdict(entry.model),
        "model_name": entry.model.model,
        "defaults": asdict(entry.defaults),
        "owner": entry.owner,
        "create_time": entry.create_time.isoformat(),
        "metrics": entry.metrics,
    }


def _entry(doc: Document) -> CatalogEntry:
    return CatalogEntry(
        id=doc["_id"],
        name=doc["name"],
        project=doc["project"],
        description=doc["description"],
        model=ModelPin(**doc["model"]),
        defaults=_spec(doc["defaults"]),
        owner=doc["owner"],
        create_time=datetime.fromisoformat(doc["create_time"]),
        metrics=doc["metrics"],
    )


def _deployment_doc(d: Deployment) -> Document:
    return {
        "_id": d.id,
        "name": d.name,
        "project": d.project,
        "description": d.description,
        "catalog_entry": d.catalog_entry,
        "model": asdict(d.model),
        "spec": asdict(d.spec),
        "owner": d.owner,
        "create_time": d.create_time.isoformat(),
        "update_time": d.update_time.isoformat(),
        "status": d.status.value,
        "status_reason": d.status_reason,
        "live": d.status.live,
        "previous_model": asdict(d.previous_model) if d.previous_model else None,
    }


def _deployment(doc: Document) -> Deployment:
    return Deployment(
        id=doc["_id"],
        name=doc["name"],
        project=doc["project"],
        description=doc["description"],
        catalog_entry=doc["catalog_entry"],
        model=ModelPin(**doc["model"]),
        spec=_spec(doc["spec"]),
        owner=doc["owner"],
        create_time=datetime.fromisoformat(doc["create_time"]),
        update_time=datetime.fromisoformat(doc["update_time"]),
        status=ServingStatus(doc["status"]),
        status_reason=doc["status_reason"],
        previous_model=_pin(doc["previous_model"]),
        revision=doc["_rev"],
    )


def _by_name(after: str | None, limit: int) -> Page:
    return Page(order_by="name", after=(after, "\uffff") if after else None, limit=limit)


class StoredCatalog(CatalogRepository):
    """Catalog entries keyed by id, unique by name."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, name: str) -> CatalogEntry | None:
        found = await self._txn.find(CATALOG.name, {"name": name}, Page(limit=1))
        return _entry(found[0]) if found else None

    async def add(self, entry: CatalogEntry) -> CatalogEntry:
        try:
            return _entry(await self._txn.insert(CATALOG.name, _entry_doc(entry)))
        except DuplicateKey:
            raise AlreadyExists(f"the catalog has an entry named {entry.name!r} already") from None

    async def remove(self, entry: CatalogEntry) -> None:
        await self._txn.delete(CATALOG.name, entry.id)

    async def page(
        self, project: str | None, model: str | None, after: str | None, limit: int
    ) -> builtins.list[CatalogEntry]:
        where = {k: v for k, v in (("project", project), ("model_name", model)) if v is not None}
        return [_entry(d) for d in await self._txn.find(CATALOG.name, where or None, _by_name(after, limit))]


class StoredDeployments(DeploymentRepository):
    """Deployments keyed by id, unique by name."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, name: str) -> Deployment | None:
        found = await self._txn.find(DEPLOYMENTS.name, {"name": name}, Page(limit=1))
        return _deployment(found[0]) if found else None

    async def add(self, deployment: Deployment) -> Deployment:
        try:
            return _deployment(await self._txn.insert(DEPLOYMENTS.name, _deployment_doc(deployment)))
        except DuplicateKey:
            raise AlreadyExists(f"a deployment named {deployment.name!r} exists already") from None

    async def save(self, deployment: Deployment) -> Deployment:
        try:
            return _deployment(
                await self._txn.replace(DEPLOYMENTS.name, _deployment_doc(deployment), deployment.revision)
            )
        except RevisionConflict:
            raise Aborted(f"deployment {deployment.name!r} changed meanwhile; read it again") from None

    async def remove(self, deployment: Deployment) -> None:
        await self._txn.delete(DEPLOYMENTS.name, deployment.id)

    async def page(self, project: str | None, after: str | None, limit: int) -> builtins.list[Deployment]:
        where = {"project": project} if project is not None else None
        return [_deployment(d) for d in await self._txn.find(DEPLOYMENTS.name, where, _by_name(after, limit))]

    async def live(self) -> builtins.list[Deployment]:
        return [_deployment(d) for d in await self._txn.find(DEPLOYMENTS.name, {"live": True})]

    async def using(self, catalog_entry: str) -> builtins.list[Deployment]:
        return [
            _deployment(d) for d in await self._txn.find(DEPLOYMENTS.name, {"catalog_entry": catalog_entry})
        ]


class ServingUnitOfWork(StoreUnitOfWork):
    """A transaction over serving-svc's collections."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE)
        self.inferences = StoredInferences(txn)
        self.catalog = StoredCatalog(txn)
        self.deployments = StoredDeployments(txn)
        self.requests = StoredRequests(txn)


def unit_of_work_factory(
    store: DocumentStore, relay: OutboxRelay | None
) -> StoreUnitOfWorkFactory[ServingUnitOfWork]:
    """serving-svc's units of work on ``store``."""
    return StoreUnitOfWorkFactory(store, relay, ServingUnitOfWork)
