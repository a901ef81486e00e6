"""Image builds from code repos: the build file read at once, the environment built in the background,
the image announced to the catalog; reuse; bad build files refused with nothing created."""

from __future__ import annotations

import asyncio

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.app.ports import EnvironmentFailed
from shipyard_run.domain.image_builds import BuildRequest, BuildStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.environments import environment_digest
from shipyard.kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from shipyard.kit.testing import ALICE, BOB, digest_of

SHA_1, SHA_2 = "1" * 40, "2" * 40
CHURN = {".shipyard-ci.yml": "images:\n  path: .\n  images:\n"
                             "    - {name: churn-env, base_image: python:3.11-slim}\n",
         "requirements.txt": "scikit-learn==1.3.*\npandas\n", "train.py": "print(1)\n"}


async def _world(files: dict[str, str] | None = None) -> World:
    world = await fake_world()
    world.repos.add_code("churn", SHA_1, SHA_2)
    world.files.add(digest_of("churn", 2), files or CHURN)
    world.files.add(digest_of("churn", 1), {"requirements.txt": "numpy\n"})
    return world


async def _built(world: World) -> None:
    """Run the builder until no build is left building (a deadline of 5 s)."""
    builder = world.service.builder
    async with asyncio.timeout(5):
        await builder.start_waiting()
        while builder._running:
            await asyncio.gather(*builder._running.values())


async def test_a_build_reads_the_build_file_then_builds_and_announces_the_image() -> None:
    world = await _world()
    build = await world.service.builds.build(ALICE, BuildRequest("churn-env", "churn"))

    assert (build.status, build.request.commit, build.build_file) == (BuildStatus.BUILDING, SHA_2,
                                                                      ".shipyard-ci.yml")
    assert (build.requirements, build.base_image) == (("scikit-learn==1.3.*", "pandas"), "python:3.11-slim")
    assert build.digest == environment_digest("", ("scikit-learn==1.3.*", "pandas"))
    assert world.uow.messages(events_pb2.BuildCompleted) == []

    await _built(world)
    done = await world.service.builds.get("churn-env")
    assert (done.status, done.reused, done.end_time is not None) == (BuildStatus.COMPLETE, False, True)
    assert world.executor.builds == ["churn-env"]
    (announced,) = world.uow.messages(events_pb2.BuildCompleted)
    assert (announced.build.name, announced.build.owner, list(announced.build.requirements)) == (
        "churn-env", "alice", ["scikit-learn==1.3.*", "pandas"])
    assert announced.actor.user == "alice"


async def test_the_same_inputs_again_are_the_same_build_and_nothing_is_rebuilt() -> None:
    world = await _world()
    first = await world.service.builds.build(ALICE, BuildRequest("churn-env", "churn"))
    await _built(world)
    again = await world.service.builds.build(ALICE, BuildRequest("churn-env", "churn", commit=SHA_2))
    assert again.id == first.id
    assert len(await world.service.builds.list("churn-env")) == 1

    # Another image of the same environment: a new build that finds the environment made.
    other = await world.service.builds.build(ALICE, BuildRequest("churn-copy", "churn"))
    await _built(world)
    assert ((await world.service.builds.get("churn-copy")).reused, other.digest) == (True, first.digest)
    assert world.executor.builds == ["churn-env"]


async def test_a_bad_build_file_is_refused_naming_the_key_and_nothing_is_created() -> None:
    world = await _world({".shipyard-ci.yml": "conda_env: {path: e.yml}\nbuild_args: [x]\n"})
    with pytest.raises(InvalidArgument) as refused:
        await world.service.builds.build(ALICE, BuildRequest("bad", "churn"))
    assert refused.value.field == ".shipyard-ci.yml: build_args"
    assert await world.service.builds.list() == []
    with pytest.raises(NotFound):
        await world.service.builds.build(ALICE, BuildRequest("bad", "nope"))
    assert await world.service.builds.list() == []


async def test_a_name_the_catalog_holds_is_refused() -> None:
    world = await _world()
    world.repos.add_image("sklearn-1.5", ("scikit-learn==1.5.*",), framework="sklearn",
                          framework_version="1.5")
    with pytest.raises(AlreadyExists, match=r"the catalog has an image named 'sklearn-1\.5'"):
        await world.service.builds.build(ALICE, BuildRequest("sklearn-1.5", "churn"))
    with pytest.raises(InvalidArgument, match="build-from-code-repo"):
        await world.service.builds.build(ALICE, BuildRequest("build-from-code-repo", "churn"))


async def test_a_second_build_of_an_image_waits_for_the_first_to_end() -> None:
    world = await _world()
    world.executor.build_gate = asyncio.Event()
    await world.service.builds.build(ALICE, BuildRequest("churn-env", "churn"))
    with pytest.raises(FailedPrecondition, match="is being built already"):
        await world.service.builds.build(BOB, BuildRequest("churn-env", "churn", commit=SHA_1))
    world.executor.build_gate.set()
    await _built(world)


async def test_a_failed_build_says_why_and_announces_no_image() -> None:
    world = await _world()
    world.executor.build_errors["churn-env"] = EnvironmentFailed(
        "No solution found: scikit-learn==1.3.* not found")
    await world.service.builds.build(ALICE, BuildRequest("churn-env", "churn"))
    await _built(world)
    failed = await world.service.builds.get("churn-env")
    assert (failed.status, failed.status_reason) == (BuildStatus.FAILED,
                                                     "No solution found: scikit-learn==1.3.* not found")
    assert world.uow.messages(events_pb2.BuildCompleted) == []
    reasons = [e.build.status_reason for e in world.uow.messages(events_pb2.BuildFailed)]
    assert reasons == [failed.status_reason]


async def test_a_restarted_run_svc_takes_up_the_builds_not_ended() -> None:
    world = await _world()
    world.executor.build_gate = asyncio.Event()
    await world.service.builds.build(ALICE, BuildRequest("churn-env", "churn"))
    first = world.service.builder
    await first.start_waiting()
    for task in first._running.values():  # run-svc dies: its builder's tasks with it
        task.cancel()
    world.restarted()
    world.executor.build_gate.set()
    await _built(world)
    assert (await world.service.builds.get("churn-env")).status is BuildStatus.COMPLETE


async def test_a_run_asking_for_build_from_code_repo_runs_in_its_codes_environment() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("t3", code="churn", image="build-from-code-repo"))

    assert (run.spec.commit, run.spec.code_manifest) == (SHA_2, digest_of("churn", 2))
    assert run.spec.environment is not None
    assert (run.spec.environment.image, run.spec.environment.requirements) == (
        f"churn-{SHA_2[:12]}", ("scikit-learn==1.3.*", "pandas"))
    build = await world.service.builds.get(f"churn-{SHA_2[:12]}")
    assert build.digest == run.spec.environment.digest
    # A second run of that commit reuses the build.
    await world.runs.submit(ALICE, a_spec("t4", code="churn", image="build-from-code-repo"))
    assert len(await world.service.builds.list()) == 1


async def test_build_from_code_repo_needs_a_code_repo() -> None:
    world = await _world()
    with pytest.raises(InvalidArgument) as refused:
        await world.runs.submit(ALICE, a_spec("t3", image="build-from-code-repo"))
    assert refused.value.field == "run.image"
    assert await world.stored_runs() == []


async def test_the_build_log_is_read_from_the_executor_by_offset() -> None:
    world = await _world()
    await world.service.builds.build(ALICE, BuildRequest("churn-env", "churn"))
    await _built(world)
    digest = environment_digest("", ("scikit-learn==1.3.*", "pandas"))
    world.executor.environment_logs[digest] = b"resolved\nok\n"
    assert await world.service.builds.read_log("churn-env", 0, 0) == (b"resolved\nok\n", 12, False)
    assert await world.service.builds.read_log("churn-env", 12, 0) == (b"", 12, True)
    with pytest.raises(InvalidArgument):
        await world.service.builds.read_log("churn-env", -1, 0)
    with pytest.raises(NotFound):
        await world.service.builds.read_log("nope", 0, 0)
