"""Test inferences and how models are served: the rules, with no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Protocol

from shipyard.kit.errors import FailedPrecondition, InvalidArgument
from shipyard.kit.rules import check_name, check_text

FRAMEWORKS = ("auto", "sklearn", "onnx", "torchscript", "custom")
REPLICAS_MAX = 20
CONCURRENCY_MAX = 10_000
GPUS_MAX = 16
_QUANTITY = re.compile(r"^(\d+(\.\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_PREDICTOR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_SCRIPT = re.compile(r"^[\w.-]+(/[\w.-]+)*\.py$")


class ServingStatus(Enum):
    """The statuses of a test inference (as for runs)."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    UPDATING = "updating"
    FAILED = "failed"  # the model could not be served: the loader's error
    ERROR = "error"  # the platform could not run the model servers (tried again when serving-svc starts)
    STOPPING = "stopping"
    STOPPED = "stopped"

    @property
    def live(self) -> bool:
        """Whether model servers should be running for it."""
        return self in (
            ServingStatus.QUEUED,
            ServingStatus.STARTING,
            ServingStatus.RUNNING,
            ServingStatus.UPDATING,
        )


@dataclass(frozen=True)
class Transformer:
    """Pre- and post-processing from a code repo at a commit."""

    code: str = ""
    commit: str = ""
    script: str = ""
    image: str = ""
    manifest_digest: str = ""  # the code snapshot, once pinned

    def checked(self) -> Transformer:
        """The transformer if its fields make sense together; InvalidArgument naming the field."""
        if not self.code:
            if self.script or self.commit:
                raise InvalidArgument(
                    "spec.transformer.code", "is required with a transformer script or commit"
                )
            return self
        check_name("spec.transformer.code", self.code)
        if not _SCRIPT.match(self.script or "") or ".." in self.script.split("/"):
            raise InvalidArgument(
                "spec.transformer.script",
                f"must be a relative path to a .py file in the code repo (got {self.script!r})",
            )
        check_text("spec.transformer.image", self.image, 500)
        return self


@dataclass(frozen=True)
class ServingSpec:
    """How a model is served."""

    serving_image: str = ""
    transformer: Transformer = field(default_factory=Transformer)
    framework: str = "auto"
    predictor: str = ""
    cpu: str = ""
    memory: str = ""
    gpus: int = 0
    min_replicas: int = 1
    max_replicas: int = 0  # 0: the same as min_replicas
    max_concurrency: int = 0

    def checked(self) -> ServingSpec:
        """The spec with defaults filled in; InvalidArgument naming the first bad field."""
        framework = self.framework or "auto"
        if framework not in FRAMEWORKS:
            raise InvalidArgument(
                "spec.framework", f"must be one of {', '.join(FRAMEWORKS)} (got {framework!r})"
            )
        if framework == "custom" and not _PREDICTOR.match(self.predictor):
            raise InvalidArgument(
                "spec.predictor",
                f"a custom model needs its predictor class as module:Class (got {self.predictor!r})",
            )
        if self.predictor and framework != "custom":
            raise InvalidArgument("spec.predictor", "is only for framework 'custom'")
        for name, value in (("spec.cpu", self.cpu), ("spec.memory", self.memory)):
            if value and not _QUANTITY.match(value):
                raise InvalidArgument(
                    name, f"must be a Kubernetes quantity like 1, 500m or 2Gi (got {value!r})"
                )
        check_text("spec.serving_image", self.serving_image, 500)
        if not 0 <= self.gpus <= GPUS_MAX:
            raise InvalidArgument("spec.gpus", f"must be between 0 and {GPUS_MAX} (got {self.gpus})")
        minimum = self.min_replicas or 1
        maximum = self.max_replicas or minimum
        if not 1 <= minimum <= REPLICAS_MAX:
            raise InvalidArgument(
                "spec.min_replicas", f"must be between 1 and {REPLICAS_MAX} (got {minimum})"
            )
        if not minimum <= maximum <= REPLICAS_MAX:
            raise InvalidArgument(
                "spec.max_replicas",
                f"must be between min_replicas ({minimum}) and {REPLICAS_MAX} (got {maximum})",
            )
        if not 0 <= self.max_concurrency <= CONCURRENCY_MAX:
            raise InvalidArgument(
                "spec.max_concurrency",
                f"must be between 0 (no limit) and {CONCURRENCY_MAX} (got {self.max_concurrency})",
            )
        return replace(
            self,
            framework=framework,
            min_replicas=minimum,
            max_replicas=maximum,
            transformer=self.transformer.checked(),
        )


@dataclass(frozen=True)
class ModelPin:
    """A model version, pinned: what the model servers load."""

    model: str
    version: int = 0
    model_id: str = ""
    manifest_digest: str = ""

    @property
    def label(self) -> str:
        """``mnist@3``."""
        return f"{self.model}@{self.version}" if self.version else self.model


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
    url: str = ""  # on a cluster: where KServe answers for the endpoint (its InferenceService's status.url)
    waiting: str = ""  # why the servers are not ready yet, when the cluster says (KServe's condition)


@dataclass(frozen=True)
class Inference:
    """A test inference: one model version served for trying it out."""

    id: str
    name: str
    project: str
    model: ModelPin
    spec: ServingSpec
    owner: str
    create_time: datetime
    update_time: datetime
    description: str = ""
    status: ServingStatus = ServingStatus.QUEUED
    status_reason: str = ""
    revision: int = 0
    cluster: str = ""  # "": served here; else the Kubernetes cluster whose KServe serves it
    # The owner's roles at create: whether its servers may start unsandboxed again after a restart.
    owner_roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        check_name("inference.name", self.name)
        check_text("inference.description", self.description, 2000)
        if not self.model.model:
            raise InvalidArgument("inference.model.model", "is required: the model repo to serve")

    @property
    def endpoint(self) -> str:
        """Where the gateway answers for it, once running."""
        return f"/serving/{self.name}/v2/models/{self.model.model}"

    def moved_to(self, status: ServingStatus, reason: str, now: datetime) -> Inference:
        """The inference in ``status``; FailedPrecondition once it is stopped."""
        if self.status is ServingStatus.STOPPED and status is not ServingStatus.STOPPED:
            raise FailedPrecondition(f"inference {self.name!r} is stopped")
        return replace(self, status=status, status_reason=reason, update_time=now)


@dataclass(frozen=True)
class CatalogEntry:
    """A model version published to the catalog, with the serving settings it deploys with."""

    id: str
    name: str
    model: ModelPin
    defaults: ServingSpec
    owner: str
    create_time: datetime
    project: str = ""
    description: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    revision: int = 0

    def __post_init__(self) -> None:
        check_name("entry.name", self.name)
        check_text("entry.description", self.description, 2000)


@dataclass(frozen=True)
class Deployment:
    """A catalog entry served behind a stable endpoint; its model can be swapped."""

    id: str
    name: str
    catalog_entry: str
    model: ModelPin
    spec: ServingSpec
    owner: str
    create_time: datetime
    update_time: datetime
    project: str = ""
    description: str = ""
    status: ServingStatus = ServingStatus.QUEUED
    status_reason: str = ""
    previous_model: ModelPin | None = None
    revision: int = 0
    cluster: str = ""  # "": served here; else the Kubernetes cluster whose KServe serves it (fixed at create)
    # What served before the last swap, with previous_model: what a failed swap goes back to.
    previous_spec: ServingSpec | None = None
    previous_catalog_entry: str = ""
    # The owner's roles at create: whether its servers may start unsandboxed again after a restart.
    owner_roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        check_name("deployment.name", self.name)
        check_text("deployment.description", self.description, 2000)

    @property
    def endpoint(self) -> str:
        """Where the gateway answers for it."""
        return f"/serving/{self.name}/v2/models/{self.model.model}"

    @property
    def still_serves(self) -> bool:
        """Whether its model servers should be running: it is live, or it failed a swap and went back to
        what served before it (model, spec and catalog entry), which goes on serving. A deployment that
        failed otherwise (its first model never loaded, its servers failed later, its cluster refused the
        swap) has nothing known to serve, and re-applying it would roll the failing spec out again."""
        if self.status.live:
            return True
        return (
            self.status is ServingStatus.FAILED
            and self.previous_model is not None
            and self.model == self.previous_model
            and self.spec == (self.previous_spec or self.spec)
            and self.catalog_entry == (self.previous_catalog_entry or self.catalog_entry)
        )

    def moved_to(self, status: ServingStatus, reason: str, now: datetime) -> Deployment:
        """The deployment in ``status``."""
        return replace(self, status=status, status_reason=reason, update_time=now)

    def swapped_back(self, reason: str, now: datetime) -> Deployment:
        """The deployment back on what served before its last swap (the model, spec and catalog entry),
        failed with ``reason``; itself when there was no swap."""
        if self.previous_model is None:
            return self
        return replace(self, model=self.previous_model, spec=self.previous_spec or self.spec,
                       catalog_entry=self.previous_catalog_entry or self.catalog_entry,
                       status=ServingStatus.FAILED, status_reason=reason, update_time=now)

    def swapped_to(self, entry: CatalogEntry, spec: ServingSpec, now: datetime) -> Deployment:
        """The deployment about to serve ``entry`` with ``spec``; the current model becomes the previous."""
        if self.status is ServingStatus.UPDATING:
            raise FailedPrecondition(
                f"deployment {self.name!r} is being updated already; wait until it settles"
            )
        return replace(
            self,
            catalog_entry=entry.name,
            model=entry.model,
            spec=spec,
            previous_model=self.model,
            previous_spec=self.spec,
            previous_catalog_entry=self.catalog_entry,
            status=ServingStatus.UPDATING,
            status_reason="",
            update_time=now,
        )


def after_restart(status: ServingStatus, reason: str, refusal: str) -> tuple[ServingStatus, str] | None:
    """The status and reason of an endpoint found when serving-svc starts (None: it stays as it is):
    ``error`` saying why when its servers may not start now (``refusal``); from ``error`` back to
    ``queued`` once they may."""
    if refusal:
        return None if (status, reason) == (ServingStatus.ERROR, refusal) else (ServingStatus.ERROR, refusal)
    return (ServingStatus.QUEUED, "") if status is ServingStatus.ERROR else None


HERE = ("", "local")  # the cluster names of the platform's own machine
KUBERNETES = "kubernetes"


class ServingCluster(Protocol):
    """A cluster as run-svc describes it, in what serving decides by."""

    @property
    def name(self) -> str:
        """Its name."""

    @property
    def kind(self) -> str:
        """slurm, kubernetes or lsf."""

    @property
    def login_required(self) -> bool:
        """Whether each user signs in to it with a login of their own."""

    @property
    def namespace(self) -> str:
        """A Kubernetes cluster's namespace ("" = ``default``)."""

    @property
    def service_account(self) -> str:
        """The ServiceAccount its model servers run as ("" = the namespace's default)."""


@dataclass(frozen=True)
class KubernetesTarget:
    """Where an endpoint's InferenceService goes: its namespace and the ServiceAccount its model servers
    run as ("" = the namespace's default)."""

    namespace: str
    service_account: str = ""


DEFAULT_NAMESPACE = "default"  # Kubernetes' own, for a cluster whose record names none


def here(cluster: str) -> bool:
    """Whether ``cluster`` names the platform's own machine ("" or "local")."""
    return cluster in HERE


def check_cluster(field: str, cluster: ServingCluster, storage_missing: str) -> None:
    """FailedPrecondition naming ``field`` when ``cluster`` cannot serve models: only a Kubernetes
    cluster's KServe does, with the platform's kubeconfig for everyone (no one's own login), reading
    the model files from S3 (``storage_missing``: why the blob store is not S3, "" when it is)."""
    if cluster.kind != KUBERNETES:
        raise FailedPrecondition(f"cluster {cluster.name!r} is a {cluster.kind} cluster; test inferences and "
                                 "deployments run here or on a Kubernetes cluster (KServe)", field=field)
    if cluster.login_required:
        raise FailedPrecondition(f"cluster {cluster.name!r} needs each user's own login, and model servers "
                                 "run with the platform's kubeconfig", field=field)
    if storage_missing:
        raise FailedPrecondition(f"cluster {cluster.name!r} cannot serve models from here: {storage_missing}",
                                 field=field)


def overlay(defaults: ServingSpec, given: ServingSpec, fields: frozenset[str]) -> ServingSpec:
    """``defaults`` with the ``fields`` of ``given`` laid over them (a field mask, by spec field name).
    More min_replicas than the defaults' max_replicas raise the maximum with it, unless both are given."""
    unknown = fields - set(ServingSpec.__dataclass_fields__)
    if unknown:
        raise InvalidArgument("update_mask", f"unknown spec fields: {', '.join(sorted(unknown))}")
    merged = replace(defaults, **{f: getattr(given, f) for f in fields})
    if "max_replicas" not in fields and merged.max_replicas < merged.min_replicas:
        merged = replace(merged, max_replicas=merged.min_replicas)
    return merged
