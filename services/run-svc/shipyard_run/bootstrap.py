"""Wires run-svc: the store, repo-svc reader, blob store and local executor, injected into the
use cases, the scheduler and the servicer."""

from __future__ import annotations

import logging
import os

from shipyard.contracts.run.v1 import runs_pb2, runs_pb2_grpc
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.bubblewrap import isolation
from shipyard.kit.service import Runtime
from shipyard_run.adapters.local import LocalExecutor
from shipyard_run.adapters.repos import GrpcRepoReader
from shipyard_run.adapters.store import COLLECTIONS, unit_of_work_factory
from shipyard_run.app.run_tokens import RunTokens
from shipyard_run.app.runs import Runs
from shipyard_run.app.scheduler import Scheduler
from shipyard_run.app.templates import Templates
from shipyard_run.entrypoints.grpc_api import RunServicer

SERVICE_NAMES = [runs_pb2.DESCRIPTOR.services_by_name["RunService"].full_name]
# SHIPYARD_FAILPOINTS=run.sandbox=unavailable: act as on a machine without bubblewrap (tests).
SANDBOX_FAILPOINT = "run.sandbox"
log = logging.getLogger(__name__)



async def wire(runtime: Runtime) -> None:
    """Register RunService and start the scheduler."""
    settings = runtime.settings
    uow = unit_of_work_factory(runtime.store, runtime.relay)
    blobs = open_blob_store(settings.default_blob_url())
    await blobs.open()
    workspaces = settings.data_dir / "run" / "workspaces"
    executor = LocalExecutor(workspaces, blobs, isolation=isolation(settings, SANDBOX_FAILPOINT))
    if missing := executor.isolation_missing():
        whose = "anyone's (single-user mode)" if settings.single_user else "only operators'"
        log.warning("runs cannot be isolated here: %s; %s runs start, sharing the machine", missing, whose)
    scheduler = Scheduler(uow, executor, slots=settings.local_run_slots or max(2, os.cpu_count() or 1),
                          single_user=settings.single_user, api_server=settings.public_grpc_addr)
    executor.on_exit = scheduler.wake
    runs = Runs(uow, GrpcRepoReader(settings.repo_addr, runtime.assertions), executor, wake=scheduler.wake,
                single_user=settings.single_user)
    runs_pb2_grpc.add_RunServiceServicer_to_server(RunServicer(runs, Templates(uow, runs), RunTokens(uow)),
                                                   runtime.server)
    runtime.tasks.append(scheduler.run_forever)
    runtime.disk_paths.append(executor.root)  # health: room for runs' workspaces
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "wire"]
