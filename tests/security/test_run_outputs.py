"""Attack: a data scientist writes new versions into someone else's dataset through a run's
outputs — by naming it as an output, by cloning its owner's run, or by a template — so that the
owner's next pull gets the attacker's bytes. Every way is refused at submit, naming the repo; the
owner's own run still writes it. (The check repeated when repo-svc commits the version is
tested against fakes in services/repo-svc/tests/test_repo_run_events.py: a forged RunCompleted
cannot be published to the bus here.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from tests.support.users import signed_in

DATASET = repos_pb2.REPO_KIND_DATASET
OUTPUT = [pb.RunOutputTarget(repo_kind="dataset", repo="alice-data")]
WRITE = 'echo "$SHIPYARD_RUN_NAME" > "$SHIPYARD_OUTPUT/who.txt"'



@pytest.fixture(scope="module")
def alice(stack: Stack, admin: Client) -> Iterator[Client]:
    """Alice, a data scientist, with her dataset alice-data (an empty version 1) and a finished run
    that wrote its version 2."""
    client = signed_in(stack, admin, "alice")
    client.call(client.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=DATASET, name="alice-data", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="alice-prep", kind=pb.RUN_KIND_PREPROCESSING, command=WRITE, outputs=OUTPUT)))
    _wait_for_version(client, 2)
    yield client
    client.close()


@pytest.fixture(scope="module")
def bob(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "bob")
    yield client
    client.close()


def _latest(client: Client) -> repos_pb2.Version:
    return client.call(client.repos.GetVersion, repos_pb2.GetVersionRequest(kind=DATASET, repo="alice-data"))


def _wait_for_version(client: Client, number: int) -> repos_pb2.Version:
    def made() -> repos_pb2.Version | None:
        latest = _latest(client)
        return latest if latest.number >= number else None

    return wait_for(made, 90, f"alice-data version {number}")


def _refused(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.code == "PERMISSION_DENIED", refused.value
    assert "alice-data" in refused.value.message and "alice" in refused.value.message
    return refused.value


def test_her_own_run_writes_her_dataset(alice: Client) -> None:
    version = _latest(alice)
    assert version.number == 2 and version.produced_by_run


def test_a_run_naming_her_dataset_as_its_output_is_refused(alice: Client, bob: Client) -> None:
    _refused(lambda: bob.call(bob.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="bob-steals", kind=pb.RUN_KIND_PREPROCESSING, command=WRITE, outputs=OUTPUT))))
    with pytest.raises(ClientError) as unknown:
        bob.call(bob.runs.GetRun, pb.GetRunRequest(name="bob-steals"))
    assert unknown.value.code == "NOT_FOUND"  # nothing was queued
    assert _latest(alice).number == 2


def test_a_clone_of_her_run_is_refused(alice: Client, bob: Client) -> None:
    _refused(lambda: bob.call(bob.runs.CloneRun, pb.CloneRunRequest(name="alice-prep", new_name="bob-clone")))
    assert _latest(alice).number == 2


def test_a_template_that_writes_her_dataset_is_refused(alice: Client, bob: Client) -> None:
    bob.call(bob.runs.CreateTemplate, pb.CreateTemplateRequest(name="bobs-prep", from_run="alice-prep"))
    _refused(lambda: bob.call(bob.runs.SubmitRun, pb.SubmitRunRequest(template="bobs-prep")))
    alice.call(alice.runs.CreateTemplate, pb.CreateTemplateRequest(name="alices-prep", from_run="alice-prep"))
    _refused(lambda: bob.call(bob.runs.SubmitRun, pb.SubmitRunRequest(template="alices-prep")))
    assert _latest(alice).number == 2


def test_the_internal_write_check_is_not_reachable_through_the_gateway(admin: Client, bob: Client) -> None:
    for client in (bob, admin):
        with pytest.raises(ClientError) as refused:
            client.call(client.repos.CheckVersionWrite,
                        repos_pb2.CheckVersionWriteRequest(kind=DATASET, name="alice-data"))
        assert refused.value.code == "PERMISSION_DENIED" and "not a public method" in refused.value.message


def test_her_next_run_still_writes_it_and_an_operators_may_too(alice: Client, admin: Client) -> None:
    alice.call(alice.runs.CloneRun, pb.CloneRunRequest(name="alice-prep", new_name="alice-prep-2"))
    assert _wait_for_version(alice, 3).number == 3
    admin.call(admin.runs.CloneRun, pb.CloneRunRequest(name="alice-prep", new_name="admin-prep"))
    made = _wait_for_version(alice, 4)
    run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="admin-prep"))
    assert made.produced_by_run == run.id
