"""The ProjectService gRPC servicer: contract messages in, use cases, contract messages out."""

from __future__ import annotations

import grpc

from shipyard.contracts.repo.v1 import projects_pb2, projects_pb2_grpc
from shipyard.kit.grpcio import caller_of
from shipyard_repo.app.messages import fields_from_proto, project_to_proto
from shipyard_repo.app.projects import Projects


class ProjectServicer(projects_pb2_grpc.ProjectServiceServicer):
    """Projects over gRPC."""

    def __init__(self, projects: Projects) -> None:
        self._projects = projects

    async def CreateProject(self, request: projects_pb2.CreateProjectRequest,
                            context: grpc.aio.ServicerContext) -> projects_pb2.Project:
        project = await self._projects.create(caller_of(context), fields_from_proto(request.project),
                                              request.request_id)
        return project_to_proto(project)

    async def BatchCreateProjects(
            self, request: projects_pb2.BatchCreateProjectsRequest,
            context: grpc.aio.ServicerContext) -> projects_pb2.BatchCreateProjectsResponse:
        entries = [(fields_from_proto(r.project), r.request_id) for r in request.requests]
        projects = await self._projects.batch_create(caller_of(context), entries)
        return projects_pb2.BatchCreateProjectsResponse(projects=[project_to_proto(p) for p in projects])

    async def GetProject(self, request: projects_pb2.GetProjectRequest,
                         context: grpc.aio.ServicerContext) -> projects_pb2.Project:
        return project_to_proto(await self._projects.get(request.name))

    async def ListProjects(self, request: projects_pb2.ListProjectsRequest,
                           context: grpc.aio.ServicerContext) -> projects_pb2.ListProjectsResponse:
        projects, token = await self._projects.list_page(request.page_size, request.page_token)
        return projects_pb2.ListProjectsResponse(projects=[project_to_proto(p) for p in projects],
                                                 next_page_token=token)

    async def UpdateProject(self, request: projects_pb2.UpdateProjectRequest,
                            context: grpc.aio.ServicerContext) -> projects_pb2.Project:
        project = await self._projects.update(caller_of(context), request.name,
                                              fields_from_proto(request.project),
                                              list(request.update_mask.paths), request.revision)
        return project_to_proto(project)

    async def DeleteProject(self, request: projects_pb2.DeleteProjectRequest,
                            context: grpc.aio.ServicerContext) -> projects_pb2.DeleteProjectResponse:
        await self._projects.delete(caller_of(context), request.name, request.revision)
        return projects_pb2.DeleteProjectResponse()
