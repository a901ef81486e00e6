"""The ports serving-svc's use cases depend on; adapters implement them, tests fake them."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from shipyard.kit.caller import Caller
from shipyard.kit.clients.repos import CodeSnapshot, RepoVersion
from shipyard.kit.store.unit_of_work import Emitter, RequestLog, UnitOfWorkFactory
from shipyard_serving.domain.serving import (
    CatalogEntry,
    Deployment,
    Inference,
    ModelPin,
    Observation,
    ServingCluster,
    ServingSpec,
)


class InferenceRepository(Protocol):
    """Test inferences in serving-svc's store."""

    async def get(self, name: str) -> Inference | None:
        """The inference with that name."""

    async def add(self, inference: Inference) -> Inference:
        """Store a new inference (revision 1); AlreadyExists when the name is taken."""

    async def save(self, inference: Inference) -> Inference:
        """Store a change made on ``inference.revision``; Aborted if someone changed it since."""

    async def remove(self, inference: Inference) -> None:
        """Delete it as read at ``inference.revision``; Aborted if it changed since."""

    async def page(self, project: str | None, after: str | None, limit: int) -> list[Inference]:
        """Inferences by name, after the name ``after``."""

    async def live(self) -> list[Inference]:
        """Every inference whose model servers should be running."""

    async def in_error(self) -> list[Inference]:
        """Every inference the platform could not serve (status ``error``)."""

    async def on_cluster(self, cluster: str) -> list[Inference]:
        """Every inference served on ``cluster``."""


class CatalogRepository(Protocol):
    """The model catalog in serving-svc's store."""

    async def get(self, name: str) -> CatalogEntry | None:
        """The entry with that name."""

    async def add(self, entry: CatalogEntry) -> CatalogEntry:
        """Store a new entry; AlreadyExists when the name is taken."""

    async def remove(self, entry: CatalogEntry) -> None:
        """Delete the entry as read at ``entry.revision``; Aborted if it changed since."""

    async def page(
        self, project: str | None, model: str | None, after: str | None, limit: int
    ) -> list[CatalogEntry]:
        """Entries by name, after the name ``after``."""


class DeploymentRepository(Protocol):
    """Deployments in serving-svc's store."""

    async def get(self, name: str) -> Deployment | None:
        """The deployment with that name."""

    async def add(self, deployment: Deployment) -> Deployment:
        """Store a new deployment (revision 1); AlreadyExists when the name is taken."""

    async def save(self, deployment: Deployment) -> Deployment:
        """Store a change made on ``deployment.revision``; Aborted if someone changed it since."""

    async def remove(self, deployment: Deployment) -> None:
        """Delete it as read at ``deployment.revision``; Aborted if it changed since."""

    async def page(self, project: str | None, after: str | None, limit: int) -> list[Deployment]:
        """Deployments by name, after the name ``after``."""

    async def live(self) -> list[Deployment]:
        """Every deployment whose model servers should be running."""

    async def failed(self) -> list[Deployment]:
        """Every deployment whose status is failed."""

    async def in_error(self) -> list[Deployment]:
        """Every deployment the platform could not serve (status ``error``)."""

    async def using(self, catalog_entry: str) -> list[Deployment]:
        """The deployments of a catalog entry."""

    async def on_cluster(self, cluster: str) -> list[Deployment]:
        """Every deployment served on ``cluster``."""


class UnitOfWork(Emitter, Protocol):
    """One transaction over serving-svc's repositories; events recorded in it are committed with it."""

    @property
    def inferences(self) -> InferenceRepository:
        """Test inferences in this transaction."""

    @property
    def catalog(self) -> CatalogRepository:
        """Catalog entries in this transaction."""

    @property
    def deployments(self) -> DeploymentRepository:
        """Deployments in this transaction."""

    @property
    def requests(self) -> RequestLog:
        """Create-request ids in this transaction."""


Units = UnitOfWorkFactory[UnitOfWork]
"""Starts serving-svc's units of work: ``async with uow() as tx: ...``."""


class RepoReader(Protocol):
    """Model versions and code snapshots, read from repo-svc on the caller's behalf (it owns them);
    the kit's ``RepoClient`` is the adapter."""

    async def version(self, caller: Caller, repo_kind: str, repo: str, number: int) -> RepoVersion:
        """That version (0: the latest) with its manifest and metrics; NotFound when there is none."""

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> CodeSnapshot:
        """A code repo at a commit ("" = the latest), stored for a transformer."""


class ClusterReader(Protocol):
    """Clusters, read from run-svc on the caller's behalf (it owns them); the kit's ``ClusterClient``
    is the adapter."""

    async def get(self, caller: Caller, name: str) -> ServingCluster:
        """The cluster ``name``; NotFound when there is none."""


@dataclass(frozen=True)
class Endpoint:
    """What the model servers of one endpoint serve, and how."""

    name: str
    model: ModelPin
    spec: ServingSpec
    cluster: str = ""  # "": served here; else the Kubernetes cluster whose KServe serves it


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
    async def remove(self, name: str, cluster: str = "") -> None:
        """Stop the endpoint's servers (in-flight requests finish first); ``cluster``: where they run
        ("" here)."""

    @abc.abstractmethod
    def observe(self, name: str) -> Observation:
        """The endpoint's servers now."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop every server."""
