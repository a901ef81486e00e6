"""Attacks on the console's sign-in: a link whose ``next`` sends the user, signed in, to another
site (``/<TAB>/evil.example``); a page of another site that signs a visitor in (or out); guessing
tokens without limit and without a trace; a cookie that is the API token itself, for 30 days, and
still works after signing out. Every one is refused."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

import pytest

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.local.harness import Stack
from tests.support.users import new_user

COOKIE = "shipyard_token"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str

    def cookie(self, name: str = COOKIE) -> tuple[str, dict[str, str]] | None:
        """The value and attributes of a cookie this reply sets (None if it sets none)."""
        for header in self.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie(header)
            if name in jar:
                morsel = jar[name]
                return morsel.value, {k: str(v) for k, v in morsel.items() if v}
        return None


def request(stack: Stack, method: str, path: str, form: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, source: str = "127.0.0.1") -> Reply:
    """One HTTP request to the console, sent from the loopback address ``source`` (127.x.y.z)."""
    port = urlsplit(stack.http_url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    body = urlencode(form) if form is not None else None
    sent = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    try:
        connection.request(method, path, body=body, headers={**sent, **(headers or {})})
        reply = connection.getresponse()
        return Reply(reply.status, reply.headers, reply.read().decode(errors="replace"))
    finally:
        connection.close()


def sign_in(stack: Stack, token: str, source: str = "127.0.0.1", **extra: str) -> Reply:
    return request(stack, "POST", "/login", {"token": token, **extra}, source=source)


@pytest.fixture(scope="module")
def alice(stack: Stack, admin: Client) -> Iterator[str]:
    """A data scientist's API token."""
    yield new_user(admin, "alice")


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example",
                                    "//evil.example", "/\\evil.example", "https://evil.example/"])
def test_next_never_leads_off_the_site(stack: Stack, alice: str, target: str) -> None:
    reply = sign_in(stack, alice, next=target)
    assert reply.status == 303
    assert reply.headers["Location"] == "/"


def test_the_sign_in_form_does_not_carry_a_tab_redirect(stack: Stack) -> None:
    reply = request(stack, "GET", "/login?next=/%09/evil.example")
    assert reply.status == 200
    assert "evil.example" not in reply.body


def test_a_good_next_is_kept(stack: Stack, alice: str) -> None:
    assert sign_in(stack, alice, next="/runs?status=running").headers["Location"] == "/runs?status=running"


@pytest.mark.parametrize("header", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                    {"Referer": "http://evil.example/page"}])
def test_another_site_cannot_sign_a_visitor_in(stack: Stack, alice: str, header: dict[str, str]) -> None:
    reply = request(stack, "POST", "/login", {"token": alice, "next": "/"}, headers=header)
    assert reply.status == 403
    assert reply.cookie() is None


def test_another_site_cannot_sign_a_visitor_out(stack: Stack, alice: str) -> None:
    session, _ = sign_in(stack, alice).cookie() or ("", {})
    cookie = {"Cookie": f"{COOKIE}={session}"}

    reply = request(stack, "POST", "/logout", {}, headers={**cookie, "Origin": "http://evil.example"})

    assert reply.status == 403
    assert request(stack, "GET", "/projects", headers=cookie).status == 200


def test_the_cookie_is_a_session_of_its_own_not_the_api_token(stack: Stack, alice: str) -> None:
    reply = sign_in(stack, alice)
    assert reply.status == 303
    set_cookie = reply.cookie()
    assert set_cookie is not None
    value, attributes = set_cookie
    assert value and value != alice and alice not in str(reply.headers)
    assert attributes["httponly"] and attributes["samesite"] == "Strict"
    assert attributes["max-age"] == str(12 * 3600)


def test_after_sign_out_the_old_cookie_no_longer_works(stack: Stack, admin: Client, alice: str) -> None:
    session, _ = sign_in(stack, alice).cookie() or ("", {})
    cookie = {"Cookie": f"{COOKIE}={session}"}
    assert request(stack, "GET", "/projects", headers=cookie).status == 200

    out = request(stack, "POST", "/logout", {}, headers={**cookie, "Origin": stack.http_url})
    assert out.status == 303

    replayed = request(stack, "GET", "/projects", headers=cookie)
    assert replayed.status in (303, 401)
    if replayed.status == 303:
        assert replayed.headers["Location"].startswith("/login")
    api = request(stack, "POST", "/api/shipyard.gateway.v1.IdentityService/WhoAmI", None,
                  headers={"Authorization": f"Bearer {session}", "Content-Type": "application/json"})
    assert api.status == 401
    fresh, _ = sign_in(stack, alice).cookie() or ("", {})  # the API token still signs in
    assert request(stack, "GET", "/projects", headers={"Cookie": f"{COOKIE}={fresh}"}).status == 200


def test_guessing_tokens_from_one_address_is_stopped(stack: Stack, alice: str) -> None:
    attacker = "127.0.0.2"
    for guess in range(10):
        assert sign_in(stack, f"sy_guess{guess}.not-the-secret", source=attacker).status == 401

    stopped = sign_in(stack, "sy_guess10.not-the-secret", source=attacker)

    assert stopped.status == 429
    assert 0 < int(stopped.headers["Retry-After"]) <= 60
    assert sign_in(stack, alice, source=attacker).status == 429  # not even a right token gets through
    assert sign_in(stack, alice).status == 303  # other addresses are not held up
    log = stack.data.logs / "gateway.log"
    text = log.read_text()
    assert "sign-in failed (client 127.0.0.2, token id guess3)" in text
    assert "not-the-secret" not in text


def test_guessing_one_tokens_secret_from_many_addresses_locks_it_out_of_sign_in(stack: Stack,
                                                                                admin: Client) -> None:
    token = new_user(admin, "target")
    token_id = token.removeprefix("sy_").split(".")[0]
    for n in range(10):
        assert sign_in(stack, f"sy_{token_id}.guess{n}", source=f"127.0.1.{n + 1}").status == 401

    assert sign_in(stack, token, source="127.0.2.1").status == 429
    with_token = stack.client(token)
    try:  # the API is not locked: a guesser cannot turn the lockout against the token's owner
        assert with_token.call(with_token.identity.WhoAmI, pb.WhoAmIRequest()).name == "target"
    finally:
        with_token.close()
