"""The console's way into the public API: the signed-in user's session (a cookie) and the same
handlers the gRPC and JSON edges call, so the console can do nothing the CLI cannot.

The cookie holds a console session, made by signing in; an API token put in it by hand is not one
and is refused (the user is sent to sign in), so the cookie never carries a long-lived token."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urlsplit

import grpc
from aiohttp import web
from google.protobuf.message import Message

from shipyard.kit import errors
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import status_of
from shipyard_gateway.entrypoints.api import SESSION, PublicApi, RelayedError

TOKEN_COOKIE = "shipyard_token"
PROJECT_COOKIE = "shipyard_project"
R = TypeVar("R", bound=Message)


CALLER = "shipyard.caller"  # the request's key of the signed-in Caller, once a guarded page resolved it


class ConsoleError(Exception):
    """A call the console made was refused; ``message`` is the server's own words, ``http_status``
    the status its error page gets when the code alone does not say it (413: an upload too large),
    ``field`` the request field a bad request got wrong, as the server's status details name it."""

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None,
                 field: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.field = field

    @classmethod
    def invalid(cls, field: str, problem: str) -> ConsoleError:
        """A form's own refusal of what was typed into ``field``, worded as the services word theirs."""
        return cls(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {problem}", field=field)

    @property
    def signed_out(self) -> bool:
        """The token is missing, wrong or revoked: the user must sign in again."""
        return self.code is grpc.StatusCode.UNAUTHENTICATED


class ConsoleCalls:
    """Calls of public methods on behalf of the request's user."""

    def __init__(self, api: PublicApi) -> None:
        self._api = api

    async def caller(self, request: web.Request, method: str) -> Caller:
        """The request's signed-in user, allowed to call ``method``: resolved as ``call`` resolves
        them, without a call (guarded pages do it before reading a byte of the body)."""
        return await self._api.caller(method, session_authorization(request))

    async def call(self, request: web.Request, method: str, message: Message, reply_type: type[R]) -> R:
        """Call ``method`` (``/package.Service/Method``) with ``message`` as the signed-in user and
        get its ``reply_type`` reply; ConsoleError when the platform refuses it."""
        route = self._api.routes.get(method)
        if route is None:
            raise ConsoleError(grpc.StatusCode.NOT_FOUND, f"no public method {method!r}")
        try:
            reply = await self._api.call_message(route, session_authorization(request), message)
        except errors.ShipyardError as exc:
            field = exc.field if isinstance(exc, errors.InvalidArgument | errors.FailedPrecondition) else ""
            raise ConsoleError(status_of(exc), exc.message, field=field) from None
        except RelayedError as exc:
            raise ConsoleError(exc.code, exc.details, field=exc.failure.field) from None
        if not isinstance(reply, reply_type):
            raise TypeError(f"{method} answered {type(reply).__name__}, not {reply_type.__name__}")
        return reply


def session_authorization(request: web.Request) -> str | None:
    """The console's cookie as the public API takes it: a credential that must be a session."""
    token = request.cookies.get(TOKEN_COOKIE)
    return f"{SESSION.title()} {token}" if token else None


def from_this_site(request: web.Request) -> bool:
    """Whether a browser sent the request from a page of this site (the Origin, or else the Referer,
    names it); True for a client that names no page (curl, tests): the SameSite=Strict cookie is
    what guards browsers."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    return not origin or urlsplit(origin).netloc == request.host


def console_authorization(request: web.Request) -> str | None:
    """The console's session (its cookie) as an authorization, for a request the console's own page
    sent (a test request to a model endpoint); None otherwise. The cookie is SameSite=Strict, and
    the Origin a browser sends must be this site."""
    if not from_this_site(request):
        return None
    return session_authorization(request)


def selected_project(request: web.Request) -> str:
    """The project picked at the top of the screen ("" = All Projects)."""
    return request.cookies.get(PROJECT_COOKIE, "")
