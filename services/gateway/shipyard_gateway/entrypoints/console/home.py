"""Sign-in and sign-out, the project picker, the dashboard."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from aiohttp import web

from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.kit import errors
from shipyard_gateway.app.identity import Identity, TooManyFailures
from shipyard_gateway.entrypoints.console.calls import (
    CALLER,
    PROJECT_COOKIE,
    TOKEN_COOKIE,
    from_this_site,
    selected_project,
)
from shipyard_gateway.entrypoints.console.edge import (
    Console,
    local_target,
    remember_project,
    visible_nav,
)

GET_DASHBOARD = "/shipyard.lineage.v1.LineageService/GetDashboard"
RECENT_JOBS = 15
RUN_STATUSES = ("queued", "running", "complete", "failed", "stopped", "error")  # as lineage-svc counts


class HomePages:
    """``/login``, ``/logout``, ``/project``, ``/``."""

    def __init__(
        self,
        console: Console,
        identity: Identity,
        platform_status: Callable[[], gateway_pb2.GetStatusResponse],
        secure_cookies: bool,
    ) -> None:
        self._console = console
        self._identity = identity
        self._status = platform_status
        self._secure = secure_cookies

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/login", self.sign_in_form)
        app.router.add_post("/login", self.sign_in)
        app.router.add_post("/logout", self.sign_out)
        app.router.add_post("/project", guarded(self.pick_project))
        app.router.add_get("/", guarded(self.dashboard))

    async def sign_in_form(
        self, request: web.Request, error: str = "", status: int = 200, next_path: str | None = None
    ) -> web.Response:
        return self._console.fragment(
            "login.html.j2",
            status=status,
            error=error,
            health=self._status(),
            next=local_target(next_path if next_path is not None else request.query.get("next")),
        )

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        """Prove an API token, then keep a new session token (never the API token) in the cookie."""
        if not from_this_site(request):
            return web.Response(status=403, text="cross-site sign-in refused")
        form = await request.post()
        token = str(form.get("token", "")).strip()
        target = local_target(str(form.get("next", "")))
        if not token:
            return await self.sign_in_form(
                request, "token: paste your API token (shipyard login prints where to get one)", 400, target
            )
        try:
            _, session = await self._identity.sign_in(token, request.remote or "unknown")
        except TooManyFailures as exc:
            refused = await self.sign_in_form(request, f"token: {exc.message}", 429, target)
            refused.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
            return refused
        except errors.Unauthenticated as exc:
            return await self.sign_in_form(request, f"token: {exc.message}", 401, target)
        response = web.HTTPSeeOther(target)
        response.set_cookie(
            TOKEN_COOKIE,
            session,
            max_age=int(self._identity.limits.session_ttl.total_seconds()),
            httponly=True,
            samesite="Strict",
            secure=self._secure or request.secure,
            path="/",
        )
        raise response

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        """End the session on the server (its token stops working), then forget the cookies."""
        if not from_this_site(request):
            return web.Response(status=403, text="cross-site sign-out refused")
        session = request.cookies.get(TOKEN_COOKIE)
        if session:
            await self._identity.sign_out(session)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(TOKEN_COOKIE, path="/")
        response.del_cookie(PROJECT_COOKIE, path="/")
        raise response

    async def pick_project(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        response = web.HTTPSeeOther(local_target(str(form.get("back", "")), "/"))
        remember_project(response, str(form.get("project", "")), self._secure)
        raise response

    async def dashboard(self, request: web.Request) -> web.Response:
        project = selected_project(request)
        board = await self._console.call(
            request,
            GET_DASHBOARD,
            lineage_pb2.GetDashboardRequest(project=project, recent=RECENT_JOBS),
            lineage_pb2.Dashboard,
        )
        # Tiles only for the sections the user may open: a data scientist sees no catalog or
        # deployments, so "0 deployments" would say something false.
        sections = {key for key, _, _ in visible_nav(set(request[CALLER].roles))}
        context: dict[str, Any] = {"board": board, "statuses": RUN_STATUSES, "sections": sections}
        if request.headers.get("HX-Request"):
            return self._console.fragment("dashboard_body.html.j2", **context)
        return await self._console.page(request, "dashboard.html.j2", "dashboard", **context)
