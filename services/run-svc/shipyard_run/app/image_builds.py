"""Image builds from code repos: read the build file (at once, so a bad one is refused), then build
the environment on the executor in the background; when it completes, BuildCompleted puts the
image in repo-svc's catalog. The builder survives a restart: builds not ended are taken up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.environments import environment_digest
from shipyard.kit.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from shipyard_run.app.ports import CodeFiles, EnvironmentFailed, Executor, JobEnvironment, RepoReader, Units
from shipyard_run.domain.build_files import BuildPlan, plan_build
from shipyard_run.domain.events import BuildCompleted, BuildFailed
from shipyard_run.domain.image_builds import BuildRequest, BuildStatus, ImageBuild

log = logging.getLogger(__name__)
LOG_DEFAULT = 64 << 10
LOG_MAX = 1 << 20


@dataclass(frozen=True)
class PlannedCode:
    """A code repo at a pinned commit and what its build file says the image holds."""

    commit: str
    manifest: str
    plan: BuildPlan
    digest: str


async def plan_from_code(repos: RepoReader, files: CodeFiles, caller: Caller, code: str, commit: str,
                         folder: str, image: str) -> PlannedCode:
    """Check ``code`` out at ``commit`` (empty: its latest) and read its build file in ``folder``;
    InvalidArgument naming the file and key or line when it cannot be built."""
    snapshot = await repos.snapshot_code(caller, code, commit)
    plan = plan_build(await files.text_files(snapshot.manifest_digest), folder, image)
    return PlannedCode(snapshot.commit, snapshot.manifest_digest, plan,
                       environment_digest(plan.python, plan.requirements))


@dataclass
class ImageBuilds:
    """What users do with image builds."""

    uow: Units
    repos: RepoReader
    files: CodeFiles
    executor: Executor
    wake: Callable[[], None] = lambda: None  # tells the builder there is work
    clock: Clock = utc_now

    async def build(self, caller: Caller, request: BuildRequest, request_id: str = "") -> ImageBuild:
        """Read the build file and start building ``request.name``; the first build again when the
        same inputs were built already (nothing is rebuilt)."""
        request = request.checked()
        if request_id and (made := await self._made_by(caller, request_id)) is not None:
            return made
        await self._check_name_free(caller, request.name)
        try:
            code = await plan_from_code(self.repos, self.files, caller, request.code, request.commit,
                                        request.folder, request.name)
        except NotFound as exc:
            raise NotFound(f"build.code: {exc.message}") from None
        async with self.uow() as uow:
            latest = await uow.builds.latest(request.name)
            if latest is not None and not latest.status.final:
                raise FailedPrecondition(f"image {request.name!r} is being built already (build "
                                         f"{latest.id}); wait for it to end", field="build.name")
            if latest is not None and _same(latest, request, code):
                return latest
            build = await uow.builds.add(_new_build(caller, request, code, self.clock()))
            if request_id:
                await uow.requests.remember(_request_key(caller, request_id), build.id)
        self.wake()
        return build

    async def record_for_run(self, caller: Caller, code: str, planned: PlannedCode) -> str:
        """The image a run asking for build-from-code-repo runs in: ``<code>-<commit>``, recorded as a
        build (reused when that commit was built before), so that once built it enters the catalog."""
        name = f"{code}-{planned.commit[:12]}"
        async with self.uow() as uow:
            latest = await uow.builds.latest(name)
            reusable = latest is not None and latest.status is not BuildStatus.FAILED
            if reusable and latest is not None and latest.digest == planned.digest:
                return name
            await uow.builds.add(_new_build(caller, BuildRequest(name, code, planned.commit), planned,
                                            self.clock()))
        self.wake()
        return name

    async def _made_by(self, caller: Caller, request_id: str) -> ImageBuild | None:
        async with self.uow() as uow:
            build_id = await uow.requests.resource_of(_request_key(caller, request_id))
            return None if build_id is None else await uow.builds.by_id(build_id)

    async def _check_name_free(self, caller: Caller, name: str) -> None:
        """The catalog must not hold the name, unless it is an image an earlier build of this name made."""
        try:
            await self.repos.resolve_image(caller, name, "", "")
        except NotFound:
            return
        async with self.uow() as uow:
            latest = await uow.builds.latest(name)
        if latest is None or latest.owner != caller.user:
            raise AlreadyExists(f"build.name: the catalog has an image named {name!r} already; build under "
                                "another name")

    async def get(self, name: str) -> ImageBuild:
        """The newest build of the image ``name``; NotFound otherwise."""
        async with self.uow() as uow:
            found = await uow.builds.latest(name)
        if found is None:
            raise NotFound(f"no build of an image named {name!r}")
        return found

    async def list(self, name: str = "") -> list[ImageBuild]:
        """Builds, newest first."""
        async with self.uow() as uow:
            return await uow.builds.list(name)

    async def read_log(self, name: str, offset: int, max_bytes: int) -> tuple[bytes, int, bool]:
        """The newest build's log from ``offset``, the next offset, and whether it ended and all was read."""
        if offset < 0:
            raise InvalidArgument("offset", "must not be negative")
        if max_bytes < 0:
            raise InvalidArgument("max_bytes", "must not be negative")
        build = await self.get(name)
        data = await self.executor.read_environment_log(build.digest, offset,
                                                        min(max_bytes or LOG_DEFAULT, LOG_MAX))
        return data, offset + len(data), build.status.final and not data


def _new_build(caller: Caller, request: BuildRequest, code: PlannedCode, now: datetime) -> ImageBuild:
    return ImageBuild(
        id=uuid.uuid4().hex, request=replace(request, commit=code.commit), owner=caller.user, create_time=now,
        sequence=int(now.timestamp() * 1_000_000), owner_roles=tuple(sorted(caller.roles)),
        code_manifest=code.manifest, build_file=code.plan.build_file, python=code.plan.python,
        requirements=code.plan.requirements, base_image=code.plan.base_image, digest=code.digest,
        notes=code.plan.notes)


def _same(build: ImageBuild, request: BuildRequest, code: PlannedCode) -> bool:
    """Whether ``build`` completed from the same inputs: it is what this request would make."""
    return (build.status is BuildStatus.COMPLETE and build.request.code == request.code
            and build.request.commit == code.commit and build.request.folder == request.folder
            and build.digest == code.digest)


def _request_key(caller: Caller, request_id: str) -> str:
    return f"{caller.user}:build:{request_id}"


def environment_of(build: ImageBuild) -> JobEnvironment:
    """The environment a build makes."""
    return JobEnvironment(build.name, build.python, build.requirements, build.digest)


@dataclass
class Builder:
    """Builds the environments of builds not ended yet, each in a task of its own, and records how
    each ended (BuildCompleted puts the image in the catalog)."""

    uow: Units
    executor: Executor
    clock: Clock = utc_now
    interval: float = 5.0  # how often it looks without being woken
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _running: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def wake(self) -> None:
        """Look for new builds now."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Take up the builds not ended (after a restart too), then new ones as they come."""
        try:
            while True:
                await self.start_waiting()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
        finally:
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def start_waiting(self) -> None:
        """Start a task for each build not ended that has none."""
        async with self.uow() as uow:
            waiting = await uow.builds.building()
        for build in waiting:
            if build.id not in self._running:
                task = asyncio.create_task(self.carry_out(build))
                self._running[build.id] = task
                task.add_done_callback(functools.partial(self._forget, build.id))

    def _forget(self, build_id: str, _: asyncio.Task[None]) -> None:
        self._running.pop(build_id, None)

    async def carry_out(self, build: ImageBuild) -> None:
        """Build the environment (or find it built), then record the end."""
        environment = environment_of(build)
        reused = await self.executor.environment_ready(environment)
        try:
            if not reused:
                await self.executor.build_environment(environment)
        except EnvironmentFailed as exc:
            await self._end(build, build.failed(self.clock(), str(exc)))
            return
        except Exception as exc:
            log.exception("image build %s (%s) failed", build.id, build.name)
            await self._end(build, build.failed(self.clock(), f"the environment could not be built: {exc}"))
            return
        await self._end(build, build.completed(self.clock(), reused))

    async def _end(self, build: ImageBuild, ended: ImageBuild) -> None:
        try:
            async with self.uow() as uow:
                saved = await uow.builds.save(ended)
                complete = saved.status is BuildStatus.COMPLETE
                uow.record(BuildCompleted(saved) if complete else BuildFailed(saved))
        except Aborted:  # another builder (a run-svc beside this one) recorded its end first
            log.info("image build %s of %s was ended by another builder", build.id, build.name)
            return
        log.info("image build %s of %s %s %s", build.id, build.name, saved.status.value, saved.status_reason)
