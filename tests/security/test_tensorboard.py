"""Attack: a data scientist stops (or starts) someone else's TensorBoard. Only the run's owner
or an operator may; anyone who may see the run may still look at its TensorBoard's state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack
from tests.support.users import signed_in

RUNNING = pb.TENSORBOARD_STATE_RUNNING



@pytest.fixture(scope="module")
def alice(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "alice")
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="alice-train", command="true")))
    yield client
    client.close()


@pytest.fixture(scope="module")
def bob(stack: Stack, admin: Client) -> Iterator[Client]:
    client = signed_in(stack, admin, "bob")
    yield client
    client.close()


def test_bob_can_neither_stop_nor_start_her_tensorboard(alice: Client, bob: Client, admin: Client) -> None:
    board = pb.TensorBoardRequest(name="alice-train")
    assert alice.call(alice.runs.StartTensorBoard, board).state == RUNNING
    for method in (bob.runs.StopTensorBoard, bob.runs.StartTensorBoard):
        with pytest.raises(ClientError) as refused:
            bob.call(method, board)
        assert refused.value.code == "PERMISSION_DENIED"
        assert "belongs to 'alice'" in refused.value.message
    assert bob.call(bob.runs.GetTensorBoard, board).state == RUNNING  # he may still look
    assert admin.call(admin.runs.StopTensorBoard, board).state != RUNNING  # an operator may stop it
