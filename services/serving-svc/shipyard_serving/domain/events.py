"""What happened to test inferences, catalog entries and deployments, as domain values: the use
cases record these, and ``shipyard_serving.app.events`` translates each into the contract's event."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.kit.caller import Caller
from shipyard_serving.domain.serving import CatalogEntry, Deployment, Inference, Observation

SYSTEM = Caller("serving-svc", frozenset())
"""The actor of what serving-svc does by itself (following what the model servers do)."""


@dataclass(frozen=True)
class InferenceCreated:
    """A test inference was created, its model pinned."""

    inference: Inference
    actor: Caller


@dataclass(frozen=True)
class InferenceUpdated:
    """A test inference's ``changed_fields`` changed; ``seen``: its model servers then, when known."""

    inference: Inference
    changed_fields: tuple[str, ...]
    actor: Caller
    seen: Observation | None = None


@dataclass(frozen=True)
class InferenceDeleted:
    """A test inference was deleted (as it was last read)."""

    inference: Inference
    actor: Caller


@dataclass(frozen=True)
class ModelPublished:
    """A model version entered the catalog."""

    entry: CatalogEntry
    actor: Caller


@dataclass(frozen=True)
class ModelUnpublished:
    """A catalog entry was removed."""

    entry: CatalogEntry
    actor: Caller


@dataclass(frozen=True)
class DeploymentCreated:
    """A catalog entry was deployed."""

    deployment: Deployment
    actor: Caller


@dataclass(frozen=True)
class DeploymentUpdated:
    """A deployment's ``changed_fields`` changed; ``seen``: its model servers then, when known."""

    deployment: Deployment
    changed_fields: tuple[str, ...]
    actor: Caller
    seen: Observation | None = None


@dataclass(frozen=True)
class DeploymentDeleted:
    """A deployment was deleted (as it was last read)."""

    deployment: Deployment
    actor: Caller


ServingEvent = (InferenceCreated | InferenceUpdated | InferenceDeleted | ModelPublished | ModelUnpublished
                | DeploymentCreated | DeploymentUpdated | DeploymentDeleted)
"""Every event serving-svc records."""
