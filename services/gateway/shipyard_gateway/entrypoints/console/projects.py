"""Projects: the list, "+ Project", details, edit."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.contracts.repo.v1 import projects_pb2 as pb
from shipyard.contracts.run.v1 import runs_pb2
from shipyard_gateway.entrypoints.console.calls import ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console

SERVICE = "/shipyard.repo.v1.ProjectService"
LIST_RUNS = "/shipyard.run.v1.RunService/ListRuns"
PAGE_SIZE = 50
EDITABLE = ("description", "thumbnail_url", "leaderboard", "details")


def field_of(error: ConsoleError) -> str:
    """The form field a refusal names (its status details' field, never its message), as the forms
    name their fields: ``project.name`` → ``name``, ``repo.source.s3.endpoint`` → ``s3.endpoint``,
    ``spec.min_replicas`` → ``min_replicas``; "" when it names none."""
    parts = error.field.strip().split(".")
    while len(parts) > 1 and parts[0] in (
        "project",
        "repo",
        "source",
        "spec",
        "inference",
        "entry",
        "deployment",
        "webhook",
        "run",
    ):
        parts.pop(0)
    return ".".join(parts)


def _project_from(form: Any) -> pb.Project:
    return pb.Project(
        name=str(form.get("name", "")).strip(),
        description=str(form.get("description", "")),
        thumbnail_url=str(form.get("thumbnail_url", "")).strip(),
        leaderboard=form.get("leaderboard") == "on",
        details=str(form.get("details", "")),
    )


class ProjectPages:
    """``/projects…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/projects", guarded(self.list))
        app.router.add_get("/projects/new", guarded(self.new))
        app.router.add_post("/projects/new", guarded(self.create))
        app.router.add_get("/projects/{name}", guarded(self.detail))
        app.router.add_get("/projects/{name}/edit", guarded(self.edit))
        app.router.add_post("/projects/{name}/edit", guarded(self.update))

    async def list(self, request: web.Request) -> web.Response:
        page = await self._console.call(
            request,
            f"{SERVICE}/ListProjects",
            pb.ListProjectsRequest(page_size=PAGE_SIZE, page_token=request.query.get("page", "")),
            pb.ListProjectsResponse,
        )
        return await self._console.page(request, "projects/list.html.j2", "projects", page=page)

    async def new(self, request: web.Request) -> web.Response:
        return await self._form(request, pb.Project(), None)

    async def create(self, request: web.Request) -> web.Response:
        project = _project_from(await request.post())
        try:
            made = await self._console.call(
                request, f"{SERVICE}/CreateProject", pb.CreateProjectRequest(project=project), pb.Project
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._form(request, project, exc)
        raise web.HTTPSeeOther(f"/projects/{made.name}")

    async def detail(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        project = await self._console.call(
            request, f"{SERVICE}/GetProject", pb.GetProjectRequest(name=name), pb.Project
        )
        runs = await self._console.call(
            request,
            LIST_RUNS,
            runs_pb2.ListRunsRequest(project=name, page_size=10),
            runs_pb2.ListRunsResponse,
        )
        return await self._console.page(
            request, "projects/detail.html.j2", "projects", item=project, runs=runs.runs
        )

    async def edit(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        project = await self._console.call(
            request, f"{SERVICE}/GetProject", pb.GetProjectRequest(name=name), pb.Project
        )
        return await self._form(request, project, None, editing=name)

    async def update(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        form = await request.post()
        project = _project_from(form)
        revision = int(str(form.get("revision", "0")) or 0)
        try:
            await self._console.call(
                request,
                f"{SERVICE}/UpdateProject",
                pb.UpdateProjectRequest(
                    name=name, project=project, update_mask=FieldMask(paths=list(EDITABLE)), revision=revision
                ),
                pb.Project,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            project.name = name
            return await self._form(request, project, exc, editing=name, revision=revision)
        raise web.HTTPSeeOther(f"/projects/{name}")

    async def _form(
        self,
        request: web.Request,
        project: pb.Project,
        error: ConsoleError | None,
        editing: str = "",
        revision: int = 0,
    ) -> web.Response:
        status = 400 if error is not None else 200
        return await self._console.page(
            request,
            "projects/form.html.j2",
            "projects",
            status=status,
            item=project,
            editing=editing,
            revision=revision or project.revision,
            error=error.message if error else "",
            error_field=field_of(error) if error else "",
        )
