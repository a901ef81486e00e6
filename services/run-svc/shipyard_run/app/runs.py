"""Run use cases: submit (validate, pin inputs, queue), read, list, stop, logs, metrics."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from shipyard.kit.bubblewrap import unisolated_refusal as isolation_refusal
from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.paging import decode_token, encode_token, page_limit
from shipyard.kit.rules import NAME_MAX
from shipyard_run.app.clusters import must_get_cluster
from shipyard_run.app.executors import Executors
from shipyard_run.app.image_builds import ImageBuilds, plan_from_code
from shipyard_run.app.ports import (
    CodeFiles,
    EventFiles,
    Executor,
    RepoReader,
    RunFilter,
    TrialSearch,
    UnitOfWork,
    Units,
)
from shipyard_run.domain.clusters import LOCAL, check_fits
from shipyard_run.domain.events import RunDeleted, RunStopped, RunSubmitted, StudyStarted
from shipyard_run.domain.image_builds import FROM_CODE_REPO
from shipyard_run.domain.runs import (
    CONFIG_MAX,
    Environment,
    Input,
    MetricPoint,
    OutputTarget,
    Run,
    RunSpec,
    RunStatus,
)
from shipyard_run.domain.studies import TRIAL_NUMBER_SUFFIX, Study
from shipyard_run.domain.tuning import TuningSpec, parse_tuning

LOGS_DEFAULT = 64 << 10
LOGS_MAX = 1 << 20
LOGS_OFFSET_MAX = 1 << 40  # far past any log, and within what every file system can seek to
PAGE_TAG = "runs"  # what page tokens of the run list carry


def unisolated_refusal(executor: Executor, roles: Iterable[str], single_user: bool) -> str:
    """Why a run of someone holding ``roles`` may not start on ``executor`` now ("" if it may).

    Where runs cannot be isolated, a run could act as the platform: only operators may start one,
    unless the operator chose single-user mode. Checked at submit, and again when the scheduler
    starts the run (run-svc may have restarted without isolation meanwhile)."""
    return isolation_refusal(executor.isolation_missing(), roles, single_user, what="runs",
                             danger="a run that is not isolated acts as the platform", start="runs",
                             whose="runs")


@dataclass
class Runs:
    """What users do with runs."""

    uow: Units
    repos: RepoReader
    executors: Executors
    files: CodeFiles
    builds: ImageBuilds
    wake: Callable[[], None] = lambda: None  # tells the scheduler there is work
    wake_studies: Callable[[], None] = lambda: None  # tells the studies' driver there is a new study
    clock: Clock = utc_now
    # The operator's choice to let anyone's runs share the machine when they cannot be isolated.
    single_user: bool = False
    search: TrialSearch | None = None  # the studies' search algorithms (None: no studies here)
    events: EventFiles | None = None  # reads TensorFlow event files (None: that collector is refused)
    # Stops a study (set by the composition root to the studies' use case): a study's run stops its study.
    stop_study: Callable[[Caller, str], Awaitable[object]] | None = None

    async def submit(self, caller: Caller, spec: RunSpec, config: bytes = b"", request_id: str = "",
                     tuning: bytes = b"", keep_trial_outputs: bool = False) -> Run:
        """Queue a run, its inputs pinned to versions, and emit RunSubmitted; nothing is queued on error.

        With a ``tuning`` file the run is a hyperparameter study: checked as any run, it starts at once (its
        trials run, it never does itself) and emits StudyStarted too."""
        spec = spec.checked(len(config))
        study = self._tuning(spec, tuning) if tuning else None
        if keep_trial_outputs and study is None:
            raise InvalidArgument("keep_trial_outputs",
                                  "is for hyperparameter studies: give a tuning file too")
        if config and not spec.config_file_name:
            spec = replace(spec, config_file_name="config")
        if study is not None:
            await self._check_collector(spec, study[1].metrics_collector.kind)
        if spec.cluster in ("", LOCAL):
            self._check_local(caller, spec)
        else:
            await self._check_cluster(spec, caller)
        if request_id and (made := await self._made_by(caller, request_id)) is not None:
            return made
        spec = replace(spec, inputs=tuple([await self._pin(caller, i, n) for n, i in enumerate(spec.inputs)]))
        spec = replace(spec, outputs=tuple([await self._authorize(caller, t, n)
                                            for n, t in enumerate(spec.outputs)]))
        if spec.image == FROM_CODE_REPO:  # the environment comes from the code: last, as the clone
            spec = await self._from_code_repo(caller, spec)
        else:
            spec = replace(spec, environment=await self._environment(caller, spec))
        if spec.code and not spec.code_manifest:  # last: the costliest check (a clone, the first time)
            code = await self.repos.snapshot_code(caller, spec.code, spec.commit)
            spec = replace(spec, commit=code.commit, code_manifest=code.manifest_digest)
        now = self.clock()
        run = Run(id=uuid.uuid4().hex, spec=spec, owner=caller.user, create_time=now,
                  sequence=int(now.timestamp() * 1_000_000), owner_roles=tuple(sorted(caller.roles)))
        if study is not None:
            run = replace(run, tuning=True, status=RunStatus.RUNNING, start_time=now,
                          status_reason="hyperparameter study: its trials run")
        async with self.uow() as uow:
            if await uow.runs.get(spec.name) is not None:
                raise AlreadyExists(f"a run named {spec.name!r} exists already; runs are named once")
            run = await uow.runs.add(run)
            if config:
                await uow.configs.put(run.id, config)
            if request_id:
                await uow.requests.remember(_request_key(caller, request_id), run.name)
            uow.record(RunSubmitted(run, caller))
            if study is not None:
                text, tuning_spec = study
                added = await uow.studies.add(Study(
                    id=run.id, name=run.name, owner=run.owner, project=spec.project, tuning=text,
                    spec=tuning_spec.to_dict(), seed=int(run.id[:8], 16), create_time=now,
                    keep_trial_outputs=keep_trial_outputs))
                uow.record(StudyStarted(added, caller))
        self.wake()
        if study is not None:
            self.wake_studies()
        return run

    def _tuning(self, spec: RunSpec, data: bytes) -> tuple[str, TuningSpec]:
        """The tuning file's text and spec, checked against what this run-svc can search and collect;
        InvalidArgument naming the field (``tuning.…``) otherwise."""
        if len(data) > CONFIG_MAX:
            raise InvalidArgument("tuning",
                                  f"must be at most {CONFIG_MAX >> 10} KiB (got {len(data):,} bytes)")
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise InvalidArgument("tuning", "must be UTF-8 text: a Katib Experiment in YAML") from None
        tuning = parse_tuning(text)
        if self.search is None:
            raise FailedPrecondition("hyperparameter studies are not available: this run-svc has no search "
                                     "algorithms", field="tuning")
        self.search.check(tuning)
        if len(spec.name) + TRIAL_NUMBER_SUFFIX > NAME_MAX:
            most = NAME_MAX - TRIAL_NUMBER_SUFFIX
            raise InvalidArgument("run.name", f"a study's name is at most {most} characters: its trials "
                                              "are named <study>-t001, <study>-t002, …")
        return text, tuning

    async def _check_collector(self, spec: RunSpec, kind: str) -> None:
        """File and TensorFlowEvent collectors read the trial's files, on every executor (over SSH and on
        the login node run-svc reads them there; through slurmrestd and on Kubernetes the job sends them),
        TensorFlow event files only where tensorboard is installed."""
        field_name = "tuning.metricsCollectorSpec.collector.kind"
        if kind == "TensorFlowEvent" and (missing := self.events.missing() if self.events else "no reader"):
            raise InvalidArgument(field_name, f"the TensorFlowEvent collector is not available: {missing}")

    def _check_local(self, caller: Caller, spec: RunSpec) -> None:
        """A local run fits this machine's GPUs, and may start where runs cannot be isolated."""
        local = self.executors.local
        if spec.gpus > (total := local.gpu_count()):
            raise FailedPrecondition(f"{spec.gpus} GPUs asked for, but the {local.name} executor "
                                     f"has {total}", field="run.gpus")
        for field_name, value in (("run.time_limit", spec.time_limit), ("run.account", spec.account)):
            if value:
                raise FailedPrecondition("a time limit and an account are for runs on a Slurm or LSF "
                                         "cluster (--cluster)", field=field_name)
        if spec.distribution.distributed:
            raise FailedPrecondition("distributed runs spread over a cluster's nodes: name one (--cluster)",
                                     field="run.distribution")
        self._check_isolated(caller)

    async def _check_cluster(self, spec: RunSpec, caller: Caller) -> None:
        """A cluster the run names exists, is served here, offers what the run asks for, and has the
        caller's own login where each user signs in."""
        async with self.uow() as uow:
            cluster = await must_get_cluster(uow, spec.cluster)
        if refusal := self.executors.supports(cluster):
            raise FailedPrecondition(f"cluster {cluster.name!r}: {refusal}", field="run.cluster")
        check_fits(cluster, spec)
        if missing := await self.executors.missing_login(cluster, caller.user):
            raise FailedPrecondition(missing, field="run.cluster")

    def _check_isolated(self, caller: Caller) -> None:
        if refusal := unisolated_refusal(self.executors.local, caller.roles, self.single_user):
            raise FailedPrecondition(refusal)

    async def _made_by(self, caller: Caller, request_id: str) -> Run | None:
        async with self.uow() as uow:
            name = await uow.requests.resource_of(_request_key(caller, request_id))
            return None if name is None else await uow.runs.get(name)

    async def _pin(self, caller: Caller, item: Input, index: int) -> Input:
        try:
            pinned = await self.repos.version(caller, item.repo_kind, item.repo, item.version)
        except NotFound as exc:
            raise NotFound(f"run.inputs[{index}]: {exc.message}") from None
        return replace(item, version=pinned.number, manifest_digest=pinned.manifest_digest,
                       repo_id=pinned.repo_id)

    async def _from_code_repo(self, caller: Caller, spec: RunSpec) -> RunSpec:
        """The run's code pinned, and the environment its build file defines; the image is recorded as
        a build of its own (``<code>-<commit>``), which enters the catalog once built."""
        if not spec.code:
            raise InvalidArgument("run.image", f"{FROM_CODE_REPO} builds the image from the run's code repo: "
                                               "name one (--code)")
        code = await plan_from_code(self.repos, self.files, caller, spec.code, spec.commit, "", "")
        image = await self.builds.record_for_run(caller, spec.code, code)
        environment = Environment(image, code.plan.base_image, code.plan.python, code.plan.requirements,
                                  code.digest)
        return replace(spec, commit=code.commit, code_manifest=code.manifest, environment=environment)

    async def _environment(self, caller: Caller, spec: RunSpec) -> Environment:
        """The image the run asked for (by name, or its framework's standard image; the default image
        with neither), pinned as the catalog resolves it now."""
        framework = "" if spec.image or spec.framework == "custom" else spec.framework
        field_name = "run.image" if spec.image else "run.framework"
        try:
            image = await self.repos.resolve_image(caller, spec.image, framework,
                                                   spec.framework_version if framework else "")
        except NotFound as exc:
            raise NotFound(f"{field_name}: {exc.message}") from None
        except FailedPrecondition as exc:
            raise FailedPrecondition(exc.message, field=field_name) from None
        return Environment(image.name, image.url, image.python, image.requirements, image.digest,
                           image.framework, image.framework_version)

    async def _authorize(self, caller: Caller, target: OutputTarget, index: int) -> OutputTarget:
        """The output, bound to the repo the caller may write (repo-svc's rule: owner or operator)."""
        try:
            repo_id = await self.repos.check_write(caller, target.repo_kind, target.repo)
        except (NotFound, PermissionDenied, FailedPrecondition) as exc:
            raise type(exc)(f"run.outputs[{index}]: {exc.message}") from None
        return replace(target, repo_id=repo_id)

    async def get(self, name: str) -> Run:
        """The run; NotFound otherwise."""
        async with self.uow() as uow:
            return await must_get(uow, name)

    async def list_page(self, where: RunFilter, page_size: int, page_token: str) -> tuple[list[Run], str]:
        """One page of runs, newest first, and the token of the next ("" at the end)."""
        limit = page_limit(page_size)
        after = _decode_token(page_token)
        async with self.uow() as uow:
            runs = await uow.runs.list(where, after, limit + 1)
        more = len(runs) > limit
        runs = runs[:limit]
        return runs, _encode_token(runs[-1]) if more else ""

    async def stop(self, caller: Caller, name: str) -> Run:
        """A queued run ends at once; a running one is asked to stop (SIGTERM, then SIGKILL); a study's
        run stops its study."""
        async with self.uow() as uow:
            run = await must_get(uow, name)
            check_may_change(run, caller, "stop it")
            if not run.tuning:
                run = await request_stop(uow, run, caller, self.clock())
        if run.tuning:
            if self.stop_study is None:
                raise FailedPrecondition(f"run {name!r} is a hyperparameter study, and studies are not "
                                         "driven here")
            await self.stop_study(caller, name)
            return await self.get(name)
        if run.status is RunStatus.STOPPING:
            await (await self.executors.of(run)).stop(run.id)
        self.wake()
        return run

    async def delete(self, caller: Caller, name: str) -> None:
        """Forget an ended run: its record, metrics, config file, logs and workspace. A study's run takes
        its study and every trial run with it; a trial alone may go only once its study has ended."""
        async with self.uow() as uow:
            run = await must_get(uow, name)
            check_may_change(run, caller, "delete it")
            if not run.status.final:
                raise FailedPrecondition(f"run {name!r} is {run.status.value}: stop it, then delete it")
            study = await uow.studies.get(run.study or run.name) if run.study or run.tuning else None
            if study is not None and study.active:
                raise FailedPrecondition(_study_active(run, study))
            trials = await uow.runs.of_study(run.name) if run.tuning else []
            if running := [trial.name for trial in trials if not trial.status.final]:
                raise FailedPrecondition(f"study {name!r} still has trials that have not ended "
                                         f"({', '.join(running)}): wait for them, then delete it")
            for gone in (run, *trials):
                await _forget(uow, gone, caller)
            if run.tuning and study is not None:
                await uow.studies.remove(study)
        for gone in (run, *trials):
            await (await self.executors.of(gone)).remove(gone.id)

    async def read_logs(self, name: str, offset: int, max_bytes: int) -> tuple[bytes, int, bool]:
        """Log bytes from ``offset``, the next offset, and whether the run ended and all was read."""
        if offset < 0:
            raise InvalidArgument("offset", "must not be negative")
        if offset > LOGS_OFFSET_MAX:
            raise InvalidArgument("offset", f"must be at most {LOGS_OFFSET_MAX} (1 TiB): no log is that long")
        if max_bytes < 0:
            raise InvalidArgument("max_bytes", "must not be negative")
        run = await self.get(name)
        executor = await self.executors.of(run)
        data = await executor.read_logs(run.id, offset, min(max_bytes or LOGS_DEFAULT, LOGS_MAX))
        return data, offset + len(data), run.status.final and not data

    async def start_tensorboard(self, caller: Caller, name: str) -> tuple[Run, str]:
        """Start the run's TensorBoard (unless it runs; its owner or an operator); the run and where
        it listens."""
        run = await self.get(name)
        check_may_change(run, caller, "start its TensorBoard")
        return run, await (await self.executors.of(run)).start_tensorboard(run.id, run.name)

    async def stop_tensorboard(self, caller: Caller, name: str) -> Run:
        """Stop the run's TensorBoard, if it runs (its owner or an operator)."""
        run = await self.get(name)
        check_may_change(run, caller, "stop its TensorBoard")
        await (await self.executors.of(run)).stop_tensorboard(run.id)
        return run

    async def tensorboard(self, name: str) -> tuple[Run, str | None]:
        """The run and where its TensorBoard listens (None: it does not run)."""
        run = await self.get(name)
        return run, await (await self.executors.of(run)).tensorboard_address(run.id)

    async def metrics(self, name: str) -> list[MetricPoint]:
        """Every metric point the run logged."""
        async with self.uow() as uow:
            run = await must_get(uow, name)
            return await uow.metrics.series(run.id)


async def request_stop(uow: UnitOfWork, run: Run, by: Caller, now: datetime) -> Run:
    """In ``uow``: a run that has no process here (queued, its environment building, external) ends
    stopped at once; a running one is marked stopping (its executor is then to stop it)."""
    if run.external and not run.status.final:  # no process here: it ends as asked
        run = await uow.runs.save(run.ended(RunStatus.STOPPED, now, "stopped"))
        uow.record(RunStopped(run, by))
        return run
    if run.status in (RunStatus.QUEUED, RunStatus.WAITING_FOR_GPUS) or run.building:
        run = await uow.runs.save(run.ended(RunStatus.STOPPED, now, "stopped before it started"))
        uow.record(RunStopped(run, by))
        return run
    return await uow.runs.save(run.stopping())


def _study_active(run: Run, study: Study) -> str:
    """Why ``run`` may not go while its study is active."""
    if run.tuning:
        return f"study {study.name!r} is {study.status.value}: stop it, then delete its run"
    return (f"run {run.name!r} is a trial of study {study.name!r}, which is {study.status.value}: a trial "
            "may be deleted once its study has ended (deleting the study's run deletes all its trials)")


async def _forget(uow: UnitOfWork, run: Run, by: Caller) -> None:
    """In ``uow``: the run's record, metrics, config file, artifacts and logged models go; RunDeleted."""
    await uow.runs.remove(run)
    await uow.metrics.forget(run.id)
    await uow.configs.forget(run.id)
    await uow.artifacts.forget(run.id)
    for model in await uow.logged_models.of_run(run.id):
        await uow.artifacts.forget(model.id)
        await uow.logged_models.remove(model)
    uow.record(RunDeleted(run, by))


def check_may_change(run: Run, caller: Caller, what: str) -> None:
    if caller.user != run.owner and not caller.is_operator:
        raise PermissionDenied(f"run {run.name!r} belongs to {run.owner!r}; only its owner or an operator "
                               f"may {what}")


async def must_get(uow: UnitOfWork, name: str) -> Run:
    """The run named ``name``; NotFound otherwise."""
    run = await uow.runs.get(name)
    if run is None:
        raise NotFound(f"no run named {name!r}")
    return run


def _request_key(caller: Caller, request_id: str) -> str:
    return f"{caller.user}:run:{request_id}"


def _encode_token(run: Run) -> str:
    return encode_token(PAGE_TAG, str(run.sequence), run.id)


def _decode_token(token: str) -> tuple[int, str] | None:
    cursor = decode_token(PAGE_TAG, token, 2)
    if cursor is None:
        return None
    sequence, run_id = cursor
    if not sequence.isdigit():
        raise InvalidArgument("page_token", "is not a token this API returned (or it is for another list)")
    return int(sequence), run_id
