"""What test inferences and deployments share: one namespace of endpoint names, the isolation rule
for starting model servers, model versions pinned from repo-svc, and lists paged by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shipyard.kit.bubblewrap import unisolated_refusal
from shipyard.kit.caller import Caller
from shipyard.kit.errors import AlreadyExists, FailedPrecondition
from shipyard.kit.paging import decode_token, encode_token
from shipyard_serving.app.ports import ModelServers, RepoReader, UnitOfWork
from shipyard_serving.domain.serving import ModelPin


class Named(Protocol):
    """What a list pages by."""

    @property
    def name(self) -> str: ...


async def name_is_free(uow: UnitOfWork, name: str) -> None:
    """AlreadyExists if a test inference or a deployment has the name: they share the gateway's
    /serving/<name>/ paths."""
    if await uow.inferences.get(name) is not None or await uow.deployments.get(name) is not None:
        raise AlreadyExists(f"an endpoint named {name!r} exists already (a test inference or a deployment)")


def check_isolated(servers: ModelServers, caller: Caller, single_user: bool) -> None:
    """Where model servers cannot be isolated, the model's code (a custom predictor, a transformer,
    a pickled model) would act as the platform: only operators may start them, unless the operator
    chose single-user mode (run-svc's rule for runs)."""
    refusal = unisolated_refusal(
        servers.isolation_missing(), caller.roles, single_user, what="model servers",
        danger="a model server that is not isolated runs the model's code as the platform", start="one",
        whose="models")
    if refusal:
        raise FailedPrecondition(refusal)


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
