"""What repo-svc does when run-svc finishes an image build: the image enters the catalog as its
owner's (or replaces the image an earlier build of theirs made) — once, however often the event
arrives."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.environments import platform_python
from shipyard.kit.errors import ShipyardError
from shipyard.kit.events import Event
from shipyard_repo.app.images import Images
from shipyard_repo.domain.images import Image, ImageSource

log = logging.getLogger(__name__)
CONSUMER = "repo-builds"
SUBJECTS = "build.>"  # under shipyard.events


@dataclass
class BuildEvents:
    """Handlers of the image build events."""

    images: Images

    async def apply(self, events: list[Event]) -> None:
        """Handle a batch in stream order; failed builds change nothing in the catalog."""
        for event in events:
            if isinstance(event.data, events_pb2.BuildCompleted):
                await self.build_completed(event.data)

    async def build_completed(self, event: events_pb2.BuildCompleted) -> None:
        """Put the built image in the catalog; a name taken meanwhile by someone else's image (or a
        standard one) is logged and left alone."""
        build = event.build
        owner = Caller(event.actor.user or build.owner, frozenset(event.actor.roles))
        told = f"built from {build.code}@{build.commit[:12]} ({build.build_file})"
        image = Image(
            name=build.name, url=build.base_image or f"python:{platform_python()}-slim",
            description=build.description or told,
            python=build.python, requirements=tuple(build.requirements), source=ImageSource.CODE_REPO,
            code=build.code, commit=build.commit, build_file=build.build_file)
        try:
            await self.images.add_built(owner, image)
        except ShipyardError as exc:
            log.warning("image build %s: %r not put in the catalog: %s", build.id, build.name, exc.message)
