"""The model catalog (publish a model version with its serving defaults) and deployments
(deploy a catalog entry, swap the model behind the endpoint, send a test request, delete)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard_gateway.entrypoints.console.calls import ConsoleError, selected_project
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.projects import field_of
from shipyard_gateway.entrypoints.console.serving import (
    EXAMPLE_REQUEST,
    FRAMEWORKS,
    PAGE_SIZE,
    SERVICE,
    model_ref,
    serving_clusters,
    serving_status,
    spec_from,
)


class CatalogPages:
    """``/catalog…`` and ``/deployments…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/catalog", guarded(self.catalog))
        app.router.add_get("/catalog/publish", guarded(self.publish_form))
        app.router.add_post("/catalog/publish", guarded(self.publish))
        app.router.add_get("/catalog/{name}", guarded(self.entry))
        app.router.add_post("/catalog/{name}/delete", guarded(self.unpublish))
        app.router.add_get("/deployments", guarded(self.deployments))
        app.router.add_get("/deployments/new", guarded(self.deploy_form))
        app.router.add_post("/deployments/new", guarded(self.deploy))
        app.router.add_get("/deployments/{name}", guarded(self.deployment))
        app.router.add_post("/deployments/{name}/edit", guarded(self.swap))
        app.router.add_post("/deployments/{name}/delete", guarded(self.undeploy))

    # --- the catalog --------------------------------------------------------------------------

    async def catalog(self, request: web.Request) -> web.Response:
        page = await self._console.call(
            request,
            f"{SERVICE}/ListCatalog",
            pb.ListCatalogRequest(
                project=selected_project(request),
                page_size=PAGE_SIZE,
                page_token=request.query.get("page", ""),
            ),
            pb.ListCatalogResponse,
        )
        return await self._console.page(
            request, "serving/catalog.html.j2", "catalog", items=page.entries, next_page=page.next_page_token
        )

    async def publish_form(self, request: web.Request) -> web.Response:
        return await self._publish_page(request, {"model": request.query.get("model", "")}, None)

    async def publish(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            spec = spec_from(form)
            entry = pb.CatalogEntry(
                name=str(form.get("name", "")).strip(),
                description=str(form.get("description", "")),
                model=model_ref(str(form.get("model", ""))),
                defaults=spec,
                project=selected_project(request),
            )
            made = await self._console.call(
                request, f"{SERVICE}/PublishModel", pb.PublishModelRequest(entry=entry), pb.CatalogEntry
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._publish_page(request, dict(form), exc)
        raise web.HTTPSeeOther(f"/catalog/{made.name}")

    async def entry(self, request: web.Request) -> web.Response:
        item = await self._console.call(
            request,
            f"{SERVICE}/GetCatalogEntry",
            pb.GetCatalogEntryRequest(name=request.match_info["name"]),
            pb.CatalogEntry,
        )
        return await self._console.page(request, "serving/entry.html.j2", "catalog", item=item)

    async def unpublish(self, request: web.Request) -> web.Response:
        await self._console.call(
            request,
            f"{SERVICE}/DeleteCatalogEntry",
            pb.DeleteCatalogEntryRequest(name=request.match_info["name"]),
            pb.DeleteCatalogEntryResponse,
        )
        raise web.HTTPSeeOther("/catalog")

    async def _publish_page(
        self, request: web.Request, values: dict[str, Any], error: ConsoleError | None
    ) -> web.Response:
        return await self._console.page(
            request,
            "serving/publish_form.html.j2",
            "catalog",
            status=400 if error else 200,
            values=values,
            frameworks=FRAMEWORKS,
            error=error.message if error else "",
            error_field=field_of(error) if error else "",
        )

    # --- deployments --------------------------------------------------------------------------

    async def deployments(self, request: web.Request) -> web.Response:
        page = await self._console.call(
            request,
            f"{SERVICE}/ListDeployments",
            pb.ListDeploymentsRequest(
                project=selected_project(request),
                page_size=PAGE_SIZE,
                page_token=request.query.get("page", ""),
            ),
            pb.ListDeploymentsResponse,
        )
        return await self._console.page(
            request,
            "serving/deployments.html.j2",
            "deployments",
            items=page.deployments,
            next_page=page.next_page_token,
            serving_status=serving_status,
        )

    async def deploy_form(self, request: web.Request) -> web.Response:
        return await self._deploy_page(request, {"catalog_entry": request.query.get("entry", "")}, None)

    async def deploy(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            spec = spec_from(form)
            deployment = pb.Deployment(
                name=str(form.get("name", "")).strip(),
                description=str(form.get("description", "")),
                catalog_entry=str(form.get("catalog_entry", "")).strip(),
                spec=spec,
                project=selected_project(request),
                cluster=str(form.get("cluster", "")).strip(),
            )
            made = await self._console.call(
                request,
                f"{SERVICE}/CreateDeployment",
                pb.CreateDeploymentRequest(deployment=deployment),
                pb.Deployment,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._deploy_page(request, dict(form), exc)
        raise web.HTTPSeeOther(f"/deployments/{made.name}")

    async def deployment(self, request: web.Request, error: ConsoleError | None = None) -> web.Response:
        item = await self._console.call(
            request,
            f"{SERVICE}/GetDeployment",
            pb.GetDeploymentRequest(name=request.match_info["name"]),
            pb.Deployment,
        )
        context: dict[str, Any] = {
            "item": item,
            "state": serving_status(item),
            "example": json.dumps(EXAMPLE_REQUEST, indent=1),
            "error": error.message if error else "",
        }
        if request.query.get("fragment") == "summary":
            return self._console.fragment("serving/deployment_summary.html.j2", **context)
        return await self._console.page(
            request, "serving/deployment.html.j2", "deployments", status=400 if error else 200, **context
        )

    async def swap(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        form = await request.post()
        entry = str(form.get("catalog_entry", "")).strip()
        try:
            model = None if entry else model_ref(str(form.get("model", "")))
            await self._console.call(
                request,
                f"{SERVICE}/UpdateDeployment",
                pb.UpdateDeploymentRequest(name=name, catalog_entry=entry, model=model),
                pb.Deployment,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self.deployment(request, exc)
        raise web.HTTPSeeOther(f"/deployments/{name}")

    async def undeploy(self, request: web.Request) -> web.Response:
        await self._console.call(
            request,
            f"{SERVICE}/DeleteDeployment",
            pb.DeleteDeploymentRequest(name=request.match_info["name"]),
            pb.DeleteDeploymentResponse,
        )
        raise web.HTTPSeeOther("/deployments")

    async def _deploy_page(
        self, request: web.Request, values: dict[str, Any], error: ConsoleError | None
    ) -> web.Response:
        entries = await self._console.call(
            request, f"{SERVICE}/ListCatalog", pb.ListCatalogRequest(page_size=200), pb.ListCatalogResponse
        )
        return await self._console.page(
            request,
            "serving/deploy_form.html.j2",
            "deployments",
            status=400 if error else 200,
            values=values,
            entries=entries.entries,
            frameworks=FRAMEWORKS,
            clusters=await serving_clusters(self._console, request),
            error=error.message if error else "",
            error_field=field_of(error) if error else "",
        )
