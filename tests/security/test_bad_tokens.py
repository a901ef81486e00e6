"""Attack: guessing API tokens against the API itself — the HTTP ``/api/*`` edge and the gRPC edge —
from one address, as fast as it answers, without a limit and without a trace. Each bad token is now
logged (client address and token id, never the secret); past 30 a minute, that address's bad tokens
are answered RESOURCE_EXHAUSTED / HTTP 429 with Retry-After. A good token from the same address still
works: a guesser cannot lock out the users who share its address (a NAT, this machine)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc

from shipyard.local.harness import Stack, wait_for

LIMIT = 30  # SHIPYARD_BAD_TOKENS_PER_MINUTE's default
WHOAMI = "/shipyard.gateway.v1.IdentityService/WhoAmI"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def _whoami(stack: Stack, token: str, source: str) -> Reply:
    """WhoAmI over HTTP with ``token``, sent from the loopback address ``source``."""
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(stack.http_url).port, timeout=30,
                                            source_address=(source, 0))
    try:
        connection.request("POST", f"/api{WHOAMI}", body="{}",
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        reply = connection.getresponse()
        return Reply(reply.status, reply.headers, reply.read())
    finally:
        connection.close()


def _log(stack: Stack) -> str:
    return (stack.data.logs / "gateway.log").read_text(errors="replace")


def test_guessing_tokens_over_http_is_logged_then_throttled(stack: Stack) -> None:
    attacker = "127.0.0.5"
    answers = [_whoami(stack, f"sy_guess{n}.not-the-secret", attacker).status for n in range(LIMIT)]
    assert answers == [401] * LIMIT

    throttled = _whoami(stack, f"sy_guess{LIMIT}.not-the-secret", attacker)

    assert throttled.status == 429
    assert json.loads(throttled.body)["code"] == "RESOURCE_EXHAUSTED"
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert _whoami(stack, stack.admin_token(), attacker).status == 200  # a good token is not held back
    assert _whoami(stack, "sy_typo.secret", "127.0.0.6").status == 401  # nor another address
    wait_for(lambda: "authentication failed (client 127.0.0.5, token id guess0)" in _log(stack), 30,
             "the gateway to log the failed authentication")
    assert "not-the-secret" not in _log(stack)


def test_guessing_tokens_over_grpc_is_throttled_too(stack: Stack) -> None:
    with grpc.insecure_channel(stack.grpc_address) as channel:
        whoami = channel.unary_unary(WHOAMI)

        def code(token: str) -> grpc.StatusCode:
            try:
                whoami(b"", metadata=(("authorization", f"Bearer {token}"),), timeout=30)
            except grpc.RpcError as exc:
                return exc.code()  # type: ignore[no-any-return, attr-defined]
            return grpc.StatusCode.OK

        answers = [code(f"sy_grpcguess{n}.not-the-secret") for n in range(LIMIT + 1)]

        assert answers == [grpc.StatusCode.UNAUTHENTICATED] * LIMIT + [grpc.StatusCode.RESOURCE_EXHAUSTED]
        assert code(stack.admin_token()) == grpc.StatusCode.OK
    wait_for(lambda: "authentication failed (client 127.0.0.1, token id grpcguess0)" in _log(stack), 30,
             "the gateway to log the failed authentication")
