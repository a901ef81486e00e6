"""Templates and clones against fakes: settings kept, pins dropped or kept, config files carried."""

from __future__ import annotations

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.app.templates import Templates
from shipyard_run.domain.runs import Input, OutputTarget, RunKind

from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.errors import AlreadyExists, NotFound, PermissionDenied
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER


async def _world() -> tuple[World, Templates]:
    world = await fake_world()
    world.repos.add("dataset", "digits", latest=3)
    world.repos.add("model", "mnist")
    world.repos.add_code("trainer", "a" * 40)
    return world, world.templates


async def _train_1(world: World) -> None:
    spec = a_spec("train-1", code="trainer", hyperparameters={"lr": "0.1", "batch": "64"},
                  inputs=(Input("dataset", "digits", "/mnt/data", version=2),),
                  outputs=(OutputTarget("model", "mnist"),), config_file_name="params.yaml")
    await world.runs.submit(ALICE, spec, b"epochs: 3\n")


async def test_a_clone_keeps_the_pins_and_the_config_and_changes_hyperparameters() -> None:
    world, templates = await _world()
    await _train_1(world)
    clone = await templates.clone(ALICE, "train-1", "train-2", {"lr": "0.05"})
    assert clone.spec.hyperparameters == {"lr": "0.05", "batch": "64"}
    assert (clone.spec.inputs[0].version, clone.spec.commit) == (2, "a" * 40)
    assert (await world.config_files())[clone.id] == b"epochs: 3\n"
    assert world.event_names("train-2") == ["RunSubmitted"]


async def test_a_clone_of_an_unknown_run_or_to_a_taken_name_makes_nothing() -> None:
    world, templates = await _world()
    await _train_1(world)
    with pytest.raises(NotFound):
        await templates.clone(ALICE, "nope", "x", {})
    with pytest.raises(AlreadyExists):
        await templates.clone(ALICE, "train-1", "train-1", {})
    assert [run.name for run in await world.stored_runs()] == ["train-1"]


async def test_a_template_follows_the_latest_versions_and_submits_with_overrides() -> None:
    world, templates = await _world()
    await _train_1(world)
    template = await templates.create(ALICE, "small", "train-1", "small model")
    assert template.spec.inputs[0].version == 0 and template.spec.commit == ""
    world.repos.add("dataset", "digits", latest=4)
    run = await templates.submit(ALICE, "small", pb.Run(name="from-template", hyperparameters={"lr": "0.2"}))
    assert run.spec.hyperparameters == {"lr": "0.2", "batch": "64"}
    assert (run.spec.inputs[0].version, run.spec.command) == (4, "python train.py")
    assert run.spec.kind is RunKind.TRAINING
    assert (await world.config_files())[run.id] == b"epochs: 3\n"


async def test_given_inputs_replace_the_templates() -> None:
    world, templates = await _world()
    await _train_1(world)
    await templates.create(ALICE, "small", "train-1")
    given = pb.Run(name="other-data", inputs=[pb.RunInput(repo_kind="dataset", repo="digits", version=1,
                                                          mount_path="/data/in")])
    run = await templates.submit(ALICE, "small", given)
    assert [(i.mount_path, i.version) for i in run.spec.inputs] == [("/data/in", 1)]


async def test_templates_are_listed_and_deleted_by_their_owner_or_an_operator() -> None:
    world, templates = await _world()
    await _train_1(world)
    await templates.create(ALICE, "b-template", "train-1")
    await templates.create(ALICE, "a-template", "train-1")
    assert [(t.name, has_config) for t, has_config in await templates.list()] == [
        ("a-template", True), ("b-template", True)]
    with pytest.raises(AlreadyExists):
        await templates.create(BOB, "a-template", "train-1")
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await templates.delete(BOB, "a-template")
    await templates.delete(OPERATOR_CALLER, "a-template")
    with pytest.raises(NotFound, match="no run template named 'a-template'"):
        await templates.get("a-template")
