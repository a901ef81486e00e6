"""What repo-svc does when runs happen: record which versions a run read, turn a finished run's
staged outputs into new versions — exactly once, however often the event arrives — and keep the
blobs a run stored as artifacts from the garbage collector until the run is deleted."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument, PermissionDenied, ShipyardError
from shipyard.kit.events import Event
from shipyard_repo.app.ports import ManifestStore, Units, UserDirectory
from shipyard_repo.app.repos import must_get_repo
from shipyard_repo.app.versions import NewVersion, Versions
from shipyard_repo.domain.events import VersionRefused
from shipyard_repo.domain.repos import check_may_write_versions
from shipyard_repo.domain.sources import RepoKind
from shipyard_repo.domain.versions import check_digest

log = logging.getLogger(__name__)
CONSUMER = "repo-runs"
SUBJECTS = "run.>"  # under shipyard.events


@dataclass
class RunEvents:
    """Handlers of the run events repo-svc cares about."""

    uow: Units
    versions: Versions
    blobs: ManifestStore
    users: UserDirectory

    async def apply(self, events: list[Event]) -> None:
        """Handle a batch in stream order; other run events are not repo-svc's business."""
        for event in events:
            if isinstance(event.data, events_pb2.RunCompleted):
                await self.run_completed(event.data)
            elif isinstance(event.data, events_pb2.RunSubmitted):
                await self.run_submitted(event.data)
            elif isinstance(event.data, events_pb2.RunArtifactsLogged):
                await self.artifacts_logged(event.data)
            elif isinstance(event.data, events_pb2.RunDeleted):
                await self.run_deleted(event.data)

    async def run_completed(self, run: events_pb2.RunCompleted) -> None:
        """One new version per output, produced by the run — only where the run's owner may write.

        Run-svc checked the outputs at submit; they are checked again here, as the version is
        committed, against the repo authorized then (``repo_id``) as it is now, with the owner's
        roles now (the gateway's, capped by those at submit, as the run's token is): a user whose
        role was taken, or who was disabled or deleted, while the run went makes no version. A
        refused output gets no version: the refusal is logged and published (``VersionRefused``),
        so the run says why. When the gateway cannot say, this raises and the event comes again.
        The version's request id is derived from the run and the output, so a redelivered or
        republished RunCompleted returns the version made the first time.
        """
        if not run.outputs:
            return
        owner, refusal = await self._owner_now(run.actor)
        for output in run.outputs:
            new = NewVersion(
                manifest_digest=output.manifest_digest,
                produced_by_run=run.run_id,
                produced_by_run_name=run.name,
                request_id=f"run:{run.run_id}:{output.repo_kind}/{output.repo}",
                message=f"output of run {run.name or run.run_id}",
                metrics=dict(run.metrics),
                params={**run.hyperparameters, **run.params},  # and what it logged (MLflow)
                repo_id=output.repo_id,
            )
            try:
                if refusal:
                    raise PermissionDenied(refusal)
                check_may_write_versions(owner)
                _, version = await self.versions.create(owner, _kind(output.repo_kind), output.repo, new)
            except ShipyardError as exc:
                # Retrying cannot fix a refused output, a missing repo or unstaged blobs: say so, move on.
                log.warning(
                    "run %s: output %s %r got no version: %s",
                    run.run_id,
                    output.repo_kind,
                    output.repo,
                    exc.message,
                )
                await self._refused(run, output, owner, exc.message)
                continue
            log.info("run %s: %s %r version %d", run.run_id, output.repo_kind, output.repo, version.number)

    async def _owner_now(self, actor: common_pb2.Actor) -> tuple[Caller, str]:
        """The run's owner with the roles they hold now (never more than at submit), and why nothing
        of theirs may be written ("" when it may be tried)."""
        if not actor.user:
            return Caller("", frozenset()), "the run names no owner, so nobody may write its outputs"
        roles = await self.users.roles_now(actor.user)
        if roles is None:
            return Caller(actor.user, frozenset()), (f"the run's owner {actor.user!r} is disabled or deleted "
                                                     "now, so the run's outputs are not written")
        return Caller(actor.user, frozenset(actor.roles) & roles), ""

    async def _refused(self, run: events_pb2.RunCompleted, output: common_pb2.RunOutput, owner: Caller,
                       reason: str) -> None:
        """Publish the refusal for run-svc to show on the run (its consumer keeps one note per output)."""
        async with self.uow() as uow:
            uow.record(VersionRefused(run.run_id, run.name, output.repo_kind, output.repo, output.repo_id,
                                      reason, run.project, owner))

    async def run_submitted(self, run: events_pb2.RunSubmitted) -> None:
        """Remember, on each input version, that this run read it (version detail lists them)."""
        for ref in run.inputs:
            try:
                async with self.uow() as uow:
                    repo = await must_get_repo(uow, _kind(ref.repo_kind or "dataset"), ref.repo)
                    version = await uow.versions.get(repo.id, ref.version or repo.latest_version)
                    if version is None or run.run_id in version.used_by_runs:
                        continue
                    named = {**version.run_names, run.run_id: run.name} if run.name else version.run_names
                    await uow.versions.save(
                        replace(version, used_by_runs=(*version.used_by_runs, run.run_id), run_names=named)
                    )
            except ShipyardError as exc:
                log.warning(
                    "run %s: input %s@%d not recorded: %s", run.run_id, ref.repo, ref.version, exc.message
                )

    async def artifacts_logged(self, logged: events_pb2.RunArtifactsLogged) -> None:
        """Add the blobs to the run's artifacts: the garbage collector keeps them while it exists.

        They are touched first, as a version's blobs are (see app/garbage.py): a collection that
        marked before this record commits finds them touched when it sweeps, so keeps them. One
        already collected cannot come back: that is logged.
        """
        digests = []
        for digest in dict.fromkeys(logged.digests):
            try:
                digests.append(check_digest("digests", digest))
            except InvalidArgument as exc:
                log.warning("run %s: artifact not kept: %s", logged.run_id, exc.message)
        if not logged.run_id or not digests:
            return
        missing = await self.blobs.touch(digests)
        async with self.uow() as uow:
            new = await uow.artifacts.record(logged.run_id, digests)
        if missing:
            log.warning("run %s: %d artifact blob(s) are not stored, e.g. %s", logged.run_id, len(missing),
                        missing[0])
        log.info("run %s: %d artifact blob(s) kept, %d new", logged.run_id, len(digests), new)

    async def run_deleted(self, deleted: events_pb2.RunDeleted) -> None:
        """Forget the run's artifacts: blobs nothing else names become garbage after the grace period."""
        async with self.uow() as uow:
            dropped = await uow.artifacts.forget(deleted.run_id)
        if dropped:
            log.info("run %s deleted: its %d artifact blob(s) are no longer kept", deleted.run_id, dropped)


def _kind(name: str) -> RepoKind:
    try:
        return RepoKind(name)
    except ValueError:
        raise InvalidArgument("repo_kind", f"must be dataset, featureset or model, not {name!r}") from None
