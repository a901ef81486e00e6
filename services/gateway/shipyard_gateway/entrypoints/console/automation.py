"""Activity (what happened, newest first, live) and webhooks (create, list, dead letters, delete)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shipyard.contracts.gateway.v1 import gateway_pb2 as gw
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard_gateway.entrypoints.console.calls import ConsoleError, selected_project
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.projects import field_of

LIST_ACTIVITY = "/shipyard.lineage.v1.LineageService/ListActivity"
WEBHOOKS = "/shipyard.gateway.v1.WebhookService"
PAGE_SIZE = 50
TYPE_CHOICES = ("project", "repo", "run", "inference", "model", "deployment", "image")


def _types(text: str) -> list[str]:
    """Type patterns, one per line or separated by commas."""
    return [t.strip() for t in text.replace(",", "\n").splitlines() if t.strip()]


class AutomationPages:
    """``/activity`` and ``/webhooks…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/activity", guarded(self.activity))
        app.router.add_get("/webhooks", guarded(self.webhooks))
        app.router.add_post("/webhooks", guarded(self.create_webhook))
        app.router.add_get("/webhooks/{name}", guarded(self.webhook))
        app.router.add_post("/webhooks/{name}/delete", guarded(self.delete_webhook))

    async def activity(self, request: web.Request) -> web.Response:
        kind = request.query.get("type", "")
        prefix = f"io.shipyard.{kind}." if kind in TYPE_CHOICES else ""
        page = await self._console.call(
            request,
            LIST_ACTIVITY,
            lineage_pb2.ListActivityRequest(
                project=selected_project(request),
                type_prefix=prefix,
                page_size=PAGE_SIZE,
                page_token=request.query.get("page", ""),
            ),
            lineage_pb2.ListActivityResponse,
        )
        context: dict[str, Any] = {
            "items": page.activities,
            "next_page": page.next_page_token,
            "kind": kind if prefix else "",
            "choices": TYPE_CHOICES,
        }
        if request.query.get("fragment") == "rows":
            return self._console.fragment("activity_rows.html.j2", **context)
        return await self._console.page(request, "activity.html.j2", "activity", **context)

    async def webhooks(
        self, request: web.Request, values: dict[str, Any] | None = None, error: ConsoleError | None = None
    ) -> web.Response:
        hooks = await self._console.call(
            request, f"{WEBHOOKS}/ListWebhooks", gw.ListWebhooksRequest(), gw.ListWebhooksResponse
        )
        return await self._console.page(
            request,
            "webhooks.html.j2",
            "webhooks",
            status=400 if error else 200,
            hooks=hooks.webhooks,
            values=values or {},
            error=error.message if error else "",
            error_field=field_of(error) if error else "",
        )

    async def create_webhook(self, request: web.Request) -> web.Response:
        form = await request.post()
        hook = gw.Webhook(
            name=str(form.get("name", "")).strip(),
            url=str(form.get("url", "")).strip(),
            types=_types(str(form.get("types", ""))),
            project=str(form.get("project", "")),
        )
        try:
            made = await self._console.call(
                request,
                f"{WEBHOOKS}/CreateWebhook",
                gw.CreateWebhookRequest(webhook=hook, secret=str(form.get("secret", ""))),
                gw.Webhook,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            kept = {k: str(v) for k, v in form.items() if k != "secret"}  # a secret is never sent back
            return await self.webhooks(request, kept, exc)
        raise web.HTTPSeeOther(f"/webhooks/{made.name}")

    async def webhook(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        hook = await self._console.call(
            request, f"{WEBHOOKS}/GetWebhook", gw.GetWebhookRequest(name=name), gw.Webhook
        )
        dead = await self._console.call(
            request,
            f"{WEBHOOKS}/ListDeadLetters",
            gw.ListDeadLettersRequest(
                name=name, page_size=PAGE_SIZE, page_token=request.query.get("page", "")
            ),
            gw.ListDeadLettersResponse,
        )
        return await self._console.page(
            request,
            "webhook.html.j2",
            "webhooks",
            hook=hook,
            dead_letters=dead.dead_letters,
            next_page=dead.next_page_token,
        )

    async def delete_webhook(self, request: web.Request) -> web.Response:
        await self._console.call(
            request,
            f"{WEBHOOKS}/DeleteWebhook",
            gw.DeleteWebhookRequest(name=request.match_info["name"]),
            gw.DeleteWebhookResponse,
        )
        raise web.HTTPSeeOther("/webhooks")
