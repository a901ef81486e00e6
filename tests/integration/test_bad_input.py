"""Bad input gets a clear error that names what is wrong, and changes nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import grpc
import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import projects_pb2 as pb
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.local.harness import Stack

CREATE = "/shipyard.repo.v1.ProjectService/CreateProject"


def project_names(client: Client) -> set[str]:
    reply = client.call(client.projects.ListProjects, pb.ListProjectsRequest(page_size=1000))
    return {p.name for p in reply.projects}


def expect_error(call: Any, code: str, *words: str) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.code == code, caught.value
    for word in words:
        assert word in caught.value.message, caught.value.message
    return caught.value


@pytest.mark.parametrize(("name", "words"), [
    ("", ("project.name", "empty")),
    ("x" * 300, ("project.name", "63")),
    ("a/b", ("project.name", "'/'")),
    ("bell\x07", ("project.name", "control")),
    ("line\nbreak", ("project.name", "control")),
    ("-leading", ("project.name",)),
])
def test_bad_names_are_refused(admin: Client, name: str, words: tuple[str, ...]) -> None:
    before = project_names(admin)
    expect_error(lambda: admin.call(admin.projects.CreateProject,
                                    pb.CreateProjectRequest(project=pb.Project(name=name))),
                 "INVALID_ARGUMENT", *words)
    assert project_names(admin) == before


def test_a_bad_request_reaches_the_client_with_its_field_in_the_status_details(admin: Client) -> None:
    bad = repos_pb2.Repo(kind=repos_pb2.REPO_KIND_DATASET, name="a/b",
                         source=repos_pb2.Source(none=repos_pb2.NoSource()))

    refused = expect_error(lambda: admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=bad)),
                           "INVALID_ARGUMENT", "repo.name")

    # repo-svc's google.rpc.Status, relayed by the gateway unchanged.
    assert (refused.field, refused.problem, refused.reason) == (
        "repo.name", "must not contain '/'", "INVALID_ARGUMENT")
    assert refused.message == "repo.name: must not contain '/'"


def test_the_json_api_names_the_invalid_param(stack: Stack, admin: Client) -> None:
    before = project_names(admin)
    request = urllib.request.Request(
        f"{stack.http_url}/api{CREATE}", data=json.dumps({"project": {"name": "a/b"}}).encode(),
        headers={"Authorization": f"Bearer {stack.admin_token()}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    body = json.loads(caught.value.read())
    assert caught.value.code == 400
    assert body == {"code": "INVALID_ARGUMENT", "message": "project.name: must not contain '/'",
                    "invalid-params": [{"name": "project.name", "reason": "must not contain '/'"}]}
    assert project_names(admin) == before


def test_duplicate_name(admin: Client) -> None:
    admin.call(admin.projects.CreateProject, pb.CreateProjectRequest(project=pb.Project(name="dup")))
    expect_error(lambda: admin.call(admin.projects.CreateProject,
                                    pb.CreateProjectRequest(project=pb.Project(name="dup"))),
                 "ALREADY_EXISTS", "dup")


def test_unknown_json_field_is_named(stack: Stack, admin: Client) -> None:
    before = project_names(admin)
    request = urllib.request.Request(
        f"{stack.http_url}/api{CREATE}",
        data=json.dumps({"project": {"name": "j", "colour": "red"}}).encode(),
        headers={"Authorization": f"Bearer {stack.admin_token()}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    body = json.loads(caught.value.read())
    assert caught.value.code == 400 and body["code"] == "INVALID_ARGUMENT"
    assert "colour" in body["message"]
    assert project_names(admin) == before


def test_json_that_is_not_json(stack: Stack) -> None:
    request = urllib.request.Request(f"{stack.http_url}/api{CREATE}", data=b"{not json",
                                     headers={"Authorization": f"Bearer {stack.admin_token()}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400


def test_malformed_protobuf_body(stack: Stack, admin: Client) -> None:
    before = project_names(admin)
    with grpc.insecure_channel(stack.grpc_address) as channel:
        raw = channel.unary_unary(CREATE)
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\x0a\xff\xff\xff\xff\x0f", metadata=admin.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "CreateProjectRequest" in (caught.value.details() or "")
    assert project_names(admin) == before


@pytest.mark.parametrize("token", ["", "sy_nope.nope", "garbage", "Basic abc"])
def test_missing_or_wrong_token(stack: Stack, token: str) -> None:
    with grpc.insecure_channel(stack.grpc_address) as channel:
        call = channel.unary_unary(CREATE, request_serializer=pb.CreateProjectRequest.SerializeToString)
        metadata = (("authorization", f"Bearer {token}" if token != "Basic abc" else token),) if token else ()
        with pytest.raises(grpc.RpcError) as caught:
            call(pb.CreateProjectRequest(project=pb.Project(name="nope")), metadata=metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_http_without_token(stack: Stack) -> None:
    request = urllib.request.Request(f"{stack.http_url}/api{CREATE}", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 401


def test_roles_and_ownership(stack: Stack, admin: Client) -> None:
    alice = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="alice", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    bob = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="bob", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    pat = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="pat", roles=[gateway_pb2.ROLE_PRODUCTION_ENGINEER])))
    as_alice, as_bob, as_pat = (stack.client(u.token) for u in (alice, bob, pat))
    as_alice.call(as_alice.projects.CreateProject, pb.CreateProjectRequest(project=pb.Project(name="alices")))
    expect_error(lambda: as_bob.call(as_bob.projects.DeleteProject, pb.DeleteProjectRequest(name="alices")),
                 "PERMISSION_DENIED", "alice")
    expect_error(lambda: as_pat.call(as_pat.projects.CreateProject,
                                     pb.CreateProjectRequest(project=pb.Project(name="pats"))),
                 "PERMISSION_DENIED", "CreateProject")
    expect_error(lambda: as_alice.call(as_alice.identity.CreateUser, gateway_pb2.CreateUserRequest(
        user=gateway_pb2.User(name="eve", roles=[gateway_pb2.ROLE_OPERATOR]))), "PERMISSION_DENIED")
    assert "alices" in project_names(as_bob)
    admin.call(admin.projects.DeleteProject, pb.DeleteProjectRequest(name="alices"))
    assert "alices" not in project_names(admin)
