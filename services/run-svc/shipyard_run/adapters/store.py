"""Runs, metric points, configuration files and request ids in the kit's document store."""

from __future__ import annotations

import base64
import builtins
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from shipyard.kit.errors import Aborted, AlreadyExists
from shipyard.kit.outbox import OutboxRelay
from shipyard.kit.store.port import (
    Collection,
    Contains,
    Document,
    DocumentStore,
    DuplicateKey,
    Page,
    Prefix,
    RevisionConflict,
    Transaction,
)
from shipyard.kit.store.unit_of_work import REQUESTS, StoredRequests, StoreUnitOfWork, StoreUnitOfWorkFactory
from shipyard_run.app.ports import (
    ConfigFiles,
    MetricLog,
    MetricPoint,
    RunFilter,
    RunRepository,
    TemplateRepository,
)
from shipyard_run.domain.runs import Input, OutputTarget, Run, RunKind, RunSpec, RunStatus, RunTemplate

RUNS = Collection("runs", unique=("name",), indexed=("status", "project", "sequence"))
METRICS = Collection("metrics", indexed=("run_id",))
CONFIGS = Collection("configs")
TEMPLATES = Collection("templates", unique=("name",))
COLLECTIONS = (RUNS, METRICS, CONFIGS, REQUESTS, TEMPLATES)
SOURCE = "shipyard/run-svc"


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _parse(when: str | None) -> datetime | None:
    return None if when is None else datetime.fromisoformat(when)


def _run_doc(run: Run) -> Document:
    spec = _spec_doc(run.spec)
    return {
        "_id": run.id, "name": run.name, "sequence": run.sequence, "status": run.status.value,
        "kind": run.spec.kind.value, "project": run.spec.project, "tags": list(run.spec.tags),
        "owner": run.owner, "owner_roles": list(run.owner_roles), "spec": spec,
        "create_time": _time(run.create_time),
        "status_reason": run.status_reason, "exit_code": run.exit_code, "start_time": _time(run.start_time),
        "end_time": _time(run.end_time), "metrics": run.metrics, "notes": list(run.notes),
        "gpu_ids": list(run.gpu_ids), "token_hash": run.token_hash,
    }


def _spec_doc(spec: RunSpec) -> dict[str, Any]:
    doc = asdict(spec)
    doc["kind"] = spec.kind.value
    return doc


def _spec_from(doc: dict[str, Any]) -> RunSpec:
    fields = dict(doc)
    fields["kind"] = RunKind(fields["kind"])
    fields["tags"] = tuple(fields["tags"])
    fields["inputs"] = tuple(Input(**i) for i in fields["inputs"])
    fields["outputs"] = tuple(OutputTarget(**o) for o in fields["outputs"])
    return RunSpec(**fields)


def _run_from(doc: Document) -> Run:
    created = _parse(doc["create_time"])
    assert created is not None
    return Run(
        id=doc["_id"], spec=_spec_from(doc["spec"]), owner=doc["owner"], create_time=created,
        owner_roles=tuple(doc.get("owner_roles", ())),
        sequence=doc["sequence"], status=RunStatus(doc["status"]), status_reason=doc["status_reason"],
        exit_code=doc["exit_code"], start_time=_parse(doc["start_time"]), end_time=_parse(doc["end_time"]),
        metrics=dict(doc["metrics"]), notes=tuple(doc["notes"]), gpu_ids=tuple(doc["gpu_ids"]),
        token_hash=doc.get("token_hash", ""), revision=doc["_rev"],
    )


class StoredRuns(RunRepository):
    """Runs in the ``runs`` collection, unique by name."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, name: str) -> Run | None:
        docs = await self._txn.find(RUNS.name, {"name": name}, Page(limit=1))
        return _run_from(docs[0]) if docs else None

    async def by_id(self, run_id: str) -> Run | None:
        doc = await self._txn.get(RUNS.name, run_id)
        return _run_from(doc) if doc else None

    async def add(self, run: Run) -> Run:
        try:
            return _run_from(await self._txn.insert(RUNS.name, _run_doc(run)))
        except DuplicateKey:
            raise AlreadyExists(f"a run named {run.name!r} exists already") from None

    async def save(self, run: Run) -> Run:
        try:
            return _run_from(await self._txn.replace(RUNS.name, _run_doc(run), run.revision))
        except RevisionConflict:
            raise Aborted(f"run {run.name!r} changed meanwhile; read it again") from None

    async def remove(self, run: Run) -> None:
        try:
            await self._txn.delete(RUNS.name, run.id, run.revision)
        except RevisionConflict:
            raise Aborted(f"run {run.name!r} changed meanwhile; read it again") from None

    async def list(self, where: RunFilter, after: tuple[int, str] | None, limit: int) -> builtins.list[Run]:
        match: dict[str, Any] = {}
        if where.project is not None:
            match["project"] = where.project
        if where.status is not None:
            match["status"] = where.status.value
        if where.kind is not None:
            match["kind"] = where.kind.value
        if where.name_prefix:
            match["name"] = Prefix(where.name_prefix)
        if where.tag:
            match["tags"] = Contains(where.tag)
        page = Page(order_by="sequence", descending=True, after=after, limit=limit)
        return [_run_from(d) for d in await self._txn.find(RUNS.name, match, page)]

    async def in_status(self, statuses: tuple[RunStatus, ...], limit: int) -> builtins.list[Run]:
        found: builtins.list[Run] = []
        for status in statuses:
            page = Page(order_by="sequence", limit=limit)
            found += [_run_from(d) for d in await self._txn.find(RUNS.name, {"status": status.value}, page)]
        return sorted(found, key=lambda run: (run.sequence, run.id))[:limit]


class StoredTemplates(TemplateRepository):
    """Templates in the ``templates`` collection, unique by name."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, name: str) -> RunTemplate | None:
        docs = await self._txn.find(TEMPLATES.name, {"name": name}, Page(limit=1))
        return _template_from(docs[0]) if docs else None

    async def add(self, template: RunTemplate) -> RunTemplate:
        doc = {"_id": template.id, "name": template.name, "owner": template.owner,
               "create_time": template.create_time.isoformat(), "description": template.description,
               "spec": _spec_doc(template.spec)}
        try:
            return _template_from(await self._txn.insert(TEMPLATES.name, doc))
        except DuplicateKey:
            raise AlreadyExists(f"a template named {template.name!r} exists already") from None

    async def remove(self, template: RunTemplate) -> None:
        await self._txn.delete(TEMPLATES.name, template.id)

    async def list(self) -> builtins.list[RunTemplate]:
        return [_template_from(d) for d in await self._txn.find(TEMPLATES.name, page=Page(order_by="name"))]


def _template_from(doc: Document) -> RunTemplate:
    return RunTemplate(id=doc["_id"], name=doc["name"], owner=doc["owner"],
                       create_time=datetime.fromisoformat(doc["create_time"]), spec=_spec_from(doc["spec"]),
                       description=doc["description"], revision=doc["_rev"])


class StoredMetrics(MetricLog):
    """Metric points, one document per batch of a run."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def append(self, run_id: str, points: builtins.list[MetricPoint]) -> None:
        await self._txn.insert(METRICS.name, {
            "_id": f"{run_id}:{uuid.uuid4().hex}", "run_id": run_id, "at": points[0].time.isoformat(),
            "points": [[p.name, p.value, p.step, p.time.isoformat()] for p in points],
        })

    async def remove(self, run_id: str) -> None:
        docs = await self._txn.find(METRICS.name, {"run_id": run_id})
        await self._txn.delete_many(METRICS.name, [d["_id"] for d in docs])

    async def series(self, run_id: str) -> builtins.list[MetricPoint]:
        docs = await self._txn.find(METRICS.name, {"run_id": run_id}, Page(order_by="at"))
        return [MetricPoint(name, value, step, datetime.fromisoformat(at))
                for doc in docs for name, value, step, at in doc["points"]]


class StoredConfigs(ConfigFiles):
    """Configuration files, base64 in one document per run."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def put(self, run_id: str, data: bytes) -> None:
        await self._txn.insert(CONFIGS.name, {"_id": run_id, "data": base64.b64encode(data).decode()})

    async def get(self, run_id: str) -> bytes:
        doc = await self._txn.get(CONFIGS.name, run_id)
        return base64.b64decode(doc["data"]) if doc else b""

    async def remove(self, run_id: str) -> None:
        await self._txn.delete(CONFIGS.name, run_id)


class RunUnitOfWork(StoreUnitOfWork):
    """A transaction over run-svc's collections."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE)
        self.runs = StoredRuns(txn)
        self.metrics = StoredMetrics(txn)
        self.configs = StoredConfigs(txn)
        self.templates = StoredTemplates(txn)
        self.requests = StoredRequests(txn)


def unit_of_work_factory(
    store: DocumentStore, relay: OutboxRelay | None
) -> StoreUnitOfWorkFactory[RunUnitOfWork]:
    """run-svc's units of work on ``store``."""
    return StoreUnitOfWorkFactory(store, relay, RunUnitOfWork)
