"""Runs and metric points for the console benchmark, written into run-svc's own store before the
stack starts — through run-svc's own repositories, so the documents are exactly what run-svc
writes. 10,000 finished runs with 1,000 metric points each (two metrics of 500 steps, appended
100 points at a time as a running run's log is read) cannot be made by running them here."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipyard_run.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_run.app.ports import MetricPoint
from shipyard_run.domain.runs import Run, RunKind, RunSpec, RunStatus
from shipyard_run.settings import RunSettings

from shipyard.kit.outbox import OUTBOX
from shipyard.kit.store.factory import open_document_store

RUNS_PER_TRANSACTION = 50
POINTS_PER_APPEND = 100
METRICS = ("loss", "accuracy")


def run_name(index: int) -> str:
    """The name of the ``index``-th seeded run."""
    return f"bench-run-{index:05d}"


def _points(rng: random.Random, steps: int, start: datetime) -> list[MetricPoint]:
    decay = rng.uniform(0.002, 0.01)
    points = []
    for step in range(1, steps + 1):
        at = start + timedelta(seconds=step)
        loss = 2.5 * math.exp(-decay * step) + rng.gauss(0, 0.02)
        points += [MetricPoint("loss", loss, step, at), MetricPoint("accuracy", 1 - loss / 2.5, step, at)]
    return points


async def seed(data_dir: Path, runs: int, points_per_run: int, seed_value: int = 7) -> None:
    """Write ``runs`` complete runs, each with ``points_per_run`` metric points, into the store run-svc
    will open in ``data_dir``."""
    settings = RunSettings(data_dir=data_dir)
    store = open_document_store(settings.default_store_url())
    settings.service_dir().mkdir(parents=True, exist_ok=True)
    await store.open([*COLLECTIONS, OUTBOX])
    uow = unit_of_work_factory(store, None)
    rng = random.Random(seed_value)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    steps = points_per_run // len(METRICS)
    try:
        for first in range(0, runs, RUNS_PER_TRANSACTION):
            async with uow() as work:
                for index in range(first, min(runs, first + RUNS_PER_TRANSACTION)):
                    created = start + timedelta(minutes=index)
                    points = _points(rng, steps, created)
                    spec = RunSpec(
                        name=run_name(index),
                        kind=RunKind.TRAINING,
                        command="python train.py",
                        project="bench",
                        tags=("bench",),
                        hyperparameters={"lr": f"{rng.uniform(0.001, 0.1):.4f}"},
                    )
                    run = await work.runs.add(
                        Run(
                            id=f"{index:032x}",
                            spec=spec,
                            owner="admin",
                            create_time=created,
                            sequence=index + 1,
                            status=RunStatus.COMPLETE,
                            start_time=created,
                            end_time=created + timedelta(seconds=steps),
                            metrics={p.name: p.value for p in points[-len(METRICS) :]},
                        )
                    )
                    for offset in range(0, len(points), POINTS_PER_APPEND):
                        await work.metrics.append(run.id, points[offset : offset + POINTS_PER_APPEND])
    finally:
        await store.close()


def seed_blocking(data_dir: Path, runs: int, points_per_run: int) -> None:
    """:func:`seed` from synchronous code."""
    asyncio.run(seed(data_dir, runs, points_per_run))
