"""repo-svc's refusal of a finished run's output is noted on the run, once, its status kept."""

from __future__ import annotations

from run_fakes import a_spec, fake_world
from shipyard_run.app.messages import run_to_proto
from shipyard_run.domain.runs import RunStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.kit.events import new_event
from shipyard.kit.testing import ALICE

WHY = "model 'mnist' belongs to 'bob'; only its owner or an operator may write its versions"


def _refused(run_id: str, repo: str = "mnist") -> events_pb2.VersionRefused:
    return events_pb2.VersionRefused(run_id=run_id, run_name="train", repo_kind="model", repo=repo,
                                     reason=WHY)


async def test_a_refused_output_is_noted_on_the_complete_run_once_however_often_it_is_told() -> None:
    world = await fake_world()
    run = await world.runs.submit(ALICE, a_spec("train"))
    await world.scheduler.tick()
    world.executor.exit(run.id, 0)
    await world.scheduler.tick()
    refusals = world.service.refusals
    told = new_event(_refused(run.id), source="repo-svc", subject="runs/train")
    await refusals.apply([told])
    await refusals.apply([told, new_event(_refused(run.id), source="repo-svc", subject="runs/train")])

    noted = await world.run("train")
    note = f"output model 'mnist' was not kept: {WHY}"
    assert (noted.status, noted.notes[1:], noted.status_reason) == (RunStatus.COMPLETE, (note,), note)
    shown = run_to_proto(noted)
    assert (shown.status, shown.notes[-1], shown.status_reason) == (runs_pb2.RUN_STATUS_COMPLETE, note, note)


async def test_each_refused_output_is_noted_and_a_gone_run_is_skipped() -> None:
    world = await fake_world()
    run = await world.runs.submit(ALICE, a_spec("train"))
    await world.service.refusals.apply([
        new_event(_refused(run.id), source="repo-svc", subject="runs/train"),
        new_event(_refused(run.id, "digits"), source="repo-svc", subject="runs/train"),
        new_event(_refused("no-such-run"), source="repo-svc", subject="runs/gone"),
    ])
    noted = await world.run("train")
    assert [n.split(" was not kept")[0] for n in noted.notes] == [
        "output model 'mnist'", "output model 'digits'"]
    assert noted.status_reason == "; ".join(noted.notes)
