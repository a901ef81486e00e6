"""Who may do what with a run, against fakes: outputs need the right to write their repos (at
submit, for clones and templates too), a config file goes only to whoever may read it, and only
a run's owner or an operator starts or stops its TensorBoard."""

from __future__ import annotations

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.app.templates import Templates
from shipyard_run.domain.runs import OutputTarget, RunStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.errors import PermissionDenied
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER

DENIED = r"run.outputs\[0\]: model 'mnist' belongs to 'alice'; only its owner or an operator may write"


async def _world() -> tuple[World, Templates]:
    world = await fake_world()
    world.repos.add("model", "mnist", owner="alice")
    world.repos.add("model", "bobs", owner="bob")
    return world, world.templates


async def _alices_run(world: World) -> None:
    spec = a_spec("train-1", outputs=(OutputTarget("model", "mnist"),), config_file_name="params.yaml")
    await world.runs.submit(ALICE, spec, b"secret: alice\n")


async def test_a_run_may_not_write_a_repo_its_submitter_may_not_write() -> None:
    world, _ = await _world()
    with pytest.raises(PermissionDenied, match=DENIED):
        await world.runs.submit(BOB, a_spec("steal", outputs=(OutputTarget("model", "mnist"),)))
    assert await world.stored_runs() == [] and world.uow.published == []


async def test_its_owner_and_an_operator_may_and_the_run_keeps_the_repo_and_roles_it_was_allowed() -> None:
    world, _ = await _world()
    mine = await world.runs.submit(ALICE, a_spec("mine", outputs=(OutputTarget("model", "mnist"),)))
    ops = await world.runs.submit(OPERATOR_CALLER, a_spec("ops", outputs=(OutputTarget("model", "bobs"),)))
    assert mine.spec.outputs[0].repo_id == "id-model-mnist" and mine.owner_roles == ("data-scientist",)
    assert ops.owner_roles == ("operator",)
    submitted = world.events(events_pb2.RunSubmitted, run="mine")[0]
    assert isinstance(submitted, events_pb2.RunSubmitted)
    assert submitted.outputs[0].repo_id == "id-model-mnist"


async def test_run_completed_names_the_authorized_repo_and_the_owner_with_its_roles() -> None:
    world, _ = await _world()
    run = await world.runs.submit(OPERATOR_CALLER, a_spec("ops", outputs=(OutputTarget("model", "mnist"),)))
    await world.scheduler.tick()
    world.executor.exit(run.id, 0)
    await world.scheduler.tick()
    assert await world.status("ops") is RunStatus.COMPLETE
    completed = world.events(events_pb2.RunCompleted, run="ops")[0]
    assert isinstance(completed, events_pb2.RunCompleted)
    assert (completed.actor.user, list(completed.actor.roles)) == ("olga", ["operator"])
    assert completed.outputs[0].repo_id == "id-model-mnist"


async def test_a_clone_of_someone_elses_run_may_not_write_their_repo() -> None:
    world, templates = await _world()
    await _alices_run(world)
    with pytest.raises(PermissionDenied, match=DENIED):
        await templates.clone(BOB, "train-1", "steal", {})
    assert [r.name for r in await world.stored_runs()] == ["train-1"]
    assert (await templates.clone(OPERATOR_CALLER, "train-1", "by-ops", {})).spec.outputs[0].repo == "mnist"


async def test_a_template_that_writes_someone_elses_repo_refuses_them_at_submit() -> None:
    world, templates = await _world()
    await _alices_run(world)
    await templates.create(ALICE, "alices", "train-1")
    with pytest.raises(PermissionDenied, match=DENIED):
        await templates.submit(BOB, "alices", pb.Run(name="steal"))
    given = pb.Run(name="own-output", outputs=[pb.RunOutputTarget(repo_kind="model", repo="bobs")])
    assert (await templates.submit(BOB, "alices", given)).spec.outputs[0].repo == "bobs"


async def test_a_template_made_from_someone_elses_run_carries_no_config() -> None:
    world, templates = await _world()
    await _alices_run(world)
    template = await templates.create(BOB, "bobs-copy", "train-1")
    assert await templates.get("bobs-copy") == (template, False)
    assert template.spec.config_file_name == ""
    run = await templates.submit(BOB, "bobs-copy", pb.Run(
        name="from-copy", outputs=[pb.RunOutputTarget(repo_kind="model", repo="bobs")]))
    assert run.id not in (await world.config_files()) and run.spec.config_file_name == ""
    # Its owner's and an operator's templates keep it.
    assert (await templates.get((await templates.create(ALICE, "alices", "train-1")).name))[1] is True
    assert (await templates.get((await templates.create(OPERATOR_CALLER, "ops", "train-1")).name))[1] is True


async def test_someone_elses_template_gives_its_config_only_to_its_owner_or_an_operator() -> None:
    world, templates = await _world()
    await _alices_run(world)
    await templates.create(ALICE, "alices", "train-1")
    bobs_output = [pb.RunOutputTarget(repo_kind="model", repo="bobs")]
    bobs = await templates.submit(BOB, "alices", pb.Run(name="bobs", outputs=bobs_output))
    alices = await templates.submit(ALICE, "alices", pb.Run(name="alices"))
    assert bobs.id not in (await world.config_files()) and bobs.spec.config_file_name == ""
    assert (await world.config_files())[alices.id] == b"secret: alice\n"
    own = await templates.submit(BOB, "alices", pb.Run(name="own", outputs=bobs_output), config=b"mine")
    assert (await world.config_files())[own.id] == b"mine" and own.spec.config_file_name == "params.yaml"


async def test_a_clone_by_someone_else_gets_no_config() -> None:
    world, templates = await _world()
    await _alices_run(world)
    world.repos.repo("model", "mnist").owner = "bob"  # so that bob may write the output
    clone = await templates.clone(BOB, "train-1", "bobs-clone", {})
    assert clone.id not in (await world.config_files()) and clone.spec.config_file_name == ""
    by_operator = await templates.clone(OPERATOR_CALLER, "train-1", "ops-clone", {})
    assert (await world.config_files())[by_operator.id] == b"secret: alice\n"


async def test_only_the_owner_or_an_operator_starts_or_stops_a_runs_tensorboard() -> None:
    world, _ = await _world()
    run = await world.runs.submit(ALICE, a_spec("tb"))
    with pytest.raises(PermissionDenied, match="only its owner or an operator may start its TensorBoard"):
        await world.runs.start_tensorboard(BOB, "tb")
    assert world.executor.boards == {}
    await world.runs.start_tensorboard(ALICE, "tb")
    with pytest.raises(PermissionDenied, match="only its owner or an operator may stop its TensorBoard"):
        await world.runs.stop_tensorboard(BOB, "tb")
    assert (await world.runs.tensorboard("tb"))[1] is not None  # still running; anyone may look
    await world.runs.stop_tensorboard(OPERATOR_CALLER, "tb")
    assert run.id not in world.executor.boards
    await world.runs.start_tensorboard(OPERATOR_CALLER, "tb")
    assert run.id in world.executor.boards
