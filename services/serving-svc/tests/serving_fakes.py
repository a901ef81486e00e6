"""The model servers' fake, and the test world: serving-svc composed by its own ``compose`` on it, the
kit's FakeRepoClient (model ``mnist`` with versions 1-3, code repo ``prep``) and its real store
adapters over the kit's in-memory store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message
from shipyard_serving.adapters.store import COLLECTIONS, ServingUnitOfWork
from shipyard_serving.app.deployments import Catalog, Deployments
from shipyard_serving.app.endpoints import Placement
from shipyard_serving.app.inferences import Inferences
from shipyard_serving.app.ports import Endpoint, ModelServers, Observer
from shipyard_serving.bootstrap import Adapters, Composed, compose
from shipyard_serving.domain.serving import Deployment, Inference, Observation
from shipyard_serving.settings import ServingSettings

from shipyard.kit.clients.repos import CodeSnapshot, RepoVersion
from shipyard.kit.testing import FakeRepoClient, FixedClock, RecordingUnitOfWorkFactory, memory_store
from shipyard.kit.testing.clusters import FakeClusterClient

M = TypeVar("M", bound=Message)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FakeServers(ModelServers):
    """Records what it is asked; tests play the servers' side with ``report``."""

    def __init__(self) -> None:
        self.running: dict[str, Endpoint] = {}
        self.removed: list[str] = []
        self.removed_on: dict[str, str] = {}  # endpoint → the cluster it was removed from ("" here)
        self.seen: dict[str, Observation] = {}
        self._observers: list[Observer] = []

    def watch(self, observer: Observer) -> None:
        self._observers.append(observer)

    async def ensure(self, endpoint: Endpoint) -> None:
        self.running[endpoint.name] = endpoint

    async def remove(self, name: str, cluster: str = "") -> None:
        self.running.pop(name, None)
        self.removed.append(name)
        self.removed_on[name] = cluster

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
    repos: FakeRepoClient
    servers: FakeServers
    clock: FixedClock
    settings: ServingSettings
    placement: Placement

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
        return compose(Adapters(self.uow, self.repos, servers, self.clock, self.placement), self.settings)

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
        return self.uow.messages(kind)

    def event_names(self) -> list[str]:
        """The committed events' message names in order, e.g. ['InferenceCreated', 'InferenceUpdated']."""
        return self.uow.message_names()


def repo_svc() -> FakeRepoClient:
    """repo-svc as these tests read it: model ``mnist`` with versions 1-3 (each with the accuracy the
    run that made it logged) and the code repo ``prep``."""
    repos = FakeRepoClient()
    repos.add("model", "mnist", latest=0, owner="erin", repo_id="id-mnist")
    for number in (1, 2, 3):
        repos.add_version("model", "mnist", RepoVersion(number, f"sha256:mnist-{number}", "id-mnist",
                                                        {"accuracy": 0.9 + number / 100}))
    repos.add_snapshot("prep", CodeSnapshot("c0ffee" * 6 + "ab", "sha256:code-prep"))
    return repos


async def fake_world(servers: FakeServers | None = None, single_user: bool = False,
                     clusters: FakeClusterClient | None = None, storage_missing: str = "") -> World:
    """serving-svc composed on fresh fakes (or on ``servers``), connected as in production; ``clusters``:
    run-svc's clusters, where models are served on S3 unless ``storage_missing`` says why not."""
    uow = RecordingUnitOfWorkFactory(await memory_store(COLLECTIONS), ServingUnitOfWork)
    repos, servers, clock = repo_svc(), servers or FakeServers(), FixedClock(NOW)
    settings = ServingSettings(single_user=single_user)
    placement = Placement(clusters or FakeClusterClient(), storage_missing)
    service = compose(Adapters(uow, repos, servers, clock, placement), settings)
    return World(service, uow, repos, servers, clock, settings, placement)
