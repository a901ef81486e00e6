"""Reading a study: each trial's view is kept while its run is unchanged (its metric log is not read again),
and the study's trials revision moves whenever one of its trials changes (the console's refresh reads it)."""

from __future__ import annotations

import pytest
from shipyard_run.adapters.store import StoredMetrics, StoredRuns
from shipyard_run.app.study_messages import study_to_proto
from shipyard_run.domain.runs import MetricPoint, Run
from test_run_studies import _finish_running, _running, _step, _studies, _submit, _trials, _world


@pytest.fixture
def series_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The run ids whose metric log is read, in order."""
    reads: list[str] = []
    original = StoredMetrics.series

    async def counted(self: StoredMetrics, run_id: str) -> list[MetricPoint]:
        reads.append(run_id)
        return await original(self, run_id)

    monkeypatch.setattr(StoredMetrics, "series", counted)
    return reads


async def test_a_trials_metric_log_is_read_again_only_when_its_run_changed(series_reads: list[str]) -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    await _finish_running(world, {1: 0.7, 2: 0.9})  # two ended; the driver started two more
    studies = _studies(world)
    first = study_to_proto(await studies.get("tune"))
    series_reads.clear()
    again = study_to_proto(await studies.get("tune"))
    _, page, _ = await studies.trials("tune", "objective", True, 10, "")
    assert series_reads == []  # nothing changed: every view kept
    assert again.trials_revision == first.trials_revision and len(page) == 4

    running = _running(world, await _trials(world))[0]
    world.executor.log_metrics(running.id, ("accuracy", 0.42, 1))
    await world.scheduler.tick()  # the scheduler records what it logged
    series_reads.clear()
    state = await studies.get("tune")
    assert series_reads == [running.id]  # only the trial that changed
    changed = next(t for t in state.trials if t.name == running.name)
    assert changed.metrics["accuracy"].latest == 0.42
    assert study_to_proto(state).trials_revision != first.trials_revision


async def test_each_studys_kept_views_are_its_own() -> None:
    world = await _world()
    await _submit(world)
    await _submit(world, name="other")
    await _step(world)
    tune, other = await _studies(world).get("tune"), await _studies(world).get("other")
    assert {t.name for t in tune.trials} == {"tune-t001", "tune-t002"}
    assert {t.name for t in other.trials} == {"other-t001", "other-t002"}



async def test_a_listings_next_pages_read_the_first_pages_ranking_while_it_is_recent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    await _finish_running(world, {1: 0.7, 2: 0.9})
    studies = _studies(world)
    reads: list[str] = []
    original = StoredRuns.of_study

    async def counted(self: StoredRuns, study: str) -> list[Run]:
        reads.append(study)
        return await original(self, study)

    monkeypatch.setattr(StoredRuns, "of_study", counted)
    now = [100.0]
    studies._rankings.clock = lambda: now[0]
    _, first, token = await studies.trials("tune", "number", False, 1, "")
    listed = [t.name for t in first]
    while token:
        _, page, token = await studies.trials("tune", "number", False, 1, token)
        listed += [t.name for t in page]
    assert listed == ["tune-t001", "tune-t002", "tune-t003", "tune-t004"]
    assert reads == ["tune"]  # the study read once for its four pages

    _, _, token = await studies.trials("tune", "number", False, 2, "")
    now[0] += 31  # asked for long after: ranked again, from the same place
    _, rest, _ = await studies.trials("tune", "number", False, 2, token)
    assert [t.name for t in rest] == ["tune-t003", "tune-t004"] and reads == ["tune", "tune", "tune"]
