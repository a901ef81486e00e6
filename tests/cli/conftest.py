"""A connection that answers from canned replies, for commands run without a platform."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf.message import Message

from shipyard.cli import context
from shipyard.client.connection import Credentials
from shipyard.contracts.gateway.v1 import gateway_pb2

Answer = Message | Callable[[Message], Message]


class Replies:
    """Stubs whose every method is its own name; ``call`` answers with ``answers[name]`` (a reply, or
    a function of the request) and records the request in ``calls``."""

    answers: dict[str, Answer] = {}
    calls: list[tuple[str, Message]] = []
    credentials = Credentials("127.0.0.1:9", "the-token")

    def __init__(self, _: object = None) -> None: ...

    def __getattr__(self, stub: str) -> Any:
        return type("Stub", (), {"__getattr__": lambda _, method: method})()

    def call(self, method: str, request: Message, timeout: float | None = None) -> Message:
        self.calls.append((method, request))
        answer = self.answers[method]
        return answer if isinstance(answer, Message) else answer(request)

    def status(self) -> gateway_pb2.GetStatusResponse:
        reply = self.call("GetStatus", gateway_pb2.GetStatusRequest())
        assert isinstance(reply, gateway_pb2.GetStatusResponse)
        return reply

    def close(self) -> None: ...


@pytest.fixture
def replies(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Answer]]:
    """The canned replies of the connection every command gets (see ``Replies``)."""
    answers: dict[str, Answer] = {}
    monkeypatch.setattr(Replies, "answers", answers)
    monkeypatch.setattr(Replies, "calls", [])
    monkeypatch.setattr(context, "Client", Replies)
    monkeypatch.setattr(context, "resolve_credentials", lambda: None)
    yield answers
