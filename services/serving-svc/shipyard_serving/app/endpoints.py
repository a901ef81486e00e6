"""What test inferences and deployments share: one namespace of endpoint names, where they may be
served (here, or a Kubernetes cluster's KServe), the isolation rule for starting model servers here,
model versions pinned from repo-svc, and lists paged by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shipyard.kit.bubblewrap import unisolated_refusal
from shipyard.kit.caller import Caller
from shipyard.kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.paging import decode_token, encode_token
from shipyard_serving.app.ports import ClusterReader, ModelServers, RepoReader, UnitOfWork, Units
from shipyard_serving.domain.serving import (
    DEFAULT_NAMESPACE,
    KubernetesTarget,
    ModelPin,
    check_cluster,
    here,
)

RUN_SVC = "run-svc"  # the one service that asks what a cluster serves
MANIFEST_NAMESPACE = "shipyard"  # a manifest's namespace for an endpoint served here, unless asked


class Named(Protocol):
    """What a list pages by."""

    @property
    def name(self) -> str: ...


async def name_is_free(uow: UnitOfWork, name: str) -> None:
    """AlreadyExists if a test inference or a deployment has the name: they share the gateway's
    /serving/<name>/ paths."""
    if await uow.inferences.get(name) is not None or await uow.deployments.get(name) is not None:
        raise AlreadyExists(f"an endpoint named {name!r} exists already (a test inference or a deployment)")


@dataclass(frozen=True)
class Placement:
    """Where endpoints may be served: here, or a Kubernetes cluster run-svc knows (``clusters``; None
    where serving-svc reaches no run-svc). ``storage_missing``: why a cluster's KServe could not read the
    model files from this platform's blob store ("" when it can: the blob store is S3)."""

    clusters: ClusterReader | None = None
    storage_missing: str = ""

    async def cluster_for(self, caller: Caller, cluster: str, field: str) -> str:
        """The cluster an endpoint is created on ("" = here); FailedPrecondition naming ``field`` when it
        cannot serve models."""
        if here(cluster):
            return ""
        if self.clusters is None:
            raise FailedPrecondition("serving-svc reaches no clusters here", field=field)
        try:
            found = await self.clusters.get(caller, cluster)
        except NotFound as exc:
            raise FailedPrecondition(exc.message, field=field) from None
        check_cluster(field, found, self.storage_missing)
        return found.name

    async def target(self, caller: Caller, cluster: str, namespace: str) -> KubernetesTarget:
        """Where an endpoint on ``cluster`` ("" = here) is applied: ``namespace`` when given, else its
        cluster's namespace (or Kubernetes' ``default``) and ServiceAccount, as serving-svc applies it;
        for an endpoint served here, ``namespace`` or ``shipyard``."""
        if here(cluster) or self.clusters is None:
            return KubernetesTarget(namespace or MANIFEST_NAMESPACE)
        found = await self.clusters.get(caller, cluster)
        return KubernetesTarget(namespace or found.namespace or DEFAULT_NAMESPACE, found.service_account)


@dataclass(frozen=True)
class ClusterEndpoints:
    """The test inferences and deployments served on a cluster, by name."""

    inferences: list[str]
    deployments: list[str]


async def served_on(uow: Units, caller: Caller, cluster: str) -> ClusterEndpoints:
    """What is served on ``cluster``: every test inference and deployment on it, whatever its status (its
    InferenceService stays there until it is deleted). For run-svc alone, which refuses to delete a
    cluster that serves them; PermissionDenied for any other caller."""
    if caller.via != RUN_SVC:
        raise PermissionDenied("only run-svc asks which endpoints a cluster serves")
    if here(cluster):
        raise InvalidArgument("cluster", "must name a cluster")
    async with uow() as tx:
        inferences = await tx.inferences.on_cluster(cluster)
        deployments = await tx.deployments.on_cluster(cluster)
    return ClusterEndpoints(sorted(i.name for i in inferences), sorted(d.name for d in deployments))


def check_isolated(servers: ModelServers, caller: Caller, single_user: bool) -> None:
    """Where model servers cannot be isolated, the model's code (a custom predictor, a transformer,
    a pickled model) would act as the platform: only operators may start them, unless the operator
    chose single-user mode (run-svc's rule for runs)."""
    if refusal := _unisolated(servers, caller.roles, single_user):
        raise FailedPrecondition(refusal)


def restart_refusal(servers: ModelServers, cluster: str, owner_roles: frozenset[str],
                    single_user: bool) -> str:
    """Why an endpoint's servers may not start again when serving-svc starts ("" if they may): the rule
    it was created under, with its owner's roles then, so that a model server made with a sandbox never
    comes back without one because bubblewrap went away meanwhile."""
    refusal = _unisolated(servers, owner_roles, single_user) if here(cluster) else ""
    if not refusal:
        return ""
    return (f"not started again after serving-svc restarted: {refusal}; it starts when serving-svc next "
            "starts and model servers can be isolated")


def _unisolated(servers: ModelServers, roles: frozenset[str], single_user: bool) -> str:
    return unisolated_refusal(
        servers.isolation_missing(), roles, single_user, what="model servers",
        danger="a model server that is not isolated runs the model's code as the platform", start="one",
        whose="models")


async def pin(repos: RepoReader, caller: Caller, model: ModelPin) -> tuple[ModelPin, dict[str, float]]:
    """The model version (0: the latest) as repo-svc keeps it, and the metrics of the run that made it;
    NotFound when there is none."""
    found = await repos.version(caller, "model", model.model, model.version)
    return ModelPin(model.model, found.number, found.repo_id, found.manifest_digest), found.metrics


def after_name(tag: str, token: str) -> str | None:
    """The name a page of the list ``tag`` starts after; None for the first page."""
    cursor = decode_token(tag, token, 1)
    return cursor[0] if cursor else None


def next_token(tag: str, found: Sequence[Named], limit: int) -> str:
    """The token of the page after ``found`` ("" when it was the last)."""
    return encode_token(tag, found[-1].name) if len(found) == limit else ""
