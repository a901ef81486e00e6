"""Tracking use cases: what MLflow's API asks of runs — runs started outside the platform, params,
tags and metrics, the search, artifacts, logged models, and model versions made of them.

Reading is as for runs (anyone signed in sees every run). Writing a run's tracking data takes its
owner or an operator; a run's own token (``caller.run_id``) writes only that run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.paging import decode_token, encode_token
from shipyard_run.app.ports import ManifestWriter, RepoReader, UnitOfWork, Units
from shipyard_run.app.runs import check_may_change
from shipyard_run.domain.events import (
    ArtifactsLogged,
    MetricsLogged,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunStopped,
    RunSubmitted,
)
from shipyard_run.domain.run_search import SearchableRun, parse_filter, parse_order_by
from shipyard_run.domain.runs import MetricPoint, Run, RunKind, RunSpec, RunStatus
from shipyard_run.domain.tracking import (
    DEFAULT_EXPERIMENT,
    ENDS_AS,
    MLFLOW_STATUS,
    RUN_NAME_TAG,
    ArtifactEntry,
    ArtifactFile,
    LoggedModel,
    LoggedModelStatus,
    LoggedValue,
    TrackedStatus,
    artifact_path,
    check_params,
    check_tags,
    listing,
    manifest_of,
    metric_points,
    new_model_id,
    point_key,
    run_name_for,
    timestamp_ms,
)

SEARCH_PAGE_DEFAULT = 1000
SEARCH_PAGE_MAX = 50_000
SEARCH_TOKEN = "runs-search"  # the kit's page tokens, carrying an offset (MLflow's server pages so too)
SAVE_ATTEMPTS = 8  # concurrent loggers (autolog threads) retry a write that lost a race
EXTERNAL = "external"  # an external run's executor, as its events name it


@dataclass(frozen=True)
class ArtifactOwner:
    """Whose artifacts: a run's, or (``model_id``) a model it logged."""

    run_id: str = ""
    model_id: str = ""

    @property
    def key(self) -> str:
        """The owner's key in the artifact store."""
        return self.model_id or self.run_id


@dataclass(frozen=True)
class TrackedData:
    """What one tracking call logs."""

    metrics: tuple[LoggedValue, ...] = ()
    params: Mapping[str, str] | None = None
    tags: Mapping[str, str] | None = None


def check_may_write(run: Run, caller: Caller) -> None:
    """A run's tracking data is written by its owner or an operator — and by the run's own token only
    into that run."""
    if caller.run_id and caller.run_id != run.id:
        raise PermissionDenied(f"a run's token writes only its own run's tracking data, not run {run.name!r}")
    check_may_change(run, caller, "log to it")


async def _run_by_id(uow: UnitOfWork, run_id: str) -> Run:
    run = await uow.runs.by_id(run_id) if run_id else None
    if run is None:
        raise NotFound(f"no run with id {run_id!r}")
    return run


@dataclass
class Tracking:
    """The tracking use cases over run-svc's store."""

    uow: Units
    repos: RepoReader
    manifests: ManifestWriter | None = None
    clock: Clock = utc_now
    wake: Callable[[], None] = lambda: None

    # --- runs ---------------------------------------------------------------------------------

    async def create_run(
        self, caller: Caller, name: str, project: str, tags: Mapping[str, str], start_ms: int
    ) -> Run:
        """A run started outside the platform (MLflow's ``start_run`` on a laptop): running from now,
        never executed here, ended by its client."""
        if caller.run_id:
            raise PermissionDenied(
                "a run's token logs into its own run (MLFLOW_RUN_ID); it cannot start runs"
            )
        check_tags(tags)
        now = self.clock()
        started = now if start_ms <= 0 else datetime.fromtimestamp(start_ms / 1000, now.tzinfo)
        asked = name or tags.get(RUN_NAME_TAG, "")
        labels = {k: v for k, v in tags.items() if k != RUN_NAME_TAG}
        async with self.uow() as uow:
            taken = bool(asked) and await uow.runs.get(asked) is not None
            spec = RunSpec(
                name=run_name_for(asked, taken), kind=RunKind.TRAINING, command="", project=project
            )
            run = Run(
                id=uuid.uuid4().hex,
                spec=spec,
                owner=caller.user,
                create_time=now,
                sequence=int(now.timestamp() * 1_000_000),
                owner_roles=tuple(sorted(caller.roles)),
                status=RunStatus.RUNNING,
                start_time=started,
                labels=labels,
                external=True,
            )
            run = await uow.runs.add(run)
            uow.record(RunSubmitted(run, caller))
            uow.record(RunStarted(run, EXTERNAL))
        return run

    async def update_run(self, caller: Caller, run_id: str, status: TrackedStatus | None, end_ms: int) -> Run:
        """An external run ends as its client says; a run executed here ends by its process, so
        its status is left as it is."""
        async with self.uow() as uow:
            run = await _run_by_id(uow, run_id)
            check_may_write(run, caller)
            if not run.external or status not in ENDS_AS or run.status.final:
                return run
            now = self.clock()
            ended_at = now if end_ms <= 0 else datetime.fromtimestamp(end_ms / 1000, now.tzinfo)
            final = ENDS_AS[status]
            run = await uow.runs.save(
                run.ended(
                    final,
                    ended_at,
                    "" if final is RunStatus.COMPLETE else f"its client reported {status.value}",
                )
            )
            owner = Caller(run.owner, frozenset(run.owner_roles))
            if final is RunStatus.COMPLETE:
                uow.record(RunCompleted(run, owner))
            elif final is RunStatus.FAILED:
                uow.record(RunFailed(run, owner))
            else:
                uow.record(RunStopped(run, caller))
            return run

    async def get(self, run_id: str) -> Run:
        """The run with that id; NotFound otherwise."""
        async with self.uow() as uow:
            return await _run_by_id(uow, run_id)

    async def log(self, caller: Caller, run_id: str, data: TrackedData) -> Run:
        """Log metrics, params and tags into a run, all or nothing (everything is checked first)."""
        for attempt in range(SAVE_ATTEMPTS):
            try:
                return await self._log_once(caller, run_id, data)
            except Aborted:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _log_once(self, caller: Caller, run_id: str, data: TrackedData) -> Run:
        params = dict(data.params or {})
        tags = dict(data.tags or {})
        check_tags(tags)
        points = metric_points(data.metrics, self.clock())
        async with self.uow() as uow:
            run = await _run_by_id(uow, run_id)
            check_may_write(run, caller)
            check_params(params, run.params)
            if relinked := {v.key for v in data.metrics if v.model_id}:
                points = await _new_points(uow, run.id, points, relinked)
            if points:
                await uow.metrics.append(run.id, points)
            saved = await uow.runs.save(run.logged(params, tags, points))
            if points:
                uow.record(MetricsLogged(saved, tuple(points)))
            return saved

    async def delete_tag(self, caller: Caller, run_id: str, key: str) -> None:
        """Remove a tag; NotFound when the run has none of that key (as MLflow)."""
        async with self.uow() as uow:
            run = await _run_by_id(uow, run_id)
            check_may_write(run, caller)
            if key not in run.labels:
                raise NotFound(f"run {run.name!r} has no tag {key!r}")
            await uow.runs.save(replace(run, labels={k: v for k, v in run.labels.items() if k != key}))

    async def history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every value of one metric of a run, in the order logged."""
        async with self.uow() as uow:
            run = await _run_by_id(uow, run_id)
            return [p for p in await uow.metrics.series(run.id) if p.name == key]

    async def search(
        self,
        projects: Sequence[str],
        filter_text: str,
        order_by: Sequence[str],
        page_size: int,
        page_token: str,
    ) -> tuple[list[Run], str]:
        """Runs of the projects that match MLflow's filter, in its order, one page at a time."""
        matcher = parse_filter(filter_text)
        order = parse_order_by(order_by)
        limit = page_size or SEARCH_PAGE_DEFAULT
        if not 0 < limit <= SEARCH_PAGE_MAX:
            raise InvalidArgument("max_results", f"must be 1 to {SEARCH_PAGE_MAX} (got {page_size})")
        offset = _offset(decode_token(SEARCH_TOKEN, page_token, 1))
        async with self.uow() as uow:
            runs = await uow.runs.of_projects(tuple(projects))
        views = {run.id: run for run in runs}
        found = order.sorted(s for s in map(searchable, runs) if matcher.matches(s))
        page = [views[s.run_id] for s in found[offset : offset + limit]]
        more = offset + limit < len(found)
        return page, encode_token(SEARCH_TOKEN, str(offset + limit)) if more else ""

    # --- artifacts ------------------------------------------------------------------------------

    async def _owner_run(self, uow: UnitOfWork, owner: ArtifactOwner) -> Run:
        if owner.model_id:
            model = await uow.logged_models.by_id(owner.model_id)
            if model is None or (owner.run_id and model.run_id != owner.run_id):
                raise NotFound(f"no logged model with id {owner.model_id!r}")
            return await _run_by_id(uow, model.run_id)
        return await _run_by_id(uow, owner.run_id)

    async def record_artifacts(
        self, caller: Caller, owner: ArtifactOwner, files: Sequence[tuple[str, str, int]]
    ) -> None:
        """Record files already stored as blobs (path, digest, size) as the owner's artifacts; with
        none, only whether the caller may."""
        checked = [(artifact_path("files.path", path), digest, size) for path, digest, size in files]
        async with self.uow() as uow:
            run = await self._owner_run(uow, owner)
            check_may_write(run, caller)
            if not checked:
                return
            added = 0
            for path, digest, size in checked:
                added += await uow.artifacts.put(ArtifactFile(owner.key, path, digest, size))
            if added and not owner.model_id:
                run = await uow.runs.save(replace(run, artifact_count=run.artifact_count + added))
            uow.record(ArtifactsLogged(run, tuple(sorted({d for _, d, _ in checked})), caller))

    async def list_artifacts(self, owner: ArtifactOwner, path: str, recursive: bool) -> list[ArtifactEntry]:
        """The entries under ``path`` of the owner's artifacts."""
        directory = artifact_path("path", path, allow_root=True)
        async with self.uow() as uow:
            await self._owner_run(uow, owner)
            files = await uow.artifacts.of_owner(owner.key)
        return listing(files, directory, recursive)

    async def artifact(self, owner: ArtifactOwner, path: str) -> ArtifactFile:
        """One artifact file; NotFound naming it otherwise."""
        normal = artifact_path("path", path)
        async with self.uow() as uow:
            run = await self._owner_run(uow, owner)
            found = await uow.artifacts.get(owner.key, normal)
        if found is None:
            raise NotFound(f"run {run.name!r} has no artifact {normal!r}")
        return found

    # --- logged models ----------------------------------------------------------------------------

    async def create_model(
        self,
        caller: Caller,
        run_id: str,
        name: str,
        tags: Mapping[str, str],
        params: Mapping[str, str],
        model_type: str,
    ) -> LoggedModel:
        """A model the run logs (its files follow as the model's artifacts)."""
        check_tags(tags)
        check_params(params, {})
        async with self.uow() as uow:
            run = await _run_by_id(uow, run_id)
            check_may_write(run, caller)
            now = self.clock()
            model = LoggedModel(
                id=new_model_id(),
                name=name or "model",
                run_id=run.id,
                project=run.spec.project,
                owner=run.owner,
                create_time=now,
                update_time=now,
                tags=dict(tags),
                params=dict(params),
                model_type=model_type,
            )
            return await uow.logged_models.add(model)

    async def model(self, model_id: str) -> LoggedModel:
        """The logged model; NotFound otherwise."""
        async with self.uow() as uow:
            found = await uow.logged_models.by_id(model_id)
        if found is None:
            raise NotFound(f"no logged model with id {model_id!r}")
        return found

    async def update_model(
        self,
        caller: Caller,
        model_id: str,
        status: LoggedModelStatus | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """Finalize the model (its status) or tag it."""
        if tags:
            check_tags(tags)
        async with self.uow() as uow:
            model = await uow.logged_models.by_id(model_id)
            if model is None:
                raise NotFound(f"no logged model with id {model_id!r}")
            check_may_write(await _run_by_id(uow, model.run_id), caller)
            changed = replace(
                model,
                status=status or model.status,
                tags={**model.tags, **(tags or {})},
                update_time=self.clock(),
            )
            return await uow.logged_models.save(changed)

    async def search_models(self, projects: Sequence[str], run_id: str, name: str) -> list[LoggedModel]:
        """Logged models of these projects (or of one run), newest first."""
        async with self.uow() as uow:
            models = (
                await uow.logged_models.of_run(run_id)
                if run_id
                else await uow.logged_models.of_projects(tuple(projects))
            )
        chosen = [m for m in models if not name or m.name == name]
        return sorted(chosen, key=lambda m: (m.create_time, m.id), reverse=True)

    # --- model versions -------------------------------------------------------------------------

    async def register(
        self, caller: Caller, source: ArtifactOwner, path: str, repo: str, message: str, request_id: str
    ) -> repos_pb2.Version:
        """A new version of model repo ``repo`` made of the source's artifacts under ``path``,
        recorded as produced by its run. Registering a run's work takes its owner or an operator."""
        if self.manifests is None:
            raise FailedPrecondition("this run-svc stores no manifests: it cannot register model versions")
        directory = artifact_path("path", path, allow_root=True)
        async with self.uow() as uow:
            run = await self._owner_run(uow, source)
            check_may_write(run, caller)
            files = await uow.artifacts.of_owner(source.key)
        manifest = manifest_of(files, directory)
        if not manifest.entries:
            where = f"under {directory!r}" if directory else "at all"
            raise FailedPrecondition(f"run {run.name!r} has no artifacts {where}: nothing to register",
                                     field="source")
        digest = await self.manifests.put_manifest(manifest)
        return await self.repos.create_version(
            caller,
            "model",
            repo,
            digest,
            produced_by_run=run.id,
            produced_by_run_name=run.name,
            metrics=run.metrics,
            params={**run.spec.hyperparameters, **run.params},
            message=message or f"registered from run {run.name}",
            request_id=request_id,
        )


async def _new_points(uow: UnitOfWork, run_id: str, points: list[MetricPoint],
                      keys: set[str]) -> list[MetricPoint]:
    """``points`` less those of ``keys`` the run has already: MLflow's log_model logs the run's points
    again, linked to the model (only then is the history read: plain logging stays one write)."""
    known = {point_key(p) for p in await uow.metrics.series(run_id) if p.name in keys}
    return [p for p in points if p.name not in keys or point_key(p) not in known]


def searchable(run: Run) -> SearchableRun:
    """What MLflow's filter and order see of a run."""
    return SearchableRun(
        run_id=run.id,
        name=run.name,
        status=MLFLOW_STATUS[run.status].value,
        start_time_ms=timestamp_ms(run.start_time) if run.start_time else None,
        end_time_ms=timestamp_ms(run.end_time) if run.end_time else None,
        user=run.owner,
        experiment_id=run.spec.project or DEFAULT_EXPERIMENT,
        metrics=run.metrics,
        params={**run.spec.hyperparameters, **run.params},
        tags={**run.labels, RUN_NAME_TAG: run.name},
    )


def _offset(cursor: tuple[str, ...] | None) -> int:
    """Where a search page starts: its token's offset (0 without one)."""
    try:
        offset = int(cursor[0]) if cursor else 0
    except ValueError:
        offset = -1
    if offset < 0:
        raise InvalidArgument("page_token", "is not a token this search returned")
    return offset
