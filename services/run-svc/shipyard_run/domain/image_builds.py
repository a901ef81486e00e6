"""An image build: a code repo's build file at a commit, turned into an environment, then a catalog image.

A build is recorded once its code was checked out (cloned) and its build file read — a bad build file
is refused before anything exists. It is then building (the environment is made on the executor),
and ends complete — the image enters the catalog — or failed, saying why. A build of an environment
that exists already completes at once (``reused``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from shipyard.kit.errors import InvalidArgument
from shipyard.kit.rules import check_name, check_text

DESCRIPTION_MAX = 1000
FOLDER_MAX = 1024
# The image a run names to have its code repo's environment built first (the product's word).
FROM_CODE_REPO = "build-from-code-repo"


class BuildStatus(Enum):
    """Where a build is."""

    BUILDING = "building"
    COMPLETE = "complete"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """Whether the build has ended."""
        return self in (BuildStatus.COMPLETE, BuildStatus.FAILED)


@dataclass(frozen=True)
class BuildRequest:
    """What a user asks to build: the image ``name`` from ``code`` at ``commit`` (empty: the latest),
    its build file in ``folder``."""

    name: str
    code: str
    commit: str = ""
    folder: str = ""
    description: str = ""

    def checked(self) -> BuildRequest:
        """This request, or InvalidArgument naming the first bad field."""
        check_name("build.name", self.name)
        if self.name == FROM_CODE_REPO:
            raise InvalidArgument("build.name", f"{FROM_CODE_REPO!r} is what a run names to build from its "
                                                "code repo; pick another name for the image")
        check_name("build.code", self.code)
        check_text("build.commit", self.commit, 64, multiline=False)
        check_text("build.folder", self.folder, FOLDER_MAX, multiline=False)
        if ".." in self.folder.split("/"):
            raise InvalidArgument("build.folder", "must stay inside the repo (no '..')")
        check_text("build.description", self.description, DESCRIPTION_MAX)
        return self


@dataclass(frozen=True)
class ImageBuild:
    """A build and where it is."""

    id: str
    request: BuildRequest
    owner: str
    create_time: datetime
    sequence: int  # newest first in lists
    owner_roles: tuple[str, ...] = ()
    status: BuildStatus = BuildStatus.BUILDING
    status_reason: str = ""
    code_manifest: str = ""
    build_file: str = ""
    python: str = ""
    requirements: tuple[str, ...] = ()
    base_image: str = ""
    digest: str = ""
    reused: bool = False
    notes: tuple[str, ...] = ()
    end_time: datetime | None = None
    revision: int = 0

    @property
    def name(self) -> str:
        """The image it makes."""
        return self.request.name

    def completed(self, now: datetime, reused: bool) -> ImageBuild:
        """The environment exists (built now, or before: ``reused``)."""
        return replace(self, status=BuildStatus.COMPLETE, status_reason="", reused=reused, end_time=now)

    def failed(self, now: datetime, reason: str) -> ImageBuild:
        """The build could not be carried through; ``reason`` says why."""
        return replace(self, status=BuildStatus.FAILED, status_reason=reason, end_time=now)
