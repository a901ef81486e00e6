"""The image catalog: the environments runs execute in (the standard images and users' own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from shipyard.contracts.repo.v1 import images_pb2 as pb
from shipyard.contracts.run.v1 import builds_pb2
from shipyard_gateway.entrypoints.console.calls import ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.projects import field_of

SERVICE = "/shipyard.repo.v1.ImageService"
BUILDS = "/shipyard.run.v1.ImageBuildService"
BUILD_STATUSES = {builds_pb2.IMAGE_BUILD_STATUS_BUILDING: "building",
                  builds_pb2.IMAGE_BUILD_STATUS_COMPLETE: "complete",
                  builds_pb2.IMAGE_BUILD_STATUS_FAILED: "failed"}
LOG_SHOWN = 1 << 20  # bytes of a build's log its page shows
ADD_FIELDS = ("name", "url", "description", "framework", "framework_version", "python", "requirements",
              "private", "credential")
BUILD_FIELDS = ("name", "code", "commit", "folder")
FRAMEWORKS = ("tensorflow", "pytorch", "sklearn", "xgboost", "custom")
SOURCES = {pb.IMAGE_SOURCE_STANDARD: "standard", pb.IMAGE_SOURCE_REGISTRY: "registry",
           pb.IMAGE_SOURCE_CODE_REPO: "code repo"}
STATUSES = {pb.IMAGE_STATUS_READY: "ready", pb.IMAGE_STATUS_BUILDING: "building",
            pb.IMAGE_STATUS_FAILED: "failed"}


class ImagePages:
    """``/images``: the catalog, of one framework when the page asks, the builds from code repos and
    a form that starts one; ``/images/builds/NAME``: a build with its log, live while it builds."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/images", guarded(self.images))
        app.router.add_post("/images", guarded(self.add))
        app.router.add_post("/images/builds", guarded(self.build))
        app.router.add_get("/images/builds/{name}", guarded(self.build_page))

    async def images(self, request: web.Request) -> web.Response:
        return await self._list(request, {}, None)

    async def _list(self, request: web.Request, values: dict[str, str],
                    error: ConsoleError | None) -> web.Response:
        framework = request.query.get("framework", "")
        found = await self._console.call(request, f"{SERVICE}/ListImages",
                                         pb.ListImagesRequest(framework=framework), pb.ListImagesResponse)
        builds = await self._console.call(request, f"{BUILDS}/ListImageBuilds",
                                          builds_pb2.ListImageBuildsRequest(),
                                          builds_pb2.ListImageBuildsResponse)
        return await self._console.page(request, "images/list.html.j2", "images",
                                        status=400 if error else 200,
                                        images=found.images, framework=framework, frameworks=FRAMEWORKS,
                                        sources=SOURCES, statuses=STATUSES, builds=builds.builds,
                                        build_statuses=BUILD_STATUSES, values=values,
                                        error=error.message if error else "",
                                        error_field=field_of(error) if error else "")

    async def add(self, request: web.Request) -> web.Response:
        values = _fields(await request.post(), "image", ADD_FIELDS)
        given = {key.removeprefix("image."): value for key, value in values.items()}
        image = pb.Image(name=given["name"], url=given["url"], description=given["description"],
                         framework=given["framework"], framework_version=given["framework_version"],
                         python=given["python"], private=given["private"] == "on",
                         credential=given["credential"], requirements=given["requirements"].splitlines())
        try:
            await self._console.call(request, f"{SERVICE}/AddImage", pb.AddImageRequest(image=image),
                                     pb.Image)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._list(request, values, exc)
        raise web.HTTPSeeOther(f"/images#image-{image.name}")

    async def build(self, request: web.Request) -> web.Response:
        values = _fields(await request.post(), "build", BUILD_FIELDS)
        started = builds_pb2.ImageBuild(name=values["build.name"], code=values["build.code"],
                                        commit=values["build.commit"], folder=values["build.folder"])
        try:
            made = await self._console.call(request, f"{BUILDS}/BuildImage",
                                            builds_pb2.BuildImageRequest(build=started),
                                            builds_pb2.ImageBuild)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._list(request, values, exc)
        raise web.HTTPSeeOther(f"/images/builds/{made.name}")

    async def build_page(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        build = await self._console.call(request, f"{BUILDS}/GetImageBuild",
                                         builds_pb2.GetImageBuildRequest(name=name), builds_pb2.ImageBuild)
        log = await self._console.call(request, f"{BUILDS}/ReadImageBuildLog",
                                       builds_pb2.ReadImageBuildLogRequest(name=name, max_bytes=LOG_SHOWN),
                                       builds_pb2.ReadImageBuildLogResponse)
        context: dict[str, Any] = {"build": build, "status": BUILD_STATUSES.get(build.status, "?"),
                                   "log": log.data.decode(errors="replace"),
                                   "live": build.status == builds_pb2.IMAGE_BUILD_STATUS_BUILDING}
        if request.query.get("fragment") == "build":
            return self._console.fragment("images/build_body.html.j2", **context)
        return await self._console.page(request, "images/build.html.j2", "images", **context)


def _fields(form: Mapping[str, Any], form_name: str, names: tuple[str, ...]) -> dict[str, str]:
    """A form's values by their field names (``image.name``: the API's, so a refusal marks its input)."""
    return {f"{form_name}.{name}": str(form.get(f"{form_name}.{name}", "")).strip() for name in names}
