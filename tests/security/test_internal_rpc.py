"""Issue 14, item 2 (gRPC): internal services trusted whoever reached their port.

The attacker is any process on the machine (a user's run, another local user): it reads a
service's address (here from run/stack.json, which the test may read as the platform's user) and
calls repo-svc directly, claiming to be an operator with ``x-shipyard-user`` / ``x-shipyard-roles``
metadata, replaying a caller assertion meant for another service, an expired one, or one it signed
with a key of its own. Each must be refused, and nothing must change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import credentials_pb2, credentials_pb2_grpc, projects_pb2, projects_pb2_grpc
from shipyard.kit.assertions import LIFETIME_S, SKEW_S, CallerAssertions, load_internal_key, new_key
from shipyard.kit.caller import Caller
from shipyard.local.harness import Stack

FORGED_OPERATOR = (("x-shipyard-user", "admin"), ("x-shipyard-roles", "operator"))
ADMIN = Caller("admin", frozenset({"operator"}))


@pytest.fixture(scope="module")
def bob(stack: Stack, admin: Client) -> Iterator[Client]:
    """A data scientist with a project and a stored credential: what the attacker is after."""
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="bob", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    client = stack.client(made.token)
    client.call(client.projects.CreateProject, projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name="bobs-project")))
    client.call(client.saved_credentials.SaveCredential, credentials_pb2.SaveCredentialRequest(
        credential=credentials_pb2.Credential(name="bobs-git", type=credentials_pb2.CREDENTIAL_TYPE_TOKEN,
                                              host="github.com"), secret="ghp_bobs_secret_token"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def repo_svc(stack: Stack) -> Iterator[grpc.Channel]:
    """A channel straight to repo-svc, at the address the stack publishes."""
    state = stack.data.read_state()
    assert state is not None
    with grpc.insecure_channel(state["processes"]["repo-svc"]["address"]) as channel:
        yield channel


def platform_key(stack: Stack) -> bytes:
    return load_internal_key("", stack.data.internal_key)


def delete_project(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> grpc.RpcError:
    stub = projects_pb2_grpc.ProjectServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.DeleteProject(projects_pb2.DeleteProjectRequest(name="bobs-project"), metadata=metadata,
                           timeout=10)
    return caught.value


def list_credentials(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> grpc.RpcError:
    stub = credentials_pb2_grpc.CredentialServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListCredentials(credentials_pb2.ListCredentialsRequest(), metadata=metadata, timeout=10)
    return caught.value


def assert_bobs_things_are_intact(bob: Client) -> None:
    project = bob.call(bob.projects.GetProject, projects_pb2.GetProjectRequest(name="bobs-project"))
    assert project.owner == "bob"
    found = bob.call(bob.saved_credentials.ListCredentials, credentials_pb2.ListCredentialsRequest())
    assert [c.name for c in found.credentials] == ["bobs-git"]


def test_a_forged_operator_cannot_delete_a_project(repo_svc: grpc.Channel, bob: Client) -> None:
    error = delete_project(repo_svc, FORGED_OPERATOR)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no caller assertion" in (error.details() or "")
    assert_bobs_things_are_intact(bob)


def test_a_forged_user_cannot_list_their_credentials(repo_svc: grpc.Channel, bob: Client) -> None:
    error = list_credentials(repo_svc, (("x-shipyard-user", "bob"), ("x-shipyard-roles", "data-scientist")))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "ghp_" not in (error.details() or "")


def test_an_assertion_for_another_service_is_not_replayable(stack: Stack, repo_svc: grpc.Channel,
                                                             bob: Client) -> None:
    """What the gateway sends lineage-svc (captured somehow) does not open repo-svc."""
    captured = CallerAssertions(platform_key(stack), "gateway").metadata(ADMIN, "lineage-svc")
    error = delete_project(repo_svc, captured)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "for 'lineage-svc', not 'repo-svc'" in (error.details() or "")
    assert_bobs_things_are_intact(bob)


def test_an_expired_assertion_is_refused(stack: Stack, repo_svc: grpc.Channel, bob: Client) -> None:
    long_ago = time.time() - LIFETIME_S - SKEW_S - 60
    old = CallerAssertions(platform_key(stack), "gateway", clock=lambda: long_ago).metadata(ADMIN, "repo-svc")
    error = delete_project(repo_svc, old)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (error.details() or "")
    assert_bobs_things_are_intact(bob)


def test_an_assertion_signed_with_another_key_is_refused(repo_svc: grpc.Channel, bob: Client) -> None:
    forged = CallerAssertions(new_key(), "gateway").metadata(ADMIN, "repo-svc")
    for error in (delete_project(repo_svc, forged), list_credentials(repo_svc, forged)):
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "signature is not valid" in (error.details() or "")
    assert_bobs_things_are_intact(bob)


def test_reflection_on_a_service_needs_a_caller(repo_svc: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(repo_svc)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                       timeout=10))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_platform_key_does_open_it(stack: Stack, repo_svc: grpc.Channel, bob: Client) -> None:
    """The control: the attacks above reached the right port; only the key makes a caller."""
    signed = CallerAssertions(platform_key(stack), "gateway").metadata(Caller("bob", frozenset()), "repo-svc")
    found = credentials_pb2_grpc.CredentialServiceStub(repo_svc).ListCredentials(
        credentials_pb2.ListCredentialsRequest(), metadata=signed, timeout=10)
    assert [c.name for c in found.credentials] == ["bobs-git"]


def test_users_still_work_through_the_gateway(bob: Client) -> None:
    """The gateway's forwarding (and run-svc's calls to repo-svc) carry assertions of their own."""
    assert "bobs-project" in {p.name for p in bob.call(bob.projects.ListProjects,
                                                        projects_pb2.ListProjectsRequest()).projects}
