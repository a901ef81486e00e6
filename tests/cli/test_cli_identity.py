"""``shipyard token …`` and ``shipyard user …``: the pure helpers, and the commands against a fake
client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace

import pytest
import typer
from google.protobuf.message import Message
from typer.testing import CliRunner

from shipyard.cli import tokens, users
from shipyard.cli.main import app
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb

METHODS = ("CreateToken", "ListTokens", "RevokeToken", "SetUserRoles", "DisableUser", "EnableUser",
           "DeleteUser")


class FakeClient:
    """Records each call's request and answers with the next canned reply of that method."""

    def __init__(self) -> None:
        self.identity = SimpleNamespace(**{name: name for name in METHODS})
        self.replies: dict[str, list[Message]] = {}
        self.calls: list[tuple[str, Message]] = []

    def call(self, method: str, request: Message, timeout: float | None = None) -> Message:
        self.calls.append((method, request))
        return self.replies[method].pop(0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClient]:
    client = FakeClient()

    @contextmanager
    def fake_client() -> Iterator[FakeClient]:
        yield client

    monkeypatch.setattr(tokens, "client", fake_client)
    monkeypatch.setattr(users, "client", fake_client)
    yield client


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(("text", "span"), [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)),
                                            ("90m", timedelta(minutes=90)), (" 7d ", timedelta(days=7))])
def test_lifetimes_read_as_people_write_them(text: str, span: timedelta) -> None:
    assert tokens.parse_lifetime(text) == span


@pytest.mark.parametrize("text", ["", "30", "d", "0d", "-1d", "1.5d", "1w", "30 d", "1d2h"])
def test_a_bad_lifetime_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        tokens.parse_lifetime(text)


def test_token_create_sends_the_lifetime_and_prints_the_secret(fake: FakeClient) -> None:
    fake.replies["CreateToken"] = [pb.CreateTokenResponse(token=pb.Token(id="t1"), secret="sy_t1.s3cret")]
    code, out = invoke("token", "create", "--description", "ci", "--ttl", "7d")
    assert code == 0, out
    (method, request), = fake.calls
    assert isinstance(request, pb.CreateTokenRequest)
    assert (method, request.description) == ("CreateToken", "ci")
    assert request.ttl.ToTimedelta() == timedelta(days=7)
    assert "sy_t1.s3cret" in out


def test_token_create_without_a_lifetime_leaves_it_to_the_platform(fake: FakeClient) -> None:
    fake.replies["CreateToken"] = [pb.CreateTokenResponse(token=pb.Token(id="t1"), secret="sy_t1.s")]
    assert invoke("token", "create")[0] == 0
    request = fake.calls[0][1]
    assert isinstance(request, pb.CreateTokenRequest) and not request.HasField("ttl")


def test_token_list_shows_ids_never_secrets(fake: FakeClient) -> None:
    fake.replies["ListTokens"] = [pb.ListTokensResponse(tokens=[
        pb.Token(id="t1", user="alice", description="[bold]ci", kind=pb.TOKEN_KIND_SESSION)])]
    code, out = invoke("token", "list", "--user", "alice")
    assert code == 0, out
    assert "t1" in out and "session" in out and "[bold]ci" in out and "never" in out
    assert fake.calls == [("ListTokens", pb.ListTokensRequest(user="alice"))]


def test_user_roles_disable_enable_delete(fake: FakeClient) -> None:
    alice = pb.User(name="alice", roles=[pb.ROLE_ML_ENGINEER])
    fake.replies.update(SetUserRoles=[alice], DisableUser=[alice], EnableUser=[alice],
                        DeleteUser=[pb.DeleteUserResponse(revoked_tokens=2)])
    assert invoke("user", "roles", "alice", "--role", "ml-engineer")[0] == 0
    assert invoke("user", "disable", "alice")[0] == 0
    assert invoke("user", "enable", "alice")[0] == 0
    code, out = invoke("user", "delete", "alice", "--yes")
    assert code == 0 and "revoked 2" in out
    assert fake.calls == [
        ("SetUserRoles", pb.SetUserRolesRequest(name="alice", roles=[pb.ROLE_ML_ENGINEER])),
        ("DisableUser", pb.DisableUserRequest(name="alice")),
        ("EnableUser", pb.EnableUserRequest(name="alice")),
        ("DeleteUser", pb.DeleteUserRequest(name="alice")),
    ]


def test_user_roles_refuses_an_unknown_role_before_calling(fake: FakeClient) -> None:
    code, out = invoke("user", "roles", "alice", "--role", "root")
    assert code != 0 and "unknown role" in out
    assert fake.calls == []
