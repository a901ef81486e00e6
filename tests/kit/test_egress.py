"""Connections to user-named hosts: resolved once, every address checked, made to a checked address
(the name kept for the Host header), redirects checked hop by hop — for aiohttp and urllib3."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import urllib3
from aiohttp import web
from aiohttp.test_utils import TestServer

from shipyard.kit.egress import Egress, EgressRefused, private_policy
from tests.support.egress import Answers, only_127_0_0_1

ENV = "SHIPYARD_TEST_ALLOW_PRIVATE"
TIMEOUT = aiohttp.ClientTimeout(total=10)




# --- the check itself ---------------------------------------------------------------------


def test_a_name_that_resolves_to_a_private_address_is_refused_unless_allowed() -> None:
    stub = Answers([["10.1.2.3"]])
    with pytest.raises(EgressRefused, match=rf"data\.example\.org resolves to 10\.1\.2\.3: .*private.*{ENV}"):
        Egress(private_policy(False, ENV), stub).resolve_blocking("data.example.org", 443)
    allowed = Egress(private_policy(True, ENV), stub).resolve_blocking("data.example.org", 443)
    assert [str(ip) for ip in allowed] == ["10.1.2.3"]


def test_one_inside_address_among_public_ones_refuses_the_name() -> None:
    stub = Answers([["93.184.216.34", "127.0.0.1"]])
    with pytest.raises(EgressRefused, match=re.escape("resolves to 127.0.0.1: 127.0.0.1 is a loopback")):
        Egress(private_policy(False, ENV), stub).resolve_blocking("data.example.org", 443)


def test_the_metadata_service_is_refused_even_when_private_is_allowed() -> None:
    stub = Answers([["169.254.169.254"]])
    with pytest.raises(EgressRefused, match="metadata"):
        Egress(private_policy(True, ENV), stub).resolve_blocking("data.example.org", 80)


def test_written_addresses_are_checked_without_dns() -> None:
    stub = Answers([["93.184.216.34"]])
    egress = Egress(private_policy(False, ENV), stub)
    for host in ("127.0.0.1", "[::1]", "2130706433", "[::ffff:127.0.0.1]"):
        with pytest.raises(EgressRefused, match="loopback"):
            egress.resolve_blocking(host, 80)
    assert [str(ip) for ip in egress.resolve_blocking("[2606:4700::1111]", 443)] == ["2606:4700::1111"]
    assert stub.asked == []


def test_a_public_name_is_fine() -> None:
    egress = Egress(private_policy(False, ENV), Answers([["93.184.216.34", "93.184.216.34", "2606:4700::1"]]))
    assert [str(ip) for ip in egress.resolve_blocking("data.example.org", 443)] == ["93.184.216.34",
                                                                                     "2606:4700::1"]


# --- aiohttp --------------------------------------------------------------------------------


@dataclass
class Seen:
    """What a test server was asked: Host headers, in order."""

    hosts: list[str] = field(default_factory=list)


async def _server(host: str, seen: Seen, redirect_to: str = "") -> TestServer:
    async def answer(request: web.Request) -> web.StreamResponse:
        seen.hosts.append(request.host)
        if redirect_to and request.path == "/hop":
            raise web.HTTPFound(redirect_to)
        return web.Response(text="inside" if host == "127.0.0.2" else "ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    server = TestServer(app, host=host)
    await server.start_server()
    return server


@pytest.fixture
async def inside() -> AsyncIterator[tuple[TestServer, Seen]]:
    """A server on 127.0.0.2: an address the test policy refuses (an internal service)."""
    seen = Seen()
    server = await _server("127.0.0.2", seen)
    yield server, seen
    await server.close()


async def test_the_connection_goes_to_the_checked_address_and_dns_is_asked_once() -> None:
    seen = Seen()
    server = await _server("127.0.0.1", seen)
    port = server.port
    # A rebinding name: the first answer passes the check, every later one points inside.
    stub = Answers([["127.0.0.1"], ["127.0.0.2"]])
    try:
        async with (
            Egress(only_127_0_0_1, stub).session(TIMEOUT) as session,
            session.get(f"http://files.example.test:{port}/data.csv") as reply,
        ):
            assert (reply.status, await reply.text()) == (200, "ok")
    finally:
        await server.close()
    assert stub.asked == ["files.example.test"]
    assert seen.hosts == [f"files.example.test:{port}"]  # the name kept for the Host header


async def test_a_name_resolving_inside_is_never_connected_to(inside: tuple[TestServer, Seen]) -> None:
    server, seen = inside
    async with Egress(only_127_0_0_1, Answers([["127.0.0.2"]])).session(TIMEOUT) as session:
        with pytest.raises(EgressRefused, match=re.escape("files.example.test resolves to 127.0.0.2")):
            await session.get(f"http://files.example.test:{server.port}/")
        with pytest.raises(EgressRefused, match=re.escape("127.0.0.2 is not the test's address")):
            await session.get(f"http://127.0.0.2:{server.port}/")
    assert seen.hosts == []


async def test_every_redirect_hop_is_checked(inside: tuple[TestServer, Seen]) -> None:
    target, seen_inside = inside
    seen = Seen()
    outside = await _server("127.0.0.1", seen, redirect_to=f"http://127.0.0.2:{target.port}/secret")
    try:
        async with Egress(only_127_0_0_1, Answers([["127.0.0.2"]])).session(TIMEOUT) as session:
            with pytest.raises(EgressRefused, match=re.escape("127.0.0.2")):
                await session.get(f"http://127.0.0.1:{outside.port}/hop")
            named_hop = f"http://inside.example.test:{target.port}/"
            renamed = await _server("127.0.0.1", Seen(), redirect_to=named_hop)
            try:
                with pytest.raises(EgressRefused, match=r"inside\.example\.test resolves to 127\.0\.0\.2"):
                    await session.get(f"http://127.0.0.1:{renamed.port}/hop")
            finally:
                await renamed.close()
    finally:
        await outside.close()
    assert seen.hosts and seen_inside.hosts == []


# --- urllib3 (the MinIO SDK's client) ----------------------------------------------------


@dataclass
class ThreadedServer:
    """A stdlib HTTP server in a thread: redirects /hop to ``redirect_to``, answers 200 otherwise."""

    host: str
    redirect_to: str = ""
    seen: Seen = field(default_factory=Seen)

    def __post_init__(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.hosts.append(self.headers.get("Host", ""))
                redirect = outer.redirect_to and self.path == "/hop"
                self.send_response(307 if redirect else 200)
                if redirect:
                    self.send_header("Location", outer.redirect_to)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inside_thread() -> Iterator[ThreadedServer]:
    server = ThreadedServer("127.0.0.2")
    yield server
    server.stop()


def test_urllib3_connects_to_the_checked_address_keeping_the_name() -> None:
    server = ThreadedServer("127.0.0.1")
    stub = Answers([["127.0.0.1"], ["127.0.0.2"]])
    try:
        manager = Egress(only_127_0_0_1, stub).pool_manager()
        reply = manager.request("GET", f"http://files.example.test:{server.port}/x")
        assert (reply.status, reply.data) == (200, b"ok")
    finally:
        server.stop()
    assert stub.asked == ["files.example.test"]
    assert server.seen.hosts == [f"files.example.test:{server.port}"]


def test_urllib3_refuses_at_once_without_retrying(inside_thread: ThreadedServer) -> None:
    stub = Answers([["127.0.0.2"]])
    manager = Egress(only_127_0_0_1, stub).pool_manager(retries=urllib3.Retry(total=5, backoff_factor=0.2))
    with pytest.raises(EgressRefused, match=re.escape("files.example.test resolves to 127.0.0.2")):
        manager.request("GET", f"http://files.example.test:{inside_thread.port}/x")
    with pytest.raises(EgressRefused, match=re.escape("127.0.0.2 is not the test's address")):
        manager.request("GET", f"http://127.0.0.2:{inside_thread.port}/x")
    assert stub.asked == ["files.example.test"] and inside_thread.seen.hosts == []


def test_urllib3_checks_where_a_redirect_leads(inside_thread: ThreadedServer) -> None:
    outside = ThreadedServer("127.0.0.1", redirect_to=f"http://127.0.0.2:{inside_thread.port}/secret")
    try:
        with pytest.raises(EgressRefused, match=re.escape("127.0.0.2")):
            manager = Egress(only_127_0_0_1, Answers([[]])).pool_manager()
            manager.request("GET", f"http://127.0.0.1:{outside.port}/hop")
    finally:
        outside.stop()
    assert outside.seen.hosts and inside_thread.seen.hosts == []
