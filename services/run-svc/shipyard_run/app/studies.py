"""Hyperparameter studies: what users read and stop, and the driver that runs each study's trials.

The driver keeps nothing outside the store. Each tick it reads every active study's trials (runs of kind
trial), derives their states and objective values, and makes one decision per unit of work: report the
trials that ended, stop those early stopping judges, end the study (goal reached, too many failures, all
trials done) or start new trials. A trial's run is added in the same transaction that counts it in the
study's ``next_trial``, so a run-svc killed at any moment neither starts a trial twice nor forgets one; the
scheduler then runs trials like any run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import Aborted, InvalidArgument, NotFound
from shipyard.kit.paging import decode_token, encode_token, page_limit
from shipyard_run.app.executors import Executors
from shipyard_run.app.ports import EventFiles, Executor, TrialSearch, UnitOfWork, Units
from shipyard_run.app.runs import check_may_change, request_stop
from shipyard_run.app.trial_views import ComputedTrial, RankedPages, TrialViews
from shipyard_run.domain.events import (
    MetricsLogged,
    RunCompleted,
    RunFailed,
    RunStopped,
    RunSubmitted,
    StudyCompleted,
    StudyUpdated,
    TrialCompleted,
)
from shipyard_run.domain.file_metrics import read_again
from shipyard_run.domain.runs import MetricPoint, Run, RunKind, RunStatus, TrialEnd, TrialOf, trial_name
from shipyard_run.domain.studies import (
    LIMITS,
    Study,
    StudyEnd,
    StudyStatus,
    TrialCounts,
    TrialView,
    best_of,
    changed_limits,
    check_fields,
    check_may_update,
    end_by_failures,
    end_by_goal,
    end_when_done,
    history_of,
    observations,
    resumed_run,
    stopped_end,
    trial_view,
)
from shipyard_run.domain.trials import ParameterValue, TrialHistory, TrialState
from shipyard_run.domain.tuning import TuningSpec, parse_tuning

log = logging.getLogger(__name__)
PAGE_TAG = "studies"
TRIALS_PAGE_TAG = "trials"
LOG_READ_MAX = 1 << 20  # of a trial's log, read for a StdOut collector's own metric formats
FILES_READ_MAX = 16 << 20  # of a trial's metrics file or event files (File, TensorFlowEvent collectors)
COLLECTED_MAX = 10_000  # values kept of what a trial's files held (the latest)
FILE_COLLECTORS = ("File", "TensorFlowEvent")
ORDERS = ("number", "objective")
STOP_ATTEMPTS = 3  # of a change another writer aborted (a stop, an update, what a trial's files gave)


@dataclass(frozen=True)
class StudyState:
    """A study as read now: its record, its run, its trials (with the metrics each reported)."""

    study: Study
    run: Run
    spec: TuningSpec
    trials: tuple[TrialView, ...]
    reported: dict[str, list[tuple[str, float]]]  # trial name → its watched metrics, in report order

    @property
    def counts(self) -> TrialCounts:
        """Trials per state."""
        return TrialCounts.of(self.trials)

    @property
    def best(self) -> TrialView | None:
        """The optimal trial so far."""
        return best_of(self.spec, self.trials)


@dataclass
class Studies:
    """What users do with studies, and the driver's loop."""

    uow: Units
    executors: Executors
    search: TrialSearch | None  # None: no search algorithms here (studies are refused at submit)
    wake_scheduler: Callable[[], None] = lambda: None
    clock: Clock = utc_now
    events: EventFiles | None = None  # reads TensorFlow event files (None: that collector is refused)
    interval: float = 1.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _specs: dict[str, TuningSpec] = field(default_factory=dict)  # parsed tuning files, by study id
    _reading: dict[str, asyncio.Lock] = field(default_factory=dict)  # trials' files being read, by run id
    _stamps: dict[str, str] = field(default_factory=dict)  # run id → its files' stamp at the last read
    _views: TrialViews = field(default_factory=TrialViews)  # kept while the trials' runs are unchanged
    _rankings: RankedPages[StudyState] = field(default_factory=RankedPages)  # ListTrials' next pages

    # ---- reading and stopping ------------------------------------------------------------------

    async def get(self, name: str) -> StudyState:
        """The study and its trials; NotFound otherwise."""
        async with self.uow() as uow:
            return await self._state(uow, await _must_get(uow, name))

    async def list_page(self, project: str | None, page_size: int,
                        page_token: str) -> tuple[list[StudyState], str]:
        """One page of studies, newest first, and the next page's token ("" at the end)."""
        limit = page_limit(page_size)
        cursor = decode_token(PAGE_TAG, page_token, 2)
        async with self.uow() as uow:
            found = await uow.studies.list(project, (cursor[0], cursor[1]) if cursor else None, limit + 1)
            states = [await self._state(uow, study) for study in found[:limit]]
        more = len(found) > limit
        last = found[limit - 1] if more else None
        return states, encode_token(PAGE_TAG, last.create_time.isoformat(), last.id) if last else ""

    async def trials(self, name: str, order_by: str, descending: bool, page_size: int,
                     page_token: str) -> tuple[StudyState, list[TrialView], str]:
        """One page of the study's trials, by number, objective or a watched metric's latest value (trials
        without it last), and the next page's token. The next pages are of the first one's moment while
        they are asked for soon after it (``RankedPages``)."""
        order = order_by or "number"
        limit = page_limit(page_size)
        start, ranking = _cursor(page_token)
        key = (name, order, descending)
        kept = self._rankings.get(ranking, key) if ranking else None
        if kept is None:
            state = await self.get(name)
            watched = state.spec.objective.metrics
            if order not in ORDERS and order not in watched:
                raise InvalidArgument("order_by", f"must be number, objective or a metric the study watches "
                                                  f"({', '.join(watched)}), not {order!r}")
            ranked = tuple(sorted(state.trials, key=lambda t: _rank(t, order, descending)))
            more = start + limit < len(ranked)
            ranking = self._rankings.keep(key, state, ranked) if more else ""
        else:
            state, ranked = kept
            more = start + limit < len(ranked)
        page = list(ranked[start:start + limit])
        return state, page, encode_token(TRIALS_PAGE_TAG, str(start + limit), order, ranking) if more else ""

    async def stop(self, caller: Caller, name: str) -> StudyState:
        """Stop the study's active trials (Killed) and end it Stopped (its owner or an operator); the best
        trial so far gives the study run's outputs."""
        async with self.uow() as uow:
            study = await _must_get(uow, name)
            run = await _study_run(uow, study)
            check_may_change(run, caller, "stop its study")
            if study.status.final or study.ending is not None:
                return await self._state(uow, study)
        # The driver may change the study meanwhile (a trial started).
        await _retried(lambda: self._end(study.name, stopped_end(caller.user)))
        self.wake()
        return await self.get(name)

    async def update(self, caller: Caller, name: str, changes: Mapping[str, int]) -> StudyState:
        """Change the study's limits (its owner or an operator, as for stopping it): Katib's editable fields,
        stored in its spec, which the driver reads at each decision — more parallel trials start at once;
        fewer let the running ones finish (Katib deletes its newest active trials instead: here each started
        trial counts toward maxTrialCount, so killing one would spend a trial and its work). Raising
        maxTrialCount of a study that Succeeded by reaching it, with resumePolicy LongRunning or FromVolume,
        resumes it: the study and its run go back to Running and the driver starts the new trials (the search
        keeps no state, so both policies resume alike). See ``_finish`` for its second end."""
        check_fields(changes)
        await _retried(lambda: self._update(caller, name, changes))  # the driver may change it meanwhile
        self.wake()
        return await self.get(name)

    async def _update(self, caller: Caller, name: str, changes: Mapping[str, int]) -> None:
        async with self.uow() as uow:
            study = await _must_get(uow, name)
            run = await _study_run(uow, study)
            check_may_change(run, caller, "change its study's limits")
            resumes = check_may_update(study, self._spec(study).resume_policy, changes)
            updated = study.with_limits(changed_limits(study, changes))
            if resumes:
                updated = updated.resumed(caller.user)
                await uow.runs.save(resumed_run(run, caller.user, updated.limits.most or 0))
            saved = await uow.studies.save(updated)
            fields = tuple(field_name for field_name in LIMITS if field_name in changes)
            uow.record(StudyUpdated(saved, fields, resumes, caller))
        if resumes:
            log.info("study %s resumed by %s: maxTrialCount %s", name, caller.user, saved.limits.most)

    # ---- the driver ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the studies now rather than at the next tick."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Drive the active studies until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("driving studies failed; trying again next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def tick(self) -> None:
        """One pass over every active study; one failing is logged, the others go on."""
        if self.search is None:
            return
        async with self.uow() as uow:
            active = await uow.studies.active()
        for study in active:
            try:
                await self.drive(study.name)
            except Aborted:
                pass  # changed meanwhile (a stop): looked at again next tick
            except Exception:
                log.exception("driving study %s failed; trying again next tick", study.name)

    async def drive(self, name: str) -> None:
        """Take the study one step on: each decision in its own unit of work."""
        assert self.search is not None
        state = await self.get(name)
        if await self._report(state):
            state = await self.get(name)
        study, spec = state.study, state.spec
        if study.ending is not None:
            if state.counts.active == 0:
                await self._finish(state)
            return
        # Early stopping (medianstop), or hyperband's rungs: the search decides which trials stop.
        numbers = await asyncio.to_thread(self.search.stop_early, spec, self._history(state))
        if numbers and await self._stop_early(state, numbers):
            return
        if end := end_by_goal(spec, state.best) or end_by_failures(spec, state.counts):
            await self._end(name, end)
        elif not await self._start_trials(state):
            return
        # The end is decided. With no trial left to stop, the study ends in this pass: nothing else would wake
        # the driver before its next tick, a whole interval away.
        state = await self.get(name)
        if state.study.ending is not None and state.counts.active == 0:
            await self._finish(state)

    async def _report(self, state: StudyState) -> bool:
        """Emit TrialCompleted for each trial that ended since (marked on its run); whether any did."""
        ended = [t for t in state.trials if not t.state.active and t.run.trial and not t.run.trial.reported]
        for trial in ended:
            async with self.uow() as uow:
                run = await uow.runs.get(trial.name)
                if run is None or run.trial is None or run.trial.reported or not run.status.final:
                    continue
                run = await uow.runs.save(replace(run, trial=replace(run.trial, reported=True)))
                uow.record(TrialCompleted(state.study, replace(trial, run=run)))
        return bool(ended)

    def _history(self, state: StudyState) -> list[TrialHistory]:
        return [history_of(state.spec, t, state.reported[t.name]) for t in state.trials]

    async def _stop_early(self, state: StudyState, numbers: Sequence[int]) -> bool:
        """Stop the running trials early stopping judged (EarlyStopped); whether any was."""
        running = [t for t in state.trials if t.number in set(numbers) and t.state is TrialState.RUNNING]
        for trial in running:
            await self._stop_trial(trial.name, TrialEnd.EARLY_STOPPED)
        return bool(running)

    async def _stop_trial(self, name: str, why: TrialEnd) -> None:
        async with self.uow() as uow:
            run = await uow.runs.get(name)
            if run is None or run.trial is None or run.status.final or run.status is RunStatus.STOPPING:
                return
            marked = replace(run, trial=replace(run.trial, stopped_by_study=why))
            run = await request_stop(uow, marked, Caller(run.owner, frozenset(run.owner_roles)), self.clock())
        if run.status is RunStatus.STOPPING:
            await (await self.executors.of(run)).stop(run.id)
        self.wake_scheduler()

    async def _end(self, name: str, end: StudyEnd) -> None:
        """Decide how the study ends and kill its active trials; it ends once they have stopped."""
        async with self.uow() as uow:
            study = await _must_get(uow, name)
            if study.status.final or study.ending is not None:
                return
            await uow.studies.save(study.to_end(end))
            trials = [run.name for run in await uow.runs.of_study(name) if not run.status.final]
        for trial in trials:
            await self._stop_trial(trial, TrialEnd.KILLED)

    async def _finish(self, state: StudyState) -> None:
        """End the study as decided, and its run: its best trial's outputs become the study run's (none
        when the study failed).

        A resumed study ends again, and its run with it, by the same rules: the run takes the optimal
        trial's metrics and parameters again. Its first end's version stays the study run's own (a run makes
        one version per output). When the optimal trial changed, the new one's outputs become a NEW version,
        made by that trial's run (its lineage names its study); when it did not, no version is made."""
        study, run, best = state.study, state.run, state.best
        assert study.ending is not None
        now = self.clock()
        status = study.ending.status
        publish = best is not None and status is not StudyStatus.FAILED
        earlier_best = study.best_trial  # set only when it ended before and resumed since
        async with self.uow() as uow:
            current = await uow.studies.get(study.name)
            if current is None or current.revision != study.revision:
                return  # changed meanwhile: next tick
            ended = await uow.studies.save(study.ended(now, best.name if best else ""))
            run_now = await uow.runs.get(run.name)
            assert run_now is not None
            by = Caller(run.owner, frozenset(run.owner_roles))
            if publish and best is not None and best.run.trial is not None:
                # The best trial's metrics and parameters: what its model version records.
                done = replace(run_now, metrics=dict(best.run.metrics),
                               metric_marks=dict(best.run.metric_marks),
                               params={**run_now.params, **best.assignment})
                done = await uow.runs.save(done.ended(RunStatus.COMPLETE, now, study.ending.message))
                outputs = dict(best.run.trial.outputs)
                uow.record(RunCompleted(done, by, {} if earlier_best else outputs))
                if earlier_best and best.name != earlier_best:
                    uow.record(RunCompleted(best.run, by, outputs))
            elif status is StudyStatus.STOPPED:
                done = await uow.runs.save(run_now.ended(RunStatus.STOPPED, now, study.ending.message))
                uow.record(RunStopped(done, by))
            else:
                done = await uow.runs.save(run_now.ended(RunStatus.FAILED, now, study.ending.message))
                uow.record(RunFailed(done, by))
            uow.record(StudyCompleted(ended, best))
        self._specs.pop(study.id, None)
        log.info("study %s %s: %s", study.name, ended.status.value, ended.message)

    async def _start_trials(self, state: StudyState) -> bool:
        """Start as many trials as parallelTrialCount and maxTrialCount allow; end the study when all are
        done, or when the search has nothing more to suggest. Whether it decided the end."""
        study, spec, counts = state.study, state.spec, state.counts
        room = spec.parallel_trial_count - counts.active
        if spec.max_trial_count is not None:
            room = min(room, spec.max_trial_count - study.next_trial)
        if room <= 0:
            if counts.active == 0:
                await self._end(study.name, end_when_done(spec, counts, exhausted=False))
                return True
            return False
        assert self.search is not None
        suggested = await asyncio.to_thread(self.search.suggest, spec, self._history(state), room, study.seed)
        for assignment in suggested[:room]:
            await self._start_trial(study.name, spec, assignment)
        if not suggested and counts.active == 0:
            await self._end(study.name, end_when_done(spec, counts, exhausted=True))
            return True
        if suggested:
            self.wake_scheduler()
        return False

    async def _start_trial(self, name: str, spec: TuningSpec, assignment: dict[str, ParameterValue]) -> None:
        """One trial: its run (queued) added in the transaction that counts it in the study."""
        values = {key: _text(value) for key, value in assignment.items()}
        async with self.uow() as uow:
            study = await _must_get(uow, name)
            if study.ending is not None or study.status.final:
                return
            parent = await _study_run(uow, study)
            study = await uow.studies.save(study.started_trial())
            number = study.next_trial
            trial = trial_name(study.name, number)
            command = spec.trial_command(parent.spec.command, assignment, trial)
            # Parameters are flags of the command; those named like variables are hyperparameters too.
            hyperparameters = {**parent.spec.hyperparameters,
                               **{key: value for key, value in values.items() if _variable(key)}}
            now = self.clock()
            run = Run(id=uuid.uuid4().hex,
                      spec=replace(parent.spec, name=trial, kind=RunKind.TRIAL, command=command,
                                   hyperparameters=hyperparameters),
                      owner=parent.owner, create_time=now, sequence=int(now.timestamp() * 1_000_000),
                      owner_roles=parent.owner_roles,
                      trial=TrialOf(study.name, number, values, keep_outputs=study.keep_trial_outputs))
            run = await uow.runs.add(run)
            if config := await uow.configs.get(parent.id):
                await uow.configs.put(run.id, config)
            uow.record(RunSubmitted(run, Caller(parent.owner, frozenset(parent.owner_roles))))

    async def collect_files(self, run: Run, executor: Executor) -> None:
        """A trial that exited: what its files hold (the File and TensorFlowEvent collectors), read before
        its working directory is cleaned; what was not logged yet goes to its metric log (MetricsLogged)."""
        await self._read_files(run, executor, final=True)

    async def collect_running_files(self, run: Run, executor: Executor) -> None:
        """A running trial's files read again: the observations they gained go to its metric log, so early
        stopping and the live metrics see them (``domain.file_metrics`` says what a rewritten file gives)."""
        await self._read_files(run, executor, final=False)

    async def _read_files(self, run: Run, executor: Executor, final: bool) -> None:
        async with self.uow() as uow:
            study = await uow.studies.get(run.study)
        if study is None:
            return
        spec = self._spec(study)
        if spec.metrics_collector.kind not in FILE_COLLECTORS:
            return
        path = spec.metrics_collector.path
        lock = self._reading.setdefault(run.id, asyncio.Lock())
        async with lock:  # the exit's read never crosses a periodic one
            stamp = await executor.run_files_stamp(run.id, path)
            if not final and stamp is not None and self._stamps.get(run.id) == stamp:
                return  # unchanged since the last read
            files = await executor.read_run_files(run.id, path, FILES_READ_MAX) or {}
            found = await asyncio.to_thread(self._parsed, spec, files, final)  # up to FILES_READ_MAX of text
            # The run may change meanwhile (its other metrics, a stop).
            await _retried(lambda: self._log_files(run.name, found, final))
            if stamp is not None:
                self._stamps[run.id] = stamp
        if final:
            self._reading.pop(run.id, None)
            self._stamps.pop(run.id, None)

    def _parsed(self, spec: TuningSpec, files: dict[str, bytes],
                final: bool) -> dict[str, list[tuple[str, float]]]:
        return {path: self._observations(spec, path, data, final) for path, data in files.items()}

    def _observations(self, spec: TuningSpec, path: str, data: bytes, final: bool) -> list[tuple[str, float]]:
        """One file's observations; while the trial runs, a last line not ended yet is left for later."""
        if spec.metrics_collector.kind == "TensorFlowEvent":  # a record still being written is left out
            return self.events.observations({path: data}, spec.objective.metrics) if self.events else []
        if not final:
            data = data[:data.rfind(b"\n") + 1]
        return spec.metric_lines(data.decode(errors="replace"))

    async def _log_files(self, name: str, found: dict[str, list[tuple[str, float]]], final: bool) -> None:
        async with self.uow() as uow:
            current = await uow.runs.get(name)
            if current is None or current.trial is None:
                return
            trial = current.trial
            read = read_again(trial.collected, trial.file_counts, found, final, COLLECTED_MAX)
            if read.collected == trial.collected and read.counts == trial.file_counts:
                return
            points = _points(current, read.new, self.clock())
            changed = replace(current.with_points(points),
                              trial=replace(trial, collected=read.collected, file_counts=read.counts))
            saved = await uow.runs.save(changed)
            if points:
                await uow.metrics.append(current.id, points)
                uow.record(MetricsLogged(saved, tuple(points)))

    # ---- reading a study's state ---------------------------------------------------------------

    async def _state(self, uow: UnitOfWork, study: Study) -> StudyState:
        spec = self._spec(study)
        run = await _study_run(uow, study)
        kept, computed = self._views.of(study.id, spec), {}
        for trial_run in await uow.runs.of_study(study.name):
            trial = kept.get(trial_run.id)
            if trial is None or trial.revision != trial_run.revision or not _keepable(spec, trial_run):
                reported = await self._reported(uow, spec, trial_run)
                trial = ComputedTrial(trial_run.revision, reported, trial_view(trial_run, spec, reported))
            computed[trial_run.id] = trial
        self._views.keep(study.id, spec, computed)
        trials = tuple(t.view for t in computed.values())
        return StudyState(study, run, spec, trials, {t.view.name: t.reported for t in computed.values()})

    def _spec(self, study: Study) -> TuningSpec:
        """The study's tuning file parsed, with the limits its stored spec holds (UpdateStudy sets them)."""
        spec = self._specs.get(study.id)
        if spec is None:
            spec = self._specs[study.id] = parse_tuning(study.tuning)
        limits = study.limits
        if (spec.parallel_trial_count, spec.max_trial_count, spec.max_failed_trial_count) == (
                limits.parallel, limits.most, limits.failed):
            return spec
        return replace(spec, parallel_trial_count=limits.parallel, max_trial_count=limits.most,
                       max_failed_trial_count=limits.failed)

    async def _reported(self, uow: UnitOfWork, spec: TuningSpec, run: Run) -> list[tuple[str, float]]:
        """The watched metrics the trial reported: its metric log (stdout ``name=value`` lines, the SDK,
        MLflow), or its output read with the collector's own formats."""
        collector = spec.metrics_collector
        if collector.kind in FILE_COLLECTORS:  # Katib reads the files alone, not what it printed
            return list(run.trial.collected) if run.trial else []
        if collector.kind == "StdOut" and collector.filters:
            if run.status in (RunStatus.QUEUED, RunStatus.WAITING_FOR_GPUS):
                return []
            executor = await self.executors.of(run)
            text = (await executor.read_logs(run.id, 0, LOG_READ_MAX)).decode(errors="replace")
            return spec.metric_lines(text)
        return observations(await uow.metrics.series(run.id), spec.objective.metrics)


async def _retried(change: Callable[[], Awaitable[None]]) -> None:
    """``change`` again while another writer's change of the same record aborts it, STOP_ATTEMPTS times at
    most."""
    for attempt in range(STOP_ATTEMPTS):
        try:
            await change()
            return
        except Aborted:
            if attempt == STOP_ATTEMPTS - 1:
                raise


def _keepable(spec: TuningSpec, run: Run) -> bool:
    """Whether the trial's view may be kept while its run is unchanged: not while it runs with the StdOut
    collector's own formats (read from its log, which grows without saving the run)."""
    collector = spec.metrics_collector
    return run.status.final or collector.kind != "StdOut" or not collector.filters


def _points(run: Run, found: Sequence[tuple[str, float]], now: datetime) -> list[MetricPoint]:
    """Observations as metric points, each metric's steps going on after the run's latest: a value read
    later is the latest, also after a rewritten file."""
    steps = {name: mark[0] for name, mark in run.metric_marks.items()}
    points: list[MetricPoint] = []
    for name, value in found:
        steps[name] = steps.get(name, 0) + 1
        points.append(MetricPoint(name, value, steps[name], now))
    return points


def _variable(name: str) -> bool:
    """Whether a parameter's name may also be the trial's environment variable (a hyperparameter)."""
    return name.isidentifier() and name.isascii() and not name.upper().startswith("SHIPYARD_")


def _text(value: ParameterValue) -> str:
    return str(value)


def _rank(trial: TrialView, order: str, descending: bool) -> tuple[int, float, int]:
    if order == "number":
        value: float | None = float(trial.number)
    elif order == "objective":
        value = trial.objective
    else:
        summary = trial.metrics.get(order)
        value = summary.latest if summary else None
    if value is None:
        return (1, 0.0, trial.number)
    return (0, -value if descending else value, trial.number)


def _cursor(token: str) -> tuple[int, str]:
    """A trials page token's offset and ranking ("" for none)."""
    cursor = decode_token(TRIALS_PAGE_TAG, token, 3)
    if cursor is None:
        return 0, ""
    if not cursor[0].isdigit():
        raise InvalidArgument("page_token", "is not a token this API returned (or it is for another list)")
    return int(cursor[0]), cursor[2]


async def _must_get(uow: UnitOfWork, name: str) -> Study:
    study = await uow.studies.get(name)
    if study is None:
        raise NotFound(f"no study named {name!r}")
    return study


async def _study_run(uow: UnitOfWork, study: Study) -> Run:
    run = await uow.runs.by_id(study.id)
    if run is None:
        raise NotFound(f"the run of study {study.name!r} was deleted")
    return run
