"""The ports serving-svc's use cases depend on; adapters implement them, tests fake them."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import Message

from shipyard.kit.caller import Caller
from shipyard_serving.domain.serving import CatalogEntry, Deployment, Inference, ModelPin, ServingSpec


class InferenceRepository(abc.ABC):
    """Test inferences in serving-svc's store."""

    @abc.abstractmethod
    async def get(self, name: str) -> Inference | None:
        """The inference with that name."""

    @abc.abstractmethod
    async def add(self, inference: Inference) -> Inference:
        """Store a new inference (revision 1); AlreadyExists when the name is taken."""

    @abc.abstractmethod
    async def save(self, inference: Inference) -> Inference:
        """Store a change made on ``inference.revision``; Aborted if someone changed it since."""

    @abc.abstractmethod
    async def remove(self, inference: Inference) -> None:
        """Delete it as read at ``inference.revision``."""

    @abc.abstractmethod
    async def page(self, project: str | None, after: str | None, limit: int) -> list[Inference]:
        """Inferences by name, after the name ``after``."""

    @abc.abstractmethod
    async def live(self) -> list[Inference]:
        """Every inference whose model servers should be running."""


class CatalogRepository(abc.ABC):
    """The model catalog in serving-svc's store."""

    @abc.abstractmethod
    async def get(self, name: str) -> CatalogEntry | None:
        """The entry with that name."""

    @abc.abstractmethod
    async def add(self, entry: CatalogEntry) -> CatalogEntry:
        """Store a new entry; AlreadyExists when the name is taken."""

    @abc.abstractmethod
    async def remove(self, entry: CatalogEntry) -> None:
        """Delete the entry."""

    @abc.abstractmethod
    async def page(
        self, project: str | None, model: str | None, after: str | None, limit: int
    ) -> list[CatalogEntry]:
        """Entries by name, after the name ``after``."""


class DeploymentRepository(abc.ABC):
    """Deployments in serving-svc's store."""

    @abc.abstractmethod
    async def get(self, name: str) -> Deployment | None:
        """The deployment with that name."""

    @abc.abstractmethod
    async def add(self, deployment: Deployment) -> Deployment:
        """Store a new deployment (revision 1); AlreadyExists when the name is taken."""

    @abc.abstractmethod
    async def save(self, deployment: Deployment) -> Deployment:
        """Store a change made on ``deployment.revision``; Aborted if someone changed it since."""

    @abc.abstractmethod
    async def remove(self, deployment: Deployment) -> None:
        """Delete it."""

    @abc.abstractmethod
    async def page(self, project: str | None, after: str | None, limit: int) -> list[Deployment]:
        """Deployments by name, after the name ``after``."""

    @abc.abstractmethod
    async def live(self) -> list[Deployment]:
        """Every deployment whose model servers should be running."""

    @abc.abstractmethod
    async def using(self, catalog_entry: str) -> list[Deployment]:
        """The deployments of a catalog entry."""


class RequestLog(Protocol):
    """Create-request ids and what each made."""

    async def resource_of(self, key: str) -> str | None: ...

    async def remember(self, key: str, resource: str) -> None: ...


class UnitOfWork(Protocol):
    """One transaction over serving-svc's repositories; emitted events are committed with it."""

    @property
    def inferences(self) -> InferenceRepository: ...

    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def deployments(self) -> DeploymentRepository: ...

    @property
    def requests(self) -> RequestLog: ...

    def emit(self, data: Message, subject: str, project: str) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Starts a unit of work: ``async with uow() as tx: ...``."""

    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]: ...


@dataclass(frozen=True)
class PinnedCode:
    """A code repo at a commit, as repo-svc stored it."""

    commit: str
    manifest_digest: str


class ModelReader(abc.ABC):
    """Model versions and code snapshots, read from repo-svc on the caller's behalf."""

    @abc.abstractmethod
    async def pin(self, caller: Caller, model: str, version: int) -> ModelPin:
        """The model version (0: the latest), with its manifest; NotFound when there is none."""

    @abc.abstractmethod
    async def metrics(self, caller: Caller, model: str, version: int) -> dict[str, float]:
        """What the run that made the version logged last."""

    @abc.abstractmethod
    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> PinnedCode:
        """A code repo at a commit ("" = the latest)."""


@dataclass(frozen=True)
class Endpoint:
    """What the model servers of one endpoint serve, and how."""

    name: str
    model: ModelPin
    spec: ServingSpec


@dataclass(frozen=True)
class ReplicaState:
    """One model server as it is now."""

    address: str
    ready: bool
    restarts: int = 0
    last_exit: str = ""
    model: str = ""


@dataclass(frozen=True)
class Observation:
    """What the model servers of an endpoint look like now."""

    ready: int
    replicas: list[ReplicaState] = field(default_factory=list)
    failure: str = ""  # the model cannot be served: the loader's error
    serving: str = ""  # the model version the ready replicas serve (mnist@3)


Observer = Callable[[str, Observation], Awaitable[None]]


class ModelServers(abc.ABC):
    """The running model servers of every endpoint (local processes, or KServe on a cluster)."""

    @abc.abstractmethod
    def watch(self, observer: Observer) -> None:
        """Tell ``observer`` (endpoint name, observation) whenever an endpoint's servers change."""

    @abc.abstractmethod
    async def ensure(self, endpoint: Endpoint) -> None:
        """Make the endpoint's servers serve what it says: start them, leave them running, or —
        when they serve something else — start the new ones beside them, switch the traffic once
        they are ready and let the old ones finish their requests (the old ones keep serving
        when the new model cannot be loaded)."""

    def isolation_missing(self) -> str:
        """Why model servers cannot be isolated from the platform here; "" when they are (a cluster's
        KServe isolates them in pods)."""
        return ""

    @abc.abstractmethod
    async def remove(self, name: str) -> None:
        """Stop the endpoint's servers (in-flight requests finish first)."""

    @abc.abstractmethod
    def observe(self, name: str) -> Observation:
        """The endpoint's servers now."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop every server."""
