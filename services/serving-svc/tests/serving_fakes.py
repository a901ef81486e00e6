"""Fakes of serving-svc's ports other than the store (repo-svc's client, the model servers), and the
test world: serving-svc composed by its own ``compose`` on those fakes and its real store adapters
over the kit's in-memory store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message
from shipyard_serving.adapters.store import COLLECTIONS, ServingUnitOfWork
from shipyard_serving.app.deployments import Catalog, Deployments
from shipyard_serving.app.inferences import Inferences
from shipyard_serving.app.ports import Endpoint, ModelServers, Observer
from shipyard_serving.bootstrap import Adapters, Composed, compose
from shipyard_serving.domain.serving import Deployment, Inference, Observation
from shipyard_serving.settings import ServingSettings

from shipyard.kit.caller import Caller
from shipyard.kit.clients.repos import CodeSnapshot, RepoVersion
from shipyard.kit.errors import NotFound
from shipyard.kit.testing import FixedClock, RecordingUnitOfWorkFactory, memory_store

M = TypeVar("M", bound=Message)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FakeRepoReader:
    """repo-svc as far as serving-svc reads it: model ``mnist`` with versions 1-3; code repo ``prep``."""

    def __init__(self) -> None:
        self.models = {"mnist": [1, 2, 3]}
        self.calls: list[tuple[str, ...]] = []

    async def version(self, caller: Caller, repo_kind: str, repo: str, number: int) -> RepoVersion:
        self.calls.append(("version", caller.user, repo_kind, repo, str(number)))
        versions = self.models.get(repo)
        if repo_kind != "model" or not versions or (number and number not in versions):
            raise NotFound(f"{repo_kind} {repo}@{number or 'latest'} not found")
        found = number or max(versions)
        return RepoVersion(found, f"sha256:{repo}-{found}", f"id-{repo}", {"accuracy": 0.9 + found / 100})

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> CodeSnapshot:
        if repo != "prep":
            raise NotFound(f"code repo {repo!r} not found")
        return CodeSnapshot(commit or "c0ffee" * 6 + "ab", f"sha256:code-{repo}")


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
        """The endpoint's servers now look like ``seen``: tell whoever watches."""
        self.seen[name] = seen
        for observer in self._observers:
            await observer(name, seen)


@dataclass
class World:
    """serving-svc as ``compose`` builds it, on the fakes and the in-memory store."""

    service: Composed
    uow: RecordingUnitOfWorkFactory[ServingUnitOfWork]
    repos: FakeRepoReader
    servers: FakeServers
    clock: FixedClock
    settings: ServingSettings

    @property
    def inferences(self) -> Inferences:
        """The test inference use cases."""
        return self.service.inferences

    @property
    def catalog(self) -> Catalog:
        """The catalog use cases."""
        return self.service.catalog

    @property
    def deployments(self) -> Deployments:
        """The deployment use cases."""
        return self.service.deployments

    def restarted(self, servers: FakeServers) -> Composed:
        """serving-svc composed again over the same store, on ``servers`` (a restart)."""
        return compose(Adapters(self.uow, self.repos, servers, self.clock), self.settings)

    async def stored_inferences(self) -> list[str]:
        """The names of the stored test inferences, by name."""
        async with self.uow() as uow:
            found: list[Inference] = await uow.inferences.find()
        return sorted(i.name for i in found)

    async def stored_deployments(self) -> list[str]:
        """The names of the stored deployments, by name."""
        async with self.uow() as uow:
            found: list[Deployment] = await uow.deployments.find()
        return sorted(d.name for d in found)

    def events(self, kind: type[M]) -> list[M]:
        """The committed events' data of one message type."""
        return [e.data for e in self.uow.published if isinstance(e.data, kind)]

    def event_names(self) -> list[str]:
        """The committed events' message names in order, e.g. ['InferenceCreated', 'InferenceUpdated']."""
        return [m.DESCRIPTOR.name for m in self.events(Message)]


async def fake_world(servers: FakeServers | None = None, single_user: bool = False) -> World:
    """serving-svc composed on fresh fakes (or on ``servers``), connected as in production."""
    uow = RecordingUnitOfWorkFactory(await memory_store(COLLECTIONS), ServingUnitOfWork)
    repos, servers, clock = FakeRepoReader(), servers or FakeServers(), FixedClock(NOW)
    settings = ServingSettings(single_user=single_user)
    service = compose(Adapters(uow, repos, servers, clock), settings)
    return World(service, uow, repos, servers, clock, settings)
