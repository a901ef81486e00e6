"""``python -m bench.study_page``: what watching a study of thousands of trials costs: its console page and
the refresh the page asks for every 3 s, beside the same page and refresh read the way the console did
before (every trial on each refresh), in one run, on one machine, on the same data.

* **Data**: a study of ``--trials`` trials (3,000) written into run-svc's SQLite store, each with
  ``--points`` metric points (20), ``--running`` of them running; run-svc's ``Studies`` and StudyService
  servicer over it, and the gateway's study pages calling that servicer in-process (no gRPC or HTTP in
  between: what is measured is run-svc's reading and the console's rendering).
* **Before** (the reference): run-svc keeps no trial views (each call reads every trial's metric log again)
  and each refresh asks for the whole live part without the versions the page holds, as the console did:
  every trial read (pages of 1,000), the graph, the parallel coordinates of every succeeded trial and the
  table rendered.
* **Now**: run-svc keeps each trial's view while its run is unchanged and ranks a listing once for all its
  pages (``shipyard_run.app.trial_views``); the parallel coordinates draw the 500 best succeeded trials;
  the refresh sends back the versions the page shows: nothing changed → 204, no trial read; a running
  trial logged a metric → the summary and the table's page (graph, chart and best trials kept by the page);
  a trial ended → everything read again.

Each figure is the median of ``--repeat`` measures (wall time of the whole request, from the gateway's
handler to its response, run-svc's work included), printed beside the reference's as a ratio. Prints a
table and writes ``bench/out/study-page-last-run.json``; never fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from google.protobuf.message import Message
from rich import box
from rich.console import Console
from rich.table import Table
from shipyard_gateway.entrypoints.console import studies as study_pages
from shipyard_gateway.entrypoints.console.calls import CALLER
from shipyard_gateway.entrypoints.console.edge import WHOAMI
from shipyard_gateway.entrypoints.console.edge import Console as ConsolePages
from shipyard_gateway.entrypoints.console.studies import StudyPages
from shipyard_run.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_run.app.executors import Executors
from shipyard_run.app.studies import Studies
from shipyard_run.app.trial_views import RankedPages, TrialViews
from shipyard_run.domain.runs import MetricPoint, Run, RunKind, RunSpec, RunStatus, TrialOf, trial_name
from shipyard_run.domain.studies import Study
from shipyard_run.domain.tuning import parse_tuning
from shipyard_run.entrypoints.studies_api import StudyServicer

from bench.procs import REPO_ROOT
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.outbox import OUTBOX
from shipyard.kit.store.sqlite import SQLiteDocumentStore

OUT = REPO_ROOT / "bench" / "out"
STUDY = "tune"
OWNER = "ada"
TUNING = {
    "objective": {"type": "maximize", "objectiveMetricName": "accuracy", "additionalMetricNames": ["loss"]},
    "algorithm": {"algorithmName": "random"},
    "parallelTrialCount": 5, "maxTrialCount": 100_000,
    "parameters": [
        {"name": "lr", "parameterType": "double",
         "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"}},
        {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
    ],
}
TRIALS_PER_TRANSACTION = 200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.study_page", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=3000, help="trials of the study (3000)")
    p.add_argument("--running", type=int, default=5, help="of them running (5)")
    p.add_argument("--points", type=int, default=20, help="metric points per trial (20)")
    p.add_argument("--repeat", type=int, default=5, help="measures of each figure; medians (5)")
    return p.parse_args(argv)


# ---- the data ---------------------------------------------------------------------------------------


def _points(number: int, count: int, at: datetime) -> list[MetricPoint]:
    final = 0.5 + (number * 7919 % 400) / 1000
    points: list[MetricPoint] = []
    for step in range(1, count // 2 + 1):
        points += [MetricPoint("accuracy", final * step / (count // 2), step, at),
                   MetricPoint("loss", 1 - final * step / (count // 2), step, at)]
    return points


async def seed(store: SQLiteDocumentStore, trials: int, running: int, points: int) -> Run:
    """The study, its run and its trials (the last ``running`` still running); the study's run."""
    uow = unit_of_work_factory(store, None)
    text = yaml.safe_dump(TUNING)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    spec = RunSpec(name=STUDY, kind=RunKind.TRAINING, command="python train.py")
    parent = Run(id=uuid.uuid4().hex, spec=spec, owner=OWNER, create_time=now, sequence=0,
                 tuning=True).running(now)
    async with uow() as work:
        parent = await work.runs.add(parent)
        await work.studies.add(Study(id=parent.id, name=STUDY, owner=OWNER, project="", tuning=text,
                                     spec=parse_tuning(text).to_dict(), seed=1, create_time=now,
                                     next_trial=trials))
    for first in range(1, trials + 1, TRIALS_PER_TRANSACTION):
        async with uow() as work:
            for number in range(first, min(trials, first + TRIALS_PER_TRANSACTION - 1) + 1):
                at = now + timedelta(seconds=number)
                lr, optimizer = f"{0.001 * (1 + number % 97):.4g}", ("sgd", "adam")[number % 2]
                run = Run(id=uuid.uuid4().hex,
                          spec=replace(parent.spec, name=trial_name(STUDY, number), kind=RunKind.TRIAL),
                          owner=OWNER, create_time=at, sequence=number,
                          trial=TrialOf(STUDY, number, {"lr": lr, "optimizer": optimizer})).running(at)
                logged = _points(number, points, at)
                run = await work.runs.add(run.with_points(logged))
                await work.metrics.append(run.id, logged)
                if number <= trials - running:
                    await work.runs.save(run.ended(RunStatus.COMPLETE, at + timedelta(seconds=30)))
    return parent


async def log_metric(store: SQLiteDocumentStore, name: str, value: float) -> None:
    """A running trial logs a point (as the scheduler records it: the run saved with it)."""
    async with unit_of_work_factory(store, None)() as work:
        run = await work.runs.get(name)
        assert run is not None
        point = MetricPoint("accuracy", value, max(m[0] for m in run.metric_marks.values()) + 1,
                            datetime.now(UTC))
        await work.metrics.append(run.id, [point])
        await work.runs.save(run.with_points([point]))


async def end_trial(store: SQLiteDocumentStore, name: str) -> None:
    """A running trial completes."""
    async with unit_of_work_factory(store, None)() as work:
        run = await work.runs.get(name)
        assert run is not None
        await work.runs.save(run.ended(RunStatus.COMPLETE, datetime.now(UTC)))


# ---- the console over run-svc, in-process ----------------------------------------------------------


class InProcessCalls:
    """The console's calls answered by run-svc's StudyService servicer (and who the user is)."""

    def __init__(self, servicer: StudyServicer) -> None:
        self._servicer = servicer
        self.trial_pages = 0

    async def caller(self, request: web.Request, method: str) -> Caller:
        return Caller(OWNER, frozenset({"data-scientist"}))

    async def call(self, request: web.Request, method: str, message: Message, reply_type: type[Any]) -> Any:
        if method == WHOAMI:
            return gateway_pb2.User(name=OWNER, roles=[gateway_pb2.ROLE_DATA_SCIENTIST])
        name = method.rsplit("/", 1)[1]
        if name == "ListTrials":
            self.trial_pages += 1
        if not name.endswith(("Study", "Trials")):
            return reply_type()
        handler = cast(Callable[[Message, Any], Awaitable[Message]], getattr(self._servicer, name))
        return await handler(message, None)


class Page:
    """The study's page handler, called as the browser would (its path and the headers it sends);
    ``parallel_most``: the parallel-coordinates chart's lines (None: every succeeded trial, as before)."""

    def __init__(self, studies: Studies, parallel_most: int | None) -> None:
        self.calls = InProcessCalls(StudyServicer(studies))
        console = ConsolePages(cast(Any, None), cast(Any, None), cast(Any, None))
        console.calls = cast(Any, self.calls)
        self._pages = StudyPages(console)
        self._most = parallel_most

    async def get(self, path: str, headers: dict[str, str] | None = None) -> web.Response:
        request = make_mocked_request("GET", path, headers=headers or {}, match_info={"name": STUDY})
        request[CALLER] = await self.calls.caller(request, WHOAMI)
        kept, study_pages.PARALLEL_MOST = study_pages.PARALLEL_MOST, self._most or 1 << 30
        try:
            return await self._pages.detail(request)
        finally:
            study_pages.PARALLEL_MOST = kept


def versions(response: web.Response) -> dict[str, str]:
    """The versions a rendered page's live part sends back with its refresh."""
    text = response.text or ""
    start = text.index("hx-headers='") + len("hx-headers='")  # HTML-escaped JSON
    return cast(dict[str, str], json.loads(html.unescape(text[start:text.index("'", start)])))


async def _ms(request: Awaitable[web.Response]) -> tuple[float, web.Response]:
    began = time.perf_counter()
    response = await request
    return (time.perf_counter() - began) * 1000, response


class Watch:
    """The same study watched before and now: each measure applies a change (untimed), then times the
    page's request on both sides."""

    def __init__(self, before: Page, now: Page) -> None:
        self.before, self.now = before, now
        self.shown: dict[str, str] = {}  # the versions the page (now) shows

    async def figure(self, path: str, change: Callable[[], Awaitable[None]], repeat: int,
                     refresh: bool) -> dict[str, Any]:
        """Medians of ``repeat`` measures; the ListTrials calls of one; the answer (now)."""
        before_ms, now_ms, status = [], [], 0
        self.before.calls.trial_pages = self.now.calls.trial_pages = 0
        for _ in range(repeat):
            await change()
            ms, _ = await _ms(self.before.get(path))
            before_ms.append(ms)
            ms, response = await _ms(self.now.get(path, self.shown if refresh else None))
            now_ms.append(ms)
            status = response.status
            if response.status == 200:
                self.shown = versions(response)
        before, now = statistics.median(before_ms), statistics.median(now_ms)
        return {"before_ms": before, "now_ms": now, "ratio": now / before, "status": status,
                "trial_pages_before": self.before.calls.trial_pages / repeat,
                "trial_pages_now": self.now.calls.trial_pages / repeat}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure, before and now."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteDocumentStore(Path(tmp) / "run.db")
        await store.open([*COLLECTIONS, OUTBOX])
        try:
            await seed(store, args.trials, args.running, args.points)
            uow = unit_of_work_factory(store, None)
            executors = cast(Executors, None)  # the metric-log collector reads no executor
            # Before: no views kept, each page ranked anew, every succeeded trial in the chart.
            keeping_nothing = Studies(uow, executors, None, _views=TrialViews(limit=0),
                                      _rankings=RankedPages(limit=0))
            watch = Watch(Page(keeping_nothing, None),
                          Page(Studies(uow, executors, None), study_pages.PARALLEL_MOST))
            page, body = f"/studies/{STUDY}", f"/studies/{STUDY}?fragment=body"
            first = args.trials - args.running + 1
            running = iter(trial_name(STUDY, n) for n in range(first, args.trials + 1))
            first_running = trial_name(STUDY, first)
            value = iter(range(1, 1 << 30))

            async def nothing() -> None:
                return None

            async def a_metric() -> None:
                await log_metric(store, first_running, 0.3 + next(value) / 1e6)

            async def an_end() -> None:
                await end_trial(store, next(running))

            return {
                "page (first render)": await watch.figure(page, nothing, args.repeat, refresh=False),
                "refresh, nothing changed": await watch.figure(body, nothing, args.repeat, refresh=True),
                "refresh, a running trial logged a metric": await watch.figure(body, a_metric, args.repeat,
                                                                               refresh=True),
                "refresh, a trial ended": await watch.figure(body, an_end, min(args.repeat, args.running - 1),
                                                             refresh=True),
            }
        finally:
            await store.close()


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """The table, and the JSON file."""
    table = Table(title=f"A study of {args.trials:,} trials ({args.running} running, {args.points} points "
                        f"each): medians of {args.repeat}", box=box.SIMPLE)
    for column in ("", "before (ms)", "now (ms)", "now / before", "ListTrials calls before → now", "answer"):
        table.add_column(column, justify="left" if not column else "right")
    for label, f in figures.items():
        pages = f"{f['trial_pages_before']:.0f} → {f['trial_pages_now']:.0f}"
        table.add_row(label, f"{f['before_ms']:.0f}", f"{f['now_ms']:.1f}", f"{f['ratio']:.3f}x", pages,
                      str(f["status"]))
    Console(width=140).print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "study-page-last-run.json").write_text(json.dumps({"args": vars(args), "figures": figures},
                                                             indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    args = parse_args(argv)
    report(args, asyncio.run(measure(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
