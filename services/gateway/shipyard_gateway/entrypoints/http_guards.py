"""What every HTTP response of the gateway carries, and what every request must get right first.

Security headers: the console's pages load only this site's scripts, styles and connections (its
scripts are vendored and served from /static), may not be framed by other sites, and no response is
content-sniffed. TensorBoard, proxied under /tensorboard/, is its own application with its own
inline scripts and frames: it gets the headers that do not break it.

Credentials: an ``Authorization`` header or token cookie that is not printable ASCII (a token
never is anything else) is refused with 401 before any handler sees it.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from shipyard_gateway.entrypoints.api import HTTP_CLIENT
from shipyard_gateway.entrypoints.console.calls import TOKEN_COOKIE
from shipyard_gateway.entrypoints.http_problems import problem

CONSOLE_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https: http:",  # project thumbnails are any http(s) URL
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
CONSOLE = {**ALWAYS, "Content-Security-Policy": CONSOLE_POLICY, "X-Frame-Options": "DENY"}
TENSORBOARD = {**ALWAYS, "Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers on every response, errors included."""
    if request.path.startswith("/tensorboard/"):
        response.headers.update(TENSORBOARD)
    else:
        response.headers.update(CONSOLE)


def _readable(value: str | None) -> bool:
    return value is None or (value.isascii() and value.isprintable())


@web.middleware
async def readable_credentials(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 for credentials that cannot be a token (raw bytes, non-ASCII) instead of a failure deeper in."""
    if not _readable(request.headers.get("Authorization")):
        return problem(401, "UNAUTHENTICATED",
                       "the authorization header must be 'Bearer <token>' in printable ASCII characters")
    if not _readable(request.cookies.get(TOKEN_COOKIE)):
        return problem(401, "UNAUTHENTICATED",
                       f"the {TOKEN_COOKIE} cookie is not a token: sign in again at /login")
    return await handler(request)


@web.middleware
async def remember_client(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The client's address, for the public API to count bad tokens against (``api.HTTP_CLIENT``).
    It is the peer of the connection: behind a proxy, the proxy's (forwarded headers are the
    client's word, so they are not believed)."""
    remembered = HTTP_CLIENT.set(request.remote or "unknown")
    try:
        return await handler(request)
    finally:
        HTTP_CLIENT.reset(remembered)
