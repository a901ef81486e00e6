"""Label and alias use cases (MLflow's registered-model and model-version tags, and its aliases):
who may update a repo may label it, its versions, and name its versions by aliases. One transaction
each; a repo's change is published as RepoUpdated (a version's labels travel in no event: no event
carries a version's mutable facts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import InvalidArgument, NotFound
from shipyard_repo.app.ports import Units
from shipyard_repo.app.repos import must_get_repo
from shipyard_repo.app.versions import must_get_version
from shipyard_repo.domain.events import RepoUpdated
from shipyard_repo.domain.labels import check_alias, realias, relabel
from shipyard_repo.domain.repos import Repo, check_may_change, check_versioned
from shipyard_repo.domain.sources import RepoKind
from shipyard_repo.domain.versions import Version


@dataclass
class Labels:
    """Labels of repos and versions, and aliases of versions, over a unit-of-work factory."""

    uow: Units
    clock: Clock = utc_now

    async def label_repo(self, caller: Caller, kind: RepoKind, name: str, set_: Mapping[str, str],
                         remove: Sequence[str]) -> Repo:
        """The repo with the labels in ``set_`` added or replaced and those in ``remove`` removed
        (its owner or an operator only)."""
        async with self.uow() as uow:
            repo = await must_get_repo(uow, kind, name)
            check_may_change(repo, caller)
            labels = relabel(repo.labels, set_, remove)
            if labels == repo.labels:
                return repo
            saved = await uow.repos.save(replace(repo, labels=labels, update_time=self.clock()))
            uow.record(RepoUpdated(saved, ("labels",), caller))
            return saved

    async def label_version(self, caller: Caller, kind: RepoKind, name: str, number: int,
                            set_: Mapping[str, str], remove: Sequence[str]) -> tuple[Repo, Version]:
        """Version ``number`` of the repo, relabelled as :meth:`label_repo` relabels a repo."""
        if number < 1:
            raise InvalidArgument("number", f"name the version to label (≥ 1, got {number})")
        async with self.uow() as uow:
            repo, version = await must_get_version(uow, kind, name, number)
            check_may_change(repo, caller)
            labels = relabel(version.labels, set_, remove)
            if labels == version.labels:
                return repo, version
            return repo, await uow.versions.save(replace(version, labels=labels))

    async def set_alias(self, caller: Caller, kind: RepoKind, name: str, alias: str, version: int) -> Repo:
        """The repo with ``alias`` naming ``version`` — moved there if it named another version —
        or, with ``version`` 0, with the alias removed (its owner or an operator only)."""
        check_alias(alias)
        if version < 0:
            raise InvalidArgument("version", f"must be a version number ≥ 1, or 0 to remove the alias "
                                             f"(got {version})")
        async with self.uow() as uow:
            repo = await must_get_repo(uow, kind, name)
            check_versioned(repo)
            check_may_change(repo, caller)
            if version and await uow.versions.get(repo.id, version) is None:
                raise NotFound(f"{repo.label} has no version {version}")
            aliases = realias(repo.aliases, alias, version)
            if aliases == repo.aliases:
                return repo
            saved = await uow.repos.save(replace(repo, aliases=aliases, update_time=self.clock()))
            uow.record(RepoUpdated(saved, ("aliases",), caller))
            return saved
