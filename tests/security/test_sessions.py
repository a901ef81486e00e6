"""Attacks with the console's credentials: a session taken from a browser (its cookie's value) used
as a bearer token to mint a lasting API token, or — an operator's — to make a user of its own; an
API token put in the console's cookie by hand, to be kept for its 30+ days. A session can do what
the console does, nothing more: it makes no tokens and manages no users; the cookie takes only a
session. A TensorBoard link's token is kept for that board alone, never in the console's cookie."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.local.harness import Stack
from tests.support.users import new_user

COOKIE = "shipyard_token"
IDENTITY = "/api/shipyard.gateway.v1.IdentityService"


def _http(stack: Stack, method: str, path: str, body: str | None = None,
          headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(stack.http_url).port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    reply = connection.getresponse()
    reply.read()
    connection.close()
    return reply


def _cookies(reply: http.client.HTTPResponse) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for header in reply.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return dict(jar)


def _session(stack: Stack, token: str) -> str:
    """Sign in to the console with ``token``; the session its cookie holds."""
    reply = _http(stack, "POST", "/login", urlencode({"token": token}),
                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 303, reply.status
    return str(_cookies(reply)[COOKIE].value)



def _refused(call: Callable[[], Any], code: str, *words: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.code == code, caught.value
    for word in words:
        assert word in caught.value.message, caught.value.message


def test_a_stolen_session_cannot_mint_an_api_token(stack: Stack, admin: Client) -> None:
    session = _session(stack, new_user(admin, "alice"))
    thief = stack.client(session)
    try:
        assert thief.call(thief.identity.WhoAmI, pb.WhoAmIRequest()).name == "alice"  # the session works

        mint = pb.CreateTokenRequest(description="mine now")
        _refused(lambda: thief.call(thief.identity.CreateToken, mint),
                 "PERMISSION_DENIED", "CreateToken needs an API token", "console sign-in session")
    finally:
        thief.close()
    over_http = _http(stack, "POST", f"{IDENTITY}/CreateToken", "{}",
                      {"Authorization": f"Bearer {session}", "Content-Type": "application/json"})
    assert over_http.status == 403


def test_a_stolen_operator_session_cannot_make_users_or_tokens(stack: Stack, admin: Client) -> None:
    thief = stack.client(_session(stack, stack.admin_token()))
    try:
        backdoor = pb.CreateUserRequest(user=pb.User(name="backdoor", roles=[pb.ROLE_OPERATOR]))
        _refused(lambda: thief.call(thief.identity.CreateUser, backdoor), "PERMISSION_DENIED",
                 "needs an API token")
        _refused(lambda: thief.call(thief.identity.ListTokens, pb.ListTokensRequest(all_users=True)),
                 "PERMISSION_DENIED", "needs an API token")
        _refused(lambda: thief.call(thief.identity.DisableUser, pb.DisableUserRequest(name="alice")),
                 "PERMISSION_DENIED", "needs an API token")
    finally:
        thief.close()
    users = admin.call(admin.identity.ListUsers, pb.ListUsersRequest())
    assert "backdoor" not in [u.name for u in users.users]


def test_an_api_token_put_in_the_console_cookie_is_sent_to_sign_in(stack: Stack, admin: Client) -> None:
    token = new_user(admin, "carol")

    page = _http(stack, "GET", "/projects", headers={"Cookie": f"{COOKIE}={token}"})
    events = _http(stack, "GET", "/console/events?kind=run", headers={"Cookie": f"{COOKIE}={token}"})

    assert page.status == 303 and page.headers["Location"].startswith("/login?next=")
    assert events.status == 401
    signed_in = _http(stack, "GET", "/projects", headers={"Cookie": f"{COOKIE}={_session(stack, token)}"})
    assert signed_in.status == 200


def test_a_tensorboard_link_keeps_its_token_for_that_board_only(stack: Stack, admin: Client) -> None:
    token = new_user(admin, "dave")
    dave = stack.client(token)
    try:
        run = runs_pb2.Run(name="dave-1", command="true")
        dave.call(dave.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=run))
        dave.call(dave.runs.StartTensorBoard, runs_pb2.TensorBoardRequest(name="dave-1"))

        reply = _http(stack, "GET", f"/tensorboard/dave-1/?token={token}")

        assert reply.status == 302 and "token=" not in reply.headers["Location"]
        cookies = _cookies(reply)
        assert COOKIE not in cookies  # never the console's cookie
        kept = cookies["shipyard_tensorboard"]
        assert kept["path"] == "/tensorboard/dave-1/" and kept["httponly"] and kept["samesite"] == "Strict"
    finally:
        dave.call(dave.runs.StopTensorBoard, runs_pb2.TensorBoardRequest(name="dave-1"))
        dave.close()
