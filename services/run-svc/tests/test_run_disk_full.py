"""A run on a full disk (issue 14, Low): it ends, failed or error, saying the disk is full — it does
not stay ``running`` nor end with a made-up exit code — and outputs that cannot be stored for lack
of space end it in error with nothing stored of them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from run_fakes import a_spec, fake_world
from shipyard_run.adapters.local import LocalExecutor
from shipyard_run.app.ports import Job, JobState, JobStatus
from shipyard_run.domain.runs import RunStatus

from shipyard.kit import errors
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.testing import ALICE
from tests.support.tiny_disk import fill, tiny_disk

RUN_ID = "0123456789abcdef0123456789abcdef"
SHARED = "not isolated in this test"
MiB = 1 << 20


# --- the scheduler: what the executor's answer makes of the run ---------------------------------


async def test_a_run_that_ended_on_a_full_disk_with_code_0_ends_in_error_saying_so() -> None:
    world = await fake_world()
    run = await world.runs.submit(ALICE, a_spec("full"))
    await world.scheduler.tick()
    reason = "no space left on device: the run ended, but its exit code could not be recorded"
    world.executor.states[run.id] = JobStatus(JobState.NO_SPACE, detail=reason)
    await world.scheduler.tick()
    ended = await world.run("full")
    assert (ended.status, ended.status_reason) == (RunStatus.ERROR, reason)
    assert world.event_names("full") == ["RunSubmitted", "RunStarted", "RunFailed"]


async def test_a_run_whose_command_failed_on_a_full_disk_fails_with_its_code() -> None:
    world = await fake_world()
    run = await world.runs.submit(ALICE, a_spec("full"))
    await world.scheduler.tick()
    world.executor.states[run.id] = JobStatus(JobState.NO_SPACE, 1, "no space left on device: code 1")
    await world.scheduler.tick()
    ended = await world.run("full")
    assert (ended.status, ended.exit_code, ended.status_reason) == (
        RunStatus.FAILED, 1, "no space left on device: code 1")


async def test_outputs_with_no_room_end_the_run_in_error_naming_the_disk() -> None:
    world = await fake_world()
    run = await world.runs.submit(ALICE, a_spec("full"))
    await world.scheduler.tick()
    world.executor.stage_error = errors.NoSpace("the outputs to the blob store")
    world.executor.exit(run.id, 0)
    await world.scheduler.tick()
    ended = await world.run("full")
    assert (ended.status, ended.status_reason) == (
        RunStatus.ERROR, "no space left on device while writing the outputs to the blob store")


# --- the local executor on a real full disk ----------------------------------------------------


async def _ended(executor: LocalExecutor) -> JobStatus:
    for _ in range(800):
        status = await executor.status(RUN_ID)
        if status.state not in (JobState.RUNNING, JobState.NOT_STARTED):
            return status
        await asyncio.sleep(0.025)
    raise TimeoutError("the run did not end")


async def _executor(tmp_path: Path, root: Path, blobs_root: Path | None = None) -> LocalExecutor:
    blobs = LocalBlobStore(blobs_root or tmp_path / "blobs")
    await blobs.open()
    return LocalExecutor(root, blobs, gpus=0, isolation=SHARED)


async def _submit(executor: LocalExecutor, command: str) -> None:
    await executor.submit(Job(run_id=RUN_ID, name="filler", command=command, output_paths=("",)))


async def test_a_run_that_fills_its_disk_and_exits_0_is_not_reported_as_exit_code_0(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        executor = await _executor(tmp_path, disk / "workspaces")
        await _submit(executor, 'head -c 8M /dev/zero > "$SHIPYARD_OUTPUT/fill"; true')
        status = await _ended(executor)
        assert status.state is JobState.NO_SPACE
        assert status.detail.startswith("no space left on device: the command exited with code 0, but its "
                                        "exit code could not be recorded")
        # A run-svc started since (no handle on the process) tells the same, without a code.
        later = LocalExecutor(disk / "workspaces", LocalBlobStore(tmp_path), gpus=0, isolation=SHARED)
        again = await later.status(RUN_ID)
        assert (again.state, again.exit_code) == (JobState.NO_SPACE, 0)
        assert again.detail == ("no space left on device: the run ended, but its exit code could not be "
                                "recorded")


async def test_metrics_of_a_run_on_a_full_disk_are_read_once(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        executor = await _executor(tmp_path, disk / "workspaces")
        await _submit(executor, "echo loss=0.5; sleep 30")
        for _ in range(400):
            if b"loss" in await executor.read_logs(RUN_ID, 0, 100):
                break
            await asyncio.sleep(0.025)
        fill(disk)
        first = await executor.new_metrics(RUN_ID)  # the cursor file cannot be written: no error
        assert [(p.name, p.value) for p in first] == [("loss", 0.5)]
        assert await executor.new_metrics(RUN_ID) == []
        await executor.stop(RUN_ID)
        await _ended(executor)


async def test_outputs_stored_on_a_full_disk_are_resource_exhausted_leaving_no_temp_file(
        tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", size="8m") as disk:
        executor = await _executor(tmp_path, tmp_path / "workspaces", blobs_root=disk / "blobs")
        await _submit(executor, 'head -c 6M /dev/urandom > "$SHIPYARD_OUTPUT/weights"')
        assert await _ended(executor) == JobStatus(JobState.EXITED, 0)
        fill(disk, leave=MiB)
        with pytest.raises(errors.ResourceExhausted) as raised:
            await executor.stage_outputs(RUN_ID)
        assert raised.value.message == "no space left on device while writing the outputs to the blob store"
        assert list((disk / "blobs" / "tmp").iterdir()) == []
        assert not any(p.is_file() and p.stat().st_size > MiB for p in (disk / "blobs").rglob("*"))
        os.remove(disk / "filler")
