"""Wires repo-svc: adapters from settings, injected into the use cases and the servicer."""

from __future__ import annotations

from shipyard.contracts.repo.v1 import projects_pb2, projects_pb2_grpc
from shipyard.kit.service import Runtime
from shipyard_repo.adapters.store import COLLECTIONS, StoreUnitOfWorkFactory
from shipyard_repo.app.projects import Projects
from shipyard_repo.entrypoints.grpc_api import ProjectServicer

SERVICE_NAMES = [projects_pb2.DESCRIPTOR.services_by_name["ProjectService"].full_name]


async def wire(runtime: Runtime) -> None:
    """Register repo-svc's servicers on the runtime."""
    projects = Projects(StoreUnitOfWorkFactory(runtime.store, runtime.relay))
    projects_pb2_grpc.add_ProjectServiceServicer_to_server(ProjectServicer(projects), runtime.server)
    runtime.service_names.extend(SERVICE_NAMES)


__all__ = ["COLLECTIONS", "wire"]
