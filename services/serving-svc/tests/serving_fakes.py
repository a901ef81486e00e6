"""In-memory fakes of serving-svc's ports, for its use-case tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from google.protobuf.message import Message
from shipyard_serving.app.ports import (
    CatalogRepository,
    DeploymentRepository,
    Endpoint,
    InferenceRepository,
    ModelReader,
    ModelServers,
    Observation,
    Observer,
    PinnedCode,
)
from shipyard_serving.domain.serving import CatalogEntry, Deployment, Inference, ModelPin

from shipyard.kit.caller import Caller
from shipyard.kit.errors import Aborted, AlreadyExists, NotFound


class FakeInferences(InferenceRepository):
    def __init__(self) -> None:
        self.rows: dict[str, Inference] = {}

    async def get(self, name: str) -> Inference | None:
        return self.rows.get(name)

    async def add(self, inference: Inference) -> Inference:
        if inference.name in self.rows:
            raise AlreadyExists(f"a test inference named {inference.name!r} exists already")
        self.rows[inference.name] = replace(inference, revision=1)
        return self.rows[inference.name]

    async def save(self, inference: Inference) -> Inference:
        if self.rows[inference.name].revision != inference.revision:
            raise Aborted("changed meanwhile")
        self.rows[inference.name] = replace(inference, revision=inference.revision + 1)
        return self.rows[inference.name]

    async def remove(self, inference: Inference) -> None:
        del self.rows[inference.name]

    async def page(self, project: str | None, after: str | None, limit: int) -> list[Inference]:
        rows = [
            i
            for n, i in sorted(self.rows.items())
            if (project is None or i.project == project) and (after is None or n > after)
        ]
        return rows[:limit]

    async def live(self) -> list[Inference]:
        return [i for i in self.rows.values() if i.status.live]


class FakeCatalog(CatalogRepository):
    def __init__(self) -> None:
        self.rows: dict[str, CatalogEntry] = {}

    async def get(self, name: str) -> CatalogEntry | None:
        return self.rows.get(name)

    async def add(self, entry: CatalogEntry) -> CatalogEntry:
        if entry.name in self.rows:
            raise AlreadyExists(f"the catalog has an entry named {entry.name!r} already")
        self.rows[entry.name] = entry
        return entry

    async def remove(self, entry: CatalogEntry) -> None:
        del self.rows[entry.name]

    async def page(
        self, project: str | None, model: str | None, after: str | None, limit: int
    ) -> list[CatalogEntry]:
        rows = [
            e
            for n, e in sorted(self.rows.items())
            if (project is None or e.project == project)
            and (model is None or e.model.model == model)
            and (after is None or n > after)
        ]
        return rows[:limit]


class FakeDeployments(DeploymentRepository):
    def __init__(self) -> None:
        self.rows: dict[str, Deployment] = {}

    async def get(self, name: str) -> Deployment | None:
        return self.rows.get(name)

    async def add(self, deployment: Deployment) -> Deployment:
        if deployment.name in self.rows:
            raise AlreadyExists(f"a deployment named {deployment.name!r} exists already")
        self.rows[deployment.name] = replace(deployment, revision=1)
        return self.rows[deployment.name]

    async def save(self, deployment: Deployment) -> Deployment:
        if self.rows[deployment.name].revision != deployment.revision:
            raise Aborted("changed meanwhile")
        self.rows[deployment.name] = replace(deployment, revision=deployment.revision + 1)
        return self.rows[deployment.name]

    async def remove(self, deployment: Deployment) -> None:
        del self.rows[deployment.name]

    async def page(self, project: str | None, after: str | None, limit: int) -> list[Deployment]:
        rows = [
            d
            for n, d in sorted(self.rows.items())
            if (project is None or d.project == project) and (after is None or n > after)
        ]
        return rows[:limit]

    async def live(self) -> list[Deployment]:
        return [d for d in self.rows.values() if d.status.live]

    async def using(self, catalog_entry: str) -> list[Deployment]:
        return [d for d in self.rows.values() if d.catalog_entry == catalog_entry]


@dataclass
class FakeRequests:
    seen: dict[str, str] = field(default_factory=dict)

    async def resource_of(self, key: str) -> str | None:
        return self.seen.get(key)

    async def remember(self, key: str, resource: str) -> None:
        self.seen[key] = resource


@dataclass
class FakeUnitOfWork:
    inferences: FakeInferences
    requests: FakeRequests
    catalog: FakeCatalog = field(default_factory=FakeCatalog)
    deployments: FakeDeployments = field(default_factory=FakeDeployments)
    published: list[tuple[Message, str, str]] = field(default_factory=list)

    def emit(self, data: Message, subject: str, project: str) -> None:
        self.published.append((data, subject, project))

    def event_names(self) -> list[str]:
        return [type(data).__name__ for data, _, _ in self.published]


@dataclass
class FakeUnitOfWorkFactory:
    """One shared state; a block that raises drops its events (as a rolled-back transaction)."""

    state: FakeUnitOfWork = field(default_factory=lambda: FakeUnitOfWork(FakeInferences(), FakeRequests()))

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeUnitOfWork]:
        before = len(self.state.published)
        saved = (
            dict(self.state.inferences.rows),
            dict(self.state.catalog.rows),
            dict(self.state.deployments.rows),
        )
        try:
            yield self.state
        except BaseException:
            del self.state.published[before:]
            self.state.inferences.rows, self.state.catalog.rows, self.state.deployments.rows = saved
            raise


class FakeModels(ModelReader):
    """Model ``mnist`` with versions 1-3; code repo ``prep``."""

    def __init__(self) -> None:
        self.models = {"mnist": [1, 2, 3]}
        self.calls: list[tuple[str, ...]] = []

    async def pin(self, caller: Caller, model: str, version: int) -> ModelPin:
        self.calls.append(("pin", caller.user, model, str(version)))
        versions = self.models.get(model)
        if not versions or (version and version not in versions):
            raise NotFound(f"model {model}@{version or 'latest'} not found")
        number = version or max(versions)
        return ModelPin(model, number, f"id-{model}", f"sha256:{model}-{number}")

    async def metrics(self, caller: Caller, model: str, version: int) -> dict[str, float]:
        return {"accuracy": 0.9 + version / 100}

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> PinnedCode:
        if repo != "prep":
            raise NotFound(f"code repo {repo!r} not found")
        return PinnedCode(commit or "c0ffee" * 6 + "ab", f"sha256:code-{repo}")


class FakeServers(ModelServers):
    """Records what it is asked; tests play the servers' side with ``report``."""

    def __init__(self) -> None:
        self.running: dict[str, Endpoint] = {}
        self.removed: list[str] = []
        self.seen: dict[str, Observation] = {}
        self._observers: list[Observer] = []

    def watch(self, observer: Observer) -> None:
        self._observers.append(observer)

    async def ensure(self, endpoint: Endpoint) -> None:
        self.running[endpoint.name] = endpoint

    async def remove(self, name: str) -> None:
        self.running.pop(name, None)
        self.removed.append(name)

    def observe(self, name: str) -> Observation:
        return self.seen.get(name, Observation(ready=0))

    async def close(self) -> None:
        self.running.clear()

    async def report(self, name: str, seen: Observation) -> None:
        self.seen[name] = seen
        for observer in self._observers:
            await observer(name, seen)
