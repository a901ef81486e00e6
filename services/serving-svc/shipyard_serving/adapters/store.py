"""Test inferences, the model catalog, deployments and request ids in the kit's document store."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from shipyard.kit.errors import AlreadyExists
from shipyard.kit.outbox import OutboxRelay
from shipyard.kit.store.documents import DocumentRepository
from shipyard.kit.store.port import Collection, Document, DocumentStore, Page, Transaction
from shipyard.kit.store.unit_of_work import REQUESTS, StoredRequests, StoreUnitOfWork, StoreUnitOfWorkFactory
from shipyard_serving.app.events import translate
from shipyard_serving.domain.serving import (
    CatalogEntry,
    Deployment,
    Inference,
    ModelPin,
    ServingSpec,
    ServingStatus,
    Transformer,
)
from shipyard_serving.settings import SERVICE

INFERENCES = Collection("inferences", unique=("name",), indexed=("project", "live"))
CATALOG = Collection("catalog", unique=("name",), indexed=("project", "model_name"))
DEPLOYMENTS = Collection("deployments", unique=("name",), indexed=("project", "live", "catalog_entry"))
COLLECTIONS = (INFERENCES, CATALOG, DEPLOYMENTS, REQUESTS)
SOURCE = f"shipyard/{SERVICE}"


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
        "cluster": inference.cluster,
        "owner_roles": sorted(inference.owner_roles),
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
        cluster=doc.get("cluster", ""),  # absent from what was stored before clusters served models
        owner_roles=_owner_roles(doc),
    )


def _owner_roles(doc: Document) -> frozenset[str]:
    # Absent from what was stored before: no roles known, so such an endpoint is never started again
    # unsandboxed after a restart unless single-user mode allows anyone's.
    return frozenset(doc.get("owner_roles", ()))


def _by_name(after: str | None, limit: int) -> Page:
    """Pages by name: ``after`` a name, past every document with that name (ids sort before U+FFFF)."""
    return Page(order_by="name", after=(after, "\uffff") if after else None, limit=limit)


class StoredInferences(DocumentRepository[Inference]):
    """Test inferences in the ``inferences`` collection, unique by name."""

    collection = INFERENCES
    noun = "test inference"

    def to_document(self, item: Inference) -> Document:
        return _doc(item)

    def from_document(self, doc: Document) -> Inference:
        return _inference(doc)


    async def get(self, name: str) -> Inference | None:
        """The inference with that name."""
        return await self.find_one(name=name)

    async def page(self, project: str | None, after: str | None, limit: int) -> list[Inference]:
        """Inferences by name, after the name ``after``."""
        return await self.find({"project": project} if project is not None else None, _by_name(after, limit))

    async def live(self) -> list[Inference]:
        """Every inference whose model servers should be running."""
        return await self.find({"live": True})

    async def in_error(self) -> list[Inference]:
        """Every inference the platform could not serve (unindexed: asked only when serving-svc starts)."""
        return await self.find({"status": ServingStatus.ERROR.value})

    async def on_cluster(self, cluster: str) -> list[Inference]:
        """Every inference served on ``cluster`` (unindexed: asked only when a cluster is deleted)."""
        return await self.find({"cluster": cluster})


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
        revision=doc["_rev"],
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
        "cluster": d.cluster,
        "previous_spec": asdict(d.previous_spec) if d.previous_spec else None,
        "previous_catalog_entry": d.previous_catalog_entry,
        "owner_roles": sorted(d.owner_roles),
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
        cluster=doc.get("cluster", ""),  # absent from what was stored before clusters served models
        # Absent from what was stored before a failed swap went back to the previous spec.
        previous_spec=_spec(doc["previous_spec"]) if doc.get("previous_spec") else None,
        previous_catalog_entry=doc.get("previous_catalog_entry", ""),
        owner_roles=_owner_roles(doc),
    )


class StoredCatalog(DocumentRepository[CatalogEntry]):
    """Catalog entries in the ``catalog`` collection, unique by name."""

    collection = CATALOG
    noun = "catalog entry"

    def to_document(self, item: CatalogEntry) -> Document:
        return _entry_doc(item)

    def from_document(self, doc: Document) -> CatalogEntry:
        return _entry(doc)

    def taken(self, item: CatalogEntry, field: str) -> AlreadyExists:
        return AlreadyExists(f"the catalog has an entry named {item.name!r} already")

    async def get(self, name: str) -> CatalogEntry | None:
        """The entry with that name."""
        return await self.find_one(name=name)

    async def page(
        self, project: str | None, model: str | None, after: str | None, limit: int
    ) -> list[CatalogEntry]:
        """Entries by name, after the name ``after``, of a project and a model when given."""
        where = {k: v for k, v in (("project", project), ("model_name", model)) if v is not None}
        return await self.find(where or None, _by_name(after, limit))


class StoredDeployments(DocumentRepository[Deployment]):
    """Deployments in the ``deployments`` collection, unique by name."""

    collection = DEPLOYMENTS
    noun = "deployment"

    def to_document(self, item: Deployment) -> Document:
        return _deployment_doc(item)

    def from_document(self, doc: Document) -> Deployment:
        return _deployment(doc)


    async def get(self, name: str) -> Deployment | None:
        """The deployment with that name."""
        return await self.find_one(name=name)

    async def page(self, project: str | None, after: str | None, limit: int) -> list[Deployment]:
        """Deployments by name, after the name ``after``."""
        return await self.find({"project": project} if project is not None else None, _by_name(after, limit))

    async def live(self) -> list[Deployment]:
        """Every deployment whose model servers should be running."""
        return await self.find({"live": True})

    async def in_error(self) -> list[Deployment]:
        """Every deployment the platform could not serve (unindexed: asked only when serving-svc starts)."""
        return await self.find({"status": ServingStatus.ERROR.value})

    async def failed(self) -> list[Deployment]:
        """Every deployment whose status is failed (unindexed: asked only when serving-svc starts)."""
        return await self.find({"status": ServingStatus.FAILED.value})

    async def using(self, catalog_entry: str) -> list[Deployment]:
        """The deployments of a catalog entry."""
        return await self.find({"catalog_entry": catalog_entry})

    async def on_cluster(self, cluster: str) -> list[Deployment]:
        """Every deployment served on ``cluster`` (unindexed: asked only when a cluster is deleted)."""
        return await self.find({"cluster": cluster})


class ServingUnitOfWork(StoreUnitOfWork):
    """A transaction over serving-svc's collections; its domain events are translated by
    ``shipyard_serving.app.events``."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE, translate)
        self.inferences = StoredInferences(txn)
        self.catalog = StoredCatalog(txn)
        self.deployments = StoredDeployments(txn)
        self.requests = StoredRequests(txn)


def unit_of_work_factory(
    store: DocumentStore, relay: OutboxRelay | None
) -> StoreUnitOfWorkFactory[ServingUnitOfWork]:
    """serving-svc's units of work on ``store``."""
    return StoreUnitOfWorkFactory(store, relay, ServingUnitOfWork)
