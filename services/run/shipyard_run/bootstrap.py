"""Wires run-svc: the store, repo-svc reader, blob store and local executor, injected into the
use cases, the scheduler and the servicer."""

from __future__ import annotations

import os

from shipyard.contracts.run.v1 import runs_pb2, runs_pb2_grpc
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.service import Runtime
from shipyard_run.adapters.local import LocalExecutor
from shipyard_run.adapters.repos import GrpcRepoReader
from shipyard_run.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_run.app.runs import Runs
from shipyard_run.app.scheduler import Scheduler
from shipyard_run.app.templates import Templates
from shipyard_run.entrypoints.grpc_api import RunServicer

SERVICE_NAMES = [runs_pb2.DESCRIPTOR.services_by_name["RunService"].full_name]


async def wire(runtime: Runtime) -> None:
    """Register RunService and start the scheduler."""
    settings = runtime.settings
    uow = unit_of_work_factory(runtime.store, runtime.relay)
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    executor = LocalExecutor(settings.data_dir / "run" / "workspaces", blobs)
    scheduler = Scheduler(uow, executor, slots=settings.local_run_slots or max(2, os.cpu_count() or 1))
    executor.on_exit = scheduler.wake
    runs = Runs(uow, GrpcRepoReader(settings.repo_addr), executor, wake=scheduler.wake)
    runs_pb2_grpc.add_RunServiceServicer_to_server(RunServicer(runs, Templates(uow, runs)), runtime.server)
    runtime.tasks.append(scheduler.run_forever)
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "wire"]
