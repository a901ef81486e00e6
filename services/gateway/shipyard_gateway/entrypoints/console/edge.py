"""The console's HTTP side: server-rendered pages (Jinja2) that htmx enhances, static files,
and a per-user event stream that tells open pages when to refresh.

Every page is rendered from public API calls made as the signed-in user (``calls.py``); without
JavaScript the pages and forms still work (plain links and form posts), with it lists refresh
in place when the platform's events say they changed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import grpc
from aiohttp import web
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit import errors
from shipyard.kit.bus import EventBus
from shipyard.kit.grpcio import status_of
from shipyard.kit.timestamps import datetime_of
from shipyard_gateway.domain.policy import POLICY
from shipyard_gateway.entrypoints.api import PublicApi
from shipyard_gateway.entrypoints.console.calls import (
    CALLER,
    PROJECT_COOKIE,
    TOKEN_COOKIE,
    ConsoleCalls,
    ConsoleError,
    R,
    from_this_site,
    selected_project,
)
from shipyard_gateway.entrypoints.grpc_edge import WATCH
from shipyard_gateway.entrypoints.sse import Watches
from shipyard_gateway.entrypoints.watch import watch_or_beat

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WHOAMI = "/shipyard.gateway.v1.IdentityService/WhoAmI"
LIST_PROJECTS = "/shipyard.repo.v1.ProjectService/ListProjects"
PICKER_PROJECTS = 200  # the picker lists this many; more are reached from the Projects page
STATIC = Path(str(resources.files(__package__).joinpath("static")))
COOKIE_MAX_AGE_S = 30 * 24 * 3600

NAV = (  # key, link, label, the public method the page lists with (shown only to who may call it)
    ("dashboard", "/", "Dashboard", "/shipyard.lineage.v1.LineageService/GetDashboard"),
    ("projects", "/projects", "Projects", LIST_PROJECTS),
    ("code", "/repos/code", "Code", "/shipyard.repo.v1.RepoService/ListRepos"),
    ("datasets", "/repos/datasets", "Datasets", "/shipyard.repo.v1.RepoService/ListRepos"),
    ("featuresets", "/repos/featuresets", "FeatureSets", "/shipyard.repo.v1.RepoService/ListRepos"),
    ("models", "/repos/models", "Models", "/shipyard.repo.v1.RepoService/ListRepos"),
    ("runs", "/runs", "Runs", "/shipyard.run.v1.RunService/ListRuns"),
    ("studies", "/studies", "Studies", "/shipyard.run.v1.StudyService/ListStudies"),
    ("images", "/images", "Images", "/shipyard.repo.v1.ImageService/ListImages"),
    ("clusters", "/clusters", "Clusters", "/shipyard.run.v1.ClusterService/ListClusters"),
    ("inferences", "/inferences", "Test Inferences", "/shipyard.serving.v1.ServingService/ListInferences"),
    ("catalog", "/catalog", "Model Catalog", "/shipyard.serving.v1.ServingService/ListCatalog"),
    ("deployments", "/deployments", "Deployments", "/shipyard.serving.v1.ServingService/ListDeployments"),
    ("activity", "/activity", "Activity", "/shipyard.lineage.v1.LineageService/ListActivity"),
    ("webhooks", "/webhooks", "Webhooks", "/shipyard.gateway.v1.WebhookService/ListWebhooks"),
)


def visible_nav(roles: set[str]) -> list[tuple[str, str, str]]:
    """The sections whose pages the roles may open (the API's own policy decides)."""
    return [(key, link, label) for key, link, label, method in NAV if roles & POLICY.get(method, frozenset())]


def when(stamp: Timestamp | None) -> str:
    """A timestamp as people read it (UTC), or an em dash when unset."""
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return "—"
    return datetime_of(stamp).strftime("%Y-%m-%d %H:%M:%S")


def ago(stamp: Timestamp | None) -> str:
    """How long ago, roughly: ``12 s``, ``5 min``, ``3 h``, ``2 d``."""
    if stamp is None or stamp.seconds == 0:
        return "—"
    seconds = max(0, int(datetime.now(UTC).timestamp()) - stamp.seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


class Console:
    """Rendering, the signed-in user, redirects: what every page handler uses."""

    def __init__(self, api: PublicApi, bus: EventBus, watches: Watches) -> None:
        self.calls = ConsoleCalls(api)
        self._api = api
        self._bus = bus
        self._watches = watches
        self._templates = Environment(
            loader=PackageLoader("shipyard_gateway.entrypoints.console", "templates"),
            autoescape=select_autoescape(["html", "j2"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters.update(when=when, ago=ago, urlquote=lambda s: quote(str(s), safe=""),
                                       urlquote_path=lambda s: quote(str(s), safe="/"))

    async def call(self, request: web.Request, method: str, message: Message, reply_type: type[R]) -> R:
        """A public API call as the signed-in user (see ConsoleCalls)."""
        return await self.calls.call(request, method, message, reply_type)

    def fragment(self, template: str, status: int = 200, **context: Any) -> web.Response:
        """A template without the page around it (htmx swaps it in)."""
        html = self._templates.get_template(template).render(**context)
        return web.Response(text=html, content_type="text/html", status=status)

    async def page(
        self, request: web.Request, template: str, active: str, status: int = 200, **context: Any
    ) -> web.Response:
        """A whole page: the frame (user, project picker, navigation) around ``template``."""
        user = await self.call(request, WHOAMI, gateway_pb2.WhoAmIRequest(), gateway_pb2.User)
        projects = await self.call(
            request,
            LIST_PROJECTS,
            projects_pb2.ListProjectsRequest(page_size=PICKER_PROJECTS),
            projects_pb2.ListProjectsResponse,
        )
        roles = [gateway_pb2.Role.Name(r).removeprefix("ROLE_").lower().replace("_", "-") for r in user.roles]
        frame = {
            "user": user,
            "roles": roles,
            "projects": projects.projects,
            "project": selected_project(request),
            "nav": visible_nav(set(roles)),
            "active": active,
            "path": request.path_qs,
        }
        return self.fragment(template, status=status, **frame, **context)

    def guarded(self, handler: Handler) -> Handler:
        """``handler`` for signed-in users: sign-in page otherwise; refused calls become an error page;
        form posts only from the console's own pages. The cookie is resolved to a user (``CALLER``)
        before the handler reads a byte of the body: a made-up cookie uploads nothing."""

        async def run(request: web.Request) -> web.StreamResponse:
            if request.method == "POST" and not from_this_site(request):
                return web.Response(status=403, text="cross-site form post refused")
            if not request.cookies.get(TOKEN_COOKIE):
                return to_sign_in(request)
            try:
                request[CALLER] = await self.calls.caller(request, WHOAMI)
            except errors.Unauthenticated:
                return to_sign_in(request)
            except errors.ShipyardError as exc:
                return await self.error_page(request, ConsoleError(status_of(exc), exc.message))
            try:
                return await handler(request)
            except ConsoleError as exc:
                if exc.signed_out:
                    return to_sign_in(request)
                return await self.error_page(request, exc)

        return run

    async def error_page(self, request: web.Request, error: ConsoleError) -> web.Response:
        status = error.http_status or {
            grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.PERMISSION_DENIED: 403
        }.get(error.code, 400)
        try:
            return await self.page(request, "error.html.j2", "", status=status, error=error)
        except ConsoleError:
            return web.Response(status=status, text=error.message)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events for open pages: ``event: <resource>`` (run, repo, project, …) each time
        something the user may see changes; pages refresh the part that shows it."""
        try:
            caller = await self.calls.caller(request, WATCH)
            kinds = request.query.getall("kind", [])
            if not all(kind.isalpha() for kind in kinds):
                return web.Response(status=400, text="kind: a resource kind such as run, repo or project")
            held = self._watches.claim(caller.user)
        except errors.ShipyardError as exc:
            status = {grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
                      grpc.StatusCode.UNAVAILABLE: 503}
            return web.Response(status=status.get(status_of(exc), 403), text=exc.message)
        wanted = gateway_pb2.WatchRequest(types=[f"io.shipyard.{kind}.>" for kind in kinds])
        with held:
            events = watch_or_beat(self._bus, wanted, caller.roles, self._watches.check_s)
            return await self._watches.send(request, events, _page_event, greeting=b": connected\n\n")


def _page_event(event: gateway_pb2.CloudEvent) -> bytes:
    kind = event.type.removeprefix("io.shipyard.").split(".", 1)[0]
    data = json.dumps({"type": event.type, "subject": event.subject})
    return f"event: {kind}\ndata: {data}\n\n".encode()


def to_sign_in(request: web.Request) -> web.Response:
    """Off to the sign-in page, coming back here afterwards (htmx follows HX-Redirect)."""
    target = f"/login?next={quote(request.path_qs, safe='')}"
    if request.headers.get("HX-Request"):
        return web.Response(status=200, headers={"HX-Redirect": target})
    raise web.HTTPSeeOther(target)


def set_cookie(response: web.StreamResponse, name: str, value: str, secure: bool) -> None:
    """A console cookie: not readable by scripts, never sent by other sites."""
    response.set_cookie(
        name, value, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="Strict", secure=secure, path="/"
    )


def local_target(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (no open redirects), else ``default``.

    A path is one "/" then anything but "/" or "\\", in printable ASCII without spaces: browsers
    drop tabs and line breaks from URLs (``/<TAB>/evil.example`` becomes ``//evil.example``) and
    read "\\" as "/"."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if not target.isascii() or any(not c.isprintable() or c.isspace() for c in target):
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default


def remember_project(response: web.StreamResponse, project: str, secure: bool) -> None:
    """Keep the picked project for the next pages."""
    set_cookie(response, PROJECT_COOKIE, project, secure)
