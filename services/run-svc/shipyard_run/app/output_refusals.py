"""What run-svc does when repo-svc refuses a finished run's output (``VersionRefused``): the run says
why its output was not kept, on its page, in ``shipyard run get`` and beside its status."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.events import Event
from shipyard_run.app.ports import Units

log = logging.getLogger(__name__)
CONSUMER = "run-refusals"
SUBJECTS = "version.refused"  # under shipyard.events


@dataclass
class OutputRefusals:
    """The consumer of repo-svc's refusals of runs' outputs."""

    uow: Units

    async def apply(self, events: list[Event]) -> None:
        """Handle a batch in stream order; a refusal told twice (a redelivery, or repo-svc refusing a
        redelivered RunCompleted again) leaves one note."""
        for event in events:
            if isinstance(event.data, events_pb2.VersionRefused):
                await self.refused(event.data)

    async def refused(self, refusal: events_pb2.VersionRefused) -> None:
        """Note the refusal on its run; a run deleted since is not there to tell."""
        async with self.uow() as uow:
            run = await uow.runs.by_id(refusal.run_id)
            if run is None:
                log.info("run %s is gone: its refused output %s %r is not noted", refusal.run_id,
                         refusal.repo_kind, refusal.repo)
                return
            told = run.output_not_kept(refusal.repo_kind, refusal.repo, refusal.reason)
            if told is not run:
                await uow.runs.save(told)
        log.info("run %s: output %s %r was not kept: %s", run.name, refusal.repo_kind, refusal.repo,
                 refusal.reason)
