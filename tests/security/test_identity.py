"""Attacks on off-boarding: a disabled user keeps working, roles taken away stay, a data scientist
mints tokens that outlive any review (years, thousands of them), reads or revokes other people's
tokens, and a token revoked on one gateway replica keeps working on another (each cached it
forever). Every one is refused: a disabled user's token fails at once, new roles apply to the next
call, tokens have a capped lifetime and count, and a second replica stops taking a revoked token
within its cache time (5 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration

from shipyard.client.connection import Client, ClientError, Credentials
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from shipyard.local.supervisor import free_port
from tests.support.users import new_user


def _refused(call: Callable[[], Any], code: str, *words: str) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.code == code, caught.value
    for word in words:
        assert word in caught.value.message, caught.value.message
    return caught.value


def _user(stack: Stack, admin: Client, name: str, role: int = pb.ROLE_DATA_SCIENTIST) -> tuple[Client, str]:
    token = new_user(admin, name, role)
    return stack.client(token), token


def _whoami(client: Client) -> pb.User:
    return client.call(client.identity.WhoAmI, pb.WhoAmIRequest())


def _ttl(span: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(span)
    return duration


@pytest.fixture(scope="module")
def mallory(stack: Stack, admin: Client) -> Iterator[Client]:
    """A data scientist who wants more than her due."""
    client, _ = _user(stack, admin, "mallory")
    yield client
    client.close()


def test_a_disabled_users_token_is_refused_at_once(stack: Stack, admin: Client) -> None:
    leaver, _ = _user(stack, admin, "leaver")
    assert _whoami(leaver).name == "leaver"  # the gateway has it cached now

    admin.call(admin.identity.DisableUser, pb.DisableUserRequest(name="leaver"))

    _refused(lambda: _whoami(leaver), "UNAUTHENTICATED", "disabled")
    listed = admin.call(admin.identity.ListUsers, pb.ListUsersRequest())
    assert next(u for u in listed.users if u.name == "leaver").disabled
    admin.call(admin.identity.EnableUser, pb.EnableUserRequest(name="leaver"))
    assert _whoami(leaver).name == "leaver"


def test_a_deleted_users_tokens_are_revoked_and_the_name_is_not_reused(stack: Stack, admin: Client) -> None:
    gone, _ = _user(stack, admin, "gone")
    _whoami(gone)

    reply = admin.call(admin.identity.DeleteUser, pb.DeleteUserRequest(name="gone"))

    assert reply.revoked_tokens == 1
    _refused(lambda: _whoami(gone), "UNAUTHENTICATED")
    _refused(lambda: _user(stack, admin, "gone", pb.ROLE_OPERATOR), "ALREADY_EXISTS", "deleted")


def test_roles_given_and_taken_away_apply_to_the_next_call(stack: Stack, admin: Client) -> None:
    temp, _ = _user(stack, admin, "temp-op")
    _refused(lambda: temp.call(temp.identity.ListUsers, pb.ListUsersRequest()), "PERMISSION_DENIED")

    admin.call(admin.identity.SetUserRoles, pb.SetUserRolesRequest(name="temp-op", roles=[pb.ROLE_OPERATOR]))
    temp.call(temp.identity.ListUsers, pb.ListUsersRequest())  # operators only; cached now

    admin.call(admin.identity.SetUserRoles, pb.SetUserRolesRequest(name="temp-op",
                                                                   roles=[pb.ROLE_DATA_SCIENTIST]))
    _refused(lambda: temp.call(temp.identity.ListUsers, pb.ListUsersRequest()), "PERMISSION_DENIED")


def test_a_data_scientist_cannot_change_roles_or_disable_anyone(mallory: Client) -> None:
    _refused(lambda: mallory.call(mallory.identity.SetUserRoles, pb.SetUserRolesRequest(
        name="mallory", roles=[pb.ROLE_OPERATOR])), "PERMISSION_DENIED")
    _refused(lambda: mallory.call(mallory.identity.DisableUser, pb.DisableUserRequest(name="admin")),
             "PERMISSION_DENIED")
    assert list(_whoami(mallory).roles) == [pb.ROLE_DATA_SCIENTIST]


def test_the_last_operator_cannot_disable_themselves(admin: Client) -> None:
    users = admin.call(admin.identity.ListUsers, pb.ListUsersRequest()).users
    assert [u.name for u in users if pb.ROLE_OPERATOR in u.roles and not u.disabled] == ["admin"]
    _refused(lambda: admin.call(admin.identity.DisableUser, pb.DisableUserRequest(name="admin")),
             "FAILED_PRECONDITION", "last enabled operator")
    assert _whoami(admin).name == "admin"


def test_a_token_for_ten_years_is_refused(mallory: Client) -> None:
    _refused(lambda: mallory.call(mallory.identity.CreateToken, pb.CreateTokenRequest(
        description="forever", ttl=_ttl(timedelta(days=3650)))), "INVALID_ARGUMENT", "ttl")
    made = mallory.call(mallory.identity.CreateToken, pb.CreateTokenRequest(description="ci"))
    lifetime = made.token.expire_time.ToDatetime() - made.token.create_time.ToDatetime()
    assert lifetime == timedelta(days=30)


def test_minting_tokens_without_end_is_refused(stack: Stack, admin: Client) -> None:
    hoarder, _ = _user(stack, admin, "hoarder")
    held = len(hoarder.call(hoarder.identity.ListTokens, pb.ListTokensRequest()).tokens)
    for n in range(50 - held):
        hoarder.call(hoarder.identity.CreateToken, pb.CreateTokenRequest(description=f"t{n}"))

    _refused(lambda: hoarder.call(hoarder.identity.CreateToken, pb.CreateTokenRequest()),
             "RESOURCE_EXHAUSTED", "revoke")
    assert len(hoarder.call(hoarder.identity.ListTokens, pb.ListTokensRequest()).tokens) == 50


def test_a_data_scientist_cannot_list_or_revoke_other_peoples_tokens(stack: Stack, admin: Client,
                                                                      mallory: Client) -> None:
    victim, victim_token = _user(stack, admin, "victim")
    victim_id = victim_token.removeprefix("sy_").split(".")[0]

    _refused(lambda: mallory.call(mallory.identity.ListTokens, pb.ListTokensRequest(user="victim")),
             "PERMISSION_DENIED")
    _refused(lambda: mallory.call(mallory.identity.ListTokens, pb.ListTokensRequest(all_users=True)),
             "PERMISSION_DENIED")
    _refused(lambda: mallory.call(mallory.identity.RevokeToken, pb.RevokeTokenRequest(id=victim_id)),
             "PERMISSION_DENIED")
    mine = mallory.call(mallory.identity.ListTokens, pb.ListTokensRequest()).tokens
    assert mine and {t.user for t in mine} == {"mallory"}
    assert _whoami(victim).name == "victim"
    theirs = admin.call(admin.identity.ListTokens, pb.ListTokensRequest(user="victim")).tokens
    assert [t.id for t in theirs] == [victim_id]


# --- a second gateway replica over the same store -------------------------------------------------


@pytest.fixture(scope="module")
def second_gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another gateway process with the running one's configuration (same store, services, bus) on
    ports of its own: a second replica. Its gRPC address."""
    environ = Path(f"/proc/{stack.pid('gateway')}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    address = f"127.0.0.1:{free_port()}"
    env.update(SHIPYARD_GRPC_LISTEN=address, SHIPYARD_HTTP_LISTEN=f"127.0.0.1:{free_port()}")
    env.pop("SHIPYARD_ADMIN_TOKEN_FILE", None)
    log = tmp_path_factory.mktemp("replica") / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "shipyard_gateway"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        probe = Client(Credentials(address, stack.admin_token()))
        try:
            wait_for(lambda: _whoami(probe), 60, "the second gateway to answer")
        finally:
            probe.close()
        yield address
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, 9)
            process.wait()


def _refuses(client: Client, why: str) -> bool:
    """Whether the gateway refuses the client's token now, saying ``why``."""
    try:
        _whoami(client)
    except ClientError as exc:
        return exc.code == "UNAUTHENTICATED" and why in exc.message
    return False


def test_a_token_revoked_on_one_replica_stops_working_on_the_other(stack: Stack, admin: Client,
                                                                   second_gateway: str) -> None:
    _, token = _user(stack, admin, "rotating")
    token_id = token.removeprefix("sy_").split(".")[0]
    on_second = Client(Credentials(second_gateway, token))
    try:
        assert _whoami(on_second).name == "rotating"  # the second replica has it cached now

        admin.call(admin.identity.RevokeToken, pb.RevokeTokenRequest(id=token_id))  # on the first

        wait_for(lambda: _refuses(on_second, "not valid"), 30, "the second replica to refuse the token")
    finally:
        on_second.close()


def test_a_user_disabled_on_one_replica_is_refused_by_the_other(stack: Stack, admin: Client,
                                                                second_gateway: str) -> None:
    _, token = _user(stack, admin, "moving-on")
    on_second = Client(Credentials(second_gateway, token))
    try:
        assert _whoami(on_second).name == "moving-on"

        admin.call(admin.identity.DisableUser, pb.DisableUserRequest(name="moving-on"))

        wait_for(lambda: _refuses(on_second, "disabled"), 30, "the second replica to refuse the user")
    finally:
        on_second.close()
