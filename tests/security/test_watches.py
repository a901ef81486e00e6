"""Attacks on the event streams (``/api/events``, ``/console/events``): open streams whose filter
never matches and walk away — each used to keep its NATS consumer for ever — and open more of them
than one user needs. The gateway notices gone clients and bounds each user's streams."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

import pytest

from shipyard.client.connection import Client
from shipyard.local.harness import Stack, wait_for
from tests.support.users import new_user

NEVER = "io.shipyard.never.happens.v1"
PER_USER = 8
SESSIONS: dict[str, str] = {}  # API token → the console session it signed in


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_WATCHES_PER_USER": str(PER_USER)}
    with Stack(tmp_path_factory.mktemp("stack") / "data", env=env) as running:
        yield running


@pytest.fixture(scope="module")
def eve(admin: Client) -> str:
    return new_user(admin, "watching-eve")


def _open(stack: Stack, path: str, headers: dict[str, str]) -> tuple[socket.socket, bytes]:
    """A client that sent its request and read the answer's head; it then just stays there."""
    sock = socket.create_connection(("127.0.0.1", urlsplit(stack.http_url).port), timeout=30)
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def _session(stack: Stack, token: str) -> str:
    """The console session signing in with ``token`` made (once per token): the console's cookie
    takes nothing else."""
    if token not in SESSIONS:
        connection = http.client.HTTPConnection("127.0.0.1", urlsplit(stack.http_url).port, timeout=30)
        connection.request("POST", "/login", body=urlencode({"token": token}),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        reply = connection.getresponse()
        reply.read()
        connection.close()
        assert reply.status == 303, reply.status
        SESSIONS[token] = SimpleCookie(reply.headers["Set-Cookie"])["shipyard_token"].value
    return SESSIONS[token]


def _stream(stack: Stack, token: str, console: bool = False,
            extra: dict[str, str] | None = None) -> tuple[socket.socket, bytes]:
    if console:
        return _open(stack, "/console/events?kind=neverhappens",
                     {"Cookie": f"shipyard_token={_session(stack, token)}", **(extra or {})})
    return _open(stack, f"/api/events?type={NEVER}", {"Authorization": f"Bearer {token}", **(extra or {})})


def _refused(stack: Stack, token: str, console: bool = False) -> bytes:
    """The whole answer to one more stream (asked with Connection: close, so a refusal ends it)."""
    sock, answer = _stream(stack, token, console, {"Connection": "close"})
    with sock:
        while answer.startswith(b"HTTP/1.1 429") and (chunk := sock.recv(4096)):
            answer += chunk
    return answer


def _live(stack: Stack) -> int:
    sock, head = _open(stack, "/api/watches", {"Authorization": f"Bearer {stack.admin_token()}",
                                               "Connection": "close"})
    with sock:
        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return int(json.loads((head + rest).split(b"\r\n\r\n", 1)[1])["live"])


def test_streams_of_clients_that_went_away_are_closed(stack: Stack, eve: str) -> None:
    with ExitStack() as clients:
        for i in range(PER_USER):
            sock, head = _stream(stack, eve, console=i % 2 == 1)
            clients.callback(sock.close)
            assert head.startswith(b"HTTP/1.1 200"), head
        wait_for(lambda: _live(stack) == PER_USER, 30, "the gateway to count the open streams")
    # The clients are gone without a word; no event will ever match their filters.
    wait_for(lambda: _live(stack) == 0, 60, "the gateway to close the streams of gone clients")


def test_one_user_cannot_open_more_streams_than_the_limit(stack: Stack, eve: str, admin: Client) -> None:
    with ExitStack() as clients:
        for _ in range(PER_USER):
            sock, head = _stream(stack, eve)
            clients.callback(sock.close)
            assert head.startswith(b"HTTP/1.1 200"), head

        refused = _refused(stack, eve)
        console_refused = _refused(stack, eve, console=True)
        other, other_head = _stream(stack, stack.admin_token())
        other.close()

    assert refused.startswith(b"HTTP/1.1 429"), refused
    assert b"SHIPYARD_WATCHES_PER_USER=8" in refused
    assert console_refused.startswith(b"HTTP/1.1 429"), console_refused
    assert other_head.startswith(b"HTTP/1.1 200"), other_head  # another user is not held back
    wait_for(lambda: _live(stack) == 0, 60, "the streams to close")
    again, again_head = _stream(stack, eve)
    again.close()
    assert again_head.startswith(b"HTTP/1.1 200"), again_head
