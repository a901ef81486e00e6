"""Attack: a data scientist submits a run that writes her model repo, then loses the right to write it
while the run goes — an admin takes her role, or disables her — and the run's end still makes a
version of what it wrote. The version is committed with her roles at that moment (repo-svc asks the
gateway's internal UserDirectory), so no version is made, and the run (still complete: its code did
finish) says why its output was not kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2 as gw
from shipyard.contracts.gateway.v1 import users_pb2, users_pb2_grpc
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from tests.support.users import new_user

MODEL = repos_pb2.REPO_KIND_MODEL
# Waits for the file the test makes in its home, then writes its output.
COMMAND = 'while [ ! -e "$HOME/go" ]; do sleep 0.05; done; echo weights > "$SHIPYARD_OUTPUT/model.txt"'
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


def _home(stack: Stack, run_id: str) -> Path:
    return stack.data_dir.resolve() / "run-svc" / "workspaces" / run_id / "home"


def _run_writing_her_model(stack: Stack, admin: Client, user: str,
                           meanwhile: Callable[[Client], object]) -> tuple[Client, pb.Run]:
    """``user``'s run that writes her model repo, ``meanwhile`` done by the admin while it waits; the
    run as it is once repo-svc has told it about its output."""
    her = stack.client(new_user(admin, user))
    repo = f"{user}-model"
    her.call(her.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=MODEL, name=repo, versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    name = f"{user}-train"
    run = her.call(her.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name=name, command=COMMAND, outputs=[pb.RunOutputTarget(repo_kind="model", repo=repo)])))
    home = _home(stack, run.id)
    wait_for(home.is_dir, 120, "the run to be going")
    meanwhile(admin)
    (home / "go").touch()

    def told() -> pb.Run | None:
        got = admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))
        return got if got.status in ENDED and "was not kept" in got.status_reason else None

    return her, wait_for(told, 120, "the run to end and say its output was not kept")


def _versions(admin: Client, repo: str) -> list[int]:
    found = admin.call(admin.repos.ListVersions, repos_pb2.ListVersionsRequest(kind=MODEL, repo=repo))
    return [v.number for v in found.versions]


@pytest.mark.parametrize("user, meanwhile, why", [
    ("rita", lambda admin: admin.call(admin.identity.SetUserRoles, gw.SetUserRolesRequest(
        name="rita", roles=[gw.ROLE_PRODUCTION_ENGINEER])),
     "'rita' holds no role that may write versions now"),
    ("dora", lambda admin: admin.call(admin.identity.DisableUser, gw.DisableUserRequest(name="dora")),
     "the run's owner 'dora' is disabled or deleted now"),
])
def test_an_owner_who_lost_the_right_while_the_run_went_makes_no_version_and_the_run_says_why(
        stack: Stack, admin: Client, user: str, meanwhile: Callable[[Client], object], why: str) -> None:
    _, run = _run_writing_her_model(stack, admin, user, meanwhile)
    assert run.status == pb.RUN_STATUS_COMPLETE
    assert why in run.status_reason and f"output model '{user}-model' was not kept" in run.status_reason
    assert any(why in note for note in run.notes)
    assert _versions(admin, f"{user}-model") == [1]  # the empty first version only


def test_the_user_directory_is_not_reachable_through_the_gateway(stack: Stack, admin: Client) -> None:
    """Neither an operator's token nor a made-up assertion gets an answer from it."""
    with grpc.insecure_channel(stack.grpc_address) as channel:
        directory = users_pb2_grpc.UserDirectoryStub(channel)
        for metadata in ((("authorization", f"Bearer {stack.admin_token()}"),),
                         (("x-shipyard-caller", "forged.assertion"),)):
            with pytest.raises(grpc.RpcError) as refused:
                directory.GetUserRoles(users_pb2.GetUserRolesRequest(user="admin"), metadata=metadata,
                                       timeout=30)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
