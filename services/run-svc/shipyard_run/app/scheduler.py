"""The scheduler: starts queued runs as slots and GPUs allow, watches running ones, and ends them.

Everything it knows is in the store, so it survives its own restart: on start it asks the
executor about every run that was starting, running or stopping, reattaches to those still
running, ends those that exited, fails those that vanished, and queues again those never started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from shipyard.kit.blob.checkout import EMPTY_MANIFEST
from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import Aborted, FailedPrecondition, NotFound, ResourceExhausted
from shipyard_run.app.executors import Executors
from shipyard_run.app.ports import (
    EnvironmentFailed,
    Executor,
    Job,
    JobEnvironment,
    JobInput,
    JobState,
    JobStatus,
    ManifestWriter,
    UnitOfWork,
    Units,
)
from shipyard_run.app.runs import unisolated_refusal
from shipyard_run.app.studies import FILE_COLLECTORS
from shipyard_run.domain.clusters import LOCAL
from shipyard_run.domain.events import (
    MetricsLogged,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunStarted,
    RunStopped,
)
from shipyard_run.domain.run_tokens import issue_run_token
from shipyard_run.domain.runs import Environment, MetricPoint, Run, RunStatus
from shipyard_run.domain.tracking import LoggedModelStatus, manifest_of
from shipyard_run.domain.tuning import parse_tuning

log = logging.getLogger(__name__)
WAITING = (RunStatus.QUEUED, RunStatus.WAITING_FOR_GPUS)
ACTIVE = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.STOPPING)
LAST_LINES = 4096  # bytes of the log's end a RunFailed carries
NEVER_STARTED = "stopped before it started"
TRIAL_FILES_EVERY_S = 10.0  # a running trial's metrics files are read again this often
SUBMITS_AT_ONCE = 4  # below sshd's default MaxSessions (10) per connection, with room for polls


@dataclass
class Scheduler:
    """Moves runs through their lifecycle on one executor."""

    uow: Units
    executors: Executors
    slots: int  # local runs at once (the local machine's cores); GPU runs also need their GPUs
    clock: Clock = utc_now
    interval: float = 0.25
    single_user: bool = False  # anyone's runs may start unisolated (the operator's choice)
    api_server: str = ""  # the gateway's gRPC address as runs reach it (SHIPYARD_SERVER)
    api_url: str = ""  # the gateway's HTTP address as runs reach it (SHIPYARD_API_URL)
    manifests: ManifestWriter | None = None  # where an output made of a logged model's files goes
    on_end: Callable[[], None] = lambda: None  # a run ended (the studies' driver looks at once)
    # A study's trial exited: what its files hold is read before its working directory is cleaned.
    on_trial_exit: Callable[[Run, Executor], Awaitable[None]] | None = None
    # A study's trial runs: its files are read again every ``trial_files_every`` seconds for what is new.
    on_trial_running: Callable[[Run, Executor], Awaitable[None]] | None = None
    trial_files_every: float = TRIAL_FILES_EVERY_S
    _trial_files_at: dict[str, float] = field(default_factory=dict)  # run id → when its files were read
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Runs whose environment is being built before they start (the tick goes on meanwhile).
    _builds: set[asyncio.Task[None]] = field(default_factory=set)
    _watching: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # by cluster name
    # Cluster runs being submitted at once (each holds an SSH session of its login node while it does).
    _submitting: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SUBMITS_AT_ONCE))

    def wake(self) -> None:
        """Look at the queue now rather than at the next tick."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Recover, then start and watch runs until cancelled."""
        await self.recover()
        try:
            while True:
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
        finally:
            for build in self._builds:  # their runs are requeued by the next run-svc's recover
                build.cancel()
            for watch in self._watching.values():
                watch.cancel()
            await asyncio.gather(*self._builds, *self._watching.values(), return_exceptions=True)

    async def recover(self) -> None:
        """After a restart: queue again what never started, take up what started meanwhile; the
        rest is watched as usual."""
        for run in await self._runs(ACTIVE):
            if run.status is RunStatus.RUNNING:
                continue
            status = await (await self.executors.of(run)).status(run.id)
            if status.state is not JobState.NOT_STARTED:
                if run.status is RunStatus.STARTING:
                    await self._mark_running(run, ("run-svc restarted while starting it; found it started",))
            elif run.status is RunStatus.STARTING:
                await self._save(run, run.requeued("run-svc restarted while starting it"))
            else:  # stopped while its environment was being built: it never started
                await self._finish(run, run.ended(RunStatus.STOPPED, self.clock(), NEVER_STARTED))

    async def tick(self) -> None:
        """One pass: watch the active runs, then start what fits. A run whose executor fails is
        logged and looked at again next tick; the others go on. Each cluster's runs are watched in a
        task of their own, waited for at most one interval: a cluster slow to answer (its login node out
        of reach) holds up neither the local runs nor the other clusters."""
        by_cluster: dict[str, list[Run]] = {}
        for run in await self._runs(ACTIVE):
            by_cluster.setdefault("" if _local(run) else run.spec.cluster, []).append(run)
        pending = [self._watching_of(cluster, runs) for cluster, runs in by_cluster.items() if cluster]
        await self._watch_all(by_cluster.get("", []))
        if pending:
            await asyncio.wait(pending, timeout=self.interval)
        await self._start_waiting()

    def _watching_of(self, cluster: str, runs: list[Run]) -> asyncio.Task[None]:
        """The task watching ``cluster``'s runs: the one still at it from an earlier tick, or a new one."""
        task = self._watching.get(cluster)
        if task is None or task.done():
            task = self._watching[cluster] = asyncio.create_task(self._watch_all(runs))
        return task

    async def _watch_all(self, runs: list[Run]) -> None:
        for run in runs:
            try:
                await self._watch(run)
            except Exception:
                log.exception("watching run %s failed; trying again next tick", run.name)

    async def _runs(self, statuses: tuple[RunStatus, ...]) -> list[Run]:
        """The runs in these statuses that this scheduler executes (not external runs: their clients
        report their ends)."""
        async with self.uow() as uow:
            return await uow.runs.in_status(statuses, 10_000)

    async def _start_waiting(self) -> None:
        active = [run for run in await self._runs(ACTIVE) if _local(run)]
        free_slots = self.slots - len(active)
        used = {gpu for run in active for gpu in run.gpu_ids}
        free_gpus = self.executors.local.gpu_count() - len(used)
        waiting = sorted(await self._runs(WAITING), key=lambda r: (-r.spec.priority, r.sequence, r.id))
        # A cluster's own scheduler queues its runs: they start at once, several at a time (each submit is a
        # few round trips to a login node), beside the local ones.
        remote = asyncio.gather(*(self._start_remote(run) for run in waiting if not _local(run)))
        for run in waiting:
            if _local(run) and free_slots > 0:
                free_slots, free_gpus = await self._start_local(run, free_slots, free_gpus, used)
        await remote

    async def _start_remote(self, run: Run) -> None:
        async with self._submitting:
            try:
                await self._start(run, ())
            except Exception:
                log.exception("starting run %s failed; trying again next tick", run.name)

    async def _start_local(self, run: Run, free_slots: int, free_gpus: int,
                           used: set[int]) -> tuple[int, int]:
        """Start ``run`` if the GPUs it needs are free (taking them into ``used``); the slots and GPUs
        left."""
        local = self.executors.local
        wanted = run.spec.gpus
        if wanted > free_gpus and not (run.spec.start_with_available and free_gpus > 0):
            if run.status is RunStatus.QUEUED and wanted:
                await self._save(run, run.waiting_for_gpus(f"{wanted} GPUs asked for, {free_gpus} free"))
            return free_slots, free_gpus
        take = min(wanted, free_gpus)
        gpus = tuple(g for g in range(local.gpu_count()) if g not in used)[:take]
        used.update(gpus)
        await self._start(run, gpus)
        return free_slots - 1, free_gpus - take

    async def _start(self, run: Run, gpus: tuple[int, ...]) -> None:
        # A new token each start: it exists exactly while the run is active (it ends with the run).
        token, token_hash = issue_run_token(run.id)
        starting = await self._save(run, run.starting(gpus, token_hash))
        if starting is None:
            return
        try:
            executor = await self.executors.of(run)
        except (NotFound, FailedPrecondition) as exc:  # its cluster was deleted, or is not served here
            await self._error(starting, f"could not start: {exc.message}")
            return
        # Isolation was there when the run was submitted; run-svc may have restarted without it.
        if refusal := unisolated_refusal(executor, run.owner_roles, self.single_user):
            await self._error(starting, refusal)
            return
        async with self.uow() as uow:
            config = await uow.configs.get(run.id)
            collector_path = await _collector_path(uow, run)
        job = Job(
            run_id=run.id, name=run.name, command=run.spec.command, project=run.spec.project,
            inputs=tuple(JobInput(i.mount_path, i.manifest_digest) for i in run.spec.inputs),
            output_paths=tuple(o.mount_path for o in run.spec.outputs),
            hyperparameters=run.spec.hyperparameters, config_file_name=run.spec.config_file_name,
            config=config, gpus=gpus, code_manifest=run.spec.code_manifest,
            api_token=token, api_server=self.api_server, api_url=self.api_url,
            environment=_job_environment(run.spec.environment), owner=run.owner, gpu_count=run.spec.gpus,
            time_limit=run.spec.time_limit, account=run.spec.account,
            distribution=run.spec.distribution, workers=run.spec.workers, collector_path=collector_path,
        )
        if job.environment is not None and not await executor.environment_ready(job.environment):
            building = await self._save(starting, starting.building_environment(job.environment.image))
            if building is not None:
                task = asyncio.create_task(self._build_then_submit(building, job, executor))
                self._builds.add(task)
                task.add_done_callback(self._builds.discard)
            return
        await self._submit(starting, job, executor)

    async def _build_then_submit(self, run: Run, job: Job, executor: Executor) -> None:
        """Build the run's environment (its first use), then start the run unless it was stopped
        meanwhile; a build that fails ends the run with what could not be installed."""
        assert job.environment is not None
        try:
            await executor.build_environment(job.environment)
        except EnvironmentFailed as exc:
            await self._error(run, f"its environment {job.environment.image} could not be built: {exc}")
            return
        except Exception as exc:
            log.exception("the environment of run %s could not be built", run.name)
            await self._error(run, f"its environment {job.environment.image} could not be built: {exc}")
            return
        async with self.uow() as uow:
            current = await uow.runs.get(run.name)
        if current is None or current.status.final:  # stopped (or deleted) while it was built
            return
        if current.status is RunStatus.STOPPING:
            await self._finish(current, current.ended(RunStatus.STOPPED, self.clock(), NEVER_STARTED))
            return
        await self._submit(current, job, executor)
        self.wake()

    async def _submit(self, starting: Run, job: Job, executor: Executor) -> None:
        try:
            notes = await executor.submit(job)
        except Exception as exc:  # the executor could not start it: the run fails, the scheduler goes on
            log.exception("run %s could not start", starting.name)
            await self._error(starting, f"could not start: {exc}")
            return
        await self._mark_running(starting, notes)

    async def _mark_running(self, run: Run, notes: tuple[str, ...]) -> None:
        executor = await self.executors.of(run)
        async with self.uow() as uow:
            current = await uow.runs.get(run.name)
            assert current is not None
            running = await uow.runs.save(current.running(self.clock(), notes))
            uow.record(RunStarted(running, executor.name))
        if running.status is RunStatus.STOPPING:  # stopped while it was starting
            await executor.stop(run.id)

    async def _watch(self, run: Run) -> None:
        if run.status is RunStatus.STARTING:
            return  # being started (or taken up by recover)
        # The status first: metrics logged just before an exit are then read before the run ends.
        executor = await self.executors.of(run)
        status = await executor.status(run.id)
        points = await executor.new_metrics(run.id)
        if points:
            run = await self._log_metrics(run, points)
        if status.state not in (JobState.RUNNING, JobState.NOT_STARTED):
            self._trial_files_at.pop(run.id, None)
            if run.trial is not None and self.on_trial_exit is not None:
                try:
                    await self.on_trial_exit(run, executor)
                except Exception:  # its metrics are then what it reported otherwise: it ends all the same
                    log.exception("the metric files of trial %s could not be read", run.name)
            await self._end(status, run.name)
        elif status.state is JobState.RUNNING and run.trial is not None:
            await self._read_trial_files(run, executor)

    async def _read_trial_files(self, run: Run, executor: Executor) -> None:
        """A running trial's metrics files, read again once ``trial_files_every`` has passed."""
        now = time.monotonic()
        if self.on_trial_running is None or now - self._trial_files_at.get(run.id, -math.inf) < \
                self.trial_files_every:
            return
        self._trial_files_at[run.id] = now
        try:
            await self.on_trial_running(run, executor)
        except Exception:  # read again at the next period, and at its exit
            log.exception("the metric files of running trial %s could not be read", run.name)

    async def _log_metrics(self, run: Run, points: list[MetricPoint]) -> Run:
        async with self.uow() as uow:
            current = await uow.runs.get(run.name)
            assert current is not None
            await uow.metrics.append(run.id, points)
            saved = await uow.runs.save(current.with_points(points))
            uow.record(MetricsLogged(saved, tuple(points)))
            return saved

    async def _end(self, status: JobStatus, name: str) -> None:
        async with self.uow() as uow:  # as it is now: a stop may have come during this tick
            run = await uow.runs.get(name)
        assert run is not None
        executor = await self.executors.of(run)
        if run.status is RunStatus.STOPPING:
            await self._finish(run, run.ended(RunStatus.STOPPED, self.clock(), "stopped", status.exit_code))
        elif status.state is JobState.GONE:
            await self._error(run, f"the run's process disappeared: {status.detail}")
        elif status.state is JobState.KILLED:
            await self._fail(run, status.detail, status.exit_code)
        elif status.state is JobState.NO_SPACE:
            # Its files may be what fills the disk: they go first, leaving room to record its end.
            await executor.cleanup(run.id)
            if status.exit_code != 0:
                await self._fail(run, status.detail, status.exit_code)
            else:
                await self._error(run, status.detail)
        elif status.exit_code != 0:
            await self._fail(run, f"the command exited with code {status.exit_code}", status.exit_code)
        else:
            await self._complete(run, executor)
        await executor.cleanup(run.id)

    async def _complete(self, run: Run, executor: Executor) -> None:
        try:
            staged = await executor.stage_outputs(run.id)
        except ResourceExhausted as exc:  # a full disk: nothing was stored of them
            await self._error(run, exc.message)
            return
        except (OSError, ValueError) as exc:
            await self._error(run, f"its outputs could not be stored: {exc}")
            return
        staged = await self._logged_model_as_output(run, staged)
        await self._finish(run, run.ended(RunStatus.COMPLETE, self.clock()), staged)

    async def _logged_model_as_output(self, run: Run, staged: dict[str, str]) -> dict[str, str]:
        """A model output the run left empty takes the model it logged through MLflow
        (``mlflow.<flavor>.log_model``), when it logged exactly one: the script needs no change to
        fill ``--model-out``."""
        empty = {o.mount_path for o in run.spec.outputs
                 if o.repo_kind == "model" and staged.get(o.mount_path) == EMPTY_MANIFEST}
        if not empty or self.manifests is None:
            return staged
        async with self.uow() as uow:
            logged = await uow.logged_models.of_run(run.id)
            models = [m for m in logged if m.status is LoggedModelStatus.READY]
            if len(models) != 1:
                return staged
            manifest = manifest_of(await uow.artifacts.of_owner(models[0].id))
        if not manifest.entries:
            return staged
        digest = await self.manifests.put_manifest(manifest)
        return {path: digest if path in empty else staged_digest for path, staged_digest in staged.items()}

    async def _fail(self, run: Run, reason: str, exit_code: int) -> None:
        await self._finish(run, run.ended(RunStatus.FAILED, self.clock(), reason, exit_code))

    async def _error(self, run: Run, reason: str) -> None:
        """The platform, not the command, could not carry the run through."""
        await self._finish(run, run.ended(RunStatus.ERROR, self.clock(), reason))

    async def _finish(self, run: Run, ended: Run, staged: dict[str, str] | None = None) -> None:
        by = Caller(run.owner, frozenset(run.owner_roles))  # as it was at submit
        last = ""
        if ended.status in (RunStatus.FAILED, RunStatus.ERROR):
            try:
                log_bytes = await (await self.executors.of(run)).read_logs(run.id, 0, 1 << 30)
            except Exception as exc:  # a cluster out of reach keeps its log: the run ends all the same
                log_bytes = f"(its log could not be read: {exc})".encode()
            last = log_bytes[-LAST_LINES:].decode(errors="replace")
        published = staged or {}
        async with self.uow() as uow:
            current = await uow.runs.get(run.name)
            assert current is not None
            changed = _on(current, ended)
            if (trial := changed.trial) is not None:
                # A trial's outputs stay on its record: its study publishes the best trial's as its own, and
                # the other trials' become versions only when the study keeps them.
                changed = replace(changed, trial=replace(trial, outputs=published))
                published = published if trial.keep_outputs else {}
            saved = await uow.runs.save(changed)
            event: RunEvent
            if saved.status is RunStatus.COMPLETE:
                event = RunCompleted(saved, by, published)
            elif saved.status is RunStatus.STOPPED:
                event = RunStopped(saved, by)
            else:
                event = RunFailed(saved, by, last)
            uow.record(event)
        log.info("run %s %s %s", run.name, saved.status.value, saved.status_reason)
        self.on_end()

    async def _save(self, run: Run, changed: Run) -> Run | None:
        """Save a change made on ``run``; None when someone changed the run meanwhile (next tick)."""
        try:
            async with self.uow() as uow:
                return await uow.runs.save(changed)
        except Aborted:
            return None


def _local(run: Run) -> bool:
    return run.spec.cluster in ("", LOCAL)


async def _collector_path(uow: UnitOfWork, run: Run) -> str:
    """Where a trial's File or TensorFlowEvent collector reads in its working directory ("/": all of it);
    "" for any other run (the job then sends no files of its own)."""
    if run.trial is None:
        return ""
    study = await uow.studies.get(run.trial.study)
    if study is None:
        return ""
    collector = parse_tuning(study.tuning).metrics_collector
    return (collector.path or "/") if collector.kind in FILE_COLLECTORS else ""


def _job_environment(environment: Environment | None) -> JobEnvironment | None:
    if environment is None:
        return None
    return JobEnvironment(environment.image, environment.python, environment.requirements, environment.digest,
                          environment.url)


def _on(current: Run, ended: Run) -> Run:
    """``ended``'s outcome on the latest revision (metrics may have moved on meanwhile)."""
    when = ended.end_time or current.create_time
    return current.ended(ended.status, when, ended.status_reason, ended.exit_code)
