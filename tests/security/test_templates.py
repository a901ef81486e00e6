"""Attack: a data scientist reads someone else's config file (their secrets, often) by making a
template of their run, or cloning it, and running `cat $SHIPYARD_CONFIG`. A config file goes
only to its owner or an operator: the attacker's template and runs come without it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.client.connection import Client
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from tests.support.users import signed_in

SECRET = b"db_password: hunter2\n"
SHOW = 'cat "$SHIPYARD_CONFIG"; echo "config: ${SHIPYARD_CONFIG:-none}"'
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)



def _log_when_ended(client: Client, name: str) -> bytes:
    wait_for(lambda: client.call(client.runs.GetRun, pb.GetRunRequest(name=name)).status in ENDED, 90,
             f"run {name} to end")
    return client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name, max_bytes=1 << 20)).data


@pytest.fixture(scope="module")
def alice(stack: Stack, admin: Client) -> Iterator[Client]:
    """Alice, whose run alice-train has a config file with a secret in it."""
    client = signed_in(stack, admin, "alice")
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name="alice-train", command=SHOW, config_file_name="params.yaml"), config_file=SECRET))
    assert b"hunter2" in _log_when_ended(client, "alice-train")  # her own run reads it
    yield client
    client.close()


@pytest.fixture(scope="module")
def bob(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "bob")
    yield client
    client.close()


def test_a_template_of_her_run_carries_no_config_and_its_runs_cannot_read_hers(
    alice: Client, bob: Client
) -> None:
    made = bob.call(bob.runs.CreateTemplate, pb.CreateTemplateRequest(name="bobs", from_run="alice-train"))
    shown = bob.call(bob.runs.GetTemplate, pb.GetTemplateRequest(name="bobs"))
    assert not made.has_config_file and not shown.has_config_file and not shown.run.config_file_name
    bob.call(bob.runs.SubmitRun, pb.SubmitRunRequest(template="bobs", run=pb.Run(name="bob-from-template")))
    assert b"hunter2" not in _log_when_ended(bob, "bob-from-template")


def test_her_own_template_gives_her_config_to_her_runs_only(alice: Client, bob: Client) -> None:
    alice.call(alice.runs.CreateTemplate, pb.CreateTemplateRequest(name="alices", from_run="alice-train"))
    assert bob.call(bob.runs.GetTemplate, pb.GetTemplateRequest(name="alices")).has_config_file
    bob.call(bob.runs.SubmitRun, pb.SubmitRunRequest(template="alices", run=pb.Run(name="bob-from-hers")))
    alice.call(alice.runs.SubmitRun, pb.SubmitRunRequest(template="alices", run=pb.Run(name="alice-again")))
    assert b"hunter2" not in _log_when_ended(bob, "bob-from-hers")
    assert b"hunter2" in _log_when_ended(alice, "alice-again")


def test_a_clone_of_her_run_cannot_read_her_config(alice: Client, bob: Client) -> None:
    bob.call(bob.runs.CloneRun, pb.CloneRunRequest(name="alice-train", new_name="bob-clone"))
    assert b"hunter2" not in _log_when_ended(bob, "bob-clone")
